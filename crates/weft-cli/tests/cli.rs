//! The `weft` binary as a user drives it: real processes on a real ledger home.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

mod common;
use common::{json_of, run, weft};

struct Home {
    _dir: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
}

fn new_home() -> Home {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let home = root.join("home");
    run(&home, &["init", "--chain-id", "cli-test"], 0);
    Home {
        _dir: dir,
        root,
        home,
    }
}

fn org(home: &Path, name: &str) -> String {
    run(
        home,
        &[
            "org",
            "add",
            name,
            "--country",
            "DE",
            "--town",
            "Aachen",
            "--street",
            "Campus-Boulevard",
            "--street-number",
            "30",
        ],
        0,
    )["id"]
        .as_str()
        .expect("id")
        .to_string()
}

fn write(root: &Path, name: &str, content: &str) -> PathBuf {
    let path = root.join(name);
    std::fs::write(&path, content).expect("write");
    path
}

#[test]
fn the_nist_flow_with_json_output_and_exit_codes() {
    let h = new_home();
    let designer = org(&h.home, "Designer");
    let maker = org(&h.home, "Maker");
    let other = org(&h.home, "Other");
    let person = run(
        &h.home,
        &[
            "person",
            "add",
            "--org",
            &designer,
            "--first",
            "Ada",
            "--last",
            "Lovelace",
            "--email",
            "ada@example.org",
        ],
        0,
    )["id"]
        .as_str()
        .expect("id")
        .to_string();
    let file = write(&h.root, "design.stl", "solid bracket\nendsolid\n");
    let file = file.to_str().expect("utf-8 path");

    let claim = run(
        &h.home,
        &[
            "claim",
            file,
            "--as",
            &designer[..10],
            "--signer",
            &person,
            "--type",
            "GEOMETRY_3D",
            "--version-id",
            "A",
            "--description",
            "bracket",
        ],
        0,
    );
    let claim_tx = claim["tx_id"].as_str().expect("tx_id").to_string();
    assert!(claim["height"].as_u64().expect("height") > 0);

    let valid = run(&h.home, &["verify", file, "--as", &designer], 0);
    assert_eq!(
        valid["verdict"], "valid",
        "the owner verifying its own file"
    );
    let not_recipient = run(&h.home, &["verify", file, "--as", &maker], 4);
    assert_eq!(not_recipient["verdict"], "not_recipient");

    let send = run(
        &h.home,
        &["send", file, "--from", &designer, "--to", &maker],
        0,
    );
    assert!(send["tx_id"].is_string());
    let valid = run(&h.home, &["verify", file, "--as", &maker], 0);
    assert_eq!(valid["verdict"], "valid");
    assert_eq!(valid["owner"]["id"], designer.as_str());
    assert_eq!(valid["owner"]["name"], "Designer");
    assert_eq!(valid["history"].as_array().expect("history").len(), 2);

    // The maker got it without forward right: rule 2 refuses, exit 3, JSON error.
    let refused = run(
        &h.home,
        &["send", file, "--from", &maker, "--to", &other],
        3,
    );
    assert_eq!(refused["error"]["rule"], "rule-2");
    assert!(
        refused["error"]["message"]
            .as_str()
            .expect("message")
            .contains("forward"),
        "{refused}"
    );
    // A conflicting claim: rule 3.
    let conflict = run(&h.home, &["claim", file, "--as", &other], 3);
    assert_eq!(conflict["error"]["rule"], "rule-3");

    // Tampered file: unknown, exit 4.
    let tampered = write(&h.root, "tampered.stl", "solid bracket \nendsolid\n");
    let unknown = run(&h.home, &["verify", tampered.to_str().expect("path")], 4);
    assert_eq!(unknown["verdict"], "unknown");
    assert_eq!(unknown["owner"], Value::Null);

    let history = run(&h.home, &["history", file], 0);
    let kinds: Vec<&str> = history["history"]
        .as_array()
        .expect("list")
        .iter()
        .map(|entry| entry["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, vec!["RecordOwnership", "SendProductData"]);
    assert_eq!(history["history"][0]["tx_id"], claim_tx.as_str());
    assert_eq!(
        history["history"][0]["signer"],
        person.as_str(),
        "the person who signed is recorded"
    );
    let fingerprint = history["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    let by_fingerprint = run(&h.home, &["history", &fingerprint], 0);
    assert_eq!(by_fingerprint["history"], history["history"]);

    let audit = run(&h.home, &["chain", "verify"], 0);
    assert_eq!(audit["ok"], true);
    assert_eq!(audit["first_bad"], Value::Null);
    assert!(audit["blocks"].as_u64().expect("blocks") >= 7);

    // Human output works too.
    let human = weft(&h.home, &["verify", file, "--as", &maker]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.starts_with("VALID"), "{text}");
}

#[test]
fn proofs_round_trip_and_tampering_is_caught() {
    let h = new_home();
    let designer = org(&h.home, "Designer");
    let file = write(&h.root, "a.gcode", "G1 X1 Y1\n");
    let tx = run(
        &h.home,
        &["claim", file.to_str().expect("path"), "--as", &designer],
        0,
    )["tx_id"]
        .as_str()
        .expect("tx")
        .to_string();
    let proof_path = h.root.join("proof.json");
    run(
        &h.home,
        &["proof", &tx, "--out", proof_path.to_str().expect("path")],
        0,
    );
    // The check needs no ledger, only the chain's trust root: a home without one believes
    // nothing (exit 4) until it pins the root it is given, once its genesis hash is confirmed.
    let nowhere = h.root.join("no-home");
    let refused = run(
        &nowhere,
        &["proof", "verify", proof_path.to_str().expect("path")],
        4,
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("no trust root")),
        "{refused}"
    );
    let root_path = h.root.join("root.json");
    let exported = run(
        &h.home,
        &[
            "trust",
            "export",
            "--out",
            root_path.to_str().expect("path"),
        ],
        0,
    );
    let genesis_hash = exported["genesis_hash"].as_str().expect("hash").to_string();
    let verified = run(
        &nowhere,
        &[
            "proof",
            "verify",
            proof_path.to_str().expect("path"),
            "--trust",
            root_path.to_str().expect("path"),
        ],
        0,
    );
    assert_eq!(verified["valid"], true);
    assert_eq!(
        verified["trust_root"]["genesis_hash"],
        genesis_hash.as_str()
    );
    let wrong_hash = "11".repeat(32);
    run(
        &nowhere,
        &[
            "trust",
            "add",
            root_path.to_str().expect("path"),
            "--genesis-hash",
            &wrong_hash,
        ],
        4,
    );
    let added = run(
        &nowhere,
        &[
            "trust",
            "add",
            root_path.to_str().expect("path"),
            "--genesis-hash",
            &genesis_hash,
        ],
        0,
    );
    assert_eq!(added["added"], true);
    let shown = run(&nowhere, &["trust", "show"], 0);
    assert_eq!(shown["roots"][0]["genesis_hash"], genesis_hash.as_str());
    let verified = run(
        &nowhere,
        &["proof", "verify", proof_path.to_str().expect("path")],
        0,
    );
    assert_eq!(verified["valid"], true);
    assert_eq!(verified["tx_id"], tx.as_str());
    assert_eq!(verified["finality"], "sealed");
    // A root edited by hand (another producer key) is refused when read.
    let mut edited: Value =
        serde_json::from_slice(&std::fs::read(&root_path).expect("root")).expect("json");
    edited["validators"][0] = Value::String("22".repeat(32));
    let edited_path = h.root.join("edited-root.json");
    std::fs::write(&edited_path, serde_json::to_vec(&edited).expect("json")).expect("write");
    run(
        &nowhere,
        &[
            "proof",
            "verify",
            proof_path.to_str().expect("path"),
            "--trust",
            edited_path.to_str().expect("path"),
        ],
        1,
    );

    let document: Value =
        serde_json::from_slice(&std::fs::read(&proof_path).expect("read")).expect("json");
    let mut tampered = document.clone();
    let transaction = tampered["transaction"].as_str().expect("hex").to_string();
    let flipped: String = transaction
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 120 {
                if c == '0' { '1' } else { '0' }
            } else {
                c
            }
        })
        .collect();
    tampered["transaction"] = Value::String(flipped);
    let tampered_path = h.root.join("tampered.json");
    std::fs::write(&tampered_path, serde_json::to_vec(&tampered).expect("json")).expect("write");
    let rejected = run(
        &nowhere,
        &["proof", "verify", tampered_path.to_str().expect("path")],
        4,
    );
    assert_eq!(rejected["valid"], false);

    // Another chain of the same name (so the same chain id), with its own genesis and
    // producer: its proof is refused by this chain's root, and its root refuses this proof.
    let impostor = h.root.join("impostor");
    run(&impostor, &["init", "--chain-id", "cli-test"], 0);
    let impostor_root = h.root.join("impostor-root.json");
    run(
        &impostor,
        &[
            "trust",
            "export",
            "--out",
            impostor_root.to_str().expect("path"),
        ],
        0,
    );
    let untrusted = run(
        &nowhere,
        &[
            "proof",
            "verify",
            proof_path.to_str().expect("path"),
            "--trust",
            impostor_root.to_str().expect("path"),
        ],
        4,
    );
    assert!(
        untrusted["reason"]
            .as_str()
            .expect("reason")
            .contains("not a validator"),
        "{untrusted}"
    );

    // Several at once: each reported, exit 4 if any is invalid.
    let together = run(
        &nowhere,
        &[
            "proof",
            "verify",
            proof_path.to_str().expect("path"),
            tampered_path.to_str().expect("path"),
            proof_path.to_str().expect("path"),
        ],
        4,
    );
    assert_eq!(together["valid"], false);
    assert_eq!(together["checked"], 3);
    assert_eq!(together["valid_count"], 2);
    assert_eq!(together["proofs"][0]["valid"], true);
    assert_eq!(together["proofs"][1]["valid"], false);
    assert_eq!(together["proofs"][2]["tx_id"], tx.as_str());
    let all_good = run(
        &nowhere,
        &[
            "proof",
            "verify",
            proof_path.to_str().expect("path"),
            proof_path.to_str().expect("path"),
        ],
        0,
    );
    assert_eq!(all_good["valid"], true);
    // A missing file is an error, not a verdict.
    let missing = h.root.join("missing.json");
    run(
        &nowhere,
        &["proof", "verify", missing.to_str().expect("path")],
        1,
    );

    let garbage = write(&h.root, "garbage.json", "this is not a proof");
    assert_eq!(
        run(
            &nowhere,
            &["proof", "verify", garbage.to_str().expect("path")],
            4
        )["valid"],
        false
    );
}

