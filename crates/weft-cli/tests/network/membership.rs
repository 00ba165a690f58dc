//! Who is in the network: a late node joins, syncs and is removed; a bad join document is
//! refused; the validators change by transaction.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::{Cluster, chain_tx_ids, submit, wait_for, wait_net_status};
use crate::common::node::{Node, http, new_home};
use crate::common::{run, weft};
use crate::{DEADLINE, one_network_at_a_time};

/// A node that was not there from the start: it joins from the archive node's join document
/// once an authority admits its key, takes headers from a lying validator but none of its
/// bodies, syncs every block from the archive node alone (no validator up), and is cut off when
/// removed.
#[test]
fn a_late_node_joins_syncs_100000_transactions_and_is_cut_off_when_removed() {
    const TXS: u64 = 100_000;
    const ARCHIVE: usize = 4;
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "4", "--archive", "1"]);
    assert!(cluster.members[ARCHIVE].name.starts_with("archive"));
    let home0 = cluster.members[0].home.clone();
    let api0 = cluster.members[0].api.clone();
    // 100,000 claims through the load generator, each acknowledged once final.
    let load = run(
        &home0,
        &[
            "bench",
            "node",
            "--node",
            &api0,
            "--txs",
            &TXS.to_string(),
            "--batch",
            "1000",
            "--concurrency",
            "8",
        ],
        0,
    );
    assert_eq!(load["committed"].as_u64(), Some(TXS), "{load}");
    // Joined from the archive node: it is the document's first seed.
    let archive_api = cluster.members[ARCHIVE].api.clone();
    let archive_key = cluster.key(ARCHIVE);
    let joiner_home = cluster._dir.path().join("late");
    let joined = run(
        &joiner_home,
        &["init", "--join", &archive_api, "--api", "127.0.0.1:0"],
        0,
    );
    let key = joined["key"].as_str().expect("key").to_string();
    let block0 = http("GET", &format!("{api0}/v1/blocks/0"), None, b"").1;
    assert_eq!(joined["block0_hash"], block0["hash"], "{joined}");
    assert!(
        joined["seeds"][0]
            .as_str()
            .is_some_and(|seed| seed.starts_with(&archive_key)),
        "{joined}"
    );
    let admitted = run(
        &home0,
        &["net", "admit", &key, "--name", "late", "--node", &api0],
        0,
    );
    let admitted_at = admitted["height"].as_u64().expect("height");
    cluster.converge(&[0, 1, 2, 3, ARCHIVE], admitted_at);

    // No validator is up, only the archive node, which does not vote: the late node catches up
    // from it alone. (A peer that answers with altered bodies while a node catches up is a
    // simulated scenario: `net::sim` in weft-node.)
    for index in 0..=ARCHIVE {
        cluster.kill(index);
    }
    cluster.restart(ARCHIVE);
    let joiner = Node::start(&joiner_home);
    let archive_height = cluster.height(ARCHIVE);
    assert!(archive_height >= admitted_at);
    let synced_to = wait_for(|| {
        let (code, status) = http("GET", &format!("{}/v1/status", joiner.url), None, b"");
        assert_eq!(code, 200, "{status}");
        match status["height"].as_u64().expect("height") {
            height if height >= archive_height => Ok(height),
            height => Err(format!(
                "the late node is at height {height} of the archive's {archive_height}"
            )),
        }
    });
    assert_eq!(
        cluster.height(ARCHIVE),
        archive_height,
        "nothing was finalized meanwhile"
    );
    wait_net_status(&joiner.url, "the archive node is the only peer", |status| {
        status["peers"] == json!([archive_key])
    });
    // The same chain: the same block at the height it reached (blocks are hash-linked), and
    // every transaction of the load is in it.
    let theirs = http(
        "GET",
        &format!("{archive_api}/v1/blocks/{synced_to}"),
        None,
        b"",
    )
    .1;
    let ours = http(
        "GET",
        &format!("{}/v1/blocks/{synced_to}", joiner.url),
        None,
        b"",
    )
    .1;
    assert_eq!(ours["hash"], theirs["hash"], "{ours}");
    let synced = chain_tx_ids(&joiner.url, synced_to);
    assert!(
        synced.len() as u64 > TXS,
        "the late node holds {} transactions",
        synced.len()
    );
    let net = http("GET", &format!("{}/v1/net/status", joiner.url), None, b"").1;
    assert_eq!(net["validator"], false, "{net}");
    assert!(
        net["members"]
            .as_array()
            .expect("members")
            .iter()
            .any(|member| member["key"] == key.as_str() && member["name"] == "late"),
        "{net}"
    );

    // The honest validators come back (a quorum of three): the late node follows them.
    for index in 0..3 {
        cluster.restart(index);
    }
    let api0 = cluster.members[0].api.clone();
    let registered = run(
        &home0,
        &[
            "org",
            "add",
            "Late",
            "--country",
            "DE",
            "--town",
            "Aachen",
            "--node",
            &api0,
        ],
        0,
    );
    let registered_at = registered["height"].as_u64().expect("height");
    assert!(registered_at > archive_height, "{registered}");
    let path = format!(
        "{}/v1/transactions/{}",
        joiner.url,
        registered["tx_id"].as_str().expect("tx_id")
    );
    wait_for(|| match http("GET", &path, None, b"") {
        (200, _) => Ok(()),
        (_, body) => Err(format!("the late node does not follow: {body}")),
    });

    // Removed: the validators cut it off in the block that removes it, so it never gets that
    // block or any later one.
    let removed = run(&home0, &["net", "remove", &key, "--node", &api0], 0);
    let removed_at = removed["height"].as_u64().expect("height");
    wait_for(|| match cluster.height(0) {
        height if height >= removed_at + 5 => Ok(()),
        height => Err(format!("the validators stopped at {height}")),
    });
    let (_, status) = http("GET", &format!("{}/v1/status", joiner.url), None, b"");
    let height = status["height"].as_u64().expect("height");
    assert!(
        height < removed_at,
        "the removed node still follows: at {height}, removed at {removed_at}"
    );
    // The validators list it as cut off, with the height that removed it.
    let status = http("GET", &format!("{api0}/v1/net/status"), None, b"").1;
    assert!(
        status["cut_off"]
            .as_array()
            .is_some_and(|peers| peers.iter().any(|peer| {
                peer["key"] == key.as_str()
                    && peer["reason"]
                        .as_str()
                        .is_some_and(|reason| reason.contains(&format!("at height {removed_at}")))
            })),
        "{status}"
    );
    // And no longer online for them once the last report of it lapses.
    wait_net_status(&api0, "the removed node dropped from online", |status| {
        status["online"]
            .as_array()
            .is_some_and(|online| !online.contains(&json!(key)))
    });
    // And it says so: it hears from no peer, so it does not claim to be in sync.
    let status = wait_net_status(
        &joiner.url,
        "the removed node knows it is cut off",
        |status| status["sync"] == "no peers",
    );
    assert_eq!(status["dialed_connected"], 0, "{status}");
    // `weft net status` tells the operator what to check.
    let shown = weft(&joiner_home, &["net", "status", "--node", &joiner.url]);
    assert!(shown.status.success(), "{shown:?}");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("no peers") && shown.contains(&format!("weft net admit {key}")),
        "{shown}"
    );
}

