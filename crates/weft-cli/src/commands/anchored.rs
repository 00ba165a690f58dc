//! `weft proof TX --anchored`: the transaction's tlog-proof on the home's chain, the checkpoint
//! that covers it with its witnesses' cosignatures, and the `Anchor` transactions other
//! companies' chains hold of it, each with its proof there (docs/anchoring.md, "Anchored
//! proofs"); and `weft proof verify` of such a bundle, offline.

use weft_ledger::anchored::{self, ANCHORED_PROOF_FORMAT, AnchorProof, AnchoredProof};
use weft_ledger::checkpoint::{Checkpoint, Note, TlogProof};
use weft_ledger::cosigned::Policy;

use super::*;
use crate::output::Untrusted;
use weft_client::trust::Pinned;

fn untrusted(message: String) -> anyhow::Error {
    Untrusted(message).into()
}

/// The nodes of other companies' chains to ask for anchors: `--by URL`, else the first API of
/// each chain in the home's `[anchor]` (the companies this one is entangled with), with the CA
/// its config names.
fn anchoring_nodes(ctx: &Globals, by: &[String]) -> Result<Vec<(String, Option<PathBuf>)>> {
    if !by.is_empty() {
        return Ok(by.iter().map(|url| (url.clone(), ctx.ca.clone())).collect());
    }
    let config = Home::open(&ctx.home)
        .and_then(|home| home.config())
        .context("no --by URL given, and the home's config.toml cannot be read for [anchor]")?;
    let nodes: Vec<(String, Option<PathBuf>)> = config
        .anchor
        .chains
        .iter()
        .filter_map(|chain| {
            let ca = chain
                .ca
                .as_ref()
                .map(|ca| ctx.home.join(ca))
                .or(ctx.ca.clone());
            chain.urls.first().map(|url| (url.clone(), ca))
        })
        .collect();
    if nodes.is_empty() {
        bail!(
            "no --by URL given and no [anchor] chains in {}'s config.toml: name a node of each \
             chain that anchors this one",
            ctx.home.display()
        );
    }
    Ok(nodes)
}

/// The trust roots to check with: `--trust` (or the pinned ones), and the roots of the chains
/// in the home's `[anchor]` not among them.
fn all_roots(ctx: &Globals, trust: &[PathBuf]) -> Result<Vec<Pinned>> {
    let mut roots = roots(ctx, trust)?;
    let Ok(config) = Home::open(&ctx.home).and_then(|home| home.config()) else {
        return Ok(roots);
    };
    for chain in &config.anchor.chains {
        let source = ctx.home.join(&chain.trust);
        let Ok(root) = weft_client::trust::read(&source) else {
            continue;
        };
        if !roots
            .iter()
            .any(|pinned| pinned.root.chain_id == root.chain_id)
        {
            roots.push(Pinned { root, source });
        }
    }
    Ok(roots)
}

/// One anchor found on another chain, checked there.
struct Found {
    url: String,
    proof: weft_ledger::proof::InclusionProof,
    note: Note,
    checkpoint: Checkpoint,
}

/// Asks `url` for its latest anchor of `origin`; `Ok(Err(why))` when it has none covering
/// block `height` (not an error of the node: entanglement takes a round).
fn anchor_at(
    ctx: &Globals,
    roots: &[Pinned],
    (url, ca): &(String, Option<PathBuf>),
    origin: &str,
    height: u64,
) -> Result<std::result::Result<Found, String>> {
    let client = crate::client::NodeClient::new(url, ca.as_deref().or(ctx.ca.as_deref()))?;
    let typed = client.typed();
    let listed: weft_api::AnchorsAnswer = match typed.get("/v1/anchors") {
        Ok(listed) => listed,
        Err(error) => return Ok(Err(format!("{url}: {error}"))),
    };
    let Some(entry) = listed.chains.iter().find(|chain| chain.origin == origin) else {
        return Ok(Err(format!("{url} has not registered {origin}")));
    };
    let (Some(size), Some(tx)) = (entry.size, entry.anchor_tx.as_deref()) else {
        return Ok(Err(format!("{url} has anchored nothing of it yet")));
    };
    if size <= height {
        return Ok(Err(format!(
            "{url} has anchored {size} blocks of it; block {height} is not among them yet"
        )));
    }
    let id = TxId::from_hex(tx)
        .map_err(|error| untrusted(format!("{url} named a malformed anchor: {error}")))?;
    let answer = typed
        .transaction(&id)?
        .ok_or_else(|| untrusted(format!("{url} names anchor {id} but does not have it")))?;
    let proof: weft_ledger::proof::InclusionProof = serde_json::from_value(answer.proof)
        .map_err(|error| untrusted(format!("{url}: the proof of {id} is malformed: {error}")))?;
    let pinned = root_for(roots, &proof.chain_id).with_context(|| {
        format!(
            "the anchor on {url}: give its chain's trust root with --trust (or [anchor] chains)"
        )
    })?;
    let verified = super::proofs::checked(url, pinned, &proof, &id)?;
    let Some(Payload::Anchor(recorded)) = verified.transaction.payload else {
        return Err(untrusted(format!(
            "{url} names {id} as an anchor, but its proof holds no Anchor payload"
        )));
    };
    let note = Note::parse(recorded.note.as_bytes())
        .map_err(|error| untrusted(format!("{url}: anchor {id}: {error}")))?;
    let checkpoint = Checkpoint::parse(&note.text)
        .map_err(|error| untrusted(format!("{url}: anchor {id}: {error}")))?;
    Ok(Ok(Found {
        url: url.clone(),
        proof,
        note,
        checkpoint,
    }))
}

