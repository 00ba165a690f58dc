//! An asset's history from a peer, checked against this node's own headers: how a node that
//! follows its chain on proofs (and keeps no rule state, see
//! [`crate::ledger::Ledger::commit_certified`]) answers about an asset.
//!
//! A peer that holds the rule state answers with every transaction naming the fingerprint as
//! its content, whole, in ledger order, and the proof of the fingerprint's history leaf under
//! the state root of a block. [`check`] accepts it only if that block is one of this node's
//! (final) headers, each transaction is on this node's chain at or below it and its payload is
//! the signed one, and the chained hash of their ids — with the owner the claim among them
//! recorded — is the proven leaf: a send, a revocation or a claim left out, added or altered
//! does not give it (docs/state-proofs.md).

use borsh::{BorshDeserialize, BorshSerialize};
use weft_core::encoding::{Canonical, check_count};
use weft_core::model::Payload;
use weft_core::{CoreError, Fingerprint, ResourceId, TxId};

use crate::commitment::{StateKey, verify_entry};
use crate::error::LedgerError;
use crate::state::{HistoryEntry, OwnerEntry, Position};
use crate::store::Store;
use crate::tx::{Transaction, payload_hash};

/// Most transactions in one history answer.
pub const MAX_HISTORY_TXS: usize = 4096;
/// Most bytes of transactions in one history answer (half the largest message, so the answer
/// with its proof always fits).
pub const MAX_HISTORY_BYTES: usize = 16 << 20;

/// A peer's answer to "every transaction naming this fingerprint, and the recipient's
/// registration".
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct HistoryAnswer {
    pub fingerprint: Fingerprint,
    /// The block whose state the history is read at (the answering peer's head).
    pub height: u64,
    /// Every transaction naming the fingerprint as its content, whole, in ledger order.
    pub transactions: Vec<Transaction>,
    /// The proof (Canonical encoding, [`weft_core::smt::Proof`]) of the fingerprint's history
    /// leaf under the state root of block `height`.
    pub proof: Vec<u8>,
    /// The registration of the recipient asked about (its transaction id is its resource
    /// id), whole, when the chain holds it.
    pub registration: Option<Transaction>,
}

impl Canonical for HistoryAnswer {
    const WHAT: &'static str = "history answer";
    const MAX_ENCODED: usize = 32 << 20;
    fn validate(&self) -> Result<(), CoreError> {
        check_count(
            "history transactions",
            self.transactions.len(),
            0,
            MAX_HISTORY_TXS,
        )?;
        check_count("state proof bytes", self.proof.len(), 1, 64 << 10)?;
        self.transactions.iter().try_for_each(Canonical::validate)?;
        self.registration.iter().try_for_each(Canonical::validate)
    }
}

/// What a peer sent once it checked out: its transactions with their places on this chain.
#[derive(Debug, Clone)]
pub struct CheckedHistory {
    pub fingerprint: Fingerprint,
    pub height: u64,
    pub transactions: Vec<(Position, Transaction)>,
    /// The proof as sent, for a client to check again against its own trust root.
    pub proof: Vec<u8>,
    /// The recipient's registration, checked to be on this chain.
    pub registration: Option<Transaction>,
}

/// Why an answer was not taken.
#[derive(Debug)]
pub enum Refused {
    /// The answer is read at a block this node has not committed yet: check it again later.
    Ahead(u64),
    /// It does not check out: the peer lied (or is on another chain).
    Lie(String),
    /// This node could not read its own store.
    Store(LedgerError),
}

impl From<LedgerError> for Refused {
    fn from(error: LedgerError) -> Self {
        Refused::Store(error)
    }
}

/// Checks `answer`, asked about `fingerprint` for `recipient`, against `store` (see the module).
pub fn check<S: Store>(
    store: &S,
    fingerprint: &Fingerprint,
    recipient: Option<ResourceId>,
    answer: HistoryAnswer,
) -> Result<CheckedHistory, Refused> {
    let lie = |what: String| Refused::Lie(what);
    if answer.fingerprint != *fingerprint {
        return Err(lie(format!(
            "asked about {fingerprint}, it answered about {}",
            answer.fingerprint
        )));
    }
    let Some(signed) = store.signed_header(answer.height)? else {
        return Err(Refused::Ahead(answer.height));
    };
    let root = signed.header.state_root.ok_or_else(|| {
        lie(format!(
            "block {} it read the history at commits to no state",
            answer.height
        ))
    })?;
    let mut transactions = Vec::with_capacity(answer.transactions.len());
    let mut owner: Option<OwnerEntry> = None;
    let mut last: Option<Position> = None;
    for tx in answer.transactions {
        let id = tx.id();
        let position = on_chain(store, &tx, &id)?.ok_or_else(|| {
            lie(format!(
                "transaction {id} of its history is not on this chain"
            ))
        })?;
        if position.height > answer.height {
            return Err(lie(format!(
                "its history read at block {} holds {id} of block {}",
                answer.height, position.height
            )));
        }
        if last.is_some_and(|last| last >= position) {
            return Err(lie("its history is not in ledger order".into()));
        }
        last = Some(position);
        let payload = tx
            .payload
            .as_ref()
            .expect("on_chain() refuses stripped copies");
        if payload.content_fingerprint().as_ref() != Some(fingerprint) {
            return Err(lie(format!(
                "{id} of its history is not about {fingerprint}"
            )));
        }
        if let Payload::RecordOwnership(claim) = payload {
            owner.get_or_insert(OwnerEntry {
                issuer: claim.issuer,
                time: tx.header.time_of_tx,
                tx_id: id,
            });
        }
        transactions.push((position, tx));
    }
    let ids: Vec<TxId> = transactions.iter().map(|(_, tx)| tx.id()).collect();
    let proof: weft_core::smt::Proof = weft_core::encoding::decode(&answer.proof)
        .map_err(|error| lie(format!("its state proof does not decode: {error}")))?;
    verify_listed(&root, fingerprint, &ids, owner, &proof, answer.height).map_err(lie)?;
    let registration = match recipient {
        None => None,
        Some(recipient) => {
            let id = TxId(recipient.0);
            match (answer.registration, store.tx_position(&id)?) {
                (Some(tx), Some(_)) if tx.id() == id => {
                    on_chain(store, &tx, &id)?;
                    Some(tx)
                }
                (Some(_), _) => {
                    return Err(lie(format!(
                        "the registration it sent is not the one of {recipient}"
                    )));
                }
                (None, Some(_)) => {
                    return Err(lie(format!(
                        "it left out the registration of {recipient}, which is on this chain"
                    )));
                }
                (None, None) => None,
            }
        }
    };
    Ok(CheckedHistory {
        fingerprint: *fingerprint,
        height: answer.height,
        transactions,
        proof: answer.proof,
        registration,
    })
}

