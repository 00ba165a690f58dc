//! Proofs of a network's transactions carry what makes their block final — a quorum's
//! finalization certificate, and the certified validator changes from genesis — and `weft proof
//! verify` believes nothing less (docs/proofs.md, "Finality").

use std::path::Path;

use serde_json::Value;
use weft_core::encoding::{decode, encode};
use weft_ledger::block::SignedHeader;

use crate::common::run;

fn write(path: &Path, proof: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(proof).expect("json")).expect("write");
}

fn verify(home: &Path, file: &Path, code: i32) -> Value {
    run(
        home,
        &["proof", "verify", file.to_str().expect("utf-8")],
        code,
    )
}

fn reason(report: &Value) -> String {
    report["reason"]
        .as_str()
        .or_else(|| report["error"]["message"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// `early` is a transaction of epoch 0 (4 genesis validators), `late` one of epoch 1, after a
/// change of validators; `home` pins the chain's trust root and holds validator 0's key.
pub(crate) fn network_proofs_are_final_by_certificate(
    home: &Path,
    api: &str,
    early: &str,
    late: &str,
    dir: &Path,
) {
    let proof_of = |id: &str| -> Value {
        let file = dir.join(format!("{id}.json"));
        run(
            home,
            &[
                "proof",
                id,
                "--out",
                file.to_str().expect("utf-8"),
                "--node",
                api,
            ],
            0,
        );
        serde_json::from_slice(&std::fs::read(&file).expect("proof")).expect("json")
    };
    let early_proof = proof_of(early);
    let late_proof = proof_of(late);
    assert_eq!(late_proof["finality"]["epoch"], 1, "{late_proof}");
    assert_eq!(
        late_proof["validator_changes"].as_array().map(Vec::len),
        Some(1),
        "{late_proof}"
    );
    let file = dir.join("case.json");
    write(&file, &late_proof);
    let valid = verify(home, &file, 0);
    assert_eq!(valid["finality"], "certified", "{valid}");
    assert_eq!(valid["epoch"], 1, "{valid}");
    assert_eq!(valid["trust_root"]["chain_id"], late_proof["chain_id"]);

    // No trust root: nothing is believed.
    let nobody = dir.join("no-home");
    let refused = verify(&nobody, &file, 4);
    assert!(reason(&refused).contains("no trust root"), "{refused}");

    // Without its certificate, one validator's seal is not enough.
    let mut case = late_proof.clone();
    case["finality"]
        .as_object_mut()
        .expect("finality")
        .remove("certificate");
    write(&file, &case);
    let refused = verify(home, &file, 4);
    assert!(reason(&refused).contains("not enough"), "{refused}");

    // Another block's certificate (epoch 0's) does not make this one final.
    let mut case = late_proof.clone();
    case["finality"]["certificate"] = early_proof["finality"]["certificate"].clone();
    write(&file, &case);
    verify(home, &file, 4);

    // Without the validator change, the block is not of the epoch its finality claims.
    let mut case = late_proof.clone();
    case.as_object_mut()
        .expect("proof")
        .remove("validator_changes");
    write(&file, &case);
    verify(home, &file, 4);

    // A fork at the same height: validator 0 seals another block there (another timestamp)
    // holding the same transaction. Its own seal verifies; the quorum's certificate is not for
    // it, and without one it is not final.
    let producer = weft_client_key(home);
    let mut signed: SignedHeader =
        decode(&hex::decode(late_proof["signed_header"].as_str().expect("header")).expect("hex"))
            .expect("header");
    signed.header.timestamp += 1;
    signed.header.producer = producer.public_key();
    let forged = SignedHeader::seal(signed.header.clone(), &producer);
    let mut case = late_proof.clone();
    case["signed_header"] = Value::String(hex::encode(encode(&forged)));
    case["block_hash"] = Value::String(forged.header.hash().to_hex());
    case["finality"]["headers"] = Value::Array(Vec::new());
    case["finality"]["certified_height"] = case["height"].clone();
    write(&file, &case);
    let refused = verify(home, &file, 4);
    assert!(reason(&refused).contains("certificate"), "{refused}");
    case["finality"]
        .as_object_mut()
        .expect("finality")
        .remove("certificate");
    write(&file, &case);
    let refused = verify(home, &file, 4);
    assert!(reason(&refused).contains("not enough"), "{refused}");
}

/// Validator 0's key, as its home keeps it.
fn weft_client_key(home: &Path) -> weft_core::SigningKey {
    let text = std::fs::read_to_string(home.join("keys/producer.key")).expect("key");
    weft_core::SigningKey::from_text(text.trim()).expect("a key")
}

/// `apis`: three of the four validators of the epoch, the first with the home's node. One
/// validator's checkpoint is not enough; three signatures are; a later checkpoint extends an
/// earlier one; a tlog-proof with the quorum's checkpoint checks offline.
pub(crate) fn network_checkpoints_need_a_quorum(home: &Path, apis: &[&str], tx: &str, dir: &Path) {
    let [first, second, third] = apis else {
        panic!("three validators")
    };
    let alone = run(home, &["checkpoint", "--node", first], 4);
    assert!(reason(&alone).contains("are needed"), "{alone}");
    let held = dir.join("held.note");
    let held_arg = held.to_str().expect("utf-8");
    let gathered = run(
        home,
        &[
            "checkpoint",
            "--node",
            first,
            "--also",
            second,
            "--also",
            third,
            "--out",
            held_arg,
        ],
        0,
    );
    assert_eq!(
        gathered["signers"].as_array().map(Vec::len),
        Some(3),
        "{gathered}"
    );
    assert_eq!(gathered["validators"], 4, "{gathered}");
    // The chain's parameters: the head believed as final by a quorum's certificate.
    let info = run(home, &["chain", "info", "--node", first], 0);
    assert_eq!(info["checked"]["head"], "certified", "{info}");
    // The C2SP path serves the same note, as text.
    let (status, text) =
        crate::common::node::http("GET", &format!("{first}/checkpoint"), None, b"");
    assert_eq!(status, 200);
    let text = text.as_str().expect("a text answer");
    assert!(text.starts_with("weft/"), "{text}");
    weft_ledger::checkpoint::Note::parse(text.as_bytes()).expect("a signed note");

    // Later: the chain moved on; its new checkpoint extends the one held.
    let later = run(
        home,
        &[
            "checkpoint",
            "--node",
            second,
            "--also",
            first,
            "--also",
            third,
            "--since",
            held_arg,
        ],
        0,
    );
    assert_eq!(later["since"]["consistent"], true, "{later}");
    // A held checkpoint from the future (a larger size than the node has) is a stale head.
    let mut future = std::fs::read_to_string(&held).expect("note");
    let size = gathered["size"].as_u64().expect("size");
    future = future.replacen(&format!("\n{size}\n"), &format!("\n{}\n", size + 1000), 1);
    let forged = dir.join("forged.note");
    std::fs::write(&forged, future).expect("write");
    run(
        home,
        &[
            "checkpoint",
            "--node",
            first,
            "--also",
            second,
            "--also",
            third,
            "--since",
            forged.to_str().expect("utf-8"),
        ],
        4,
    );

    // A tlog-proof with one validator's checkpoint is refused before it is written; with the
    // quorum's, it is written and checks offline.
    let file = dir.join("tx.tlog-proof");
    let file_arg = file.to_str().expect("utf-8");
    run(
        home,
        &["proof", tx, "--tlog", "--node", first, "--out", file_arg],
        4,
    );
    assert!(!file.exists());
    run(
        home,
        &[
            "proof", tx, "--tlog", "--node", first, "--also", second, "--also", third, "--out",
            file_arg,
        ],
        0,
    );
    let verified = run(home, &["proof", "verify", file_arg], 0);
    assert_eq!(verified["checkpoint"]["signers"], 3, "{verified}");
    assert_eq!(verified["finality"], "certified", "{verified}");
}
