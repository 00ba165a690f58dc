//! `weft bench gcode FILE`: every G-code step timed in process (the library's own cost) and as
//! whole `weft gcode` processes (what a user waits for), with the peak memory of each process,
//! and optionally the paper's Python method on the same file in the same run. Reports; never
//! asserts.

use std::fs;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use weft_core::SigningKey;
use weft_gcode::keys::{self, ReceiverPublic, ReceiverSecret};
use weft_gcode::manifest::Manifest;
use weft_gcode::open::open_container;
use weft_gcode::verify::{verify_container, verify_plain};

use crate::context::Globals;

/// Median and fastest of `runs` timings, in milliseconds.
fn time_runs(runs: usize, mut work: impl FnMut() -> Result<()>) -> Result<(f64, f64)> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        work()?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[0]))
}

/// Opens shared bytes as often as a reader asks, without copying them.
fn reader(bytes: &Arc<[u8]>) -> impl FnMut() -> std::io::Result<Box<dyn Read>> + '_ {
    move || Ok(Box::new(Cursor::new(Arc::clone(bytes))) as Box<dyn Read>)
}

struct SealedCopy {
    container: Arc<[u8]>,
    manifest: Manifest,
}

fn seal_in_memory(
    bytes: &[u8],
    receiver: &ReceiverPublic,
    signer: &SigningKey,
) -> Result<SealedCopy> {
    let segmentation = weft_gcode::segment(bytes);
    let mut container = Vec::with_capacity(bytes.len() + (1 << 16));
    let sealed = weft_gcode::container::seal(
        bytes,
        &segmentation.segments,
        std::slice::from_ref(receiver),
        &mut container,
    )?;
    let mut manifest = Manifest::new(
        "bench.gcode",
        bytes,
        "bench",
        &segmentation.segments,
        &sealed,
    );
    manifest.sign(signer);
    // Sealing includes writing the manifest text.
    std::hint::black_box(manifest.to_json());
    Ok(SealedCopy {
        container: container.into(),
        manifest,
    })
}

/// A copy of `bytes` with one digit of a move in the middle layer changed.
fn tampered_copy(bytes: &[u8]) -> Option<(Vec<u8>, u32)> {
    let segmentation = weft_gcode::segment(bytes);
    let layers: Vec<_> = segmentation
        .segments
        .iter()
        .filter(|segment| segment.layer.is_some())
        .collect();
    let middle = layers.get(layers.len() / 2)?;
    let range = middle.start as usize..middle.end as usize;
    let at = bytes[range.clone()]
        .windows(4)
        .position(|w| w == b"G1 X")
        .map(|offset| range.start + offset + 4)?;
    let mut copy = bytes.to_vec();
    copy[at] = if copy[at] == b'9' { b'1' } else { copy[at] + 1 };
    Some((copy, middle.layer.unwrap_or(0)))
}

