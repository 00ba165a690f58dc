//! Three companies' networks that keep each other honest (docs/anchoring.md), made by `weft
//! cluster up --networks 3 --nodes 4,1,1`: A is a network of four validators, B and C single
//! nodes; each network's first validator witnesses the others, publishes to them (A's checkpoints
//! signed by a quorum of its four) and anchors them. A transaction of A is proven with the
//! anchors B and C hold. Then A rewrites its history from a copy of its homes: B's and C's
//! witnesses refuse it, their chains do not anchor it, both record the evidence, which checks
//! offline — and the proof made before the rewrite still does.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cluster::wait_for;
use crate::common::node::http;
use crate::common::{copy_dir, run};

/// The networks, stopped when the test ends however it ends.
struct Networks {
    dir: PathBuf,
}

impl Drop for Networks {
    fn drop(&mut self) {
        if let Ok(networks) = weft_client::networks::read(&self.dir) {
            for network in networks {
                if std::thread::panicking() {
                    for node in ["node0", "node1"] {
                        let log = std::fs::read_to_string(network.join(node).join("node.log"))
                            .unwrap_or_default();
                        let lines: Vec<&str> = log.lines().collect();
                        eprintln!("---- {} {node} (last 30 lines)", network.display());
                        for line in &lines[lines.len().saturating_sub(30)..] {
                            eprintln!("{line}");
                        }
                    }
                }
                let _ = weft_client::cluster::down(&network);
            }
        }
    }
}

fn get(url: &str) -> Value {
    let (code, body) = http("GET", url, None, b"");
    assert_eq!(code, 200, "{url}: {body}");
    body
}

/// What node `api` anchored of chain `chain`.
fn anchored_of(api: &str, chain: &str) -> Value {
    let anchors = get(&format!("{api}/v1/anchors"));
    anchors["chains"]
        .as_array()
        .expect("chains")
        .iter()
        .find(|entry| entry["chain"] == chain)
        .cloned()
        .unwrap_or(Value::Null)
}

fn path(path: &Path) -> &str {
    path.to_str().expect("utf-8")
}

/// Starts every node of network `dir` (after `cluster down`, or its homes replaced).
fn start(dir: &Path, nodes: usize) {
    for node in 0..nodes {
        run(
            dir,
            &[
                "cluster",
                "restart",
                "--dir",
                path(dir),
                "--node",
                &node.to_string(),
            ],
            0,
        );
    }
}

