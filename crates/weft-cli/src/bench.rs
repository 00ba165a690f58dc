//! `weft bench`: throughput and latency figures, measured in release builds (see
//! docs/benchmarks.md). Benchmarks report; they never assert.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::json;
use weft_core::model::*;
use weft_core::{ChainId, HashAlgo, ResourceId, SigningKey, TxId};
use weft_ledger::store::{RedbStore, Store};
use weft_ledger::{Admitted, Ledger, Signer, Transaction};
use weft_load::{generated_asset, generated_record, organizations, percentile, sign_all};

use crate::commands::fingerprint_file;
use crate::context::Globals;
use weft_client::home::{Home, now_ms};

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Commit signed, rule-checked transactions on a durable single-node ledger.
    Ledger {
        /// Number of transactions to commit.
        #[arg(long, default_value_t = 200_000)]
        txs: usize,
        /// Transactions per block.
        #[arg(long, default_value_t = 10_000)]
        block_size: usize,
        /// Benchmark generic `Record` transactions with a body of this many bytes instead of
        /// RecordOwnership/SendProductData pairs.
        #[arg(long)]
        record_bytes: Option<usize>,
        /// Skip the full audit at the end.
        #[arg(long)]
        skip_audit: bool,
        /// Transactions whose index and state changes wait in memory before they are merged
        /// into the tables (0: merge with every block).
        #[arg(long, default_value_t = weft_ledger::store::DEFAULT_MERGE_AFTER_TXS)]
        merge_after: usize,
        /// MiB of the ledger file's pages kept in memory (a node's `storage.cache_mib`).
        #[arg(long, default_value_t = weft_ledger::store::DEFAULT_CACHE_BYTES >> 20)]
        cache_mib: usize,
        /// Directory for the ledger (default: a temporary directory, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Audit an existing ledger file (e.g. one kept with `bench ledger --dir`) in this process
    /// alone, to measure the audit's time and memory by themselves.
    Audit {
        /// The ledger database (`bench.redb` in a `--dir`, or a home's `ledger.redb`).
        file: PathBuf,
    },
    /// Build and verify inclusion proofs from an existing ledger file, opened afresh: the
    /// figures a node serving proofs would see.
    Proofs {
        /// The ledger database (`bench.redb` in a `--dir`, or a home's `ledger.redb`).
        file: PathBuf,
        /// Number of transactions to prove, spread evenly over the chain.
        #[arg(long, default_value_t = 1000)]
        count: usize,
    },
    /// G-code protection on one file: segmentation, sealing (X25519 and RSA receivers),
    /// verification (container, plain, tampered plain) and opening, in process and as whole
    /// `weft gcode` processes; optionally the paper's Python method side by side.
    Gcode {
        /// The G-code file (e.g. corpus/gcode/22_faceshield_rc3_prusaslicer250_0.3mm.gcode).
        file: PathBuf,
        /// Runs of each step; the median and the fastest are reported.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// The Python baseline script (seal/verify/open sub-commands printing JSON timings),
        /// run once per step in the same benchmark.
        #[arg(long)]
        python: Option<PathBuf>,
    },
    /// Load a running node (--node URL) through its REST batch endpoint: throughput and
    /// submit-to-committed latency. Registers its organisations with --home's authority key.
    Node(crate::node_bench::NodeBench),
    /// Load a running node's TCP ingest (docs/ingest-tcp.md): throughput and send-to-committed
    /// latency per frame. RECORD frames use the ingest token of --home.
    Tcp(crate::tcp_bench::TcpBench),
    /// A witness cosigning a growing chain's checkpoints (docs/anchoring.md): checkpoints per
    /// second, each checked and its state committed durably before the cosignature.
    Witness(crate::witness_bench::WitnessBench),
    /// Fingerprinting speed against `sha256sum` on the same file.
    Fingerprint {
        /// File to hash (default: a generated file of --size-mib).
        file: Option<PathBuf>,
        /// Size of the generated file, MiB (without FILE).
        #[arg(long, default_value_t = 1024)]
        size_mib: u64,
    },
}

