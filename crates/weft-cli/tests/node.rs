//! A real `weft node run` process on loopback, driven through its REST API and the CLI's
//! `--node`: the NIST story, hostile requests, graceful shutdown, and SIGKILL.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weft_core::SigningKey;

mod common;
use common::node::*;
use common::{run, weft};

#[test]
fn the_nist_story_through_a_node_matches_embedded_output() {
    let (dir, home) = new_home(&[]);
    let designer = org(&home, "Designer");
    let maker = org(&home, "Maker");
    let stranger = org(&home, "Stranger");
    let design = dir.path().join("bracket.step");
    std::fs::write(&design, "solid bracket").expect("write");
    let design = design.to_str().expect("utf-8");

    let node = Node::start(&home);
    let claimed = node.cli(&["claim", design, "--as", &designer[..8]], 0);
    let sent = node.cli(
        &["send", design, "--from", &designer[..10], "--to", &maker],
        0,
    );
    assert!(sent["height"].as_u64() > claimed["height"].as_u64());
    let valid = node.cli(&["verify", design, "--as", &maker[..8]], 0);
    assert_eq!(valid["verdict"], "valid");
    assert_eq!(valid["owner"]["id"], designer.as_str());
    assert_eq!(valid["history"].as_array().map(Vec::len), Some(2));
    let refused = node.cli(&["verify", design, "--as", &stranger], 4);
    assert_eq!(refused["verdict"], "not_recipient");
    let duplicate = node.cli(&["claim", design, "--as", &maker], 3);
    assert_eq!(duplicate["error"]["rule"], "rule-3");
    let status = node.cli(&["node", "status"], 0);
    assert_eq!(status["height"], sent["height"]);
    assert_eq!(status["node_type"], "full");

    // The proof the node serves checks offline.
    let tx_id = sent["tx_id"].as_str().expect("tx id");
    let (code, answer) = http(
        "GET",
        &format!("{}/v1/transactions/{tx_id}", node.url),
        None,
        b"",
    );
    assert_eq!(code, 200, "{answer}");
    let proof = dir.path().join("send.proof.json");
    std::fs::write(&proof, answer["proof"].to_string()).expect("write proof");
    let checked = run(
        &home,
        &["proof", "verify", proof.to_str().expect("utf-8")],
        0,
    );
    assert_eq!(checked["valid"], true);

    // What the node answers equals what the home says once the node is stopped.
    let through_node = node.cli(&["history", design], 0);
    assert_eq!(node.terminate().code(), Some(0));
    assert!(
        !home.join("node.addr").exists(),
        "node.addr is removed at exit"
    );
    let embedded = run(&home, &["history", design], 0);
    assert_eq!(through_node, embedded);
    let valid_embedded = run(&home, &["verify", design, "--as", &maker[..8]], 0);
    assert_eq!(valid_embedded, valid);
    assert_eq!(run(&home, &["chain", "verify"], 0)["ok"], true);
}

