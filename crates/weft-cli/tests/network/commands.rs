//! `weft cluster` commands: their arguments, refusals, and what `status` and `up` report.

use serde_json::{Value, json};

use crate::cluster::{Cluster, wait_net_status};
use crate::common::node::http;
use crate::common::{json_of, run, weft};
use crate::{DEADLINE, one_network_at_a_time};

/// Sends `signal` (`-STOP`, `-CONT`) to `pid` with kill(1).
fn signal(pid: u64, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal} {pid}");
}

/// Two single-validator networks of different chains listed as one cluster: `weft cluster
/// status` finds their blocks at the common height differ, says so, and exits 4.
#[test]
fn cluster_status_reports_nodes_that_disagree() {
    let _network = one_network_at_a_time();
    let first = Cluster::up(&["--nodes", "1"]);
    let second = Cluster::up(&["--nodes", "1"]);
    for cluster in [&first, &second] {
        wait_net_status(&cluster.members[0].api, "a block past genesis", |net| {
            net["height"].as_u64() >= Some(1)
        });
    }
    let node = |cluster: &Cluster, name: &str| -> Value {
        let file: Value = serde_json::from_str(
            &std::fs::read_to_string(cluster.dir.join("cluster.json")).expect("cluster.json"),
        )
        .expect("JSON");
        let mut node = file["nodes"][0].clone();
        node["name"] = json!(name);
        node
    };
    let mixed = first._dir.path().join("mixed");
    std::fs::create_dir_all(&mixed).expect("dir");
    let file = json!({
        "chain": "mixed",
        "nodes": [node(&first, "ours"), node(&second, "theirs")],
    });
    std::fs::write(mixed.join("cluster.json"), file.to_string()).expect("written");
    let dir = mixed.to_str().expect("utf-8");
    let status = run(&mixed, &["cluster", "status", "--dir", dir], 4);
    assert_eq!(status["agree"], false, "{status}");
    assert_eq!(status["healthy"], false, "{status}");
    assert_eq!(status["common_hash"], Value::Null, "{status}");
    assert_eq!(status["answering"], 2, "{status}");
    let hashes: Vec<&Value> = status["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|node| &node["common_hash"])
        .collect();
    assert!(hashes.iter().all(|hash| hash.is_string()), "{status}");
    assert_ne!(hashes[0], hashes[1], "{status}");
    let text = weft(&mixed, &["cluster", "status", "--dir", dir]);
    assert_eq!(text.status.code(), Some(4));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("THE NODES DISAGREE on block"), "{text}");
    // Each cluster on its own agrees with itself.
    let alone = first.cluster_status(0);
    assert_eq!(alone["agree"], true, "{alone}");
}

