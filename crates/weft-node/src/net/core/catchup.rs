//! Catch-up, headers first, then bodies: asking peers for what this node lacks, and answering
//! theirs.

use super::*;

impl Core {
    /// The peers to ask for headers and bodies, any that may hold the chain: the validators of
    /// every epoch, the seeds (an archive node, say) and every other peer heard from lately
    /// (connected), but this node and those to avoid (unless no other is left). Those heard
    /// from lately come first.
    pub(super) fn sync_peers(&self) -> Vec<Key> {
        let mut all: Vec<Key> = self
            .validator_keys
            .iter()
            .chain(&self.seed_keys)
            .chain(self.seen.keys())
            .filter(|key| **key != self.me)
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        let now = self.now();
        let mut peers: Vec<Key> = all
            .iter()
            .filter(|key| self.avoid.get(*key).is_none_or(|until| *until <= now))
            .cloned()
            .collect();
        if peers.is_empty() {
            peers = all;
        }
        peers.sort_by_key(|key| !self.seen.contains_key(key));
        peers
    }

    /// [`Core::sync_peers`], only those heard from lately when there are any: a request to a
    /// peer that is not connected goes nowhere.
    pub(super) fn connected_sync_peers(&self) -> Vec<Key> {
        let mut peers = self.sync_peers();
        if peers
            .first()
            .is_some_and(|first| self.seen.contains_key(first))
        {
            peers.retain(|key| self.seen.contains_key(key));
        }
        peers
    }

    /// A request for the headers after the committed head (catch-up, and the start gate's probe).
    pub(super) fn headers_request(&self) -> Vec<u8> {
        encode(&Sync::HeadersRequest {
            from_height: self.head.header.height + 1,
            max_headers: SYNC_HEADERS,
        })
    }

    /// Moves catch-up on: asks for the bodies of the final headers that are here, or, when
    /// none wait, one peer (a different one each time) for the headers after the head — every
    /// candidate at once when none was heard from lately.
    pub(super) fn request_sync(&mut self) {
        if !self.headers.is_empty() {
            self.request_bodies();
            return;
        }
        if self
            .sync_sent
            .is_some_and(|sent| self.since(sent) < SYNC_RETRY)
        {
            return;
        }
        let candidates = self.connected_sync_peers();
        if candidates.is_empty() {
            return;
        }
        let from_height = self.head.header.height + 1;
        let request = self.headers_request();
        if self.seen.contains_key(&candidates[0]) {
            self.sync_turn = self.sync_turn.wrapping_add(1);
            let peer = candidates[self.sync_turn % candidates.len()].clone();
            tracing::debug!(
                peer = %weft_key(&peer),
                from_height,
                "asking for the headers after the head"
            );
            self.send(Channel::Sync, Recipients::One(peer), request, false);
        } else {
            // No peer heard from lately (just started, say): all are asked at once, as only
            // those connected receive it; the first answer that follows the head is taken, the
            // others are let go.
            tracing::debug!(
                peers = candidates.len(),
                from_height,
                "asking every peer for the headers after the head"
            );
            self.send(Channel::Sync, Recipients::Some(candidates), request, false);
        }
        self.sync_sent = Some(self.now());
    }