#[test]
fn hostile_requests_get_clear_4xx_answers_and_the_node_keeps_serving() {
    // A small body limit, so an oversized request is cheap to make.
    let (_dir, home) = new_home(&[("max_body_bytes = 16777216", "max_body_bytes = 4096")]);
    let designer = org(&home, "Designer");
    let node = Node::start(&home);
    let submit = format!("{}/v1/transactions", node.url);

    let (code, answer) = http(
        "POST",
        &submit,
        Some("application/json"),
        b"{\"transaction\":",
    );
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (400, Some("malformed_json")),
        "{answer}"
    );
    let (code, answer) = post_json(&submit, &json!({"transaction": "00", "extra": 1}));
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (422, Some("invalid_body")),
        "{answer}"
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("extra")),
        "{answer}"
    );
    let (code, answer) = post_json(&submit, &json!({"transaction": 7}));
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (422, Some("invalid_body")),
        "{answer}"
    );
    let (code, answer) = http("POST", &submit, Some("text/plain"), b"{}");
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (415, Some("content_type")),
        "{answer}"
    );
    let big = json!({"transaction": "00".repeat(4096)});
    let (code, answer) = post_json(&submit, &big);
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (413, Some("too_large")),
        "{answer}"
    );
    let (code, answer) = post_json(&submit, &json!({"transaction": "zz"}));
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (400, Some("bad_transaction")),
        "{answer}"
    );
    let (code, answer) = post_json(&submit, &json!({"transaction": "0011"}));
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (400, Some("bad_transaction")),
        "{answer}"
    );

    // A signature that does not verify is a rule violation, named.
    let mut tx = claim_tx(&home, &designer, b"part A", "a");
    tx.signature.0[0] ^= 1;
    let (code, answer) = post_json(&submit, &json!({"transaction": encoded(&tx)}));
    assert_eq!(code, 422, "{answer}");
    assert_eq!(answer["error"]["rule"], "signature", "{answer}");

    // Batches: one bad transaction does not sink the good ones; sizes are bounded.
    let good = claim_tx(&home, &designer, b"part B", "b");
    let duplicate = claim_tx(&home, &designer, b"part B", "b, again");
    let (code, answer) = post_json(
        &format!("{submit}/batch"),
        &json!({"transactions": [encoded(&good), encoded(&duplicate), encoded(&good)]}),
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["committed"], 1, "{answer}");
    assert_eq!(
        answer["results"][0]["tx_id"],
        good.id().to_hex(),
        "{answer}"
    );
    assert_eq!(answer["results"][1]["error"]["rule"], "rule-3", "{answer}");
    assert!(
        answer["results"][2]["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("replay")),
        "{answer}"
    );
    let (code, answer) = post_json(&format!("{submit}/batch"), &json!({"transactions": []}));
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (400, Some("batch_size")),
        "{answer}"
    );

    // Reads with bad parameters, unknown routes.
    for (url, want_code, want) in [
        (format!("{}/v1/blocks/abc", node.url), 400, "bad_block"),
        (format!("{}/v1/blocks/999999", node.url), 404, "not_found"),
        (format!("{}/v1/transactions/xyz", node.url), 400, "bad_id"),
        (
            format!("{}/v1/assets/nonsense", node.url),
            400,
            "bad_fingerprint",
        ),
        (
            format!("{}/v1/resources?prefix=12", node.url),
            400,
            "bad_prefix",
        ),
        (
            format!("{}/v1/resources?nope=1", node.url),
            400,
            "bad_query",
        ),
        (format!("{}/v2/anything", node.url), 404, "not_found"),
    ] {
        let (code, answer) = http("GET", &url, None, b"");
        assert_eq!(
            (code, answer["error"]["code"].as_str()),
            (want_code, Some(want)),
            "{url}: {answer}"
        );
    }

    // Still serving, and counting.
    let (code, status) = http("GET", &format!("{}/v1/status", node.url), None, b"");
    assert_eq!(code, 200);
    assert!(status["height"].as_u64() >= Some(2), "{status}");
    let (code, metrics) = http("GET", &format!("{}/metrics", node.url), None, b"");
    assert_eq!(code, 200);
    let metrics = metrics.as_str().expect("text");
    assert!(metrics.contains("weft_chain_height"), "{metrics}");
    // A node on its own has no network to report on.
    assert!(!metrics.contains("weft_net_"), "{metrics}");
    assert!(
        metrics.contains("weft_transactions_rejected_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"/v1/transactions\",status=\"413\""),
        "{metrics}"
    );
    let (code, _) = http("GET", &format!("{}/health", node.url), None, b"");
    assert_eq!(code, 200);
    assert_eq!(node.terminate().code(), Some(0));
}

#[test]
fn a_killed_node_restarts_with_every_acknowledged_transaction() {
    let (_dir, home) = new_home(&[]);
    let designer = org(&home, "Designer");
    let node = Node::start(&home);
    let submit = format!("{}/v1/transactions", node.url);
    let mut acknowledged = Vec::new();
    for i in 0..20u32 {
        let tx = claim_tx(&home, &designer, format!("part {i}").as_bytes(), "p");
        let (code, answer) = post_json(&submit, &json!({"transaction": encoded(&tx)}));
        assert_eq!(code, 200, "{answer}");
        acknowledged.push(answer["tx_id"].as_str().expect("tx id").to_string());
    }
    node.kill();
    let node = Node::start(&home);
    for id in &acknowledged {
        let (code, answer) = http(
            "GET",
            &format!("{}/v1/transactions/{id}", node.url),
            None,
            b"",
        );
        assert_eq!(code, 200, "{id}: {answer}");
        assert_eq!(answer["tx_id"], id.as_str());
    }
    assert_eq!(node.terminate().code(), Some(0));
    assert_eq!(run(&home, &["chain", "verify"], 0)["ok"], true);
}

