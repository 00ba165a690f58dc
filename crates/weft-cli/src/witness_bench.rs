//! `weft bench witness`: how many checkpoints a witness cosigns a second (docs/benchmarks.md),
//! each with its quorum signature checked, its consistency proof checked and its new state
//! committed durably before the cosignature (C2SP tlog-witness, docs/anchoring.md). The requests
//! are made first (the publisher's work); only the witness's answers are timed. With `--chains
//! N`, N chains push at once, one request each outstanding: each round of N is answered with one
//! commit, as a node's witness answers the requests that arrive together (group commit).

use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use weft_core::merkle::CompactLog;
use weft_core::model::{Genesis, Payload};
use weft_core::{ChainId, Hash32, SigningKey};
use weft_ledger::checkpoint::{self, Checkpoint, Note};
use weft_ledger::store::{MemoryStore, Store as _};
use weft_ledger::witness::{Witness, Witnessed};
use weft_ledger::{Ledger, Signer, Transaction};

use crate::context::Globals;

#[derive(clap::Args, Debug)]
pub struct WitnessBench {
    /// Checkpoints to cosign, one after the other.
    #[arg(long, default_value_t = 5000)]
    checkpoints: usize,
    /// Blocks the witnessed chain grows by between two checkpoints.
    #[arg(long, default_value_t = 10)]
    blocks_between: u64,
    /// Chains witnessed, pushing at once (each round of one request per chain is one commit).
    #[arg(long, default_value_t = 1)]
    chains: usize,
}

/// A witnessed chain: its trust root and every request its publisher sends, in order.
fn chain_requests(
    name: &str,
    rounds: usize,
    blocks_between: u64,
) -> Result<(weft_ledger::trust::TrustRoot, Vec<String>, u64)> {
    // The witnessed chain: a real block 0 (its trust root), and a log of made-up block hashes.
    let authority = SigningKey::generate()?;
    let producer = SigningKey::generate()?;
    let chain = name;
    let genesis = Transaction::sign(
        ChainId::from_name(chain)?,
        weft_client::home::now_ms(),
        Signer::Authority,
        &authority,
        Payload::Genesis(Genesis {
            chain_name: chain.into(),
            authorities: vec![authority.public_key()],
            producers: vec![producer.public_key()],
            time_window_ms: 300_000,
        }),
    )?;
    let ledger = Ledger::create(
        MemoryStore::new(),
        genesis,
        &producer,
        weft_client::home::now_ms(),
    )?;
    let block0 = ledger.store().block(0)?.context("block 0")?;
    let root = weft_ledger::trust::TrustRoot::from_genesis(&block0)?;
    let origin = checkpoint::origin(&root.chain, &root.chain_id);
    let mut log = CompactLog::default();
    let mut requests = Vec::with_capacity(rounds);
    let mut old = 0u64;
    for round in 0..rounds as u64 {
        for block in 0..blocks_between {
            log.push(Hash32::sha256(&[
                &round.to_be_bytes(),
                &block.to_be_bytes(),
            ]));
        }
        let size = log.len();
        let mut note = Note {
            text: Checkpoint {
                origin: origin.clone(),
                size,
                root: log.root(size).expect("size"),
            }
            .text(),
            signatures: Vec::new(),
        };
        note.sign(&origin, &producer)?;
        let proof = if old == 0 {
            Vec::new()
        } else {
            log.consistency_proof(old, size).expect("sizes")
        };
        requests.push(weft_ledger::witness::request_body(old, &proof, &note));
        old = size;
    }
    Ok((root, requests, log.len()))
}

pub fn run(ctx: &Globals, options: WitnessBench) -> Result<()> {
    if options.checkpoints == 0 || options.blocks_between == 0 || options.chains == 0 {
        bail!("--checkpoints, --blocks-between and --chains are at least 1");
    }
    let rounds = options.checkpoints.div_ceil(options.chains);
    let mut roots = Vec::new();
    let mut per_chain = Vec::new();
    let mut final_size = 0;
    for chain in 0..options.chains {
        let (root, requests, size) = chain_requests(
            &format!("bench-witnessed-{chain}"),
            rounds,
            options.blocks_between,
        )?;
        roots.push(Witnessed::from_root(root));
        per_chain.push(requests);
        final_size = size;
    }

    let dir = tempfile::tempdir().context("a temporary directory")?;
    let witness = Witness::open(
        &dir.path().join("witness.redb"),
        "bench.example/witness",
        SigningKey::generate()?,
        roots,
    )?;
    let total = rounds * options.chains;
    let bar = ctx.out.progress(total as u64, "cosigning");
    let mut latencies = Vec::with_capacity(rounds);
    let started = Instant::now();
    for round in 0..rounds {
        let bodies: Vec<&[u8]> = per_chain
            .iter()
            .map(|requests| requests[round].as_bytes())
            .collect();
        let one = Instant::now();
        let answers = witness.add_checkpoints(&bodies, weft_client::home::now_ms() / 1000);
        latencies.push(one.elapsed().as_secs_f64() * 1000.0);
        if let Some(answer) = answers.iter().find(|answer| answer.status != 200) {
            bail!("the witness answered {}: {}", answer.status, answer.body);
        }
        bar.inc(bodies.len() as u64);
    }
    let elapsed = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    latencies.sort_by(f64::total_cmp);
    let per_s = total as f64 / elapsed;
    let p50 = weft_load::percentile(&latencies, 0.50);
    let p99 = weft_load::percentile(&latencies, 0.99);
    ctx.out.emit(
        json!({
            "checkpoints": total,
            "chains": options.chains,
            "blocks_between": options.blocks_between,
            "final_size": final_size,
            "seconds": elapsed,
            "cosigned_per_s": per_s,
            "p50_ms": p50,
            "p99_ms": p99,
        }),
        || {
            format!(
                "WITNESS  {total} checkpoints of {} chains cosigned in {elapsed:.2} s: {per_s:.0}/s \
                 (quorum checked, consistency proof checked, state committed durably before the \
                 cosignatures)\n  a round of {} requests (one commit): p50 {p50:.3} ms, p99 \
                 {p99:.3} ms; each chain grew to {final_size} blocks",
                options.chains,
                options.chains
            )
        },
    );
    Ok(())
}
