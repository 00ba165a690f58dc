//! Byzantine validators: proposals that break the rules, and double votes.

use std::time::Instant;

use serde_json::Value;

use crate::cluster::{Cluster, chain_tx_ids, submit};
use crate::common::node::http;
use crate::{DEADLINE, one_network_at_a_time};

/// Two validators propose only blocks that break the rules (debug builds read `WEFT_FAULT`):
/// one with a forged transaction signature, one with a transaction twice. Every honest
/// validator refuses each such block and records evidence naming its producer; the network
/// keeps committing, and no block of theirs with transactions becomes final.
#[test]
fn byzantine_proposals_are_refused_and_recorded_as_evidence() {
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "4"]);
    let home0 = cluster.members[0].home.clone();
    let api0 = cluster.members[0].api.clone();
    let org = cluster.org();
    let forger = cluster.key(2);
    let replayer = cluster.key(3);
    for (index, fault) in [(2, "forged-signature"), (3, "replay")] {
        cluster.kill(index);
        cluster.restart_with(index, &[("WEFT_FAULT", fault)]);
    }
    // The organisation's registration was final before the faults began (either of the two
    // may have led that block honestly).
    let honest_until = cluster.height(0);

    // Transactions keep coming until both have led a view with something to propose, and
    // been refused by both honest validators.
    let evidence = |index: usize| cluster.evidence(index);
    let refused = |records: &[Value], key: &str| -> Vec<String> {
        records
            .iter()
            .filter(|record| record["kind"] == "invalid_block" && record["validator"] == key)
            .map(|record| record["reason"].as_str().expect("reason").to_string())
            .collect()
    };
    let mut acknowledged = Vec::new();
    let started = Instant::now();
    for round in 0.. {
        acknowledged.extend(submit(
            &cluster,
            &api0,
            &home0,
            &org,
            &format!("b{round}"),
            10,
        ));
        let done = [0, 1].iter().all(|index| {
            let records = evidence(*index);
            !refused(&records, &forger).is_empty() && !refused(&records, &replayer).is_empty()
        });
        if done {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "not both Byzantine proposers were refused: {:?} {:?}",
            evidence(0),
            evidence(1)
        );
    }
    for index in [0, 1] {
        let records = evidence(index);
        assert!(
            refused(&records, &forger)
                .iter()
                .all(|reason| reason.contains("signature does not verify")),
            "{records:?}"
        );
        assert!(
            refused(&records, &replayer)
                .iter()
                .all(|reason| reason.contains("replay")),
            "{records:?}"
        );
        let (_, status) = http(
            "GET",
            &format!("{}/v1/net/status", cluster.members[index].api),
            None,
            b"",
        );
        assert!(status["refused_blocks"].as_u64() >= Some(2), "{status}");
    }

    // Every acknowledged transaction is final once, on all four, and none came in a block of
    // theirs.
    let top = acknowledged
        .iter()
        .map(|(_, height)| *height)
        .max()
        .expect("some");
    cluster.converge(&[0, 1, 2, 3], top);
    let height = cluster.height(0);
    let on_chain = chain_tx_ids(&api0, height);
    let unique: std::collections::HashSet<&String> = on_chain.iter().collect();
    assert_eq!(
        unique.len(),
        on_chain.len(),
        "a transaction is on the chain twice"
    );
    for (id, _) in &acknowledged {
        assert!(unique.contains(id), "acknowledged {id} is not on the chain");
    }
    for h in honest_until + 1..=height {
        let (_, block) = http("GET", &format!("{api0}/v1/blocks/{h}"), None, b"");
        if block["tx_count"].as_u64() > Some(0) {
            let producer = block["producer"].as_str().expect("producer");
            assert!(
                producer != forger && producer != replayer,
                "block {h} with transactions by a Byzantine proposer is final: {block}"
            );
        }
    }
}

/// A validator that votes twice in a view (for the leader's block and for another): the honest
/// validators detect the double vote, record it as evidence against it, and keep finalizing.
#[test]
fn a_double_vote_is_detected_and_recorded_as_evidence() {
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "4"]);
    let home0 = cluster.members[0].home.clone();
    let api0 = cluster.members[0].api.clone();
    let org = cluster.org();
    let equivocator = cluster.key(3);
    cluster.kill(3);
    cluster.restart_with(3, &[("WEFT_FAULT", "equivocate")]);
    let double_votes = |index: usize| -> Vec<Value> {
        cluster
            .evidence(index)
            .into_iter()
            .filter(|record| record["kind"] == "conflicting_notarize")
            .collect()
    };
    let started = Instant::now();
    let mut acknowledged = Vec::new();
    for round in 0.. {
        acknowledged.extend(submit(
            &cluster,
            &api0,
            &home0,
            &org,
            &format!("e{round}"),
            10,
        ));
        if (0..3).any(|index| !double_votes(index).is_empty()) {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "no honest validator recorded the double vote: {:?}",
            cluster.evidence(0)
        );
    }
    for index in 0..3 {
        for record in double_votes(index) {
            assert_eq!(record["validator"], equivocator, "{record}");
            assert!(record["view"].as_u64() > Some(0), "{record}");
        }
    }
    // The three honest validators keep finalizing, and agree.
    acknowledged.extend(submit(&cluster, &api0, &home0, &org, "after", 10));
    let top = acknowledged
        .iter()
        .map(|(_, height)| *height)
        .max()
        .expect("some");
    cluster.converge(&[0, 1, 2], top);
}