#[test]
fn three_companies_entangled_catch_a_four_validator_network_rewriting_its_history() {
    let _one = crate::one_network_at_a_time();
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().join("companies");
    let up = run(
        temp.path(),
        &[
            "cluster",
            "up",
            "--networks",
            "3",
            "--nodes",
            "4,1,1",
            "--dir",
            path(&dir),
        ],
        0,
    );
    let networks = Networks { dir: dir.clone() };
    let api = |network: usize| {
        up["networks"][network]["nodes"][0]["api"]
            .as_str()
            .expect("api")
            .to_string()
    };
    let chain = |network: usize| {
        up["networks"][network]["chain"]
            .as_str()
            .expect("chain")
            .to_string()
    };
    let (a, b, c) = (api(0), api(1), api(2));
    assert_eq!(up["networks"][0]["nodes"].as_array().map(Vec::len), Some(4));
    let (dir_a, home_a, home_b) = (dir.join("a"), dir.join("a/node0"), dir.join("b/node0"));

    // Each network witnesses and anchors the other two; A's checkpoints, signed by a quorum of
    // its four validators, are cosigned by B's and C's witnesses.
    let size_at = |node: &str, of: &str| anchored_of(node, of)["size"].as_u64().unwrap_or(0);
    wait_for(|| {
        let sizes = [
            size_at(&b, &chain(0)),
            size_at(&c, &chain(0)),
            size_at(&a, &chain(1)),
            size_at(&a, &chain(2)),
            size_at(&b, &chain(2)),
            size_at(&c, &chain(1)),
        ];
        let witnessed = get(&format!("{a}/v1/publish"))["witnessed_size"]
            .as_u64()
            .unwrap_or(0);
        (sizes.iter().all(|size| *size >= 3) && witnessed >= 3)
            .then_some(())
            .ok_or_else(|| format!("anchored {sizes:?}, A witnessed {witnessed}"))
    });
    let status = run(&dir, &["cluster", "status", "--dir", path(&dir)], 0);
    assert_eq!(status["healthy"], true, "{status}");

    // A copy of A's four homes, as a company that means to rewrite keeps one.
    run(&dir, &["cluster", "down", "--dir", path(&dir_a)], 0);
    let backup = dir.join("a-backup");
    copy_dir(&dir_a, &backup);
    start(&dir_a, 4);
    let backup_size = get(&format!("{a}/v1/chain"))["height"]
        .as_u64()
        .expect("height")
        + 1;

    // A transaction of A (its anchor of B) once B and C have anchored past it, proven with
    // their anchors from A's home: the [anchor] chains and [publish] witnesses of its config.
    let tx = wait_for(|| {
        let entry = anchored_of(&a, &chain(1));
        let id = entry["anchor_tx"].as_str().unwrap_or_default().to_string();
        let (code, answer) = http("GET", &format!("{a}/v1/transactions/{id}"), None, b"");
        let height = answer["height"].as_u64().unwrap_or(0);
        (code == 200 && height >= backup_size)
            .then_some((id, height))
            .ok_or_else(|| format!("{entry}"))
    });
    wait_for(|| {
        let (b_size, c_size) = (size_at(&b, &chain(0)), size_at(&c, &chain(0)));
        (b_size > tx.1 + 2 && c_size > tx.1 + 2)
            .then_some(())
            .ok_or_else(|| {
                format!(
                    "B anchored {b_size}, C {c_size} of A; the tx is in {}",
                    tx.1
                )
            })
    });
    let bundle = dir.join("anchored.json");
    let built = run(
        &home_a,
        &[
            "--node",
            &a,
            "proof",
            &tx.0,
            "--anchored",
            "--out",
            path(&bundle),
        ],
        0,
    );
    assert_eq!(
        built["anchors"].as_array().map(Vec::len),
        Some(2),
        "{built}"
    );
    assert_eq!(built["checkpoint"]["validators"], 4, "{built}");
    assert_eq!(
        built["witnesses"]["cosigners"].as_array().map(Vec::len),
        Some(2),
        "{built}"
    );
    let anchored_before = size_at(&b, &chain(0));

    // A rewrites: its four nodes start again from the copy and sign another history past what
    // B and C anchored.
    run(&dir, &["cluster", "down", "--dir", path(&dir_a)], 0);
    std::fs::rename(&dir_a, dir.join("a-abandoned")).expect("rename");
    std::fs::rename(&backup, &dir_a).expect("rename");
    start(&dir_a, 4);
    // B and C refuse to witness it, do not anchor it, and record the evidence.
    for (node, witness_index) in [(&b, 0), (&c, 1)] {
        let entry = wait_for(|| {
            let entry = anchored_of(node, &chain(0));
            if entry["evidence"].as_array().map(Vec::len) == Some(1) {
                Ok(entry)
            } else {
                Err(format!("{node}: {entry}"))
            }
        });
        assert!(
            entry["size"].as_u64() >= Some(anchored_before),
            "nothing anchored was lost: {entry}"
        );
        let refused = wait_for(|| {
            let publish = get(&format!("{a}/v1/publish"));
            let error = publish["witnesses"][witness_index]["last_error"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (error.starts_with("409") || error.starts_with("422"))
                .then_some(error)
                .ok_or_else(|| format!("{publish}"))
        });
        assert!(!refused.is_empty());
    }
    let caught = run(&dir, &["cluster", "status", "--dir", path(&dir)], 4);
    assert_eq!(caught["healthy"], false, "{caught}");

    // The evidence, proven on B and checked against A's trust root, and checked offline.
    let a_root = home_b.join("others").join(format!("{}.json", chain(0)));
    let b_root = dir.join("b.trust.json");
    run(&home_b, &["trust", "export", "--out", path(&b_root)], 0);
    let evidence_file = dir.join("evidence.json");
    let evidence = run(
        &home_b,
        &[
            "--node",
            &b,
            "anchor",
            "evidence",
            "--out",
            path(&evidence_file),
            "--trust",
            path(&a_root),
            "--trust",
            path(&b_root),
        ],
        0,
    );
    assert_eq!(
        evidence["evidence"].as_array().map(Vec::len),
        Some(1),
        "{evidence}"
    );
    let c_own = dir.join("c.trust.json");
    run(
        &dir.join("c/node0"),
        &["trust", "export", "--out", path(&c_own)],
        0,
    );
    drop(networks);
    let third = dir.join("third-party");
    std::fs::create_dir_all(&third).expect("mkdir");
    let verified = run(
        &third,
        &[
            "anchor",
            "verify",
            path(&evidence_file),
            "--trust",
            path(&a_root),
        ],
        0,
    );
    assert_eq!(verified["valid"], true, "{verified}");
    // The proof made before the rewrite still holds: the anchors are on B's and C's chains.
    let proof = run(
        &third,
        &[
            "proof",
            "verify",
            path(&bundle),
            "--trust",
            path(&a_root),
            "--trust",
            path(&b_root),
            "--trust",
            path(&c_own),
        ],
        0,
    );
    assert_eq!(proof["valid"], true, "{proof}");
}
