//! Networks of real node processes on loopback, started by weft-client's launcher (what `weft
//! cluster up` runs): validators agree on blocks by BFT consensus (docs/network.md).
//!
//! One test binary, one module per scenario: `cluster` starts and drives the networks (the
//! helpers every scenario shares); `consensus` (agreement, a crash, no quorum, starting to
//! vote), `peers` (seeds, learnt addresses, connections), `membership` (joining, late nodes,
//! validator changes; the proofs of a network's transactions, final by certificate, in
//! `finality`), `thin` (what a thin node keeps and fetches), `commands` (`weft
//! cluster` arguments, refusals and status) and `entangled` (three companies' networks that
//! witness and anchor each other, one caught rewriting). Byzantine validators, partitions and stalled
//! finality are simulated deterministically instead (weft-node's `net::sim`, ADR 0020).

use std::time::Duration;

#[path = "../common/mod.rs"]
mod common;

mod cluster;
mod commands;
mod consensus;
mod entangled;
mod finality;
mod membership;
mod peers;
mod thin;

/// How long the network may take to reach a state a test waits for.
const DEADLINE: Duration = Duration::from_secs(120);

/// The networks of these tests share two cores: one runs at a time, so that leader timeouts
/// measure the protocol, not the machine.
static ONE_NETWORK_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_network_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_NETWORK_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

const THIN: usize = 4;
/// A second thin node: neither thin node dials the other, so each knows the other is online
/// only from what their common peers report.
const THIN2: usize = 5;
const ARCHIVE: usize = 6;