/// A join document that is not one, or not the network expected, makes no home.
#[test]
fn joining_refuses_a_bad_document_or_an_unexpected_network() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("join.json");
    std::fs::write(&file, b"{\"format\": \"weft-join-v1\"}").expect("write");
    let home = dir.path().join("home");
    let out = run(
        &home,
        &["init", "--genesis", file.to_str().expect("utf-8")],
        1,
    );
    let message = out["error"]["message"].as_str().expect("message");
    assert!(message.contains("join document"), "{message}");
    assert!(!home.exists(), "a refused join left {}", home.display());

    // A real document (from a home that is part of a network), but another block 0 expected.
    let (_source_dir, source) = new_home(&[]);
    let path = source.join("config.toml");
    let mut config: toml::Table = std::fs::read_to_string(&path)
        .expect("config")
        .parse()
        .expect("toml");
    config["network"]["enabled"] = toml::Value::Boolean(true);
    // Only written into the document: nothing listens here.
    config["network"]["listen"] = toml::Value::String("127.0.0.1:9".into());
    std::fs::write(&path, toml::to_string(&config).expect("toml")).expect("config");
    let document = weft(
        &source,
        &["net", "genesis", "--out", file.to_str().expect("utf-8")],
    );
    assert!(document.status.success(), "{document:?}");
    let out = run(
        &home,
        &[
            "init",
            "--genesis",
            file.to_str().expect("utf-8"),
            "--block0-hash",
            &"ab".repeat(32),
        ],
        1,
    );
    let message = out["error"]["message"].as_str().expect("message");
    assert!(message.contains("not the network you meant"), "{message}");
    assert!(!home.exists());
    // Joining flags without anything to join.
    let out = run(&home, &["init", "--type", "thin"], 1);
    let message = out["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("--join URL or --genesis FILE"),
        "{message}"
    );
    assert!(!home.exists());

    // The document as it is: a home that holds the network's block 0, and checks.
    let joined = run(
        &home,
        &["init", "--genesis", file.to_str().expect("utf-8")],
        0,
    );
    let original = run(&source, &["chain", "info"], 0);
    let copy = run(&home, &["chain", "info"], 0);
    assert_eq!(joined["block0_hash"], copy["head_hash"], "{copy}");
    assert_eq!(copy["height"], 0, "{copy}");
    assert_eq!(original["chain_id"], copy["chain_id"], "{copy}");
    run(&home, &["chain", "verify"], 0);
}

