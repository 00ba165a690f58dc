//! Answers about an asset, checked before they are shown (docs/proofs.md, "What a client
//! checks"): every transaction of the history the chain gave comes with its proof, checked
//! against the trust root, and must be about the asset (a claim, a send, or a record whose body
//! it is); the NIST verdict is computed again from
//! those transactions alone — the owner's claim, every send, the recipient's registration — and
//! must be the one the chain gave. A node that lies about any of it is named (exit 4).
//!
//! And the history is complete: it comes with the proof of the asset's history leaf under the
//! state root of a block shown final on the trusted chain, and the chained hash of the
//! transactions it lists must be that leaf's. A send, a revocation or an earlier claim left out
//! (or one added) does not give it.

use weft_client::trust::Pinned;

use super::*;
use crate::output::Untrusted;

/// What the check established, for the JSON output.
#[derive(Debug, serde::Serialize)]
pub struct Checked {
    /// Transactions whose proofs were checked.
    pub proofs: usize,
    pub trust_root: Value,
    /// Whether the history was shown complete (by the state root of `complete_at`).
    pub complete: bool,
    /// The block whose state root shows the history complete.
    pub complete_at: Option<u64>,
    /// Who claimed the asset, by the proven transactions.
    #[serde(skip)]
    pub owner: Option<ResourceId>,
    /// Who was sent it with the right to forward it, by the proven transactions.
    #[serde(skip)]
    pub forwardable: Vec<ResourceId>,
    /// The verdict recomputed from them.
    #[serde(skip)]
    pub verdict: Verdict,
}

fn lie(place: &str, what: String) -> anyhow::Error {
    Untrusted(format!(
        "{place} gave an answer its own proofs contradict: {what}"
    ))
    .into()
}

/// A transaction of `chain`, its proof checked against `pinned` (the root of the chain asked);
/// with its payload (a stripped transaction's whole copy, which must match the signed header).
pub fn proven(
    chain: &dyn Chain,
    pinned: &Pinned,
    id: &TxId,
) -> Result<(weft_ledger::Transaction, u64, u32)> {
    let place = chain.place();
    let answer = chain.transaction(id)?.ok_or_else(|| {
        lie(
            &place,
            format!("transaction {id} of its history is not on it"),
        )
    })?;
    let document: weft_ledger::proof::InclusionProof = serde_json::from_value(answer.proof)
        .map_err(|error| lie(&place, format!("the proof of {id} is malformed: {error}")))?;
    let verified = super::proofs::checked(&place, pinned, &document, id)?;
    let mut tx = verified.transaction;
    if tx.payload.is_none() {
        let payload = answer.payload.ok_or_else(|| {
            Untrusted(format!(
                "{place} keeps transaction {id} stripped and no peer sent it whole: it cannot be \
                 checked; ask an archive node"
            ))
        })?;
        if weft_ledger::tx::payload_hash(&weft_core::encoding::encode(&payload))
            != tx.header.payload_hash
        {
            return Err(lie(
                &place,
                format!("the payload of {id} is not the signed one"),
            ));
        }
        tx.payload = Some(payload);
    }
    Ok((tx, verified.height, verified.index))
}

