//! Spike: 4 validators run commonware Simplex (ed25519, round-robin) over the simulated
//! network in the deterministic runtime, with the crate's mock application.
use std::{collections::HashMap, sync::Arc, time::Duration};

use commonware_consensus::{
    Monitor,
    simplex::{
        Engine,
        config::{self, ForwardPolicy, SkipBudget, SkipPolicy},
        elector::RoundRobin,
        mocks,
        scheme::ed25519,
    },
    types::{Epoch, View, ViewDelta},
};
use commonware_cryptography::{
    Sha256, certificate::mocks::Fixture, ed25519::PublicKey, sha256::Digest as Sha256Digest,
};
use commonware_p2p::simulated::{Config, Link, Network};
use commonware_parallel::Sequential;
use commonware_runtime::{
    Clock, Quota, Runner, Spawner, Supervisor as _, buffer::paged::CacheRef, deterministic,
};
use commonware_utils::{NZDuration, NZU16, NZU32, NZUsize, probability};

fn main() {
    let n = 4u32;
    let latency_ms: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let views: u64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let wall = std::time::Instant::now();
    let executor = deterministic::Runner::timed(Duration::from_secs(3600));
    executor.start(|mut context| async move {
        let namespace = b"weft-spike".to_vec();
        let Fixture { participants, schemes, .. } = ed25519::fixture(&mut context, &namespace, n);
        let (network, mut oracle) = Network::new_with_peers(
            context.child("network"),
            Config {
                max_size: 1 << 20,
                max_peers_per_set: NZUsize!(n as usize + 1),
                disconnect_on_block: true,
                tracked_peer_sets: NZUsize!(1),
            },
            participants.clone(),
        )
        .await;
        network.start();
        let quota = Quota::per_second(NZU32!(10_000));
        let mut registrations = HashMap::new();
        for validator in &participants {
            let control = oracle.control(validator.clone());
            let a = control.register(0, quota).await.unwrap();
            let b = control.register(1, quota).await.unwrap();
            let c = control.register(2, quota).await.unwrap();
            registrations.insert(validator.clone(), (a, b, c));
        }
        let link = Link { latency: Duration::from_millis(latency_ms), jitter: Duration::from_millis(1), success_rate: probability!(1.0) };
        for v1 in &participants {
            for v2 in &participants {
                if v1 != v2 {
                    oracle.add_link(v1.clone(), v2.clone(), link.clone()).await.unwrap();
                }
            }
        }
        let relay = Arc::new(mocks::relay::Relay::<Sha256Digest, PublicKey>::new());
        let mut reporters = Vec::new();
        for (idx, validator) in participants.iter().enumerate() {
            let context = context.child("validator").with_attribute("public_key", validator);
            let reporter = mocks::reporter::Reporter::new(
                context.child("reporter"),
                mocks::reporter::Config {
                    participants: participants.clone().try_into().unwrap(),
                    scheme: schemes[idx].clone(),
                    elector: RoundRobin::<Sha256>::default(),
                },
            );
            reporters.push(reporter.clone());
            let (actor, application) = mocks::application::Application::new(
                context.child("application"),
                mocks::application::Config::<Sha256, _> {
                    relay: relay.clone(),
                    me: validator.clone(),
                    propose_latency: (1.0, 0.1),
                    verify_latency: (1.0, 0.1),
                    certify_latency: (1.0, 0.1),
                    should_certify: mocks::application::Certifier::Always,
                },
            );
            actor.start();
            let cfg = config::Config {
                scheme: schemes[idx].clone(),
                elector: RoundRobin::<Sha256>::default(),
                blocker: oracle.control(validator.clone()),
                automaton: application.clone(),
                relay: application.clone(),
                reporter: reporter.clone(),
                strategy: Sequential,
                partition: validator.to_string(),
                mailbox_size: NZUsize!(1024),
                epoch: Epoch::new(0),
                floor: config::Floor::Genesis(mocks::application::genesis::<Sha256>(Epoch::new(0))),
                leader_timeout: Duration::from_secs(1),
                certification_timeout: Duration::from_secs(2),
                timeout_retry: Duration::from_secs(10),
                fetch_timeout: NZDuration!(Duration::from_secs(1)),
                fetch_retry_delay: Duration::from_millis(100),
                view_retention: ViewDelta::new(10),
                skip: SkipPolicy::Enabled { timeout: Duration::from_secs(12), budget: SkipBudget::Participants },
                replay_buffer: NZUsize!(1024 * 1024),
                write_buffer: NZUsize!(1024 * 1024),
                page_cache: CacheRef::new(NZU16!(1024), NZUsize!(10)),
                forward: ForwardPolicy::Disabled,
                track_historical_votes: false,
            };
            let engine = Engine::new(context.child("engine"), cfg);
            let (pending, recovered, resolver) = registrations.remove(validator).unwrap();
            engine.start(pending, recovered, resolver);
        }
        let started = context.current();
        let target = View::new(views);
        for reporter in reporters.iter_mut() {
            let (mut latest, mut monitor) = reporter.subscribe().await;
            while latest < target {
                latest = monitor.recv().await.expect("event");
            }
        }
        let simulated = context.current().duration_since(started).unwrap();
        for reporter in &reporters {
            reporter.assert_no_faults();
            reporter.assert_no_invalid();
        }
        println!(
            "{views} views finalized by all 4 validators, link latency {latency_ms} ms: {:.1} ms of simulated time per view",
            simulated.as_secs_f64() * 1000.0 / views as f64
        );
    });
    println!("wall time {:.2} s", wall.elapsed().as_secs_f64());
}
