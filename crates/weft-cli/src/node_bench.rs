//! `weft bench node`: a load generator for a running node. It registers a few organisations
//! through the node (signed with the home's authority key), signs every transaction before
//! the clock starts, then submits them in batches from several client threads — as fast as
//! the node takes them, or at a fixed `--rate` — and reports throughput and the
//! submit-to-committed latency of each transaction (docs/benchmarks.md, "Node").
//!
//! With `--rate`, each batch has a scheduled send time and its latency is measured from that
//! time, not from when a client thread got round to sending it, so a node that falls behind
//! is not flattered (no coordinated omission).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use weft_core::model::*;
use weft_core::{ChainId, ResourceId};
use weft_ledger::Transaction;

use crate::client::NodeClient;
use crate::context::Globals;
use weft_client::home::{Home, now_ms};
use weft_load::{generated_asset, generated_record, latency_summary, sign_all};

/// What `weft bench node` was asked to do.
#[derive(Debug, Clone, clap::Args)]
pub struct NodeBench {
    /// Transactions to submit (each a claim of a new asset).
    #[arg(long, default_value_t = 100_000)]
    pub txs: usize,
    /// Transactions per request.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Client threads sending at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Offer this many transactions per second (default: as fast as the node answers).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Stop sending after this many seconds, even if transactions are left.
    #[arg(long, default_value_t = 300)]
    pub max_secs: u64,
    /// Submit with `wait=false`: latency is to the node's "durably queued" answer; throughput
    /// counts until the node has committed everything (its mempool is empty).
    #[arg(long)]
    pub no_wait: bool,
    /// Submit generic `Record` transactions with a body of this many bytes (1 to 1 MiB) instead
    /// of claims.
    #[arg(long)]
    pub record_bytes: Option<usize>,
    /// Write each request's send time (ms after the start), latency (ms) and transactions as
    /// CSV to this file, to see when in the load the slow ones were.
    #[arg(long, value_name = "FILE")]
    pub latencies: Option<std::path::PathBuf>,
}

const ORGANIZATIONS: usize = 8;

