//! `weft gcode …`: layers, keygen, seal, verify, open (docs/gcode.md).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::json;
use weft_gcode::container::MAGIC;
use weft_gcode::keys::{ReceiverPublic, ReceiverSecret};
use weft_gcode::manifest::Manifest;
use weft_gcode::verify::{Report, layer_map};

use crate::commands::Context_;
use crate::output::Negative;

/// Largest G-code file sealed or re-segmented (read whole).
const MAX_GCODE_BYTES: u64 = 4 << 30;

#[derive(Subcommand, Debug)]
pub enum GcodeCommand {
    /// Cut a G-code file into preamble, layers and postamble.
    Layers { file: PathBuf },
    /// Make a receiver key pair: NAME.pub and NAME.key (X25519, for HPKE).
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Seal a G-code file: one chained block per segment, encrypted for each receiver.
    Seal {
        file: PathBuf,
        /// The sealed container to write.
        #[arg(long)]
        out: PathBuf,
        /// The manifest to write (the per-segment hashes: the "benchmark").
        #[arg(long)]
        manifest: PathBuf,
        /// A receiver's public key (NAME.pub); repeat for several. None: not encrypted.
        #[arg(long = "to")]
        to: Vec<PathBuf>,
        /// An Ed25519 identity key file that signs the manifest.
        #[arg(long)]
        sign: Option<PathBuf>,
    },
    /// Verify a sealed container or plain G-code against a manifest, and locate every change.
    Verify {
        /// A sealed container or a plain G-code file.
        file: PathBuf,
        #[arg(long)]
        manifest: PathBuf,
    },
    /// Verify a container, then write its G-code (decrypted with the receiver's key).
    Open {
        file: PathBuf,
        /// The receiver's secret key (NAME.key); needed for an encrypted container.
        #[arg(long)]
        key: Option<PathBuf>,
        #[arg(long)]
        manifest: PathBuf,
        /// Where to write the G-code; `-` for standard output.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(ctx: &Context_, command: GcodeCommand) -> Result<()> {
    match command {
        GcodeCommand::Layers { file } => layers(ctx, &file),
        GcodeCommand::Keygen { out } => keygen(ctx, &out),
        GcodeCommand::Seal {
            file,
            out,
            manifest,
            to,
            sign,
        } => seal(ctx, &file, &out, &manifest, &to, sign.as_deref()),
        GcodeCommand::Verify { file, manifest } => verify(ctx, &file, &manifest),
        GcodeCommand::Open {
            file,
            key,
            manifest,
            out,
        } => open(ctx, &file, key.as_deref(), &manifest, &out),
    }
}

fn read_limited(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let metadata =
        fs::metadata(path).with_context(|| format!("cannot read {what} {}", path.display()))?;
    if !metadata.is_file() {
        bail!("{what} {} is not a file", path.display());
    }
    if metadata.len() > max {
        bail!(
            "{what} {} is {} bytes, more than the {max} allowed",
            path.display(),
            metadata.len()
        );
    }
    fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn method_name(method: weft_gcode::Method) -> String {
    serde_json::to_value(method)
        .ok()
        .map(|value| match value {
            serde_json::Value::String(text) => text,
            other => other
                .as_object()
                .and_then(|o| o.iter().next())
                .map(|(k, v)| format!("{k}:{}", v.as_str().unwrap_or("")))
                .unwrap_or_default(),
        })
        .unwrap_or_default()
}

fn layers(ctx: &Context_, file: &Path) -> Result<()> {
    let bytes = read_limited(file, MAX_GCODE_BYTES, "G-code file")?;
    let s = weft_gcode::segment(&bytes);
    ctx.out.emit(
        json!({
            "layers": s.layers(),
            "method": method_name(s.method),
            "segments": s.segments,
        }),
        || {
            let first = s.segments.iter().find(|x| x.layer.is_some());
            let last = s.segments.iter().rev().find(|x| x.layer.is_some());
            format!(
                "{}: {} layers ({}), {} segments{}",
                file.display(),
                s.layers(),
                method_name(s.method),
                s.segments.len(),
                match (first.and_then(|x| x.z), last.and_then(|x| x.z)) {
                    (Some(a), Some(b)) => format!("; z {a} to {b} mm"),
                    _ => String::new(),
                }
            )
        },
    );
    Ok(())
}

fn create_new(path: &Path, mode: u32) -> Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))
}

