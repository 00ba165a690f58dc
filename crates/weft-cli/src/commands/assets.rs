//! `weft claim`, `weft send`, `weft record add`, `weft verify`, `weft history`: product data, who owns it and who received it.

use super::*;

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
pub fn verify(
    ctx: &Globals,
    file: &Path,
    as_: Option<&str>,
    algo: Option<HashAlgo>,
    trust: &[PathBuf],
) -> Result<()> {
    // A claimed file valid for the recipient, or a record: both are on the ledger as they are.
    if matches!(
        verdict(ctx, file, as_, algo, trust)?.as_str(),
        "valid" | "recorded"
    ) {
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
    trust: &[PathBuf],
) -> Result<String> {
    let roots = roots(ctx, trust)?;
    let chain = crate::chain::open(ctx)?;
    let as_id = as_.map(|text| chain.resolve(text, "--as")).transpose()?;
    let (fingerprint, mut report) = known_fingerprint(chain.as_ref(), file, algo, as_id, &ctx.out)?;
    // Nothing is shown before every transaction behind it is proven and the verdict recomputed.
    let checked = checked_report(chain.as_ref(), &roots, &fingerprint, as_id, &mut report)?;
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
        object.insert("checked".into(), serde_json::to_value(&checked)?);
    }
    let record = report
        .history
        .iter()
        .find(|entry| entry.kind == "Record")
        .map(|entry| {
            format!(
                "recorded by {} at {}, signed by {} (tx {})",
                entry.issuer_label.as_deref().unwrap_or("?"),
                entry.time_utc,
                entry.signer,
                entry.tx_id
            )
        });
    ctx.out.emit(value, || {
        let mut text = match verdict {
            Verdict::Valid => format!("VALID  {} is on the ledger", file.display()),
            Verdict::Recorded => format!(
                "RECORDED  {} is on the ledger as a record: {}",
                file.display(),
                record.as_deref().unwrap_or("?")
            ),
            Verdict::NotRecipient => format!("NOT RECIPIENT  {} is on the ledger, but was never validly sent to you", file.display()),
            Verdict::Unknown => format!(
                "UNKNOWN  {} is not on the ledger: it was never recorded, or it was altered. Do not use it.",
                file.display()
            ),
        };
        text.push_str(&format!("\n  fingerprint {fingerprint}"));
        if let Some(owner) = &owner_label {
            text.push_str(&format!("\n  owner       {owner}\n  history:\n{}", lines.join("\n")));
        } else if !lines.is_empty() {
            text.push_str(&format!("\n  history:\n{}", lines.join("\n")));
        }
        text
    });
    Ok(verdict.as_str().to_string())
}

pub fn history(
    ctx: &Globals,
    target: &str,
    algo: Option<HashAlgo>,
    trust: &[PathBuf],
) -> Result<()> {
    let roots = roots(ctx, trust)?;
    let chain = crate::chain::open(ctx)?;
    let path = Path::new(target);
    let (fingerprint, mut report) = if path.exists() {
        known_fingerprint(chain.as_ref(), path, algo, None, &ctx.out)?
    } else {
        let fingerprint = target.parse::<Fingerprint>().with_context(|| {
            format!("{target:?} is neither an existing file nor a fingerprint (algo:hex)")
        })?;
        let report = chain.asset_report(&fingerprint, None)?;
        (fingerprint, report)
    };
    let checked = checked_report(chain.as_ref(), &roots, &fingerprint, None, &mut report)?;
    let history = report.history;
    let lines: Vec<String> = history.iter().map(weft_node::query::history_line).collect();
    ctx.out.emit(
        json!({"fingerprint": fingerprint.to_string(), "history": history, "checked": checked}),
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
