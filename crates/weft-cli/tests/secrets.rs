//! Issue 25, findings 7 and 8, against the real `weft` binary and real `weft node run`
//! processes: every secret is refused when other users may read it, with the `chmod` to run;
//! ledger files are owner-only; a command whose reader has gone ends quietly; `timeout_ms=0`
//! is answered with the documented `timeout_ms` error.
//!
//! The mode tests assume the usual umask (022): under 077 every file is private anyway.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::node::{Node, claim_tx, encoded, http, new_home, org, post_json};
use common::{run, weft};
use serde_json::json;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs weft and waits at most 60 s: a command that should have refused to start (a node
/// given a secret others can read) and runs instead is killed, and the test fails.
fn weft_refusing(home: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("--home")
        .arg(home)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("reaped");
            panic!(
                "weft {args:?} was still running after 60 s instead of refusing; stderr {}",
                text(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Asserts that weft exited 1 naming `file` and the command that makes it private.
fn assert_refused(output: &Output, file: &Path) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr {stderr}");
    let chmod = format!("chmod 600 {}", file.display());
    assert!(stderr.contains(&chmod), "no `{chmod}` in: {stderr}");
}

#[test]
fn a_seal_key_readable_by_others_is_refused_with_the_chmod_to_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let key = dir.path().join("seal.key");
    let record = dir.path().join("record.txt");
    std::fs::write(&record, "measured 0.02 mm\n").expect("record");
    run(
        &home,
        &["ingest", "seal-key", key.to_str().expect("utf-8")],
        0,
    );
    assert_eq!(mode(&key), 0o600);
    chmod(&key, 0o644);
    // Before anything is sent: the key is read before the node is reached.
    let sealing = weft(
        &home,
        &[
            "ingest",
            "tcp",
            record.to_str().expect("utf-8"),
            "--to",
            "127.0.0.1:1",
            "--seal-key",
            key.to_str().expect("utf-8"),
        ],
    );
    assert_refused(&sealing, &key);
    let opening = weft(
        &home,
        &[
            "ingest",
            "open",
            &"ab".repeat(32),
            "--seal-key",
            key.to_str().expect("utf-8"),
        ],
    );
    assert_refused(&opening, &key);
    // Group-readable is refused too.
    chmod(&key, 0o640);
    assert_refused(
        &weft(
            &home,
            &[
                "ingest",
                "open",
                &"ab".repeat(32),
                "--seal-key",
                key.to_str().expect("utf-8"),
            ],
        ),
        &key,
    );

    // The ingest token a client shows is a secret as well.
    let token = dir.path().join("ingest.token");
    std::fs::write(&token, format!("{}\n", "7".repeat(64))).expect("token");
    chmod(&token, 0o644);
    let showing = weft(
        &home,
        &[
            "ingest",
            "tcp",
            record.to_str().expect("utf-8"),
            "--to",
            "127.0.0.1:1",
            "--token-file",
            token.to_str().expect("utf-8"),
        ],
    );
    assert_refused(&showing, &token);
}

#[test]
fn a_node_refuses_tokens_and_a_tls_key_readable_by_others() {
    for name in ["admin.token", "ingest.token"] {
        let (_dir, home) = new_home(&[]);
        let path = home.join(name);
        std::fs::write(&path, format!("{}\n", "5".repeat(64))).expect("token");
        chmod(&path, 0o644);
        let output = weft_refusing(&home, &["node", "run", "--api", "127.0.0.1:0"]);
        assert_refused(&output, &path);
        assert!(
            !home.join("node.addr").exists(),
            "{name}: the node listened"
        );
    }

    let (_dir, home) = new_home(&[
        ("cert = \"\"", "cert = \"tls/cert.pem\""),
        ("key = \"\"", "key = \"tls/key.pem\""),
    ]);
    let tls = home.join("tls");
    run(
        &home,
        &["tls", "self-signed", "--out", tls.to_str().expect("utf-8")],
        0,
    );
    let key = tls.join("key.pem");
    chmod(&key, 0o644);
    let output = weft_refusing(&home, &["node", "run", "--api", "127.0.0.1:0"]);
    assert_refused(&output, &key);
    // The certificate is public: only the key's mode matters.
    chmod(&key, 0o600);
    let node = Node::start(&home);
    assert!(node.url.starts_with("https://"), "{}", node.url);
    assert_eq!(node.terminate().code(), Some(0));
}

#[test]
fn ledger_files_are_private_and_those_of_an_earlier_weft_are_tightened() {
    let (_dir, home) = new_home(&[]);
    assert_eq!(mode(&home), 0o700, "the home");
    assert_eq!(mode(&home.join("keys")), 0o700);
    assert_eq!(mode(&home.join("ledger.redb")), 0o600);

    let node = Node::start(&home);
    // Answered: the node is past writing node.addr and serving.
    let (status, _) = http("GET", &format!("{}/v1/status", node.url), None, b"");
    assert_eq!(status, 200);
    for name in [
        "node.addr",
        "queue.log",
        "ledger.redb",
        "admin.token",
        "ingest.token",
    ] {
        assert_eq!(mode(&home.join(name)), 0o600, "{name}");
    }
    assert_eq!(node.terminate().code(), Some(0));

    // A home as an earlier weft left it: ledger files readable by everyone.
    std::fs::write(home.join("evidence.jsonl"), "").expect("evidence");
    std::fs::create_dir(home.join("network")).expect("network");
    let opened: Vec<(PathBuf, u32)> = vec![
        (home.join("ledger.redb"), 0o644),
        (home.join("queue.log"), 0o644),
        (home.join("evidence.jsonl"), 0o664),
        (home.join("network"), 0o755),
        (home.join("keys"), 0o755),
    ];
    for (path, old) in &opened {
        chmod(path, *old);
    }
    let output = weft(&home, &["chain", "info", "--json"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    for (path, old) in &opened {
        let private = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(path), private, "{}", path.display());
        let said = format!(
            "{} was open to other users (mode {old:03o}); made it {private:03o}",
            path.display()
        );
        assert!(stderr.contains(&said), "no {said:?} in: {stderr}");
    }
    // Said once: the next command finds nothing to change.
    let again = weft(&home, &["chain", "info", "--json"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(again.stderr.is_empty(), "{}", text(&again.stderr));
}

/// Runs weft with standard output a pipe whose reader has already gone, as in
/// `weft … | head` once head has read its lines.
fn weft_into_closed_pipe(home: &Path, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("--home")
        .arg(home)
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("weft runs")
}

#[test]
fn every_command_ends_quietly_when_the_reader_of_its_output_has_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    run(&home, &["init", "--chain-id", "closed-pipe"], 0);
    let at = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_string();
    let acme = org(&home, "Acme");
    std::fs::write(at("bracket.step"), "solid bracket rev C\n").expect("file");
    let claimed = run(&home, &["claim", &at("bracket.step"), "--as", &acme], 0);
    let tx_id = claimed["tx_id"].as_str().expect("tx id").to_string();

    let gcode = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../corpus/gcode/13_mmu2s_prusaslicer250_small.gcode");
    run(&home, &["gcode", "keygen", "--out", &at("printer")], 0);
    run(
        &home,
        &[
            "gcode",
            "seal",
            gcode.to_str().expect("utf-8"),
            "--out",
            &at("part.wgc"),
            "--manifest",
            &at("part.json"),
            "--to",
            &at("printer.pub"),
            "--as",
            &acme,
        ],
        0,
    );

    let (step, container, key, manifest) = (
        at("bracket.step"),
        at("part.wgc"),
        at("printer.key"),
        at("part.json"),
    );
    // (arguments, the exit code README documents for them)
    let commands: Vec<(Vec<&str>, i32)> = vec![
        (vec!["chain", "info"], 0),
        (vec!["chain", "info", "--json"], 0),
        (vec!["history", &step, "--json"], 0),
        (vec!["proof", &tx_id], 0),
        (vec!["tx", "show", &tx_id, "--json"], 0),
        (
            vec![
                "gcode",
                "open",
                &container,
                "--key",
                &key,
                "--manifest",
                &manifest,
                "--out",
                "-",
                "--as",
                &acme,
            ],
            0,
        ),
        // An error keeps its exit code although its JSON report is not read.
        (vec!["claim", "no-such-file", "--as", &acme, "--json"], 1),
    ];
    for (args, code) in commands {
        let output = weft_into_closed_pipe(&home, &args);
        let stderr = text(&output.stderr);
        assert!(!stderr.contains("panicked"), "weft {args:?}: {stderr}");
        assert_eq!(output.status.code(), Some(code), "weft {args:?}: {stderr}");
        assert!(stderr.is_empty(), "weft {args:?} was not quiet: {stderr}");
    }
}

#[test]
fn timeout_ms_0_is_answered_with_the_timeout_ms_error_whatever_the_body() {
    let (_dir, home) = new_home(&[]);
    let node = Node::start(&home);
    let issuer = org(&home, "Acme");
    let valid = claim_tx(&home, &issuer, b"timeout probe", "probe.step");
    let single = format!("{}/v1/transactions", node.url);
    let batch = format!("{}/v1/transactions/batch", node.url);
    let cases = [
        (
            format!("{single}?timeout_ms=0"),
            json!({"transaction": "00"}),
        ),
        (
            format!("{single}?timeout_ms=0"),
            json!({"transaction": "not hex"}),
        ),
        (
            format!("{single}?timeout_ms=0"),
            json!({"transaction": encoded(&valid)}),
        ),
        (format!("{batch}?timeout_ms=0"), json!({"transactions": []})),
        (
            format!("{batch}?timeout_ms=0"),
            json!({"transactions": ["00"]}),
        ),
        (
            format!("{single}?timeout_ms=999999999"),
            json!({"transaction": "00"}),
        ),
        (
            format!("{single}?wait=false&timeout_ms=5"),
            json!({"transaction": "00"}),
        ),
    ];
    for (url, body) in cases {
        let (status, answer) = post_json(&url, &body);
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("timeout_ms")),
            "{url} {body}: {answer}"
        );
    }
    let (_, answer) = post_json(
        &format!("{single}?timeout_ms=0"),
        &json!({"transaction": "00"}),
    );
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("got 0"), "{answer}");
    // Refused before anything was queued.
    let (status, _) = http(
        "GET",
        &format!("{}/v1/transactions/{}", node.url, valid.id().to_hex()),
        None,
        b"",
    );
    assert_eq!(status, 404);
    assert_eq!(node.terminate().code(), Some(0));
}
