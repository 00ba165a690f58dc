//! `weft bench tcp`: a load generator for a node's TCP ingest (docs/ingest-tcp.md).
//!
//! Each connection pipelines its frames (up to `--window` unanswered). Latency is measured
//! per frame, from the moment it was due to be sent (its scheduled time with `--rate`, so a
//! node that falls behind is not flattered) to its COMMITTED answer. With `--rate`, the frames
//! due within each millisecond are written together at its end, as a busy machine's sender
//! would; that wait counts in their latency.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;
use weft_node::wire;

use crate::context::Globals;
use crate::ingest::{Answer, Target, session};
use weft_load::latency_summary;

use crate::node_bench::signed_claims;

/// What `weft bench tcp` was asked to do.
#[derive(Debug, Clone, clap::Args)]
pub struct TcpBench {
    /// The node's TCP ingest address HOST:PORT (default: the node on --home).
    #[arg(long)]
    pub to: Option<String>,
    /// Frames to send.
    #[arg(long, default_value_t = 100_000)]
    pub txs: usize,
    /// Record body size in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Connections sending at once.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Most frames unanswered per connection.
    #[arg(long, default_value_t = 8192)]
    pub window: usize,
    /// Offer this many frames per second over all connections (default: as fast as the node
    /// answers).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Send claims signed by the client (TX frames) instead of records the node signs;
    /// registers organisations through --node URL.
    #[arg(long)]
    pub signed: bool,
}

/// With `--rate`, frames due within one tick go out together, at its end.
const TICK: Duration = Duration::from_millis(1);

#[derive(Default)]
struct Tally {
    committed: usize,
    other: usize,
    first_other: Option<String>,
    latencies_ms: Vec<f64>,
}

pub fn run(ctx: &Globals, options: TcpBench) -> Result<()> {
    let TcpBench {
        to,
        txs,
        size,
        connections,
        window,
        rate,
        signed,
    } = options;
    if txs == 0 || connections == 0 || connections > 256 || window == 0 {
        bail!("--txs and --window must be at least 1, --connections between 1 and 256");
    }
    if size == 0 || size > weft_core::model::MAX_RECORD_BODY {
        bail!(
            "--size must be between 1 and {} bytes",
            weft_core::model::MAX_RECORD_BODY
        );
    }
    if rate.is_some_and(|rate| !(rate.is_finite() && rate > 0.0)) {
        bail!("--rate must be a positive number of frames per second");
    }
    let to = match to {
        Some(to) => to,
        None => crate::context::tcp_address(ctx)?,
    };
    let token = crate::ingest::token(&ctx.home, None)?;
    // Every frame is made before the clock starts.
    let bodies: Vec<(u8, Vec<u8>)> = if signed {
        let Some(url) = &ctx.node else {
            bail!("--signed registers its organisations through the API: give --node URL");
        };
        let node = crate::client::NodeClient::new(url, ctx.ca.as_deref())?;
        signed_claims(ctx, &node, txs, None)?
            .iter()
            .map(|tx| (wire::TX, weft_core::encoding::encode(tx)))
            .collect()
    } else {
        (0..txs)
            .map(|i| {
                let mut body =
                    format!("{{\"sample\":{i},\"spindle_rpm\":12000,\"load\":0.42}}").into_bytes();
                body.resize(size, b' ');
                (wire::RECORD, wire::record_body("application/json", &body))
            })
            .collect()
    };
    // Frame i goes over connection i % connections.
    let mut per_connection: Vec<Vec<(usize, crate::ingest::Outgoing)>> =
        vec![Vec::new(); connections];
    for (index, frame) in bodies.into_iter().enumerate() {
        per_connection[index % connections].push((index, frame));
    }
    let due: Vec<AtomicU64> = (0..txs).map(|_| AtomicU64::new(0)).collect();
    let due = std::sync::Arc::new(due);
    let tally = Mutex::new(Tally::default());
    let bar = ctx.out.progress(txs as u64, "sending");
    let started = Instant::now();
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for frames in per_connection {
            let (due, tally, bar, errors) = (due.clone(), &tally, &bar, &errors);
            let target = Target {
                address: to.clone(),
                ca: ctx.ca.clone(),
            };
            let token = token.clone();
            scope.spawn(move || {
                let indices: Vec<usize> = frames.iter().map(|(index, _)| *index).collect();
                let stamps = due.clone();
                let outgoing = std::iter::once((wire::HELLO, token.into_bytes())).chain(
                    frames.into_iter().map(move |(index, frame)| {
                        let at = match rate {
                            Some(rate) => {
                                let due = Duration::from_secs_f64(index as f64 / rate);
                                // Released at the next whole tick after it is due, together
                                // with the tick's other frames; its latency still counts
                                // from when it was due.
                                let tick = due.as_nanos().div_ceil(TICK.as_nanos()) as u32;
                                let release = started + TICK * tick;
                                if let Some(wait) = release.checked_duration_since(Instant::now()) {
                                    std::thread::sleep(wait);
                                }
                                started + due
                            }
                            None => Instant::now(),
                        };
                        stamps[index].store(
                            at.duration_since(started).as_nanos() as u64,
                            Ordering::Relaxed,
                        );
                        frame
                    }),
                );
                let outcome = session(&target, outgoing, window, |request, answer| {
                    if request == 1 {
                        return Ok(());
                    }
                    let index = indices[(request - 2) as usize];
                    let sent = Duration::from_nanos(due[index].load(Ordering::Relaxed));
                    let latency = started.elapsed().saturating_sub(sent).as_secs_f64() * 1000.0;
                    let mut tally = tally.lock().expect("no panics while locked");
                    match answer {
                        Answer::Committed { .. } => {
                            tally.committed += 1;
                            tally.latencies_ms.push(latency);
                        }
                        other => {
                            tally.other += 1;
                            tally
                                .first_other
                                .get_or_insert(format!("{:?}", other.to_json()));
                        }
                    }
                    bar.inc(1);
                    Ok(())
                });
                if let Err(error) = outcome {
                    errors
                        .lock()
                        .expect("no panics while locked")
                        .push(format!("{error:#}"));
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some(error) = errors.into_inner().expect("no panics").first() {
        bail!("a connection failed: {error}");
    }
    let mut tally = tally.into_inner().expect("no panics while locked");
    let [p50, p90, p99, max] = latency_summary(&mut tally.latencies_ms);
    let tx_per_s = tally.committed as f64 / seconds;
    let kind = if signed { "tx" } else { "record" };
    let report = json!({
        "to": to,
        "frames": kind,
        "txs": txs,
        "size": if signed { None } else { Some(size) },
        "connections": connections,
        "window": window,
        "rate": rate,
        "tls": ctx.ca.is_some(),
        "seconds": seconds,
        "committed": tally.committed,
        "not_committed": tally.other,
        "first_not_committed": tally.first_other,
        "tx_per_s": tx_per_s,
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "max_ms": max,
    });
    ctx.out.emit(report, || {
        let offered = rate.map_or("as fast as answered".into(), |rate| format!("{rate:.0} frames/s offered"));
        let mut text = format!(
            "TCP ingest {to}: {} of {txs} {kind} frames committed in {seconds:.2} s ({offered}; {connections} connections, window {window})\n  throughput  {tx_per_s:.0} tx/s\n  latency     p50 {p50:.1} ms, p90 {p90:.1} ms, p99 {p99:.1} ms, max {max:.1} ms (send to committed)",
            tally.committed
        );
        if let Some(first) = &tally.first_other {
            text.push_str(&format!("\n  {} not committed (first: {first})", tally.other));
        }
        text
    });
    Ok(())
}