/// `GET /v1/transactions/{id}` until it answers something other than 202 (queued).
fn settled(node: &Node, id: &str) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = http(
            "GET",
            &format!("{}/v1/transactions/{id}", node.url),
            None,
            b"",
        );
        if answer.0 != 202 {
            return answer;
        }
        assert!(Instant::now() < deadline, "{id} still queued after 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn wait_false_answers_once_queued_and_the_queue_survives_a_sigkill() {
    // Blocks are sealed 60 s after their first transaction: nothing queued below is in a block
    // when the node is killed.
    let (dir, home) = new_home(&[("interval_ms = 100", "interval_ms = 60000")]);
    let designer = org(&home, "Designer");
    let node = Node::start(&home);
    let single = format!("{}/v1/transactions?wait=false", node.url);
    let batch = format!("{}/v1/transactions/batch?wait=false", node.url);
    let mut queued = Vec::new();
    for i in 0..10u32 {
        let tx = claim_tx(&home, &designer, format!("single {i}").as_bytes(), "s");
        let (code, answer) = post_json(&single, &json!({"transaction": encoded(&tx)}));
        assert_eq!(code, 202, "{answer}");
        assert_eq!(answer["state"], "queued");
        assert_eq!(answer["tx_id"], tx.id().to_hex());
        queued.push(tx.id().to_hex());
    }
    let txs: Vec<_> = (0..30u32)
        .map(|i| claim_tx(&home, &designer, format!("batch {i}").as_bytes(), "b"))
        .collect();
    let (code, answer) = post_json(
        &batch,
        &json!({"transactions": txs.iter().map(encoded).collect::<Vec<_>>()}),
    );
    assert_eq!(code, 202, "{answer}");
    assert_eq!(answer["queued"], 30);
    let ids: Vec<String> = txs.iter().map(|tx| tx.id().to_hex()).collect();
    assert_eq!(answer["tx_ids"], json!(ids));
    queued.extend(ids);
    // The same data claimed again: queued (the check needs the chain), refused in its block.
    let duplicate = claim_tx(&home, &designer, b"single 0", "again");
    let (code, _) = post_json(&single, &json!({"transaction": encoded(&duplicate)}));
    assert_eq!(code, 202);
    // A batch with one forged signature is refused whole, its index named; nothing is queued.
    let good = claim_tx(&home, &designer, b"never queued", "n");
    let mut forged = claim_tx(&home, &designer, b"forged", "f");
    forged.signature = claim_tx(&home, &designer, b"other", "o").signature;
    let (code, answer) = post_json(
        &batch,
        &json!({"transactions": [encoded(&good), encoded(&forged)]}),
    );
    assert_eq!(code, 422, "{answer}");
    assert_eq!(answer["error"]["rule"], "signature");
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("transactions[1]: ") && message.contains("nothing was queued"),
        "{message}"
    );
    let (code, _) = post_json(
        &format!("{}/v1/transactions?wait=nope", node.url),
        &json!({"transaction": encoded(&good)}),
    );
    assert_eq!(code, 400, "a wait that is not a boolean");
    // Queued, not committed: GET says so.
    let (code, answer) = http(
        "GET",
        &format!("{}/v1/transactions/{}", node.url, queued[0]),
        None,
        b"",
    );
    assert_eq!(
        (code, &answer["state"]),
        (202, &json!("queued")),
        "{answer}"
    );
    let (code, _) = http(
        "GET",
        &format!("{}/v1/transactions/{}", node.url, good.id().to_hex()),
        None,
        b"",
    );
    assert_eq!(
        code, 404,
        "the good half of the refused batch was not queued"
    );
    assert_eq!(
        http("GET", &format!("{}/v1/status", node.url), None, b"").1["height"],
        1,
        "nothing is in a block yet"
    );
    node.kill();
    assert!(
        std::fs::metadata(home.join("queue.log"))
            .expect("journal")
            .len()
            > 0
    );

    // Restarted with short blocks: every queued transaction is committed, exactly once.
    let config = home.join("config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("interval_ms = 60000", "interval_ms = 100"),
    )
    .expect("config");
    let node = Node::start(&home);
    for id in &queued {
        let (code, answer) = settled(&node, id);
        assert_eq!(code, 200, "{id}: {answer}");
    }
    let (code, answer) = settled(&node, &duplicate.id().to_hex());
    assert_eq!(code, 422, "{answer}");
    assert_eq!(answer["error"]["rule"], "rule-3");
    assert!(
        answer["error"]["message"]
            .as_str()
            .expect("message")
            .contains("queued and then refused")
    );
    let (code, _) = settled(&node, &good.id().to_hex());
    assert_eq!(code, 404);
    assert_eq!(node.terminate().code(), Some(0));
    assert_eq!(
        std::fs::metadata(home.join("queue.log"))
            .expect("journal")
            .len(),
        0,
        "a clean stop with everything settled empties the journal"
    );
    // Each claim once on the chain: 40 queued claims after the registration, nothing twice.
    let design = dir.path().join("single0");
    std::fs::write(&design, "single 0").expect("write");
    let history = run(&home, &["history", design.to_str().expect("utf-8")], 0);
    assert_eq!(
        history["history"].as_array().map(Vec::len),
        Some(1),
        "{history}"
    );
    let audit = run(&home, &["chain", "verify"], 0);
    assert_eq!(audit["ok"], true);
    assert_eq!(audit["transactions"], 2 + 40, "{audit}");
}