pub fn bench(ctx: &Globals, file: &Path, runs: usize, python: Option<&Path>) -> Result<()> {
    if runs == 0 || runs > 10_000 {
        bail!("--runs must be between 1 and 10000");
    }
    let bytes = crate::gcode::read_limited(file, crate::gcode::MAX_GCODE_BYTES, "G-code file")?;
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    let layers = weft_gcode::segment(&bytes).layers();
    let (x_secret, x_public) = keys::generate();
    let (rsa_secret, rsa_public) = keys::generate_rsa(3072)?;
    let signer = SigningKey::generate()?;
    let x_sealed = seal_in_memory(&bytes, &x_public, &signer)?;
    let rsa_sealed = seal_in_memory(&bytes, &rsa_public, &signer)?;
    let (tampered, tampered_layer) =
        tampered_copy(&bytes).context("the file has no layer with a `G1 X` move to tamper with")?;
    let shared: Arc<[u8]> = bytes.clone().into();
    // A container with one byte flipped in the middle: inside some layer's stored body.
    let mut tampered_container = x_sealed.container.to_vec();
    let middle = tampered_container.len() / 2;
    tampered_container[middle] ^= 0x20;
    let tampered: Arc<[u8]> = tampered.into();

    // In process.
    let mut in_process = serde_json::Map::new();
    let mut lines_out = Vec::new();
    let mut step = |name: &str, work: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        let (median, best) = time_runs(runs, work)?;
        in_process.insert(name.into(), json!({"median_ms": median, "best_ms": best}));
        lines_out.push(format!(
            "  {name:<28} median {median:>8.2} ms   best {best:>8.2} ms"
        ));
        Ok(())
    };
    step("layers", &mut || {
        std::hint::black_box(weft_gcode::segment(&bytes));
        Ok(())
    })?;
    step("seal (X25519)", &mut || {
        seal_in_memory(&bytes, &x_public, &signer).map(drop)
    })?;
    step("seal (RSA-3072)", &mut || {
        seal_in_memory(&bytes, &rsa_public, &signer).map(drop)
    })?;
    step("verify container", &mut || {
        let report = verify_container(Cursor::new(&x_sealed.container[..]), &x_sealed.manifest)?;
        check(report.intact(), "an intact container verified as tampered")
    })?;
    step("verify container, locate", &mut || {
        let report = verify_container(Cursor::new(&tampered_container[..]), &x_sealed.manifest)?;
        check(
            report.findings.len() == 1,
            &format!("one changed block was reported as {:?}", report.findings),
        )
    })?;
    step("verify plain", &mut || {
        let report = verify_plain(reader(&shared), &x_sealed.manifest, u64::MAX)?;
        check(report.intact(), "the intact file verified as tampered")
    })?;
    step("verify plain, locate change", &mut || {
        let report = verify_plain(reader(&tampered), &x_sealed.manifest, u64::MAX)?;
        let located =
            report.findings.len() == 1 && report.findings[0].layer == Some(tampered_layer);
        check(
            located,
            &format!(
                "a change in layer {tampered_layer} was reported as {:?}",
                report.findings
            ),
        )
    })?;
    let open_with = |sealed: &SealedCopy, key: &ReceiverSecret| -> Result<()> {
        let mut out = Vec::with_capacity(bytes.len());
        open_container(
            reader(&sealed.container),
            &sealed.manifest,
            Some(key),
            &mut out,
        )?;
        check(out == bytes, "opened bytes differ")
    };
    step("open (X25519)", &mut || open_with(&x_sealed, &x_secret))?;
    step("open (RSA-3072)", &mut || {
        open_with(&rsa_sealed, &rsa_secret)
    })?;

    // Whole processes, on files in a temporary directory.
    let dir = tempfile::tempdir()?;
    let at = |name: &str| dir.path().join(name);
    let exe = std::env::current_exe().context("cannot find the weft executable")?;
    let weft = |args: &[&str], code: i32| -> Result<u64> {
        let output = Command::new(&exe)
            .env(weft_load::PEAK_RSS_ENV, "1")
            .env_remove("WEFT_HOME")
            .current_dir(dir.path())
            .args(args)
            .output()
            .context("cannot run weft")?;
        if output.status.code() != Some(code) {
            bail!(
                "weft {args:?} exited with {}, not {code}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stderr)
            .lines()
            .find_map(|line| line.strip_prefix("weft-peak-rss-kib "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0))
    };
    let file_arg = fs::canonicalize(file)?;
    let file_arg = file_arg.to_str().context("the file's path is not UTF-8")?;
    fs::write(at("sign.key"), signer.to_text())?;
    set_private(&at("sign.key"))?;
    // No ledger here: verify and open believe manifests signed by the bench's own key.
    let pinned = signer.public_key().to_hex();
    let pin = ["--trust-manifest-key", pinned.as_str()];
    weft(&["gcode", "keygen", "--out", "x"], 0)?;
    weft(&["gcode", "keygen", "--out", "rsa", "--rsa"], 0)?;
    fs::write(at("tampered.gcode"), &tampered)?;
    fs::write(at("tampered.wgc"), &tampered_container)?;
    let mut processes = serde_json::Map::new();
    let mut process_lines = Vec::new();
    // `code`: the exit code the step must end with (4 for `verify` of a tampered copy).
    let mut whole = |name: &str, args: &[&str], cleanup: &[&str], code: i32| -> Result<()> {
        let mut peak = 0;
        let (median, best) = time_runs(runs, || {
            for path in cleanup {
                let _ = fs::remove_file(at(path));
            }
            peak = peak.max(weft(args, code)?);
            Ok(())
        })?;
        processes.insert(
            name.into(),
            json!({"median_ms": median, "best_ms": best, "peak_rss_kib": peak}),
        );
        process_lines.push(format!(
            "  {name:<28} median {median:>8.2} ms   best {best:>8.2} ms   peak RSS {:>6.1} MiB",
            peak as f64 / 1024.0
        ));
        Ok(())
    };
    whole("layers", &["gcode", "layers", file_arg], &[], 0)?;
    let seal_args = |to: &'static str, out: &'static str, manifest: &'static str| {
        vec![
            "gcode",
            "seal",
            file_arg,
            "--out",
            out,
            "--manifest",
            manifest,
            "--to",
            to,
            "--sign",
            "sign.key",
        ]
    };
    whole(
        "seal (X25519)",
        &seal_args("x.pub", "x.wgc", "x.json"),
        &["x.wgc", "x.json"],
        0,
    )?;
    whole(
        "seal (RSA-3072)",
        &seal_args("rsa.pub", "rsa.wgc", "rsa.json"),
        &["rsa.wgc", "rsa.json"],
        0,
    )?;
    whole(
        "verify container",
        &[
            "gcode",
            "verify",
            "x.wgc",
            "--manifest",
            "x.json",
            pin[0],
            pin[1],
        ],
        &[],
        0,
    )?;
    whole(
        "verify container, locate",
        &[
            "gcode",
            "verify",
            "tampered.wgc",
            "--manifest",
            "x.json",
            pin[0],
            pin[1],
        ],
        &[],
        4,
    )?;
    whole(
        "verify plain",
        &[
            "gcode",
            "verify",
            file_arg,
            "--manifest",
            "x.json",
            pin[0],
            pin[1],
        ],
        &[],
        0,
    )?;
    whole(
        "verify plain, locate change",
        &[
            "gcode",
            "verify",
            "tampered.gcode",
            "--manifest",
            "x.json",
            pin[0],
            pin[1],
        ],
        &[],
        4,
    )?;
    for (name, container, key, manifest) in [
        ("open (X25519)", "x.wgc", "x.key", "x.json"),
        ("open (RSA-3072)", "rsa.wgc", "rsa.key", "rsa.json"),
    ] {
        whole(
            name,
            &[
                "gcode",
                "open",
                container,
                "--key",
                key,
                "--manifest",
                manifest,
                "--out",
                "o.gcode",
                pin[0],
                pin[1],
            ],
            &["o.gcode"],
            0,
        )?;
    }
    let container_bytes = fs::metadata(at("x.wgc"))?.len();
    let manifest_bytes = fs::metadata(at("x.json"))?.len();

    let baseline = python
        .map(|script| python_baseline(ctx, script, file_arg, dir.path()))
        .transpose()?;
    let ratios = baseline.as_ref().map(|baseline| {
        let ours = |name: &str| processes[name]["median_ms"].as_f64().unwrap_or(f64::NAN);
        json!({
            "seal": baseline["seal"]["wall_ms"].as_f64().unwrap_or(f64::NAN) / ours("seal (RSA-3072)"),
            "verify": baseline["verify"]["wall_ms"].as_f64().unwrap_or(f64::NAN) / ours("verify container"),
            "open": baseline["open"]["wall_ms"].as_f64().unwrap_or(f64::NAN) / ours("open (RSA-3072)"),
        })
    });
    ctx.out.emit(
        json!({
            "file": file,
            "bytes": bytes.len(),
            "lines": lines,
            "layers": layers,
            "runs": runs,
            "container_bytes": container_bytes,
            "manifest_bytes": manifest_bytes,
            "in_process": in_process,
            "whole_process": processes,
            "python": baseline,
            "python_over_weft": ratios,
        }),
        || {
            let mut text = format!(
                "{}: {} bytes, {lines} lines, {layers} layers; {runs} runs each\ncontainer {container_bytes} bytes, manifest {manifest_bytes} bytes\nin process:\n{}\nwhole `weft gcode` processes:\n{}",
                file.display(),
                bytes.len(),
                lines_out.join("\n"),
                process_lines.join("\n"),
            );
            if let (Some(baseline), Some(ratios)) = (&baseline, &ratios) {
                text.push_str(&format!(
                    "\nPython baseline (whole processes, one run each):\n  seal   {:>10.0} ms  ({:.0}× weft's RSA seal)  {}\n  verify {:>10.0} ms  ({:.0}× weft's container verify)  {}\n  open   {:>10.0} ms  ({:.0}× weft's RSA open)  {}",
                    baseline["seal"]["wall_ms"].as_f64().unwrap_or(f64::NAN),
                    ratios["seal"].as_f64().unwrap_or(f64::NAN),
                    baseline["seal"]["reported"],
                    baseline["verify"]["wall_ms"].as_f64().unwrap_or(f64::NAN),
                    ratios["verify"].as_f64().unwrap_or(f64::NAN),
                    baseline["verify"]["reported"],
                    baseline["open"]["wall_ms"].as_f64().unwrap_or(f64::NAN),
                    ratios["open"].as_f64().unwrap_or(f64::NAN),
                    baseline["open"]["reported"],
                ));
            }
            text
        },
    );
    Ok(())
}

