//! Validators agree on blocks, survive a crash and stop without a quorum; blocks wait for a
//! finalization; an engine starts once the other validators answer.

use serde_json::{Value, json};

use crate::cluster::{Cluster, chain_tx_ids, claims, keys_in, queue, submit, wait_net_status};
use crate::common::node::{claim_tx_on, encoded, http, post_json};
use crate::common::{run, weft};
use crate::thin::{
    thin_node_keeps_what_its_filter_selects_and_fetches_the_rest,
    thin_node_on_proofs_answers_from_histories_it_checks,
};
use crate::{ARCHIVE, THIN, THIN2, one_network_at_a_time};

#[test]
fn validators_agree_survive_a_crash_and_stop_without_a_quorum() {
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "4", "--thin", "2", "--archive", "1"]);
    assert_eq!(cluster.members.len(), 7);
    assert!(cluster.members[THIN].name.starts_with("thin"));
    assert!(cluster.members[THIN2].name.starts_with("thin"));
    assert!(cluster.members[ARCHIVE].name.starts_with("archive"));
    // `up` returned once the network formed: every node has committed a block.
    for index in 0..cluster.members.len() {
        assert!(cluster.height(index) >= 1, "{}", cluster.status(index));
    }
    let home0 = cluster.members[0].home.clone();
    // An organisation registered through one validator is known to all of them.
    let org = cluster.org();
    // The thin node keeps whole only the transactions naming Acme (restarted to read it).
    let config_path = cluster.members[THIN].home.join("config.toml");
    let config = std::fs::read_to_string(&config_path).expect("config");
    assert!(config.contains("keep_resources = []"), "{config}");
    std::fs::write(
        &config_path,
        config.replace(
            "keep_resources = []",
            &format!("keep_resources = [\"{org}\"]"),
        ),
    )
    .expect("config written");
    cluster.restart(THIN);

    // Submissions round-robin to every node (the archive node too): each is acknowledged
    // once final.
    let mut acknowledged = Vec::new();
    for round in 0..2 {
        for index in 0..cluster.members.len() {
            let api = cluster.members[index].api.clone();
            acknowledged.extend(submit(
                &cluster,
                &api,
                &home0,
                &org,
                &format!("r{round}n{index}"),
                40,
            ));
        }
    }
    let top = acknowledged
        .iter()
        .map(|(_, height)| *height)
        .max()
        .expect("some");
    // Another organisation's claims, which the thin node stores stripped.
    let other = cluster.org_named("Beta");
    let others = submit(
        &cluster,
        &cluster.members[1].api,
        &home0,
        &other,
        "beta",
        20,
    );
    let top = others
        .iter()
        .map(|(_, height)| *height)
        .max()
        .unwrap_or(top)
        .max(top);
    cluster.converge(&[0, 1, 2, 3, THIN, THIN2, ARCHIVE], top);
    // Besides the validators, the thin node keeps connections with the other followers (the
    // default `network.connections` is 8): the archive node, its seed, and the other thin node,
    // which it learnt of from its peers. It lists every other node online.
    let thin2_key = cluster.key(THIN2);
    let archive_key = cluster.key(ARCHIVE);
    let net = wait_net_status(
        &cluster.members[THIN].api,
        "the thin node connected with the other followers",
        |net| {
            let picked = keys_in(net, "picked");
            let peers = keys_in(net, "peers");
            [&thin2_key, &archive_key]
                .iter()
                .all(|key| picked.contains(key) && peers.contains(key))
                && keys_in(net, "online").len() == 6
        },
    );
    assert_eq!(net["dialed"], 6, "4 validators and 2 followers: {net}");
    // Every acknowledged transaction is on the chain exactly once, at the same place on
    // every node.
    let height = cluster.height(0);
    let on_chain = chain_tx_ids(&cluster.members[0].api, height);
    let unique: std::collections::HashSet<&String> = on_chain.iter().collect();
    assert_eq!(
        unique.len(),
        on_chain.len(),
        "a transaction is on the chain twice"
    );
    for (id, committed_at) in &acknowledged {
        assert!(unique.contains(id), "acknowledged {id} is not on the chain");
        for member in &cluster.members {
            let (code, tx) = http(
                "GET",
                &format!("{}/v1/transactions/{id}", member.api),
                None,
                b"",
            );
            assert_eq!(code, 200, "{} lacks {id}: {tx}", member.name);
            assert_eq!(tx["height"].as_u64(), Some(*committed_at), "{tx}");
        }
    }
    thin_node_keeps_what_its_filter_selects_and_fetches_the_rest(&cluster, &acknowledged, &others);
    thin_node_on_proofs_answers_from_histories_it_checks(&mut cluster, &home0, &org);
    // A directory without a cluster is an error that says how to make one.
    let missing = cluster.dir.join("no-such-cluster");
    let error = run(
        &cluster.dir,
        &[
            "cluster",
            "status",
            "--dir",
            missing.to_str().expect("utf-8"),
        ],
        1,
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("weft cluster up")),
        "{error}"
    );
    // `weft cluster status`: all six running, answering, and holding the same block at the
    // height they share.
    let status = cluster.cluster_status(0);
    assert_eq!(status["running"], 7, "{status}");
    assert_eq!(status["answering"], 7, "{status}");
    assert_eq!(status["agree"], true, "{status}");
    assert!(status["common_height"].as_u64() >= Some(top), "{status}");
    let (code, block) = http(
        "GET",
        &format!(
            "{}/v1/blocks/{}",
            cluster.members[0].api, status["common_height"]
        ),
        None,
        b"",
    );
    assert_eq!(code, 200, "{block}");
    assert_eq!(status["common_hash"], block["hash"], "{status}");
    for node in status["nodes"].as_array().expect("nodes") {
        assert_eq!(node["common_hash"], block["hash"], "{node}");
        assert!(node["sync"].is_string(), "{node}");
        assert!(node["peers"].as_u64() >= Some(1), "{node}");
    }
    // The validators' engines run; the followers have none.
    for (index, member) in cluster.members.iter().enumerate() {
        let (_, net) = http("GET", &format!("{}/v1/net/status", member.api), None, b"");
        let engine = if index < 4 { "running" } else { "not voting" };
        assert_eq!(
            (net["engine"].as_str(), net["waiting_for"].clone()),
            (Some(engine), json!([])),
            "{}: {net}",
            member.name
        );
    }

    // One validator of four killed: the other three keep committing (f = 1).
    let stopped = cluster.key(3);
    let nullified_before = http(
        "GET",
        &format!("{}/v1/net/status", cluster.members[0].api),
        None,
        b"",
    )
    .1["nullified_views"]
        .as_u64()
        .expect("nullified_views");
    cluster.kill(3);
    let api0 = cluster.members[0].api.clone();
    let during = submit(&cluster, &api0, &home0, &org, "one-down", 30);
    let top = during
        .iter()
        .map(|(_, height)| *height)
        .max()
        .expect("some");
    cluster.converge(&[0, 1, 2, THIN, THIN2, ARCHIVE], top);
    // The views the stopped validator leads end without a block: counted.
    wait_net_status(
        &cluster.members[0].api,
        "views led by the stopped validator are counted as nullified",
        |net| net["nullified_views"].as_u64() > Some(nullified_before),
    );
    // Gone from every list of who is online within a few seconds, on validators and followers.
    for index in [0, THIN2] {
        wait_net_status(
            &cluster.members[index].api,
            "the stopped validator dropped from online",
            |net| {
                net["online"]
                    .as_array()
                    .is_some_and(|keys| !keys.contains(&json!(stopped)) && keys.len() == 5)
            },
        );
    }
    // The status names the stopped node, and its exit code says the cluster is not whole.
    let status = cluster.cluster_status(4);
    assert_eq!(
        (status["running"].as_u64(), status["answering"].as_u64()),
        (Some(6), Some(6)),
        "{status}"
    );
    assert_eq!(status["nodes"][3]["running"], false, "{status}");
    assert_eq!(status["nodes"][3]["height"], Value::Null, "{status}");
    assert_eq!(status["agree"], true, "{status}");
    assert_eq!(status["healthy"], false, "{status}");
    // Restarted, it catches up with what it missed.
    cluster.restart(3);
    cluster.converge(&[0, 1, 2, 3, THIN, THIN2, ARCHIVE], top);
    let (code, tx) = http(
        "GET",
        &format!("{}/v1/transactions/{}", cluster.members[3].api, during[0].0),
        None,
        b"",
    );
    assert_eq!(
        code, 200,
        "the restarted validator lacks what it missed: {tx}"
    );

    // Two of four down: no quorum, so nothing submitted from now on becomes final, on any
    // node. (A block finalized just before the kill may still be committed: its certificate
    // was made with four.)
    cluster.kill(2);
    cluster.kill(3);
    let mut queued_ids = queue(&api0, &claims(&cluster, &home0, &org, "no-quorum", 5));
    // A submission that waits for its block is answered when the wait runs out (the request's
    // `timeout_ms`; `api.wait_timeout_ms` otherwise): 504, and it stays queued.
    let waiting_tx = claim_tx_on(
        &cluster.chain,
        &home0,
        &org,
        b"no-quorum-waiting",
        "no-quorum-waiting",
    );
    let waiting = [encoded(&waiting_tx)];
    let (code, body) = post_json(
        &format!(
            "{}/v1/transactions/batch?timeout_ms=1500",
            cluster.members[1].api
        ),
        &json!({ "transactions": waiting }),
    );
    assert_eq!(code, 504, "{body}");
    assert_eq!(body["error"]["code"], "not_final", "{body}");
    let (code, body) = post_json(
        &format!("{api0}/v1/transactions?wait=false&timeout_ms=1500"),
        &json!({ "transaction": waiting[0] }),
    );
    assert_eq!(code, 400, "a wait limit without waiting: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("timeout_ms")),
        "{body}"
    );
    let (code, body) = post_json(
        &format!("{api0}/v1/transactions?timeout_ms=0"),
        &json!({ "transaction": waiting[0] }),
    );
    assert_eq!(code, 400, "{body}");
    queued_ids.push(waiting_tx.id().to_hex());
    cluster.never_final(
        &[0, 1, THIN, ARCHIVE],
        &queued_ids[0],
        6,
        "final without a quorum",
    );
    // One of them back: three of four, commits resume and the queued transactions are final.
    cluster.restart(2);
    for id in &queued_ids {
        cluster.wait_final(0, id, "commits did not resume");
    }
    let top = cluster.height(0);
    cluster.converge(&[0, 1, 2, THIN, THIN2, ARCHIVE], top);

    // With every validator down, the thin node still gets whole copies of what it stores
    // stripped: from the archive node, which it dials as a seed.
    let archive_key = cluster.key(ARCHIVE);
    for index in 0..3 {
        cluster.kill(index);
    }
    let (id, _) = &others[others.len() - 1];
    let (code, here) = http(
        "GET",
        &format!("{}/v1/transactions/{id}", cluster.members[THIN].api),
        None,
        b"",
    );
    assert_eq!(code, 200, "{here}");
    assert_eq!(here["stripped"], true, "{here}");
    assert_eq!(here["fetched_from"], archive_key.as_str(), "{here}");
    assert!(here["payload"].is_object(), "{here}");

    // The thin node's own audit, once stopped: every link, root, seal and signature holds;
    // the rules were replayed up to its first stripped transaction.
    cluster.kill(THIN);
    let audit = run(&cluster.members[THIN].home, &["chain", "verify"], 0);
    assert_eq!(audit["ok"], true, "{audit}");
    assert!(
        audit["stripped"].as_u64() >= Some(others.len() as u64),
        "{audit}"
    );
    assert!(
        audit["rules_checked_through"].as_u64() < Some(top),
        "{audit}"
    );

    // `weft cluster down` stops (and names) the nodes still running: the second thin node and
    // the archive node; then none runs.
    let dir = cluster.dir.to_str().expect("utf-8").to_string();
    let down = run(&cluster.dir, &["cluster", "down", "--dir", &dir], 0);
    assert_eq!(down["stopped"], json!(["thin1", "archive0"]), "{down}");
    let status = cluster.cluster_status(4);
    assert_eq!(
        (status["running"].as_u64(), status["answering"].as_u64()),
        (Some(0), Some(0)),
        "{status}"
    );
    assert_eq!(status["common_height"], Value::Null, "{status}");
}

