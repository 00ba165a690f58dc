//! The typed bodies serialise to exactly the bytes the node's `json!` maps did before them:
//! keys in alphabetical order (serde_json's maps are sorted), `null` where a field was always
//! written, absent where it was only sometimes set. Each case writes the old map by hand.
//!
//! The network's status and join document were structs in weft-node before, sent in their
//! declaration order; their cases write the old bytes out as text.

use serde::Serialize;
use serde_json::json;
use weft_api::{
    AssetReport, BatchResult, CutOff, ErrorCode, ErrorDetail, HistoryEntry, JOIN_FORMAT,
    JoinDocument, KeyStatus, Member, NetStatus, NextValidators, ResourceRef, Status, Verdict,
};
use weft_core::{BlockHash, ChainId, Fingerprint, ResourceId, SigningKey, TxId};

fn same_bytes(typed: &impl Serialize, old: serde_json::Value) {
    assert_eq!(
        serde_json::to_string(typed).expect("serialises"),
        serde_json::to_string(&old).expect("serialises")
    );
}

/// The body serialises to `old`, the text the node sent before, and reads back as itself.
fn same_text<T>(typed: &T, old: &str)
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    assert_eq!(serde_json::to_string(typed).expect("serialises"), old);
    assert_eq!(&serde_json::from_str::<T>(old).expect("reads back"), typed);
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
        state: None,
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

#[test]
fn the_network_status_is_unchanged() {
    let (a, b, c, d) = (hex("aa"), hex("bb"), hex("cc"), hex("dd"));
    let status = NetStatus {
        key: a.clone(),
        validator: true,
        epoch: 1,
        validators: vec![a.clone(), b.clone()],
        next_validators: Some(NextValidators {
            from_height: 40,
            validators: vec![c.clone()],
        }),
        peers: vec![b.clone()],
        online: vec![b.clone(), c.clone()],
        cut_off: vec![CutOff {
            key: d.clone(),
            reason: "sent an invalid block".into(),
            until_ms: 1_700_000_005_000,
        }],
        addresses: 3,
        dialed: 2,
        picked: vec![c.clone()],
        connections_wanted: 4,
        dialed_connected: 1,
        height: 12,
        finalized_height: 13,
        view: 20,
        notarized_view: 22,
        sync: "catching up".into(),
        engine: "waiting for validators".into(),
        waiting_for: vec![b.clone()],
        mempool: 5,
        evidence: 1,
        refused_blocks: 0,
        nullified_views: 2,
        members: vec![Member {
            key: c.clone(),
            name: "thin0".into(),
        }],
    };
    same_text(
        &status,
        &format!(
            concat!(
                r#"{{"key":"{a}","validator":true,"epoch":1,"validators":["{a}","{b}"],"#,
                r#""next_validators":{{"from_height":40,"validators":["{c}"]}},"#,
                r#""peers":["{b}"],"online":["{b}","{c}"],"#,
                r#""cut_off":[{{"key":"{d}","reason":"sent an invalid block","until_ms":1700000005000}}],"#,
                r#""addresses":3,"dialed":2,"picked":["{c}"],"connections_wanted":4,"#,
                r#""dialed_connected":1,"height":12,"finalized_height":13,"view":20,"#,
                r#""notarized_view":22,"sync":"catching up","engine":"waiting for validators","#,
                r#""waiting_for":["{b}"],"mempool":5,"evidence":1,"refused_blocks":0,"#,
                r#""nullified_views":2,"members":[{{"key":"{c}","name":"thin0"}}]}}"#,
            ),
            a = a,
            b = b,
            c = c,
            d = d,
        ),
    );
}

/// As the node shows it before its network first reported: no change scheduled (`null`), no
/// engine state yet (empty).
#[test]
fn a_network_status_before_the_first_report_has_null_and_empty_fields() {
    let a = hex("aa");
    let status = NetStatus {
        key: a.clone(),
        sync: "no peers".into(),
        ..NetStatus::default()
    };
    same_text(
        &status,
        &format!(
            concat!(
                r#"{{"key":"{a}","validator":false,"epoch":0,"validators":[],"#,
                r#""next_validators":null,"peers":[],"online":[],"cut_off":[],"addresses":0,"#,
                r#""dialed":0,"picked":[],"connections_wanted":0,"dialed_connected":0,"height":0,"#,
                r#""finalized_height":0,"view":0,"notarized_view":0,"sync":"no peers","engine":"","#,
                r#""waiting_for":[],"mempool":0,"evidence":0,"refused_blocks":0,"#,
                r#""nullified_views":0,"members":[]}}"#,
            ),
            a = a,
        ),
    );
}

#[test]
fn the_join_document_is_unchanged() {
    let (chain_id, block0_hash, a, c) = (hex("11"), hex("22"), hex("aa"), hex("cc"));
    let document = JoinDocument {
        format: JOIN_FORMAT.into(),
        chain: "demo".into(),
        chain_id: chain_id.clone(),
        block0_hash: block0_hash.clone(),
        block0: "0a0b".into(),
        seeds: vec![format!("{a}@127.0.0.1:7000")],
        followers: vec![c.clone()],
    };
    same_text(
        &document,
        &format!(
            concat!(
                r#"{{"format":"weft-join-v1","chain":"demo","chain_id":"{chain_id}","#,
                r#""block0_hash":"{block0_hash}","block0":"0a0b","seeds":["{a}@127.0.0.1:7000"],"#,
                r#""followers":["{c}"]}}"#,
            ),
            chain_id = chain_id,
            block0_hash = block0_hash,
            a = a,
            c = c,
        ),
    );
    // A document with a field this version does not know is refused, as before.
    let extended = serde_json::to_string(&document)
        .expect("serialises")
        .replace(r#""format""#, r#""extra":1,"format""#);
    assert!(serde_json::from_str::<JoinDocument>(&extended).is_err());
}
