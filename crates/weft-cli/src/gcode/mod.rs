//! `weft gcode …`: layers, keygen, seal, verify, open (docs/gcode.md). `anchor`: what a manifest
//! must be before the G-code it describes is believed.

mod anchor;

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

use serde_json::Value;
use weft_core::model::{DataType, DigitalAsset, File, Payload, RecordOwnership};
use weft_core::{Fingerprint, HashAlgo, SigningKey};
use weft_ledger::state::{KeyStatus, StateView};
use weft_ledger::store::Store;

use self::anchor::{Hashing, anchor};
use crate::commands::Acting;
use crate::context::Globals;
use crate::output::{Negative, Output};
use weft_client::home::Home;

/// Largest G-code file sealed or re-segmented (read whole).
pub(crate) const MAX_GCODE_BYTES: u64 = 4 << 30;

#[derive(Subcommand, Debug)]
pub enum GcodeCommand {
    /// Cut a G-code file into preamble, layers and postamble.
    Layers {
        /// A plain G-code file.
        file: PathBuf,
    },
    /// Make a receiver key pair: NAME.pub and NAME.key (X25519 for HPKE; with --rsa, RSA for
    /// RSA-OAEP in PEM).
    Keygen {
        /// NAME: the key pair is written to NAME.pub and NAME.key (mode 600).
        #[arg(long)]
        out: PathBuf,
        /// Make an RSA key pair instead (for sites with an RSA PKI).
        #[arg(long)]
        rsa: bool,
        /// RSA modulus size: 3072, 4096 or 8192 bits.
        #[arg(long, default_value_t = 3072, requires = "rsa")]
        rsa_bits: usize,
    },
    /// Seal a G-code file: one chained block per segment, encrypted for each receiver.
    Seal {
        /// The plain G-code to seal.
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
        /// An Ed25519 identity key file that signs the manifest. With a ledger home (`--home`
        /// or WEFT_HOME), it must be the current key of a registered resource.
        #[arg(long)]
        sign: Option<PathBuf>,
        /// With a ledger home: the organisation that records the manifest (signing with its key
        /// from the home, instead of --sign).
        #[arg(long = "as", conflicts_with = "sign")]
        as_: Option<String>,
        /// With --as: a person of the organisation who signs for it.
        #[arg(long, requires = "as_")]
        signer: Option<String>,
        /// Do not record the manifest even though a ledger home is given.
        #[arg(long)]
        no_record: bool,
    },
    /// Verify a sealed container or plain G-code against a manifest, and locate every change;
    /// the manifest must be anchored: on the ledger, recorded by the G-code's owner (or a holder
    /// of a copy it may forward), signed by the recorder — or signed by a key you pin.
    Verify {
        /// A sealed container or a plain G-code file.
        file: PathBuf,
        /// The manifest the owner released with the container (`gcode seal --manifest`).
        #[arg(long)]
        manifest: PathBuf,
        #[command(flatten)]
        anchor: AnchorArgs,
    },
    /// Verify a container, then write its G-code (decrypted with the receiver's key).
    Open {
        /// The sealed container.
        file: PathBuf,
        /// The receiver's secret key (NAME.key); needed for an encrypted container.
        #[arg(long)]
        key: Option<PathBuf>,
        /// The manifest the owner released with the container; nothing is written unless the
        /// container matches it.
        #[arg(long)]
        manifest: PathBuf,
        /// Where to write the G-code; `-` for standard output.
        #[arg(long)]
        out: PathBuf,
        /// The receiver (organisation or person): it must be an intended recipient of the
        /// G-code (its owner, or sent it). Needed unless the manifest's signer is pinned.
        #[arg(long = "as")]
        as_: Option<String>,
        #[command(flatten)]
        anchor: AnchorArgs,
    },
}

/// What anchors a manifest (docs/gcode.md, "Anchored to the ledger").
#[derive(clap::Args, Debug, Default)]
pub struct AnchorArgs {
    /// Check the ledger's answers against this trust root instead of those pinned in the home.
    #[arg(long = "trust", value_name = "FILE")]
    pub trust: Vec<PathBuf>,
    /// Believe a manifest signed by this key (hex), without the ledger: for a signer you know
    /// apart from it. Repeatable.
    #[arg(long = "trust-manifest-key", value_name = "KEY")]
    pub pinned: Vec<String>,
    /// The organisation that must have recorded the manifest.
    #[arg(long = "expect-issuer", value_name = "ORG")]
    pub expect_issuer: Option<String>,
}