    /// Asks for the bodies of waiting headers that are neither here nor asked for: runs of up
    /// to [`SYNC_BODIES`] blocks, each to a different peer, at most [`BODY_REQUESTS`] out.
    /// A request unanswered for [`SYNC_RETRY`] goes to another peer.
    pub(super) fn request_bodies(&mut self) {
        let now = self.now();
        let head = self.head.header.height;
        let mut unanswered = Vec::new();
        self.bodies_asked.retain(|first, (peer, count, sent)| {
            let late = now.duration_since(*sent) >= SYNC_RETRY;
            if late {
                unanswered.push(peer.clone());
            }
            *first + u64::from(*count) > head + 1 && !late
        });
        for peer in unanswered {
            tracing::debug!(peer = %weft_key(&peer), "a body request went unanswered; asking another peer");
            self.avoid.insert(peer, now + PEER_SEEN);
        }
        let candidates = self.connected_sync_peers();
        if candidates.is_empty() {
            return;
        }
        let mut height = head + 1;
        let last = self
            .headers
            .back()
            .map_or(head, |(header, _)| header.header.height);
        let mut tries = 0;
        while height <= last
            && self.bodies_asked.len() < BODY_REQUESTS.min(candidates.len())
            && tries < candidates.len() * 2
        {
            if let Some((first, (_, count, _))) = self.bodies_asked.range(..=height).next_back()
                && first + u64::from(*count) > height
            {
                height = first + u64::from(*count);
                continue;
            }
            let here = |core: &Self, height: u64| {
                core.known
                    .contains_key(&core.headers[(height - head - 1) as usize].1)
            };
            if here(self, height) {
                height += 1;
                continue;
            }
            // The rest of the run is shared among the peers that can still be asked.
            let free = (BODY_REQUESTS.min(candidates.len()) - self.bodies_asked.len()).max(1);
            let share = (last - height + 1).div_ceil(free as u64);
            let most = u32::try_from(share)
                .unwrap_or(SYNC_BODIES)
                .clamp(1, SYNC_BODIES);
            let mut count = 1;
            while count < most
                && height + u64::from(count) <= last
                && !here(self, height + u64::from(count))
                && !self.bodies_asked.contains_key(&(height + u64::from(count)))
            {
                count += 1;
            }
            // A peer with no request out, in turn.
            tries += 1;
            self.sync_turn = self.sync_turn.wrapping_add(1);
            let peer = candidates[self.sync_turn % candidates.len()].clone();
            if self.bodies_asked.values().any(|(asked, ..)| *asked == peer) {
                continue;
            }
            tracing::debug!(peer = %weft_key(&peer), from_height = height, count, "asking for block bodies");
            let request = match self.p.filter.as_ref().filter(|_| self.p.follow_proofs) {
                Some(filter) => Sync::FilteredBodiesRequest {
                    from_height: height,
                    count,
                    kinds: filter.kinds.clone(),
                    resources: filter.resources.clone(),
                },
                None => Sync::BodiesRequest {
                    from_height: height,
                    count,
                },
            };
            self.send(
                Channel::Sync,
                Recipients::One(peer.clone()),
                encode(&request),
                false,
            );
            self.bodies_asked.insert(height, (peer, count, now));
            height += u64::from(count);
        }
    }

    pub(super) fn received_sync(&mut self, from: Key, bytes: &[u8]) -> Result<()> {
        let message = match decode::<Sync>(bytes) {
            Ok(message) => message,
            Err(error) => {
                self.misbehaved(from, &format!("bad sync message: {error}"));
                return Ok(());
            }
        };
        match message {
            Sync::HeadersRequest {
                from_height,
                max_headers,
            } => self.answer_headers(from, from_height, max_headers),
            Sync::Headers {
                headers,
                finalization,
            } => {
                self.sync_sent = None;
                self.answered(&from);
                self.take_headers(from, headers, &finalization)?;
            }
            Sync::BodiesRequest { from_height, count } => {
                self.answer_bodies(from, from_height, count, None)
            }
            Sync::FilteredBodiesRequest {
                from_height,
                count,
                kinds,
                resources,
            } => {
                let filter = weft_ledger::filter::StorageFilter { kinds, resources };
                self.answer_bodies(from, from_height, count, Some(&filter))
            }
            Sync::HistoryRequest {
                fingerprint,
                recipient,
            } => self.answer_history(from, fingerprint, recipient),
            Sync::History(answer) => self.take_history(from, *answer),
            Sync::Quiet => {
                self.quiet.insert(from);
            }
            Sync::Bodies {
                from_height,
                bodies,
            } => self.take_bodies(from, from_height, bodies)?,
            Sync::ProofRequest { ids } => self.answer_proofs(from, &ids),
            Sync::Proofs { proofs } => self.take_proofs(from, &proofs),
            Sync::Online { dialable, peers } => self.take_online(from, dialable, &peers),
            Sync::Addresses { records } => self.take_addresses(from, records),
        }
        Ok(())
    }

    /// `from` was heard from: a peer not heard from lately (new, or back) is sent the signed
    /// addresses this node holds at once, so that it can dial the peers it lacks.
    pub(super) fn heard(&mut self, from: &Key) {
        if self.seen.insert(from.clone(), self.now()).is_none() {
            self.tell_addresses(Recipients::One(from.clone()));
            if self.p.follow_proofs {
                self.send(
                    Channel::Sync,
                    Recipients::One(from.clone()),
                    encode(&Sync::Quiet),
                    false,
                );
            }
        }
    }