pub fn run(ctx: &Globals, command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Ledger {
            txs,
            block_size,
            record_bytes,
            skip_audit,
            merge_after,
            cache_mib,
            dir,
        } => ledger(
            ctx,
            txs,
            block_size,
            record_bytes,
            skip_audit,
            weft_ledger::store::RedbOptions {
                merge_after_txs: merge_after,
                cache_bytes: cache_mib << 20,
            },
            dir,
        ),
        BenchCommand::Audit { file } => audit_file(ctx, &file),
        BenchCommand::Node(options) => crate::node_bench::run(ctx, options),
        BenchCommand::Tcp(options) => crate::tcp_bench::run(ctx, options),
        BenchCommand::Witness(options) => crate::witness_bench::run(ctx, options),
        BenchCommand::Proofs { file, count } => proofs_file(ctx, &file, count),
        BenchCommand::Fingerprint { file, size_mib } => fingerprint(ctx, file, size_mib),
        BenchCommand::Gcode { file, runs, python } => {
            crate::gcode_bench::bench(ctx, &file, runs, python.as_deref())
        }
    }
}

pub use weft_load::{PEAK_RSS_ENV, peak_rss_kib};

fn peak_rss_mib() -> Option<f64> {
    peak_rss_kib().map(|kib| kib as f64 / 1024.0)
}

fn dir_size(path: &Path) -> u64 {
    fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn ledger(
    ctx: &Globals,
    count: usize,
    block_size: usize,
    record_bytes: Option<usize>,
    skip_audit: bool,
    options: weft_ledger::store::RedbOptions,
    dir: Option<PathBuf>,
) -> Result<()> {
    if count == 0 || block_size == 0 || block_size > weft_ledger::block::MAX_BLOCK_TXS {
        bail!(
            "--txs must be positive and --block-size between 1 and {}",
            weft_ledger::block::MAX_BLOCK_TXS
        );
    }
    if let Some(bytes) = record_bytes
        && bytes > MAX_RECORD_BODY
    {
        bail!("--record-bytes is at most {MAX_RECORD_BODY}");
    }
    if !(16..=1 << 20).contains(&(options.cache_bytes >> 20)) {
        bail!("--cache-mib must be between 16 and 1048576");
    }
    let temporary = dir.is_none();
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("weft-bench-{}-{}", std::process::id(), now_ms()))
    });
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = ledger_in(
        ctx,
        &dir,
        count,
        block_size,
        record_bytes,
        skip_audit,
        options,
    );
    if temporary {
        let _ = fs::remove_dir_all(&dir);
    }
    result
}

