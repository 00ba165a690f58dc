//! A node that lies (docs/proofs.md, "What a client checks"): a test server on loopback stands
//! between the CLI and a real `weft node run` process, passes most answers on and alters one
//! kind — or answers alone, with no node behind it. Every lie is refused by the client with exit 4
//! and the server named; nothing is printed as a verdict.

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use common::node::{Node, new_home, org};
use common::run;
use serde_json::{Value, json};

/// How the server lies.
type Lie = Arc<dyn Fn(&str, Value) -> Value + Send + Sync>;

/// A server on loopback answering GET requests: with `upstream`, the real node's answers passed
/// through `lie`; without, `lie` of `null` alone. Runs until the test process ends.
fn liar(upstream: Option<String>, lie: Lie) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (upstream, lie) = (upstream.clone(), lie.clone());
            thread::spawn(move || answer(stream, upstream.as_deref(), &*lie));
        }
    });
    url
}

fn answer(
    stream: TcpStream,
    upstream: Option<&str>,
    lie: &(dyn Fn(&str, Value) -> Value + Send + Sync),
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
        if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let (status, value) = match upstream {
        Some(base) => match common::node::agent().get(format!("{base}{path}")).call() {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let text = response.body_mut().read_to_string().unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            Err(_) => (502, Value::Null),
        },
        None => (200, Value::Null),
    };
    let value = lie(&path, value);
    let status = match upstream {
        Some(_) => status,
        None if value.is_null() => 404,
        None => 200,
    };
    let text = value.to_string();
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
}

fn refused(home: &std::path::Path, args: &[&str], liar: &str) -> String {
    let answer = run(home, args, 4);
    let message = answer["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason given: {answer}"))
        .to_string();
    assert_eq!(answer["error"]["untrusted"], true, "{answer}");
    assert!(message.contains(liar), "the liar is not named: {message}");
    message
}