    /// Every peer but those that asked for quiet ([`Sync::Quiet`]): the recipients of floods
    /// and proposals meant for all.
    pub(super) fn all_but_quiet(&self) -> Recipients<Key> {
        if self.quiet.is_empty() {
            return Recipients::All;
        }
        let mut peers: Vec<Key> = self
            .connected
            .iter()
            .chain(self.seen.keys())
            .chain(&self.validator_keys)
            .filter(|key| **key != self.me && !self.quiet.contains(*key))
            .cloned()
            .collect();
        peers.sort();
        peers.dedup();
        Recipients::Some(peers)
    }

    /// Answers a headers request: the headers from `from_height` on, up to the last one this
    /// node holds the certificate of, within one epoch (its certificate is checked against
    /// that epoch's validators). Nothing when no certificate covers any of them.
    pub(super) fn answer_headers(&mut self, to: Key, from_height: u64, max_headers: u32) {
        let mut headers = Vec::new();
        let mut certificate = Vec::new();
        if from_height <= self.head.header.height {
            let epoch_last = self
                .p
                .schedule
                .end(self.p.schedule.epoch_of(from_height))
                .unwrap_or(u64::MAX);
            let last = self
                .head
                .header
                .height
                .min(from_height + u64::from(max_headers.max(1)) - 1)
                .min(epoch_last);
            if let Ok(ledger) = self.p.ledger.lock()
                && let Ok(Some((certified, bytes))) =
                    ledger.store().certificate_in(from_height, last)
            {
                for height in from_height..=certified {
                    match ledger.store().signed_header(height) {
                        Ok(Some(header)) => headers.push(header),
                        other => {
                            if let Err(error) = other {
                                tracing::error!(%error, height, "cannot read a header to answer a peer");
                            }
                            headers.clear();
                            break;
                        }
                    }
                }
                if !headers.is_empty() {
                    certificate = bytes;
                }
            }
        }
        tracing::debug!(
            peer = %weft_key(&to),
            from_height,
            headers = headers.len(),
            "answering a headers request"
        );
        let answer = encode(&Sync::Headers {
            headers,
            finalization: certificate,
        });
        self.send(Channel::Sync, Recipients::One(to), answer, false);
    }

    /// Answers a bodies request: the transactions of the blocks from `from_height` on, whole
    /// (those `filter` does not select stripped, for a node that follows on proofs), up to
    /// about [`wire::SYNC_ANSWER_BYTES`]. A node that strips payloads has no whole bodies to
    /// give: its answer is empty, and the asker turns to another peer.
    pub(super) fn answer_bodies(
        &mut self,
        to: Key,
        from_height: u64,
        count: u32,
        filter: Option<&weft_ledger::filter::StorageFilter>,
    ) {
        let mut bodies = Vec::new();
        if self.p.filter.is_none() && from_height <= self.head.header.height {
            let last = self
                .head
                .header
                .height
                .min(from_height + u64::from(count.max(1)) - 1);
            let Ok(ledger) = self.p.ledger.lock() else {
                return;
            };
            let mut bytes = 0;
            for height in from_height..=last {
                match ledger.store().block_transactions(height) {
                    Ok(mut transactions) => {
                        if let Some(filter) = filter {
                            for tx in &mut transactions {
                                if !filter.keeps(tx) {
                                    *tx = tx.stripped();
                                }
                            }
                        }
                        bytes += encoded_len(&transactions);
                        bodies.push(transactions);
                        if bytes >= wire::SYNC_ANSWER_BYTES {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, height, "cannot read a block to answer a peer");
                        break;
                    }
                }
            }
        }
        tracing::debug!(
            peer = %weft_key(&to),
            from_height,
            bodies = bodies.len(),
            "answering a bodies request"
        );
        let answer = encode(&Sync::Bodies {
            from_height,
            bodies,
        });
        self.send(Channel::Sync, Recipients::One(to), answer, false);
    }