fn ledger_in(
    ctx: &Globals,
    dir: &Path,
    count: usize,
    block_size: usize,
    record_bytes: Option<usize>,
    skip_audit: bool,
    options: weft_ledger::store::RedbOptions,
) -> Result<()> {
    let path = dir.join("bench.redb");
    if path.exists() {
        bail!("{} already exists; give an empty --dir", path.display());
    }
    let authority = SigningKey::generate()?;
    let producer = SigningKey::generate()?;
    let chain_name = "bench";
    let chain_id = ChainId::from_name(chain_name)?;
    let start_time = now_ms();
    let genesis = Genesis {
        chain_name: chain_name.into(),
        authorities: vec![authority.public_key()],
        producers: vec![producer.public_key()],
        time_window_ms: 24 * 3600 * 1000,
    };
    let genesis_tx = Transaction::sign(
        chain_id,
        start_time,
        Signer::Authority,
        &authority,
        Payload::Genesis(genesis),
    )?;
    let mut ledger = Ledger::create(
        RedbStore::open_with_options(&path, options)?,
        genesis_tx,
        &producer,
        start_time,
    )?;

    // 64 organisations, registered in one block.
    let (org_keys, registrations) = organizations(chain_id, start_time, &authority, 64)?;
    let orgs: Vec<ResourceId> = registrations
        .iter()
        .map(|tx| ResourceId(tx.id().0))
        .collect();
    ledger.produce_block(registrations, &producer, now_ms())?;

    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)
        .map_err(|error| anyhow::anyhow!("no randomness from the operating system: {error}"))?;
    let mut jobs = Vec::with_capacity(count);
    let asset = |i: usize| {
        generated_asset(
            &[&nonce[..], &(i as u64).to_le_bytes()].concat(),
            format!("part-{i}"),
            DataType::Geometry3d,
        )
    };
    for i in 0..count {
        let issuer_index = (i / 2) % orgs.len();
        let payload = match record_bytes {
            Some(bytes) => generated_record(orgs[issuer_index], i, bytes),
            None if i % 2 == 0 => Payload::RecordOwnership(RecordOwnership {
                issuer: orgs[issuer_index],
                product_data: asset(i / 2),
            }),
            None => Payload::SendProductData(SendProductData {
                from: orgs[issuer_index],
                to: orgs[(issuer_index + 1) % orgs.len()],
                forward: i % 4 == 1,
                product_data: asset(i / 2),
            }),
        };
        jobs.push((orgs[issuer_index], issuer_index, payload));
    }
    let signing_started = Instant::now();
    let transactions = sign_all(chain_id, now_ms(), jobs, &org_keys);
    let signing_s = signing_started.elapsed().as_secs_f64();
    let sample_ids: Vec<TxId> = transactions
        .iter()
        .step_by((count / 1000).max(1))
        .map(Transaction::id)
        .collect();

    // A producer pipeline: one thread runs the stateless checks (ids, signatures) of the next
    // batch while this one applies the rules to the current batch and commits it.
    let bar = ctx.out.progress(count as u64, "committing");
    let mut block_ms = Vec::new();
    let mut committed = 0usize;
    let started = Instant::now();
    let (batches, admitted) = std::sync::mpsc::sync_channel::<Admitted>(1);
    let checker = std::thread::Builder::new()
        .name("checker".into())
        .spawn(move || {
            let mut remaining = transactions.into_iter().peekable();
            while remaining.peek().is_some() {
                let batch: Vec<Transaction> = remaining.by_ref().take(block_size).collect();
                if batches.send(Admitted::check(batch)).is_err() {
                    break;
                }
            }
        })
        .context("cannot start the signature-checking thread")?;
    for batch in admitted {
        let size = batch.len();
        let block_started = Instant::now();
        let outcome = ledger.produce_admitted(batch, &producer, now_ms())?;
        block_ms.push(block_started.elapsed().as_secs_f64() * 1000.0);
        if let Some((_, id, error)) = outcome.rejected.first() {
            bail!("benchmark transaction {id} was rejected: {error}");
        }
        committed += size;
        bar.set_position(committed as u64);
    }
    checker
        .join()
        .map_err(|_| anyhow::anyhow!("the signature-checking thread panicked"))?;
    ledger.flush()?;
    let elapsed = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    block_ms.sort_by(f64::total_cmp);

    // Proof generation and verification on a sample spread over the chain.
    let ProofTimes {
        build_us: proof_build_us,
        inclusion_us: proof_inclusion_us,
        verify_us: proof_verify_us,
        batch_us: proof_verify_batch_us,
        state_build_us,
        state_verify_us,
        state_bytes,
    } = time_proofs(ledger.store(), &sample_ids, &ledger.trust_root()?)?;
    let rss_after_commit = peak_rss_mib();

    let (audit_s, audit_ok) = if skip_audit {
        (None, None)
    } else {
        let audit_bar = ctx
            .out
            .progress(ledger.head().header.height + 1, "auditing");
        let audit_started = Instant::now();
        let report =
            weft_ledger::audit::audit(ledger.store(), &mut |done, _| audit_bar.set_position(done))?;
        audit_bar.finish_and_clear();
        (Some(audit_started.elapsed().as_secs_f64()), Some(report.ok))
    };
    let db_bytes = dir_size(path.parent().unwrap_or(Path::new(".")));
    let tx_per_s = count as f64 / elapsed;
    let kind = match record_bytes {
        Some(bytes) => format!("Record ({bytes}-byte body)"),
        None => "RecordOwnership + SendProductData".into(),
    };
    ctx.out.emit(
        json!({
            "kind": kind,
            "txs": count,
            "block_size": block_size,
            "merge_after": options.merge_after_txs,
            "cache_mib": options.cache_bytes >> 20,
            "blocks": block_ms.len(),
            "elapsed_s": elapsed,
            "tx_per_s": tx_per_s,
            "block_commit_ms_p50": percentile(&block_ms, 0.5),
            "block_commit_ms_p99": percentile(&block_ms, 0.99),
            "signing_s": signing_s,
            "proof_build_us": proof_build_us,
            "proofs_sampled": sample_ids.len(),
            "proof_inclusion_us": proof_inclusion_us,
            "proof_verify_us": proof_verify_us,
            "proof_verify_batch_us": proof_verify_batch_us,
            "state_proof_build_us": state_build_us,
            "state_proof_verify_us": state_verify_us,
            "state_proof_bytes": state_bytes,
            "audit_s": audit_s,
            "audit_ok": audit_ok,
            "audit_tx_per_s": audit_s.map(|s| count as f64 / s),
            "peak_rss_mib_after_commit": rss_after_commit,
            "peak_rss_mib": peak_rss_mib(),
            "db_bytes": db_bytes,
        }),
        || {
            let mut text = format!(
                "{count} {kind} transactions in {} blocks of {block_size}\n  committed durably: {tx_per_s:.0} tx/s ({elapsed:.2} s; block commit p50 {:.1} ms, p99 {:.1} ms)\n  inclusion proof ({} sampled): build {proof_build_us:.1} µs; verify the path {proof_inclusion_us:.1} µs, complete with both signatures {proof_verify_us:.1} µs one by one, {proof_verify_batch_us:.1} µs in a batch\n  state proof of an asset's history: build {state_build_us:.1} µs, check {state_verify_us:.1} µs, {state_bytes:.0} bytes\n",
                block_ms.len(),
                percentile(&block_ms, 0.5),
                percentile(&block_ms, 0.99),
                sample_ids.len()
            );
            if let (Some(seconds), Some(ok)) = (audit_s, audit_ok) {
                text.push_str(&format!("  full audit: {seconds:.2} s ({:.0} tx/s), {}\n", count as f64 / seconds, if ok { "ok" } else { "FAILED" }));
            }
            text.push_str(&format!(
                "  peak memory {:.0} MiB (after commit {:.0} MiB); database {:.1} MiB",
                peak_rss_mib().unwrap_or(0.0),
                rss_after_commit.unwrap_or(0.0),
                db_bytes as f64 / (1 << 20) as f64
            ));
            text
        },
    );
    Ok(())
}

