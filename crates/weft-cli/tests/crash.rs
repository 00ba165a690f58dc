//! Crash safety: a process committing blocks is killed with SIGKILL at random moments; after
//! each restart every acknowledged transaction is present (found through the transaction-id
//! index, which every other round merges a step at a time between blocks), no block is
//! partial, and the full audit passes.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use weft_core::TxId;
use weft_ledger::Ledger;
use weft_ledger::store::{RedbStore, Store};

fn random_below(bound: u64) -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(bound);
    hasher.finish() % bound.max(1)
}

#[test]
fn sigkill_at_random_points_loses_no_acknowledged_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let status = Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("--home")
        .arg(&home)
        .args(["init", "--chain-id", "crash"])
        .stdout(Stdio::null())
        .status()
        .expect("init");
    assert!(status.success());

    let mut acknowledged: Vec<TxId> = Vec::new();
    for round in 0..8 {
        let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
        command.arg("--home").arg(&home).args([
            "stress",
            "--blocks",
            "1000000",
            "--per-block",
            "7",
        ]);
        if round % 2 == 1 {
            // As a node does: index changes merged a step at a time between blocks, each step
            // committed without a sync of its own (the next block's commit makes it durable).
            command.args(["--merge-after", "30", "--merge-budget", "5"]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("piped");
        let target = 7 + random_below(150) as usize;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let mut seen = 0;
        // Wait until the child has acknowledged `target` transactions (a condition, not a timer).
        while seen < target {
            line.clear();
            let read = reader.read_line(&mut line).expect("read");
            assert!(read > 0, "round {round}: the stress process exited early");
            let id = line.trim().strip_prefix("ack ").expect("ack line");
            acknowledged.push(TxId::from_hex(id).expect("tx id"));
            seen += 1;
        }
        // Let the kill land at a random point of the next block's work (not a synchronisation:
        // any moment is a valid moment to crash).
        std::thread::sleep(Duration::from_micros(random_below(20_000)));
        child.kill().expect("SIGKILL");
        // Acks printed before the kill are acknowledged too.
        let mut rest = String::new();
        while reader.read_line(&mut rest).map(|n| n > 0).unwrap_or(false) {
            if let Some(id) = rest.trim().strip_prefix("ack ") {
                acknowledged.push(TxId::from_hex(id).expect("tx id"));
            }
            rest.clear();
        }
        child.wait().expect("reaped");

        let ledger = Ledger::open(
            RedbStore::open(&home.join("ledger.redb")).expect("reopens after SIGKILL"),
        )
        .expect("chain");
        for id in &acknowledged {
            assert!(
                ledger.store().tx(id).expect("read").is_some(),
                "round {round}: acknowledged {id} lost"
            );
        }
        let head = ledger.head().header.height;
        let report = weft_ledger::audit::audit(ledger.store(), &mut |_, _| {}).expect("audit");
        assert!(report.ok, "round {round}: {report:?}");
        assert_eq!(report.blocks, head + 1, "no partial or missing block");
    }
    assert!(acknowledged.len() >= 8 * 7);
}
