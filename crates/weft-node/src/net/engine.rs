//! The consensus engine of each epoch, and weft's side of it: [`Mailbox`] (the engine's
//! `Automaton`, `Relay` and `Reporter`, forwarding to the core), the hello vote a validator
//! sends when its engine starts, and [`run_epochs`], which runs the engine of each epoch the
//! core names. Nothing here knows which runtime or peer-to-peer network it runs on: the node
//! starts it on commonware's tokio runtime and its authenticated network ([`super::start`]).

use std::num::{NonZeroU16, NonZeroUsize};
use std::sync::mpsc::Sender;
use std::time::Duration;

use anyhow::Result;
use commonware_consensus::simplex::{self, Plan, config as simplex_config, elector::RoundRobin};
use commonware_consensus::types::{Epoch, ViewDelta};
use commonware_consensus::{Automaton, CertifiableAutomaton, Relay, Reporter};
use commonware_cryptography::{Sha256, ed25519};
use commonware_p2p::utils::mux::MuxHandle;
use commonware_p2p::{Blocker, Recipients};
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Metrics, Spawner, Storage, Supervisor};
use commonware_utils::channel::oneshot;

use super::{Activity, Ctx, Digest, EpochStart, Event, Key, Scheme};

/// What the engines of every epoch share.
pub(super) struct Engines<B> {
    pub namespace: Vec<u8>,
    pub private: ed25519::PrivateKey,
    pub blocker: B,
    pub mailbox: Mailbox,
    pub leader_timeout: Duration,
    /// Put before the names of the engine's storage partitions: empty in a node (its storage
    /// is its own directory); a node's name where nodes share one storage (simulations).
    pub partition_prefix: String,
}

/// The engine's three networks (votes, certificates, resolver), one subchannel per epoch: the
/// engine of a new epoch starts on fresh ones while messages of the old one are dropped.
pub(super) struct Channels<
    V: commonware_p2p::Sender,
    C: commonware_p2p::Sender,
    R: commonware_p2p::Sender,
> {
    pub votes: MuxHandle<V>,
    pub certificates: MuxHandle<C>,
    pub resolver: MuxHandle<R>,
}

/// Runs the consensus engine of each epoch the core names (stopping the one before), until
/// `finished` says the core ended; returns the core's result.
pub(super) async fn run_epochs<E, B, V, C, R>(
    context: E,
    engines: Engines<B>,
    mut channels: Channels<V, C, R>,
    mut epochs_in: tokio::sync::mpsc::UnboundedReceiver<EpochStart>,
    mut finished: oneshot::Receiver<Result<()>>,
) -> Result<()>
where
    E: Clock + rand::CryptoRng + Spawner + Storage + Metrics + Supervisor,
    B: Blocker<PublicKey = Key> + Clone,
    V: commonware_p2p::Sender<PublicKey = Key>,
    C: commonware_p2p::Sender<PublicKey = Key>,
    R: commonware_p2p::Sender<PublicKey = Key>,
{
    let Engines {
        namespace,
        private,
        blocker,
        mailbox,
        leader_timeout,
        partition_prefix,
    } = engines;
    let mut engine: Option<commonware_runtime::Handle<()>> = None;
    let result = loop {
        let start = tokio::select! {
            biased;
            result = &mut finished => break result
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the network core thread failed"))),
            start = epochs_in.recv() => start,
        };
        let Some(EpochStart {
            epoch,
            validators,
            floor,
            ready,
        }) = start
        else {
            continue;
        };
        if let Some(engine) = engine.take() {
            engine.abort();
        }
        let Some(scheme) = Scheme::signer(&namespace, validators.clone(), private.clone()) else {
            tracing::info!(epoch, "this node does not vote in this epoch");
            continue;
        };
        let opened = async {
            Ok::<_, commonware_p2p::utils::mux::Error>((
                channels.votes.register(epoch).await?,
                channels.certificates.register(epoch).await?,
                channels.resolver.register(epoch).await?,
            ))
        };
        let (epoch_votes, epoch_certificates, epoch_resolver) = match opened.await {
            Ok(opened) => opened,
            Err(error) => {
                tracing::error!(%error, epoch, "cannot open the epoch's channels");
                continue;
            }
        };
        let config = engine_config(
            scheme,
            blocker.clone(),
            mailbox.clone(),
            epoch,
            floor,
            leader_timeout,
            &partition_prefix,
        );
        let started = simplex::Engine::new(
            context.child("simplex").with_attribute("epoch", epoch),
            config,
        );
        // The core says when: once the other validators answered, or after a bounded wait. A
        // dropped sender (the core ended) starts it too; the loop then sees the core's end.
        let _ = ready.await;
        tracing::info!(
            epoch,
            validators = validators.len(),
            "starting the consensus engine"
        );
        let (mut votes_sender, votes_receiver) = epoch_votes;
        if let Some(signer) = Scheme::signer(&namespace, validators.clone(), private.clone()) {
            hello(&mut votes_sender, &signer, epoch);
        }
        engine = Some(started.start(
            (votes_sender, votes_receiver),
            epoch_certificates,
            epoch_resolver,
        ));
    };
    if let Some(engine) = engine {
        engine.abort();
    }
    result
}

