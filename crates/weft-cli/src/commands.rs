//! The embedded-mode commands. Each opens the ledger home, does one thing, prints the result.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use weft_api::{AssetReport, Verdict};
use weft_core::model::*;
use weft_core::{Fingerprint, Fingerprinter, HashAlgo, PublicKey, ResourceId, SigningKey, TxId};
use weft_ledger::{RuleError, Signer};

use crate::chain::{Chain, certainly_refused, register_resource};
use crate::context::Globals;
use crate::home::{Home, write_key};
use crate::output::{Negative, Output};

/// Fingerprints a file in constant memory, with a progress bar for large files on a terminal.
pub fn fingerprint_file(path: &Path, algo: HashAlgo, out: &Output) -> Result<Fingerprint> {
    let mut file =
        fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let metadata = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if metadata.is_dir() {
        bail!("{} is a directory, not a file", path.display());
    }
    let bar = if metadata.len() > 64 << 20 {
        out.progress(metadata.len(), "fingerprinting")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut fingerprinter = Fingerprinter::new(algo);
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if read == 0 {
            break;
        }
        fingerprinter.update(&buffer[..read]);
        bar.inc(read as u64);
    }
    bar.finish_and_clear();
    Ok(fingerprinter.finish())
}

/// The resource that signs for `actor`: the actor itself, or `--signer PERSON` of that organisation.
fn signer_for(
    home: &Home,
    chain: &dyn Chain,
    actor: ResourceId,
    signer: Option<&str>,
) -> Result<(ResourceId, SigningKey)> {
    let Some(signer) = signer else {
        return Ok((actor, home.resource_key(&actor)?));
    };
    let person = chain.resolve(signer, "--signer")?;
    match chain
        .organization_of(&person)?
        .context("--signer is not registered")?
    {
        Some(organization) if organization == actor => Ok((person, home.resource_key(&person)?)),
        Some(_) => bail!("--signer {person} does not belong to organization {actor}"),
        None => bail!("--signer {person} is an organization, not a person"),
    }
}

/// A command acting for a resource: the opened home and chain, the acting resource, and the
/// resource (itself, or `--signer PERSON` of it) whose key signs.
pub(crate) struct Acting {
    pub(crate) home: Home,
    pub(crate) chain: Box<dyn Chain>,
    pub(crate) actor: ResourceId,
    pub(crate) signer: ResourceId,
    pub(crate) key: SigningKey,
}

impl Acting {
    pub(crate) fn open(
        ctx: &Globals,
        actor: &str,
        role: &str,
        signer: Option<&str>,
    ) -> Result<Self> {
        let home = Home::open(&ctx.home)?;
        let chain = crate::chain::open(ctx)?;
        let actor = chain.resolve(actor, role)?;
        let (signer, key) = signer_for(&home, chain.as_ref(), actor, signer)?;
        Ok(Acting {
            home,
            chain,
            actor,
            signer,
            key,
        })
    }

    fn resolve(&self, input: &str, role: &str) -> Result<ResourceId> {
        self.chain.resolve(input, role)
    }

    pub(crate) fn commit(mut self, ctx: &Globals, payload: Payload) -> Result<TxId> {
        let signer = Signer::Resource(self.signer);
        self.chain
            .commit(ctx, &self.home, signer, &self.key, payload)
    }
}

pub fn init(ctx: &Globals, chain_name: &str, time_window_secs: u64) -> Result<()> {
    let (home, ledger) = Home::init(&ctx.home, chain_name, time_window_secs)?;
    let head = ledger.head();
    ctx.out.emit(
        json!({
            "home": home.dir.display().to_string(),
            "chain_name": chain_name,
            "chain_id": ledger.chain_id().to_hex(),
            "genesis_hash": head.header.hash().to_hex(),
            "producer": head.header.producer.to_hex(),
        }),
        || {
            format!(
                "initialised ledger {:?} in {}\n  chain id     {}\n  genesis hash {}\n  producer key {}",
                chain_name,
                home.dir.display(),
                ledger.chain_id(),
                head.header.hash(),
                head.header.producer
            )
        },
    );
    Ok(())
}

