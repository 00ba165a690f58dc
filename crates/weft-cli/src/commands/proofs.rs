//! `weft tx`, `weft proof`, `weft proof verify`: transactions and their inclusion proofs.

use super::*;

pub fn tx_show(ctx: &Globals, id: &str, trust_files: &[PathBuf]) -> Result<()> {
    let roots = roots(ctx, trust_files)?;
    let chain = crate::chain::open(ctx)?;
    let id = chain.resolve_tx(id, "TX_ID")?;
    let Some(answer) = chain.transaction(&id)? else {
        bail!("transaction {id} is not on {}", chain.place());
    };
    // The answer is shown only if its proof holds and says what the answer says.
    let document: weft_ledger::proof::InclusionProof = serde_json::from_value(answer.proof.clone())
        .map_err(|error| {
            crate::output::Untrusted(format!(
                "{} answered without a proof of {id}: {error}",
                chain.place()
            ))
        })?;
    let pinned = root_for(&roots, &chain.chain_id()?.to_hex())?;
    let verified = checked(&chain.place(), pinned, &document, &id)?;
    if verified.height != answer.height
        || verified.index != answer.index
        || verified.transaction.header.kind.name() != answer.kind
        || verified.transaction.header.time_of_tx != answer.time
        || answer.payload.as_ref().is_some_and(|payload| {
            weft_ledger::tx::payload_hash(&weft_core::encoding::encode(payload))
                != verified.transaction.header.payload_hash
        })
    {
        return Err(crate::output::Untrusted(format!(
            "{} answered with a position, kind, time or payload of {id} that its own proof contradicts",
            chain.place()
        ))
        .into());
    }
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

pub fn proof_build(
    ctx: &Globals,
    id: &str,
    out_file: Option<&Path>,
    trust_files: &[PathBuf],
    tlog: Option<&[String]>,
) -> Result<()> {
    let roots = roots(ctx, trust_files)?;
    let chain = crate::chain::open(ctx)?;
    let id = chain.resolve_tx(id, "TX_ID")?;
    if let Some(also) = tlog {
        return tlog_build(ctx, chain.as_ref(), &roots, &id, out_file, also);
    }
    let Some(answer) = chain.transaction(&id)? else {
        bail!("transaction {id} is not on {}", chain.place());
    };
    let document: weft_ledger::proof::InclusionProof =
        serde_json::from_value(answer.proof).context("the inclusion proof")?;
    // Checked before it is written: a proof that does not hold is not handed on.
    checked(
        &chain.place(),
        root_for(&roots, &chain.chain_id()?.to_hex())?,
        &document,
        &id,
    )?;
    let text = serde_json::to_string_pretty(&document).expect("proofs serialise");
    match out_file {
        Some(path) => {
            write_whole(path, text.as_bytes())?;
            ctx.out.emit(json!({"tx_id": id.to_hex(), "out": path.display().to_string(), "height": document.height}), || {
                format!("wrote inclusion proof of {id} (block {}) to {}", document.height, path.display())
            });
        }
        None => crate::output::outln!("{text}"),
    }
    Ok(())
}

/// `weft proof TX --tlog`: the transaction's C2SP tlog-proof, checked before it is written.
fn tlog_build(
    ctx: &Globals,
    chain: &dyn crate::chain::Chain,
    roots: &[weft_client::trust::Pinned],
    id: &TxId,
    out_file: Option<&Path>,
    also: &[String],
) -> Result<()> {
    let place = chain.place();
    let Some(text) = chain.tlog_proof(id, None)? else {
        bail!("transaction {id} is not on {place}");
    };
    let mut parsed =
        weft_ledger::checkpoint::TlogProof::parse(text.as_bytes()).map_err(|error| {
            crate::output::Untrusted(format!(
                "{place} answered with a malformed tlog-proof: {error}"
            ))
        })?;
    // The other validators' signatures on the same checkpoint.
    let size = weft_ledger::checkpoint::Checkpoint::parse(&parsed.note.text)?.size;
    add_signatures(ctx, &place, &mut parsed.note, size, also)?;
    let text = parsed.to_text();
    let pinned = root_for(roots, &chain.chain_id()?.to_hex())?;
    let verified = weft_ledger::checkpoint::verify_tlog_proof(
        &parsed,
        &pinned.root,
        &weft_node::net::finality::Certificates,
    )
    .map_err(|error| {
        crate::output::Untrusted(format!(
            "{place} answered with a tlog-proof of {id} that does not check: {error}{}",
            if error.to_string().contains("are needed") {
                " (a checkpoint of a network needs a quorum of validators' signatures: gather \
                 them with --also URL)"
            } else {
                ""
            }
        ))
    })?;
    if verified.inclusion.tx_id != *id {
        return Err(crate::output::Untrusted(format!(
            "{place} answered with a proof of another transaction"
        ))
        .into());
    }
    match out_file {
        Some(path) => {
            write_whole(path, text.as_bytes())?;
            ctx.out.emit(
                json!({"tx_id": id.to_hex(), "out": path.display().to_string(), "height": verified.inclusion.height, "checkpoint_size": verified.checkpoint.checkpoint.size}),
                || format!("wrote the tlog-proof of {id} (block {}, checkpoint of {} blocks) to {}", verified.inclusion.height, verified.checkpoint.checkpoint.size, path.display()),
            );
        }
        None => crate::output::print(&text),
    }
    Ok(())
}

/// Checks a proof a chain (a node, or the home's ledger) gave for transaction `id` against the
/// trust root of that chain (`pinned`: chosen by the chain asked, not by the proof, so a node
/// cannot pass off another pinned chain's transactions as its own); a proof that does not hold
/// names the place that gave it (exit 4).
pub(crate) fn checked(
    place: &str,
    pinned: &weft_client::trust::Pinned,
    document: &weft_ledger::proof::InclusionProof,
    id: &TxId,
) -> Result<weft_ledger::proof::VerifiedInclusion> {
    let verified = weft_ledger::proof::verify(
        document,
        &pinned.root,
        &weft_node::net::finality::Certificates,
    )
    .map_err(|error| {
        crate::output::Untrusted(format!(
            "{place} answered with a proof of {id} that does not check against the trust root \
             of chain {:?} ({}): {error}",
            pinned.root.chain,
            pinned.source.display()
        ))
    })?;
    if verified.tx_id != *id {
        return Err(crate::output::Untrusted(format!(
            "{place} answered with a proof of {} when asked for {id}",
            verified.tx_id
        ))
        .into());
    }
    Ok(verified)
}

/// The bytes of a proof file, refusing one over `limit` bytes before reading it.
fn read_proof(file: &Path, limit: usize) -> Result<Vec<u8>> {
    let metadata = fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if metadata.len() > limit as u64 {
        bail!(
            "{} is {} bytes; a proof is at most {limit} bytes",
            file.display(),
            metadata.len(),
        );
    }
    fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

/// `weft proof verify FILE…`: each proof is checked against the trust root of its chain (from
/// `--trust`, or pinned in the home); one file reports alone, several are checked together
/// (their signatures in Ed25519 batches) and reported one by one.
pub fn proof_verify(
    ctx: &Globals,
    files: &[PathBuf],
    trust_files: &[PathBuf],
    policy: Option<weft_ledger::cosigned::Policy>,
) -> Result<()> {
    // One file is read once, up to the size of an anchored proof, the largest kind.
    let single = match files {
        [file] => {
            let bytes = read_proof(file, weft_ledger::anchored::MAX_ANCHORED_PROOF_BYTES)?;
            if super::is_anchored(&bytes) {
                return super::anchored_verify(ctx, &bytes, trust_files, policy);
            }
            if bytes.len() > weft_ledger::proof::MAX_PROOF_BYTES {
                bail!(
                    "{} is {} bytes; a proof is at most {} bytes",
                    file.display(),
                    bytes.len(),
                    weft_ledger::proof::MAX_PROOF_BYTES
                );
            }
            Some(bytes)
        }
        _ => None,
    };
    if policy.is_some() {
        bail!("--witness is for an anchored proof (`weft proof TX --anchored`), checked alone");
    }
    let roots = roots(ctx, trust_files)?;
    let certificates = weft_node::net::finality::Certificates;
    let tlog =
        |bytes: &[u8]| bytes.starts_with(weft_ledger::checkpoint::TLOG_PROOF_HEADER.as_bytes());
    if let Some(bytes) = single {
        // A file that cannot be read is an error (exit 1); one that is not a valid proof, or
        // of a chain without a trust root, is a negative verdict (exit 4).
        if tlog(&bytes) {
            return tlog_verify(ctx, &roots, &bytes);
        }
        let document = match weft_ledger::proof::parse(&bytes) {
            Ok(document) => document,
            Err(error) => return refuse(ctx, None, None, format!("{error:#}")),
        };
        let pinned = root_for(&roots, &document.chain_id)?;
        return match weft_ledger::proof::verify(&document, &pinned.root, &certificates) {
            Ok(verified) => {
                ctx.out
                    .emit(json!(ProofReport::valid(None, pinned, &verified)), || {
                        format!(
                            "VALID  transaction {} ({}) is in block {} ({})\n  of chain {:?}, {}\n  \
                             checked against the trust root in {}",
                            verified.tx_id,
                            verified.transaction.header.kind.name(),
                            verified.height,
                            verified.block_hash,
                            pinned.root.chain,
                            finality_text(&verified),
                            pinned.source.display()
                        )
                    });
                Ok(())
            }
            Err(error) => refuse(ctx, None, Some(pinned), format!("{error:#}")),
        };
    }
    let documents: Vec<Result<weft_ledger::proof::InclusionProof>> = files
        .iter()
        .map(|file| {
            let bytes = read_proof(file, weft_ledger::proof::MAX_PROOF_BYTES)?;
            if tlog(&bytes) {
                bail!(
                    "a tlog-proof is checked alone: `weft proof verify {}`",
                    file.display()
                );
            }
            Ok(weft_ledger::proof::parse(&bytes)?)
        })
        .collect();
    // The proofs of each trust root, checked together.
    let mut verdicts: Vec<Option<Result<weft_ledger::proof::VerifiedInclusion>>> =
        (0..files.len()).map(|_| None).collect();
    let mut chosen: Vec<Option<&weft_client::trust::Pinned>> = vec![None; files.len()];
    for pinned in &roots {
        let mine: Vec<usize> = (0..files.len())
            .filter(|&index| {
                chosen[index].is_none()
                    && documents[index]
                        .as_ref()
                        .is_ok_and(|document| document.chain_id == pinned.root.chain_id.to_hex())
            })
            .collect();
        let batch: Vec<weft_ledger::proof::InclusionProof> = mine
            .iter()
            .map(|&index| documents[index].as_ref().expect("parsed").clone())
            .collect();
        for (index, verdict) in mine.iter().zip(weft_ledger::proof::verify_many(
            &batch,
            &pinned.root,
            &certificates,
        )) {
            verdicts[*index] = Some(verdict.map_err(anyhow::Error::from));
            chosen[*index] = Some(pinned);
        }
    }
    let mut reports = Vec::with_capacity(files.len());
    let mut lines = Vec::with_capacity(files.len());
    let mut all_valid = true;
    for (index, (file, document)) in files.iter().zip(documents).enumerate() {
        let verdict = match (document, verdicts[index].take()) {
            (Err(error), _) => Err(error),
            (Ok(_), Some(verdict)) => verdict,
            (Ok(document), None) => Err(match root_for(&roots, &document.chain_id) {
                Err(error) => error,
                Ok(_) => anyhow::anyhow!("not checked"),
            }),
        };
        match verdict {
            Ok(verified) => {
                let pinned = chosen[index].expect("a verdict has its root");
                reports.push(ProofReport::valid(Some(file), pinned, &verified));
                lines.push(format!(
                    "VALID    {}: transaction {} in block {} of chain {:?}, {}",
                    file.display(),
                    verified.tx_id,
                    verified.height,
                    pinned.root.chain,
                    verified.finality.kind()
                ));
            }
            Err(error) => {
                all_valid = false;
                let reason = format!("{error:#}");
                lines.push(format!("INVALID  {}: {reason}", file.display()));
                reports.push(ProofReport::invalid(Some(file), chosen[index], reason));
            }
        }
    }
    let valid_count = reports.iter().filter(|report| report.valid).count();
    ctx.out.emit(
        json!({"valid": all_valid, "checked": reports.len(), "valid_count": valid_count, "proofs": reports}),
        || {
            format!(
                "{}\n{valid_count} of {} proofs valid",
                lines.join("\n"),
                files.len(),
            )
        },
    );
    if all_valid {
        Ok(())
    } else {
        Err(Negative.into())
    }
}

/// `weft proof verify FILE` of a C2SP tlog-proof: the transaction's proof in its extra data,
/// its block in the checkpoint's tree, the checkpoint signed by a quorum.
fn tlog_verify(ctx: &Globals, roots: &[weft_client::trust::Pinned], bytes: &[u8]) -> Result<()> {
    let parsed = match weft_ledger::checkpoint::TlogProof::parse(bytes) {
        Ok(parsed) => parsed,
        Err(error) => return refuse(ctx, None, None, format!("{error:#}")),
    };
    let chain_id = parsed
        .extra
        .as_deref()
        .and_then(|extra| serde_json::from_slice::<Value>(extra).ok())
        .and_then(|value| value["chain_id"].as_str().map(str::to_string))
        .unwrap_or_default();
    let pinned = root_for(roots, &chain_id)?;
    match weft_ledger::checkpoint::verify_tlog_proof(
        &parsed,
        &pinned.root,
        &weft_node::net::finality::Certificates,
    ) {
        Ok(verified) => {
            let mut report = json!(ProofReport::valid(None, pinned, &verified.inclusion));
            report["format"] = json!(weft_ledger::checkpoint::TLOG_PROOF_HEADER);
            report["checkpoint"] = json!({
                "origin": verified.checkpoint.checkpoint.origin,
                "size": verified.checkpoint.checkpoint.size,
                "root": verified.checkpoint.checkpoint.root.to_hex(),
                "signers": verified.checkpoint.signers.len(),
                "validators": verified.checkpoint.of,
            });
            ctx.out.emit(report, || {
                format!(
                    "VALID  transaction {} ({}) is in block {} ({})\n  of chain {:?}, {}\n  in the \
                     checkpoint of {} blocks signed by {} of its {} validators\n  checked against \
                     the trust root in {}",
                    verified.inclusion.tx_id,
                    verified.inclusion.transaction.header.kind.name(),
                    verified.inclusion.height,
                    verified.inclusion.block_hash,
                    pinned.root.chain,
                    finality_text(&verified.inclusion),
                    verified.checkpoint.checkpoint.size,
                    verified.checkpoint.signers.len(),
                    verified.checkpoint.of,
                    pinned.source.display()
                )
            });
            Ok(())
        }
        Err(error) => refuse(ctx, None, Some(pinned), format!("{error:#}")),
    }
}

/// Reports one refused proof and ends with exit 4.
fn refuse(
    ctx: &Globals,
    file: Option<&Path>,
    pinned: Option<&weft_client::trust::Pinned>,
    reason: String,
) -> Result<()> {
    let report = ProofReport::invalid(file, pinned, reason.clone());
    ctx.out.emit(json!(report), || format!("INVALID  {reason}"));
    Err(Negative.into())
}

/// How a verified block is final, for people.
fn finality_text(verified: &weft_ledger::proof::VerifiedInclusion) -> String {
    use weft_ledger::proof::Finality;
    match &verified.finality {
        Finality::Sealed { producer } => format!("sealed by its producer {producer}"),
        Finality::Certified {
            certified_height,
            validators,
        } if *certified_height == verified.height => format!(
            "final: certified by a quorum of the {validators} validators of epoch {}",
            verified.epoch
        ),
        Finality::Certified {
            certified_height,
            validators,
        } => format!(
            "final: block {certified_height} after it is certified by a quorum of the \
             {validators} validators of epoch {}",
            verified.epoch
        ),
    }
}

/// `weft proof verify --json`: one proof's verdict (with its file when several are checked),
/// and the trust root it was checked against.
#[derive(serde::Serialize)]
struct ProofReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    valid: bool,
    /// Why it is not valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust_root: Option<Value>,
    #[serde(flatten)]
    verified: Option<VerifiedProof>,
}

/// What a valid proof proves.
#[derive(serde::Serialize)]
struct VerifiedProof {
    tx_id: TxId,
    chain_id: String,
    height: u64,
    block_hash: weft_core::BlockHash,
    producer: PublicKey,
    kind: &'static str,
    epoch: u64,
    /// `sealed` (by the epoch's single producer) or `certified` (by a quorum of validators).
    finality: &'static str,
    certified_height: u64,
}

impl ProofReport {
    fn valid(
        file: Option<&Path>,
        pinned: &weft_client::trust::Pinned,
        verified: &weft_ledger::proof::VerifiedInclusion,
    ) -> Self {
        use weft_ledger::proof::Finality;
        ProofReport {
            file: file.map(|file| file.display().to_string()),
            valid: true,
            reason: None,
            trust_root: Some(root_json(pinned)),
            verified: Some(VerifiedProof {
                tx_id: verified.tx_id,
                chain_id: verified.transaction.header.chain_id.to_hex(),
                height: verified.height,
                block_hash: verified.block_hash,
                producer: verified.producer,
                kind: verified.transaction.header.kind.name(),
                epoch: verified.epoch,
                finality: verified.finality.kind(),
                certified_height: match verified.finality {
                    Finality::Certified {
                        certified_height, ..
                    } => certified_height,
                    Finality::Sealed { .. } => verified.height,
                },
            }),
        }
    }

    fn invalid(
        file: Option<&Path>,
        pinned: Option<&weft_client::trust::Pinned>,
        reason: String,
    ) -> Self {
        ProofReport {
            file: file.map(|file| file.display().to_string()),
            valid: false,
            reason: Some(reason),
            trust_root: pinned.map(root_json),
            verified: None,
        }
    }
}