pub fn run(ctx: &Globals, command: GcodeCommand) -> Result<()> {
    match command {
        GcodeCommand::Layers { file } => layers(ctx, &file),
        GcodeCommand::Keygen { out, rsa, rsa_bits } => keygen(ctx, &out, rsa.then_some(rsa_bits)),
        GcodeCommand::Seal {
            file,
            out,
            manifest,
            to,
            sign,
            as_,
            signer,
            no_record,
        } => {
            let signing = Signing {
                key_file: sign,
                as_,
                signer,
                record: (ctx.home_given || ctx.node.is_some()) && !no_record,
            };
            seal(ctx, &file, &out, &manifest, &to, &signing)
        }
        GcodeCommand::Verify {
            file,
            manifest,
            anchor,
        } => verify(ctx, &file, &manifest, &anchor),
        GcodeCommand::Open {
            file,
            key,
            manifest,
            out,
            as_,
            anchor,
        } => open(
            ctx,
            &file,
            key.as_deref(),
            &manifest,
            &out,
            as_.as_deref(),
            &anchor,
        ),
    }
}

pub(crate) fn read_limited(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
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

fn layers(ctx: &Globals, file: &Path) -> Result<()> {
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

fn keygen(ctx: &Globals, out: &Path, rsa_bits: Option<usize>) -> Result<()> {
    let public_path = out.with_extension("pub");
    let secret_path = out.with_extension("key");
    for path in [&public_path, &secret_path] {
        if path.exists() {
            bail!("{} exists already; nothing was written", path.display());
        }
    }
    let (secret, public) = match rsa_bits {
        Some(bits) => weft_gcode::keys::generate_rsa(bits)?,
        None => weft_gcode::keys::generate(),
    };
    let secret_text = secret.to_text()?;
    let write = |path: &Path, mode: u32, text: &str| -> Result<()> {
        let mut file = create_new(path, mode)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        Ok(())
    };
    write(&secret_path, 0o600, &secret_text)?;
    if let Err(error) = write(&public_path, 0o644, &public.to_text()) {
        // No half pair is left behind.
        let _ = fs::remove_file(&secret_path);
        let _ = fs::remove_file(&public_path);
        return Err(error);
    }
    let key_id = hex::encode(public.key_id());
    let scheme = public.scheme_name();
    ctx.out.emit(
        json!({"public": public_path, "secret": secret_path, "key_id": key_id, "scheme": scheme}),
        || {
            format!(
                "receiver key {}… ({scheme}): public {}, secret {} (mode 600)",
                &key_id[..16],
                public_path.display(),
                secret_path.display()
            )
        },
    );
    Ok(())
}

fn read_public(path: &Path) -> Result<ReceiverPublic> {
    let bytes = read_limited(
        path,
        weft_gcode::keys::MAX_KEY_TEXT as u64,
        "receiver public key",
    )?;
    ReceiverPublic::from_text(&String::from_utf8_lossy(&bytes))
        .with_context(|| format!("receiver public key {}", path.display()))
}

fn read_secret(path: &Path) -> Result<ReceiverSecret> {
    let text = weft_client::home::read_private_text(path)?;
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
    ctx: &Globals,
    file: &Path,
    out: &Path,
    manifest_path: &Path,
    to: &[PathBuf],
    signing: &Signing,
) -> Result<()> {
    let bytes = read_limited(file, MAX_GCODE_BYTES, "G-code file")?;
    let receivers = to
        .iter()
        .map(|p| read_public(p))
        .collect::<Result<Vec<_>>>()?;
    // Everything that can refuse is resolved before a byte is written.
    let (signer, recorder) = signing.resolve(ctx)?;
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
    if let Some(key) = recorder
        .as_ref()
        .map(|acting| &acting.key)
        .or(signer.as_ref())
    {
        manifest.sign(key);
    }
    let text = manifest.to_json();
    if let Err(error) = write_atomically(manifest_path, |f| Ok(f.write_all(text.as_bytes())?)) {
        let _ = fs::remove_file(out);
        return Err(error);
    }
    let recorded = match recorder {
        Some(acting) => match record_manifest(ctx, acting, manifest_path, &manifest, &text, &bytes)
        {
            Ok(recorded) => Some(recorded),
            Err(error) => {
                // A manifest the ledger refused is not left behind as if it were recorded.
                let _ = fs::remove_file(out);
                let _ = fs::remove_file(manifest_path);
                return Err(error.context("recording the manifest on the ledger; nothing was kept"));
            }
        },
        None => None,
    };
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
            "recorded": recorded.as_ref().map(|r| &r.0),
        }),
        || {
            format!(
                "sealed {} layers ({} segments) into {} ({container_bytes} bytes){}{}; manifest {} ({} bytes){}",
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
                text.len(),
                recorded.as_ref().map(|r| format!("\n  {}", r.1)).unwrap_or_default()
            )
        },
    );
    Ok(())
}