fn register(
    ctx: &Globals,
    home: &Home,
    chain: &mut dyn Chain,
    signer: Signer,
    key: &SigningKey,
    resource: Resource,
) -> Result<ResourceId> {
    let (id, position) = register_resource(home, chain, signer, key, resource, |_| Ok(()))?;
    let key_path = home.resource_key_path(&id);
    ctx.out.emit(json!({"id": id.to_hex(), "tx_id": id.to_hex(), "height": position.height, "key_file": key_path.display().to_string()}), || {
        format!("registered {id}\n  key file {}", key_path.display())
    });
    Ok(id)
}

#[derive(Debug, Clone, Default)]
pub struct OrgArgs {
    pub name: String,
    pub country: String,
    pub town: String,
    pub street: Option<String>,
    pub street_number: Option<String>,
    pub postal_code: Option<String>,
    pub region: Option<String>,
    pub postal_box: Option<String>,
    pub website: Option<String>,
}

pub fn org_add(ctx: &Globals, args: OrgArgs) -> Result<ResourceId> {
    let home = Home::open(&ctx.home)?;
    let mut chain = crate::chain::open(ctx)?;
    let organization = Organization {
        name: Some(args.name),
        website: args.website,
        address: Address {
            street: args.street,
            street_number: args.street_number,
            town: args.town,
            region: args.region,
            postal_code: args.postal_code,
            postal_box: args.postal_box,
            country: args.country,
        },
    };
    let authority = home.authority_key()?;
    register(
        ctx,
        &home,
        chain.as_mut(),
        Signer::Authority,
        &authority,
        Resource::Organization(organization),
    )
}

pub fn person_add(
    ctx: &Globals,
    org: &str,
    first: Option<String>,
    last: Option<String>,
    email: Option<String>,
) -> Result<ResourceId> {
    let home = Home::open(&ctx.home)?;
    let mut chain = crate::chain::open(ctx)?;
    let organization = chain.resolve(org, "--org")?;
    let key = home.resource_key(&organization)?;
    let person = PersonInOrganization {
        first_name: first,
        last_name: last,
        email,
        belongs_to: organization,
    };
    register(
        ctx,
        &home,
        chain.as_mut(),
        Signer::Resource(organization),
        &key,
        Resource::PersonInOrganization(person),
    )
}

#[derive(Debug, Clone, Default)]
pub struct AssetArgs {
    pub data_type: Option<String>,
    pub file_id: Option<String>,
    pub version_ids: Vec<String>,
    pub descriptions: Vec<String>,
    pub public: bool,
    pub doi: Option<String>,
    pub doi_no_redirect: Option<String>,
    pub algo: HashAlgo,
}

fn build_asset(file: &Path, fingerprint: Fingerprint, args: AssetArgs) -> Result<DigitalAsset> {
    if !args.public && (args.doi.is_some() || args.doi_no_redirect.is_some()) {
        bail!(
            "--doi and --doi-no-redirect need --public: a DOI points at publicly available content"
        );
    }
    let data_type = match args.data_type {
        Some(text) => text.parse::<DataType>().context("--type")?,
        None => DataType::Geometry3d,
    };
    let default_id = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let asset = DigitalAsset {
        fingerprint,
        public: args.public,
        doi: args.doi,
        doi_no_redirect: args.doi_no_redirect,
        file: File {
            id: args.file_id.unwrap_or(default_id),
            version_ids: if args.version_ids.is_empty() {
                vec!["1".into()]
            } else {
                args.version_ids
            },
            descriptions: args.descriptions,
        },
        data_type,
    };
    Ok(asset)
}

pub fn claim(
    ctx: &Globals,
    file: &Path,
    as_: &str,
    signer: Option<&str>,
    asset_args: AssetArgs,
) -> Result<TxId> {
    let acting = Acting::open(ctx, as_, "--as", signer)?;
    let issuer = acting.actor;
    let fingerprint = fingerprint_file(file, asset_args.algo, &ctx.out)?;
    let product_data = build_asset(file, fingerprint, asset_args)?;
    let payload = Payload::RecordOwnership(RecordOwnership {
        issuer,
        product_data,
    });
    acting.commit(ctx, payload)
}

