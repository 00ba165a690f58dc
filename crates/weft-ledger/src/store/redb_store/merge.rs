//! Merging waiting changes into the hash-keyed tables: their rows sorted by key
//! ([`MergeWork`]), written all at once or a step at a time, and the generation frozen for
//! a merge in steps ([`Merging`]), whose rows are sorted on a thread of their own.

use std::sync::{Arc, mpsc};

use weft_core::encoding::encode;
use weft_core::smt::sorted_last_wins;

use super::super::receipt_key;
use super::pending::{IndexEntries, Pending};
use super::tables::{
    BY_FINGERPRINT, BY_RESOURCE, HISTORIES, KEYS, META, PARTS, PENDING_DELTAS, RECEIPTS, RESOURCES,
    TX_POSITIONS, index_key, key_key, storage,
};
use crate::error::Result;
use crate::state::StateDelta;

/// Where a step that writes `fraction` of a list of `len` rows (at least one) ends, when
/// `written` rows are written.
fn end_after(written: usize, len: usize, fraction: f64) -> usize {
    let count = (len as f64 * fraction).ceil() as usize;
    (written + count.max(1)).min(len)
}

/// Index entries and state changes to write into the hash-keyed tables, each list sorted by key
/// (redb then walks each B-tree left to right; of equal state keys the later change wins).
/// Written all at once, or a slice of every list at a time
/// ([`RedbStore::merge_some`](super::RedbStore::merge_some)): the lists advance together, so
/// each step touches one key range of each table.
#[derive(Debug)]
pub(super) struct MergeWork {
    pub(super) positions: Vec<([u8; 32], [u8; 12])>,
    pub(super) by_fingerprint: Vec<([u8; 45], [u8; 32])>,
    pub(super) by_resource: Vec<([u8; 44], [u8; 32])>,
    pub(super) genesis: Option<Vec<u8>>,
    /// The whole validator schedule, when these changes scheduled a change.
    pub(super) validators: Option<Vec<u8>>,
    /// The chains registered for anchoring, when these changes changed one.
    pub(super) anchors: Option<Vec<u8>>,
    pub(super) resources: Vec<([u8; 32], Vec<u8>)>,
    pub(super) keys: Vec<([u8; 64], Vec<u8>)>,
    pub(super) receipts: Vec<([u8; 65], Vec<u8>)>,
    pub(super) parts: Vec<(String, Vec<u8>)>,
    /// Each fingerprint's history, with its owner (there is no table of owners apart).
    pub(super) histories: Vec<([u8; 33], Vec<u8>)>,
    /// Rows of each list already written, in the order of [`Step::ends`].
    written: [usize; 8],
}

/// Where one step of a [`MergeWork`] ends in each list.
#[derive(Debug, Clone, Copy)]
pub(super) struct Step {
    pub(super) ends: [usize; 8],
    /// Does this step write the meta rows (genesis, validator schedule)?
    meta: bool,
}

/// Writes `rows` into `table` (one `insert` per row).
macro_rules! write_rows {
    ($txn:expr, $table:expr, $rows:expr, |$key:ident, $value:ident| ($k:expr, $v:expr)) => {{
        let rows = $rows;
        if !rows.is_empty() {
            let mut table = $txn.open_table($table).map_err(storage)?;
            for ($key, $value) in rows {
                table.insert($k, $v).map_err(storage)?;
            }
        }
    }};
}

