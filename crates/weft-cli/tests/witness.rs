//! A node that witnesses another company's chain (C2SP tlog-witness, docs/anchoring.md), both
//! real `weft node run` processes on loopback: it cosigns the other chain's checkpoints as they
//! grow, answers a client that is behind with the size it holds, refuses an unknown chain and a
//! checkpoint nobody it trusts signed, and still holds what it cosigned after SIGKILL.

use std::path::Path;

use serde_json::Value;

mod common;
use common::node::*;
use common::run;

/// (status, content type, body) of a POST of `body` to `url`.
fn post(url: &str, body: &str) -> (u16, String, String) {
    let mut response = agent()
        .post(url)
        .header("content-type", "text/plain")
        .send(body.as_bytes())
        .expect("the node answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.body_mut().read_to_string().expect("body");
    (status, content_type, text)
}

fn get_text(url: &str) -> String {
    let (code, body) = http("GET", url, None, b"");
    assert_eq!(code, 200, "{url}: {body}");
    body.as_str().expect("text").to_string()
}

fn get_json(url: &str) -> Value {
    let (code, body) = http("GET", url, None, b"");
    assert_eq!(code, 200, "{url}: {body}");
    body
}

/// A home for a witness of the chain whose trust root is `root_file` (copied into it).
fn witness_home(dir: &Path, root_file: &Path) -> std::path::PathBuf {
    witness_home_named(dir, root_file, "w1")
}

/// [`witness_home`] in `dir/witness-NAME`, the witness named `witness.example/NAME`.
fn witness_home_named(dir: &Path, root_file: &Path, name: &str) -> std::path::PathBuf {
    let home = dir.join(format!("witness-{name}"));
    run(
        &home,
        &["init", "--chain-id", &format!("witness-{name}")],
        0,
    );
    std::fs::copy(root_file, home.join("a.trust.json")).expect("copy");
    let path = home.join("config.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let (before, after) = text.split_once("[witness]\n").expect("a [witness] section");
    let after = after
        .replacen("enabled = false", "enabled = true", 1)
        .replacen(
            "name = \"\"",
            &format!("name = \"witness.example/{name}\""),
            1,
        )
        .replacen("origins = []", "origins = [\"a.trust.json\"]", 1);
    std::fs::write(&path, format!("{before}[witness]\n{after}")).expect("config");
    home
}

#[test]
fn a_node_witnesses_another_chain_as_it_grows_and_keeps_what_it_cosigned() {
    let (dir, home_a) = new_home(&[]);
    let designer = org(&home_a, "Designer");
    let root_file = dir.path().join("a.trust.json");
    run(
        &home_a,
        &[
            "trust",
            "export",
            "--out",
            root_file.to_str().expect("utf-8"),
        ],
        0,
    );
    let chain_a = Node::start(&home_a);
    let home_w = witness_home(dir.path(), &root_file);
    let witness = Node::start(&home_w);
    let add = format!("{}/add-checkpoint", witness.url);

    let about = get_json(&format!("{}/v1/witness", witness.url));
    assert_eq!(about["name"], "witness.example/w1", "{about}");
    let key = weft_core::PublicKey::from_hex(about["key"].as_str().expect("key")).expect("key");
    assert!(
        about["verifier_key"]
            .as_str()
            .is_some_and(|vkey| vkey.starts_with("witness.example/w1+")),
        "{about}"
    );

    // The first checkpoint: old size 0.
    let first = get_text(&format!("{}/checkpoint", chain_a.url));
    let (code, _, cosigned) = post(&add, &format!("old 0\n\n{first}"));
    assert_eq!(code, 200, "{cosigned}");
    let text = |note: &str| note.split_once("\n\n").expect("a note").0.to_string() + "\n";
    weft_ledger::witness::verify_cosignature("witness.example/w1", &key, &text(&first), &cosigned)
        .expect("a cosignature over the chain's checkpoint");
    let size = |note: &str| -> u64 { note.lines().nth(1).expect("size").parse().expect("size") };
    let old = size(&first);

    // The chain grows; the witness follows it with a consistency proof.
    for i in 0..3 {
        chain_a.cli(
            &[
                "claim",
                "--as",
                &designer,
                &write(dir.path(), &format!("part-{i}")),
            ],
            0,
        );
    }
    let second = get_text(&format!("{}/checkpoint", chain_a.url));
    let new = size(&second);
    assert!(new > old);
    let proof = get_json(&format!(
        "{}/v1/checkpoint/consistency?old={old}&new={new}",
        chain_a.url
    ));
    let lines: String = proof["proof"]
        .as_array()
        .expect("proof")
        .iter()
        .map(|hash| format!("{}\n", hash.as_str().expect("base64")))
        .collect();
    let (code, _, cosigned) = post(&add, &format!("old {old}\n{lines}\n{second}"));
    assert_eq!(code, 200, "{cosigned}");
    weft_ledger::witness::verify_cosignature("witness.example/w1", &key, &text(&second), &cosigned)
        .expect("verifies");
    // A client still at the first size: 409 and the size held, as the spec says.
    let (code, content_type, body) = post(&add, &format!("old {old}\n{lines}\n{second}"));
    assert_eq!(
        (code, content_type.as_str(), body.clone()),
        (409, "text/x.tlog.size", format!("{new}\n"))
    );
    // The witness's own chain is not one it witnesses: 404. A checkpoint of the chain signed
    // by a key it does not trust: 403.
    let own = get_text(&format!("{}/checkpoint", witness.url));
    assert_eq!(post(&add, &format!("old 0\n\n{own}")).0, 404);
    let (body, _) = second.split_once("\n\n").expect("a note");
    let origin = body.lines().next().expect("origin");
    let mut forged = weft_ledger::checkpoint::Note {
        text: format!("{body}\n"),
        signatures: Vec::new(),
    };
    forged
        .sign(origin, &weft_core::SigningKey::from_seed(&[66; 32]))
        .expect("sign");
    let (code, _, why) = post(&add, &format!("old {new}\n\n{}", forged.to_text()));
    assert_eq!(code, 403, "{why}");
    // Garbage: 400, with what was wrong.
    let (code, _, why) = post(&add, "old zero\n\n");
    assert_eq!(code, 400);
    assert!(why.contains("not a decimal"), "{why}");

    // Killed and started again: it holds what it cosigned.
    witness.kill();
    let witness = Node::start(&home_w);
    let add = format!("{}/add-checkpoint", witness.url);
    let about = get_json(&format!("{}/v1/witness", witness.url));
    assert_eq!(about["origins"][0]["size"], new, "{about}");
    assert_eq!(about["origins"][0]["origin"], origin, "{about}");
    let (code, _, body) = post(&add, &format!("old 0\n\n{first}"));
    assert_eq!((code, body), (409, format!("{new}\n")));
    drop(chain_a);
}

fn write(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, name).expect("write");
    path.to_str().expect("utf-8").to_string()
}

#[test]
fn a_witness_with_a_bad_trust_root_does_not_start_and_says_which() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_a_root = dir.path().join("not-a-root.json");
    std::fs::write(&not_a_root, "{\"format\": \"nothing\"}").expect("write");
    let home = witness_home(dir.path(), &not_a_root);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([
            "--home",
            home.to_str().expect("utf-8"),
            "node",
            "run",
            "--api",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("a witness with a bad trust root started");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(!status.success());
    assert!(
        stderr.contains("witness.origins") && stderr.contains("a.trust.json"),
        "{stderr}"
    );
}

/// Turns on `[publish]` in `home`'s config: these witnesses (URL, verifier key), `policy` of
/// them, every 100 ms.
fn publish_to(home: &Path, witnesses: &[(&str, &str)], policy: usize) {
    let path = home.join("config.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let (before, after) = text.split_once("[publish]\n").expect("a [publish] section");
    let list: Vec<String> = witnesses
        .iter()
        .map(|(url, key)| format!("{{ url = \"{url}\", key = \"{key}\" }}"))
        .collect();
    let after = after
        .replacen("enabled = false", "enabled = true", 1)
        .replacen(
            "witnesses = []",
            &format!("witnesses = [{}]", list.join(", ")),
            1,
        )
        .replacen("policy = 0", &format!("policy = {policy}"), 1)
        .replacen("interval_ms = 1000", "interval_ms = 100", 1);
    std::fs::write(&path, format!("{before}[publish]\n{after}")).expect("config");
}

fn signal(node: &Node, name: &str) {
    let status = std::process::Command::new("kill")
        .args([name, &node.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[test]
fn a_chain_publishes_to_its_witnesses_and_serves_what_they_cosigned() {
    let (dir, home_a) = new_home(&[]);
    let designer = org(&home_a, "Designer");
    let root_file = dir.path().join("a.trust.json");
    let root_arg = root_file.to_str().expect("utf-8");
    run(&home_a, &["trust", "export", "--out", root_arg], 0);
    let w1 = Node::start(&witness_home_named(dir.path(), &root_file, "w1"));
    let w2 = Node::start(&witness_home_named(dir.path(), &root_file, "w2"));
    let vkey = |node: &Node| -> String {
        get_json(&format!("{}/v1/witness", node.url))["verifier_key"]
            .as_str()
            .expect("verifier key")
            .to_string()
    };
    let (key1, key2) = (vkey(&w1), vkey(&w2));
    publish_to(&home_a, &[(&w1.url, &key1), (&w2.url, &key2)], 2);
    let chain_a = Node::start(&home_a);
    chain_a.cli(
        &["claim", "--as", &designer, &write(dir.path(), "part-0")],
        0,
    );

    // Both witnesses cosign the head; the node serves the checkpoint with both cosignatures.
    let caught_up = |status: &Value| -> Result<u64, String> {
        let head = status["head_size"].as_u64().unwrap_or(0);
        (status["witnessed_size"] == head && status["lag_blocks"] == 0)
            .then_some(head)
            .ok_or_else(|| format!("{status}"))
    };
    let size = wait_until(60, || {
        caught_up(&get_json(&format!("{}/v1/publish", chain_a.url)))
    });
    let note = get_text(&format!("{}/v1/checkpoint/witnessed", chain_a.url));
    let note = weft_ledger::checkpoint::Note::parse(note.as_bytes()).expect("a note");
    let root = weft_ledger::trust::TrustRoot::parse(&std::fs::read(&root_file).expect("root"))
        .expect("a trust root");
    let schedule = weft_ledger::state::Schedule {
        genesis: root.validators.clone(),
        changes: Vec::new(),
    };
    let witnesses = [&key1, &key2]
        .map(|key| weft_ledger::cosigned::WitnessKey::parse(key).expect("a witness key"));
    let policy = weft_ledger::cosigned::Policy::new(witnesses.to_vec(), 2).expect("2 of 2");
    let verified = weft_ledger::cosigned::verify(&note, &root, &schedule, &policy)
        .expect("a quorum of A's validators and both witnesses signed it");
    assert_eq!(verified.checkpoint.checkpoint.size, size);
    // The witnesses hold it too.
    for witness in [&w1, &w2] {
        let about = get_json(&format!("{}/v1/witness", witness.url));
        assert_eq!(about["origins"][0]["size"], size, "{about}");
    }

    // `weft anchor status` checks it against the home's trust root and [publish] witnesses…
    let status = run(&home_a, &["--json", "anchor", "status"], 0);
    assert_eq!(status["publishing"]["checked"]["size"], size, "{status}");
    assert_eq!(
        status["publishing"]["checked"]["cosigners"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{status}"
    );
    // …and refuses it when the user trusts another witness.
    let stranger = weft_ledger::witness::verifier_key(
        "witness.example/stranger",
        &weft_core::SigningKey::from_seed(&[9; 32]).public_key(),
    );
    let refused = run(
        &home_a,
        &["--json", "anchor", "status", "--witness", &stranger],
        4,
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|why| why.contains("0 of the 1 witnesses cosigned")),
        "{refused}"
    );

    // A witness that hangs: its pushes fail and are reported, and with a policy of 2 of 2 the
    // witnessed checkpoint stays where it was while the chain grows.
    signal(&w2, "-STOP");
    chain_a.cli(
        &["claim", "--as", &designer, &write(dir.path(), "part-1")],
        0,
    );
    let status = wait_until(60, || {
        let status = get_json(&format!("{}/v1/publish", chain_a.url));
        (status["witnesses"][1]["failures"].as_u64() > Some(0)
            && status["witnesses"][0]["cosigned_size"].as_u64() > Some(size))
        .then_some(status.clone())
        .ok_or_else(|| format!("{status}"))
    });
    assert_eq!(status["witnessed_size"], size, "{status}");
    assert!(status["lag_blocks"].as_u64() > Some(0), "{status}");
    assert!(
        status["witnesses"][1]["last_error"].as_str().is_some(),
        "{status}"
    );
    let text = metrics(&chain_a.url);
    assert!(
        text.contains(
            "weft_publish_pushes_total{witness=\"witness.example/w2\",result=\"failed\"}"
        ),
        "{text}"
    );
    // Back: it catches up from the size it holds.
    signal(&w2, "-CONT");
    let later = wait_until(60, || {
        caught_up(&get_json(&format!("{}/v1/publish", chain_a.url)))
    });
    assert!(later > size);

    // Restarted, the node serves the witnessed checkpoint it kept.
    chain_a.terminate();
    let chain_a = Node::start(&home_a);
    let kept = get_text(&format!("{}/v1/checkpoint/witnessed", chain_a.url));
    let kept = weft_ledger::checkpoint::Note::parse(kept.as_bytes()).expect("a note");
    let again = weft_ledger::cosigned::verify(&kept, &root, &schedule, &policy).expect("checks");
    assert!(again.checkpoint.checkpoint.size >= later);
}

/// A witness killed with SIGKILL in the middle of a stream of pushes — at whatever point of a
/// request it was, its check and its write being one durable transaction — holds after restart
/// at least every size it gave a cosignature for, and cosigns no rollback: not an older
/// checkpoint, not a push from a size it no longer holds.
#[test]
fn a_witness_killed_mid_stream_never_cosigns_a_rollback_after_restart() {
    let (dir, home_a) = new_home(&[]);
    let designer = org(&home_a, "Designer");
    let root_file = dir.path().join("a.trust.json");
    run(
        &home_a,
        &[
            "trust",
            "export",
            "--out",
            root_file.to_str().expect("utf-8"),
        ],
        0,
    );
    let chain_a = Node::start(&home_a);
    for i in 0..24 {
        chain_a.cli(
            &[
                "claim",
                "--as",
                &designer,
                &write(dir.path(), &format!("p-{i}")),
            ],
            0,
        );
    }
    let head: u64 = get_json(&format!("{}/v1/chain", chain_a.url))["height"]
        .as_u64()
        .expect("height")
        + 1;
    // Every checkpoint from size 2 on, and the push of each from the one before.
    let note = |size: u64| {
        get_json(&format!("{}/v1/checkpoint?size={size}", chain_a.url))["note"]
            .as_str()
            .expect("note")
            .to_string()
    };
    let push_of = |old: u64, new: u64| {
        let proof = if old == 0 {
            String::new()
        } else {
            get_json(&format!(
                "{}/v1/checkpoint/consistency?old={old}&new={new}",
                chain_a.url
            ))["proof"]
                .as_array()
                .expect("proof")
                .iter()
                .map(|hash| format!("{}\n", hash.as_str().expect("base64")))
                .collect()
        };
        format!("old {old}\n{proof}\n{}", note(new))
    };
    let pushes: Vec<(u64, String)> = (2..=head)
        .map(|size| (size, push_of(if size == 2 { 0 } else { size - 1 }, size)))
        .collect();
    let home_w = witness_home(dir.path(), &root_file);
    let witness = Node::start(&home_w);
    let add = format!("{}/add-checkpoint", witness.url);

    // One client pushes as fast as it can; the witness is killed after a few cosignatures.
    let (cosigned_tx, cosigned_rx) = std::sync::mpsc::channel::<u64>();
    let client = std::thread::spawn(move || {
        let mut cosigned = 0;
        for (size, body) in pushes {
            let answer = agent()
                .post(&add)
                .header("content-type", "text/plain")
                .send(body.as_bytes());
            match answer {
                Ok(response) if response.status().as_u16() == 200 => {
                    cosigned = size;
                    let _ = cosigned_tx.send(size);
                }
                _ => break,
            }
        }
        cosigned
    });
    for _ in 0..4 {
        cosigned_rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the witness cosigns");
    }
    witness.kill();
    let cosigned = client.join().expect("the client");
    assert!(
        cosigned >= 5 && cosigned < head,
        "cosigned up to {cosigned} of {head}"
    );

    let witness = Node::start(&home_w);
    let add = format!("{}/add-checkpoint", witness.url);
    let held = get_json(&format!("{}/v1/witness", witness.url))["origins"][0]["size"]
        .as_u64()
        .expect("size");
    assert!(
        held >= cosigned,
        "it gave a cosignature for {cosigned} but holds {held}"
    );
    // No rollback: an older checkpoint from what it holds; a push from a size it left behind;
    // a first push again.
    let (code, _, why) = post(&add, &format!("old {held}\n\n{}", note(held - 1)));
    assert_eq!(code, 400, "{why}");
    let (code, content_type, body) = post(&add, &push_of(held - 1, held));
    assert_eq!(
        (code, content_type.as_str(), body.as_str()),
        (409, "text/x.tlog.size", format!("{held}\n").as_str())
    );
    let (code, _, body) = post(&add, &push_of(0, 2));
    assert_eq!((code, body), (409, format!("{held}\n")));
    // And it goes on from where it is.
    if held < head {
        let (code, _, why) = post(&add, &push_of(held, head));
        assert_eq!(code, 200, "{why}");
    }
    drop(chain_a);
}