pub fn send(
    ctx: &Globals,
    file: &Path,
    from: &str,
    to: &str,
    forward: bool,
    signer: Option<&str>,
    algo: HashAlgo,
) -> Result<TxId> {
    let acting = Acting::open(ctx, from, "--from", signer)?;
    let from = acting.actor;
    let to = acting.resolve(to, "--to")?;
    let fingerprint = fingerprint_file(file, algo, &ctx.out)?;
    let product_data = match acting.chain.claimed_asset(&fingerprint)? {
        Some(asset) => asset,
        None => build_asset(
            file,
            fingerprint,
            AssetArgs {
                algo,
                ..AssetArgs::default()
            },
        )?,
    };
    let payload = Payload::SendProductData(SendProductData {
        from,
        to,
        forward,
        product_data,
    });
    acting.commit(ctx, payload)
}

pub fn record_add(
    ctx: &Globals,
    as_: &str,
    signer: Option<&str>,
    body_file: &Path,
    content_type: String,
    product_code: Option<String>,
) -> Result<TxId> {
    let acting = Acting::open(ctx, as_, "--as", signer)?;
    let issuer = acting.actor;
    let size = fs::metadata(body_file)
        .with_context(|| format!("cannot read {}", body_file.display()))?
        .len();
    if size > MAX_RECORD_BODY as u64 {
        bail!(
            "{} is {size} bytes; a record body is at most {MAX_RECORD_BODY} bytes (claim large files by fingerprint instead)",
            body_file.display()
        );
    }
    let body =
        fs::read(body_file).with_context(|| format!("cannot read {}", body_file.display()))?;
    let payload = Payload::Record(Record {
        issuer,
        content_type,
        product_code,
        body,
    });
    acting.commit(ctx, payload)
}

pub fn part_register(
    ctx: &Globals,
    code: String,
    as_: &str,
    signer: Option<&str>,
    description: Option<String>,
) -> Result<TxId> {
    let acting = Acting::open(ctx, as_, "--as", signer)?;
    let owner = acting.actor;
    let payload = Payload::RegisterPart(RegisterPart {
        owner,
        code,
        description,
    });
    acting.commit(ctx, payload)
}

pub fn part_transfer(
    ctx: &Globals,
    code: String,
    from: &str,
    to: &str,
    signer: Option<&str>,
) -> Result<TxId> {
    let acting = Acting::open(ctx, from, "--from", signer)?;
    let from = acting.actor;
    let to = acting.resolve(to, "--to")?;
    let payload = Payload::TransferPart(TransferPart { code, from, to });
    acting.commit(ctx, payload)
}

pub fn key_rotate(ctx: &Globals, resource: &str) -> Result<()> {
    let home = Home::open(&ctx.home)?;
    let mut chain = crate::chain::open(ctx)?;
    let resource = chain.resolve(resource, "--resource")?;
    let old_key = home.resource_key(&resource)?;
    let new_key = SigningKey::generate()?;
    let path = home.resource_key_path(&resource);
    let pending = path.with_extension("key.new");
    let _ = fs::remove_file(&pending);
    write_key(&pending, &new_key)?;
    let payload = Payload::RotateKey(RotateKey {
        resource,
        new_key: new_key.public_key(),
    });
    match chain.commit(ctx, &home, Signer::Resource(resource), &old_key, payload) {
        Ok(_) => {
            fs::rename(&pending, &path).with_context(|| {
                format!(
                    "rotated on the ledger, but cannot move {} to {}",
                    pending.display(),
                    path.display()
                )
            })?;
            Ok(())
        }
        Err(error) if certainly_refused(&error) => {
            let _ = fs::remove_file(&pending);
            Err(error)
        }
        Err(error) => Err(error.context(format!(
            "the rotation may or may not have been committed; the new key is kept in {}",
            pending.display()
        ))),
    }
}