#[test]
fn bad_input_gets_clear_errors_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing_home = dir.path().join("none");
    let error = run(
        &missing_home,
        &["org", "add", "X", "--country", "DE", "--town", "T"],
        1,
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("weft init"),
        "{error}"
    );
    assert!(
        !missing_home.exists(),
        "nothing created by a failed command"
    );

    let bad_chain = dir.path().join("bad-chain");
    let error = run(&bad_chain, &["init", "--chain-id", "has spaces"], 1);
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("chain name"),
        "{error}"
    );
    assert!(!bad_chain.exists(), "a refused init leaves nothing behind");

    let h = new_home();
    let again = run(&h.home, &["init"], 1);
    assert!(
        again["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("already holds a weft ledger"),
        "{again}"
    );

    let designer = org(&h.home, "Designer");
    let error = run(
        &h.home,
        &[
            "claim",
            h.root.join("missing.stl").to_str().expect("path"),
            "--as",
            &designer,
        ],
        1,
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("cannot open"),
        "{error}"
    );

    let file = write(&h.root, "x.stl", "x");
    let file = file.to_str().expect("path");
    let error = run(&h.home, &["claim", file, "--as", &"ab".repeat(32)], 1);
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("no key for resource"),
        "{error}"
    );
    let error = run(
        &h.home,
        &["send", file, "--from", &designer, "--to", "abcdef01"],
        1,
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("no registered resource"),
        "{error}"
    );
    let error = run(&h.home, &["claim", file, "--as", "xyz"], 1);
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("not a resource id"),
        "{error}"
    );
    let error = run(
        &h.home,
        &["claim", file, "--as", &designer, "--doi", "10.1/x"],
        1,
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("--public"),
        "{error}"
    );
    let error = run(
        &h.home,
        &["claim", file, "--as", &designer, "--type", "not a type!"],
        1,
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("--type"),
        "{error}"
    );
    let error = run(&h.home, &["tx", "show", "zz"], 1);
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("transaction id"),
        "{error}"
    );
    let error = run(&h.home, &["history", "sha256:1234"], 1);
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("neither an existing file nor a fingerprint"),
        "{error}"
    );

    // Usage errors exit 2.
    assert_eq!(weft(&h.home, &["claim"]).status.code(), Some(2));

    // None of the refused commands committed anything.
    let audit = run(&h.home, &["chain", "verify"], 0);
    assert_eq!(audit["transactions"], 2, "genesis and one organisation");

    // A key file readable by others is refused.
    let key_path = h.home.join("keys").join(format!("{designer}.key"));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let error = run(&h.home, &["claim", file, "--as", &designer], 1);
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("chmod 600"),
        "{error}"
    );
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    run(&h.home, &["claim", file, "--as", &designer], 0);

    // A damaged configuration names the problem.
    std::fs::write(h.home.join("config.toml"), "colour = 1\n").expect("write");
    let error = run(&h.home, &["chain", "verify"], 1);
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("colour"),
        "{error}"
    );

    // A home path that is a file, not a directory.
    let not_dir = write(&h.root, "plain-file", "x");
    let error = run(&not_dir, &["chain", "verify"], 1);
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("not a weft ledger home"),
        "{error}"
    );
}