/// Checks `report` (the chain's answer on `fingerprint` for `recipient`) as the module says;
/// the report's verdict is then the one computed here.
pub fn checked_report(
    chain: &dyn Chain,
    roots: &[Pinned],
    fingerprint: &Fingerprint,
    recipient: Option<ResourceId>,
    report: &mut AssetReport,
) -> Result<Checked> {
    let place = chain.place();
    let pinned = root_for(roots, &chain.chain_id()?.to_hex())?;
    let mut forwardable: Vec<ResourceId> = Vec::new();
    let mut payloads: Vec<Payload> = Vec::new();
    let mut last = None;
    // The owner entry the claim recorded (rule 3), as the state commits to it.
    let mut owner_entry: Option<weft_ledger::state::OwnerEntry> = None;
    for entry in &mut report.history {
        let (tx, height, index) = proven(chain, pinned, &entry.tx_id)?;
        if (height, index) != (entry.height, entry.index) {
            return Err(lie(
                &place,
                format!(
                    "{} is at block {height} index {index}, not where it said",
                    entry.tx_id
                ),
            ));
        }
        if last.is_some_and(|previous| previous >= (height, index)) {
            return Err(lie(&place, "its history is not in ledger order".into()));
        }
        last = Some((height, index));
        let payload = tx.payload.as_ref().expect("proven() gives payloads");
        if payload.content_fingerprint().as_ref() != Some(fingerprint) {
            return Err(lie(
                &place,
                format!("{} of its history is not about {fingerprint}", entry.tx_id),
            ));
        }
        // What is shown is what the proven transaction says, not what the node wrote beside it.
        entry.kind = tx.header.kind.name().to_string();
        entry.time = tx.header.time_of_tx;
        entry.time_utc = weft_node::query::format_time(entry.time);
        entry.signer = match tx.header.signer {
            weft_ledger::Signer::Authority => "authority".to_string(),
            weft_ledger::Signer::Resource(id) => id.to_hex(),
        };
        entry.issuer = None;
        (entry.from, entry.to, entry.forward) = (None, None, None);
        match payload {
            Payload::RecordOwnership(claim) => {
                entry.issuer = Some(claim.issuer);
            }
            Payload::SendProductData(send) => {
                (entry.from, entry.to, entry.forward) =
                    (Some(send.from), Some(send.to), Some(send.forward));
            }
            Payload::Record(record) => entry.issuer = Some(record.issuer),
            _ => {}
        }
        match payload {
            Payload::RecordOwnership(claim) => {
                owner_entry.get_or_insert(weft_ledger::state::OwnerEntry {
                    issuer: claim.issuer,
                    time: tx.header.time_of_tx,
                    tx_id: entry.tx_id,
                });
            }
            Payload::SendProductData(send) if send.forward => forwardable.push(send.to),
            _ => {}
        }
        payloads.push(payload.clone());
    }
    let complete_at = complete_history(chain, pinned, fingerprint, report, owner_entry)?;
    let organization = match recipient.filter(|_| owner_entry.is_some()) {
        Some(me) => match proven(chain, pinned, &TxId(me.0))?.0.payload {
            Some(registration @ Payload::RegisterResource(_)) => {
                weft_node::query::organization_of(&registration)
            }
            _ => return Err(lie(&place, format!("{me} is not a registered resource"))),
        },
        None => None,
    };
    let (owner, mine) = weft_node::query::verdict_from_history(&payloads, recipient, organization);
    if mine != report.verdict {
        return Err(lie(
            &place,
            format!(
                "it says {}, but the transactions it proves say {}",
                report.verdict.as_str(),
                mine.as_str()
            ),
        ));
    }
    if owner != report.owner.as_ref().map(|owner| owner.id) {
        return Err(lie(
            &place,
            "the owner it names did not claim the asset".into(),
        ));
    }
    Ok(Checked {
        proofs: report.history.len() + usize::from(recipient.is_some() && owner.is_some()),
        trust_root: root_json(pinned),
        complete: true,
        complete_at: Some(complete_at),
        owner,
        forwardable,
        verdict: mine,
    })
}

/// Checks that `report.history` is every transaction naming `fingerprint` up to the block its
/// state proof is under, owned as its claim says (`owner`), that block shown final on the chain
/// of `pinned`; returns its height.
fn complete_history(
    chain: &dyn Chain,
    pinned: &Pinned,
    fingerprint: &Fingerprint,
    report: &AssetReport,
    owner: Option<weft_ledger::state::OwnerEntry>,
) -> Result<u64> {
    let place = chain.place();
    let state = report.state.as_ref().ok_or_else(|| {
        lie(
            &place,
            "it gave no state proof with the history, so nothing shows the history complete".into(),
        )
    })?;
    let answer = chain.checkpoint(Some(state.height + 1))?;
    let (signed, _, _) = super::chain::final_block(answer, &pinned.root).map_err(|error| {
        lie(
            &place,
            format!("block {} its history is read at: {error}", state.height),
        )
    })?;
    let root = signed.header.state_root.ok_or_else(|| {
        lie(
            &place,
            format!("block {} commits to no state", state.height),
        )
    })?;
    let proof: weft_core::smt::Proof = hex::decode(&state.history_proof)
        .ok()
        .and_then(|bytes| weft_core::encoding::decode(&bytes).ok())
        .ok_or_else(|| lie(&place, "its state proof does not decode".into()))?;
    if let Some(late) = report
        .history
        .iter()
        .find(|entry| entry.height > state.height)
    {
        return Err(lie(
            &place,
            format!(
                "its history, read at block {}, holds {} of block {}",
                state.height, late.tx_id, late.height
            ),
        ));
    }
    let ids: Vec<TxId> = report.history.iter().map(|entry| entry.tx_id).collect();
    weft_ledger::history::verify_listed(&root, fingerprint, &ids, owner, &proof, state.height)
        .map_err(|what| lie(&place, what))?;
    Ok(state.height)
}