fn audit_file(ctx: &Globals, file: &Path) -> Result<()> {
    if !file.is_file() {
        bail!("{} is not a ledger file", file.display());
    }
    let rss_before = peak_rss_mib();
    let store = RedbStore::open(file)?;
    let head = store
        .head()?
        .with_context(|| format!("{} holds no chain", file.display()))?;
    let bar = ctx.out.progress(head.header.height + 1, "auditing");
    let started = Instant::now();
    let report = weft_ledger::audit::audit(&store, &mut |done, _| bar.set_position(done))?;
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let peak = peak_rss_mib();
    let db_bytes = fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    ctx.out.emit(
        json!({
            "ok": report.ok,
            "blocks": report.blocks,
            "transactions": report.transactions,
            "audit_s": seconds,
            "audit_tx_per_s": report.transactions as f64 / seconds,
            "peak_rss_mib": peak,
            "rss_before_mib": rss_before,
            "db_bytes": db_bytes,
        }),
        || {
            format!(
                "audit of {} transactions in {} blocks: {seconds:.2} s ({:.0} tx/s), {}\n  peak memory {:.0} MiB; database {:.1} MiB",
                report.transactions,
                report.blocks,
                report.transactions as f64 / seconds,
                if report.ok { "ok" } else { "FAILED" },
                peak.unwrap_or(0.0),
                db_bytes as f64 / (1 << 20) as f64
            )
        },
    );
    Ok(())
}

