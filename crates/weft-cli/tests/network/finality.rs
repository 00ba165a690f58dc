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
