//! The network's peers: admissions and removals committed, misbehaviour recorded as evidence,
//! peers cut off.

use super::*;

impl Core {
    /// A committed block admitted or removed peers: the network now accepts exactly the
    /// validators, the configured followers and seeds and the admitted peers; removed ones are
    /// cut off.
    pub(super) fn members_changed(
        &mut self,
        height: u64,
        changes: &[weft_core::model::NetworkPeer],
    ) {
        let members = match crate::net::admitted_peers(&self.p.ledger) {
            Ok(members) => members,
            Err(error) => {
                tracing::error!(%error, "cannot read the admitted peers");
                return;
            }
        };
        self.member_keys = member_keys(&members);
        // Keys removed by this block and not admitted again after (in the same block).
        let still_admitted = |key: &weft_core::PublicKey| members.contains_key(key);
        for change in changes.iter().filter(|change| !change.admitted) {
            let Ok(key) = crate::net::engine_key(&change.key) else {
                continue;
            };
            if still_admitted(&change.key)
                || self.validator_keys.contains(&key)
                || self.p.followers.position(&key).is_some()
            {
                continue;
            }
            tracing::info!(peer = %change.key, name = change.name, "peer removed from the network");
            self.addresses.remove(&key);
            self.signed_addresses.remove(&key);
            self.picks.remove(&key);
            if let Err(error) = self.p.addresses.forget_address(&change.key) {
                tracing::warn!(%error, "cannot write the address book");
            }
            self.cut(key, format!("removed from the network at height {height}"));
        }
        self.retrack();
        tracing::info!(
            height,
            admitted = members.len(),
            "the network's peers changed"
        );
        if let Ok(mut status) = self.p.status.lock() {
            status.members = crate::net::member_list(&members);
            status.next_validators =
                crate::net::status::next_validators(&self.p.schedule, self.epoch.number);
        }
    }

    /// A peer sent something invalid: it is recorded as evidence and disconnected.
    pub(super) fn misbehaved(&mut self, peer: Key, what: &str) {
        tracing::warn!(peer = %weft_key(&peer), what, "peer sent invalid data; disconnecting it");
        // Cut off (and listed in the status) before the evidence is written: whoever reads the
        // evidence finds the peer cut off.
        self.avoid
            .insert(peer.clone(), self.now() + crate::net::BLOCKED_FOR);
        self.cut(peer.clone(), what.to_string());
        self.evidence(serde_json::json!({
            "kind": "invalid_message",
            "peer": weft_key(&peer).to_string(),
            "reason": what,
        }));
    }

    /// Disconnects `peer` for [`crate::net::BLOCKED_FOR`] (commonware's blocker) and lists it, with
    /// `reason`, in the status's `cut_off`.
    pub(super) fn cut(&mut self, peer: Key, reason: String) {
        let until = self.p.clock.unix_ms() + crate::net::BLOCKED_FOR.as_millis() as u64;
        self.cut_off.insert(peer.clone(), (reason, until));
        self.effects.push(Effect::Block(peer));
        self.publish_cut_off();
    }

    pub(super) fn evidence(&mut self, mut record: serde_json::Value) {
        record["time_ms"] = self.p.clock.unix_ms().into();
        tracing::warn!(%record, "evidence of misbehaviour");
        self.effects.push(Effect::Evidence(format!("{record}\n")));
        if let Ok(mut status) = self.p.status.lock() {
            status.evidence += 1;
        }
    }
}