#[test]
fn bad_configuration_is_refused_at_start_with_the_key_named() {
    let (_dir, home) = new_home(&[("interval_ms = 100", "interval_ms = 10")]);
    let output = weft(&home, &["node", "run", "--api", "127.0.0.1:0"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("blocks.interval_ms"), "{stderr}");
    let (_dir, home) = new_home(&[]);
    let output = weft(&home, &["node", "run", "--api", "localhost"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("api.listen"), "{stderr}");
    let output = weft(&home, &["node", "status", "--node", "ftp://x"]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn gcode_manifests_are_recorded_and_checked_through_a_node() {
    let (dir, home) = new_home(&[]);
    let designer = org(&home, "Designer");
    let root = dir.path();
    let mut gcode = String::from("G21\nG90\nM82\n");
    for layer in 1..=5 {
        gcode.push_str(&format!(
            ";LAYER_CHANGE\nG1 Z{:.1}\nG1 X10 Y10 E{layer}\n",
            f64::from(layer) * 0.2
        ));
    }
    std::fs::write(root.join("part.gcode"), &gcode).expect("write");
    let path = |name: &str| root.join(name).to_str().expect("utf-8").to_string();
    let node = Node::start(&home);
    run(&home, &["gcode", "keygen", "--out", &path("printer")], 0);
    let sealed = node.cli(
        &[
            "gcode",
            "seal",
            &path("part.gcode"),
            "--out",
            &path("part.wgc"),
            "--manifest",
            &path("part.json"),
            "--to",
            &path("printer.pub"),
            "--as",
            &designer[..8],
        ],
        0,
    );
    assert!(sealed["recorded"]["tx_id"].is_string(), "{sealed}");
    let verified = node.cli(
        &[
            "gcode",
            "verify",
            &path("part.wgc"),
            "--manifest",
            &path("part.json"),
        ],
        0,
    );
    assert_eq!(verified["ledger"]["recorded"], true, "{verified}");
    assert_eq!(
        verified["ledger"]["by"]["id"],
        designer.as_str(),
        "{verified}"
    );
    assert_eq!(verified["ledger"]["signer_matches"], true, "{verified}");

    // A forger re-seals a changed file with a manifest of its own: not on the ledger.
    std::fs::write(
        root.join("forged.gcode"),
        gcode.replace("X10 Y10 E3", "X90 Y10 E3"),
    )
    .expect("write");
    run(
        &home,
        &[
            "gcode",
            "seal",
            &path("forged.gcode"),
            "--out",
            &path("forged.wgc"),
            "--manifest",
            &path("forged.json"),
            "--to",
            &path("printer.pub"),
            "--no-record",
        ],
        0,
    );
    let refused = node.cli(
        &[
            "gcode",
            "verify",
            &path("forged.wgc"),
            "--manifest",
            &path("forged.json"),
        ],
        4,
    );
    assert_eq!(refused["ledger"]["recorded"], false, "{refused}");
    let refused = node.cli(
        &[
            "gcode",
            "open",
            &path("forged.wgc"),
            "--key",
            &path("printer.key"),
            "--manifest",
            &path("forged.json"),
            "--out",
            &path("forged.out"),
            "--as",
            &designer,
        ],
        4,
    );
    assert_eq!(refused["status"], "refused", "{refused}");
    assert!(!root.join("forged.out").exists());
    node.cli(
        &[
            "gcode",
            "open",
            &path("part.wgc"),
            "--key",
            &path("printer.key"),
            "--manifest",
            &path("part.json"),
            "--out",
            &path("part.out"),
            "--as",
            &designer,
        ],
        0,
    );
    assert_eq!(
        std::fs::read(root.join("part.out")).expect("opened"),
        gcode.as_bytes()
    );
    assert_eq!(node.terminate().code(), Some(0));
}

#[test]
fn every_ledger_command_works_through_a_node_with_embedded_output() {
    let (dir, home) = new_home(&[]);
    let node = Node::start(&home);
    // Resources are registered through the running node: the home signs, the node commits.
    let shop = node.cli(
        &["org", "add", "Shop", "--country", "DE", "--town", "Aachen"],
        0,
    )["id"]
        .as_str()
        .expect("id")
        .to_string();
    let buyer = node.cli(
        &["org", "add", "Buyer", "--country", "FR", "--town", "Lyon"],
        0,
    )["id"]
        .as_str()
        .expect("id")
        .to_string();
    let person = node.cli(&["person", "add", "--org", &shop[..8], "--first", "Ada"], 0);
    let person = person["id"].as_str().expect("id").to_string();
    assert!(home.join(format!("keys/{person}.key")).exists());

    let body = dir.path().join("spindle.csv");
    std::fs::write(&body, "t,rpm\n0,12000\n").expect("write");
    let record = node.cli(
        &[
            "record",
            "add",
            body.to_str().expect("utf-8"),
            "--as",
            &shop,
            "--signer",
            &person,
            "--content-type",
            "text/csv",
        ],
        0,
    );
    let record_id = record["tx_id"].as_str().expect("tx id").to_string();
    node.cli(&["part", "register", "SN-1", "--as", &shop], 0);
    node.cli(
        &["part", "transfer", "SN-1", "--from", &shop, "--to", &buyer],
        0,
    );
    // Only the current owner transfers: a rule refusal, exit 3, as in embedded mode.
    let refused = node.cli(
        &["part", "transfer", "SN-1", "--from", &shop, "--to", &buyer],
        3,
    );
    assert!(refused["error"]["rule"].is_string(), "{refused}");

    // Key rotation through the node: the new key signs, the old one is revoked.
    let old_key = std::fs::read_to_string(home.join(format!("keys/{shop}.key"))).expect("key");
    node.cli(&["key", "rotate", "--resource", &shop], 0);
    let new_key = std::fs::read_to_string(home.join(format!("keys/{shop}.key"))).expect("key");
    assert_ne!(old_key, new_key);
    node.cli(&["part", "register", "SN-2", "--as", &shop], 0);

    let shown = node.cli(&["tx", "show", &record_id], 0);
    assert_eq!(shown["kind"], "Record");
    let proof_file = dir.path().join("record.proof.json");
    let proof_path = proof_file.to_str().expect("utf-8");
    node.cli(&["proof", &record_id, "--out", proof_path], 0);
    let through_node_proof = std::fs::read(&proof_file).expect("proof");
    assert_eq!(
        run(&home, &["proof", "verify", proof_path], 0)["valid"],
        true
    );
    let info = node.cli(&["chain", "info"], 0);
    assert_eq!(info["chain_name"], "node-test");
    let refused = node.cli(&["chain", "verify"], 1);
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("home")),
        "{refused}"
    );

    assert_eq!(node.terminate().code(), Some(0));
    assert_eq!(run(&home, &["tx", "show", &record_id], 0), shown);
    assert_eq!(run(&home, &["chain", "info"], 0), info);
    run(&home, &["proof", &record_id, "--out", proof_path], 0);
    assert_eq!(
        std::fs::read(&proof_file).expect("proof"),
        through_node_proof
    );
    assert_eq!(run(&home, &["chain", "verify"], 0)["ok"], true);
}

#[test]
fn admin_endpoints_need_the_token_and_register_and_reload() {
    let (_dir, home) = new_home(&[]);
    let node = Node::start(&home);
    let token = std::fs::read_to_string(home.join("admin.token")).expect("admin token written");
    let token = token.trim();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(home.join("admin.token"))
            .expect("token")
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "the token is readable by its owner only");
    let key = SigningKey::generate().expect("key").public_key().to_hex();
    let body = json!({
        "resource": {"kind": "organization", "name": "Farm", "address": {"town": "Graz", "country": "AT"}},
        "key": key,
    });
    let url = format!("{}/v1/admin/resources", node.url);
    let send = |authorization: Option<String>, body: &Value| {
        let mut request = agent()
            .post(&url)
            .header("content-type", "application/json");
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let mut response = request.send(body.to_string()).expect("answer");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("body");
        (status, serde_json::from_str::<Value>(&text).expect("json"))
    };
    let (status, answer) = send(None, &body);
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, answer) = send(Some(format!("Bearer {}x", &token[1..])), &body);
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, answer) = send(Some(format!("Bearer {token}")), &body);
    assert_eq!(status, 200, "{answer}");
    let id = answer["id"].as_str().expect("id").to_string();
    let (status, resource) = http("GET", &format!("{}/v1/resources/{id}", node.url), None, b"");
    assert_eq!(status, 200);
    assert_eq!(resource["name"], "Farm");
    // A malformed resource is a 4xx naming the field.
    let mut bad = body.clone();
    bad["resource"]["address"] = json!({"town": "Graz"});
    let (status, answer) = send(Some(format!("Bearer {token}")), &bad);
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .expect("message")
            .contains("country")
    );

    // Reload: the block interval is taken over; a new listen address needs a restart; a bad
    // file changes nothing.
    let reload = format!("{}/v1/admin/reload", node.url);
    let config = home.join("config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("interval_ms = 100", "interval_ms = 60")
            .replace("queue = 4096", "queue = 100")
            .replace("graphql_sockets = 256", "graphql_sockets = 8"),
    )
    .expect("config");
    let reloaded = |authorization: &str| {
        let mut response = agent()
            .post(&reload)
            .header("authorization", authorization)
            .send_empty()
            .expect("answer");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("body");
        (status, serde_json::from_str::<Value>(&text).expect("json"))
    };
    let (status, answer) = reloaded(&format!("Bearer {token}"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["applied"], json!(["blocks.interval_ms"]));
    // The node runs with `--api 127.0.0.1:0`, not the file's address: an override is not a
    // change of the file, so only api.queue and api.graphql_sockets need a restart.
    assert_eq!(
        answer["restart_needed"],
        json!(["api.queue", "api.graphql_sockets"])
    );
    std::fs::write(&config, "[blocks]\ninterval_ms = 1\n").expect("config");
    let (status, answer) = reloaded(&format!("Bearer {token}"));
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .expect("message")
            .contains("blocks.interval_ms")
    );
    let (status, _) = reloaded("Bearer nope");
    assert_eq!(status, 403);
    std::fs::write(&config, text).expect("config");
    // The node still serves and commits.
    let after = node.cli(
        &["org", "add", "Later", "--country", "DE", "--town", "Bonn"],
        0,
    );
    assert!(after["height"].as_u64() > Some(0));
    assert_eq!(node.terminate().code(), Some(0));
}