#[test]
fn chain_info_reports_the_genesis_parameters_given_at_init() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let init = run(
        &home,
        &[
            "init",
            "--chain-id",
            "acme-main",
            "--time-window-secs",
            "42",
        ],
        0,
    );
    let info = run(&home, &["chain", "info"], 0);
    assert_eq!(info["chain_name"], "acme-main");
    assert_eq!(info["chain_id"], init["chain_id"]);
    assert_eq!(info["time_window_secs"], 42);
    assert_eq!(info["producers"][0], init["producer"]);
    assert_eq!(info["height"], 0);
    assert_eq!(info["head_hash"], init["genesis_hash"]);
    let error = run(
        &dir.path().join("other"),
        &["init", "--time-window-secs", "0"],
        1,
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("--time-window-secs"),
        "{error}"
    );
}

#[test]
fn a_validator_change_shows_in_chain_info_and_can_be_withdrawn_until_it_takes_effect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let init = run(&home, &["init"], 0);
    let info = run(&home, &["chain", "info"], 0);
    assert_eq!(info["epoch"], 0);
    assert_eq!(info["validators"], json!([init["producer"]]));
    assert_eq!(info["scheduled"], json!([]));
    let nothing = run(&home, &["net", "validators", "--withdraw"], 1);
    assert!(
        nothing["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("nothing to withdraw")),
        "{nothing}"
    );

    let newcomer = weft_core::SigningKey::from_seed(&[0x4d; 32])
        .public_key()
        .to_hex();
    run(
        &home,
        &["net", "validators", &newcomer, "--from-height", "40"],
        0,
    );
    let info = run(&home, &["chain", "info"], 0);
    assert_eq!(info["validators"], json!([init["producer"]]), "{info}");
    assert_eq!(info["scheduled"][0]["from_height"], 40, "{info}");
    assert_eq!(
        info["scheduled"][0]["validators"],
        json!([newcomer]),
        "{info}"
    );
    let text = String::from_utf8(weft(&home, &["chain", "info"]).stdout).expect("UTF-8");
    assert!(
        text.contains(&format!("scheduled   from block 40: {newcomer}")),
        "{text}"
    );

    // Withdrawn: the validators in effect, scheduled again at its height, replace it.
    run(&home, &["net", "validators", "--withdraw"], 0);
    let info = run(&home, &["chain", "info"], 0);
    assert_eq!(
        info["scheduled"],
        json!([{
            "from_height": 40,
            "validators": [init["producer"]],
            "scheduled_at": info["height"],
        }]),
        "{info}"
    );
    // Keys and --withdraw together, or neither: refused with the reason.
    let both = weft(&home, &["net", "validators", &newcomer, "--withdraw"]);
    assert_eq!(both.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&both.stderr).contains("cannot be used with"),
        "{both:?}"
    );
    let neither = weft(&home, &["net", "validators"]);
    assert_eq!(neither.status.code(), Some(2));
}

