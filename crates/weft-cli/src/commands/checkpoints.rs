//! `weft checkpoint`: the chain's signed checkpoint, gathered from one node or several (a
//! network's validators each sign their own), checked against the trust root, and — given the
//! checkpoint held from before — checked to extend it (docs/checkpoints.md).

use weft_ledger::checkpoint::{self, Checkpoint, Note};
use weft_ledger::proof::ValidatorChangeProof;

use super::*;
use crate::output::Untrusted;

/// What `weft checkpoint` was asked.
pub struct CheckpointArgs<'a> {
    pub size: Option<u64>,
    /// Other nodes asked for the same checkpoint, whose signatures are added.
    pub also: &'a [String],
    /// A checkpoint held from before, which the new one must extend.
    pub since: Option<&'a Path>,
    pub out: Option<&'a Path>,
    pub trust: &'a [PathBuf],
}

fn untrusted(message: String) -> anyhow::Error {
    Untrusted(message).into()
}

/// The chain id a checkpoint's origin names (`weft/<name>/<chain id>`).
fn origin_chain_id(checkpoint: &Checkpoint) -> String {
    checkpoint
        .origin
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

fn read_note(path: &Path) -> Result<Note> {
    let metadata = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if metadata.len() > checkpoint::MAX_NOTE_BYTES as u64 {
        bail!("{} is larger than a checkpoint may be", path.display());
    }
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Note::parse(&bytes).with_context(|| format!("{}", path.display()))
}

/// A checkpoint of `chain` with the signatures of the `also` nodes added, checked against the
/// trust root: what `weft checkpoint` and `weft chain info` believe of a chain's head.
pub struct Gathered<'a> {
    pub note: Note,
    pub verified: checkpoint::VerifiedCheckpoint,
    pub pinned: &'a weft_client::trust::Pinned,
    pub schedule: weft_ledger::state::Schedule,
}

pub fn gathered<'a>(
    ctx: &Globals,
    chain: &dyn crate::chain::Chain,
    roots: &'a [weft_client::trust::Pinned],
    size: Option<u64>,
    also: &[String],
) -> Result<Gathered<'a>> {
    let place = chain.place();
    let answer = chain.checkpoint(size)?;
    let mut note = Note::parse(answer.note.as_bytes()).map_err(|error| {
        untrusted(format!(
            "{place} answered with a malformed checkpoint: {error}"
        ))
    })?;
    add_signatures(ctx, &place, &mut note, answer.size, also)?;
    let parsed =
        Checkpoint::parse(&note.text).map_err(|error| untrusted(format!("{place}: {error}")))?;
    let pinned = root_for(roots, &origin_chain_id(&parsed))?;
    let changes: Vec<ValidatorChangeProof> =
        serde_json::from_value(answer.validator_changes.clone()).map_err(|error| {
            untrusted(format!(
                "{place} answered with malformed validator changes: {error}"
            ))
        })?;
    let certificates = weft_node::net::finality::Certificates;
    let schedule = weft_ledger::proof::checked_changes(&changes, &pinned.root, &certificates)
        .map_err(|error| untrusted(format!("{place}'s validator changes do not check: {error}")))?;
    let verified = checkpoint::verify(&note, &pinned.root, &schedule).map_err(|error| {
        untrusted(format!(
            "the checkpoint from {place} does not check against the trust root of chain {:?}: \
             {error}{}",
            pinned.root.chain,
            if also.is_empty() && error.to_string().contains("are needed") {
                " (a network's validators each sign their own: gather theirs with --also URL)"
            } else {
                ""
            }
        ))
    })?;
    Ok(Gathered {
        note,
        verified,
        pinned,
        schedule,
    })
}