#[test]
fn the_load_generator_reports_what_the_node_committed() {
    let (_dir, home) = new_home(&[]);
    let node = Node::start(&home);
    let latencies = home.join("latencies.csv");
    let report = node.cli(
        &[
            "bench",
            "node",
            "--txs",
            "250",
            "--batch",
            "40",
            "--concurrency",
            "3",
            "--latencies",
            latencies.to_str().expect("utf-8"),
        ],
        0,
    );
    assert_eq!(report["committed"], 250, "{report}");
    // One CSV line per request (7 batches: six of 40, one of 10), in the order they were
    // sent, each latency within the report's range.
    let csv = std::fs::read_to_string(&latencies).expect("latencies written");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("sent_ms,latency_ms,transactions"));
    let rows: Vec<(f64, f64, usize)> = lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 3, "{line}");
            (
                fields[0].parse().expect("sent_ms"),
                fields[1].parse().expect("latency_ms"),
                fields[2].parse().expect("transactions"),
            )
        })
        .collect();
    assert_eq!(rows.len(), 7, "{csv}");
    assert_eq!(rows.iter().map(|row| row.2).sum::<usize>(), 250);
    assert!(rows.windows(2).all(|pair| pair[0].0 <= pair[1].0), "{csv}");
    let max = report["max_ms"].as_f64().expect("max_ms");
    assert!(
        rows.iter().all(|row| row.1 > 0.0 && row.1 <= max + 0.1),
        "{csv} against max {max}"
    );
    // A latencies file that cannot be written is refused before any load is sent.
    let unwritable = home.join("no-such-dir").join("latencies.csv");
    let refused = node.cli(
        &[
            "bench",
            "node",
            "--txs",
            "10",
            "--latencies",
            unwritable.to_str().expect("utf-8"),
        ],
        1,
    );
    let message = refused["error"]["message"].as_str().expect("message");
    assert!(message.contains("cannot write"), "{refused}");
    assert_eq!(report["rejected"], 0);
    assert_eq!(report["failed_requests"], 0);
    for key in ["tx_per_s", "p50_ms", "p99_ms"] {
        assert!(
            report[key].as_f64().is_some_and(|value| value > 0.0),
            "{key}: {report}"
        );
    }
    assert!(report["p50_ms"].as_f64() <= report["p99_ms"].as_f64());
    // 8 registrations and 250 claims are on the chain.
    let metrics = agent()
        .get(&format!("{}/metrics", node.url))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("text");
    assert!(
        metrics.contains("weft_transactions_committed_total 258"),
        "{metrics}"
    );
    // With --no-wait the report counts queued transactions, and it returns only once the node
    // has committed them all: 8 more registrations and 120 more claims.
    let report = node.cli(
        &[
            "bench",
            "node",
            "--txs",
            "120",
            "--batch",
            "30",
            "--no-wait",
        ],
        0,
    );
    assert_eq!(report["committed"], 120, "{report}");
    assert_eq!(report["latency_to"], "queued");
    let status = node.cli(&["node", "status"], 0);
    assert_eq!(status["mempool"], 0, "{status}");
    let metrics = agent()
        .get(&format!("{}/metrics", node.url))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("text");
    assert!(
        metrics.contains("weft_transactions_committed_total 386"),
        "{metrics}"
    );
    assert_eq!(node.terminate().code(), Some(0));
}

