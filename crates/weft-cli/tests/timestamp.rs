//! RFC 3161 time-stamps of a chain's checkpoints (docs/anchoring.md, "Public timestamps"), with
//! real processes: OpenSSL's own TSA (`openssl ts -reply`) behind a small HTTP endpoint on
//! loopback, and `weft node run` with `[timestamp]`. The node obtains a token for its checkpoint,
//! checks it and records it; `weft anchor timestamp` checks it through the node and offline from
//! a proof file; a stranger's CA is refused; a TSA that answers with an old token (another
//! checkpoint, another nonce) or with garbage gets nothing recorded, and the node says why.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use serde_json::Value;

mod common;
#[path = "../../weft-ledger/tests/support/tsa.rs"]
mod tsa;
use common::node::*;
use common::run;

const HONEST: u8 = 0;
const REPLAYING: u8 = 1;
const GARBAGE: u8 = 2;

/// The TSA over HTTP: `POST /tsa` with a DER request, answered by `openssl ts -reply`; stops
/// when dropped.
struct Endpoint {
    url: String,
    mode: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Endpoint {
    fn start(tsa: tsa::Tsa) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}/tsa", listener.local_addr().expect("address"));
        let (mode, stop) = (
            Arc::new(AtomicU8::new(HONEST)),
            Arc::new(AtomicBool::new(false)),
        );
        let (thread_mode, thread_stop) = (mode.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut last: Option<Vec<u8>> = None;
            while !thread_stop.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                stream.set_nonblocking(false).expect("blocking");
                stream
                    .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .expect("timeout");
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                let fresh = tsa.reply(&request);
                let body = match thread_mode.load(Ordering::Relaxed) {
                    REPLAYING => last.clone().unwrap_or_else(|| fresh.clone()),
                    GARBAGE => b"not a time-stamp response".to_vec(),
                    _ => fresh.clone(),
                };
                last = Some(fresh);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        Endpoint {
            url,
            mode,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The body of one HTTP request (by its Content-Length), at most 64 KiB.
fn read_request(stream: &mut std::net::TcpStream) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    let end = loop {
        let read = stream.read(&mut buffer).ok()?;
        if read == 0 {
            return None;
        }
        bytes.extend_from_slice(&buffer[..read]);
        if let Some(at) = bytes.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        if bytes.len() > 65_536 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))?
        .trim()
        .parse()
        .ok()?;
    while bytes.len() < end + length && bytes.len() <= 65_536 {
        let read = stream.read(&mut buffer).ok()?;
        if read == 0 {
            return None;
        }
        bytes.extend_from_slice(&buffer[..read]);
    }
    Some(bytes[end..end + length].to_vec())
}

fn stamping(node: &Node) -> Value {
    let (code, body) = http("GET", &format!("{}/v1/anchors", node.url), None, b"");
    assert_eq!(code, 200, "{body}");
    body["timestamping"].clone()
}

#[test]
fn a_checkpoint_time_stamped_by_openssl_ts_is_recorded_and_checks_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tsa = tsa::Tsa::new(&dir.path().join("tsa"), "ec", true);
    let ca = tsa.ca_pem.to_str().expect("utf-8").to_string();
    let endpoint = Endpoint::start(tsa);
    let home = dir.path().join("a");
    run(&home, &["init", "--chain-id", "company-a"], 0);
    let root = dir.path().join("a.trust.json");
    let root = root.to_str().expect("utf-8");
    run(&home, &["trust", "export", "--out", root], 0);
    std::fs::copy(&ca, home.join("tsa-ca.pem")).expect("copy");
    let config = std::fs::read_to_string(home.join("config.toml")).expect("config");
    let (before, after) = config.split_once("[timestamp]\n").expect("[timestamp]");
    let after = after
        .replacen("enabled = false", "enabled = true", 1)
        .replacen("url = \"\"", &format!("url = \"{}\"", endpoint.url), 1)
        .replacen("ca = \"\"", "ca = \"tsa-ca.pem\"", 1)
        .replacen("interval_ms = 60000", "interval_ms = 200", 1);
    std::fs::write(
        home.join("config.toml"),
        format!("{before}[timestamp]\n{after}"),
    )
    .expect("config");
    let designer = org(&home, "Designer");
    let node = Node::start(&home);
    let file = dir.path().join("released.gcode");
    std::fs::write(&file, "G1 X1\n").expect("write");
    let claim = node.cli(
        &["claim", "--as", &designer, file.to_str().expect("utf-8")],
        0,
    );
    let height = get_height(&node, claim["tx_id"].as_str().expect("tx"));