/// The Simplex engine's settings for `epoch`, starting on `floor` (the last block of the epoch
/// before; block 0 for epoch 0).
fn engine_config<B>(
    scheme: Scheme,
    blocker: B,
    mailbox: Mailbox,
    epoch: u64,
    floor: Digest,
    leader_timeout: Duration,
    partition_prefix: &str,
) -> simplex_config::Config<
    Scheme,
    RoundRobin<Sha256>,
    B,
    Digest,
    Mailbox,
    Mailbox,
    Mailbox,
    commonware_parallel::Sequential,
>
where
    B: Blocker<PublicKey = Key>,
{
    simplex_config::Config {
        scheme,
        elector: RoundRobin::<Sha256>::default(),
        blocker,
        automaton: mailbox.clone(),
        relay: mailbox.clone(),
        reporter: mailbox,
        strategy: commonware_parallel::Sequential,
        // Epoch 0 keeps the name it had before epochs existed.
        partition: if epoch == 0 {
            format!("{partition_prefix}simplex")
        } else {
            format!("{partition_prefix}simplex_epoch_{epoch}")
        },
        mailbox_size: NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN),
        epoch: Epoch::new(epoch),
        floor: simplex_config::Floor::Genesis(floor),
        leader_timeout,
        certification_timeout: leader_timeout * 2,
        timeout_retry: leader_timeout * 5,
        fetch_timeout: commonware_utils::NZDuration!(Duration::from_secs(1)),
        fetch_retry_delay: Duration::from_millis(100),
        view_retention: ViewDelta::new(10),
        skip: simplex_config::SkipPolicy::Enabled {
            timeout: leader_timeout * 6,
            budget: simplex_config::SkipBudget::Participants,
        },
        replay_buffer: NonZeroUsize::new(1 << 20).unwrap_or(NonZeroUsize::MIN),
        write_buffer: NonZeroUsize::new(1 << 20).unwrap_or(NonZeroUsize::MIN),
        page_cache: CacheRef::new(
            NonZeroU16::new(1024).unwrap_or(NonZeroU16::MIN),
            NonZeroUsize::new(10).unwrap_or(NonZeroUsize::MIN),
        ),
        forward: simplex_config::ForwardPolicy::Disabled,
        track_historical_votes: false,
    }
}

/// The consensus engine's handle on the core.
#[derive(Clone)]
pub(crate) struct Mailbox {
    pub(super) events: Sender<Event>,
}

impl Automaton for Mailbox {
    type Context = Ctx;
    type Digest = Digest;

    async fn propose(&mut self, context: Ctx) -> oneshot::Receiver<Digest> {
        let (response, receiver) = oneshot::channel();
        let _ = self.events.send(Event::Propose { context, response });
        receiver
    }

    async fn verify(&mut self, context: Ctx, digest: Digest) -> oneshot::Receiver<bool> {
        let (response, receiver) = oneshot::channel();
        let _ = self.events.send(Event::Verify {
            context,
            digest,
            response,
        });
        receiver
    }
}

impl CertifiableAutomaton for Mailbox {}

impl Relay for Mailbox {
    type Digest = Digest;
    type PublicKey = Key;
    type Plan = Plan<Key>;

    fn broadcast(&mut self, digest: Digest, plan: Plan<Key>) -> commonware_actor::Feedback {
        let recipients = match plan {
            Plan::Prepare { .. } | Plan::Propose { .. } => Recipients::All,
            Plan::Forward { recipients, .. } => recipients,
        };
        match self.events.send(Event::Broadcast { digest, recipients }) {
            Ok(()) => commonware_actor::Feedback::Ok,
            Err(_) => commonware_actor::Feedback::Closed,
        }
    }
}

impl Reporter for Mailbox {
    type Activity = Activity;