pub fn key_revoke(ctx: &Globals, resource: &str, key: &str, signer: Option<&str>) -> Result<()> {
    let home = Home::open(&ctx.home)?;
    let mut chain = crate::chain::open(ctx)?;
    let resource = chain.resolve(resource, "--resource")?;
    let revoked = PublicKey::from_hex(key).context("--key")?;
    let (signer_id, signing_key) = match signer {
        Some(signer) => {
            let id = chain.resolve(signer, "--signer")?;
            (Signer::Resource(id), home.resource_key(&id)?)
        }
        None => (Signer::Resource(resource), home.resource_key(&resource)?),
    };
    chain.commit(
        ctx,
        &home,
        signer_id,
        &signing_key,
        Payload::RevokeKey(RevokeKey {
            resource,
            key: revoked,
        }),
    )?;
    Ok(())
}

pub(crate) use weft_node::query::format_time;

/// Finds which algorithm's fingerprint of `file` the chain knows (SHA-256 first), with its
/// report.
fn known_fingerprint(
    chain: &dyn Chain,
    file: &Path,
    algo: Option<HashAlgo>,
    as_id: Option<ResourceId>,
    out: &Output,
) -> Result<(Fingerprint, AssetReport)> {
    let candidates: Vec<HashAlgo> = match algo {
        Some(algo) => vec![algo],
        None => HashAlgo::ALL.to_vec(),
    };
    let mut first = None;
    for algo in candidates {
        let fingerprint = fingerprint_file(file, algo, out)?;
        let report = chain.asset_report(&fingerprint, as_id)?;
        if !report.history.is_empty() {
            return Ok((fingerprint, report));
        }
        first.get_or_insert((fingerprint, report));
    }
    first.context("no fingerprint algorithm to try")
}

/// `weft verify`: exits non-zero unless the verdict is `valid`.
pub fn verify(ctx: &Globals, file: &Path, as_: Option<&str>, algo: Option<HashAlgo>) -> Result<()> {
    if verdict(ctx, file, as_, algo)? == "valid" {
        Ok(())
    } else {
        Err(Negative.into())
    }
}

/// The NIST validation process: prints the report and returns the verdict
/// (`valid`, `unknown` or `not_recipient`).
pub fn verdict(
    ctx: &Globals,
    file: &Path,
    as_: Option<&str>,
    algo: Option<HashAlgo>,
) -> Result<String> {
    let chain = crate::chain::open(ctx)?;
    let as_id = as_.map(|text| chain.resolve(text, "--as")).transpose()?;
    let (fingerprint, report) = known_fingerprint(chain.as_ref(), file, algo, as_id, &ctx.out)?;
    let verdict = report.verdict;
    let owner_label = report.owner_label.clone();
    let lines: Vec<String> = report
        .history
        .iter()
        .map(weft_node::query::history_line)
        .collect();
    // The report without the owner's label and the claimed asset, which the text shows.
    let mut value = serde_json::to_value(&report).context("the report")?;
    if let Some(object) = value.as_object_mut() {
        object.remove("owner_label");
        object.remove("product_data");
    }
    ctx.out.emit(value, || {
        let mut text = match verdict {
            Verdict::Valid => format!("VALID  {} is on the ledger", file.display()),
            Verdict::NotRecipient => format!("NOT RECIPIENT  {} is on the ledger, but was never validly sent to you", file.display()),
            Verdict::Unknown => format!(
                "UNKNOWN  {} is not on the ledger: it was never recorded, or it was altered. Do not use it.",
                file.display()
            ),
        };
        text.push_str(&format!("\n  fingerprint {fingerprint}"));
        if let Some(owner) = &owner_label {
            text.push_str(&format!("\n  owner       {owner}\n  history:\n{}", lines.join("\n")));
        }
        text
    });
    Ok(verdict.as_str().to_string())
}