    /// Takes a headers answer: they must follow the head, link by hash, be sealed by a
    /// producer of their height, and end with the block the certificate finalizes, verified
    /// against this node's epoch. Then every one of them is final, and their bodies are asked for.
    pub(super) fn take_headers(
        &mut self,
        from: Key,
        headers: Vec<SignedHeader>,
        finalization: &[u8],
    ) -> Result<()> {
        tracing::debug!(
            peer = %weft_key(&from),
            first = headers.first().map(|header| header.header.height),
            headers = headers.len(),
            head = self.head.header.height,
            "headers answer"
        );
        // Nothing to give, or an answer to an older request (the head moved on since).
        if headers.is_empty()
            || !self.headers.is_empty()
            || headers[0].header.height != self.head.header.height + 1
        {
            if headers.is_empty() {
                // Another peer is asked shortly (not at once: none may have what is missing).
                self.sync_sent = self.now().checked_sub(SYNC_RETRY - EMPTY_RETRY);
            }
            return Ok(());
        }
        if finalization.is_empty() {
            self.misbehaved(from, "headers without the certificate of the last one");
            return Ok(());
        }
        let hashes = match self.check_headers(&headers) {
            Ok(hashes) => hashes,
            Err(problem) => {
                self.misbehaved(from, &problem);
                return Ok(());
            }
        };
        let Some(decoded) = self.certificate(&from, finalization) else {
            return Ok(());
        };
        if hashes.last() != Some(&block_hash(&decoded.proposal.payload)) {
            self.misbehaved(from, "a certificate for another block than its last header");
            return Ok(());
        }
        self.finalized(&decoded);
        self.headers = headers.into_iter().zip(hashes).collect();
        self.set_sync("catching up");
        self.commit_fetched()?;
        self.request_sync();
        Ok(())
    }

    /// Checks a run of headers after the head: same chain, each the child of the one before,
    /// not older, sealed by a producer of its height (the seals verified as one batch).
    /// Returns their hashes.
    pub(super) fn check_headers(&self, headers: &[SignedHeader]) -> Result<Vec<BlockHash>, String> {
        use weft_core::keys::{BatchItem, verify_batch};
        let mut parent = (
            self.head.header.height,
            self.head_hash,
            self.head.header.timestamp,
        );
        let mut hashes = Vec::with_capacity(headers.len());
        let mut seals = Vec::with_capacity(headers.len());
        for signed in headers {
            let header = &signed.header;
            if header.chain_id != self.chain_id {
                return Err(format!("header {} is of another chain", header.height));
            }
            if header.height != parent.0 + 1 || header.previous_digest != parent.1 {
                return Err(format!(
                    "header {} does not follow the one before",
                    header.height
                ));
            }
            if header.timestamp < parent.2 {
                return Err(format!(
                    "header {} is older than the one before",
                    header.height
                ));
            }
            if !self
                .p
                .schedule
                .producers_at(header.height)
                .contains(&header.producer)
            {
                return Err(format!(
                    "header {} names a producer that is not a validator of its height",
                    header.height
                ));
            }
            let seal = signed
                .producer_seal()
                .map_err(|error| format!("header {}: {error}", header.height))?;
            let hash = header.hash();
            hashes.push(hash);
            seals.push((seal, hash));
            parent = (header.height, hash, header.timestamp);
        }
        let items: Vec<BatchItem<'_>> = seals
            .iter()
            .map(|(seal, hash)| BatchItem {
                key: &seal.key,
                namespace: weft_core::Namespace::Block,
                message: hash.as_bytes(),
                signature: &seal.signature,
            })
            .collect();
        verify_batch(&items).map_err(|_| "a header's producer seal does not verify".to_string())?;
        Ok(hashes)
    }

    /// Decodes a catch-up certificate and verifies it against this node's epoch (the one of
    /// the block after its head: the blocks it covers are of that epoch); `None`, with the
    /// sender blocked, if it does not hold.
    pub(super) fn certificate(&mut self, from: &Key, bytes: &[u8]) -> Option<Finalization> {
        use commonware_consensus::Epochable as _;
        let participants = self.epoch.validators.len();
        let Ok(decoded) = Finalization::decode_cfg(commonware_codec::Copying(bytes), &participants)
        else {
            self.misbehaved(from.clone(), "an undecodable finalization certificate");
            return None;
        };
        if decoded.epoch().get() != self.epoch.number {
            self.misbehaved(
                from.clone(),
                &format!(
                    "a certificate of epoch {} for blocks of epoch {}",
                    decoded.epoch().get(),
                    self.epoch.number
                ),
            );
            return None;
        }
        let mut rng = rand::rng();
        if !decoded.verify(
            &mut rng,
            &self.epoch.verifier,
            &commonware_parallel::Sequential,
        ) {
            self.misbehaved(
                from.clone(),
                "a finalization certificate that does not verify",
            );
            return None;
        }
        Some(decoded)
    }