/// The answer `/openapi.json` documents for `GET path` with 200 must describe `answer`.
fn check_documented(document: &Value, path: &str, answer: &Value) {
    let mut schema =
        document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            .clone();
    assert!(schema.is_object(), "no 200 body documented for {path}");
    // The schema with the document's components beside it, so `$ref`s resolve.
    schema["components"] = document["components"].clone();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(answer)
        .map(|error| format!("{error} at {}", error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{path}: the document does not describe the answer:\n{}\n{answer}",
        errors.join("\n")
    );
}

/// A node in a network answers `GET /v1/net/status` and `GET /v1/net/join` as `/openapi.json`
/// documents them (a node of its own answers both 404, so the openapi test cannot see these),
/// and the commands that read them print what the node sent: `weft net status`, `weft net
/// genesis`, and the network fields of `weft cluster status`.
#[test]
fn network_answers_are_documented_and_the_commands_show_them() {
    let _network = one_network_at_a_time();
    let cluster = Cluster::up(&["--nodes", "1"]);
    let api = cluster.members[0].api.clone();
    let home = cluster.members[0].home.clone();
    wait_net_status(&api, "a block past genesis", |net| {
        net["height"].as_u64() >= Some(1)
    });
    let (code, document) = http("GET", &format!("{api}/openapi.json"), None, b"");
    assert_eq!(code, 200, "{document}");
    let (code, net) = http("GET", &format!("{api}/v1/net/status"), None, b"");
    assert_eq!(code, 200, "{net}");
    check_documented(&document, "/v1/net/status", &net);
    let (code, join) = http("GET", &format!("{api}/v1/net/join"), None, b"");
    assert_eq!(code, 200, "{join}");
    check_documented(&document, "/v1/net/join", &join);

    // `weft net status --json`: the node's answer (heights and views move between the two
    // requests; the rest does not).
    let shown = run(&home, &["net", "status", "--node", &api], 0);
    let fields = |value: &Value| -> Vec<String> {
        value
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(fields(&shown), fields(&net), "{shown}");
    for field in [
        "key",
        "validator",
        "epoch",
        "validators",
        "next_validators",
        "members",
    ] {
        assert_eq!(shown[field], net[field], "{field}: {shown}");
    }
    let text = weft(&home, &["net", "status", "--node", &api]);
    assert!(text.status.success(), "{text:?}");
    let text = String::from_utf8_lossy(&text.stdout);
    let key = net["key"].as_str().expect("key");
    for line in [
        format!("network of {api}\n"),
        format!("\n  key          {key}\n"),
        "\n  validator    true\n".to_string(),
        format!(
            "\n  engine       {}\n",
            net["engine"].as_str().expect("engine")
        ),
        format!("\n  validators   {key}"),
    ] {
        assert!(text.contains(&line), "{line:?} not in:\n{text}");
    }

    // `weft net genesis`: the document as the node sent it, pretty-printed.
    let genesis = weft(&home, &["net", "genesis", "--node", &api]);
    assert!(genesis.status.success(), "{genesis:?}");
    assert_eq!(json_of(&genesis), join);

    // `weft cluster status --json`: each node's network fields from the same answer.
    let status = cluster.cluster_status(0);
    let node = &status["nodes"][0];
    assert_eq!(node["validator"], net["validator"], "{status}");
    assert_eq!(node["epoch"], net["epoch"], "{status}");
    assert_eq!(node["sync"], net["sync"], "{status}");
    assert!(node["height"].as_u64() >= Some(1), "{status}");
    assert!(node["head"].is_string(), "{status}");
}

#[test]
fn cluster_commands_refuse_bad_arguments_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = dir.path().join("c");
    let path = cluster.to_str().expect("utf-8");
    let out = run(
        dir.path(),
        &["cluster", "up", "--nodes", "0", "--dir", path],
        1,
    );
    let message = out["error"]["message"].as_str().expect("message");
    assert!(message.contains("--nodes must be between 1"), "{message}");
    std::fs::create_dir_all(&cluster).expect("dir");
    std::fs::write(cluster.join("something"), b"x").expect("file");
    let out = run(dir.path(), &["cluster", "up", "--dir", path], 1);
    let message = out["error"]["message"].as_str().expect("message");
    assert!(message.contains("is not empty"), "{message}");
    let out = run(
        dir.path(),
        &["cluster", "restart", "--dir", path, "--node", "0"],
        1,
    );
    let message = out["error"]["message"].as_str().expect("message");
    assert!(message.contains("no cluster at"), "{message}");
    // A timeout of 0 s is a usage error.
    let output = weft(
        dir.path(),
        &["cluster", "up", "--timeout", "0", "--dir", path],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--timeout"),
        "{output:?}"
    );
    // Nothing was started or written.
    assert!(!cluster.join("cluster.json").exists());
    assert!(!cluster.join("node0").exists());
}

/// `weft cluster up` returns a network that has formed, or stops every node it started: here
/// one of its two validators hangs (SIGSTOP) as soon as it is started, so no block is ever
/// committed (two of two must vote); the hung node is let go once the launcher has asked it to
/// stop (SIGTERM pending), so that it can stop.
#[test]
fn cluster_up_stops_every_node_when_the_network_commits_no_block() {
    let _network = one_network_at_a_time();
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = dir.path().join("c");
    let up = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([
            "cluster",
            "up",
            "--nodes",
            "2",
            "--timeout",
            "5",
            "--json",
            "--dir",
        ])
        .arg(&cluster)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("weft runs");
    // cluster.json names the nodes' pids as soon as they are started.
    let started = std::time::Instant::now();
    let hung = loop {
        let pid = std::fs::read(cluster.join("cluster.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .and_then(|file| file["nodes"][1]["pid"].as_u64());
        if let Some(pid) = pid {
            break pid;
        }
        assert!(started.elapsed() < DEADLINE, "cluster.json never appeared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    signal(hung, "-STOP");
    // A validator that hangs once it listens: the launcher sees the file a node writes when
    // its API listens (the hung node may have written it already).
    let listening = cluster.join("node1").join("node.addr");
    if !listening.exists() {
        std::fs::write(&listening, "127.0.0.1:1\n").expect("node.addr");
    }
    // SIGTERM (bit 15 of the pending signals) arrives when the launcher gives up.
    let term_pending = || {
        std::fs::read_to_string(format!("/proc/{hung}/status"))
            .unwrap_or_default()
            .lines()
            .filter(|line| line.starts_with("SigPnd:") || line.starts_with("ShdPnd:"))
            .filter_map(|line| u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok())
            .any(|pending| pending & (1 << 14) != 0)
    };
    while !term_pending() {
        assert!(
            started.elapsed() < DEADLINE,
            "the launcher never asked the hung node to stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    signal(hung, "-CONT");
    let output = up.wait_with_output().expect("weft ends");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let message = json_of(&output)["error"]["message"]
        .as_str()
        .expect("message")
        .to_string();
    assert!(
        message.contains("node0, node1 committed no block within 5 s")
            && message.contains("every node is stopped"),
        "{message}"
    );
    // The nodes it started are gone (their homes and logs stay, to see why).
    let file: Value =
        serde_json::from_slice(&std::fs::read(cluster.join("cluster.json")).expect("cluster.json"))
            .expect("json");
    for node in file["nodes"].as_array().expect("nodes") {
        let pid = node["pid"].as_u64().expect("pid");
        // Gone, or a zombie nobody reaped yet (the process that started it has exited).
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let running = state
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z') && !rest.is_empty());
        assert!(!running, "{} (pid {pid}) still runs: {state}", node["name"]);
    }
    assert!(cluster.join("node0").join("node.log").exists());
}