/// Checks that `ids` (in ledger order), with `owner` (what the claim among them recorded), are
/// every transaction naming `fingerprint` by the history leaf `proof` shows under `root`, the
/// state root of block `height`; the error says what does not hold. The one check a thin node
/// on proofs and a client make of a history's completeness.
pub fn verify_listed(
    root: &weft_core::Hash32,
    fingerprint: &Fingerprint,
    ids: &[TxId],
    owner: Option<OwnerEntry>,
    proof: &weft_core::smt::Proof,
    height: u64,
) -> Result<(), String> {
    let listed = (!ids.is_empty()).then(|| HistoryEntry::of(ids, owner));
    verify_entry(
        root,
        &StateKey::History(*fingerprint),
        listed.as_ref(),
        proof,
    )
    .map_err(|error| {
        format!(
            "the {} transaction(s) of its history of {fingerprint} are not the ones the state \
                 root of block {height} commits to: one was left out or added ({error})",
            ids.len()
        )
    })
}

/// Where `tx` (whose id is `id`) is on this chain, its payload checked against the signed
/// header: `None` if the chain does not hold it.
fn on_chain<S: Store>(store: &S, tx: &Transaction, id: &TxId) -> Result<Option<Position>, Refused> {
    let payload = tx
        .payload
        .as_ref()
        .ok_or_else(|| Refused::Lie(format!("it sent {id} stripped")))?;
    if payload_hash(&weft_core::encoding::encode(payload)) != tx.header.payload_hash {
        return Err(Refused::Lie(format!(
            "the payload it sent of {id} is not the signed one"
        )));
    }
    Ok(store.tx_position(id)?)
}

/// The answer this node gives a peer that asks about `fingerprint` (and `recipient`): read at
/// its head, from its rule state. `None` when it keeps no rule state, holds part of it stripped,
/// or the history is longer than one answer holds ([`MAX_HISTORY_TXS`],
/// [`MAX_HISTORY_BYTES`]): a part of a history is never sent, as the asker would rightly take
/// it for a lie.
pub fn answer<S: Store>(
    store: &S,
    fingerprint: &Fingerprint,
    recipient: Option<ResourceId>,
) -> Result<Option<HistoryAnswer>, LedgerError> {
    if !store.keeps_rule_state() {
        return Ok(None);
    }
    let Some(head) = store.head()? else {
        return Ok(None);
    };
    let listed = store.by_fingerprint(fingerprint)?;
    if listed.len() > MAX_HISTORY_TXS {
        return Ok(None);
    }
    let mut transactions = Vec::with_capacity(listed.len());
    let mut bytes = 0;
    for (position, id) in listed {
        match store.tx_at(position)? {
            Some(tx) if tx.id() == id && tx.payload.is_some() => {
                bytes += borsh::object_length(&tx).unwrap_or(usize::MAX);
                if bytes > MAX_HISTORY_BYTES {
                    return Ok(None);
                }
                transactions.push(tx);
            }
            // Stored stripped here: this node cannot give the whole history.
            _ => return Ok(None),
        }
    }
    let proof = weft_core::encoding::encode(&store.state_proof(&StateKey::History(*fingerprint))?);
    let registration = match recipient.map(|recipient| store.tx(&TxId(recipient.0))) {
        Some(found) => match found? {
            Some((tx, _)) if tx.payload.is_some() => Some(tx),
            // Stored stripped here: this node cannot give it.
            Some(_) => return Ok(None),
            None => None,
        },
        None => None,
    };
    Ok(Some(HistoryAnswer {
        fingerprint: *fingerprint,
        height: head.header.height,
        transactions,
        proof,
        registration,
    }))
}