pub fn run(ctx: &Globals, options: NodeBench) -> Result<()> {
    let NodeBench {
        txs,
        batch,
        concurrency,
        rate,
        max_secs,
        no_wait,
        record_bytes,
        latencies,
    } = options;
    if record_bytes.is_some_and(|bytes| bytes == 0 || bytes > weft_core::model::MAX_RECORD_BODY) {
        bail!(
            "--record-bytes must be between 1 and {} (a record's largest body)",
            weft_core::model::MAX_RECORD_BODY
        );
    }
    if txs == 0 || batch == 0 || concurrency == 0 || concurrency > 1024 {
        bail!("--txs and --batch must be at least 1, --concurrency between 1 and 1024");
    }
    if rate.is_some_and(|rate| !(rate.is_finite() && rate > 0.0)) {
        bail!("--rate must be a positive number of transactions per second");
    }
    let Some(url) = &ctx.node else {
        bail!("weft bench node needs --node URL (or WEFT_NODE): the node to load");
    };
    let node = NodeClient::new(url, ctx.ca.as_deref())?;
    // Opened first, so that a path that cannot be written fails before the load, not after.
    let latencies = latencies
        .map(|path| {
            std::fs::File::create(&path)
                .map(|file| (path.clone(), file))
                .with_context(|| format!("cannot write {}", path.display()))
        })
        .transpose()?;
    let signed = signed_claims(ctx, &node, txs, record_bytes)?;
    let bodies: Vec<String> = signed
        .chunks(batch)
        .map(|chunk| {
            json!({"transactions": chunk.iter().map(encode).collect::<Vec<_>>()}).to_string()
        })
        .collect();
    drop(signed);

    let bar = ctx.out.progress(txs as u64, "submitting");
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Results::default());
    let deadline = Duration::from_secs(max_secs);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..concurrency {
            scope.spawn(|| {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(120)))
                    .build()
                    .into();
                let url = format!(
                    "{}/v1/transactions/batch{}",
                    node.base(),
                    if no_wait { "?wait=false" } else { "" }
                );
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(index) else { break };
                    let scheduled = match rate {
                        Some(rate) => {
                            let offset = (index * batch) as f64 / rate;
                            let at = started + Duration::from_secs_f64(offset);
                            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                            at
                        }
                        None => Instant::now(),
                    };
                    if started.elapsed() > deadline {
                        break;
                    }
                    let outcome = send(&agent, &url, body);
                    let latency_ms = scheduled.elapsed().as_secs_f64() * 1000.0;
                    let sent_ms = scheduled.duration_since(started).as_secs_f64() * 1000.0;
                    let mut results = results.lock().expect("no panics while locked");
                    match outcome {
                        Ok((committed, rejected, reason)) => {
                            if let Some(reason) = reason {
                                results.first_rejection.get_or_insert(reason);
                            }
                            results.committed += committed;
                            results.rejected += rejected;
                            results
                                .latencies_ms
                                .push((latency_ms, committed + rejected));
                            results.sent_ms.push(sent_ms);
                            bar.inc((committed + rejected) as u64);
                        }
                        Err(error) => {
                            results.errors += 1;
                            results.first_error.get_or_insert(format!("{error:#}"));
                        }
                    }
                }
            });
        }
    });
    if no_wait {
        // Queued is not committed: the clock runs until the node's mempool is empty.
        bar.set_message("committing");
        drained(&node, started + deadline)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let results = results.into_inner().expect("no panics while locked");
    if let Some((path, file)) = latencies {
        write_latencies(&path, file, &results)?;
    }
    // Percentiles over transactions: a batch's latency counts once per transaction in it.
    let mut per_tx: Vec<f64> = results
        .latencies_ms
        .iter()
        .flat_map(|&(latency, count)| std::iter::repeat_n(latency, count))
        .collect();
    let [p50, p90, p99, max] = latency_summary(&mut per_tx);
    let tx_per_s = results.committed as f64 / seconds;
    let report = json!({
        "node": node.base(),
        "txs": txs,
        "batch": batch,
        "concurrency": concurrency,
        "rate": rate,
        "seconds": seconds,
        "committed": results.committed,
        "rejected": results.rejected,
        "failed_requests": results.errors,
        "first_error": results.first_error,
        "first_rejection": results.first_rejection,
        "tx_per_s": tx_per_s,
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "max_ms": max,
        "latency_to": if no_wait { "queued" } else { "committed" },
    });
    ctx.out.emit(report.clone(), || {
        let offered = rate.map_or("as fast as answered".to_string(), |rate| format!("{rate:.0} tx/s offered"));
        let mut text = format!(
            "node {}: {} of {txs} transactions committed in {seconds:.2} s ({offered}; batches of {batch}, {concurrency} clients)\n  throughput  {tx_per_s:.0} tx/s\n  latency     p50 {p50:.1} ms, p90 {p90:.1} ms, p99 {p99:.1} ms, max {max:.1} ms (submit to {})",
            node.base(),
            results.committed,
            if no_wait { "durably queued, wait=false" } else { "committed" },
        );
        if results.rejected > 0 || results.errors > 0 {
            text.push_str(&format!(
                "\n  rejected {} transactions, {} requests failed{}",
                results.rejected,
                results.errors,
                results
                    .first_error
                    .as_ref()
                    .map(|error| format!(" (first: {error})"))
                    .unwrap_or_default()
            ));
        }
        text
    });
    Ok(())
}