#[test]
fn key_files_are_private_and_rotation_replaces_the_key() {
    let h = new_home();
    let designer = org(&h.home, "Designer");
    use std::os::unix::fs::PermissionsExt;
    for name in ["authority.key", "producer.key", &format!("{designer}.key")] {
        let mode = std::fs::metadata(h.home.join("keys").join(name))
            .expect("key")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    let old_key =
        std::fs::read_to_string(h.home.join("keys").join(format!("{designer}.key"))).expect("read");
    run(&h.home, &["key", "rotate", "--resource", &designer], 0);
    let new_key =
        std::fs::read_to_string(h.home.join("keys").join(format!("{designer}.key"))).expect("read");
    assert_ne!(old_key, new_key);
    let file = write(&h.root, "x.stl", "x");
    run(
        &h.home,
        &["claim", file.to_str().expect("path"), "--as", &designer],
        0,
    );
}

#[test]
fn person_signs_only_for_its_own_organisation_and_parts_transfer_once() {
    let h = new_home();
    let a = org(&h.home, "A");
    let b = org(&h.home, "B");
    let bob = run(&h.home, &["person", "add", "--org", &b], 0)["id"]
        .as_str()
        .expect("id")
        .to_string();
    let file = write(&h.root, "x.stl", "x");
    let error = run(
        &h.home,
        &[
            "claim",
            file.to_str().expect("path"),
            "--as",
            &a,
            "--signer",
            &bob,
        ],
        1,
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("does not belong"),
        "{error}"
    );

    run(&h.home, &["part", "register", "SN-1", "--as", &a], 0);
    run(
        &h.home,
        &["part", "transfer", "SN-1", "--from", &a, "--to", &b],
        0,
    );
    let again = run(
        &h.home,
        &["part", "transfer", "SN-1", "--from", &a, "--to", &b],
        3,
    );
    assert_eq!(again["error"]["rule"], "type-c");
    run(
        &h.home,
        &[
            "part", "transfer", "SN-1", "--from", &b, "--to", &a, "--signer", &bob,
        ],
        0,
    );

    let data = write(&h.root, "melt-pool.csv", "t,temp\n0,1650\n");
    let record = run(
        &h.home,
        &[
            "record",
            "add",
            data.to_str().expect("path"),
            "--as",
            &a,
            "--content-type",
            "text/csv",
            "--product-code",
            "SN-1",
        ],
        0,
    );
    let shown = run(
        &h.home,
        &["tx", "show", record["tx_id"].as_str().expect("tx")],
        0,
    );
    assert_eq!(shown["kind"], "Record");
    assert_eq!(shown["payload"]["body"]["contentType"], "text/csv");
}

#[test]
fn demo_runs_and_every_expectation_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = run(&dir.path().join("unused"), &["demo"], 0);
    assert_eq!(report["ok"], true);
    assert_eq!(report["failed"], 0);
    assert!(report["expectations"].as_u64().expect("count") >= 20);
    // The G-code part of the story ran: the change is named by layer.
    let steps = report["steps"].as_array().expect("steps");
    // It ran through a real node process: machine records went through its watched
    // directory, and the node stopped cleanly on SIGTERM before the audit.
    // And between companies: the rewrite caught, the evidence and the anchored proof checked.
    for expected in [
        "3 records committed",
        "exit status 0",
        "identical",
        "refused (409 or 422)",
        "caught: still the checkpoint anchored before, one AnchorEvidence",
        "valid evidence",
        "valid (the release is anchored on the customer's chain)",
    ] {
        assert!(
            steps
                .iter()
                .any(|step| step["expected"] == expected && step["held"] == true),
            "{expected}: {report}"
        );
    }
    assert!(
        steps
            .iter()
            .any(|step| step["detail"] == "layers 1-6 ok, 7 modified, 8-12 ok"),
        "{report}"
    );
}

#[test]
fn bench_gcode_times_every_step_and_checks_its_own_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("unused-home");
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../corpus/gcode/13_mmu2s_prusaslicer250_small.gcode");
    let report = run(
        &home,
        &[
            "bench",
            "gcode",
            file.to_str().expect("utf-8"),
            "--runs",
            "1",
        ],
        0,
    );
    assert_eq!(report["layers"], 31, "{report}");
    for step in [
        "layers",
        "seal (X25519)",
        "seal (RSA-3072)",
        "verify container",
        "verify container, locate",
        "verify plain",
        "verify plain, locate change",
        "open (X25519)",
        "open (RSA-3072)",
    ] {
        assert!(
            report["in_process"][step]["median_ms"]
                .as_f64()
                .is_some_and(|ms| ms > 0.0),
            "{step}: {report}"
        );
        assert!(
            report["whole_process"][step]["peak_rss_kib"]
                .as_u64()
                .is_some_and(|kib| kib > 0),
            "{step}: {report}"
        );
    }
    assert!(report["python"].is_null());
    let missing = dir.path().join("missing.gcode");
    let error = run(
        &home,
        &["bench", "gcode", missing.to_str().expect("utf-8")],
        1,
    );
    assert!(error["error"]["message"].is_string(), "{error}");
    let error = run(
        &home,
        &[
            "bench",
            "gcode",
            file.to_str().expect("utf-8"),
            "--runs",
            "0",
        ],
        1,
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--runs")),
        "{error}"
    );
}