#[test]
fn every_lie_of_a_node_is_refused_with_the_node_named() {
    let (_dir, home) = new_home(&[]);
    let designer = org(&home, "Designer Inc.");
    let maker = org(&home, "Maker GmbH");
    let stranger = org(&home, "Stranger AG");
    let file = home.parent().expect("dir").join("bracket.step");
    std::fs::write(&file, b"solid bracket rev C").expect("write");
    let file_arg = file.to_str().expect("utf-8");
    run(&home, &["claim", file_arg, "--as", &designer], 0);
    run(
        &home,
        &["send", file_arg, "--from", &designer, "--to", &maker],
        0,
    );
    let node = Node::start(&home);
    let honest = node.url.clone();

    // Through the honest node: valid for the maker, not for the stranger; the proofs checked.
    let valid = run(
        &home,
        &["verify", file_arg, "--as", &maker, "--node", &honest],
        0,
    );
    assert_eq!(valid["verdict"], "valid");
    assert_eq!(valid["checked"]["proofs"], 3, "{valid}");
    assert_eq!(valid["checked"]["complete"], true, "{valid}");
    run(
        &home,
        &["verify", file_arg, "--as", &stranger, "--node", &honest],
        4,
    );

    // 1. A forged verdict: the stranger told the file was sent to them.
    let forged_verdict = liar(
        Some(honest.clone()),
        Arc::new(|path, mut value| {
            if path.starts_with("/v1/assets/") {
                value["verdict"] = json!("valid");
            }
            value
        }),
    );
    let message = refused(
        &home,
        &[
            "verify",
            file_arg,
            "--as",
            &stranger,
            "--node",
            &forged_verdict,
        ],
        &forged_verdict,
    );
    assert!(message.contains("not_recipient"), "{message}");

    // 2. A fabricated history entry: a send to the stranger that is not on the chain.
    let fabricated = liar(
        Some(honest.clone()),
        Arc::new(|path, mut value| {
            if path.starts_with("/v1/assets/") {
                let mut entry = value["history"][1].clone();
                entry["tx_id"] = json!("ab".repeat(32));
                entry["index"] = json!(7);
                value["history"]
                    .as_array_mut()
                    .expect("history")
                    .push(entry);
                value["verdict"] = json!("valid");
            }
            value
        }),
    );
    refused(
        &home,
        &["verify", file_arg, "--as", &stranger, "--node", &fabricated],
        &fabricated,
    );

    // 3. A history entry that is real but about another file.
    let elsewhere = liar(
        Some(honest.clone()),
        Arc::new(move |path, mut value| {
            if path.starts_with("/v1/assets/") && value["history"].is_array() {
                // The maker's registration stands in for the send.
                value["history"][1]["tx_id"] = value["history"][0]["issuer"].clone();
            }
            value
        }),
    );
    refused(
        &home,
        &["verify", file_arg, "--as", &maker, "--node", &elsewhere],
        &elsewhere,
    );

    // 3b. Fields written beside a real entry (who claimed, what kind, who signed) are not
    // believed: what is shown is what the proven transaction says.
    let designer_for_check = designer.clone();
    let relabelled = liar(
        Some(honest.clone()),
        Arc::new(move |path, mut value| {
            if path.starts_with("/v1/assets/") && value["history"].is_array() {
                value["history"][0]["issuer"] = json!("ee".repeat(32));
                value["history"][0]["signer"] = json!("ee".repeat(32));
                value["history"][0]["kind"] = json!("Record");
            }
            value
        }),
    );
    let shown = run(
        &home,
        &["verify", file_arg, "--as", &maker, "--node", &relabelled],
        0,
    );
    assert_eq!(
        shown["history"][0]["issuer"],
        designer_for_check.as_str(),
        "{shown}"
    );
    assert_eq!(shown["history"][0]["kind"], "RecordOwnership", "{shown}");

    // 3c. Omissions, each with a verdict that agrees with what is left: the send to the maker
    // left out (the maker told they are not a recipient), the owner's claim left out with it
    // (the file told unclaimed), and the state proof withheld. Every transaction left is real
    // and proven; only the state root shows something is missing.
    for (what, omit) in [
        ("the send", vec![1usize]),
        ("the claim and the send", vec![1, 0]),
    ] {
        let omitting = liar(
            Some(honest.clone()),
            Arc::new(move |path, mut value| {
                if path.starts_with("/v1/assets/")
                    && value["history"]
                        .as_array()
                        .is_some_and(|history| history.len() >= 2)
                {
                    for index in &omit {
                        value["history"]
                            .as_array_mut()
                            .expect("history")
                            .remove(*index);
                    }
                    if omit.contains(&0) {
                        value["verdict"] = json!("unknown");
                        value["owner"] = Value::Null;
                    } else {
                        value["verdict"] = json!("not_recipient");
                    }
                }
                value
            }),
        );
        let message = refused(
            &home,
            &["verify", file_arg, "--as", &maker, "--node", &omitting],
            &omitting,
        );
        assert!(message.contains("left out"), "{what}: {message}");
        refused(
            &home,
            &["history", file_arg, "--node", &omitting],
            &omitting,
        );
    }
    let unproven = liar(
        Some(honest.clone()),
        Arc::new(|path, mut value| {
            if path.starts_with("/v1/assets/") {
                value.as_object_mut().expect("report").remove("state");
            }
            value
        }),
    );
    let message = refused(
        &home,
        &["verify", file_arg, "--as", &maker, "--node", &unproven],
        &unproven,
    );
    assert!(message.contains("no state proof"), "{message}");

    // 4. A transaction whose proof was altered (the block re-sealed by a key of the liar's).
    let resealed = liar(
        Some(honest.clone()),
        Arc::new(|path, mut value| {
            if path.starts_with("/v1/transactions/") && value["proof"].is_object() {
                let header = value["proof"]["signed_header"].as_str().expect("header");
                let mut bytes = hex::decode(header).expect("hex");
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
                value["proof"]["signed_header"] = json!(hex::encode(bytes));
            }
            value
        }),
    );
    let history = run(&home, &["history", file_arg, "--node", &honest], 0);
    let send = history["history"][1]["tx_id"]
        .as_str()
        .expect("send")
        .to_string();
    refused(
        &home,
        &["tx", "show", &send, "--node", &resealed],
        &resealed,
    );
    refused(
        &home,
        &["verify", file_arg, "--as", &maker, "--node", &resealed],
        &resealed,
    );
    refused(
        &home,
        &["history", file_arg, "--node", &resealed],
        &resealed,
    );
    let out = home.parent().expect("dir").join("written.json");
    let out_arg = out.to_str().expect("utf-8");
    refused(
        &home,
        &["proof", &send, "--out", out_arg, "--node", &resealed],
        &resealed,
    );
    assert!(!out.exists(), "a proof that does not check is not written");

    // 5. A stale head: the checkpoint of an earlier size, after the client held a later one.
    let held = home.parent().expect("dir").join("held.note");
    let held_arg = held.to_str().expect("utf-8");
    run(
        &home,
        &["checkpoint", "--node", &honest, "--out", held_arg],
        0,
    );
    run(
        &home,
        &[
            "org",
            "add",
            "Later",
            "--country",
            "DE",
            "--town",
            "Aachen",
            "--node",
            &honest,
        ],
        0,
    );
    let honest_for_stale = honest.clone();
    let stale = liar(
        Some(honest.clone()),
        Arc::new(move |path, value| {
            if path.starts_with("/v1/checkpoint") && !path.contains("consistency") {
                let size = value["size"].as_u64().unwrap_or(2);
                common::node::http(
                    "GET",
                    &format!("{honest_for_stale}/v1/checkpoint?size={}", size - 2),
                    None,
                    b"",
                )
                .1
            } else {
                value
            }
        }),
    );
    let message = refused(
        &home,
        &["checkpoint", "--node", &stale, "--since", held_arg],
        &stale,
    );
    assert!(message.contains("stale head"), "{message}");

    // 6. Chain parameters: another head, another authority.
    run(&home, &["chain", "info", "--node", &honest], 0);
    for (field, value) in [
        ("head_hash", json!("cd".repeat(32))),
        ("authorities", json!(["ef".repeat(32)])),
        ("validators", json!(["ef".repeat(32)])),
    ] {
        let liar = liar(
            Some(honest.clone()),
            Arc::new(move |path, mut answer| {
                if path == "/v1/chain" {
                    answer[field] = value.clone();
                }
                answer
            }),
        );
        refused(&home, &["chain", "info", "--node", &liar], &liar);
    }

    // A block described with another Merkle root than its final header's: `tail` refuses it.
    let altered_block = liar(
        Some(honest.clone()),
        Arc::new(|path, mut answer| {
            if path.starts_with("/v1/blocks/") {
                answer["merkle_root"] = json!("77".repeat(32));
            }
            answer
        }),
    );
    refused(
        &home,
        &[
            "tail",
            "--from",
            "1",
            "--count",
            "1",
            "--node",
            &altered_block,
        ],
        &altered_block,
    );

    // Another chain the user also trusts answers for this one: its own claim of the same file,
    // with valid proofs of that other chain. The answer is about the chain asked, so refused.
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other_home = other_dir.path().join("home");
    run(&other_home, &["init", "--chain-id", "elsewhere"], 0);
    let other_org = org(&other_home, "Elsewhere Inc.");
    run(&other_home, &["claim", file_arg, "--as", &other_org], 0);
    let other_root = other_home.parent().expect("dir").join("other.root");
    let exported = run(
        &other_home,
        &[
            "trust",
            "export",
            "--out",
            other_root.to_str().expect("utf-8"),
        ],
        0,
    );
    let other_node = Node::start(&other_home);
    // Pinned beside this chain's own root: the user trusts both chains.
    run(
        &home,
        &[
            "trust",
            "add",
            other_root.to_str().expect("utf-8"),
            "--genesis-hash",
            exported["genesis_hash"].as_str().expect("hash"),
        ],
        0,
    );
    let other_url = other_node.url.clone();
    let crossed = liar(
        Some(honest.clone()),
        Arc::new(move |path, answer| {
            if path.starts_with("/v1/assets/") || path.starts_with("/v1/transactions/") {
                common::node::http("GET", &format!("{other_url}{path}"), None, b"").1
            } else {
                answer
            }
        }),
    );
    refused(&home, &["history", file_arg, "--node", &crossed], &crossed);
    other_node.terminate();

    // 7. No node at all: a server that answers every question with a valid verdict and a made-up
    // history.
    let designer_for_fake = designer.clone();
    let fake = liar(
        None,
        Arc::new(move |path, _| {
            if path.starts_with("/v1/assets/") {
                json!({
                    "fingerprint": path.trim_start_matches("/v1/assets/").split('?').next(),
                    "verdict": "valid",
                    "owner": {"id": designer_for_fake, "name": "Designer Inc."},
                    "history": [{
                        "tx_id": "00".repeat(32), "height": 1, "index": 0,
                        "kind": "RecordOwnership", "signer": designer_for_fake, "time": 0,
                        "time_utc": "", "issuer": designer_for_fake
                    }]
                })
            } else if path.starts_with("/v1/status") {
                json!({"chain_id": "00".repeat(32), "height": 9})
            } else {
                Value::Null
            }
        }),
    );
    let evil = home.parent().expect("dir").join("evil.gcode");
    std::fs::write(&evil, b"G1 X999 ; not the released file").expect("write");
    let answer = run(
        &home,
        &[
            "verify",
            evil.to_str().expect("utf-8"),
            "--as",
            &maker,
            "--node",
            &fake,
        ],
        4,
    );
    assert!(
        answer.get("verdict").is_none(),
        "no verdict printed: {answer}"
    );

    // 8. A forged manifest "recorded by Designer Inc." (the made-up history above, an all-zero
    // transaction id): the G-code is neither verified as anchored nor written.
    let at = |name: &str| {
        home.parent()
            .expect("dir")
            .join(name)
            .to_str()
            .expect("utf-8")
            .to_string()
    };
    std::fs::write(
        at("evil.gcode"),
        b"G21\nG90\n;LAYER_CHANGE\nG1 Z0.2\nG1 X999 Y1 E1\n",
    )
    .expect("write");
    run(&home, &["gcode", "keygen", "--out", &at("printer")], 0);
    let attacker_key = home.parent().expect("dir").join("attacker.key");
    std::fs::write(
        &attacker_key,
        weft_core::SigningKey::from_seed(&[99; 32]).to_text(),
    )
    .expect("key");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&attacker_key, std::fs::Permissions::from_mode(0o600))
            .expect("mode");
    }
    run(
        &home,
        &[
            "gcode",
            "seal",
            &at("evil.gcode"),
            "--out",
            &at("evil.wgc"),
            "--manifest",
            &at("evil.json"),
            "--to",
            &at("printer.pub"),
            "--sign",
            attacker_key.to_str().expect("utf-8"),
            "--no-record",
        ],
        0,
    );
    refused(
        &home,
        &[
            "gcode",
            "verify",
            &at("evil.wgc"),
            "--manifest",
            &at("evil.json"),
            "--node",
            &fake,
        ],
        &fake,
    );
    refused(
        &home,
        &[
            "gcode",
            "open",
            &at("evil.wgc"),
            "--key",
            &at("printer.key"),
            "--manifest",
            &at("evil.json"),
            "--out",
            &at("evil.out"),
            "--as",
            &maker,
            "--node",
            &fake,
        ],
        &fake,
    );
    assert!(
        !std::path::Path::new(&at("evil.out")).exists(),
        "nothing written"
    );
    node.terminate();
}