/// Adds to `note` (a checkpoint of `size` blocks that `place` gave) the signatures of the
/// `also` nodes on the same checkpoint: a network's validators each sign their own. Two nodes
/// signing different texts for one size are named: the chain forked, or one of them lies.
pub fn add_signatures(
    ctx: &Globals,
    place: &str,
    note: &mut Note,
    size: u64,
    also: &[String],
) -> Result<()> {
    for url in also {
        let other = crate::client::NodeClient::new(url, ctx.ca.as_deref())?
            .typed()
            .checkpoint(Some(size))
            .with_context(|| format!("the checkpoint of {url}"))?;
        let other = Note::parse(other.note.as_bytes()).map_err(|error| {
            untrusted(format!(
                "{url} answered with a malformed checkpoint: {error}"
            ))
        })?;
        if other.text != note.text {
            return Err(untrusted(format!(
                "{url} and {place} sign different checkpoints of {size} blocks: the chain has \
                 forked, or one of them lies\n{place}:\n{}{url}:\n{}",
                note.text, other.text
            )));
        }
        note.merge(&other)?;
    }
    Ok(())
}

pub fn checkpoint(ctx: &Globals, args: &CheckpointArgs<'_>) -> Result<()> {
    let roots = roots(ctx, args.trust)?;
    let chain = crate::chain::open(ctx)?;
    let place = chain.place();
    let Gathered {
        note,
        verified,
        pinned,
        schedule,
        ..
    } = gathered(ctx, chain.as_ref(), &roots, args.size, args.also)?;
    let size = verified.checkpoint.size;
    let mut since_json = Value::Null;
    if let Some(path) = args.since {
        let old_note = read_note(path)?;
        let old = checkpoint::verify(&old_note, &pinned.root, &schedule).map_err(|error| {
            untrusted(format!(
                "the checkpoint in {} does not check: {error}",
                path.display()
            ))
        })?;
        let old_size = old.checkpoint.size;
        if old_size > size {
            return Err(untrusted(format!(
                "{place} answered with {size} blocks, fewer than the {old_size} of the checkpoint \
                 in {} already held: a stale head",
                path.display()
            )));
        }
        let consistent = if old_size == size {
            old.checkpoint.root == verified.checkpoint.root
        } else {
            let answer = chain.consistency(old_size, size)?;
            let proof = base64_hashes(&answer.proof).ok_or_else(|| {
                untrusted(format!(
                    "{place} answered with a malformed consistency proof"
                ))
            })?;
            weft_core::merkle::verify_consistency(
                old_size,
                size,
                &old.checkpoint.root,
                &verified.checkpoint.root,
                &proof,
            )
        };
        if !consistent {
            return Err(untrusted(format!(
                "the checkpoint of {size} blocks from {place} does not extend the one of \
                 {old_size} blocks in {}: the chain was rewritten, or {place} lies. Keep both \
                 signed checkpoints: together they are the evidence",
                path.display()
            )));
        }
        since_json =
            json!({"file": path.display().to_string(), "size": old_size, "consistent": true});
    }
    if let Some(out) = args.out {
        write_whole(out, note.to_text().as_bytes())?;
    }
    let root_hex = verified.checkpoint.root.to_hex();
    ctx.out.emit(
        json!({
            "origin": verified.checkpoint.origin,
            "size": size,
            "root": root_hex,
            "signers": verified.signers.iter().map(PublicKey::to_hex).collect::<Vec<_>>(),
            "validators": verified.of,
            "quorum": checkpoint::quorum(verified.of),
            "since": since_json,
            "note": note.to_text(),
            "trust_root": root_json(pinned),
        }),
        || {
            let mut text = format!(
                "CHECKPOINT  {size} blocks of chain {:?}, root {root_hex}\n  signed by {} of its {} \
                 validators ({} needed), checked against {}",
                pinned.root.chain,
                verified.signers.len(),
                verified.of,
                checkpoint::quorum(verified.of),
                pinned.source.display()
            );
            if let Some(path) = args.since {
                text.push_str(&format!("\n  extends the checkpoint in {}", path.display()));
            }
            if args.out.is_none() {
                text.push_str(&format!("\n\n{}", note.to_text()));
            }
            text
        },
    );
    Ok(())
}
