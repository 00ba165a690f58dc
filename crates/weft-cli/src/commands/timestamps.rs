//! `weft anchor timestamp`: an RFC 3161 time-stamp of this chain's checkpoint, checked on the
//! user's side (docs/anchoring.md, "Public timestamps"): the `Timestamp` transaction proven on
//! the chain against its trust root, its checkpoint signed by a quorum of the chain's
//! validators, and the TSA's token — signature, certificate chain to the TSA's CA the user
//! holds, message imprint, nonce.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use weft_ledger::checkpoint::Note;

use super::*;
use crate::output::Untrusted;

fn untrusted(message: String) -> anyhow::Error {
    Untrusted(message).into()
}

/// The DER certificates of PEM files.
fn certificates(files: &[PathBuf]) -> Result<Vec<Vec<u8>>> {
    let mut all = Vec::new();
    for file in files {
        let found = CertificateDer::pem_file_iter(file)
            .with_context(|| format!("cannot read {}", file.display()))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .with_context(|| format!("{} is not a PEM certificate file", file.display()))?;
        if found.is_empty() {
            bail!("{} holds no certificate", file.display());
        }
        all.extend(found.into_iter().map(|certificate| certificate.to_vec()));
    }
    Ok(all)
}

pub fn anchor_timestamp(
    ctx: &Globals,
    target: &str,
    tsa_ca: &[PathBuf],
    trust: &[PathBuf],
) -> Result<()> {
    let roots = roots(ctx, trust)?;
    let tsa_roots = certificates(tsa_ca)?;
    let certificates = weft_node::net::finality::Certificates;
    // The transaction, proven: from a proof file (offline), or from the chain.
    let file = Path::new(target);
    let (proof, place) = if file.is_file() {
        let metadata = fs::metadata(file)?;
        if metadata.len() > weft_ledger::proof::MAX_PROOF_BYTES as u64 {
            bail!("{} is larger than a proof may be", file.display());
        }
        let proof = weft_ledger::proof::parse(&fs::read(file)?)
            .map_err(|error| untrusted(format!("{}: {error}", file.display())))?;
        (proof, file.display().to_string())
    } else {
        let chain = crate::chain::open(ctx)?;
        let id = chain.resolve_tx(target, "TX_ID")?;
        let answer = chain
            .transaction(&id)?
            .with_context(|| format!("transaction {id} is not on {}", chain.place()))?;
        let proof: weft_ledger::proof::InclusionProof = serde_json::from_value(answer.proof)
            .map_err(|error| {
                untrusted(format!(
                    "{}: the proof of {id} is malformed: {error}",
                    chain.place()
                ))
            })?;
        (proof, chain.place())
    };
    let pinned = root_for(&roots, &proof.chain_id)?;
    let schedule =
        weft_ledger::proof::checked_changes(&proof.validator_changes, &pinned.root, &certificates)
            .map_err(|error| untrusted(format!("{place}: {error}")))?;
    let verified = weft_ledger::proof::verify_under(&proof, &pinned.root, &schedule, &certificates)
        .map_err(|error| {
            untrusted(format!(
                "{place}: the proof does not check against the trust root of chain {:?}: \
                     {error}",
                pinned.root.chain
            ))
        })?;
    let Some(Payload::Timestamp(stamp)) = &verified.transaction.payload else {
        return Err(untrusted(format!(
            "transaction {} is a {}, not a Timestamp held whole",
            verified.tx_id,
            verified.transaction.header.kind.name()
        )));
    };
    let note = Note::parse(stamp.note.as_bytes())
        .map_err(|error| untrusted(format!("the time-stamped checkpoint: {error}")))?;
    let checkpoint = weft_ledger::checkpoint::verify(&note, &pinned.root, &schedule)
        .map_err(|error| untrusted(format!("the time-stamped checkpoint: {error}")))?;
    let token =
        weft_ledger::timestamp::verify(&stamp.token, note.text.as_bytes(), stamp.nonce, &tsa_roots)
            .map_err(|error| untrusted(format!("the time-stamp token: {error}")))?;
    let time = format_time(token.time_ms);
    let report = json!({
        "valid": true,
        "tx_id": verified.tx_id,
        "height": verified.height,
        "chain": pinned.root.chain,
        "checkpoint": {
            "size": checkpoint.checkpoint.size,
            "root": checkpoint.checkpoint.root.to_hex(),
            "signers": checkpoint.signers.len(),
            "validators": checkpoint.of,
        },
        "time_ms": token.time_ms,
        "time": time,
        "tsa": token.tsa,
        "serial": token.serial,
        "nonce": stamp.nonce,
        "trust_root": root_json(pinned),
    });
    ctx.out.emit(report, || {
        format!(
            "VALID  the checkpoint of {} blocks of chain {:?} (root {}) existed at {time}\n  \
             time-stamped by {} (serial {}), checked against {}\n  recorded in transaction {} \
             (block {}), proven against {}",
            checkpoint.checkpoint.size,
            pinned.root.chain,
            checkpoint.checkpoint.root.to_hex(),
            token.tsa,
            token.serial,
            tsa_ca
                .iter()
                .map(|file| file.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            verified.tx_id,
            verified.height,
            pinned.source.display()
        )
    });
    Ok(())
}