/// Who signs a manifest, and whether it is recorded on the ledger.
struct Signing {
    key_file: Option<PathBuf>,
    as_: Option<String>,
    signer: Option<String>,
    /// A ledger home was given and `--no-record` was not.
    record: bool,
}

impl Signing {
    /// The manifest's signing key when nothing is recorded, or the resource that records the
    /// manifest (and whose key signs it).
    fn resolve(&self, ctx: &Globals) -> Result<(Option<SigningKey>, Option<Acting>)> {
        if let Some(as_) = &self.as_ {
            if !self.record {
                bail!(
                    "--as names who records the manifest on a ledger: give the ledger home with \
                     --home (or WEFT_HOME; ./.weft is used where it exists), or sign with \
                     --sign KEY instead"
                );
            }
            let acting = Acting::open(ctx, as_, "--as", self.signer.as_deref())?;
            return Ok((None, Some(acting)));
        }
        let key = self
            .key_file
            .as_deref()
            .map(weft_client::home::read_key)
            .transpose()?;
        if !self.record {
            return Ok((key, None));
        }
        let Some(key) = key else {
            bail!(
                "recording the manifest on the ledger at {} needs a signer: --as ORG, or --sign \
                 KEY of a registered resource (or --no-record)",
                ctx.node
                    .clone()
                    .unwrap_or_else(|| ctx.home.display().to_string())
            );
        };
        if ctx.node.is_some() {
            bail!(
                "with --node, name the resource that records the manifest with --as ORG \
                 [--signer PERSON]; its key in --home signs the manifest"
            );
        }
        Ok((None, Some(acting_for_key(ctx, key)?)))
    }
}

/// The registered resource whose current key is `key`, acting for its organisation.
fn acting_for_key(ctx: &Globals, key: SigningKey) -> Result<Acting> {
    let home = Home::open(&ctx.home)?;
    let ledger = home.ledger()?;
    let public = key.public_key();
    let state = ledger.store().snapshot()?;
    let mut found = None;
    for id in ledger.store().resources_with_prefix(&[], usize::MAX)? {
        if state.key_status(&id, &public)? == Some(KeyStatus::Active) {
            let actor = state
                .resource(&id)?
                .and_then(|entry| entry.organization())
                .unwrap_or(id);
            found = Some((actor, id));
            break;
        }
    }
    drop(state);
    let Some((actor, signer)) = found else {
        bail!(
            "the --sign key {} is not the current key of any resource on the ledger at {}: \
             register it, or seal with --no-record",
            &public.to_hex()[..16],
            ctx.home.display()
        );
    };
    Ok(Acting {
        home,
        chain: Box::new(crate::chain::LocalChain::new(ledger, ctx.home.clone())),
        actor,
        signer,
        key,
    })
}

/// The data type a manifest is claimed as.
const MANIFEST_TYPE: &str = "GCODE_MANIFEST";
/// The data type sealed G-code is claimed as, when its manifest is recorded first.
const GCODE_TYPE: &str = "GCODE";

