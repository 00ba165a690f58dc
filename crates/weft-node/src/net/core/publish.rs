//! What the node tells about its network: the sync state and the status the API and metrics
//! show.

use super::*;

impl Core {
    pub(super) fn set_sync(&mut self, state: &'static str) {
        self.sync_state = state;
    }

    pub(super) fn publish(&mut self) {
        let now = self.now();
        self.seen
            .retain(|_, seen| now.saturating_duration_since(*seen) < PEER_SEEN);
        let Ok(mut status) = self.p.status.lock() else {
            return;
        };
        status.height = self.head.header.height;
        // A node that hears from no peer (cut off, or removed from the network) cannot know
        // whether it is behind.
        status.sync = if self.seen.is_empty() {
            "no peers"
        } else {
            self.sync_state
        }
        .to_string();
        status.finalized_height = self
            .target
            .and_then(|(_, hash)| self.known.get(&hash))
            .map_or(status.height, |known| known.block.signed.header.height)
            .max(status.height)
            .max(
                self.headers
                    .back()
                    .map_or(0, |(header, _)| header.header.height),
            );
        status.view = self
            .target
            .filter(|((epoch, _), _)| *epoch == self.epoch.number)
            .map_or(0, |((_, view), _)| view);
        status.notarized_view = self
            .notarized
            .filter(|(epoch, _)| *epoch == self.epoch.number)
            .map_or(0, |(_, view)| view);
        status.mempool = self.pool.len() as u64;
        let (engine, waiting_for) = match &self.gate {
            _ if !self.is_validator => ("not voting", Vec::new()),
            None => ("running", Vec::new()),
            Some(gate) => {
                let mut waiting: Vec<String> = gate
                    .waiting
                    .iter()
                    .map(|key| weft_key(key).to_string())
                    .collect();
                waiting.sort();
                ("waiting for validators", waiting)
            }
        };
        status.engine = engine.to_string();
        status.waiting_for = waiting_for;
        status.dialed = self.dialed.len() as u64;
        status.picked = sorted_keys(self.picks.keys());
        status.connections_wanted = self.p.config.connections as u64;
        status.dialed_connected = self
            .dialed
            .iter()
            .filter(|key| self.seen.contains_key(*key))
            .count() as u64;
        status.peers = sorted_keys(self.seen.keys());
        // Online: heard from here, or by a peer heard from here that reported lately.
        self.reported.retain(|peer, (when, _)| {
            now.saturating_duration_since(*when) < PEER_SEEN && self.seen.contains_key(peer)
        });
        let mut online: Vec<String> = self
            .seen
            .keys()
            .chain(self.reported.values().flat_map(|(_, keys)| keys))
            .filter(|key| **key != self.me)
            .map(|key| weft_key(key).to_string())
            .collect();
        online.sort();
        online.dedup();
        status.online = online;
        status.addresses = self.addresses.len() as u64;
        drop(status);
        self.publish_cut_off();
    }

    /// The peers cut off, into the status (at once when one is cut: a reader who saw the
    /// evidence finds the peer listed).
    pub(super) fn publish_cut_off(&mut self) {
        let now = self.p.clock.unix_ms();
        self.cut_off.retain(|_, (_, until)| *until > now);
        let mut cut_off: Vec<crate::net::CutOff> = self
            .cut_off
            .iter()
            .map(|(key, (reason, until))| crate::net::CutOff {
                key: weft_key(key).to_string(),
                reason: reason.clone(),
                until_ms: *until,
            })
            .collect();
        cut_off.sort_by(|a, b| a.key.cmp(&b.key));
        if let Ok(mut status) = self.p.status.lock() {
            status.cut_off = cut_off;
        }
    }
}
