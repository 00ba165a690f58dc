//! Two companies' chains entangled (docs/anchoring.md), all real `weft node run` processes on
//! loopback: A publishes its checkpoints to a witness; B anchors A's checkpoints on its own chain
//! as A grows. Then A rewrites its history from a block B anchored past and shows the new head:
//! the witness refuses it, B's rules do not anchor it, B records the evidence, and the evidence
//! checks offline against A's trust root — and a tampered copy does not.

use std::path::Path;

use serde_json::Value;

mod common;
use common::node::*;
use common::{copy_dir, run};

fn get_json(url: &str) -> Value {
    let (code, body) = http("GET", url, None, b"");
    assert_eq!(code, 200, "{url}: {body}");
    body
}

fn write(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, name).expect("write");
    path.to_str().expect("utf-8").to_string()
}

/// Replaces the first `from` after `[section]` in `home`'s config with `to`, for each pair.
fn configure(home: &Path, section: &str, pairs: &[(&str, &str)]) {
    let path = home.join("config.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let header = format!("[{section}]\n");
    let (before, after) = text.split_once(&header).expect("the section");
    let mut after = after.to_string();
    for (from, to) in pairs {
        assert!(after.contains(from), "{from} in [{section}]");
        after = after.replacen(from, to, 1);
    }
    std::fs::write(&path, format!("{before}{header}{after}")).expect("config");
}

/// Starts W as a witness of A (whose trust root W holds as a.trust.json) and has A publish to
/// it every 100 ms: W's node and its verifier key.
fn witness_of_a(home_w: &Path, home_a: &Path) -> (Node, String) {
    configure(
        home_w,
        "witness",
        &[
            ("enabled = false", "enabled = true"),
            ("name = \"\"", "name = \"witness.example/w\""),
            ("origins = []", "origins = [\"a.trust.json\"]"),
        ],
    );
    let w = Node::start(home_w);
    let w_key = get_json(&format!("{}/v1/witness", w.url))["verifier_key"]
        .as_str()
        .expect("key")
        .to_string();
    configure(
        home_a,
        "publish",
        &[
            ("enabled = false", "enabled = true"),
            (
                "witnesses = []",
                &format!("witnesses = [{{ url = \"{}\", key = \"{w_key}\" }}]", w.url),
            ),
            ("interval_ms = 1000", "interval_ms = 100"),
        ],
    );
    (w, w_key)
}

/// B anchors A's chain at `url`, every 100 ms.
fn anchor_to(home_b: &Path, url: &str) {
    let path = home_b.join("config.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let (before, after) = text.split_once("[anchor]\n").expect("[anchor]");
    let after = after
        .replacen("enabled = false", "enabled = true", 1)
        .replacen(
            "\nchains = [",
            &format!("\nchains = [{{ trust = \"a.trust.json\", urls = [\"{url}\"] }}",),
            1,
        )
        .replacen("interval_ms = 1000", "interval_ms = 100", 1);
    std::fs::write(&path, format!("{before}[anchor]\n{after}")).expect("config");
}

/// Points B's anchoring from `old` to `new` (a node of A restarted on another port).
fn repoint(home_b: &Path, old: &str, new: &str) {
    let path = home_b.join("config.toml");
    let config = std::fs::read_to_string(&path).expect("config");
    std::fs::write(&path, config.replace(old, new)).expect("config");
}

fn size_of(url: &str) -> u64 {
    get_json(&format!("{url}/v1/chain"))["height"]
        .as_u64()
        .expect("height")
        + 1
}

fn anchored(b: &Node) -> Value {
    get_json(&format!("{}/v1/anchors", b.url))["chains"][0].clone()
}

#[test]
fn a_chain_that_rewrites_what_another_anchored_is_caught_and_the_evidence_checks_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home_a = dir.path().join("a");
    let home_b = dir.path().join("b");
    let home_w = dir.path().join("w");
    run(&home_a, &["init", "--chain-id", "company-a"], 0);
    run(&home_b, &["init", "--chain-id", "company-b"], 0);
    run(&home_w, &["init", "--chain-id", "company-w"], 0);
    let designer = org(&home_a, "Designer");
    let a_root = dir.path().join("a.trust.json");
    let b_root = dir.path().join("b.trust.json");
    run(
        &home_a,
        &["trust", "export", "--out", a_root.to_str().expect("utf-8")],
        0,
    );
    run(
        &home_b,
        &["trust", "export", "--out", b_root.to_str().expect("utf-8")],
        0,
    );
    for home in [&home_b, &home_w] {
        std::fs::copy(&a_root, home.join("a.trust.json")).expect("copy");
    }

    // W witnesses A; A publishes to W.
    let (_w, _) = witness_of_a(&home_w, &home_a);
    let a = Node::start(&home_a);
    for i in 0..3 {
        a.cli(
            &[
                "claim",
                "--as",
                &designer,
                &write(dir.path(), &format!("a-{i}")),
            ],
            0,
        );
    }

    // B registers A and anchors it as it grows.
    anchor_to(&home_b, &a.url);
    let b = Node::start(&home_b);
    let caught_up = |b: &Node, size: u64| {
        wait_until(60, || {
            let chain = anchored(b);
            (chain["size"].as_u64() >= Some(size))
                .then_some(chain["size"].as_u64().unwrap_or(0))
                .ok_or_else(|| format!("{chain}"))
        })
    };
    let first = caught_up(&b, size_of(&a.url));
    let anchors = get_json(&format!("{}/v1/anchors", b.url));
    assert_eq!(anchors["chains"][0]["chain"], "company-a", "{anchors}");
    assert!(anchors["anchoring"][0]["last_error"].is_null(), "{anchors}");

    // A's home as it is now: what a rewrite starts from.
    let old_url = a.url.clone();
    a.terminate();
    b.terminate();
    let fork = dir.path().join("a-fork");
    copy_dir(&home_a, &fork);
    let a = Node::start(&home_a);
    repoint(&home_b, &old_url, &a.url);
    let b = Node::start(&home_b);
    for i in 3..6 {
        a.cli(
            &[
                "claim",
                "--as",
                &designer,
                &write(dir.path(), &format!("a-{i}")),
            ],
            0,
        );
    }
    let before = caught_up(&b, size_of(&a.url));
    assert!(before > first);
    let status = run(&home_b, &["--json", "anchor", "status"], 0);
    assert!(status["publishing"].is_null(), "{status}");
    assert_eq!(status["anchors"]["chains"][0]["size"], before, "{status}");
    let no_evidence = run(
        &home_b,
        &[
            "--json",
            "anchor",
            "evidence",
            "--trust",
            a_root.to_str().expect("utf-8"),
            "--trust",
            b_root.to_str().expect("utf-8"),
        ],
        0,
    );
    assert_eq!(
        no_evidence["evidence"],
        Value::Array(vec![]),
        "{no_evidence}"
    );
    let old_url = a.url.clone();
    a.terminate();

    // A rewrites: from the copy, other claims, past the size B anchored.
    let rewritten = Node::start(&fork);
    for i in 0..8 {
        rewritten.cli(
            &[
                "claim",
                "--as",
                &designer,
                &write(dir.path(), &format!("r-{i}")),
            ],
            0,
        );
    }
    // The witness refuses the rewritten history (what A's publisher reports).
    wait_until(60, || {
        let status = get_json(&format!("{}/v1/publish", rewritten.url));
        let error = status["witnesses"][0]["last_error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (error.starts_with("409") || error.starts_with("422"))
            .then_some(())
            .ok_or_else(|| format!("{status}"))
    });
    // B is pointed at the rewritten chain: it does not anchor it, and records the evidence.
    b.terminate();
    repoint(&home_b, &old_url, &rewritten.url);
    let b = Node::start(&home_b);
    let chain = wait_until(60, || {
        let anchors = get_json(&format!("{}/v1/anchors", b.url));
        let chain = anchors["chains"][0].clone();
        (chain["evidence"].as_array().map(Vec::len) == Some(1))
            .then_some(chain)
            .ok_or_else(|| format!("{anchors}"))
    });
    assert_eq!(
        chain["size"], before,
        "nothing of the rewrite anchored: {chain}"
    );

    // The evidence: proven on B, checked against A's root, written out…
    let out = dir.path().join("evidence.json");
    let trust = [
        "--trust",
        a_root.to_str().expect("utf-8"),
        "--trust",
        b_root.to_str().expect("utf-8"),
    ];
    let mut args = vec![
        "--json",
        "anchor",
        "evidence",
        "--out",
        out.to_str().expect("utf-8"),
    ];
    args.extend(trust);
    let evidence = run(&home_b, &args, 0);
    assert_eq!(
        evidence["evidence"][0]["checked"]["size"], before,
        "{evidence}"
    );
    // …and checked offline by anyone holding A's trust root, with no node running.
    drop(b);
    drop(rewritten);
    let third = dir.path().join("third-party");
    std::fs::create_dir_all(&third).expect("mkdir");
    let verified = run(
        &third,
        &[
            "--json",
            "anchor",
            "verify",
            out.to_str().expect("utf-8"),
            "--trust",
            a_root.to_str().expect("utf-8"),
        ],
        0,
    );
    assert_eq!(verified["valid"], true, "{verified}");
    // A tampered copy is refused: one root changed.
    let text = std::fs::read_to_string(&out).expect("evidence");
    let pieces: Value = serde_json::from_str(&text).expect("json");
    let second = pieces[0]["second"].as_str().expect("note");
    let root_line = second.lines().nth(2).expect("root line");
    let mut changed = root_line.to_string();
    let swapped = if changed.starts_with('A') { "B" } else { "A" };
    changed.replace_range(0..1, swapped);
    std::fs::write(&out, text.replacen(root_line, &changed, 1)).expect("write");
    run(
        &third,
        &[
            "--json",
            "anchor",
            "verify",
            out.to_str().expect("utf-8"),
            "--trust",
            a_root.to_str().expect("utf-8"),
        ],
        4,
    );
}

/// C anchors A's chain at `url`, comparing with what the `peers` anchored.
fn anchor_with_peers(home: &Path, url: &str, peers: &[&str]) {
    let path = home.join("config.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let (before, after) = text.split_once("[anchor]\n").expect("[anchor]");
    let peers: Vec<String> = peers.iter().map(|peer| format!("\"{peer}\"")).collect();
    let after = after
        .replacen("enabled = false", "enabled = true", 1)
        .replacen(
            "\nchains = [",
            &format!(
                "\nchains = [{{ trust = \"a.trust.json\", urls = [\"{url}\"], peers = [{}] }}",
                peers.join(", ")
            ),
            1,
        )
        .replacen("interval_ms = 1000", "interval_ms = 100", 1);
    std::fs::write(&path, format!("{before}[anchor]\n{after}")).expect("config");
}

#[test]
fn a_split_view_is_caught_once_the_companies_compare_what_they_anchored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home_a = dir.path().join("a");
    run(&home_a, &["init", "--chain-id", "company-a"], 0);
    let designer = org(&home_a, "Designer");
    let a_root = dir.path().join("a.trust.json");
    let a_root_arg = a_root.to_str().expect("utf-8");
    run(&home_a, &["trust", "export", "--out", a_root_arg], 0);
    // A keeps two histories from here on: one it shows B, one it shows C.
    let shown_c = dir.path().join("a-shown-to-c");
    copy_dir(&home_a, &shown_c);
    let to_b = Node::start(&home_a);
    let to_c = Node::start(&shown_c);
    for i in 0..3 {
        to_b.cli(
            &[
                "claim",
                "--as",
                &designer,
                &write(dir.path(), &format!("b-{i}")),
            ],
            0,
        );
        to_c.cli(
            &[
                "claim",
                "--as",
                &designer,
                &write(dir.path(), &format!("c-{i}")),
            ],
            0,
        );
    }
    assert_eq!(size_of(&to_b.url), size_of(&to_c.url));

    // B and C each anchor the history A shows them, and compare what they anchored.
    let home_b = dir.path().join("b");
    let home_c = dir.path().join("c");
    for (home, name) in [(&home_b, "company-b"), (&home_c, "company-c")] {
        run(home, &["init", "--chain-id", name], 0);
        std::fs::copy(&a_root, home.join("a.trust.json")).expect("copy");
    }
    let (b_api, c_api) = (free_port(), free_port());
    anchor_with_peers(&home_b, &to_b.url, &[&format!("http://{c_api}")]);
    anchor_with_peers(&home_c, &to_c.url, &[&format!("http://{b_api}")]);
    let b = Node::start_on(&home_b, &b_api);
    let c = Node::start_on(&home_c, &c_api);
    // Each catches it: two checkpoints of A of one size, different roots, signed by A.
    for node in [&b, &c] {
        let chain = wait_until(60, || {
            let anchors = get_json(&format!("{}/v1/anchors", node.url));
            let chain = anchors["chains"][0].clone();
            (chain["evidence"].as_array().map(Vec::len) == Some(1))
                .then_some(chain)
                .ok_or_else(|| format!("{anchors}"))
        });
        assert!(chain["size"].as_u64() > Some(0), "{chain}");
    }
    // The evidence on C's chain checks against A's trust root.
    let out = dir.path().join("split.json");
    let c_root = dir.path().join("c.trust.json");
    run(
        &home_c,
        &["trust", "export", "--out", c_root.to_str().expect("utf-8")],
        0,
    );
    let evidence = c.cli(
        &[
            "--json",
            "anchor",
            "evidence",
            "--out",
            out.to_str().expect("utf-8"),
            "--trust",
            a_root_arg,
            "--trust",
            c_root.to_str().expect("utf-8"),
        ],
        0,
    );
    assert_eq!(
        evidence["evidence"].as_array().map(Vec::len),
        Some(1),
        "{evidence}"
    );
    let verified = run(
        &dir.path().join("third-party"),
        &[
            "--json",
            "anchor",
            "verify",
            out.to_str().expect("utf-8"),
            "--trust",
            a_root_arg,
        ],
        0,
    );
    assert_eq!(verified["valid"], true, "{verified}");
}

#[test]
fn a_transaction_anchored_on_two_other_chains_is_proven_to_a_third_party_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_string();
    let (home_a, home_b, home_c, home_w) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
        dir.path().join("w"),
    );
    for (home, name) in [
        (&home_a, "company-a"),
        (&home_b, "company-b"),
        (&home_c, "company-c"),
        (&home_w, "company-w"),
    ] {
        run(home, &["init", "--chain-id", name], 0);
        let root = path(&format!("{}.trust.json", &name[8..]));
        run(home, &["trust", "export", "--out", &root], 0);
    }
    for home in [&home_b, &home_c, &home_w] {
        std::fs::copy(path("a.trust.json"), home.join("a.trust.json")).expect("copy");
    }
    let designer = org(&home_a, "Designer");
    let (w, w_key) = witness_of_a(&home_w, &home_a);
    let a = Node::start(&home_a);
    let claim = a.cli(
        &[
            "claim",
            "--as",
            &designer,
            &write(dir.path(), "released.gcode"),
        ],
        0,
    );
    let tx = claim["tx_id"].as_str().expect("tx_id").to_string();
    anchor_to(&home_b, &a.url);
    anchor_to(&home_c, &a.url);
    let b = Node::start(&home_b);
    let c = Node::start(&home_c);
    let height = get_json(&format!("{}/v1/transactions/{tx}", a.url))["height"]
        .as_u64()
        .expect("height");
    for node in [&b, &c] {
        wait_until(60, || {
            let chain = anchored(node);
            (chain["size"].as_u64() > Some(height))
                .then_some(())
                .ok_or_else(|| format!("{chain}"))
        });
    }
    // The witness has cosigned a checkpoint holding the claim.
    wait_until(60, || {
        let status = get_json(&format!("{}/v1/publish", a.url));
        (status["witnessed_size"].as_u64() > Some(height))
            .then_some(())
            .ok_or_else(|| format!("{status}"))
    });

    // Gathered on A's home from B and C, checked before it is written.
    let bundle = path("anchored.json");
    let trust = [
        "--trust",
        &path("a.trust.json"),
        "--trust",
        &path("b.trust.json"),
        "--trust",
        &path("c.trust.json"),
    ]
    .map(str::to_string);
    let mut args: Vec<&str> = vec!["proof", &tx, "--anchored", "--out", &bundle];
    args.extend(["--by", &b.url, "--by", &c.url]);
    args.extend(trust.iter().map(String::as_str));
    let built = a.cli(&args, 0);
    assert_eq!(
        built["anchors"].as_array().map(Vec::len),
        Some(2),
        "{built}"
    );
    assert_eq!(
        built["witnesses"]["cosigners"][0]["name"],
        "witness.example/w"
    );

    // A third party with the three trust roots and the witness's key, no node running.
    drop((a, b, c, w));
    let third = dir.path().join("third-party");
    std::fs::create_dir_all(&third).expect("mkdir");
    let verify = |file: &str, extra: &[&str], code: i32| {
        let mut args = vec!["proof", "verify", file];
        args.extend(trust.iter().map(String::as_str));
        args.extend(extra);
        run(&third, &args, code)
    };
    let verified = verify(&bundle, &["--witness", &w_key], 0);
    assert_eq!(verified["valid"], true, "{verified}");
    assert_eq!(verified["tx_id"], tx.as_str());
    let chains: Vec<&str> = verified["anchors"]
        .as_array()
        .expect("anchors")
        .iter()
        .map(|anchor| anchor["chain"].as_str().expect("chain"))
        .collect();
    assert_eq!(chains, ["company-b", "company-c"], "{verified}");
    assert_eq!(
        verified["witnesses"]["cosigners"][0]["name"],
        "witness.example/w"
    );

    // Refused: a stranger's witness key; a missing trust root; an anchor taken away or altered.
    let stranger = weft_ledger::cosigned::verifier_key(
        "witness.example/w",
        &weft_core::SigningKey::from_seed(&[7; 32]).public_key(),
    );
    let refused = verify(&bundle, &["--witness", &stranger], 4);
    assert!(
        refused["reason"]
            .as_str()
            .expect("reason")
            .contains("cosigned"),
        "{refused}"
    );
    let mut args = vec!["proof", "verify", &bundle];
    args.extend(trust[..4].iter().map(String::as_str));
    let refused = run(&third, &args, 4);
    assert!(
        refused["reason"]
            .as_str()
            .expect("reason")
            .contains("no trust root"),
        "{refused}"
    );
    let original: Value =
        serde_json::from_str(&std::fs::read_to_string(&bundle).expect("read")).expect("json");
    let altered = path("altered.json");
    let mut none = original.clone();
    none["anchors"] = Value::Array(vec![]);
    std::fs::write(&altered, none.to_string()).expect("write");
    let refused = verify(&altered, &[], 4);
    assert!(
        refused["reason"]
            .as_str()
            .expect("reason")
            .contains("no anchor"),
        "{refused}"
    );
    // C's anchor passed off as a checkpoint of another size: its consistency proof no longer holds.
    let mut shifted = original.clone();
    let proof = shifted["anchors"][1]["consistency"].clone();
    shifted["anchors"][1]["consistency"] = if proof.as_array().is_some_and(Vec::is_empty) {
        serde_json::json!(["00".repeat(32)])
    } else {
        Value::Array(vec![])
    };
    std::fs::write(&altered, shifted.to_string()).expect("write");
    let refused = verify(&altered, &[], 4);
    assert!(
        refused["reason"]
            .as_str()
            .expect("reason")
            .contains("anchor 2"),
        "{refused}"
    );
}