pub fn history(ctx: &Globals, target: &str, algo: Option<HashAlgo>) -> Result<()> {
    let chain = crate::chain::open(ctx)?;
    let path = Path::new(target);
    let (fingerprint, report) = if path.exists() {
        known_fingerprint(chain.as_ref(), path, algo, None, &ctx.out)?
    } else {
        let fingerprint = target.parse::<Fingerprint>().with_context(|| {
            format!("{target:?} is neither an existing file nor a fingerprint (algo:hex)")
        })?;
        let report = chain.asset_report(&fingerprint, None)?;
        (fingerprint, report)
    };
    let history = report.history;
    let lines: Vec<String> = history.iter().map(weft_node::query::history_line).collect();
    ctx.out.emit(
        json!({"fingerprint": fingerprint.to_string(), "history": history}),
        || {
            if lines.is_empty() {
                format!("{fingerprint}: no transactions")
            } else {
                format!(
                    "{fingerprint}: {} transaction(s)\n{}",
                    lines.len(),
                    lines.join("\n")
                )
            }
        },
    );
    Ok(())
}

pub fn tx_show(ctx: &Globals, id: &str) -> Result<()> {
    let chain = crate::chain::open(ctx)?;
    let id = chain.resolve_tx(id, "TX_ID")?;
    let Some(answer) = chain.transaction(&id)? else {
        bail!("transaction {id} is not on {}", chain.place());
    };
    let (kind, height, index) = (answer.kind.clone(), answer.height, answer.index);
    let time = format_time(answer.time);
    // The transaction without its proof (`weft proof` writes that).
    let mut value = serde_json::to_value(&answer).context("the transaction")?;
    if let Some(object) = value.as_object_mut() {
        object.remove("proof");
    }
    ctx.out.emit(value, || {
        format!("transaction {id}\n  {kind} in block {height} at index {index}\n  time {time}")
    });
    Ok(())
}