impl MergeWork {
    /// The rows of `earlier`, then of `later` (which wins).
    pub(super) fn of(earlier: &Pending, later: Option<(&IndexEntries, &StateDelta)>) -> Self {
        let extra = later.map(|(entries, _)| entries);
        let mut positions: Vec<([u8; 32], [u8; 12])> = earlier
            .positions
            .iter()
            .map(|(id, position)| (id.0.0, position.to_key()))
            .chain(
                extra
                    .into_iter()
                    .flat_map(|entries| entries.positions.iter())
                    .map(|(id, position)| (id.0.0, position.to_key())),
            )
            .collect();
        positions.sort_unstable();
        let mut by_fingerprint: Vec<([u8; 45], [u8; 32])> = earlier
            .by_fingerprint
            .iter()
            .flat_map(|(key, values)| {
                values
                    .iter()
                    .map(|(position, id)| (index_key(key, *position), id.0.0))
            })
            .chain(
                extra
                    .into_iter()
                    .flat_map(|entries| entries.by_fingerprint.iter())
                    .map(|(key, position, id)| (index_key(key, *position), id.0.0)),
            )
            .collect();
        by_fingerprint.sort_unstable();
        let mut by_resource: Vec<([u8; 44], [u8; 32])> = earlier
            .by_resource
            .iter()
            .flat_map(|(key, values)| {
                values
                    .iter()
                    .map(|(position, id)| (index_key(&key.0.0, *position), id.0.0))
            })
            .chain(
                extra
                    .into_iter()
                    .flat_map(|entries| entries.by_resource.iter())
                    .map(|(key, position, id)| (index_key(&key.0.0, *position), id.0.0)),
            )
            .collect();
        by_resource.sort_unstable();

        let deltas: Vec<&StateDelta> = std::iter::once(&earlier.state)
            .chain(later.map(|(_, delta)| delta))
            .collect();
        let genesis = deltas
            .iter()
            .rev()
            .find_map(|delta| delta.genesis.as_ref())
            .map(encode);
        let validators = deltas
            .iter()
            .rev()
            .find_map(|delta| delta.validators.as_ref())
            .map(encode);
        let anchors = deltas
            .iter()
            .rev()
            .find_map(|delta| delta.anchors.as_ref())
            .map(encode);
        MergeWork {
            positions,
            by_fingerprint,
            by_resource,
            genesis,
            validators,
            anchors,
            resources: sorted_last_wins(
                deltas
                    .iter()
                    .flat_map(|delta| delta.resources.iter())
                    .map(|(id, entry)| (id.0.0, encode(entry)))
                    .collect(),
            ),
            keys: sorted_last_wins(
                deltas
                    .iter()
                    .flat_map(|delta| delta.keys.iter())
                    .map(|((resource, key), status)| (key_key(resource, key), encode(status)))
                    .collect(),
            ),
            receipts: sorted_last_wins(
                deltas
                    .iter()
                    .flat_map(|delta| delta.receipts.iter())
                    .map(|((fingerprint, resource), entry)| {
                        (receipt_key(fingerprint, resource), encode(entry))
                    })
                    .collect(),
            ),
            parts: sorted_last_wins(
                deltas
                    .iter()
                    .flat_map(|delta| delta.parts.iter())
                    .map(|(code, entry)| (code.clone(), encode(entry)))
                    .collect(),
            ),
            histories: sorted_last_wins(
                deltas
                    .iter()
                    .flat_map(|delta| delta.histories.iter())
                    .map(|(fingerprint, entry)| (fingerprint.key_bytes(), encode(entry)))
                    .collect(),
            ),
            written: [0; 8],
        }
    }

    /// The next step: `fraction` of every list (1.0: all that is left).
    pub(super) fn step(&self, fraction: f64) -> Step {
        let lens = self.lens();
        Step {
            ends: std::array::from_fn(|list| end_after(self.written[list], lens[list], fraction)),
            meta: self.genesis.is_some() || self.validators.is_some() || self.anchors.is_some(),
        }
    }

    /// Writes `step` in `txn`. Nothing advances until [`MergeWork::advance`], after the commit:
    /// a step whose transaction fails is written again by the next one.
    pub(super) fn write(&self, txn: &redb::WriteTransaction, step: Step) -> Result<()> {
        let [from, to] = [self.written, step.ends];
        write_rows!(
            txn,
            TX_POSITIONS,
            &self.positions[from[0]..to[0]],
            |k, v| (k, v)
        );
        write_rows!(
            txn,
            BY_FINGERPRINT,
            &self.by_fingerprint[from[1]..to[1]],
            |k, v| (k, v)
        );
        write_rows!(
            txn,
            BY_RESOURCE,
            &self.by_resource[from[2]..to[2]],
            |k, v| (k, v)
        );
        if step.meta {
            for (key, value) in [
                ("genesis", &self.genesis),
                ("validators", &self.validators),
                ("anchors", &self.anchors),
            ] {
                if let Some(value) = value {
                    txn.open_table(META)
                        .map_err(storage)?
                        .insert(key, value.as_slice())
                        .map_err(storage)?;
                }
            }
        }
        write_rows!(txn, RESOURCES, &self.resources[from[3]..to[3]], |k, v| (
            k,
            v.as_slice()
        ));
        write_rows!(txn, KEYS, &self.keys[from[4]..to[4]], |k, v| (
            k,
            v.as_slice()
        ));
        write_rows!(txn, RECEIPTS, &self.receipts[from[5]..to[5]], |k, v| (
            k,
            v.as_slice()
        ));
        write_rows!(txn, PARTS, &self.parts[from[6]..to[6]], |k, v| (
            k.as_str(),
            v.as_slice()
        ));
        write_rows!(txn, HISTORIES, &self.histories[from[7]..to[7]], |k, v| (
            k,
            v.as_slice()
        ));
        Ok(())
    }