    // The node time-stamps a checkpoint that holds the claim, and records the token.
    let stamped = wait_until(60, || {
        let stamping = stamping(&node);
        (stamping["size"].as_u64() > Some(height) && stamping["tx"].is_string())
            .then(|| stamping.clone())
            .ok_or_else(|| format!("{stamping}"))
    });
    let tx = stamped["tx"].as_str().expect("tx").to_string();
    let checked = node.cli(&["anchor", "timestamp", &tx, "--tsa-ca", &ca], 0);
    assert_eq!(checked["valid"], true, "{checked}");
    assert_eq!(checked["checkpoint"]["size"], stamped["size"], "{checked}");
    assert_eq!(checked["time_ms"], stamped["time_ms"], "{checked}");
    assert!(
        checked["tsa"]
            .as_str()
            .expect("tsa")
            .contains("weft test TSA")
    );
    let status = node.cli(&["anchor", "status"], 0);
    assert_eq!(
        status["anchors"]["timestamping"]["tx"],
        tx.as_str(),
        "{status}"
    );

    // A TSA that answers with an old token, or with garbage: nothing is recorded.
    for (mode, says) in [
        (REPLAYING, "does not check"),
        (GARBAGE, "not a time-stamp response"),
    ] {
        endpoint.mode.store(mode, Ordering::Relaxed);
        let failures = stamping(&node)["failures"].as_u64().unwrap_or(0);
        std::fs::write(&file, format!("G1 Y{mode}\n")).expect("write");
        node.cli(
            &["claim", "--as", &designer, file.to_str().expect("utf-8")],
            0,
        );
        let refused = wait_until(60, || {
            let stamping = stamping(&node);
            let error = stamping["last_error"].as_str().unwrap_or_default();
            (stamping["failures"].as_u64() > Some(failures) && error.contains(says))
                .then(|| stamping.clone())
                .ok_or_else(|| format!("{stamping}"))
        });
        assert_eq!(
            refused["tx"],
            tx.as_str(),
            "nothing new recorded: {refused}"
        );
    }
    endpoint.mode.store(HONEST, Ordering::Relaxed);

    // Offline, from the transaction's proof file: with the TSA's CA, and with a stranger's.
    let proof = dir.path().join("timestamp.proof.json");
    let proof = proof.to_str().expect("utf-8");
    node.cli(&["proof", &tx, "--out", proof], 0);
    drop(node);
    let third = dir.path().join("third-party");
    std::fs::create_dir_all(&third).expect("mkdir");
    let offline = run(
        &third,
        &[
            "anchor",
            "timestamp",
            proof,
            "--tsa-ca",
            &ca,
            "--trust",
            root,
        ],
        0,
    );
    assert_eq!(offline["valid"], true, "{offline}");
    let stranger = tsa::Tsa::new(&dir.path().join("stranger"), "ec", true);
    let refused = run(
        &third,
        &[
            "anchor",
            "timestamp",
            proof,
            "--tsa-ca",
            stranger.ca_pem.to_str().expect("utf-8"),
            "--trust",
            root,
        ],
        4,
    );
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("does not chain"), "{refused}");
}

fn get_height(node: &Node, tx: &str) -> u64 {
    let (code, body) = http(
        "GET",
        &format!("{}/v1/transactions/{tx}", node.url),
        None,
        b"",
    );
    assert_eq!(code, 200, "{body}");
    body["height"].as_u64().expect("height")
}
