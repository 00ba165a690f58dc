//! The core's hash maps and sets, keyed by a seed that is secret in a node and given in a
//! simulation.
//!
//! Which peer is asked for a block, which is picked to connect with and which pooled
//! transaction goes first all follow the maps' iteration order. With std's randomly keyed
//! hasher that order differs from run to run, so a simulated network would not replay from its
//! seed. [`Keyed`] hashes with foldhash under a per-thread seed: drawn at random the first time
//! a node's thread builds a map (no peer can predict it and grind colliding keys), set by a
//! simulation from its own seed before it builds its nodes.

use std::cell::Cell;
use std::hash::BuildHasher;

thread_local! {
    static SEED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Keys the maps this thread builds from now on with `seed` (simulations).
#[cfg(test)]
pub(crate) fn seed_this_thread(seed: u64) {
    SEED.with(|cell| cell.set(Some(seed)));
}

fn thread_seed() -> u64 {
    SEED.with(|cell| match cell.get() {
        Some(seed) => seed,
        None => {
            let seed = rand::random::<u64>();
            cell.set(Some(seed));
            seed
        }
    })
}

/// The core's hasher: foldhash, keyed by this thread's seed when the map is built.
#[derive(Clone, Debug)]
pub(crate) struct Keyed(foldhash::fast::FixedState);

impl Default for Keyed {
    fn default() -> Self {
        Keyed(foldhash::fast::FixedState::with_seed(thread_seed()))
    }
}

impl BuildHasher for Keyed {
    type Hasher = foldhash::fast::FoldHasher<'static>;

    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, Keyed>;
pub(crate) type HashSet<K> = std::collections::HashSet<K, Keyed>;

#[cfg(test)]
mod tests {
    use super::*;

    fn order(seed: u64) -> Vec<u32> {
        seed_this_thread(seed);
        let set: HashSet<u32> = (0..64).collect();
        set.into_iter().collect()
    }

    #[test]
    fn one_seed_gives_one_order_and_another_seed_another() {
        assert_eq!(order(7), order(7));
        assert_ne!(order(7), order(8));
    }
}