/// Claims the manifest's fingerprint (SHA-256 of the file as written) on the ledger.
fn record_manifest(
    ctx: &Globals,
    mut acting: Acting,
    manifest_path: &Path,
    manifest: &Manifest,
    text: &str,
    gcode: &[u8],
) -> Result<(Value, String)> {
    let fingerprint = Fingerprint::of_bytes(HashAlgo::Sha256, text.as_bytes());
    let issuer = acting.actor;
    let file_id = manifest_path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "manifest".into());
    let payload = Payload::RecordOwnership(RecordOwnership {
        issuer,
        product_data: DigitalAsset {
            fingerprint,
            public: false,
            doi: None,
            doi_no_redirect: None,
            file: File {
                id: file_id,
                version_ids: vec!["1".into()],
                descriptions: vec![format!(
                    "weft G-code manifest of {} ({} segments, file SHA-256 {})",
                    manifest.body.file_name,
                    manifest.body.segments.len(),
                    manifest.body.file_sha256
                )],
            },
            data_type: DataType::Other(MANIFEST_TYPE.into()),
        },
    });
    let quiet = Globals {
        home: ctx.home.clone(),
        home_given: ctx.home_given,
        node: ctx.node.clone(),
        ca: ctx.ca.clone(),
        out: Output {
            json: true,
            quiet: true,
        },
    };
    // The G-code itself is claimed first if nobody has: a manifest is believed only when
    // recorded by the owner of the G-code it describes (or a holder of a forwardable copy).
    let design = Fingerprint::of_bytes(HashAlgo::Sha256, gcode);
    let design_claim = if acting.chain.claim(&design)?.is_none() {
        let claim = Payload::RecordOwnership(RecordOwnership {
            issuer,
            product_data: DigitalAsset {
                fingerprint: design,
                public: false,
                doi: None,
                doi_no_redirect: None,
                file: File {
                    id: manifest.body.file_name.clone(),
                    version_ids: vec!["1".into()],
                    descriptions: vec![format!(
                        "G-code, {} bytes, sealed with a weft manifest",
                        manifest.body.file_bytes
                    )],
                },
                data_type: DataType::Other(GCODE_TYPE.into()),
            },
        });
        let signer = weft_ledger::Signer::Resource(acting.signer);
        Some(
            acting
                .chain
                .commit(&quiet, &acting.home, signer, &acting.key, claim)?,
        )
    } else {
        None
    };
    let tx_id = acting.commit(&quiet, payload)?;
    Ok((
        json!({"tx_id": tx_id.to_hex(), "fingerprint": fingerprint.to_string(), "issuer": issuer.to_hex(), "design": {"fingerprint": design.to_string(), "claimed_now": design_claim.map(|id| id.to_hex())}}),
        format!(
            "recorded on the ledger as transaction {tx_id} (fingerprint {fingerprint}){}",
            if design_claim.is_some() {
                "; the G-code claimed with it"
            } else {
                ""
            }
        ),
    ))
}

fn read_manifest(path: &Path) -> Result<(Manifest, Vec<u8>)> {
    let bytes = read_limited(path, weft_gcode::manifest::MAX_MANIFEST_BYTES, "manifest")?;
    let manifest =
        Manifest::from_json(&bytes).with_context(|| format!("manifest {}", path.display()))?;
    Ok((manifest, bytes))
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

fn emit_report(
    ctx: &Globals,
    report: &Report,
    manifest: &Manifest,
    ledger: Option<&(Value, String, bool)>,
) {
    let map = layer_map(report, manifest);
    let mut value = serde_json::to_value(report).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "ledger".into(),
            ledger.map_or(Value::Null, |(value, _, _)| value.clone()),
        );
    }
    ctx.out.emit(
        value,
        || {
            let checks = &report.checks;
            let unrecorded = ledger.is_some_and(|(_, _, ok)| !ok);
            format!(
                "{}{}: {} {} of {} layers (dimension {}, chain {}, benchmark {}, signature {})\n  {map}{}",
                report.status.to_uppercase(),
                if unrecorded { ", BUT NOT AS RECORDED ON THE LEDGER" } else { "" },
                report.input,
                report.found_layers,
                report.expected_layers,
                ok(checks.dimension),
                ok(checks.chain),
                ok(checks.benchmark),
                checks.signature.map_or("none", |v| if v { "ok" } else { "INVALID" }),
                ledger.map(|(_, human, _)| format!("\n  {human}")).unwrap_or_default(),
            )
        },
    );
}