pub fn proof_build(ctx: &Globals, id: &str, out_file: Option<&Path>) -> Result<()> {
    let chain = crate::chain::open(ctx)?;
    let id = chain.resolve_tx(id, "TX_ID")?;
    let Some(answer) = chain.transaction(&id)? else {
        bail!("transaction {id} is not on {}", chain.place());
    };
    let document: weft_ledger::proof::InclusionProof =
        serde_json::from_value(answer.proof).context("the inclusion proof")?;
    let text = serde_json::to_string_pretty(&document).expect("proofs serialise");
    match out_file {
        Some(path) => {
            let temporary = path.with_extension("tmp");
            fs::write(&temporary, &text)
                .with_context(|| format!("cannot write {}", temporary.display()))?;
            fs::rename(&temporary, path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            ctx.out.emit(json!({"tx_id": id.to_hex(), "out": path.display().to_string(), "height": document.height}), || {
                format!("wrote inclusion proof of {id} (block {}) to {}", document.height, path.display())
            });
        }
        None => crate::output::outln!("{text}"),
    }
    Ok(())
}

/// The bytes of a proof file, refusing an oversized one before reading it.
fn read_proof(file: &Path) -> Result<Vec<u8>> {
    let metadata = fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if metadata.len() > weft_ledger::proof::MAX_PROOF_BYTES as u64 {
        bail!(
            "{} is {} bytes; a proof is at most {} bytes",
            file.display(),
            metadata.len(),
            weft_ledger::proof::MAX_PROOF_BYTES
        );
    }
    fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

/// `weft proof verify FILE…`: one file reports as before; several are checked together (their
/// signatures in Ed25519 batches) and reported one by one.
pub fn proof_verify(ctx: &Globals, files: &[PathBuf], trusted: &[String]) -> Result<()> {
    let trusted: Vec<PublicKey> = trusted
        .iter()
        .map(|key| PublicKey::from_hex(key).context("--producer-key"))
        .collect::<Result<_>>()?;
    let trusted_slice = (!trusted.is_empty()).then_some(trusted.as_slice());
    let pin_hint = if trusted.is_empty() {
        "  (pass --producer-key to pin the producers you trust)"
    } else {
        ""
    };
    let hint = if trusted.is_empty() {
        pin_hint
    } else {
        ", a trusted key"
    };
    if let [file] = files {
        // A file that cannot be read is an error (exit 1); one that is not a valid proof is a
        // negative verdict (exit 4).
        let bytes = read_proof(file)?;
        let result = weft_ledger::proof::parse(&bytes)
            .and_then(|document| weft_ledger::proof::verify(&document, trusted_slice));
        return match result {
            Ok(verified) => {
                ctx.out.emit(json!(ProofReport::valid(None, &verified)), || {
                    format!(
                        "VALID  transaction {} ({}) is in block {} ({})\n  sealed by producer {}{hint}",
                        verified.tx_id,
                        verified.transaction.header.kind.name(),
                        verified.height,
                        verified.block_hash,
                        verified.producer,
                    )
                });
                Ok(())
            }
            Err(error) => {
                let reason = format!("{error:#}");
                let report = ProofReport::invalid(None, reason.clone());
                ctx.out.emit(json!(report), || format!("INVALID  {reason}"));
                Err(Negative.into())
            }
        };
    }
    let documents: Vec<Result<weft_ledger::proof::InclusionProof>> = files
        .iter()
        .map(|file| Ok(weft_ledger::proof::parse(&read_proof(file)?)?))
        .collect();
    let parsed: Vec<weft_ledger::proof::InclusionProof> = documents
        .iter()
        .filter_map(|document| document.as_ref().ok().cloned())
        .collect();
    let mut verdicts = weft_ledger::proof::verify_many(&parsed, trusted_slice).into_iter();
    let mut reports = Vec::with_capacity(files.len());
    let mut lines = Vec::with_capacity(files.len());
    let mut all_valid = true;
    for (file, document) in files.iter().zip(documents) {
        let verdict = match document {
            Ok(_) => verdicts
                .next()
                .expect("one verdict per parsed proof")
                .map_err(anyhow::Error::from),
            Err(error) => Err(error),
        };
        match verdict {
            Ok(verified) => {
                reports.push(ProofReport::valid(Some(file), &verified));
                lines.push(format!(
                    "VALID    {}: transaction {} in block {}",
                    file.display(),
                    verified.tx_id,
                    verified.height
                ));
            }
            Err(error) => {
                all_valid = false;
                let reason = format!("{error:#}");
                lines.push(format!("INVALID  {}: {reason}", file.display()));
                reports.push(ProofReport::invalid(Some(file), reason));
            }
        }
    }
    let valid_count = reports.iter().filter(|report| report.valid).count();
    ctx.out.emit(
        json!({"valid": all_valid, "checked": reports.len(), "valid_count": valid_count, "proofs": reports}),
        || {
            format!(
                "{}\n{valid_count} of {} proofs valid{}",
                lines.join("\n"),
                files.len(),
                pin_hint
            )
        },
    );
    if all_valid {
        Ok(())
    } else {
        Err(Negative.into())
    }
}

/// `weft proof verify --json`: one proof's verdict (with its file when several are checked).
#[derive(serde::Serialize)]
struct ProofReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    valid: bool,
    /// Why it is not valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(flatten)]
    verified: Option<VerifiedProof>,
}

/// What a valid proof proves.
#[derive(serde::Serialize)]
struct VerifiedProof {
    tx_id: TxId,
    height: u64,
    block_hash: weft_core::BlockHash,
    producer: PublicKey,
    kind: &'static str,
}

impl ProofReport {
    fn valid(file: Option<&Path>, verified: &weft_ledger::proof::VerifiedInclusion) -> Self {
        ProofReport {
            file: file.map(|file| file.display().to_string()),
            valid: true,
            reason: None,
            verified: Some(VerifiedProof {
                tx_id: verified.tx_id,
                height: verified.height,
                block_hash: verified.block_hash,
                producer: verified.producer,
                kind: verified.transaction.header.kind.name(),
            }),
        }
    }

    fn invalid(file: Option<&Path>, reason: String) -> Self {
        ProofReport {
            file: file.map(|file| file.display().to_string()),
            valid: false,
            reason: Some(reason),
            verified: None,
        }
    }
}

pub fn chain_info(ctx: &Globals) -> Result<()> {
    let info = crate::chain::open(ctx)?.chain_info()?;
    let keys = |keys: &[PublicKey]| {
        keys.iter()
            .map(PublicKey::to_hex)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut line = format!(
        "chain {:?} ({})\n  time window ±{} s\n  authorities {}\n  producers   {}\n  validators  {} (epoch {})\n  head        block {} ({}), {}",
        info.chain_name,
        info.chain_id,
        info.time_window_secs,
        keys(&info.authorities),
        keys(&info.producers),
        keys(&info.validators),
        info.epoch,
        info.height,
        info.head_hash,
        info.head_time,
    );
    for change in &info.scheduled {
        line.push_str(&format!(
            "\n  scheduled   from block {}: {} (set at block {})",
            change.from_height,
            keys(&change.validators),
            change.scheduled_at,
        ));
    }
    ctx.out.emit(
        serde_json::to_value(&info).context("the chain's parameters")?,
        || line,
    );
    Ok(())
}

pub fn chain_verify(ctx: &Globals) -> Result<()> {
    if let Some(url) = &ctx.node {
        bail!(
            "weft chain verify re-checks the blocks in a home's own files, and --node {url} \
             names a node: run it on that node's home while the node is stopped, or check single transactions through the node with `weft proof TX_ID` and \
             `weft proof verify`"
        );
    }
    let home = Home::open(&ctx.home)?;
    let ledger = home.ledger()?;
    let total = ledger.head().header.height + 1;
    let bar = if total > 1000 {
        ctx.out.progress(total, "auditing blocks")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let report = weft_ledger::audit::audit(ledger.store(), &mut |done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    ctx.out.emit(
        serde_json::to_value(&report).expect("reports serialise"),
        || match &report.first_bad {
            None if report.stripped == 0 => format!(
                "OK  {} blocks and {} transactions re-verified from genesis",
                report.blocks, report.transactions
            ),
            None => format!(
                "OK  {} blocks and {} transactions re-verified from genesis: links, Merkle \
                 roots, seals and signatures of all; {} are stored stripped on this node, so \
                 the business rules were replayed through block {} (before the first of them)",
                report.blocks,
                report.transactions,
                report.stripped,
                report
                    .rules_checked_through
                    .map_or("-".to_string(), |height| height.to_string())
            ),
            Some(bad) => format!(
                "FAILED  first bad block {}{}{}\n  {}",
                bad.height,
                bad.index
                    .map(|index| format!(", transaction {index}"))
                    .unwrap_or_default(),
                bad.tx_id
                    .as_ref()
                    .map(|id| format!(" ({id})"))
                    .unwrap_or_default(),
                bad.reason
            ),
        },
    );
    if report.ok {
        Ok(())
    } else {
        Err(Negative.into())
    }
}

/// `{"error": {...}}` for a failed command, and its exit code.
pub fn error_report(error: &anyhow::Error) -> (Value, String, i32) {
    use crate::output::exit;
    if error.downcast_ref::<Negative>().is_some() {
        return (Value::Null, String::new(), exit::NEGATIVE);
    }
    if let Some(remote) = crate::client::remote_rule(error) {
        return (
            json!({"error": {"rule": remote.rule, "message": remote.message}}),
            format!("rejected: {}", remote.message),
            exit::REJECTED,
        );
    }
    let rule = error
        .downcast_ref::<RuleError>()
        .cloned()
        .or_else(|| match error.downcast_ref::<weft_ledger::LedgerError>() {
            Some(weft_ledger::LedgerError::Rule(rule)) => Some(rule.clone()),
            _ => None,
        });
    match rule {
        Some(rule) => (
            json!({"error": {"rule": rule.rule(), "message": rule.to_string()}}),
            format!("rejected: {rule}"),
            exit::REJECTED,
        ),
        None => {
            let message = format!("{error:#}");
            (
                json!({"error": {"rule": null, "message": message}}),
                format!("error: {message}"),
                exit::ERROR,
            )
        }
    }
}
