//! The typed bodies serialise to exactly the bytes the node's `json!` maps did before them:
//! keys in alphabetical order (serde_json's maps are sorted), `null` where a field was always
//! written, absent where it was only sometimes set. Each case writes the old map by hand.

use serde::Serialize;
use serde_json::json;
use weft_api::{
    AssetReport, BatchResult, ErrorCode, ErrorDetail, HistoryEntry, KeyStatus, ResourceRef, Status,
    Verdict,
};
use weft_core::{BlockHash, ChainId, Fingerprint, ResourceId, SigningKey, TxId};

fn same_bytes(typed: &impl Serialize, old: serde_json::Value) {
    assert_eq!(
        serde_json::to_string(typed).expect("serialises"),
        serde_json::to_string(&old).expect("serialises")
    );
}

fn hex(byte: &str) -> String {
    byte.repeat(32)
}

#[test]
fn a_claim_in_a_history_has_its_issuer_and_no_stripped_field() {
    let (tx, issuer) = (hex("ab"), hex("cd"));
    let entry = HistoryEntry {
        fetched_from: None,
        forward: None,
        from: None,
        from_label: None,
        height: 7,
        index: 1,
        issuer: Some(ResourceId::from_hex(&issuer).expect("id")),
        issuer_label: Some("Acme (cdcdcdcdcdcd)".into()),
        kind: "RecordOwnership".into(),
        signer: issuer.clone(),
        stripped: false,
        time: 1_700_000_000_000,
        time_utc: "2023-11-14T22:13:20.000Z".into(),
        to: None,
        to_label: None,
        tx_id: TxId::from_hex(&tx).expect("id"),
    };
    same_bytes(
        &entry,
        json!({
            "tx_id": tx, "kind": "RecordOwnership", "time": 1_700_000_000_000u64,
            "time_utc": "2023-11-14T22:13:20.000Z", "height": 7, "index": 1, "signer": issuer,
            "issuer": issuer, "issuer_label": "Acme (cdcdcdcdcdcd)",
        }),
    );
}

#[test]
fn a_stripped_transaction_in_a_history_says_so_and_names_nobody() {
    let tx = hex("ab");
    let entry = HistoryEntry {
        fetched_from: None,
        forward: None,
        from: None,
        from_label: None,
        height: 3,
        index: 0,
        issuer: None,
        issuer_label: None,
        kind: "SendProductData".into(),
        signer: "authority".into(),
        stripped: true,
        time: 5,
        time_utc: "1970-01-01T00:00:00.005Z".into(),
        to: None,
        to_label: None,
        tx_id: TxId::from_hex(&tx).expect("id"),
    };
    same_bytes(
        &entry,
        json!({
            "tx_id": tx, "kind": "SendProductData", "time": 5,
            "time_utc": "1970-01-01T00:00:00.005Z", "height": 3, "index": 0,
            "signer": "authority", "stripped": true,
        }),
    );
}

#[test]
fn an_unknown_resource_has_a_null_name_and_no_resource() {
    let id = hex("0f");
    let reference = ResourceRef {
        id: ResourceId::from_hex(&id).expect("id"),
        name: None,
        resource: None,
    };
    same_bytes(&reference, json!({"id": id, "name": null}));
}

#[test]
fn an_asset_nobody_claimed_has_null_owner_and_no_stripped_list() {
    let fingerprint: Fingerprint = format!("sha256:{}", hex("11"))
        .parse()
        .expect("fingerprint");
    let report = AssetReport {
        fingerprint,
        history: Vec::new(),
        owner: None,
        owner_label: None,
        product_data: None,
        stripped: None,
        verdict: Verdict::Unknown,
    };
    same_bytes(
        &report,
        json!({
            "verdict": "unknown", "fingerprint": fingerprint.to_string(), "owner": null,
            "owner_label": null, "history": [], "product_data": null,
        }),
    );
}

#[test]
fn a_key_never_of_a_resource_has_a_null_status() {
    let resource = hex("22");
    let key = SigningKey::generate().expect("a key").public_key();
    let status = KeyStatus {
        key,
        resource: ResourceId::from_hex(&resource).expect("id"),
        status: None,
    };
    same_bytes(
        &status,
        json!({"resource": resource, "key": key.to_hex(), "status": null}),
    );
}

#[test]
fn batch_results_carry_a_place_or_an_error_never_both() {
    let tx = hex("44");
    let committed = BatchResult {
        error: None,
        height: Some(9),
        index: Some(2),
        tx_id: TxId::from_hex(&tx).expect("id"),
    };
    same_bytes(&committed, json!({"tx_id": tx, "height": 9, "index": 2}));
    let refused = BatchResult {
        error: Some(ErrorDetail {
            code: ErrorCode::Rule,
            message: "already claimed".into(),
            rule: Some("claim_once".into()),
        }),
        height: None,
        index: None,
        tx_id: TxId::from_hex(&tx).expect("id"),
    };
    same_bytes(
        &refused,
        json!({"tx_id": tx, "error": {"code": "rule", "rule": "claim_once", "message": "already claimed"}}),
    );
}

#[test]
fn the_status_answer_is_unchanged() {
    let (chain_id, head) = (hex("55"), hex("66"));
    let status = Status {
        chain: "demo".into(),
        chain_id: ChainId::from_hex(&chain_id).expect("id"),
        head: BlockHash::from_hex(&head).expect("hash"),
        height: 12,
        mempool: 0,
        node_type: "full".into(),
        peers: 3,
        time: 99,
    };
    same_bytes(
        &status,
        json!({
            "chain": "demo", "chain_id": chain_id, "height": 12, "head": head, "time": 99,
            "node_type": "full", "peers": 3, "mempool": 0,
        }),
    );
}
