//! Read-side answers as JSON, the same whether the CLI reads a local home or asks a node: the
//! node serves these values and the CLI prints them, so `--node` output equals embedded output.

use serde_json::{Value, json};
use weft_core::model::{DigitalAsset, Payload};
use weft_core::{Fingerprint, ResourceId, TxId};
use weft_ledger::state::{Position, StateView};
use weft_ledger::store::Store;
use weft_ledger::{LedgerError, Signer, Transaction};

/// RFC 3339 UTC time from milliseconds (civil-from-days, no time-zone database needed).
pub fn format_time(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// `{"id", "name", "resource"}` of a registered resource; `name` is null if it is unknown.
pub fn resource_json<V: StateView>(state: &V, id: &ResourceId) -> Value {
    match state.resource(id) {
        Ok(Some(entry)) => {
            json!({"id": id.to_hex(), "name": entry.resource.label(), "resource": entry.resource})
        }
        _ => json!({"id": id.to_hex(), "name": null}),
    }
}

/// "name (id prefix)" for people to read.
pub fn label<V: StateView>(state: &V, id: &ResourceId) -> String {
    match state.resource(id) {
        Ok(Some(entry)) => format!("{} ({})", entry.resource.label(), &id.to_hex()[..12]),
        _ => id.to_hex()[..12].to_string(),
    }
}

/// Is `text` a resource id prefix: 6 to 64 lowercase hex digits?
pub fn is_id_prefix(text: &str) -> bool {
    (6..=64).contains(&text.len()) && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Registered resources whose id starts with `prefix` (lowercase hex digits; at most 1,000).
pub fn resources_with_prefix<S: Store>(
    store: &S,
    prefix: &str,
) -> Result<Vec<ResourceId>, LedgerError> {
    let even = &prefix[..prefix.len() & !1];
    let bytes = hex::decode(even).unwrap_or_default();
    Ok(store
        .resources_with_prefix(&bytes, 1000)?
        .into_iter()
        .filter(|id| id.to_hex().starts_with(prefix))
        .collect())
}

/// Transactions on the chain whose id starts with `prefix` (lowercase hex digits; at most
/// 1,000).
pub fn txs_with_prefix<S: Store>(store: &S, prefix: &str) -> Result<Vec<TxId>, LedgerError> {
    let even = &prefix[..prefix.len() & !1];
    let bytes = hex::decode(even).unwrap_or_default();
    Ok(store
        .txs_with_prefix(&bytes, 1000)?
        .into_iter()
        .filter(|id| id.to_hex().starts_with(prefix))
        .collect())
}

/// Whole copies of transactions this node stores stripped, fetched from peers: id → the
/// transaction and the peer it came from.
pub type Whole = std::collections::HashMap<TxId, (Transaction, String)>;

/// The transaction at `position`, whole if this node or `whole` has it; and the peer it came
/// from, if fetched.
fn tx_at<S: Store>(
    store: &S,
    whole: &Whole,
    position: Position,
    id: &TxId,
) -> Result<(Transaction, Option<String>), LedgerError> {
    let tx = store
        .tx_at(position)?
        .ok_or_else(|| LedgerError::Corrupt(format!("transaction {id} is indexed but missing")))?;
    Ok(match (&tx.payload, whole.get(id)) {
        (None, Some((fetched, from))) => (fetched.clone(), Some(from.clone())),
        _ => (tx, None),
    })
}

/// One transaction of a history, as JSON (with the labels of the resources it names). A
/// transaction stored stripped and not in `whole` says `"stripped": true` and names nobody.
pub fn history_entry<S: Store>(
    store: &S,
    state: &impl StateView,
    whole: &Whole,
    position: Position,
    id: &TxId,
) -> Result<Value, LedgerError> {
    let (tx, fetched_from) = tx_at(store, whole, position, id)?;
    let time = tx.header.time_of_tx;
    let signer = match tx.header.signer {
        Signer::Authority => json!("authority"),
        Signer::Resource(id) => json!(id.to_hex()),
    };
    let mut value = json!({
        "tx_id": id.to_hex(),
        "kind": tx.header.kind.name(),
        "time": time,
        "time_utc": format_time(time),
        "height": position.height,
        "index": position.index,
        "signer": signer,
    });
    if tx.payload.is_none() {
        value["stripped"] = json!(true);
    }
    if let Some(from) = fetched_from {
        value["fetched_from"] = json!(from);
    }
    match &tx.payload {
        Some(Payload::RecordOwnership(claim)) => {
            value["issuer"] = json!(claim.issuer.to_hex());
            value["issuer_label"] = json!(label(state, &claim.issuer));
        }
        Some(Payload::SendProductData(send)) => {
            value["from"] = json!(send.from.to_hex());
            value["to"] = json!(send.to.to_hex());
            value["forward"] = json!(send.forward);
            value["from_label"] = json!(label(state, &send.from));
            value["to_label"] = json!(label(state, &send.to));
        }
        _ => {}
    }
    Ok(value)
}

/// The human line of a [`history_entry`].
pub fn history_line(entry: &Value) -> String {
    let text = |key: &str| entry[key].as_str().unwrap_or("?").to_string();
    let what = match entry["kind"].as_str() {
        Some("RecordOwnership") => format!("claimed by {}", text("issuer_label")),
        Some("SendProductData") => format!(
            "sent by {} to {}{}",
            text("from_label"),
            text("to_label"),
            if entry["forward"].as_bool() == Some(true) {
                " (may forward)"
            } else {
                ""
            }
        ),
        _ => text("kind"),
    };
    let what = if entry["stripped"].as_bool() == Some(true) {
        format!("{what} (stored stripped on this node; no peer sent it whole)")
    } else {
        what
    };
    // The first 12 digits of the id: enough to name it back (`weft proof`, `weft tx show`).
    let id = text("tx_id");
    format!(
        "  block {:>6}  {}  tx {}  {what}",
        entry["height"].as_u64().unwrap_or(0),
        text("time_utc"),
        id.get(..12).unwrap_or(&id)
    )
}

/// Every transaction that mentions `fingerprint`, in ledger order.
pub fn history<S: Store>(
    store: &S,
    whole: &Whole,
    fingerprint: &Fingerprint,
) -> Result<Vec<Value>, LedgerError> {
    let state = store.snapshot()?;
    store
        .by_fingerprint(fingerprint)?
        .into_iter()
        .map(|(position, id)| history_entry(store, &state, whole, position, &id))
        .collect()
}

/// The NIST validation process for a fingerprint, as seen by `recipient` (or by anyone):
/// `{"verdict": "valid" | "unknown" | "not_recipient", "fingerprint", "owner", "owner_label",
/// "history", "product_data"}`. `product_data` is the asset as its owner claimed it. On a node
/// that stores transactions stripped, the verdict comes from the rule state (always whole) and
/// `"stripped"` lists the transactions the report needed but holds stripped (not in `whole`).
pub fn asset_report<S: Store>(
    store: &S,
    whole: &Whole,
    fingerprint: &Fingerprint,
    recipient: Option<ResourceId>,
) -> Result<Value, LedgerError> {
    let state = store.snapshot()?;
    let owner = state.owner(fingerprint)?;
    let history = history(store, whole, fingerprint)?;
    let verdict = verdict(&state, fingerprint, recipient)?;
    let mut stripped: Vec<String> = history
        .iter()
        .filter(|entry| entry["stripped"].as_bool() == Some(true))
        .filter_map(|entry| entry["tx_id"].as_str().map(str::to_string))
        .collect();
    let product_data = match &owner {
        Some(owner) => match claimed_asset(store, whole, &owner.tx_id)? {
            Some(asset) => Some(asset),
            None => {
                let id = owner.tx_id.to_hex();
                if !stripped.contains(&id) {
                    stripped.push(id);
                }
                None
            }
        },
        None => None,
    };
    let mut report = json!({
        "verdict": verdict,
        "fingerprint": fingerprint.to_string(),
        "owner": owner.as_ref().map(|owner| resource_json(&state, &owner.issuer)),
        "owner_label": owner.as_ref().map(|owner| label(&state, &owner.issuer)),
        "history": history,
        "product_data": product_data,
    });
    if !stripped.is_empty() {
        report["stripped"] = json!(stripped);
    }
    Ok(report)
}

/// The ids a report lists under `"stripped"`.
pub fn stripped_ids(report: &Value) -> Vec<TxId> {
    report["stripped"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| TxId::from_hex(id.as_str()?).ok())
        .collect()
}

/// The NIST verdict on `fingerprint` for `recipient` (or for anyone): `"unknown"` if nobody
/// claimed it; `"valid"` if the recipient (or its organisation) owns it or was sent it, or if no
/// recipient is named; otherwise `"not_recipient"`.
pub fn verdict<V: StateView>(
    state: &V,
    fingerprint: &Fingerprint,
    recipient: Option<ResourceId>,
) -> Result<&'static str, LedgerError> {
    let owner = state.owner(fingerprint)?;
    Ok(match (&owner, recipient) {
        (None, _) => "unknown",
        (Some(_), None) => "valid",
        (Some(owner), Some(me)) => {
            let my_org = state.resource(&me)?.and_then(|entry| entry.organization());
            let is = |who: &ResourceId| *who == me || Some(*who) == my_org;
            let received = state.receipt(fingerprint, &me)?.is_some()
                || my_org
                    .map(|org| state.receipt(fingerprint, &org))
                    .transpose()?
                    .flatten()
                    .is_some();
            if is(&owner.issuer) || received {
                "valid"
            } else {
                "not_recipient"
            }
        }
    })
}

/// The asset as claimed in transaction `claim` (`None` also when the claim is stored stripped
/// and not in `whole`).
pub fn claimed_asset<S: Store>(
    store: &S,
    whole: &Whole,
    claim: &TxId,
) -> Result<Option<DigitalAsset>, LedgerError> {
    let tx = match store.tx(claim)? {
        Some((tx, _)) if tx.payload.is_none() => whole.get(claim).map(|(tx, _)| tx.clone()),
        Some((tx, _)) => Some(tx),
        None => None,
    };
    Ok(match tx.and_then(|tx| tx.payload) {
        Some(Payload::RecordOwnership(claim)) => Some(claim.product_data),
        _ => None,
    })
}

/// Who claimed `fingerprint`, and how: `{"issuer", "issuer_label", "signer", "signer_label",
/// "time", "height", "tx_id"}` (`signer` is the resource whose key signed: the issuer, or a
/// person of it); `None` if nobody did.
pub fn claim_record<S: Store>(
    store: &S,
    fingerprint: &Fingerprint,
) -> Result<Option<Value>, LedgerError> {
    let state = store.snapshot()?;
    let Some(owner) = state.owner(fingerprint)? else {
        return Ok(None);
    };
    let (tx, position) = store.tx(&owner.tx_id)?.ok_or_else(|| {
        LedgerError::Corrupt(format!(
            "transaction {} is indexed but missing",
            owner.tx_id
        ))
    })?;
    let signer = match tx.header.signer {
        Signer::Resource(id) => Some(id),
        Signer::Authority => None,
    };
    Ok(Some(json!({
        "issuer": resource_json(&state, &owner.issuer),
        "issuer_label": label(&state, &owner.issuer),
        "signer": signer.map(|id| resource_json(&state, &id)),
        "signer_label": signer.map(|id| label(&state, &id)),
        "time": tx.header.time_of_tx,
        "height": position.height,
        "tx_id": owner.tx_id.to_hex(),
    })))
}

/// `{"resource", "key", "status": "active" | "revoked" | null}`: whether `key` is (or was) a key
/// of `resource`.
pub fn key_status<S: Store>(
    store: &S,
    resource: &ResourceId,
    key: &weft_core::PublicKey,
) -> Result<Value, LedgerError> {
    let status = store.snapshot()?.key_status(resource, key)?;
    Ok(json!({
        "resource": resource.to_hex(),
        "key": key.to_hex(),
        "status": status.map(|status| match status {
            weft_ledger::state::KeyStatus::Active => "active",
            weft_ledger::state::KeyStatus::Revoked { .. } => "revoked",
        }),
    }))
}

/// `{"tx_id", "height", "index", "kind", "time", "key", "payload"}` of a committed transaction.
pub fn transaction_json<S: Store>(store: &S, id: &TxId) -> Result<Option<Value>, LedgerError> {
    let Some((tx, position)) = store.tx(id)? else {
        return Ok(None);
    };
    Ok(Some(json!({
        "tx_id": id.to_hex(),
        "height": position.height,
        "index": position.index,
        "kind": tx.header.kind.name(),
        "time": tx.header.time_of_tx,
        "key": tx.header.key.to_hex(),
        "stripped": tx.payload.is_none(),
        "payload": tx.payload,
    })))
}

/// The chain's genesis parameters and head (`weft chain info`, `GET /v1/chain`).
pub fn chain_json<S: Store>(ledger: &weft_ledger::Ledger<S>) -> Result<Value, LedgerError> {
    let genesis = ledger.genesis();
    let head = &ledger.head().header;
    let hex_keys = |keys: &[weft_core::PublicKey]| {
        keys.iter()
            .map(weft_core::PublicKey::to_hex)
            .collect::<Vec<_>>()
    };
    // The validator schedule (genesis producers until a `SetValidators` change takes effect).
    let schedule = ledger.store().snapshot()?.schedule()?;
    let next = head.height + 1;
    let scheduled: Vec<Value> = schedule
        .changes
        .iter()
        .filter(|change| change.from_height > head.height)
        .map(|change| {
            json!({
                "from_height": change.from_height,
                "validators": hex_keys(&change.validators),
                "scheduled_at": change.scheduled_at.height,
            })
        })
        .collect();
    Ok(json!({
        "chain_name": genesis.chain_name,
        "chain_id": ledger.chain_id().to_hex(),
        "time_window_secs": genesis.time_window_ms / 1000,
        "authorities": hex_keys(&genesis.authorities),
        "producers": hex_keys(&genesis.producers),
        "epoch": schedule.epoch_of(next),
        "validators": hex_keys(schedule.producers_at(next)),
        "scheduled": scheduled,
        "height": head.height,
        "head_hash": head.hash().to_hex(),
        "head_time": format_time(head.timestamp),
    }))
}
