//! A thin node keeps what its filter selects and fetches the rest from its peers.

use crate::cluster::Cluster;
use crate::common::node::http;
use crate::common::run;
use crate::{ARCHIVE, THIN};

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
