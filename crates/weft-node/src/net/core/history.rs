//! Asset histories for a node that follows on proofs: asked of the peers that keep the rule
//! state, each answer checked against this node's own headers before it is taken
//! ([`weft_ledger::history::check`]); and answered, for such nodes, by those that keep it.

use weft_ledger::history::{HistoryAnswer, Refused};

use super::*;
use crate::net::HistoryReply;

/// Most answers read ahead of this node held for one fetch.
const MAX_AHEAD: usize = 8;
/// Most history requests answered for one peer a second (each reads a history and a proof on
/// the core's thread); more are let go.
const HISTORY_ANSWERS_PER_S: u32 = 32;

/// A history fetch under way.
pub(super) struct PendingHistory {
    fingerprint: weft_core::Fingerprint,
    recipient: Option<weft_core::ResourceId>,
    reply: Option<HistoryReply>,
    deadline: Instant,
    /// This node's head when it asked: an answer read at an earlier block (a peer behind) is
    /// true but stale, and not taken.
    at_least: u64,
    /// Peers whose answers were stale, and the block each was read at.
    stale: Vec<String>,
    /// Answers read at a block this node has not committed yet, checked again once it has.
    ahead: Vec<(Key, HistoryAnswer)>,
    /// Peers whose answers did not check out, and why.
    refused: Vec<String>,
}

impl Core {
    /// Asks the peers that may hold the rule state about `fingerprint`; the first answer that
    /// checks out is the reply.
    pub(super) fn fetch_history(
        &mut self,
        fingerprint: weft_core::Fingerprint,
        recipient: Option<weft_core::ResourceId>,
        reply: HistoryReply,
    ) {
        let peers = self.connected_sync_peers();
        if peers.is_empty() {
            self.effects.push(Effect::History {
                reply,
                result: Err("no peer is connected to ask".into()),
            });
            return;
        }
        tracing::debug!(%fingerprint, peers = peers.len(), "asking peers for a history");
        let request = encode(&Sync::HistoryRequest {
            fingerprint,
            recipient,
        });
        self.send(Channel::Sync, Recipients::Some(peers), request, false);
        self.histories.push(PendingHistory {
            fingerprint,
            recipient,
            reply: Some(reply),
            deadline: self.now() + FETCH_TIMEOUT,
            at_least: self.head.header.height,
            stale: Vec::new(),
            ahead: Vec::new(),
            refused: Vec::new(),
        });
    }

    /// Answers a peer's history request from this node's rule state (nothing when it keeps
    /// none, or holds part of the history stripped).
    pub(super) fn answer_history(
        &mut self,
        to: Key,
        fingerprint: weft_core::Fingerprint,
        recipient: Option<weft_core::ResourceId>,
    ) {
        let now = self.now();
        let (since, count) = self.history_answers.entry(to.clone()).or_insert((now, 0));
        if now.saturating_duration_since(*since) >= Duration::from_secs(1) {
            (*since, *count) = (now, 0);
        }
        *count += 1;
        if *count > HISTORY_ANSWERS_PER_S {
            tracing::debug!(peer = %weft_key(&to), "too many history requests; one let go");
            return;
        }
        let answer = match self.p.ledger.lock() {
            Ok(ledger) => weft_ledger::history::answer(ledger.store(), &fingerprint, recipient),
            Err(_) => return,
        };
        match answer {
            Ok(Some(answer)) => {
                tracing::debug!(peer = %weft_key(&to), %fingerprint, transactions = answer.transactions.len(), "answering a history request");
                self.send(
                    Channel::Sync,
                    Recipients::One(to),
                    encode(&Sync::History(Box::new(answer))),
                    false,
                );
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!(%error, %fingerprint, "cannot read a history to answer a peer");
            }
        }
    }

    /// Takes a peer's history answer for the fetches that asked about it.
    pub(super) fn take_history(&mut self, from: Key, answer: HistoryAnswer) {
        let waiting: Vec<usize> = (0..self.histories.len())
            .filter(|index| {
                let pending = &self.histories[*index];
                pending.reply.is_some() && pending.fingerprint == answer.fingerprint
            })
            .collect();
        for index in waiting {
            self.try_history(index, from.clone(), answer.clone());
        }
        self.finish_histories();
    }

    /// Checks `answer` for fetch `index`: taken, held until this node has its block, or
    /// refused (the peer named, blocked for a lie).
    fn try_history(&mut self, index: usize, from: Key, answer: HistoryAnswer) {
        let (fingerprint, recipient) = {
            let pending = &mut self.histories[index];
            if answer.height < pending.at_least {
                pending.stale.push(format!(
                    "peer {} answered as of block {}, behind this node",
                    weft_key(&from),
                    answer.height
                ));
                return;
            }
            (pending.fingerprint, pending.recipient)
        };
        let checked = match self.p.ledger.lock() {
            Ok(ledger) => {
                weft_ledger::history::check(ledger.store(), &fingerprint, recipient, answer.clone())
            }
            Err(_) => return,
        };
        let pending = &mut self.histories[index];
        match checked {
            Ok(checked) => {
                if let Some(reply) = pending.reply.take() {
                    self.effects.push(Effect::History {
                        reply,
                        result: Ok(Box::new((checked, weft_key(&from).to_string()))),
                    });
                }
            }
            Err(Refused::Ahead(_)) => {
                // One held answer per peer, and a few peers' at most.
                pending.ahead.retain(|(peer, _)| *peer != from);
                if pending.ahead.len() < MAX_AHEAD {
                    pending.ahead.push((from, answer));
                }
            }
            Err(Refused::Lie(reason)) => {
                pending
                    .refused
                    .push(format!("peer {} {reason}", weft_key(&from)));
                self.misbehaved(
                    from,
                    &format!("a history that does not check out: {reason}"),
                );
            }
            Err(Refused::Store(error)) => {
                tracing::error!(%error, "cannot read this node's store to check a history");
                pending.refused.push(format!(
                    "the answer of peer {} could not be checked: this node cannot read its own \
                     store ({error})",
                    weft_key(&from)
                ));
            }
        }
    }

    /// Checks again the answers read at blocks this node had not committed then.
    pub(super) fn recheck_histories(&mut self) {
        let head = self.head.header.height;
        for index in 0..self.histories.len() {
            let ready: Vec<(Key, HistoryAnswer)> = {
                let pending = &mut self.histories[index];
                let (ready, later) = std::mem::take(&mut pending.ahead)
                    .into_iter()
                    .partition(|(_, answer)| answer.height <= head);
                pending.ahead = later;
                ready
            };
            for (from, answer) in ready {
                if self.histories[index].reply.is_some() {
                    self.try_history(index, from, answer);
                }
            }
        }
        self.finish_histories();
    }

    /// Lets go of the fetches answered, and answers those whose time is up with why.
    fn finish_histories(&mut self) {
        let now = self.now();
        let head = self.head.header.height;
        let effects = &mut self.effects;
        self.histories.retain_mut(|pending| {
            let Some(reply) = pending.reply.take_if(|_| now >= pending.deadline) else {
                return pending.reply.is_some();
            };
            let mut reasons = pending.refused.clone();
            reasons.extend(pending.stale.iter().cloned());
            if let Some(height) = pending.ahead.iter().map(|(_, answer)| answer.height).min() {
                reasons.push(format!(
                    "an answer read at block {height} waited for this node, at block {head}, to \
                     commit it"
                ));
            }
            let why = if reasons.is_empty() {
                "no peer that keeps the rule state answered".to_string()
            } else {
                reasons.join("; ")
            };
            effects.push(Effect::History {
                reply,
                result: Err(why),
            });
            false
        });
    }
}