    /// Records a committed step; true once every list is written.
    pub(super) fn advance(&mut self, step: Step) -> bool {
        self.written = step.ends;
        if step.meta {
            self.genesis = None;
            self.validators = None;
            self.anchors = None;
        }
        self.genesis.is_none()
            && self.validators.is_none()
            && self.anchors.is_none()
            && self.written == self.lens()
    }

    /// The length of each list, in the order of [`Step::ends`].
    pub(super) fn lens(&self) -> [usize; 8] {
        [
            self.positions.len(),
            self.by_fingerprint.len(),
            self.by_resource.len(),
            self.resources.len(),
            self.keys.len(),
            self.receipts.len(),
            self.parts.len(),
            self.histories.len(),
        ]
    }
}

/// Forgets the `pending_deltas` rows of merged blocks.
pub(super) fn forget_deltas(txn: &redb::WriteTransaction, heights: &[u64]) -> Result<()> {
    let mut table = txn.open_table(PENDING_DELTAS).map_err(storage)?;
    for height in heights {
        table.remove(height).map_err(storage)?;
    }
    Ok(())
}

/// Writes index entries and state changes into the hash-keyed tables at once, `later` winning
/// over `earlier`, and forgets the deltas of `earlier`'s blocks.
pub(super) fn merge_into_tables(
    txn: &redb::WriteTransaction,
    earlier: &Pending,
    later: Option<(&IndexEntries, &StateDelta)>,
) -> Result<()> {
    let work = MergeWork::of(earlier, later);
    work.write(txn, work.step(1.0))?;
    forget_deltas(txn, &earlier.heights)
}

/// A generation of waiting changes frozen for merging, written into the tables a step at a
/// time while newer blocks gather in [`Pending`]. Readers look at the newer changes first,
/// then at these, then at the tables; index lookups drop the entries they find twice (a row
/// of this generation may already be in the tables). Its blocks' `pending_deltas` rows are
/// removed in the transaction that writes its last step, so a crash before that rebuilds it.
#[derive(Debug)]
pub(super) struct Merging {
    pub(super) changes: Arc<Pending>,
    work: Work,
}

/// The sorted rows of a generation under merge. Sorting and encoding a generation of 100,000
/// transactions' changes takes about a quarter of a second, so it is done on a thread of its
/// own: the node's thread goes on with its blocks (readers use `Merging::changes` meanwhile),
/// and the steps start once the rows are ready.
#[derive(Debug)]
enum Work {
    Building(mpsc::Receiver<MergeWork>),
    Ready(Box<MergeWork>),
}

impl Merging {
    /// Freezes `changes` and starts sorting their rows on a thread of their own (here, if no
    /// thread can be started).
    pub(super) fn start(changes: Pending) -> Merging {
        let changes = Arc::new(changes);
        let (done, building) = mpsc::sync_channel(1);
        let frozen = changes.clone();
        let spawned = std::thread::Builder::new()
            .name("weft-merge-sort".into())
            .spawn(move || {
                // The receiver is gone only if the store was dropped meanwhile.
                let _ = done.send(MergeWork::of(&frozen, None));
            });
        let work = match spawned {
            Ok(_) => Work::Building(building),
            Err(_) => Work::Ready(Box::new(MergeWork::of(&changes, None))),
        };
        Merging { changes, work }
    }

    /// Made at open from the changes rebuilt from `pending_deltas` (nothing else waits then).
    pub(super) fn rebuilt(changes: Pending) -> Merging {
        let work = Work::Ready(Box::new(MergeWork::of(&changes, None)));
        Merging {
            changes: Arc::new(changes),
            work,
        }
    }

    /// The rows to write, once sorted; with `wait`, waits for the sorting thread.
    pub(super) fn work(&mut self, wait: bool) -> Option<&mut MergeWork> {
        if let Work::Building(building) = &self.work {
            let built = if wait {
                building
                    .recv()
                    .map_err(|_| mpsc::TryRecvError::Disconnected)
            } else {
                building.try_recv()
            };
            match built {
                Ok(work) => self.work = Work::Ready(Box::new(work)),
                Err(mpsc::TryRecvError::Empty) => return None,
                // The sorting thread died (it cannot, short of running out of memory): sort here.
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.work = Work::Ready(Box::new(MergeWork::of(&self.changes, None)));
                }
            }
        }
        match &mut self.work {
            Work::Ready(work) => Some(work),
            Work::Building(_) => None,
        }
    }
}
