//! Connections, addresses and who is online: the peers to dial and accept, the signed
//! addresses passed on, the address book.

use super::*;

impl Core {
    /// Every [`CONNECTIONS_EVERY`]: notes which peers the p2p network is connected with, drops
    /// the picks whose connection dropped (or that did not connect within [`PICK_GRACE`]),
    /// picks others in their place until `network.connections` are picked, and gives the p2p
    /// network the peer set if it changed (docs/network.md, "Connections").
    pub(super) fn maintain_connections(&mut self) {
        self.last_connections = self.now();
        // The router's list of connections (commonware's `Recipients::All`); nothing is sent.
        if let Some(connected) = (self.connected_now)() {
            self.connected = connected.into_iter().collect();
        }
        let now = self.now();
        self.passed_over.retain(|_, until| *until > now);
        let primary: HashSet<Key> = crate::net::primary_peers(&self.p.schedule, self.epoch.number)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let lost: Vec<Key> = self
            .picks
            .iter()
            .filter(|(key, picked)| {
                primary.contains(*key)
                    || !self.may_pick(key)
                    || (!self.connected.contains(*key) && self.since(**picked) >= PICK_GRACE)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in lost {
            self.picks.remove(&key);
            if !primary.contains(&key) {
                tracing::info!(peer = %weft_key(&key), "a peer picked to connect with is not connected; picking another");
                self.passed_over.insert(key, now + PASSED_OVER_FOR);
            }
        }
        let wanted = self.p.config.connections;
        if self.picks.len() < wanted {
            for key in self.pick_candidates(&primary) {
                if self.picks.len() >= wanted {
                    break;
                }
                tracing::debug!(peer = %weft_key(&key), "picked a peer to connect with");
                self.picks.insert(key, now);
            }
        }
        self.retrack();
    }

    /// May `key` be picked as one of the peers besides the validators: a peer this network
    /// knows (a configured follower or seed, or an admitted peer), not this node, not cut off,
    /// with an address to dial.
    pub(super) fn may_pick(&self, key: &Key) -> bool {
        *key != self.me
            && (self.p.followers.position(key).is_some()
                || self.seed_keys.contains(key)
                || self.member_keys.contains(key))
            && !self.cut_off.contains_key(key)
            && self.known_address(key).is_some()
    }

    /// The peers that may be picked and are not, best first: the configured seeds, then peers
    /// online (heard from here or reported by a peer) this node has no connection with, then
    /// the others, then those passed over lately. Within each group the order is this node's
    /// own (a hash of both keys), so that many nodes do not all pick the same peer.
    pub(super) fn pick_candidates(&self, primary: &HashSet<Key>) -> Vec<Key> {
        use std::hash::{Hash as _, Hasher as _};
        let online: HashSet<&Key> = self
            .reported
            .values()
            .flat_map(|(_, keys)| keys)
            .chain(self.seen.keys())
            .collect();
        let mut candidates: Vec<(u8, u64, Key)> = self
            .p
            .followers
            .iter()
            .chain(&self.seed_keys)
            .chain(&self.member_keys)
            .filter(|key| {
                !primary.contains(*key) && !self.picks.contains_key(*key) && self.may_pick(key)
            })
            .map(|key| {
                let group = if self.passed_over.contains_key(key) {
                    4
                } else if self.seed_keys.contains(key) {
                    0
                } else if self.connected.contains(key) {
                    2
                } else if online.contains(key) {
                    1
                } else {
                    3
                };
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                (self.me.as_ref(), key.as_ref()).hash(&mut hasher);
                (group, hasher.finish(), key.clone())
            })
            .collect();
        candidates.sort();
        candidates.dedup_by(|a, b| a.2 == b.2);
        candidates.into_iter().map(|(_, _, key)| key).collect()
    }

    /// Where `key` is dialled, as far as this node knows.
    pub(super) fn known_address(&self, key: &Key) -> Option<std::net::SocketAddr> {
        self.addresses.get(key)?.parse().ok()
    }

    /// The address to give the p2p network for `key`. commonware drops a live connection
    /// when a peer's address changes, so a connected peer keeps the one it was given; else
    /// the address this node knows, or none ([`unknown_address`]: never dialled).
    pub(super) fn address_for(&self, key: &Key) -> Address {
        if self.connected.contains(key)
            && let Some((primary, secondary)) = &self.tracked
            && let Some(given) = primary.get(key).or_else(|| secondary.get(key))
        {
            return given.clone();
        }
        self.known_address(key)
            .map_or_else(unknown_address, Address::Symmetric)
    }

    /// Gives the p2p network the peers to dial — the validators of this epoch and the next,
    /// then the picks — and those to accept — the configured followers and seeds, then the
    /// admitted peers (those beyond the room reserved at start are left out, the last by key
    /// first) — when that changed since the last time (under a new id of this node's own).
    pub(super) fn retrack(&mut self) {
        let validators =
            crate::net::primary_peers(&self.p.schedule, self.epoch.number).unwrap_or_default();
        let mut picks: Vec<Key> = self.picks.keys().cloned().collect();
        picks.sort();
        let primary: Vec<(Key, Address)> = validators
            .iter()
            .chain(&picks)
            .map(|key| (key.clone(), self.address_for(key)))
            .collect();
        let secondary: Vec<(Key, Address)> = self
            .p
            .followers
            .iter()
            .chain(&self.seed_keys)
            .chain(&self.member_keys)
            .map(|key| (key.clone(), self.address_for(key)))
            .collect();
        let (set, left_out) =
            crate::net::peer_set(primary, secondary, &self.me, self.p.peers_per_set);
        if self.tracked.as_ref() == Some(&set) {
            return;
        }
        if left_out > 0 {
            tracing::error!(
                left_out,
                capacity = self.p.peers_per_set,
                "more peers than this node reserved room for at start; restart it to connect \
                 them all"
            );
        }
        self.track_id += 1;
        let (primary, secondary) = &set;
        self.dialed = primary.keys().cloned().collect();
        let peers = AddressableTrackedPeers::new(
            Map::from_iter_dedup(primary.clone()),
            Map::from_iter_dedup(secondary.clone()),
        );
        self.effects.push(Effect::Track {
            id: self.track_id,
            peers,
        });
        self.tracked = Some(set);
    }

    /// Sends `to` this node's own signed address and those it holds of other peers.
    pub(super) fn tell_addresses(&mut self, to: Recipients<Key>) {
        let mut records = vec![self.own_address.clone()];
        records.extend(
            self.signed_addresses
                .values()
                .take(wire::MAX_PEER_ADDRESSES - 1)
                .cloned(),
        );
        self.send(
            Channel::Sync,
            to,
            encode(&Sync::Addresses { records }),
            false,
        );
    }

    /// Signed addresses from a peer: each one of a peer this network knows, newer than the one
    /// held and dated no further ahead than [`ADDRESS_SKEW_MS`], is checked and kept (and
    /// passed on). A signature that does not verify gets the sender cut off: an honest node
    /// passes on only addresses it checked.
    pub(super) fn take_addresses(&mut self, from: Key, records: Vec<wire::PeerAddress>) {
        let latest = self.p.clock.unix_ms() + ADDRESS_SKEW_MS;
        for record in records {
            let Ok(key) = crate::net::engine_key(&record.key) else {
                continue;
            };
            if key == self.me
                || !self.is_identity(&key)
                || record.time_ms > latest
                || self
                    .signed_addresses
                    .get(&key)
                    .is_some_and(|held| held.time_ms >= record.time_ms)
            {
                continue;
            }
            if let Err(error) = record.verify(self.chain_id) {
                self.misbehaved(
                    from,
                    &format!("a forged address of peer {}: {error}", record.key),
                );
                return;
            }
            self.learn_address(&key, &record.address);
            self.signed_addresses.insert(key, record);
        }
    }

    /// Notes where `key` is dialled, in memory and in the address book.
    pub(super) fn learn_address(&mut self, key: &Key, address: &str) {
        if self.addresses.get(key).map(String::as_str) == Some(address) {
            return;
        }
        tracing::info!(peer = %weft_key(key), address, "learnt a peer's address");
        self.addresses.insert(key.clone(), address.to_string());
        if let Err(error) = self.p.addresses.learn_address(&weft_key(key), address) {
            tracing::warn!(%error, "cannot write the address book");
        }
    }

    /// Tells every peer whom this node heard from lately.
    pub(super) fn tell_online(&mut self) {
        let peers: Vec<weft_core::PublicKey> = self
            .seen
            .iter()
            .filter(|(_, when)| self.since(**when) < PEER_SEEN)
            .map(|(key, _)| weft_key(key))
            .take(wire::MAX_ONLINE_PEERS)
            .collect();
        let message = Sync::Online {
            dialable: self.own_address.address.clone(),
            peers,
        };
        self.send(Channel::Sync, Recipients::All, encode(&message), false);
    }

    /// A peer's address and list of whom it heard from. The address goes into the address book
    /// (the message came over the connection its key authenticated: only a peer itself says
    /// where it is); the list is kept for [`PEER_SEEN`], only the identities this network
    /// knows (a peer cannot make others list keys that are not part of it).
    pub(super) fn take_online(
        &mut self,
        from: Key,
        dialable: String,
        peers: &[weft_core::PublicKey],
    ) {
        if self.is_identity(&from) {
            self.learn_address(&from, &dialable);
        }
        let known: Vec<Key> = peers
            .iter()
            .filter_map(|key| crate::net::engine_key(key).ok())
            .filter(|key| *key != self.me && self.is_identity(key))
            .collect();
        self.reported.insert(from, (self.now(), known));
    }

    /// Is `key` a validator of some epoch, a configured follower or seed, or an admitted peer?
    pub(super) fn is_identity(&self, key: &Key) -> bool {
        self.validator_keys.contains(key)
            || self.p.followers.position(key).is_some()
            || self.seed_keys.contains(key)
            || self.member_keys.contains(key)
    }
}
