//! What the core asks its driver to do with the world beyond it, as values: the core decides,
//! the driver performs ([`CoreIo::perform`]). In a node the driver is a thread that blocks on
//! the core's inbox (`net/driver.rs`); in a simulation, a task of the deterministic runtime. What stays inside the
//! core is its state, the ledger: it reads it to decide and commits final blocks to it (the
//! next decision needs the committed state).

use commonware_p2p::{AddressableManager, AddressableTrackedPeers, Blocker, Recipients, Sender};

use super::super::{EpochStart, Fetched, Key};
use crate::submission::TxResult;

/// One of weft's own peer-to-peer channels (the engine's are the engine's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    /// Proposals, whole blocks and requests for them.
    Blocks,
    /// Flooded transactions.
    Txs,
    /// Catch-up, proofs, who is online, signed addresses.
    Sync,
}

pub(crate) enum Effect {
    /// A message to peers.
    Send {
        channel: Channel,
        to: Recipients<Key>,
        message: Vec<u8>,
        priority: bool,
    },
    /// Disconnect a peer and refuse it for a while.
    Block(Key),
    /// The peers to dial and to accept, with their addresses (a new set, `id` higher than the
    /// last).
    Track {
        id: u64,
        peers: AddressableTrackedPeers<Key>,
    },
    /// Run the consensus engine of an epoch (stopping the one before).
    StartEpoch(EpochStart),
    /// A submitter's answers, its transactions decided.
    Answer {
        reply: tokio::sync::oneshot::Sender<Vec<TxResult>>,
        results: Vec<TxResult>,
    },
    /// What a fetch of whole transactions found.
    Fetched {
        reply: tokio::sync::oneshot::Sender<Vec<Fetched>>,
        found: Vec<Fetched>,
    },
    /// What a history fetch found.
    History {
        reply: super::super::HistoryReply,
        result: super::super::HistoryResult,
    },
    /// A line of evidence of misbehaviour (JSON), to append to the node's evidence file.
    Evidence(String),
}

/// How the driver reaches the world beyond the core: the peer-to-peer channels, the peer
/// manager, and where each epoch's engine is named.
pub(crate) struct CoreIo<S, B> {
    pub epochs: tokio::sync::mpsc::UnboundedSender<EpochStart>,
    pub blocks_out: S,
    pub txs_out: S,
    pub sync_out: S,
    pub blocker: B,
    /// Where evidence of misbehaviour is appended (JSON lines, owner-only).
    pub evidence_path: std::path::PathBuf,
}

impl<S, B> CoreIo<S, B>
where
    S: Sender<PublicKey = Key>,
    B: Blocker<PublicKey = Key> + AddressableManager<PublicKey = Key>,
{
    /// Performs `effect`. Nothing here can fail in a way the core could act on: a message to a
    /// peer that is gone is lost, as on any network, and a submitter that gave up is no error.
    pub fn perform(&mut self, effect: Effect) {
        match effect {
            Effect::Send {
                channel,
                to,
                message,
                priority,
            } => {
                let sender = match channel {
                    Channel::Blocks => &mut self.blocks_out,
                    Channel::Txs => &mut self.txs_out,
                    Channel::Sync => &mut self.sync_out,
                };
                sender.send(to, message, priority);
            }
            Effect::Block(peer) => {
                let _ = self.blocker.block(peer);
            }
            Effect::Track { id, peers } => {
                let _ = self.blocker.track(id, peers);
            }
            Effect::StartEpoch(start) => {
                let _ = self.epochs.send(start);
            }
            Effect::Answer { reply, results } => {
                let _ = reply.send(results);
            }
            Effect::Fetched { reply, found } => {
                let _ = reply.send(found);
            }
            Effect::History { reply, result } => {
                let _ = reply.send(result);
            }
            Effect::Evidence(line) => {
                use std::io::Write as _;
                use std::os::unix::fs::OpenOptionsExt as _;
                let written = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(weft_ledger::files::FILE_MODE)
                    .open(&self.evidence_path)
                    .and_then(|mut file| file.write_all(line.as_bytes()));
                if let Err(error) = written {
                    tracing::error!(%error, "cannot record evidence");
                }
            }
        }
    }
}

/// How the core asks which peers the p2p network is connected with: `sender`'s list of
/// connections (commonware's `Recipients::All`; nothing is sent).
pub(crate) fn connected_probe<S>(mut sender: S) -> Box<dyn FnMut() -> Option<Vec<Key>> + Send>
where
    S: Sender<PublicKey = Key>,
{
    use commonware_p2p::CheckedSender as _;
    Box::new(move || {
        sender
            .check(Recipients::All)
            .ok()
            .map(|checked| checked.recipients())
    })
}