#[test]
fn bench_proofs_reads_a_kept_benchmark_ledger_and_refuses_what_is_not_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kept = dir.path().join("kept");
    let home = dir.path().join("unused-home");
    let kept_arg = kept.to_str().expect("utf-8 path");
    let ledger = run(
        &home,
        &[
            "bench",
            "ledger",
            "--txs",
            "400",
            "--block-size",
            "100",
            "--skip-audit",
            "--dir",
            kept_arg,
        ],
        0,
    );
    assert_eq!(ledger["txs"], 400, "{ledger}");
    assert_eq!(
        ledger["cache_mib"], 1024,
        "the default page cache: {ledger}"
    );
    let error = run(
        &home,
        &["bench", "ledger", "--txs", "10", "--cache-mib", "8"],
        1,
    );
    assert!(
        error.to_string().contains("--cache-mib must be between 16"),
        "{error}"
    );
    let file = kept.join("bench.redb");
    let proofs = run(
        &home,
        &[
            "bench",
            "proofs",
            file.to_str().expect("utf-8"),
            "--count",
            "30",
        ],
        0,
    );
    assert_eq!(proofs["proofs"], 30, "{proofs}");
    assert!(proofs["proof_build_us"].as_f64().expect("a figure") > 0.0);

    let missing = dir.path().join("no-such.redb");
    let error = run(
        &home,
        &["bench", "proofs", missing.to_str().expect("utf-8")],
        1,
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("is not a ledger file")),
        "{error}"
    );
    let none = run(
        &home,
        &[
            "bench",
            "proofs",
            file.to_str().expect("utf-8"),
            "--count",
            "0",
        ],
        1,
    );
    assert!(
        none["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--count")),
        "{none}"
    );
}