fn keygen(ctx: &Context_, out: &Path) -> Result<()> {
    let public_path = out.with_extension("pub");
    let secret_path = out.with_extension("key");
    for path in [&public_path, &secret_path] {
        if path.exists() {
            bail!("{} exists already; nothing was written", path.display());
        }
    }
    let (secret, public) = weft_gcode::keys::generate();
    let mut file = create_new(&secret_path, 0o600)?;
    file.write_all(secret.to_text().as_bytes())?;
    file.sync_all()?;
    let mut file = create_new(&public_path, 0o644)?;
    file.write_all(public.to_text().as_bytes())?;
    file.sync_all()?;
    let key_id = hex::encode(public.key_id());
    ctx.out.emit(
        json!({"public": public_path, "secret": secret_path, "key_id": key_id}),
        || {
            format!(
                "receiver key {}…: public {}, secret {} (mode 600)",
                &key_id[..16],
                public_path.display(),
                secret_path.display()
            )
        },
    );
    Ok(())
}

fn read_public(path: &Path) -> Result<ReceiverPublic> {
    let bytes = read_limited(path, 4096, "receiver public key")?;
    ReceiverPublic::from_text(&String::from_utf8_lossy(&bytes))
        .with_context(|| format!("receiver public key {}", path.display()))
}

fn read_secret(path: &Path) -> Result<ReceiverSecret> {
    let text = crate::home::read_private_text(path)?;
    ReceiverSecret::from_text(&text)
        .with_context(|| format!("receiver secret key {}", path.display()))
}

/// Writes `bytes` to `path` through a temporary file in the same directory, so that a failure
/// leaves nothing half-written.
fn write_atomically(path: &Path, write: impl FnOnce(&mut fs::File) -> Result<()>) -> Result<()> {
    if path.exists() {
        bail!("{} exists already; nothing was written", path.display());
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temporary = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    write(temporary.as_file_mut())?;
    temporary.as_file().sync_all()?;
    temporary
        .persist_noclobber(path)
        .map_err(|error| anyhow::anyhow!("cannot create {}: {}", path.display(), error.error))?;
    Ok(())
}

fn seal(
    ctx: &Context_,
    file: &Path,
    out: &Path,
    manifest_path: &Path,
    to: &[PathBuf],
    sign: Option<&Path>,
) -> Result<()> {
    let bytes = read_limited(file, MAX_GCODE_BYTES, "G-code file")?;
    let receivers = to
        .iter()
        .map(|p| read_public(p))
        .collect::<Result<Vec<_>>>()?;
    let signer = sign.map(crate::home::read_key).transpose()?;
    if out.exists() || manifest_path.exists() {
        bail!(
            "{} or {} exists already; nothing was written",
            out.display(),
            manifest_path.display()
        );
    }
    let s = weft_gcode::segment(&bytes);
    let mut sealed = None;
    write_atomically(out, |f| {
        let mut writer = std::io::BufWriter::new(f);
        sealed = Some(weft_gcode::container::seal(
            &bytes,
            &s.segments,
            &receivers,
            &mut writer,
        )?);
        writer.flush()?;
        Ok(())
    })?;
    let sealed = sealed.context("sealing produced nothing")?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut manifest = Manifest::new(&name, &bytes, &method_name(s.method), &s.segments, &sealed);
    if let Some(key) = &signer {
        manifest.sign(key);
    }
    let text = manifest.to_json();
    if let Err(error) = write_atomically(manifest_path, |f| Ok(f.write_all(text.as_bytes())?)) {
        let _ = fs::remove_file(out);
        return Err(error);
    }
    let container_bytes = fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    ctx.out.emit(
        json!({
            "layers": s.layers(),
            "segments": s.segments.len(),
            "encrypted_for": receivers.iter().map(|r| hex::encode(r.key_id())).collect::<Vec<_>>(),
            "signed_by": manifest.signer,
            "chain_head": manifest.body.chain_head,
            "container": out,
            "container_bytes": container_bytes,
            "manifest": manifest_path,
            "manifest_bytes": text.len(),
        }),
        || {
            format!(
                "sealed {} layers ({} segments) into {} ({container_bytes} bytes){}{}; manifest {} ({} bytes)",
                s.layers(),
                s.segments.len(),
                out.display(),
                if receivers.is_empty() {
                    ", not encrypted".to_string()
                } else {
                    format!(", encrypted for {} receiver(s)", receivers.len())
                },
                if manifest.signer.is_some() { ", signed" } else { ", unsigned" },
                manifest_path.display(),
                text.len()
            )
        },
    );
    Ok(())
}

fn read_manifest(path: &Path) -> Result<Manifest> {
    let bytes = read_limited(path, weft_gcode::manifest::MAX_MANIFEST_BYTES, "manifest")?;
    Manifest::from_json(&bytes).with_context(|| format!("manifest {}", path.display()))
}

fn is_container(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 8];
    let mut file =
        fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let n = file.read(&mut magic)?;
    Ok(n == 8 && &magic == MAGIC)
}

