//! A thin node keeps what its filter selects and fetches the rest from its peers.

use crate::cluster::{Cluster, submit};
use crate::common::node::http;
use crate::common::run;
use crate::{ARCHIVE, THIN, THIN2};

/// The thin node holds Acme's transactions whole and Beta's stripped; asked for a stripped one
/// (or to verify a file only a stripped one claims) it fetches the whole transaction with its
/// inclusion proof from a peer.
pub(crate) fn thin_node_keeps_what_its_filter_selects_and_fetches_the_rest(
    cluster: &Cluster,
    kept: &[(String, u64)],
    stripped: &[(String, u64)],
) {
    let thin = &cluster.members[THIN];
    let archive = &cluster.members[ARCHIVE];
    let get = |api: &str, path: &str| {
        let (code, body) = http("GET", &format!("{api}{path}"), None, b"");
        assert_eq!(code, 200, "{path}: {body}");
        body
    };
    let whole = get(&thin.api, &format!("/v1/transactions/{}", kept[0].0));
    assert_eq!(whole["stripped"], false, "{whole}");
    assert!(whole.get("fetched_from").is_none(), "{whole}");
    for (id, _) in stripped.iter().take(3) {
        let here = get(&thin.api, &format!("/v1/transactions/{id}"));
        assert_eq!(here["stripped"], true, "{here}");
        assert!(
            here["fetched_from"].is_string(),
            "fetched from a peer: {here}"
        );
        let there = get(&archive.api, &format!("/v1/transactions/{id}"));
        assert_eq!(
            there["stripped"], false,
            "the archive keeps everything: {there}"
        );
        assert_eq!(
            here["payload"], there["payload"],
            "the same whole transaction"
        );
        // The same proof, but for its certificate: each node keeps the finalization it saw,
        // signed by a quorum that need not be the same validators.
        let without_certificate = |proof: &serde_json::Value| {
            let mut proof = proof.clone();
            proof["finality"]
                .as_object_mut()
                .expect("a network proof's finality")
                .remove("certificate");
            proof
        };
        assert_eq!(
            without_certificate(&here["proof"]),
            without_certificate(&there["proof"]),
            "the same proof"
        );
    }
    // `weft verify` through the thin node, of a file only a stripped claim names: the verdict
    // and the history are the archive's.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("beta-0");
    std::fs::write(&file, b"beta-0").expect("file");
    let file = file.to_str().expect("utf-8");
    let on_thin = run(&thin.home, &["verify", file, "--node", &thin.api], 0);
    let on_archive = run(&thin.home, &["verify", file, "--node", &archive.api], 0);
    assert_eq!(on_thin["verdict"], "valid", "{on_thin}");
    assert_eq!(on_thin["owner"], on_archive["owner"]);
    let history = on_thin["history"].as_array().expect("history");
    assert_eq!(history.len(), 1, "{on_thin}");
    assert!(history[0]["fetched_from"].is_string(), "{on_thin}");
    assert_eq!(history[0]["issuer"], on_archive["history"][0]["issuer"]);
    assert!(
        on_thin.get("stripped").is_none(),
        "nothing left stripped: {on_thin}"
    );
    // A proof out of the thin node verifies offline like any other.
    let proof = dir.path().join("proof.json");
    run(
        &thin.home,
        &[
            "proof",
            &stripped[0].0,
            "--out",
            proof.to_str().expect("utf-8"),
            "--node",
            &thin.api,
        ],
        0,
    );
    let checked = run(
        &thin.home,
        &["proof", "verify", proof.to_str().expect("utf-8")],
        0,
    );
    assert!(checked.to_string().contains(&stripped[0].0), "{checked}");
}

/// The second thin node, switched to follow on proofs (`node.follow = "proofs"`), takes the
/// blocks after the switch on their certificates with filtered bodies and keeps no rule state:
/// asked a rule question it says so (409); asked about an asset claimed after the switch, whose
/// transactions it never held whole, it answers from a peer's history that it checked against
/// its own state roots, and `weft verify` through it checks every answer again against the
/// user's trust root.
pub(crate) fn thin_node_on_proofs_answers_from_histories_it_checks(
    cluster: &mut Cluster,
    home0: &std::path::Path,
    org: &str,
) {
    let config_path = cluster.members[THIN2].home.join("config.toml");
    let config = std::fs::read_to_string(&config_path).expect("config");
    assert!(config.contains("follow = \"rules\""), "{config}");
    std::fs::write(
        &config_path,
        config.replace("follow = \"rules\"", "follow = \"proofs\""),
    )
    .expect("config written");
    cluster.restart(THIN2);
    let api0 = cluster.members[0].api.clone();
    let claimed = submit(cluster, &api0, home0, org, "proofs", 10);
    let top = claimed
        .iter()
        .map(|(_, height)| *height)
        .max()
        .expect("some");
    cluster.converge(&[0, THIN2], top);
    let thin = &cluster.members[THIN2];
    // A rule question: refused, with why, not answered from tables it no longer keeps.
    let (code, body) = http(
        "GET",
        &format!("{}/v1/resources/{org}", thin.api),
        None,
        b"",
    );
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["error"]["code"], "not_kept", "{body}");
    // The claim is stored stripped: its body never came whole.
    let (code, tx) = http(
        "GET",
        &format!("{}/v1/transactions/{}", thin.api, claimed[0].0),
        None,
        b"",
    );
    assert_eq!(code, 200, "{tx}");
    assert_eq!(tx["stripped"], true, "{tx}");
    // Verified through it: valid for the owner, the history complete by a state root.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("proofs-0");
    std::fs::write(&file, b"proofs-0").expect("file");
    let file = file.to_str().expect("utf-8");
    let verdict = run(
        &thin.home,
        &["verify", file, "--as", org, "--node", &thin.api],
        0,
    );
    assert_eq!(verdict["verdict"], "valid", "{verdict}");
    assert_eq!(verdict["checked"]["complete"], true, "{verdict}");
    let history = verdict["history"].as_array().expect("history");
    assert_eq!(history.len(), 1, "{verdict}");
    assert!(history[0]["fetched_from"].is_string(), "{verdict}");
    // `weft history` through it: the same history, checked complete.
    let history = run(&thin.home, &["history", file, "--node", &thin.api], 0);
    assert_eq!(history["checked"]["complete"], true, "{history}");
    assert_eq!(
        history["history"].as_array().map(Vec::len),
        Some(1),
        "{history}"
    );
    // The node's own answer names the peer and carries the proof the client checked.
    let (code, report) = http(
        "GET",
        &format!(
            "{}/v1/assets/{}",
            thin.api,
            verdict["fingerprint"].as_str().expect("fingerprint")
        ),
        None,
        b"",
    );
    assert_eq!(code, 200, "{report}");
    assert!(report["state"]["history_proof"].is_string(), "{report}");
    // A file nobody claimed: unknown, and proven absent.
    let unknown = dir.path().join("never");
    std::fs::write(&unknown, b"never claimed").expect("file");
    let verdict = run(
        &thin.home,
        &[
            "verify",
            unknown.to_str().expect("utf-8"),
            "--node",
            &thin.api,
        ],
        4,
    );
    assert_eq!(verdict["verdict"], "unknown", "{verdict}");
    assert_eq!(verdict["checked"]["complete"], true, "{verdict}");
}