#[test]
fn gcode_keygen_seal_verify_open_and_a_tampered_copy() {
    let h = new_home();
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../corpus/gcode/13_mmu2s_prusaslicer250_small.gcode");
    let file = source.to_str().expect("utf-8");
    let at = |name: &str| h.root.join(name).to_str().expect("utf-8").to_string();
    let layers = run(&h.home, &["gcode", "layers", file], 0);
    assert_eq!(layers["layers"], 31, "{layers}");
    run(&h.home, &["gcode", "keygen", "--out", &at("printer")], 0);
    let rsa = run(
        &h.home,
        &["gcode", "keygen", "--out", &at("site"), "--rsa"],
        0,
    );
    assert_eq!(rsa["scheme"], "rsa-3072", "{rsa}");
    let pem = std::fs::read_to_string(at("site.pub")).expect("public key");
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");

    // Sealed for an X25519 printer and an RSA site, signed by an organisation of the ledger
    // home, and recorded there.
    let acme = org(&h.home, "Acme Print Farm");
    let sealed = run(
        &h.home,
        &[
            "gcode",
            "seal",
            file,
            "--out",
            &at("part.wgc"),
            "--manifest",
            &at("part.json"),
            "--to",
            &at("printer.pub"),
            "--to",
            &at("site.pub"),
            "--as",
            &acme,
        ],
        0,
    );
    assert_eq!(sealed["layers"], 31, "{sealed}");
    assert_eq!(sealed["encrypted_for"].as_array().map(Vec::len), Some(2));
    assert!(sealed["recorded"]["tx_id"].is_string(), "{sealed}");
    let verdict = run(
        &h.home,
        &[
            "gcode",
            "verify",
            &at("part.wgc"),
            "--manifest",
            &at("part.json"),
        ],
        0,
    );
    assert_eq!(verdict["status"], "intact", "{verdict}");
    assert_eq!(verdict["checks"]["signature"], true);
    assert_eq!(verdict["ledger"]["recorded"], true, "{verdict}");
    assert_eq!(verdict["ledger"]["by"]["id"], acme.as_str(), "{verdict}");
    assert_eq!(verdict["ledger"]["signer_matches"], true, "{verdict}");
    assert_eq!(verdict["ledger"]["tx_id"], sealed["recorded"]["tx_id"]);
    let original = std::fs::read(&source).expect("source");
    for (key, opened) in [
        ("printer.key", "opened.gcode"),
        ("site.key", "opened-rsa.gcode"),
    ] {
        run(
            &h.home,
            &[
                "gcode",
                "open",
                &at("part.wgc"),
                "--key",
                &at(key),
                "--manifest",
                &at("part.json"),
                "--out",
                &at(opened),
                "--as",
                &acme,
            ],
            0,
        );
        assert!(
            std::fs::read(at(opened)).expect("opened") == original,
            "{key}"
        );
    }

    // Without a ledger home, the same files verify on their own, with no ledger verdict.
    let bare = |args: &[&str], code: i32| -> Value {
        let output = Command::new(env!("CARGO_BIN_EXE_weft"))
            .current_dir(&h.root)
            .env_remove("WEFT_HOME")
            .args(args)
            .arg("--json")
            .output()
            .expect("weft runs");
        assert_eq!(
            output.status.code(),
            Some(code),
            "weft {args:?}: {output:?}"
        );
        json_of(&output)
    };
    // Without a trust root nothing is believed: no ledger to anchor the manifest (exit 4)...
    let untrusted = bare(
        &["gcode", "verify", "part.wgc", "--manifest", "part.json"],
        4,
    );
    assert_eq!(untrusted["error"]["untrusted"], true, "{untrusted}");
    // ...unless its signer is pinned explicitly; another pinned key does not do.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(at("part.json")).expect("manifest")).expect("json");
    let signer = manifest["signer"].as_str().expect("signed").to_string();
    let pinned = bare(
        &[
            "gcode",
            "verify",
            "part.wgc",
            "--manifest",
            "part.json",
            "--trust-manifest-key",
            &signer,
        ],
        0,
    );
    assert_eq!(pinned["ledger"]["anchor"], "pinned key", "{pinned}");
    bare(
        &[
            "gcode",
            "verify",
            "part.wgc",
            "--manifest",
            "part.json",
            "--trust-manifest-key",
            &"5a".repeat(32),
        ],
        4,
    );

    // Another registered organisation records a manifest of its own for Acme's G-code: it
    // neither owns it nor was sent a copy it may forward, so the manifest is not anchored.
    let mallory = org(&h.home, "Mallory Ltd");
    run(
        &h.home,
        &[
            "gcode",
            "seal",
            file,
            "--out",
            &at("mallory.wgc"),
            "--manifest",
            &at("mallory.json"),
            "--to",
            &at("printer.pub"),
            "--as",
            &mallory,
        ],
        0,
    );
    let refused = run(
        &h.home,
        &[
            "gcode",
            "verify",
            &at("mallory.wgc"),
            "--manifest",
            &at("mallory.json"),
        ],
        4,
    );
    assert_eq!(refused["status"], "intact", "{refused}");
    assert_eq!(refused["ledger"]["anchored"], false, "{refused}");
    assert!(
        refused["ledger"]["problems"][0]
            .as_str()
            .is_some_and(|problem| problem.contains("neither owns")),
        "{refused}"
    );
    // Acme's own manifest, but another issuer expected: refused too.
    run(
        &h.home,
        &[
            "gcode",
            "verify",
            &at("part.wgc"),
            "--manifest",
            &at("part.json"),
            "--expect-issuer",
            &mallory,
        ],
        4,
    );
    // Opening for a receiver the G-code was never sent to writes nothing.
    run(
        &h.home,
        &[
            "gcode",
            "open",
            &at("part.wgc"),
            "--key",
            &at("printer.key"),
            "--manifest",
            &at("part.json"),
            "--out",
            &at("never-mallory.gcode"),
            "--as",
            &mallory,
        ],
        4,
    );
    assert!(!h.root.join("never-mallory.gcode").exists());

    // A manifest signed with a key but never recorded: intact, yet "not on the ledger" (exit 4)
    // when a ledger home is asked; and `open` refuses to write from it.
    let producer = h.home.join("keys/producer.key");
    bare(
        &[
            "gcode",
            "seal",
            file,
            "--out",
            "loose.wgc",
            "--manifest",
            "loose.json",
            "--sign",
            producer.to_str().expect("utf-8"),
        ],
        0,
    );
    let verdict = run(
        &h.home,
        &[
            "gcode",
            "verify",
            &at("loose.wgc"),
            "--manifest",
            &at("loose.json"),
        ],
        4,
    );
    assert_eq!(verdict["status"], "intact", "{verdict}");
    assert_eq!(verdict["ledger"]["recorded"], false, "{verdict}");
    let refused = run(
        &h.home,
        &[
            "gcode",
            "open",
            &at("loose.wgc"),
            "--manifest",
            &at("loose.json"),
            "--out",
            &at("never-loose.gcode"),
            "--as",
            &acme,
        ],
        4,
    );
    assert_eq!(refused["status"], "refused", "{refused}");
    assert!(!h.root.join("never-loose.gcode").exists());
    // Recording with a key that is no resource's is refused before anything is written.
    let error = run(
        &h.home,
        &[
            "gcode",
            "seal",
            file,
            "--out",
            &at("x.wgc"),
            "--manifest",
            &at("x.json"),
            "--sign",
            producer.to_str().expect("utf-8"),
        ],
        1,
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not the current key of any resource")),
        "{error}"
    );
    assert!(!h.root.join("x.wgc").exists() && !h.root.join("x.json").exists());

    // A second keygen to the same name refuses and writes nothing new.
    run(&h.home, &["gcode", "keygen", "--out", &at("printer")], 1);

    // Tamper with layer 5 of the plain file: located, exit 4.
    let text = String::from_utf8(original).expect("utf-8");
    let fifth = text
        .match_indices(";LAYER_CHANGE")
        .nth(4)
        .expect("layer 5")
        .0;
    let g1 = fifth + text[fifth..].find("G1 X").expect("a move");
    let mut tampered = text.into_bytes();
    tampered[g1 + 4] = if tampered[g1 + 4] == b'9' {
        b'1'
    } else {
        tampered[g1 + 4] + 1
    };
    std::fs::write(at("tampered.gcode"), &tampered).expect("write");
    let verdict = run(
        &h.home,
        &[
            "gcode",
            "verify",
            &at("tampered.gcode"),
            "--manifest",
            &at("part.json"),
        ],
        4,
    );
    assert_eq!(verdict["status"], "tampered");
    assert_eq!(verdict["findings"][0]["kind"], "modified", "{verdict}");
    assert_eq!(verdict["findings"][0]["layer"], 5, "{verdict}");

    // Opening a garbage "container" is a clear error, and no output is left behind.
    std::fs::write(at("garbage.wgc"), b"WEFTGC\x00\x01\xff\xff\xff\xff").expect("write");
    let error = run(
        &h.home,
        &[
            "gcode",
            "open",
            &at("garbage.wgc"),
            "--key",
            &at("printer.key"),
            "--manifest",
            &at("part.json"),
            "--out",
            &at("never.gcode"),
            "--as",
            &acme,
        ],
        1,
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("too large")),
        "{error}"
    );
    assert!(!h.root.join("never.gcode").exists());
}

