//! The witness of other chains behind its committer thread (docs/anchoring.md, "Group
//! commit"): what the API's `POST /add-checkpoint` hands its requests to.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::body::Bytes;
use weft_ledger::witness::Witness;

/// Most requests answered with one durable commit.
const MAX_GROUP: usize = 256;

/// One request waiting for the witness's committer.
pub(crate) type Waiting = (
    Bytes,
    tokio::sync::oneshot::Sender<weft_ledger::witness::Answer>,
);

/// The witness behind its committer: requests that arrive while one commit is under way are
/// answered together by the next (group commit), each checked against the state the ones before
/// it left; none is answered before its commit is durable.
pub(crate) struct WitnessService {
    pub witness: Arc<Witness>,
    pub queue: std::sync::mpsc::SyncSender<Waiting>,
}

impl WitnessService {
    pub(crate) fn start(witness: Witness) -> Result<Self> {
        let witness = Arc::new(witness);
        let (queue, requests) = std::sync::mpsc::sync_channel::<Waiting>(4 * MAX_GROUP);
        let worker = witness.clone();
        std::thread::Builder::new()
            .name("witness".into())
            .spawn(move || {
                // Ends when the API, holding every sender, is gone.
                while let Ok(first) = requests.recv() {
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        match requests.try_recv() {
                            Ok(next) => group.push(next),
                            Err(_) => break,
                        }
                    }
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |since| since.as_secs());
                    let bodies: Vec<&[u8]> = group.iter().map(|(body, _)| body.as_ref()).collect();
                    let answers = worker.add_checkpoints(&bodies, now);
                    for ((_, reply), answer) in group.into_iter().zip(answers) {
                        let _ = reply.send(answer);
                    }
                }
            })
            .context("cannot start the witness thread")?;
        Ok(WitnessService { witness, queue })
    }
}