/// Waits until the node's mempool is empty (every queued transaction settled), or `until`.
fn drained(node: &NodeClient, until: Instant) -> Result<()> {
    loop {
        if node.get("/v1/status")?["mempool"].as_u64() == Some(0) {
            return Ok(());
        }
        if Instant::now() > until {
            bail!("the node still held queued transactions when --max-secs ran out");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Registers the benchmark's organisations through `node` (with the authority key of --home)
/// and signs `txs` claims of new assets among them, before any clock starts.
/// `txs` transactions of the benchmark's organisations (registered through `node`): claims of
/// new assets, or records with bodies of `record_bytes`.
pub(crate) fn signed_claims(
    ctx: &Globals,
    node: &NodeClient,
    txs: usize,
    record_bytes: Option<usize>,
) -> Result<Vec<Transaction>> {
    let home = Home::open(&ctx.home)?;
    let authority = home.authority_key().with_context(|| {
        format!(
            "the benchmark registers its organisations with the authority key of --home {}",
            ctx.home.display()
        )
    })?;
    let status = node.get("/v1/status")?;
    let chain_id = ChainId::from_hex(status["chain_id"].as_str().unwrap_or_default())
        .context("the node's chain id")?;

    // Organisations to act as, registered through the node.
    let (keys, registrations) =
        weft_load::organizations(chain_id, now_ms(), &authority, ORGANIZATIONS)?;
    let orgs: Vec<ResourceId> = registrations
        .iter()
        .map(|tx| ResourceId(tx.id().0))
        .collect();
    let answer = node.post(
        "/v1/transactions/batch",
        &json!({"transactions": registrations.iter().map(encode).collect::<Vec<_>>()}),
    )?;
    if answer["committed"].as_u64() != Some(ORGANIZATIONS as u64) {
        bail!("the node did not register the benchmark's organisations: {answer}");
    }

    // One claim of a new asset each.
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    let jobs = (0..txs)
        .map(|i| {
            let org = i % ORGANIZATIONS;
            let payload = match record_bytes {
                Some(bytes) => generated_record(orgs[org], i, bytes),
                None => Payload::RecordOwnership(RecordOwnership {
                    issuer: orgs[org],
                    product_data: generated_asset(
                        &[&nonce[..], &(i as u64).to_le_bytes()].concat(),
                        format!("load-{i}"),
                        DataType::Geometry3d,
                    ),
                }),
            };
            (orgs[org], org, payload)
        })
        .collect();
    Ok(sign_all(chain_id, now_ms(), jobs, &keys))
}

#[derive(Default)]
struct Results {
    committed: usize,
    rejected: usize,
    errors: usize,
    first_error: Option<String>,
    /// Why the first refused transaction was refused.
    first_rejection: Option<String>,
    /// (latency of a batch in ms, its transactions).
    latencies_ms: Vec<(f64, usize)>,
    /// When each batch of `latencies_ms` was sent (scheduled), ms after the start.
    sent_ms: Vec<f64>,
}

/// `--latencies FILE`: one CSV line per answered request, in the order they were sent.
fn write_latencies(
    path: &std::path::Path,
    mut file: std::fs::File,
    results: &Results,
) -> Result<()> {
    use std::io::Write as _;
    let mut rows: Vec<(f64, f64, usize)> = results
        .sent_ms
        .iter()
        .zip(&results.latencies_ms)
        .map(|(&sent, &(latency, count))| (sent, latency, count))
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut text = String::from("sent_ms,latency_ms,transactions\n");
    for (sent, latency, count) in rows {
        text.push_str(&format!("{sent:.1},{latency:.1},{count}\n"));
    }
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn encode(tx: &Transaction) -> String {
    hex::encode(weft_core::encoding::encode(tx))
}

/// Posts one batch; (committed, rejected, why the first refused one was refused), or with
/// `wait=false` (queued, 0, None).
fn send(agent: &ureq::Agent, url: &str, body: &str) -> Result<(usize, usize, Option<String>)> {
    let response = agent
        .post(url)
        .header("content-type", "application/json")
        .send(body)
        .context("cannot reach the node")?;
    let answer = crate::client::answer(response)?;
    let count = |key: &str| answer[key].as_u64().unwrap_or(0) as usize;
    // A queued transaction that a rule refuses later shows in GET, not here.
    let reason = answer["results"].as_array().and_then(|results| {
        results
            .iter()
            .find_map(|result| result.get("error").map(|error| error.to_string()))
    });
    Ok(match answer.get("queued") {
        Some(_) => (count("queued"), 0, None),
        None => (count("committed"), count("rejected"), reason),
    })
}