/// Microseconds per proof: building, then checking the inclusion alone, complete one by one,
/// and complete in Ed25519 batches.
struct ProofTimes {
    build_us: f64,
    inclusion_us: f64,
    verify_us: f64,
    batch_us: f64,
    /// The state proof of each sampled transaction's asset history (docs/state-proofs.md):
    /// built, checked against the head's state root, and its size in bytes.
    state_build_us: f64,
    state_verify_us: f64,
    state_bytes: f64,
}

fn time_proofs<S: Store>(
    store: &S,
    ids: &[TxId],
    root: &weft_ledger::trust::TrustRoot,
) -> Result<ProofTimes> {
    let per_proof = |started: Instant| started.elapsed().as_secs_f64() * 1e6 / ids.len() as f64;
    let started = Instant::now();
    let proofs: Vec<_> = ids
        .iter()
        .map(|id| weft_ledger::proof::build(store, id))
        .collect::<Result<_, _>>()?;
    let build_us = per_proof(started);
    let certificates = weft_node::net::finality::Certificates;
    // The inclusion itself: decoding, field checks and the audit path up to merkle_root.
    let started = Instant::now();
    for proof in &proofs {
        weft_ledger::proof::verify_inclusion_only(proof, root)?;
    }
    let inclusion_us = per_proof(started);
    // Complete, one at a time: plus the transaction signature and the block seal.
    let started = Instant::now();
    for proof in &proofs {
        weft_ledger::proof::verify(proof, root, &certificates)?;
    }
    let verify_us = per_proof(started);
    // Complete, all at once: signatures in Ed25519 batches.
    let started = Instant::now();
    for verdict in weft_ledger::proof::verify_many(&proofs, root, &certificates) {
        verdict?;
    }
    let batch_us = per_proof(started);
    // State proofs of the sampled transactions' assets, against the head's state root.
    let snapshot = store.snapshot()?;
    let mut assets = Vec::new();
    for id in ids {
        let payload = store.tx(id)?.and_then(|(tx, _)| tx.payload);
        if let Some(fingerprint) = payload.and_then(|payload| payload.content_fingerprint()) {
            let history = weft_ledger::state::StateView::history(&snapshot, &fingerprint)?;
            assets.push((
                weft_ledger::commitment::StateKey::History(fingerprint),
                history,
            ));
        }
    }
    drop(snapshot);
    let per_state =
        |started: Instant| started.elapsed().as_secs_f64() * 1e6 / assets.len().max(1) as f64;
    let started = Instant::now();
    let state_proofs: Vec<_> = assets
        .iter()
        .map(|(key, _)| store.state_proof(key))
        .collect::<Result<_, _>>()?;
    let state_build_us = per_state(started);
    let state_root = store.state_root()?;
    let started = Instant::now();
    for ((key, history), proof) in assets.iter().zip(&state_proofs) {
        weft_ledger::commitment::verify_entry(&state_root, key, history.as_ref(), proof)?;
    }
    let state_verify_us = per_state(started);
    let state_bytes = state_proofs
        .iter()
        .map(weft_core::smt::Proof::encoded_len)
        .sum::<usize>() as f64
        / state_proofs.len().max(1) as f64;
    Ok(ProofTimes {
        build_us,
        inclusion_us,
        verify_us,
        batch_us,
        state_build_us,
        state_verify_us,
        state_bytes,
    })
}

