//! Whole copies of stripped transactions, fetched from peers for a node with a storage filter
//! and checked against its own headers.

use super::*;

impl Core {
    /// Asks every peer for proofs of `ids` (the first good answer for each wins).
    pub(super) fn fetch(
        &mut self,
        ids: Vec<TxId>,
        reply: tokio::sync::oneshot::Sender<Vec<Fetched>>,
    ) {
        let wanted: HashSet<TxId> = ids.into_iter().take(wire::MAX_PROOF_REQUEST).collect();
        let mut peers: Vec<Key> = self
            .validator_keys
            .iter()
            .chain(self.p.followers.iter())
            .chain(&self.seed_keys)
            .filter(|key| **key != self.me)
            .cloned()
            .collect();
        peers.sort();
        peers.dedup();
        if let Ok(members) = crate::net::admitted_peers(&self.p.ledger) {
            for key in members.keys() {
                if let Ok(key) = crate::net::engine_key(key)
                    && key != self.me
                    && !peers.contains(&key)
                {
                    peers.push(key);
                }
            }
        }
        if wanted.is_empty() || peers.is_empty() {
            self.effects.push(Effect::Fetched {
                reply,
                found: Vec::new(),
            });
            return;
        }
        tracing::debug!(
            transactions = wanted.len(),
            peers = peers.len(),
            "asking peers for whole transactions"
        );
        let request = encode(&Sync::ProofRequest {
            ids: wanted.iter().copied().collect(),
        });
        self.send(Channel::Sync, Recipients::Some(peers), request, false);
        self.fetching.push(PendingFetch {
            wanted,
            found: Vec::new(),
            reply: Some(reply),
            deadline: self.now() + FETCH_TIMEOUT,
        });
    }

    /// Answers a proof request with the proofs of the transactions held whole here.
    pub(super) fn answer_proofs(&mut self, to: Key, ids: &[TxId]) {
        let mut proofs = Vec::new();
        let mut bytes = 0;
        if let Ok(ledger) = self.p.ledger.lock() {
            for id in ids {
                let whole = matches!(
                    ledger.store().tx(id),
                    Ok(Some((ref tx, _))) if tx.payload.is_some()
                );
                if !whole {
                    continue;
                }
                match weft_ledger::proof::build(ledger.store(), id)
                    .map_err(anyhow::Error::from)
                    .and_then(|proof| Ok(serde_json::to_string(&proof)?))
                {
                    Ok(proof) => {
                        bytes += proof.len();
                        proofs.push(proof);
                        if bytes >= wire::PROOF_ANSWER_BYTES {
                            break;
                        }
                    }
                    Err(error) => tracing::error!(%error, tx = %id, "cannot build a proof"),
                }
            }
        }
        tracing::debug!(peer = %weft_key(&to), asked = ids.len(), proofs = proofs.len(), "answering a proof request");
        self.send(
            Channel::Sync,
            Recipients::One(to),
            encode(&Sync::Proofs { proofs }),
            false,
        );
    }

    /// Takes proofs from a peer: each must verify, be of a block this node holds (the same
    /// block: same hash at that height) and carry the whole transaction.
    pub(super) fn take_proofs(&mut self, from: Key, proofs: &[String]) {
        let root = match self.p.ledger.lock().map(|ledger| ledger.trust_root()) {
            Ok(Ok(root)) => root,
            Ok(Err(error)) => {
                tracing::error!(%error, "cannot read this chain's trust root to check proofs");
                return;
            }
            Err(_) => return,
        };
        for text in proofs {
            let checked = serde_json::from_str::<weft_ledger::proof::InclusionProof>(text)
                .map_err(|error| error.to_string())
                .and_then(|proof| {
                    weft_ledger::proof::verify(&proof, &root, &super::super::finality::Certificates)
                        .map(|verified| (proof, verified))
                        .map_err(|error| error.to_string())
                });
            let (proof, verified) = match checked {
                Ok(checked) => checked,
                Err(error) => {
                    self.misbehaved(from, &format!("a proof that does not verify: {error}"));
                    return;
                }
            };
            if !self
                .fetching
                .iter()
                .any(|fetch| fetch.wanted.contains(&verified.tx_id))
            {
                continue;
            }
            let mine = self.p.ledger.lock().ok().and_then(|ledger| {
                ledger
                    .store()
                    .signed_header(verified.height)
                    .ok()
                    .flatten()
                    .map(|signed| signed.header.hash())
            });
            match mine {
                Some(hash) if hash == verified.block_hash => {}
                // Not final here yet: nothing to compare it with.
                None => continue,
                Some(hash) => {
                    self.evidence(serde_json::json!({
                        "kind": "conflicting_block_in_proof",
                        "peer": weft_key(&from).to_string(),
                        "height": verified.height,
                        "block": verified.block_hash.to_hex(),
                        "final_here": hash.to_hex(),
                    }));
                    self.misbehaved(from, "a proof from a block that is not final here");
                    return;
                }
            }
            if verified.transaction.payload.is_none() {
                continue;
            }
            let fetched = Fetched {
                tx: verified.transaction,
                proof,
                from: weft_key(&from).to_string(),
            };
            for fetch in &mut self.fetching {
                if fetch.wanted.remove(&verified.tx_id) {
                    fetch.found.push(fetched.clone());
                }
            }
        }
        self.expire_fetches();
    }

    /// Answers the fetches that have everything, or whose time is up.
    pub(super) fn expire_fetches(&mut self) {
        let now = self.now();
        let effects = &mut self.effects;
        self.fetching.retain_mut(|fetch| {
            let done = fetch.wanted.is_empty() || now >= fetch.deadline;
            if done && let Some(reply) = fetch.reply.take() {
                effects.push(Effect::Fetched {
                    reply,
                    found: std::mem::take(&mut fetch.found),
                });
            }
            !done
        });
    }
}
