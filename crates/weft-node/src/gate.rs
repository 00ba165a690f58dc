//! Admission of connections: a cap in total and one per client address, kept by closing the
//! oldest connection of the address that holds the most, never by turning the newcomer away.
//!
//! Whoever opens connections fastest could otherwise hold every slot and lock everyone else
//! out (idle sockets, half-sent requests, TCP ingest connections that never authenticate).
//! Here a new connection is always let in: when its address already holds
//! `per_address`, that address's oldest connection is asked to close; when all slots are
//! taken, the oldest connection of the address holding the most is (an IPv6 address counts by
//! its /64). An attacker with a few addresses therefore mostly displaces itself, and a client
//! from any other address gets in at once; an attacker with more addresses than the cap has
//! places can still displace a client's connection, which then reconnects. Connections asked to close finish what they are doing (an HTTP request in
//! flight is answered) and count until they are gone; if they pile up beyond a quarter of the
//! cap, the listener accepts nothing more until some have closed ([`Gate::room`]: new
//! connections wait in the kernel's queue, holding no descriptor of the node's), so the number
//! of open sockets stays bounded.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// The connections of one listener (or one class of them).
#[derive(Debug)]
pub(crate) struct Gate {
    max: usize,
    per_address: usize,
    state: Mutex<State>,
    /// Signalled whenever a connection is gone.
    freed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    /// By age: the smallest id is the oldest.
    open: BTreeMap<u64, Entry>,
    /// Open connections per address, those asked to close left out.
    by_address: HashMap<IpAddr, usize>,
    closing: usize,
}

#[derive(Debug)]
struct Entry {
    address: IpAddr,
    close: watch::Sender<bool>,
    closing: bool,
}

/// A connection's place; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct Ticket {
    gate: Arc<Gate>,
    id: u64,
    close: watch::Receiver<bool>,
}

/// What admitting one connection did.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Admitted; the number of older connections asked to close to make room (0 or 1).
    In(Ticket, usize),
    /// Too many connections are still closing: refused.
    Full,
}

impl Gate {
    pub fn new(max: usize, per_address: usize) -> Arc<Gate> {
        Arc::new(Gate {
            max: max.max(1),
            per_address: per_address.max(1),
            state: Mutex::new(State::default()),
            freed: tokio::sync::Notify::new(),
        })
    }

    /// Resolves once fewer sockets than the ceiling are open: then [`Gate::admit`] lets the
    /// next connection in.
    pub async fn room(&self) {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.lock().open.len() < self.ceiling() {
                return;
            }
            freed.await;
        }
    }

    /// The most sockets this gate lets be open at once: the cap, and those asked to close.
    pub fn ceiling(&self) -> usize {
        self.max + self.max.div_ceil(4)
    }

    /// Admits a connection from `address`, asking an older one to close if a cap is reached;
    /// refuses it only when the ceiling is reached (a listener waits for [`Gate::room`] first).
    pub fn admit(self: &Arc<Gate>, address: IpAddr) -> Admission {
        let address = client(address);
        let mut state = self.lock();
        let active = state.open.len() - state.closing;
        let from_address = state.by_address.get(&address).copied().unwrap_or(0);
        let victim_address = if from_address >= self.per_address {
            Some(address)
        } else if active >= self.max {
            // The address holding the most; of several, the one with the oldest connection.
            let most = state.by_address.values().copied().max().unwrap_or(0);
            state
                .open
                .values()
                .find(|entry| !entry.closing && state.by_address.get(&entry.address) == Some(&most))
                .map(|entry| entry.address)
        } else {
            None
        };
        let mut evicted = 0;
        if let Some(victim_address) = victim_address {
            if state.open.len() >= self.ceiling() {
                return Admission::Full;
            }
            let victim = state
                .open
                .iter()
                .find(|(_, entry)| !entry.closing && entry.address == victim_address)
                .map(|(id, _)| *id);
            if let Some(victim) = victim {
                state.close(victim);
                evicted = 1;
            }
        }
        let id = state.next;
        state.next += 1;
        let (close, closed) = watch::channel(false);
        state.open.insert(
            id,
            Entry {
                address,
                close,
                closing: false,
            },
        );
        *state.by_address.entry(address).or_default() += 1;
        drop(state);
        Admission::In(
            Ticket {
                gate: self.clone(),
                id,
                close: closed,
            },
            evicted,
        )
    }

    /// Open connections, those asked to close included.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Whom a connection counts for: its IPv4 address, or the /64 network of its IPv6 address (a