fn check(ok: bool, what: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        bail!("benchmark self-check failed: {what}")
    }
}

fn set_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// Runs the Python script's seal, verify and open once each, as whole processes, and keeps the
/// timings each prints (one JSON line).
fn python_baseline(ctx: &Globals, script: &Path, file: &str, dir: &Path) -> Result<Value> {
    let chain = dir.join("py.chain.json");
    let bench = dir.join("py.bench.json");
    let key = PathBuf::from(format!("{}.key.pem", chain.display()));
    let opened = dir.join("py.opened.gcode");
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let steps: [(&str, Vec<String>); 3] = [
        (
            "seal",
            vec![
                "seal".into(),
                file.into(),
                path(&chain),
                path(&bench),
                "--lib".into(),
                "openssl".into(),
            ],
        ),
        ("verify", vec!["verify".into(), path(&chain), path(&bench)]),
        (
            "open",
            vec!["open".into(), path(&chain), path(&key), path(&opened)],
        ),
    ];
    let mut out = serde_json::Map::new();
    for (name, args) in steps {
        if !ctx.out.json {
            eprintln!("Python baseline: {name} (this takes a while)…");
        }
        let started = Instant::now();
        let output = Command::new("python3")
            .arg(script)
            .args(&args)
            .output()
            .context("cannot run python3")?;
        let wall_ms = started.elapsed().as_secs_f64() * 1e3;
        if !output.status.success() {
            bail!(
                "the Python baseline's {name} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let reported: Value = String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .and_then(|line| serde_json::from_str(line).ok())
            .unwrap_or(Value::Null);
        out.insert(
            name.into(),
            json!({"wall_ms": wall_ms, "reported": reported}),
        );
    }
    Ok(Value::Object(out))
}