/// `weft history` shows each transaction's id shortened; that short id, or any unique prefix
/// of at least 6 digits, names the transaction back to `proof`, `tx show` and `ingest open`,
/// on the home's ledger and through a node alike.
#[test]
fn transaction_ids_are_accepted_back_as_the_prefixes_history_shows() {
    let h = new_home();
    let designer = org(&h.home, "Designer");
    let file = write(&h.root, "bracket.step", "solid bracket\n");
    let path = file.to_str().expect("path");
    let tx = run(&h.home, &["claim", path, "--as", &designer], 0)["tx_id"]
        .as_str()
        .expect("tx")
        .to_string();
    let history = weft(&h.home, &["history", path]);
    let text = String::from_utf8_lossy(&history.stdout).to_string();
    let short = &tx[..12];
    assert!(text.contains(&format!("tx {short}")), "{text}");

    let proof_path = h.root.join("proof.json");
    let written = run(
        &h.home,
        &["proof", short, "--out", proof_path.to_str().expect("path")],
        0,
    );
    assert_eq!(written["tx_id"], tx.as_str());
    let shown = run(&h.home, &["tx", "show", &tx[..6].to_ascii_uppercase()], 0);
    assert_eq!(shown["tx_id"], tx.as_str());

    // Too short, not hex, or naming nothing: refused, saying which.
    for (input, says) in [
        (&tx[..5], "not a transaction id"),
        ("zzzzzzzz", "not a transaction id"),
    ] {
        let refused = run(&h.home, &["tx", "show", input], 1);
        let message = refused["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{input}: {message}");
    }
    let absent = if tx.starts_with("000000") {
        "ffffff"
    } else {
        "000000"
    };
    let refused = run(&h.home, &["proof", absent], 1);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no transaction on the chain has this id"),
        "{refused}"
    );

    // Through a running node (which holds the ledger), the same prefix.
    let node = common::node::Node::start(&h.home);
    let shown = run(&h.home, &["tx", "show", short, "--node", &node.url], 0);
    assert_eq!(shown["tx_id"], tx.as_str());
    let shown = run(&h.home, &["tx", "show", short], 0);
    assert_eq!(
        shown["tx_id"],
        tx.as_str(),
        "through the node running on the home"
    );
    // A command that reads the ledger file itself says that the node holds it, and where.
    let refused = run(&h.home, &["chain", "verify"], 1);
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("a node runs on this home"), "{message}");
    assert!(
        message.contains(node.url.trim_start_matches("http://")),
        "{message}"
    );
    assert_eq!(node.terminate().code(), Some(0));
}

/// Run where `./.weft` is, every command means that home without `--home`: `gcode seal --as`
/// records the manifest on it (it once asked for `--home`), and `gcode verify` checks it.
#[test]
fn the_default_home_is_the_home_of_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let here = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_weft"))
            .current_dir(dir.path())
            .env_remove("WEFT_HOME")
            .env_remove("WEFT_NODE")
            .args(args)
            .arg("--json")
            .output()
            .expect("weft runs");
        assert_eq!(
            output.status.code(),
            Some(0),
            "weft {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        json_of(&output)
    };
    here(&["init", "--chain-id", "default-home"]);
    assert!(dir.path().join(".weft").join("config.toml").is_file());
    let designer = here(&[
        "org",
        "add",
        "Designer",
        "--country",
        "DE",
        "--town",
        "Aachen",
    ])["id"]
        .as_str()
        .expect("id")
        .to_string();
    let gcode = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus/gcode/10_cura591.gcode");
    std::fs::copy(&gcode, dir.path().join("part.gcode")).expect("copy");
    here(&["gcode", "keygen", "--out", "printer"]);
    let sealed = here(&[
        "gcode",
        "seal",
        "part.gcode",
        "--out",
        "part.wgc",
        "--manifest",
        "part.json",
        "--to",
        "printer.pub",
        "--as",
        &designer,
    ]);
    let recorded = sealed["recorded"]["tx_id"]
        .as_str()
        .expect("recorded on ./.weft");
    let verified = here(&["gcode", "verify", "part.wgc", "--manifest", "part.json"]);
    assert_eq!(verified["ledger"]["tx_id"], recorded, "{verified}");
}

/// `weft tls self-signed` tells which `[tls]` settings to write: paths relative to the home, as
/// the node reads them, however the home and `--out` were written.
#[test]
fn a_self_signed_certificate_is_named_in_config_terms_relative_to_the_home() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    std::fs::create_dir(&home).expect("home");
    let tls = home.join("tls");
    let output = weft(
        &home,
        &["tls", "self-signed", "--out", tls.to_str().expect("utf-8")],
    );
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("cert = \"tls/cert.pem\""), "{text}");
    assert!(text.contains("key = \"tls/key.pem\""), "{text}");

    // The default home, ./.weft, and --out written without the leading ./
    std::fs::create_dir(dir.path().join(".weft")).expect("default home");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .current_dir(dir.path())
        .args(["tls", "self-signed", "--out", ".weft/tls"])
        .env_remove("WEFT_HOME")
        .output()
        .expect("weft runs");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("cert = \"tls/cert.pem\""), "{text}");
}