/// A validator's consensus engine starts once every other validator of its epoch has answered
/// it, so that its first votes do not go down a connection the other side has refused
/// (docs/network.md, "Starting"). Until then its status names whom it waits for.
#[test]
fn a_validator_starts_voting_once_the_other_validators_answer() {
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "2"]);
    for index in 0..2 {
        wait_net_status(&cluster.members[index].api, "both engines run", |net| {
            net["engine"] == "running" && net["waiting_for"] == json!([])
        });
    }
    let key1 = cluster.key(1);
    cluster.kill(1);
    cluster.kill(0);
    // Node 0 would wait for node 1 for up to `start_wait_ms`: made longer than this test.
    let config_path = cluster.members[0].home.join("config.toml");
    let config = std::fs::read_to_string(&config_path).expect("config");
    assert!(config.contains("start_wait_ms = 2000"), "{config}");
    std::fs::write(
        &config_path,
        config.replace("start_wait_ms = 2000", "start_wait_ms = 600000"),
    )
    .expect("config written");
    cluster.restart(0);
    let api0 = cluster.members[0].api.clone();
    let waiting = wait_net_status(&api0, "node 0's engine waits for node 1", |net| {
        net["engine"] == "waiting for validators"
    });
    assert_eq!(waiting["waiting_for"], json!([key1]), "{waiting}");
    let shown = weft(
        &cluster.members[0].home,
        &["net", "status", "--node", &api0],
    );
    assert!(shown.status.success(), "{shown:?}");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(&format!("engine       waiting for validators ({key1}")),
        "{shown}"
    );
    // Node 1 back: it answers, and node 0's engine starts long before its wait would end.
    cluster.restart(1);
    wait_net_status(
        &api0,
        "node 0's engine starts once node 1 answered",
        |net| net["engine"] == "running" && net["waiting_for"] == json!([]),
    );
    let height = cluster.height(0);
    cluster.converge(&[0, 1], height + 2);
}