fn proofs_file(ctx: &Globals, file: &Path, count: usize) -> Result<()> {
    if !file.is_file() {
        bail!("{} is not a ledger file", file.display());
    }
    if count == 0 {
        bail!("--count must be at least 1");
    }
    let store = RedbStore::open(file)?;
    let head = store
        .head()?
        .with_context(|| format!("{} holds no chain", file.display()))?;
    // Positions spread over every block after genesis, and over each block's transactions.
    let heights = head.header.height.max(1);
    let mut ids = Vec::with_capacity(count);
    for i in 0..count as u64 {
        let height = 1 + i * heights / count as u64;
        let Some(header) = store.signed_header(height)? else {
            continue;
        };
        let size = u64::from(header.header.tx_count.max(1));
        let index = ((i * 7919) % size) as u32;
        if let Some(tx) = store.tx_at(weft_ledger::state::Position { height, index })? {
            ids.push(tx.id());
        }
    }
    if ids.is_empty() {
        bail!("{} holds no transactions after genesis", file.display());
    }
    let genesis = store
        .block(0)?
        .with_context(|| format!("{} holds no block 0", file.display()))?;
    let root = weft_ledger::trust::TrustRoot::from_genesis(&genesis)?;
    let ProofTimes {
        build_us,
        inclusion_us,
        verify_us,
        batch_us,
        state_build_us,
        state_verify_us,
        state_bytes,
    } = time_proofs(&store, &ids, &root)?;
    ctx.out.emit(
        json!({
            "proofs": ids.len(),
            "proof_build_us": build_us,
            "proof_inclusion_us": inclusion_us,
            "proof_verify_us": verify_us,
            "proof_verify_batch_us": batch_us,
            "state_proof_build_us": state_build_us,
            "state_proof_verify_us": state_verify_us,
            "state_proof_bytes": state_bytes,
            "peak_rss_mib": peak_rss_mib(),
        }),
        || {
            format!(
                "{} inclusion proofs from a ledger of {} blocks: build {build_us:.1} µs; verify the path {inclusion_us:.1} µs, complete {verify_us:.1} µs one by one, {batch_us:.1} µs in a batch; state proof of an asset's history: build {state_build_us:.1} µs, check {state_verify_us:.1} µs, {state_bytes:.0} bytes",
                ids.len(),
                head.header.height + 1
            )
        },
    );
    Ok(())
}

fn fingerprint(ctx: &Globals, file: Option<PathBuf>, size_mib: u64) -> Result<()> {
    let (path, generated) = match file {
        Some(path) => (path, false),
        None => {
            if size_mib == 0 || size_mib > 64 * 1024 {
                bail!("--size-mib must be between 1 and 65536");
            }
            let path =
                std::env::temp_dir().join(format!("weft-fingerprint-bench-{}", std::process::id()));
            let mut chunk = vec![0u8; 1 << 20];
            let mut state = 0x9e37_79b9_7f4a_7c15u64;
            let mut file = fs::File::create(&path)?;
            for _ in 0..size_mib {
                for word in chunk.chunks_mut(8) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    word.copy_from_slice(&state.to_le_bytes());
                }
                std::io::Write::write_all(&mut file, &chunk)?;
            }
            (path, true)
        }
    };
    let result = fingerprint_on(ctx, &path);
    if generated {
        let _ = fs::remove_file(&path);
    }
    result
}

fn time_best_of<T>(runs: usize, mut work: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        last = Some(work()?);
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok((best, last.expect("runs > 0")))
}