    /// Takes a bodies answer: each body must be whole and match its final header (number of
    /// transactions, Merkle root over their ids and signatures); then it is that very block.
    pub(super) fn take_bodies(
        &mut self,
        from: Key,
        from_height: u64,
        bodies: Vec<Vec<Transaction>>,
    ) -> Result<()> {
        if self
            .bodies_asked
            .get(&from_height)
            .is_some_and(|(asked, ..)| *asked == from)
        {
            self.bodies_asked.remove(&from_height);
        }
        if bodies.is_empty() {
            // It has no whole bodies to give (it stores transactions stripped, or is behind):
            // the others are asked for a while.
            if !self.avoid.contains_key(&from) {
                self.avoid.insert(from.clone(), self.now() + PEER_SEEN);
            }
        } else if self
            .avoid
            .get(&from)
            .is_some_and(|until| *until <= self.now() + PEER_SEEN)
        {
            // It answers after all.
            self.avoid.remove(&from);
        }
        tracing::debug!(
            peer = %weft_key(&from),
            from_height,
            bodies = bodies.len(),
            head = self.head.header.height,
            "bodies answer"
        );
        let head = self.head.header.height;
        for (offset, transactions) in bodies.into_iter().enumerate() {
            let height = from_height + offset as u64;
            let Some(index) = height.checked_sub(head + 1) else {
                continue;
            };
            let Some((header, hash)) = self.headers.get(index as usize) else {
                break;
            };
            if self.known.contains_key(hash) {
                continue;
            }
            if let Some(tx) = transactions
                .iter()
                .find(|tx| tx.payload.is_none() && !self.may_come_stripped(tx))
            {
                self.misbehaved(
                    from,
                    &format!(
                        "a stripped {} in the body of block {height}",
                        tx.header.kind.name()
                    ),
                );
                break;
            }
            let ids: Vec<TxId> = transactions.iter().map(Transaction::id).collect();
            if transactions.len() as u64 != u64::from(header.header.tx_count)
                || weft_ledger::block::merkle_levels(&transactions, &ids).root()
                    != header.header.merkle_root
            {
                self.misbehaved(
                    from,
                    &format!("the body of block {height} does not match its header"),
                );
                break;
            }
            let block = Block {
                signed: header.clone(),
                transactions,
            };
            let size = encoded_len(&block);
            self.remember(block, size, false);
        }
        self.commit_fetched()?;
        self.request_sync();
        Ok(())
    }

    /// May `tx` come stripped in a body? Only to a node that follows on proofs, and only if
    /// its filter would not keep it by what the signed header shows (its kind, its signer):
    /// the kinds every node keeps and those it asked for come whole. (Whether it names a
    /// kept resource in its payload cannot be seen from a stripped copy; such a transaction
    /// is fetched whole when needed, like any other.)
    fn may_come_stripped(&self, tx: &Transaction) -> bool {
        let Some(filter) = self.p.filter.as_ref().filter(|_| self.p.follow_proofs) else {
            return false;
        };
        let kind = tx.header.kind;
        let by_signer = match tx.header.signer {
            weft_ledger::Signer::Resource(signer) => filter.resources.contains(&signer),
            weft_ledger::Signer::Authority => false,
        };
        !weft_ledger::filter::ALWAYS_KEPT.contains(&kind)
            && !filter.kinds.contains(&kind)
            && !by_signer
    }

    /// Commits the blocks of the waiting final headers whose bodies are here, in order.
    pub(super) fn commit_fetched(&mut self) -> Result<()> {
        while let Some((_, hash)) = self.headers.front() {
            let hash = *hash;
            if !self.known.contains_key(&hash) {
                break;
            }
            self.commit(hash)?;
            if self.head_hash != hash {
                break;
            }
        }
        if self.headers.is_empty()
            && self
                .target
                .is_none_or(|(_, target)| target == self.head_hash)
        {
            self.set_sync("synced");
        }
        Ok(())
    }
}