/// Waits (bounded) until `done` holds at least `count` files besides ingested.tsv; returns how
/// many it holds.
fn wait_for_done(done: &Path, count: usize, node: &mut Node) -> usize {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let held = std::fs::read_dir(done)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|entry| {
                        let name = entry.file_name();
                        name != "ingested.tsv" && !name.to_string_lossy().starts_with('.')
                    })
                    .count()
            })
            .unwrap_or(0);
        if held >= count {
            return held;
        }
        if let Some(status) = node.child.try_wait().expect("wait") {
            panic!("the node exited while ingesting: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "only {held} of {count} files reached done/ in 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn directory_ingest_records_every_file_exactly_once_across_a_sigkill() {
    const FILES: usize = 1000;
    // Small rounds, so the kill lands among them; files are complete before the node starts.
    let (dir, home) = new_home(&[
        ("\nbatch = 10000", "\nbatch = 40"),
        ("min_age_ms = 200", "min_age_ms = 0"),
    ]);
    let config = std::fs::read_to_string(home.join("config.toml")).expect("config");
    assert!(config.contains("max_batch = 10000") && config.contains("\nbatch = 40"));
    let before = run(&home, &["chain", "verify"], 0)["transactions"]
        .as_u64()
        .expect("count");
    let watched = dir.path().join("spool");
    std::fs::create_dir(&watched).expect("mkdir");
    for i in 0..FILES {
        std::fs::write(
            watched.join(format!("cycle-{i:04}.csv")),
            format!("cycle,{i}\nspindle_rpm,{}\n", 9000 + i),
        )
        .expect("write");
    }
    // One file that cannot be a record (over 1 MiB) and one hidden file, never taken.
    std::fs::write(watched.join("huge.bin"), vec![7u8; (1 << 20) + 1]).expect("write");
    std::fs::write(watched.join(".partial"), b"still being written").expect("write");
    let watch = watched.to_str().expect("utf-8");

    let mut node = Node::start_with(&home, &["--watch", watch]);
    let done = watched.join("done");
    let at_kill = wait_for_done(&done, 200, &mut node);
    node.kill();
    // Rounds of 40 files, each waiting for a 100 ms block: the kill lands with files left.
    assert!(
        at_kill < FILES,
        "the kill came after every file was done: nothing was tested"
    );

    let mut node = Node::start_with(&home, &["--watch", watch]);
    wait_for_done(&done, FILES, &mut node);
    let metrics = agent()
        .get(&format!("{}/metrics", node.url))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("text");
    assert!(metrics.contains("weft_ingest_files_total"), "{metrics}");
    assert_eq!(node.terminate().code(), Some(0));

    // Every file once in done/, none left behind, the oversized one failed with its reason.
    let mut done_names: Vec<String> = std::fs::read_dir(&done)
        .expect("done")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "ingested.tsv" && !name.starts_with('.'))
        .collect();
    done_names.sort();
    let expected: Vec<String> = (0..FILES).map(|i| format!("cycle-{i:04}.csv")).collect();
    assert_eq!(done_names, expected);
    let error = std::fs::read_to_string(watched.join("failed/huge.bin.error")).expect(".error");
    assert!(error.contains("at most 1048576 bytes"), "{error}");
    assert!(watched.join(".partial").exists());
    let work: Vec<_> = std::fs::read_dir(watched.join(".weft-ingest"))
        .expect("work dir")
        .flatten()
        .filter(|entry| entry.file_name() != ".weft-role")
        .collect();
    assert!(work.is_empty(), "nothing is left claimed");

    // The ledger holds each file's record exactly once: the identity's registration and
    // one transaction per file, no more.
    let after = run(&home, &["chain", "verify"], 0);
    assert_eq!(after["ok"], true);
    assert_eq!(
        after["transactions"].as_u64(),
        Some(before + 1 + FILES as u64),
        "one registration and {FILES} records"
    );
    let log = std::fs::read_to_string(done.join("ingested.tsv")).expect("log");
    let mut ids: Vec<&str> = log
        .lines()
        .filter_map(|line| line.split('\t').next())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), FILES, "one logged transaction per file");
    // Each logged transaction is a record whose body is its file's.
    let sample = log.lines().next().expect("a line");
    let fields: Vec<&str> = sample.split('\t').collect();
    let shown = run(&home, &["tx", "show", fields[0]], 0);
    assert_eq!(shown["kind"], "Record");
    let body = std::fs::read(done.join(fields[3])).expect("file");
    assert_eq!(
        shown["payload"]["body"]["body"],
        hex::encode(body),
        "{shown}"
    );
}

