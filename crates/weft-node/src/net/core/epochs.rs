//! Epochs: starting the engine of an epoch (after the start gate), switching at its last block,
//! and validator changes scheduled by the chain.

use super::*;

impl Core {
    /// Tells the network thread to run the current epoch's engine (from the block before the
    /// epoch's first).
    pub(super) fn start_epoch(&mut self) -> Result<()> {
        let before = self.p.schedule.start(self.epoch.number) - 1;
        let floor = if before == self.head.header.height {
            self.head_hash
        } else {
            let ledger = self
                .p
                .ledger
                .lock()
                .map_err(|_| anyhow::anyhow!("ledger lock poisoned"))?;
            match ledger.store().signed_header(before)? {
                Some(signed) => signed.header.hash(),
                None => bail!(
                    "block {before}, the last before epoch {}, is missing",
                    self.epoch.number
                ),
            }
        };
        let (open, ready) = tokio::sync::oneshot::channel();
        self.effects
            .push(Effect::StartEpoch(crate::net::EpochStart {
                epoch: self.epoch.number,
                validators: self.epoch.validators.clone(),
                floor: commonware_cryptography::sha256::Digest(floor.0.0),
                ready,
            }));
        let waiting: HashSet<Key> = self.other_validators().collect();
        if !self.is_validator || waiting.is_empty() {
            let _ = open.send(());
            self.gate = None;
            return Ok(());
        }
        self.gate = Some(StartGate {
            since: self.now(),
            probed: None,
            waiting,
            open,
        });
        self.gate_tick();
        Ok(())
    }

    /// While the engine waits ([`StartGate`]): asks the validators that have not answered
    /// yet, every [`GATE_PROBE`]; starts the engine once the wait is over.
    pub(super) fn gate_tick(&mut self) {
        let now = self.now();
        let Some(gate) = &mut self.gate else {
            return;
        };
        let wait = Duration::from_millis(self.p.config.start_wait_ms);
        if now.saturating_duration_since(gate.since) >= wait {
            self.open_gate();
            return;
        }
        if gate
            .probed
            .is_some_and(|probed| now.saturating_duration_since(probed) < GATE_PROBE)
        {
            return;
        }
        gate.probed = Some(now);
        let peers: Vec<Key> = gate.waiting.iter().cloned().collect();
        let request = self.headers_request();
        self.send(Channel::Sync, Recipients::Some(peers), request, false);
    }

    /// A validator answered a headers request: if the engine waits, one fewer to wait for.
    pub(super) fn answered(&mut self, from: &Key) {
        if let Some(gate) = &mut self.gate
            && gate.waiting.remove(from)
            && gate.waiting.is_empty()
        {
            self.open_gate();
        }
    }

    pub(super) fn open_gate(&mut self) {
        let Some(gate) = self.gate.take() else {
            return;
        };
        let waited_ms = self.since(gate.since).as_millis() as u64;
        if gate.waiting.is_empty() {
            tracing::info!(
                epoch = self.epoch.number,
                waited_ms,
                "every validator answered: the consensus engine starts"
            );
        } else {
            let silent: Vec<String> = gate
                .waiting
                .iter()
                .map(|key| weft_key(key).to_string())
                .collect();
            tracing::warn!(
                epoch = self.epoch.number,
                waited_ms,
                ?silent,
                "validators did not answer: the consensus engine starts without hearing from them"
            );
        }
        let _ = gate.open.send(());
    }

    /// The committed head is the last block of its epoch: the next validators take over, with
    /// an engine of their own.
    pub(super) fn switch_epoch(&mut self) -> Result<()> {
        let next = epoch_state(
            &self.p.schedule,
            &self.p.namespace,
            self.head.header.height + 1,
        )?;
        tracing::info!(
            epoch = next.number,
            from_height = self.head.header.height + 1,
            validators = next.validators.len(),
            votes = next.validators.position(&self.me).is_some(),
            "the validators change"
        );
        self.epoch = next;
        self.is_validator = self.epoch.validators.position(&self.me).is_some();
        // The old engine's requests die with it.
        self.proposing.clear();
        self.verifying.clear();
        self.start_epoch()?;
        self.schedule_changed();
        if let Ok(mut status) = self.p.status.lock() {
            status.epoch = self.epoch.number;
            status.validator = self.is_validator;
            status.validators = self
                .epoch
                .validators
                .iter()
                .map(|key| weft_key(key).to_string())
                .collect();
        }
        Ok(())
    }

    /// The validator schedule or the epoch changed: what follows from them (every validator's
    /// key, the change shown as next, the peers to dial).
    pub(super) fn schedule_changed(&mut self) {
        self.validator_keys = all_validators(&self.p.schedule);
        if let Ok(mut status) = self.p.status.lock() {
            status.next_validators =
                crate::net::status::next_validators(&self.p.schedule, self.epoch.number);
        }
        self.retrack();
    }
}
