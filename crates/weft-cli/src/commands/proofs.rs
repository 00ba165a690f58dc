//! `weft tx`, `weft proof`, `weft proof verify`: transactions and their inclusion proofs.

use super::*;

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