fn ok(value: bool) -> &'static str {
    if value { "ok" } else { "FAILED" }
}

fn verify(ctx: &Globals, file: &Path, manifest_path: &Path, args: &AnchorArgs) -> Result<()> {
    let (manifest, manifest_bytes) = read_manifest(manifest_path)?;
    let ledger = Some(anchor(ctx, &manifest_bytes, &manifest, args, None)?);
    let container = is_container(file)?;
    let report = if container {
        weft_gcode::verify::verify_container(opener(file)()?, &manifest)
    } else {
        weft_gcode::verify::verify_plain(opener(file), &manifest, MAX_GCODE_BYTES)
    }
    .with_context(|| format!("{}", file.display()))?;
    // The G-code the ledger check is about is the manifest's `file_sha256`: plain G-code that
    // matches the manifest's segments must also be that file (a manifest could name one file's
    // hash and describe another's segments). A container's plaintext is checked so at `open`.
    let ledger = match ledger {
        Some((mut value, human, ok)) if !container && report.intact() => {
            let sha256 = crate::commands::fingerprint_file(file, HashAlgo::Sha256, &ctx.out)?;
            if hex::encode(sha256.digest) == manifest.body.file_sha256 {
                Some((value, human, ok))
            } else {
                value["anchored"] = json!(false);
                Some((
                    value,
                    format!(
                        "{human}\n  NOT ANCHORED: the file is not the one the manifest names (file_sha256)"
                    ),
                    false,
                ))
            }
        }
        other => other,
    };
    emit_report(ctx, &report, &manifest, ledger.as_ref());
    if report.intact() && ledger.as_ref().is_none_or(|(_, _, ok)| *ok) {
        Ok(())
    } else {
        Err(Negative.into())
    }
}

fn open(
    ctx: &Globals,
    file: &Path,
    key: Option<&Path>,
    manifest_path: &Path,
    out: &Path,
    receiver: Option<&str>,
    args: &AnchorArgs,
) -> Result<()> {
    let (manifest, manifest_bytes) = read_manifest(manifest_path)?;
    if receiver.is_none() && args.pinned.is_empty() {
        bail!(
            "name the receiver with --as ORG (it must be an intended recipient of the G-code), or \
             pin the manifest's signer with --trust-manifest-key KEY"
        );
    }
    {
        let (value, human, ok) = anchor(ctx, &manifest_bytes, &manifest, args, receiver)?;
        if !ok {
            ctx.out
                .emit(json!({"status": "refused", "ledger": value}), || {
                    format!("REFUSED: {human}; nothing was written")
                });
            return Err(Negative.into());
        }
    }
    let key = key.map(read_secret).transpose()?;
    if !is_container(file)? {
        bail!("{} is not a weft G-code container", file.display());
    }
    // The plaintext must be the G-code the manifest names (`file_sha256`), the one whose owner
    // the ledger check was about.
    let named = manifest.body.file_sha256.clone();
    let mismatch = |hash: &str| -> anyhow::Error {
        crate::output::Untrusted(format!(
            "the decrypted G-code has SHA-256 {hash}, not the {named} its manifest names: it is \
             not the G-code the ledger vouches for; nothing was kept"
        ))
        .into()
    };
    if out == Path::new("-") {
        // The G-code itself is the output: nothing else goes to standard output. Streamed, it
        // cannot be taken back: a mismatch is reported after it (use --out FILE to get nothing).
        let mut stdout = Hashing::new(std::io::BufWriter::new(crate::output::Stdout));
        weft_gcode::open::open_container(opener(file), &manifest, key.as_ref(), &mut stdout)?;
        stdout.flush()?;
        let hash = stdout.into_hex();
        if hash != named {
            return Err(mismatch(&hash));
        }
        return Ok(());
    }
    let mut written = 0;
    write_atomically(out, |f| {
        let mut writer = Hashing::new(std::io::BufWriter::new(f));
        (_, written) =
            weft_gcode::open::open_container(opener(file), &manifest, key.as_ref(), &mut writer)?;
        writer.flush()?;
        let hash = writer.into_hex();
        if hash != named {
            return Err(mismatch(&hash));
        }
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