/// single host commonly holds a whole /64, so its addresses are one client).
fn client(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::from(octets)
            }
        },
        v4 => v4,
    }
}

impl State {
    fn close(&mut self, id: u64) {
        let Some(entry) = self.open.get_mut(&id) else {
            return;
        };
        if entry.closing {
            return;
        }
        entry.closing = true;
        let _ = entry.close.send(true);
        self.closing += 1;
        let address = entry.address;
        self.forget(address);
    }

    fn forget(&mut self, address: IpAddr) {
        if let Some(count) = self.by_address.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                self.by_address.remove(&address);
            }
        }
    }
}

impl Ticket {
    /// Resolves when the gate asks this connection to close to make room.
    pub async fn closing(&mut self) {
        let _ = self.close.wait_for(|close| *close).await;
    }

    /// Turns true when the gate asks this connection to close; closed once the ticket is gone.
    pub fn asked(&self) -> watch::Receiver<bool> {
        self.close.clone()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.gate.lock();
        if let Some(entry) = state.open.remove(&self.id) {
            if entry.closing {
                state.closing -= 1;
            } else {
                state.forget(entry.address);
            }
        }
        drop(state);
        self.gate.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn admitted(admission: Admission) -> (Ticket, usize) {
        match admission {
            Admission::In(ticket, evicted) => (ticket, evicted),
            Admission::Full => panic!("refused"),
        }
    }

    #[test]
    fn an_address_at_its_cap_displaces_its_own_oldest_connection() {
        let gate = Gate::new(10, 2);
        let (mut first, _) = admitted(gate.admit(ip(1)));
        let (_second, _) = admitted(gate.admit(ip(1)));
        let (_other, evicted) = admitted(gate.admit(ip(2)));
        assert_eq!(evicted, 0);
        let (_third, evicted) = admitted(gate.admit(ip(1)));
        assert_eq!(evicted, 1);
        assert!(
            *first.close.borrow_and_update(),
            "the oldest of 127.0.0.1 is asked to close"
        );
    }

    #[test]
    fn a_full_gate_displaces_the_oldest_of_the_heaviest_address_and_lets_a_newcomer_in() {
        let gate = Gate::new(4, 4);
        let mut attacker = Vec::new();
        for _ in 0..3 {
            attacker.push(admitted(gate.admit(ip(9))).0);
        }
        let (mut client, _) = admitted(gate.admit(ip(1)));
        // Full: the next from anywhere displaces 127.0.0.9's oldest, never the lone client.
        let (_newcomer, evicted) = admitted(gate.admit(ip(2)));
        assert_eq!(evicted, 1);
        assert!(*attacker[0].close.borrow_and_update());
        assert!(!*client.close.borrow_and_update());
        assert_eq!(gate.open(), 5, "the displaced one counts until it is gone");
        drop(attacker.remove(0));
        assert_eq!(gate.open(), 4);
    }

    #[test]
    fn the_addresses_of_one_ipv6_network_count_as_one_client() {
        let gate = Gate::new(10, 2);
        let host = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]);
        let (mut first, _) = admitted(gate.admit(host(1)));
        let (_second, _) = admitted(gate.admit(host(2)));
        let (_third, evicted) = admitted(gate.admit(host(3)));
        assert_eq!(evicted, 1, "the /64 is at its cap of 2");
        assert!(*first.close.borrow_and_update());
    }

    #[test]
    fn connections_that_do_not_close_bound_the_sockets_open() {
        let gate = Gate::new(4, 100);
        let mut held = Vec::new();
        loop {
            match gate.admit(ip(3)) {
                Admission::In(ticket, _) => held.push(ticket),
                Admission::Full => break,
            }
            assert!(held.len() <= gate.ceiling(), "never more than the ceiling");
        }
        assert_eq!(held.len(), gate.ceiling());
        // One gone: room for one more.
        held.pop();
        assert!(matches!(gate.admit(ip(4)), Admission::In(..)));
    }
}