/// weft-api's typed client reads every answer a node sends into its bodies: a submission, the
/// status, the chain, a block, a transaction, an asset report, a claim, a resource, a key, id
/// prefixes; `None` for a 404; a rule's refusal as `ClientError::Rule`.
#[test]
fn the_typed_client_reads_a_nodes_answers_into_weft_api_bodies() {
    use weft_api::client::{ClientError, NodeClient};
    use weft_core::{Fingerprint, HashAlgo, ResourceId, TxId};

    let (_dir, home) = new_home(&[]);
    let designer = org(&home, "Designer");
    let designer_id = ResourceId::from_hex(&designer).expect("id");
    let tx = claim_tx(&home, &designer, b"typed bracket", "bracket.step");
    let node = Node::start(&home);
    let client = NodeClient::new(&node.url, None, Duration::from_secs(60)).expect("client");

    let body = weft_api::SubmitOne {
        transaction: encoded(&tx),
    };
    let committed = client.submit(&body).expect("committed");
    assert_eq!(committed.tx_id, tx.id());

    let status = client.status().expect("status");
    assert!(status.height >= committed.height);
    let chain = client.chain().expect("chain");
    assert_eq!(chain.chain_id, status.chain_id);
    assert_eq!(chain.chain_name, status.chain);

    let block = client
        .block(committed.height)
        .expect("block")
        .expect("the block exists");
    assert!(block.transactions.contains(&committed.tx_id));
    assert_eq!(client.block(1_000_000).expect("no block"), None);

    let answer = client
        .transaction(&committed.tx_id)
        .expect("transaction")
        .expect("on the chain");
    assert_eq!(
        (answer.kind.as_str(), answer.height, answer.index),
        ("RecordOwnership", committed.height, committed.index)
    );
    assert!(!answer.stripped && answer.payload.is_some());
    let never = TxId::from_hex(&"0".repeat(64)).expect("id");
    assert_eq!(client.transaction(&never).expect("answers"), None);

    let fingerprint = Fingerprint::of_bytes(HashAlgo::Sha256, b"typed bracket");
    let report = client.asset(&fingerprint, None).expect("report");
    assert_eq!(report.verdict, weft_api::Verdict::Valid);
    assert_eq!(report.history.len(), 1);
    assert_eq!(report.history[0].issuer, Some(designer_id));
    let claim = client.claim(&fingerprint).expect("claim").expect("claimed");
    assert_eq!(claim.issuer.id, designer_id);
    let unclaimed = Fingerprint::of_bytes(HashAlgo::Sha256, b"never claimed");
    assert_eq!(client.claim(&unclaimed).expect("answers"), None);

    let resource = client
        .resource(&designer_id)
        .expect("resource")
        .expect("registered");
    assert_eq!(resource.organization, None);
    assert_eq!(resource.name.as_deref(), Some("Designer"));
    let key = client
        .key_status(&designer_id, &tx.header.key)
        .expect("key");
    assert_eq!(key.status, Some(weft_api::KeyState::Active));
    let ids = client
        .resources_with_prefix(&designer[..8])
        .expect("resources");
    assert!(ids.ids.contains(&designer_id));
    let ids = client
        .transactions_with_prefix(&committed.tx_id.to_hex()[..8])
        .expect("transactions");
    assert!(ids.ids.contains(&committed.tx_id));

    // The same claim again: refused by a rule, which the client names.
    match client.submit(&body) {
        Err(ClientError::Rule(rule)) => assert!(!rule.rule.is_empty()),
        other => panic!("expected a rule's refusal, got {other:?}"),
    }
}
