//! Read-side answers, the same whether the CLI reads a local home or asks a node: the node
//! serves these bodies (`weft_api`'s types) and the CLI prints them, so `--node` output equals
//! embedded output.

use weft_api::{
    AssetReport, ChainInfo, ClaimAnswer, HistoryEntry, KeyState, KeyStatus, ResourceAnswer,
    ResourceRef, ScheduledChange, TransactionAnswer, Verdict,
};
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

/// A resource named in an answer: its id, name and the resource; `name` is null (and
/// `resource` absent) if it is unknown.
pub fn resource_ref<V: StateView>(state: &V, id: &ResourceId) -> ResourceRef {
    match state.resource(id) {
        Ok(Some(entry)) => ResourceRef {
            id: *id,
            name: Some(entry.resource.label()),
            resource: Some(entry.resource),
        },
        _ => ResourceRef {
            id: *id,
            name: None,
            resource: None,
        },
    }
}

/// A registered resource (`GET /v1/resources/{id}`); `None` if it is not registered.
pub fn resource_answer<V: StateView>(
    state: &V,
    id: &ResourceId,
) -> Result<Option<ResourceAnswer>, LedgerError> {
    let Some(entry) = state.resource(id)? else {
        return Ok(None);
    };
    Ok(Some(ResourceAnswer {
        id: *id,
        name: Some(entry.resource.label()),
        organization: entry.organization(),
        registered_at: weft_api::Position {
            height: entry.registered_at.height,
            index: entry.registered_at.index,
        },
        resource: entry.resource,
    }))
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

/// One transaction of a history (with the labels of the resources it names). A transaction
/// stored stripped and not in `whole` says `"stripped": true` and names nobody.
pub fn history_entry<S: Store>(
    store: &S,
    state: &impl StateView,
    whole: &Whole,
    position: Position,
    id: &TxId,
) -> Result<HistoryEntry, LedgerError> {
    let (tx, fetched_from) = tx_at(store, whole, position, id)?;
    let time = tx.header.time_of_tx;
    let mut entry = HistoryEntry {
        fetched_from,
        forward: None,
        from: None,
        from_label: None,
        height: position.height,
        index: position.index,
        issuer: None,
        issuer_label: None,
        kind: tx.header.kind.name().to_string(),
        signer: match tx.header.signer {
            Signer::Authority => "authority".to_string(),
            Signer::Resource(id) => id.to_hex(),
        },
        stripped: tx.payload.is_none(),
        time,
        time_utc: format_time(time),
        to: None,
        to_label: None,
        tx_id: *id,
    };
    match &tx.payload {
        Some(Payload::RecordOwnership(claim)) => {
            entry.issuer = Some(claim.issuer);
            entry.issuer_label = Some(label(state, &claim.issuer));
        }
        Some(Payload::SendProductData(send)) => {
            entry.from = Some(send.from);
            entry.to = Some(send.to);
            entry.forward = Some(send.forward);
            entry.from_label = Some(label(state, &send.from));
            entry.to_label = Some(label(state, &send.to));
        }
        Some(Payload::Record(record)) => {
            entry.issuer = Some(record.issuer);
            entry.issuer_label = Some(label(state, &record.issuer));
        }
        _ => {}
    }
    Ok(entry)
}

/// The human line of a [`history_entry`].
pub fn history_line(entry: &HistoryEntry) -> String {
    let text = |text: &Option<String>| text.as_deref().unwrap_or("?").to_string();
    let what = match entry.kind.as_str() {
        "RecordOwnership" => format!("claimed by {}", text(&entry.issuer_label)),
        "Record" => format!("recorded by {}", text(&entry.issuer_label)),
        "SendProductData" => format!(
            "sent by {} to {}{}",
            text(&entry.from_label),
            text(&entry.to_label),
            if entry.forward == Some(true) {
                " (may forward)"
            } else {
                ""
            }
        ),
        kind => kind.to_string(),
    };
    let what = if entry.stripped {
        format!("{what} (stored stripped on this node; no peer sent it whole)")
    } else {
        what
    };
    // The first 12 digits of the id: enough to name it back (`weft proof`, `weft tx show`).
    let id = entry.tx_id.to_hex();
    format!(
        "  block {:>6}  {}  tx {}  {what}",
        entry.height,
        entry.time_utc,
        id.get(..12).unwrap_or(&id)
    )
}

/// Every transaction that mentions `fingerprint`, in ledger order.
pub fn history<S: Store>(
    store: &S,
    whole: &Whole,
    fingerprint: &Fingerprint,
) -> Result<Vec<HistoryEntry>, LedgerError> {
    let state = store.snapshot()?;
    store
        .by_fingerprint(fingerprint)?
        .into_iter()
        .map(|(position, id)| history_entry(store, &state, whole, position, &id))
        .collect()
}

/// The NIST validation process for a fingerprint, as seen by `recipient` (or by anyone): the
/// verdict, the owner, the history, and the asset as its owner claimed it (`product_data`). On
/// a node that stores transactions stripped, the verdict comes from the rule state (always
/// whole) and `stripped` lists the transactions the report needed but holds stripped (not in
/// `whole`).
pub fn asset_report<S: Store>(
    store: &S,
    whole: &Whole,
    fingerprint: &Fingerprint,
    recipient: Option<ResourceId>,
) -> Result<AssetReport, LedgerError> {
    let state = store.snapshot()?;
    let owner = state.owner(fingerprint)?;
    let history = history(store, whole, fingerprint)?;
    let verdict = asset_verdict(store, &state, fingerprint, recipient)?;
    // Read with the history, before anything else can commit: the history as of the head.
    let proven = match store.head()? {
        Some(head) if head.header.state_root.is_some() => Some(weft_api::HistoryState {
            height: head.header.height,
            history_proof: hex::encode(weft_core::encoding::encode(
                &store.state_proof(&weft_ledger::commitment::StateKey::History(*fingerprint))?,
            )),
        }),
        _ => None,
    };
    let mut stripped: Vec<TxId> = history
        .iter()
        .filter(|entry| entry.stripped)
        .map(|entry| entry.tx_id)
        .collect();
    let product_data = match &owner {
        Some(owner) => match claimed_asset(store, whole, &owner.tx_id)? {
            Some(asset) => Some(asset),
            None => {
                if !stripped.contains(&owner.tx_id) {
                    stripped.push(owner.tx_id);
                }
                None
            }
        },
        None => None,
    };
    Ok(AssetReport {
        fingerprint: *fingerprint,
        history,
        owner: owner
            .as_ref()
            .map(|owner| resource_ref(&state, &owner.issuer)),
        owner_label: owner.as_ref().map(|owner| label(&state, &owner.issuer)),
        product_data,
        stripped: (!stripped.is_empty()).then_some(stripped),
        verdict,
        state: proven,
    })
}

/// [`asset_report`] on a node that follows on proofs and keeps no rule state: from the
/// history a peer (`from`) sent, which this node checked against the state root of one of its
/// own headers ([`weft_ledger::history::check`]). The verdict is recomputed from those
/// transactions alone ([`verdict_from_history`]); resources are named by id (this node does not
/// know their names).
pub fn checked_asset_report<S: Store>(
    store: &S,
    checked: &weft_ledger::history::CheckedHistory,
    from: &str,
    recipient: Option<ResourceId>,
) -> Result<AssetReport, LedgerError> {
    let state = store.snapshot()?;
    let whole: Whole = checked
        .transactions
        .iter()
        .map(|(_, tx)| (tx.id(), (tx.clone(), from.to_string())))
        .collect();
    let history = checked
        .transactions
        .iter()
        .map(|(position, tx)| history_entry(store, &state, &whole, *position, &tx.id()))
        .collect::<Result<Vec<_>, _>>()?;
    let payloads: Vec<&Payload> = checked
        .transactions
        .iter()
        .filter_map(|(_, tx)| tx.payload.as_ref())
        .collect();
    let organization = checked
        .registration
        .as_ref()
        .and_then(|tx| tx.payload.as_ref())
        .and_then(organization_of);
    let (owner, verdict) = verdict_from_history(payloads.iter().copied(), recipient, organization);
    let product_data = payloads.iter().find_map(|payload| match payload {
        Payload::RecordOwnership(claim) => Some(claim.product_data.clone()),
        _ => None,
    });
    Ok(AssetReport {
        fingerprint: checked.fingerprint,
        history,
        owner: owner.map(|owner| resource_ref(&state, &owner)),
        owner_label: owner.map(|owner| label(&state, &owner)),
        product_data,
        stripped: None,
        verdict,
        state: Some(weft_api::HistoryState {
            height: checked.height,
            history_proof: hex::encode(&checked.proof),
        }),
    })
}

/// The organisation a registration puts its person in (`None` for anything else).
pub fn organization_of(registration: &Payload) -> Option<ResourceId> {
    match registration {
        Payload::RegisterResource(weft_core::model::RegisterResource {
            resource: weft_core::model::Resource::PersonInOrganization(person),
            ..
        }) => Some(person.belongs_to),
        _ => None,
    }
}

/// The NIST verdict on an asset recomputed from its complete history alone (the payloads of
/// every transaction naming it, in ledger order), for `recipient`, who belongs to
/// `organization` (from its registration): who claimed it, and `recorded` if nobody did but a
/// `Record` holds it, `unknown` if neither; `valid` for anyone when no recipient is named, or
/// when the recipient (or its organisation) claimed it or was sent it; else `not_recipient`.
pub fn verdict_from_history<'a>(
    payloads: impl IntoIterator<Item = &'a Payload>,
    recipient: Option<ResourceId>,
    organization: Option<ResourceId>,
) -> (Option<ResourceId>, Verdict) {
    let mut owner = None;
    let mut received = Vec::new();
    let mut recorded = false;
    for payload in payloads {
        match payload {
            Payload::RecordOwnership(claim) => {
                owner.get_or_insert(claim.issuer);
            }
            Payload::SendProductData(send) => received.push(send.to),
            Payload::Record(_) => recorded = true,
            _ => {}
        }
    }
    let verdict = match (owner, recipient) {
        (None, _) if recorded => Verdict::Recorded,
        (None, _) => Verdict::Unknown,
        (Some(_), None) => Verdict::Valid,
        (Some(owner), Some(me)) => {
            let is = |who: &ResourceId| *who == me || Some(*who) == organization;
            if is(&owner) || received.iter().any(is) {
                Verdict::Valid
            } else {
                Verdict::NotRecipient
            }
        }
    };
    (owner, verdict)
}