/// `--node` on a command that never talks to a node is refused with the reason (exit 2), not
/// silently ignored; `WEFT_NODE` in the environment is left alone (it is meant for every command
/// of a shell); `weft cluster restart --node N` keeps its own `--node`.
#[test]
fn node_given_to_a_command_that_talks_to_no_node_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gcode = dir.path().join("part.gcode");
    std::fs::write(&gcode, "G1 X1 Y1\n").expect("write");
    let gcode = gcode.to_str().expect("utf-8");
    for args in [
        vec!["--node", "http://127.0.0.1:1", "gcode", "layers", gcode],
        vec!["gcode", "layers", "--node", "http://127.0.0.1:1", gcode],
        vec!["--node", "http://127.0.0.1:1", "init"],
    ] {
        let output = weft(dir.path(), &args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--node has no effect on `weft"), "{stderr}");
    }
    assert!(
        !dir.path().join("ledger.redb").exists(),
        "the refused init made nothing"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_weft"))
        .env("WEFT_NODE", "http://127.0.0.1:1")
        .args(["gcode", "layers", gcode, "--json"])
        .output()
        .expect("weft runs");
    assert!(output.status.success(), "{output:?}");
    let restart = weft(
        dir.path(),
        &[
            "cluster",
            "restart",
            "--dir",
            dir.path().to_str().expect("utf-8"),
            "--node",
            "0",
        ],
    );
    let stderr = String::from_utf8_lossy(&restart.stderr);
    assert!(!stderr.contains("no effect"), "{stderr}");
}

/// A machine's file recorded as a record is found by its content: `verify` says RECORDED (by
/// whom, when, which key signed, exit 0), `history` lists the record; another file is unknown.
#[test]
fn a_record_is_found_by_its_content() {
    let h = new_home();
    let machine = org(&h.home, "Mill 7");
    let reading = write(&h.root, "spindle.csv", "t,load\n0,41\n");
    let reading_arg = reading.to_str().expect("path");
    let recorded = run(
        &h.home,
        &["record", "add", reading_arg, "--as", &machine],
        0,
    );
    let verified = run(&h.home, &["verify", reading_arg], 0);
    assert_eq!(verified["verdict"], "recorded", "{verified}");
    assert_eq!(verified["history"][0]["tx_id"], recorded["tx_id"]);
    assert_eq!(verified["history"][0]["kind"], "Record");
    assert_eq!(verified["history"][0]["issuer"], machine.as_str());
    assert_eq!(verified["history"][0]["signer"], machine.as_str());
    assert_eq!(verified["checked"]["proofs"], 1);
    let history = run(&h.home, &["history", reading_arg], 0);
    assert_eq!(history["history"].as_array().map(Vec::len), Some(1));
    let human = weft(&h.home, &["verify", reading_arg]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.starts_with("RECORDED") && text.contains("Mill 7"),
        "{text}"
    );
    let other = write(&h.root, "other.csv", "t,load\n0,42\n");
    let unknown = run(&h.home, &["verify", other.to_str().expect("path")], 4);
    assert_eq!(unknown["verdict"], "unknown");
}

/// A manifest that names one G-code's hash (`file_sha256`: a design its recorder may forward)
/// but describes another's segments is anchored by the ledger check, yet `open` refuses the
/// plaintext that is not the named file, and `verify` of the plain file refuses it too.
#[test]
fn a_manifest_naming_another_files_hash_opens_nothing() {
    let h = new_home();
    let at = |name: &str| h.root.join(name).to_str().expect("utf-8").to_string();
    let owner = org(&h.home, "Designer");
    let holder = org(&h.home, "Holder");
    let victim = org(&h.home, "Victim");
    std::fs::write(
        at("design.gcode"),
        "G21\n;LAYER_CHANGE\nG1 Z0.2\nG1 X1 Y1 E1\n",
    )
    .expect("write");
    std::fs::write(
        at("evil.gcode"),
        "G21\n;LAYER_CHANGE\nG1 Z0.2\nG1 X99 Y1 E1\n",
    )
    .expect("write");
    run(&h.home, &["claim", &at("design.gcode"), "--as", &owner], 0);
    run(
        &h.home,
        &[
            "send",
            &at("design.gcode"),
            "--from",
            &owner,
            "--to",
            &holder,
            "--forward",
        ],
        0,
    );
    run(
        &h.home,
        &[
            "send",
            &at("design.gcode"),
            "--from",
            &holder,
            "--to",
            &victim,
        ],
        0,
    );
    run(&h.home, &["gcode", "keygen", "--out", &at("printer")], 0);
    // The holder seals the evil G-code without recording, then rewrites the manifest to name
    // the design's hash, signs it with its own key and records it.
    run(
        &h.home,
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
            "--no-record",
        ],
        0,
    );
    let mut manifest = weft_gcode::manifest::Manifest::from_json(
        &std::fs::read(at("evil.json")).expect("manifest"),
    )
    .expect("a manifest");
    let design = std::fs::read(at("design.gcode")).expect("design");
    manifest.body.file_sha256 =
        hex::encode(weft_core::Fingerprint::of_bytes(weft_core::HashAlgo::Sha256, &design).digest);
    let key_text = std::fs::read_to_string(h.home.join(format!("keys/{holder}.key"))).expect("key");
    manifest.sign(&weft_core::SigningKey::from_text(key_text.trim()).expect("key"));
    std::fs::remove_file(at("evil.json")).expect("remove");
    std::fs::write(at("evil.json"), manifest.to_json()).expect("write");
    run(&h.home, &["claim", &at("evil.json"), "--as", &holder], 0);

    let refused = run(
        &h.home,
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
            &victim,
        ],
        4,
    );
    // Anchored by the ledger (the holder may forward the design it names), refused for content.
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("not the G-code the ledger vouches for")),
        "{refused}"
    );
    assert!(!h.root.join("evil.out").exists(), "nothing was kept");
    let verdict = run(
        &h.home,
        &[
            "gcode",
            "verify",
            &at("evil.gcode"),
            "--manifest",
            &at("evil.json"),
        ],
        4,
    );
    assert_eq!(verdict["ledger"]["anchored"], false, "{verdict}");
}