fn fingerprint_on(ctx: &Globals, path: &Path) -> Result<()> {
    let size = fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    let quiet = crate::output::Output {
        json: ctx.out.json,
        quiet: true,
    };
    // Warm the page cache so both sides read from memory.
    fingerprint_file(path, HashAlgo::Blake3, &quiet)?;
    let (sha256sum_s, reference) = time_best_of(3, || {
        let output = std::process::Command::new("sha256sum")
            .arg(path)
            .output()
            .context("cannot run sha256sum")?;
        if !output.status.success() {
            bail!("sha256sum failed");
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string())
    })?;
    let mut results = serde_json::Map::new();
    let mut lines = Vec::new();
    let mut sha256_ratio = 0.0;
    for algo in HashAlgo::ALL {
        let (seconds, fingerprint) = time_best_of(3, || fingerprint_file(path, algo, &quiet))?;
        let mib_s = size as f64 / (1 << 20) as f64 / seconds;
        if algo == HashAlgo::Sha256 {
            if hex::encode(fingerprint.digest) != reference {
                bail!(
                    "weft's SHA-256 differs from sha256sum's: {} vs {reference}",
                    hex::encode(fingerprint.digest)
                );
            }
            sha256_ratio = sha256sum_s / seconds;
        }
        results.insert(
            algo.name().into(),
            json!({"seconds": seconds, "mib_per_s": mib_s}),
        );
        lines.push(format!(
            "  weft {:<9} {seconds:.3} s  {mib_s:.0} MiB/s",
            algo.name()
        ));
    }
    let sha256sum_mib_s = size as f64 / (1 << 20) as f64 / sha256sum_s;
    ctx.out.emit(
        json!({"bytes": size, "sha256sum": {"seconds": sha256sum_s, "mib_per_s": sha256sum_mib_s}, "weft": results, "sha256_speed_vs_sha256sum": sha256_ratio}),
        || {
            format!(
                "{} MiB, best of 3, warm cache\n  sha256sum      {sha256sum_s:.3} s  {sha256sum_mib_s:.0} MiB/s\n{}\n  weft SHA-256 runs at {:.0}% of sha256sum's speed",
                size >> 20,
                lines.join("\n"),
                sha256_ratio * 100.0
            )
        },
    );
    Ok(())
}

/// The hidden `weft stress` command used by the crash test: commits blocks of claims and prints
/// `ack TXID` for each transaction once its block is durably committed. With `merge_steps`
/// (`start_at`, `budget_txs`), index changes are merged a step at a time after each block, as a
/// node merges them (`Ledger::merge_some`), instead of all at once in a block's transaction.
pub fn stress(
    ctx: &Globals,
    blocks: u64,
    per_block: usize,
    merge_steps: Option<(usize, usize)>,
) -> Result<()> {
    let home = Home::open(&ctx.home)?;
    let mut ledger = match merge_steps {
        Some(_) => Ledger::open(RedbStore::open_with(&home.db_path(), usize::MAX)?)?,
        None => home.ledger()?,
    };
    let producer = home.producer_key()?;
    let authority = home.authority_key()?;
    let key = SigningKey::generate()?;
    let organization = Organization {
        name: Some("stress".into()),
        website: None,
        address: Address {
            town: "T".into(),
            country: "C".into(),
            ..Address::default()
        },
    };
    let register = Transaction::sign(
        ledger.chain_id(),
        now_ms(),
        Signer::Authority,
        &authority,
        Payload::RegisterResource(RegisterResource {
            resource: Resource::Organization(organization),
            key: key.public_key(),
        }),
    )?;
    let org = ResourceId(register.id().0);
    ledger.produce_block(vec![register], &producer, now_ms())?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        .map_err(|error| anyhow::anyhow!("no randomness from the operating system: {error}"))?;
    for block in 0..blocks {
        let batch: Vec<Transaction> = (0..per_block)
            .map(|i| {
                let content = [&salt[..], &block.to_le_bytes(), &(i as u64).to_le_bytes()].concat();
                let asset =
                    generated_asset(&content, format!("f{block}-{i}"), DataType::Configuration);
                Transaction::sign(
                    ledger.chain_id(),
                    now_ms(),
                    Signer::Resource(org),
                    &key,
                    Payload::RecordOwnership(RecordOwnership {
                        issuer: org,
                        product_data: asset,
                    }),
                )
            })
            .collect::<Result<_, _>>()?;
        let outcome = ledger.produce_block(batch, &producer, now_ms())?;
        let mut acks = String::new();
        for (id, _) in &outcome.accepted {
            acks.push_str(&format!("ack {id}\n"));
        }
        crate::output::print(&acks);
        if let Some((start_at, budget_txs)) = merge_steps {
            ledger.merge_some(start_at, budget_txs)?;
        }
    }
    Ok(())
}
