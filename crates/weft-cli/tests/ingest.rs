//! TCP ingest, TLS and request-rate limits against a real `weft node run` process on loopback.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use weft_core::model::{Payload, Record};
use weft_core::{ResourceId, SigningKey};
use weft_ledger::{Signer, Transaction};
use weft_node::wire;

mod common;
use common::node::*;
use common::{run, weft};

/// Writes one frame.
fn send(stream: &mut TcpStream, kind: u8, request: u64, body: &[u8]) {
    stream
        .write_all(&wire::encode(kind, request, body))
        .expect("send");
}

/// Reads one frame.
fn receive(stream: &mut TcpStream) -> wire::Frame {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).expect("a frame length");
    let mut bytes = vec![0u8; u32::from_be_bytes(length) as usize];
    stream.read_exact(&mut bytes).expect("a frame");
    wire::parse_frame(bytes).expect("a whole frame")
}

fn connect(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connects");
    // A node that stops answering fails the test instead of hanging it.
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    stream
}

fn error_code(frame: &wire::Frame) -> String {
    assert_eq!(
        frame.kind,
        wire::ERROR,
        "expected an error frame: {frame:?}"
    );
    wire::parse_error(&frame.body).expect("error body").0
}

#[test]
fn tcp_ingest_answers_bad_frames_with_error_frames_and_keeps_serving() {
    let (_dir, home) = new_home(&[
        ("max_frame_bytes = 1052672", "max_frame_bytes = 4096"),
        ("max_connections = 256", "max_connections = 3"),
    ]);
    let node = Node::start_with(&home, &["--tcp", "127.0.0.1:0"]);
    let address = node.tcp.clone().expect("the node listens for TCP ingest");
    let token = std::fs::read_to_string(home.join("ingest.token")).expect("ingest token");

    // Without the token, records are refused, and a wrong token is named as such; the
    // connection stays open and PING still answers.
    let mut stranger = connect(&address);
    send(
        &mut stranger,
        wire::RECORD,
        1,
        &wire::record_body("text/plain", b"x"),
    );
    send(&mut stranger, wire::HELLO, 2, b"not-the-token");
    send(&mut stranger, wire::PING, 3, b"");
    assert_eq!(error_code(&receive(&mut stranger)), "unauthorized");
    let wrong = receive(&mut stranger);
    assert_eq!(
        (wrong.request, error_code(&wrong)),
        (2, "unauthorized".into())
    );
    assert_eq!(receive(&mut stranger).kind, wire::PONG);

    // A transaction signed by a key the chain does not know: refused under a rule.
    let stranger_key = SigningKey::generate().expect("a key");
    let unknown = Transaction::sign(
        weft_core::ChainId::from_name("node-test").expect("chain"),
        weft_node::now_ms(),
        Signer::Resource(ResourceId(weft_core::Hash32([9; 32]))),
        &stranger_key,
        Payload::Record(Record {
            issuer: ResourceId(weft_core::Hash32([9; 32])),
            content_type: "text/plain".into(),
            product_code: None,
            body: b"who am I".to_vec(),
        }),
    )
    .expect("signs");

    let mut client = connect(&address);
    send(&mut client, wire::HELLO, 1, token.trim().as_bytes());
    send(
        &mut client,
        wire::RECORD,
        2,
        &wire::record_body("text/csv", b"spindle,1\n"),
    );
    let mut bad_version = wire::encode(wire::RECORD, 3, &wire::record_body("text/csv", b"v"));
    bad_version[4] = 9;
    client.write_all(&bad_version).expect("send");
    send(&mut client, 0x55, 4, b"");
    send(&mut client, wire::RECORD, 5, &[200, b'a']);
    send(&mut client, wire::RECORD, 6, &vec![b'z'; 5000]);
    send(&mut client, wire::TX, 7, b"not a transaction");
    client
        .write_all(&[0, 0, 0, 3, 1, 2, 3])
        .expect("send a runt frame");
    send(
        &mut client,
        wire::RECORD,
        8,
        &wire::record_body("text/csv", b"spindle,2\n"),
    );
    send(&mut client, wire::PING, 9, b"");
    send(
        &mut client,
        wire::TX,
        10,
        &weft_core::encoding::encode(&unknown),
    );
    let mut answers = BTreeMap::new();
    while answers.len() < 11 {
        let frame = receive(&mut client);
        answers.insert(frame.request, frame);
    }
    let welcome = wire::parse_welcome(&answers[&1].body).expect("welcome");
    assert_eq!(welcome.flags & wire::FLAG_RECORDS, wire::FLAG_RECORDS);
    assert_eq!(welcome.max_frame, 4096);
    for (request, code) in [
        (3, "version"),
        (4, "kind"),
        (5, "malformed"),
        (6, "too_large"),
        (7, "bad_transaction"),
        (0, "malformed"),
    ] {
        assert_eq!(error_code(&answers[&request]), code, "frame {request}");
    }
    assert_eq!(answers[&9].kind, wire::PONG);
    assert_eq!(answers[&10].kind, wire::REJECTED);
    let mut committed = Vec::new();
    for request in [2, 8] {
        assert_eq!(answers[&request].kind, wire::COMMITTED, "frame {request}");
        let (id, height, _) = wire::parse_committed(&answers[&request].body).expect("body");
        assert!(height >= 1);
        committed.push(hex::encode(id));
    }

    // What was committed is on the chain, signed by the node's identity, byte for byte.
    let (status, tx) = http(
        "GET",
        &format!("{}/v1/transactions/{}", node.url, committed[1]),
        None,
        b"",
    );
    assert_eq!(status, 200, "{tx}");
    assert_eq!(tx["payload"]["body"]["contentType"], "text/csv", "{tx}");
    assert_eq!(
        tx["payload"]["body"]["body"],
        hex::encode(b"spindle,2\n"),
        "{tx}"
    );
    assert_eq!(
        tx["payload"]["body"]["issuer"].as_str(),
        Some(hex::encode(welcome.identity).as_str())
    );

    // The node still serves both listeners; the CLI client records files and sealed lines.
    let (status, _) = http("GET", &format!("{}/health", node.url), None, b"");
    assert_eq!(status, 200);
    let file = home.join("cycle.csv");
    std::fs::write(&file, b"cycle,17\n").expect("write");
    let recorded = node.cli(
        &[
            "ingest",
            "tcp",
            file.to_str().expect("utf-8"),
            "--content-type",
            "text/csv",
        ],
        0,
    );
    assert_eq!(
        (recorded["recorded"].as_u64(), recorded["failed"].as_u64()),
        (Some(1), Some(0))
    );

    let key = home.join("seal.key");
    run(
        &home,
        &["ingest", "seal-key", key.to_str().expect("utf-8")],
        0,
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([
            "--home",
            home.to_str().expect("utf-8"),
            "--json",
            "ingest",
            "tcp",
            "--lines",
        ])
        .args([
            "--seal-key",
            key.to_str().expect("utf-8"),
            "--content-type",
            "text/plain",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(b"torque 41.5\ntorque 41.7\n")?;
            child.wait_with_output()
        })
        .expect("weft ingest tcp --lines runs");
    assert!(output.status.success(), "{output:?}");
    let sealed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(sealed["recorded"], 2, "{sealed}");
    let sealed_id = sealed["results"][1]["tx_id"]
        .as_str()
        .expect("tx id")
        .to_string();
    let (_, tx) = http(
        "GET",
        &format!("{}/v1/transactions/{sealed_id}", node.url),
        None,
        b"",
    );
    let body = hex::decode(tx["payload"]["body"]["body"].as_str().expect("body")).expect("hex");
    assert!(
        !body.windows(11).any(|w| w == b"torque 41.7"),
        "the plaintext is on the chain"
    );
    assert_eq!(
        tx["payload"]["body"]["contentType"],
        "application/vnd.weft.sealed"
    );
    let opened = node.cli(
        &[
            "ingest",
            "open",
            &sealed_id,
            "--seal-key",
            key.to_str().expect("utf-8"),
        ],
        0,
    );
    assert_eq!(opened["body_hex"], hex::encode(b"torque 41.7"), "{opened}");
    assert_eq!(opened["content_type"], "text/plain");
    let other = home.join("other.key");
    run(
        &home,
        &["ingest", "seal-key", other.to_str().expect("utf-8")],
        0,
    );
    let refused = node.cli(
        &[
            "ingest",
            "open",
            &sealed_id,
            "--seal-key",
            other.to_str().expect("utf-8"),
        ],
        1,
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("another key"),
        "{refused}"
    );

    // `weft tail` follows blocks: the first two, one JSON line each.
    let output = weft(
        &home,
        &[
            "--json", "tail", "--from", "1", "--count", "2", "--node", &node.url,
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line"))
        .collect();
    let heights: Vec<u64> = lines
        .iter()
        .map(|line| line["height"].as_u64().expect("height"))
        .collect();
    assert_eq!(heights, vec![1, 2]);
    // Each block shown once it checked as final against the trust root.
    assert!(
        lines.iter().all(|line| line["finality"] == "sealed"),
        "{lines:?}"
    );

    // ingest.tcp.max_connections = 3 authenticated connections: with `client`, two more get
    // in with the token; a fourth is told the node is busy and closed. (`stranger` never
    // authenticated: it does not count.)
    let mut others = Vec::new();
    for _ in 0..2 {
        let mut other = connect(&address);
        send(&mut other, wire::HELLO, 1, token.trim().as_bytes());
        assert_eq!(receive(&mut other).kind, wire::WELCOME);
        others.push(other);
    }
    let mut fourth = connect(&address);
    send(&mut fourth, wire::HELLO, 1, token.trim().as_bytes());
    let busy = receive(&mut fourth);
    assert_eq!((busy.request, error_code(&busy)), (0, "busy".into()));
    let mut byte = [0u8; 1];
    assert_eq!(
        fourth.read(&mut byte).unwrap_or(0),
        0,
        "a fourth authenticated connection was served"
    );
    drop(others);

    // Shutdown with ingest connections still open: they are closed, the node exits 0.
    let metrics = http("GET", &format!("{}/metrics", node.url), None, b"").1;
    let metrics = metrics.as_str().expect("text");
    assert!(
        metrics.contains("weft_ingest_tcp_error_frames_total 8"),
        "{metrics}"
    );
    let status = node.terminate();
    assert!(status.success(), "{status}");
    drop((client, stranger));
}

#[test]
fn a_connection_past_its_unanswered_budget_pauses_then_goes_on_in_order() {
    // 64 KiB of unanswered frames per connection: 1,200 records of 1,000 bytes are about 19
    // budgets' worth, so the node must stop reading many times, hand over what it holds, and
    // read on once answers went out.
    let (_dir, home) = new_home(&[(
        "max_unanswered_bytes = 67108864",
        "max_unanswered_bytes = 65536",
    )]);
    let node = Node::start_with(&home, &["--tcp", "127.0.0.1:0"]);
    let address = node.tcp.clone().expect("the node listens for TCP ingest");
    let token = std::fs::read_to_string(home.join("ingest.token")).expect("ingest token");
    const FRAMES: u64 = 1_200;

    let mut reader = connect(&address);
    let mut writer = reader.try_clone().expect("a second handle");
    let sender = std::thread::spawn(move || {
        send(&mut writer, wire::HELLO, 1, token.trim().as_bytes());
        for request in 2..FRAMES + 2 {
            let mut body = format!("sample {request}\n").into_bytes();
            body.resize(1_000, b'.');
            send(
                &mut writer,
                wire::RECORD,
                request,
                &wire::record_body("text/plain", &body),
            );
        }
    });
    assert_eq!(receive(&mut reader).kind, wire::WELCOME);
    let mut last = (0u64, 0u32);
    for request in 2..FRAMES + 2 {
        let frame = receive(&mut reader);
        assert_eq!(frame.request, request, "answers come in the frames' order");
        assert_eq!(frame.kind, wire::COMMITTED, "frame {request}: {frame:?}");
        let (_, height, index) = wire::parse_committed(&frame.body).expect("body");
        assert!(
            (height, index) > last,
            "frame {request} is at {height}/{index}, before the frame sent ahead of it at \
             {last:?}: the chain keeps a connection's order"
        );
        last = (height, index);
    }
    sender.join().expect("the sender finished");

    let metrics = http("GET", &format!("{}/metrics", node.url), None, b"").1;
    let metrics = metrics.as_str().expect("text");
    let paused: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("weft_ingest_tcp_backpressure_total "))
        .and_then(|count| count.trim().parse().ok())
        .expect("the back-pressure counter is exported");
    assert!(paused > 0, "the budget never ran out:\n{metrics}");
    assert_eq!(node.terminate().code(), Some(0));
}

#[test]
fn a_configured_certificate_puts_the_api_and_tcp_ingest_behind_tls() {
    let (_dir, home, cert) = tls_home();
    let node = Node::start_with(&home, &["--tcp", "127.0.0.1:0"]);
    assert!(node.url.starts_with("https://"), "{}", node.url);
    let org = with_ca(
        &home,
        &cert,
        &[
            "org",
            "add",
            "Tls Works",
            "--country",
            "DE",
            "--town",
            "Jena",
            "--node",
            &node.url,
        ],
        0,
    );
    assert!(org["id"].is_string(), "{org}");
    let info = with_ca(&home, &cert, &["chain", "info", "--node", &node.url], 0);
    assert_eq!(info["chain_name"], "node-test");

    // Without --ca the client says what to give; plain HTTP to the TLS port gets nowhere.
    let refused = run(&home, &["chain", "info", "--node", &node.url], 1);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("--ca"),
        "{refused}"
    );
    let plain = node.url.replace("https://", "http://");
    let refused = run(&home, &["chain", "info", "--node", &plain], 1);
    assert!(refused["error"]["message"].is_string(), "{refused}");
    // A certificate the node does not present is not trusted.
    let (_other_dir, other_home, other_cert) = tls_home();
    let refused = with_ca(
        &other_home,
        &other_cert,
        &["chain", "info", "--node", &node.url],
        1,
    );
    assert!(refused["error"]["message"].is_string(), "{refused}");

    // TCP ingest over TLS, with the address the node wrote in its home.
    let recorded = json_reading_over_tls(&home, &cert);
    assert_eq!(recorded["recorded"], 1, "{recorded}");
    let id = recorded["results"][0]["tx_id"].as_str().expect("id");
    let shown = with_ca(&home, &cert, &["tx", "show", id, "--node", &node.url], 0);
    assert_eq!(
        shown["payload"]["body"]["contentType"], "application/json",
        "{shown}"
    );
    // Plain frames to the TLS listener get no answer frame, and the node keeps serving.
    let mut raw = connect(node.tcp.as_deref().expect("tcp"));
    send(&mut raw, wire::PING, 1, b"");
    let mut byte = [0u8; 1];
    let answered = raw
        .read(&mut byte)
        .map(|read| read > 0 && byte[0] == 0)
        .unwrap_or(false);
    assert!(
        !answered,
        "a plain PING got a plain answer from a TLS listener"
    );
    let info = with_ca(&home, &cert, &["node", "status", "--node", &node.url], 0);
    assert!(info["height"].as_u64().expect("height") >= 2, "{info}");
    assert!(node.terminate().success());
}

#[test]
fn clients_over_the_request_rate_get_429_with_retry_after() {
    let (_dir, home) = new_home(&[
        ("rate_per_s = 0", "rate_per_s = 2"),
        ("rate_burst = 200", "rate_burst = 5"),
    ]);
    let node = Node::start(&home);
    let agent = agent();
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..20 {
        let mut response = agent
            .get(format!("{}/v1/status", node.url))
            .call()
            .expect("answers");
        statuses.push(response.status().as_u16());
        if response.status() == 429 && limited.is_none() {
            let retry = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap_or("").to_string());
            let body: Value =
                serde_json::from_str(&response.body_mut().read_to_string().expect("body"))
                    .expect("JSON");
            limited = Some((retry, body));
        }
    }
    // 20 requests in far less than the 7.5 s that 5 + 2/s would need: the burst passes, the
    // rest is refused.
    assert!(
        statuses.iter().filter(|s| **s == 200).count() >= 5,
        "{statuses:?}"
    );
    let (retry, body) = limited.expect("some requests were limited");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    let seconds: u64 = retry.expect("retry-after").parse().expect("whole seconds");
    assert!((1..=2).contains(&seconds), "retry-after {seconds}");
    // Wait out the limit (the bucket refills at 2 per second), then read the count.
    let mut metrics = None;
    for _ in 0..50 {
        let (status, value) = http("GET", &format!("{}/metrics", node.url), None, b"");
        statuses.push(status);
        if status == 200 {
            metrics = Some(value);
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let metrics = metrics.expect("the limit lifts");
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        metrics
            .as_str()
            .expect("text")
            .contains(&format!("weft_api_rate_limited_total {refused}")),
        "{metrics}"
    );
}