/// The NIST verdict on `fingerprint` for `recipient` (or for anyone): `unknown` if nobody
/// claimed it; `valid` if the recipient (or its organisation) owns it or was sent it, or if no
/// recipient is named; otherwise `not_recipient`.
pub fn verdict<V: StateView>(
    state: &V,
    fingerprint: &Fingerprint,
    recipient: Option<ResourceId>,
) -> Result<Verdict, LedgerError> {
    let owner = state.owner(fingerprint)?;
    Ok(match (&owner, recipient) {
        (None, _) => Verdict::Unknown,
        (Some(_), None) => Verdict::Valid,
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
                Verdict::Valid
            } else {
                Verdict::NotRecipient
            }
        }
    })
}

/// The verdict on `fingerprint` for `recipient`, as [`verdict`] gives it from the rule state,
/// except that an asset nobody claimed but a `Record` holds is `recorded`.
pub fn asset_verdict<S: Store>(
    store: &S,
    state: &impl StateView,
    fingerprint: &Fingerprint,
    recipient: Option<ResourceId>,
) -> Result<Verdict, LedgerError> {
    Ok(match verdict(state, fingerprint, recipient)? {
        Verdict::Unknown if recorded(store, fingerprint)? => Verdict::Recorded,
        verdict => verdict,
    })
}