/// `weft proof TX --anchored`.
pub fn anchored_build(
    ctx: &Globals,
    id: &str,
    out_file: Option<&Path>,
    trust: &[PathBuf],
    by: &[String],
    policy: Option<Policy>,
) -> Result<()> {
    let roots = all_roots(ctx, trust)?;
    let chain = crate::chain::open(ctx)?;
    let place = chain.place();
    let id = chain.resolve_tx(id, "TX_ID")?;
    let own = root_for(&roots, &chain.chain_id()?.to_hex())?;
    let origin = weft_ledger::checkpoint::origin(&own.root.chain, &own.root.chain_id);
    let Some(answer) = chain.transaction(&id)? else {
        bail!("transaction {id} is not on {place}");
    };
    let height = answer.height;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for node in anchoring_nodes(ctx, by)? {
        match anchor_at(ctx, &roots, &node, &origin, height)? {
            Ok(anchor) => found.push(anchor),
            Err(why) => missing.push(why),
        }
    }
    if found.is_empty() {
        bail!(
            "no other chain holds an anchor of block {height} of {origin} yet:\n  {}",
            missing.join("\n  ")
        );
    }
    // The checkpoint covering the transaction: the witnessed one if it reaches the block (it
    // carries the witnesses' cosignatures), else the largest one anchored.
    let witnessed = crate::context::node_client(ctx)
        .ok()
        .and_then(|node| {
            node.typed()
                .get_text("/v1/checkpoint/witnessed", 64 << 10)
                .ok()
        })
        .and_then(|text| Note::parse(text.as_bytes()).ok())
        .filter(|note| Checkpoint::parse(&note.text).is_ok_and(|parsed| parsed.size > height));
    let note = witnessed.unwrap_or_else(|| {
        found
            .iter()
            .max_by_key(|anchor| anchor.checkpoint.size)
            .expect("one at least")
            .note
            .clone()
    });
    let ours = Checkpoint::parse(&note.text)?;
    let text = chain
        .tlog_proof(&id, Some(ours.size))?
        .ok_or_else(|| anyhow::anyhow!("transaction {id} is not on {place}"))?;
    let mut tlog = TlogProof::parse(text.as_bytes()).map_err(|error| {
        untrusted(format!(
            "{place} answered with a malformed tlog-proof: {error}"
        ))
    })?;
    if tlog.note.text != note.text {
        return Err(untrusted(format!(
            "{place} signs a checkpoint of {} blocks other than the one witnessed or anchored: \
             the chain was rewritten since, or {place} lies\nwitnessed or anchored:\n{}{place}:\n{}",
            ours.size, note.text, tlog.note.text
        )));
    }
    tlog.note = note;
    let mut anchors = Vec::with_capacity(found.len());
    for anchor in &found {
        let (old, new) = if anchor.checkpoint.size >= ours.size {
            (ours.size, anchor.checkpoint.size)
        } else {
            (anchor.checkpoint.size, ours.size)
        };
        let consistency = if old == new {
            Vec::new()
        } else {
            let answer = chain.consistency(old, new)?;
            base64_hashes(&answer.proof)
                .ok_or_else(|| {
                    untrusted(format!(
                        "{place} answered with a malformed consistency proof"
                    ))
                })?
                .iter()
                .map(|hash| hash.to_hex())
                .collect()
        };
        anchors.push(AnchorProof {
            proof: anchor.proof.clone(),
            consistency,
        });
    }
    let bundle = AnchoredProof {
        format: ANCHORED_PROOF_FORMAT.to_string(),
        tlog_proof: tlog.to_text(),
        anchors,
    };
    // Checked whole before it is written: a bundle that does not hold is not handed on.
    let report = check(&roots, &bundle, policy.as_ref()).map_err(|error| {
        untrusted(format!(
            "the anchored proof of {id} gathered from {place} and {} does not check: {error:#}",
            found
                .iter()
                .map(|anchor| anchor.url.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let text = serde_json::to_string_pretty(&bundle).expect("bundles serialise");
    match out_file {
        Some(path) => {
            write_whole(path, text.as_bytes())?;
            let mut value = report.clone();
            value["out"] = json!(path.display().to_string());
            value["not_anchored_by"] = json!(missing);
            ctx.out.emit(value, || {
                format!(
                    "wrote the anchored proof of {id} to {}\n{}",
                    path.display(),
                    report_text(&report)
                )
            });
        }
        None => crate::output::outln!("{text}"),
    }
    Ok(())
}

/// Checks a bundle against `roots`; the report `weft proof verify --json` gives.
fn check(roots: &[Pinned], bundle: &AnchoredProof, policy: Option<&Policy>) -> Result<Value> {
    let trust_roots: Vec<&weft_ledger::trust::TrustRoot> =
        roots.iter().map(|pinned| &pinned.root).collect();
    let verified = anchored::verify(
        bundle,
        &trust_roots,
        &weft_node::net::finality::Certificates,
        policy,
    )?;
    let inclusion = &verified.tlog.inclusion;
    let checkpoint = &verified.tlog.checkpoint;
    let home = roots
        .iter()
        .find(|pinned| pinned.root.chain_id == inclusion.transaction.header.chain_id)
        .expect("verified against one of them");
    Ok(json!({
        "valid": true,
        "format": ANCHORED_PROOF_FORMAT,
        "tx_id": inclusion.tx_id,
        "kind": inclusion.transaction.header.kind.name(),
        "height": inclusion.height,
        "block_hash": inclusion.block_hash,
        "chain": home.root.chain,
        "trust_root": root_json(home),
        "checkpoint": {
            "origin": checkpoint.checkpoint.origin,
            "size": checkpoint.checkpoint.size,
            "root": checkpoint.checkpoint.root.to_hex(),
            "signers": checkpoint.signers.len(),
            "validators": checkpoint.of,
        },
        "witnesses": policy.map(|policy| json!({
            "policy": policy.k,
            "of": policy.witnesses.len(),
            "cosigners": super::anchor::cosigners_json(&verified.cosigners),
        })),
        "anchors": verified.anchors.iter().map(|anchor| {
            let pinned = &roots[anchor.root];
            json!({
                "chain": pinned.root.chain,
                "chain_id": pinned.root.chain_id.to_hex(),
                "tx_id": anchor.tx_id,
                "height": anchor.height,
                "finality": anchor.finality.kind(),
                "anchored_size": anchor.size,
                "anchored_root": anchor.anchored_root.to_hex(),
                "trust_root": root_json(pinned),
            })
        }).collect::<Vec<_>>(),
    }))
}

fn report_text(report: &Value) -> String {
    let mut text = format!(
        "VALID  transaction {} ({}) is in block {} of chain {:?}\n  in its checkpoint of {} \
         blocks, signed by {} of its {} validators",
        report["tx_id"].as_str().unwrap_or_default(),
        report["kind"].as_str().unwrap_or_default(),
        report["height"],
        report["chain"].as_str().unwrap_or_default(),
        report["checkpoint"]["size"],
        report["checkpoint"]["signers"],
        report["checkpoint"]["validators"],
    );
    match report["witnesses"].as_object() {
        Some(witnesses) => text.push_str(&format!(
            "\n  cosigned by {} ({} of {} witnesses needed)",
            super::anchor::cosigner_names(&witnesses["cosigners"]),
            witnesses["policy"],
            witnesses["of"],
        )),
        None => text.push_str("\n  witnesses not checked (name them with --witness KEY)"),
    }
    for anchor in report["anchors"].as_array().into_iter().flatten() {
        text.push_str(&format!(
            "\n  anchored on chain {:?} in block {} ({}), transaction {}: its checkpoint of {} \
             blocks holds this one's history",
            anchor["chain"].as_str().unwrap_or_default(),
            anchor["height"],
            anchor["finality"].as_str().unwrap_or_default(),
            anchor["tx_id"].as_str().unwrap_or_default(),
            anchor["anchored_size"],
        ));
    }
    text.push_str(&format!(
        "\n  checked against the trust roots in {}",
        std::iter::once(&report["trust_root"])
            .chain(
                report["anchors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|anchor| &anchor["trust_root"])
            )
            .map(|root| root["source"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    text
}

/// `weft proof verify FILE` of an anchored proof: every part checked offline against the trust
/// roots given (the transaction's chain and each anchoring chain), and the witnesses' keys.
pub fn anchored_verify(
    ctx: &Globals,
    bytes: &[u8],
    trust: &[PathBuf],
    policy: Option<Policy>,
) -> Result<()> {
    let roots = all_roots(ctx, trust)?;
    let verdict = anchored::parse(bytes)
        .map_err(anyhow::Error::from)
        .and_then(|bundle| check(&roots, &bundle, policy.as_ref()));
    match verdict {
        Ok(report) => {
            ctx.out.emit(report.clone(), || report_text(&report));
            Ok(())
        }
        Err(error) => {
            let reason = format!("{error:#}");
            ctx.out.emit(
                json!({"valid": false, "format": ANCHORED_PROOF_FORMAT, "reason": reason}),
                || format!("INVALID  {reason}"),
            );
            Err(Negative.into())
        }
    }
}

/// Is this file an anchored proof (and not weft's JSON inclusion proof)? By its `format`,
/// wherever the field stands.
pub fn is_anchored(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Format {
        format: String,
    }
    serde_json::from_slice::<Format>(bytes).is_ok_and(|found| found.format == ANCHORED_PROOF_FORMAT)
}