fn opener(path: &Path) -> impl FnMut() -> std::io::Result<Box<dyn Read>> + '_ {
    move || {
        Ok(Box::new(std::io::BufReader::with_capacity(
            1 << 16,
            fs::File::open(path)?,
        )) as Box<dyn Read>)
    }
}

fn emit_report(ctx: &Context_, report: &Report, manifest: &Manifest) {
    let map = layer_map(report, manifest);
    ctx.out.emit(
        serde_json::to_value(report).unwrap_or_default(),
        || {
            let checks = &report.checks;
            format!(
                "{}: {} {} of {} layers (dimension {}, chain {}, benchmark {}, signature {})\n  {map}",
                report.status.to_uppercase(),
                report.input,
                report.found_layers,
                report.expected_layers,
                ok(checks.dimension),
                ok(checks.chain),
                ok(checks.benchmark),
                checks.signature.map_or("none", |v| if v { "ok" } else { "INVALID" }),
            )
        },
    );
}

fn ok(value: bool) -> &'static str {
    if value { "ok" } else { "FAILED" }
}

fn verify(ctx: &Context_, file: &Path, manifest_path: &Path) -> Result<()> {
    let manifest = read_manifest(manifest_path)?;
    let report = if is_container(file)? {
        weft_gcode::verify::verify_container(opener(file)()?, &manifest)
    } else {
        weft_gcode::verify::verify_plain(opener(file), &manifest, MAX_GCODE_BYTES)
    }
    .with_context(|| format!("{}", file.display()))?;
    emit_report(ctx, &report, &manifest);
    if report.intact() {
        Ok(())
    } else {
        Err(Negative.into())
    }
}

fn open(
    ctx: &Context_,
    file: &Path,
    key: Option<&Path>,
    manifest_path: &Path,
    out: &Path,
) -> Result<()> {
    let manifest = read_manifest(manifest_path)?;
    let key = key.map(read_secret).transpose()?;
    if !is_container(file)? {
        bail!("{} is not a weft G-code container", file.display());
    }
    if out == Path::new("-") {
        // The G-code itself is the output: nothing else goes to standard output.
        let stdout = std::io::stdout();
        let mut lock = std::io::BufWriter::new(stdout.lock());
        weft_gcode::open::open_container(opener(file), &manifest, key.as_ref(), &mut lock)?;
        return Ok(());
    }
    let mut written = 0;
    write_atomically(out, |f| {
        let mut writer = std::io::BufWriter::new(f);
        (_, written) =
            weft_gcode::open::open_container(opener(file), &manifest, key.as_ref(), &mut writer)?;
        writer.flush()?;
        Ok(())
    })?;
    ctx.out.emit(
        json!({"written": written, "out": out, "status": "intact"}),
        || {
            format!(
                "intact; wrote {written} bytes of G-code to {}",
                out.display()
            )
        },
    );
    Ok(())
}