/// Is `fingerprint` the body of a `Record` on the ledger?
fn recorded<S: Store>(store: &S, fingerprint: &Fingerprint) -> Result<bool, LedgerError> {
    for (position, id) in store.by_fingerprint(fingerprint)? {
        if let Some(tx) = store.tx_at(position)?
            && tx.id() == id
            && tx.header.kind == weft_core::model::PayloadKind::Record
        {
            return Ok(true);
        }
    }
    Ok(false)
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

/// Who claimed `fingerprint`, and how (`signer` is the resource whose key signed: the issuer,
/// or a person of it); `None` if nobody did.
pub fn claim_record<S: Store>(
    store: &S,
    fingerprint: &Fingerprint,
) -> Result<Option<ClaimAnswer>, LedgerError> {
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
    Ok(Some(ClaimAnswer {
        height: position.height,
        issuer: resource_ref(&state, &owner.issuer),
        issuer_label: label(&state, &owner.issuer),
        signer: signer.map(|id| resource_ref(&state, &id)),
        signer_label: signer.map(|id| label(&state, &id)),
        time: tx.header.time_of_tx,
        tx_id: owner.tx_id,
    }))
}

/// Whether `key` is (or was) a key of `resource`.
pub fn key_status<S: Store>(
    store: &S,
    resource: &ResourceId,
    key: &weft_core::PublicKey,
) -> Result<KeyStatus, LedgerError> {
    let status = store.snapshot()?.key_status(resource, key)?;
    Ok(KeyStatus {
        key: *key,
        resource: *resource,
        status: status.map(|status| match status {
            weft_ledger::state::KeyStatus::Active => KeyState::Active,
            weft_ledger::state::KeyStatus::Revoked { .. } => KeyState::Revoked,
        }),
    })
}

/// A committed transaction with its inclusion proof, as this node stores it (a transaction
/// stored stripped has no payload here); `None` if it is not on the chain.
pub fn transaction<S: Store>(
    store: &S,
    id: &TxId,
) -> Result<Option<TransactionAnswer>, LedgerError> {
    let Some((tx, position)) = store.tx(id)? else {
        return Ok(None);
    };
    let proof = weft_ledger::proof::build(store, id)?;
    Ok(Some(TransactionAnswer {
        fetched_from: None,
        height: position.height,
        index: position.index,
        key: tx.header.key,
        kind: tx.header.kind.name().to_string(),
        stripped: tx.payload.is_none(),
        payload: tx.payload,
        proof: proof_json(&proof)?,
        time: tx.header.time_of_tx,
        tx_id: *id,
    }))
}

/// An inclusion proof as the JSON document it travels as (docs/proofs.md).
pub fn proof_json(
    proof: &weft_ledger::proof::InclusionProof,
) -> Result<serde_json::Value, LedgerError> {
    serde_json::to_value(proof)
        .map_err(|error| LedgerError::Invalid(format!("the inclusion proof: {error}")))
}

/// The chain's genesis parameters and head (`weft chain info`, `GET /v1/chain`).
pub fn chain_info<S: Store>(ledger: &weft_ledger::Ledger<S>) -> Result<ChainInfo, LedgerError> {
    let genesis = ledger.genesis();
    let head = &ledger.head().header;
    // The validator schedule (genesis producers until a `SetValidators` change takes effect).
    let schedule = ledger.store().snapshot()?.schedule()?;
    let next = head.height + 1;
    let scheduled = schedule
        .changes
        .iter()
        .filter(|change| change.from_height > head.height)
        .map(|change| ScheduledChange {
            from_height: change.from_height,
            scheduled_at: change.scheduled_at.height,
            validators: change.validators.clone(),
        })
        .collect();
    Ok(ChainInfo {
        authorities: genesis.authorities.clone(),
        chain_id: ledger.chain_id(),
        chain_name: genesis.chain_name.clone(),
        epoch: schedule.epoch_of(next),
        head_hash: head.hash(),
        head_time: format_time(head.timestamp),
        height: head.height,
        producers: genesis.producers.clone(),
        scheduled,
        time_window_secs: genesis.time_window_ms / 1000,
        validators: schedule.producers_at(next).to_vec(),
    })
}