/// The producer of the block at `height` on the node at `api`.
fn producer_at(api: &str, height: u64) -> String {
    let (code, block) = http("GET", &format!("{api}/v1/blocks/{height}"), None, b"");
    assert_eq!(code, 200, "{block}");
    block["producer"].as_str().expect("producer").to_string()
}

/// A signed transaction replaces a validator with a newcomer from a later height on: every node
/// switches at that block, the blocks after it are sealed by the new validators only (the
/// newcomer among them), the retired validator keeps following, and a validator that was down
/// during the switch catches up across it (checking each epoch's certificates) and votes again.
#[test]
fn the_validators_change_by_transaction_at_a_later_height() {
    let _network = one_network_at_a_time();
    let mut cluster = Cluster::up(&["--nodes", "4"]);
    let home0 = cluster.members[0].home.clone();
    let api0 = cluster.members[0].api.clone();
    let org = cluster.org();
    let keys: Vec<String> = (0..4).map(|index| cluster.key(index)).collect();

    // A newcomer joins as a follower; validator 3, to be retired, is admitted as a peer so that
    // the network keeps its connections once it no longer votes.
    let newcomer_home = cluster._dir.path().join("newcomer");
    let joined = run(
        &newcomer_home,
        &["init", "--join", &api0, "--api", "127.0.0.1:0"],
        0,
    );
    let newcomer_key = joined["key"].as_str().expect("key").to_string();
    for (key, name) in [(&newcomer_key, "newcomer"), (&keys[3], "retired")] {
        run(
            &home0,
            &["net", "admit", key, "--name", name, "--node", &api0],
            0,
        );
    }
    let newcomer = Node::start(&newcomer_home);

    // A change must start after the block holding it.
    let refused = run(
        &home0,
        &[
            "net",
            "validators",
            &keys[0],
            "--from-height",
            "1",
            "--node",
            &api0,
        ],
        3,
    );
    assert_eq!(refused["error"]["rule"], "chain", "{refused}");
    let refused = run(
        &home0,
        &["net", "validators", "not-a-key", "--node", &api0],
        1,
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("not-a-key")),
        "{refused}"
    );

    // A change far ahead, withdrawn through the node: what stays scheduled at its height is the
    // validators in effect (and the change below, at an earlier height, replaces even that).
    let far = (cluster.height(0) + 100_000).to_string();
    let mut args = vec!["net", "validators"];
    args.extend([&keys[0], &keys[1], &keys[2], &newcomer_key].map(String::as_str));
    args.extend(["--from-height", &far, "--node", &api0]);
    run(&home0, &args, 0);
    wait_net_status(&api0, "node 0 knows of the far change", |status| {
        status["next_validators"]["validators"]
            .as_array()
            .is_some_and(|next| next.contains(&json!(newcomer_key)))
    });
    run(
        &home0,
        &["net", "validators", "--withdraw", "--node", &api0],
        0,
    );
    let chain = http("GET", &format!("{api0}/v1/chain"), None, b"").1;
    assert_eq!(
        chain["scheduled"].as_array().map(Vec::len),
        Some(1),
        "{chain}"
    );
    assert_eq!(
        chain["scheduled"][0]["from_height"].to_string(),
        far,
        "{chain}"
    );
    assert_eq!(
        chain["scheduled"][0]["validators"], chain["validators"],
        "{chain}"
    );
    let next = wait_net_status(&api0, "node 0 sees the change withdrawn", |status| {
        status["next_validators"]["validators"]
            .as_array()
            .is_some_and(|next| !next.contains(&json!(newcomer_key)))
    });
    let sorted = |keys: &Value| {
        let mut keys: Vec<String> = keys
            .as_array()
            .expect("keys")
            .iter()
            .map(|key| key.as_str().expect("key").to_string())
            .collect();
        keys.sort();
        keys
    };
    // The same set (net status lists this epoch's in the engine's order, by key).
    assert_eq!(
        sorted(&next["next_validators"]["validators"]),
        sorted(&next["validators"]),
        "{next}"
    );

    // Validator 1 is down while the change takes effect.
    cluster.kill(1);
    let from = cluster.height(0) + 20;
    let new_set = [&keys[0], &keys[1], &keys[2], &newcomer_key];
    let mut args = vec!["net", "validators"];
    args.extend(new_set.iter().map(|key| key.as_str()));
    let from_arg = from.to_string();
    args.extend(["--from-height", &from_arg, "--node", &api0]);
    let scheduled = run(&home0, &args, 0);
    assert!(
        scheduled["height"].as_u64().expect("height") < from,
        "{scheduled}"
    );
    let status = wait_net_status(&api0, "node 0 knows of the change", |status| {
        status["next_validators"]["from_height"] == from || status["epoch"] == 1
    });
    assert_eq!(
        status["validators"].as_array().map(Vec::len),
        Some(4),
        "{status}"
    );

    // Past the switch: the newcomer votes, the retired validator follows.
    let newcomer_status = wait_net_status(&newcomer.url, "the newcomer votes", |status| {
        status["epoch"] == 1
            && status["validator"] == true
            && status["height"].as_u64() >= Some(from + 2)
    });
    let validators = newcomer_status["validators"]
        .as_array()
        .expect("validators");
    assert_eq!(validators.len(), 4, "{newcomer_status}");
    assert!(
        validators
            .iter()
            .all(|key| new_set.iter().any(|new| *key == new.as_str()))
    );
    let retired = wait_net_status(
        &cluster.members[3].api,
        "the retired node follows",
        |status| status["epoch"] == 1 && status["height"].as_u64() >= Some(from + 2),
    );
    assert_eq!(retired["validator"], false, "{retired}");

    // Every block before the switch is sealed by a genesis validator, every one from it on by a
    // new one; the newcomer leads views in turn and seals some.
    let started = Instant::now();
    let mut height = 1;
    let mut newcomer_sealed = false;
    while !newcomer_sealed {
        assert!(started.elapsed() < DEADLINE, "the newcomer sealed no block");
        let top = cluster.height(0);
        while height <= top {
            let producer = producer_at(&api0, height);
            if height < from {
                assert!(
                    keys.contains(&producer),
                    "block {height} sealed by {producer}"
                );
            } else {
                assert!(
                    new_set.iter().any(|key| **key == producer),
                    "block {height}, after the switch, sealed by {producer}"
                );
                newcomer_sealed |= producer == newcomer_key;
            }
            height += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // A submission to the retired validator reaches the new ones.
    let after = submit(&cluster, &cluster.members[3].api, &home0, &org, "after", 10);
    assert!(after.iter().all(|(_, height)| *height >= from), "{after:?}");

    // Their proofs are final by the new validators' certificate, reached through the change.
    crate::finality::network_proofs_are_final_by_certificate(
        &home0,
        &api0,
        &org,
        &after[0].0,
        cluster._dir.path(),
    );
    // Its checkpoints count once a quorum of the new validators (0, 2 and the newcomer: 1 is
    // down) signed them.
    crate::finality::network_checkpoints_need_a_quorum(
        &home0,
        &[&api0, &cluster.members[2].api, &newcomer.url],
        &after[0].0,
        cluster._dir.path(),
    );

    // The validator that was down catches up across the switch and votes in the new epoch:
    // with the newcomer killed, validators 0, 1 and 2 are the quorum.
    cluster.restart(1);
    let top = after.iter().map(|(_, height)| *height).max().expect("some");
    cluster.converge(&[0, 1, 2, 3], top);
    // It dials the other three validators of its epoch and its seed node 3 (retired, still a
    // seed), and hears from the validators again.
    wait_net_status(&cluster.members[1].api, "node 1 votes again", |status| {
        status["epoch"] == 1
            && status["validator"] == true
            && status["dialed"] == 4
            && status["dialed_connected"].as_u64() >= Some(3)
    });
    newcomer.kill();
    let last = submit(
        &cluster,
        &cluster.members[1].api,
        &home0,
        &org,
        "quorum",
        10,
    );
    let top = last.iter().map(|(_, height)| *height).max().expect("some");
    cluster.converge(&[0, 1, 2, 3], top);
}