    fn report(&mut self, activity: Activity) -> commonware_actor::Feedback {
        use commonware_consensus::simplex::types::Attributable as _;
        use commonware_consensus::{Epochable as _, Viewable as _};
        let event = match activity {
            Activity::Finalization(finalization) => Event::Finalized(Box::new(finalization)),
            Activity::Notarization(notarization) => Event::Notarized {
                epoch: notarization.epoch().get(),
                view: notarization.view().get(),
            },
            Activity::Nullification(_) => Event::Nullified,
            Activity::ConflictingNotarize(evidence) => Event::Evidence {
                kind: "conflicting_notarize",
                epoch: evidence.epoch().get(),
                validator: evidence.signer().into(),
                view: evidence.view().get(),
            },
            Activity::ConflictingFinalize(evidence) => Event::Evidence {
                kind: "conflicting_finalize",
                epoch: evidence.epoch().get(),
                validator: evidence.signer().into(),
                view: evidence.view().get(),
            },
            Activity::NullifyFinalize(evidence) => Event::Evidence {
                kind: "nullify_finalize",
                epoch: evidence.epoch().get(),
                validator: evidence.signer().into(),
                view: evidence.view().get(),
            },
            _ => return commonware_actor::Feedback::Ok,
        };
        match self.events.send(event) {
            Ok(()) => commonware_actor::Feedback::Ok,
            Err(_) => commonware_actor::Feedback::Closed,
        }
    }
}

/// Tells every validator this engine is about to vote: a signed nullify vote for the epoch's
/// view 0 (its genesis, which no engine tracks or votes in, so the vote is dropped unused and
/// commits its signer to nothing). commonware's engine counts any vote of the epoch from a
/// validator as activity before it looks at the view, and with its skip policy it nullifies at
/// once a view whose leader it has not heard from lately. At start no validator has heard
/// from any other yet: a leader whose vote in the first view came after the others had their
/// quorum was skipped by some validators and voted for by others, and the view then waited
/// for the certification timeout (docs/network.md, "Starting").
fn hello<S>(votes: &mut S, signer: &Scheme, epoch: u64)
where
    S: commonware_p2p::Sender<PublicKey = Key>,
{
    if let Some(vote) = hello_vote(signer, epoch) {
        votes.send(Recipients::All, vote, true);
    }
}

/// The encoded vote [`hello`] sends: `None` when `signer` cannot sign.
fn hello_vote(signer: &Scheme, epoch: u64) -> Option<Vec<u8>> {
    use commonware_codec::Encode as _;
    use commonware_consensus::simplex::types::{Nullify, Vote};
    use commonware_consensus::types::{Round, View};
    let round = Round::new(Epoch::new(epoch), View::zero());
    let vote: Vote<Scheme, Digest> = Vote::Nullify(Nullify::sign::<Digest>(signer, round)?);
    Some(vote.encode().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::DecodeExt as _;
    use commonware_utils::ordered::Set;

    /// What a validator sends when its engine starts: a vote every peer's engine decodes (one
    /// it could not decode would get the sender blocked), a nullify of the epoch's view 0 that
    /// no engine tracks, signed by this validator.
    #[test]
    fn the_hello_is_a_signed_nullify_of_the_epochs_view_zero() {
        use commonware_consensus::simplex::types::Vote;
        use commonware_consensus::types::{Round, View};
        use commonware_cryptography::Signer as _;
        let privates: Vec<ed25519::PrivateKey> =
            (1..=4).map(ed25519::PrivateKey::from_seed).collect();
        let validators = Set::from_iter_dedup(privates.iter().map(|key| key.public_key()));
        let signer =
            Scheme::signer(b"weft-test", validators.clone(), privates[2].clone()).expect("signer");
        let bytes = hello_vote(&signer, 3).expect("signed");
        let vote =
            Vote::<Scheme, Digest>::decode(commonware_codec::Copying(&bytes[..])).expect("decodes");
        let Vote::Nullify(nullify) = vote else {
            panic!("not a nullify: {vote:?}");
        };
        assert_eq!(nullify.round(), Round::new(Epoch::new(3), View::zero()));
        let mut rng = rand::rng();
        let strategy = commonware_parallel::Sequential;
        let verifier = Scheme::verifier(b"weft-test", validators.clone());
        assert!(nullify.verify::<_, Digest>(&mut rng, &verifier, &strategy));
        // Signed under this network's namespace: another network's engines refuse it.
        let elsewhere = Scheme::verifier(b"weft-other", validators);
        assert!(!nullify.verify::<_, Digest>(&mut rng, &elsewhere, &strategy));
    }
}
