//! `weft anchor …` (docs/anchoring.md): `status`, how a node's publishing to its witnesses fares
//! (lag, failures) with its latest witnessed checkpoint checked here against the chain's trust
//! root and the witness keys the user holds, and the other chains anchored on it; `register`,
//! an authority's registration of another chain; `evidence`, the evidence recorded that another
//! chain signed two histories, each piece checked and written in a form anyone can check offline
//! with `verify`.

use weft_ledger::checkpoint::Note;
use weft_ledger::cosigned::{Policy, WitnessKey};
use weft_ledger::proof::ValidatorChangeProof;

use super::*;
use crate::output::Untrusted;

fn untrusted(message: String) -> anyhow::Error {
    Untrusted(message).into()
}

/// The witnesses whose cosignatures held, and when each cosigned, as JSON.
pub(super) fn cosigners_json(cosigners: &[(String, u64)]) -> Value {
    json!(
        cosigners
            .iter()
            .map(|(name, time)| json!({"name": name, "time": time}))
            .collect::<Vec<_>>()
    )
}

/// The names in [`cosigners_json`], for people.
pub(super) fn cosigner_names(cosigners: &Value) -> String {
    cosigners
        .as_array()
        .map(|all| {
            all.iter()
                .map(|one| one["name"].as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The witness policy of `--witness` keys and `--policy` (all of them by default); `None`
/// without keys.
pub fn explicit_policy(keys: &[String], k: Option<usize>) -> Result<Option<Policy>> {
    if keys.is_empty() {
        return Ok(None);
    }
    let witnesses = keys
        .iter()
        .map(|key| WitnessKey::parse(key))
        .collect::<weft_ledger::Result<Vec<_>>>()?;
    Ok(Some(Policy::new(witnesses, k.unwrap_or(keys.len()))?))
}

/// The witness policy of `--witness` keys, else the home's `[publish]`; `None` if neither
/// names a witness.
pub fn home_policy(ctx: &Globals, keys: &[String], k: Option<usize>) -> Result<Option<Policy>> {
    if !keys.is_empty() {
        return explicit_policy(keys, k);
    }
    let Ok(config) = Home::open(&ctx.home).and_then(|home| home.config()) else {
        return Ok(None);
    };
    if config.publish.witnesses.is_empty() {
        return Ok(None);
    }
    policy(ctx, keys, k).map(Some)
}

/// The witness policy to check with: `--witness` keys and `--policy`, else the home's own
/// `[publish]` (read from its config.toml here, not from the node's answer).
fn policy(ctx: &Globals, keys: &[String], k: Option<usize>) -> Result<Policy> {
    let (keys, k) = if keys.is_empty() {
        let config = Home::open(&ctx.home)
            .and_then(|home| home.config())
            .context(
                "no --witness KEY given, and the home's config.toml cannot be read for its \
                 [publish] witnesses",
            )?;
        if config.publish.witnesses.is_empty() {
            bail!(
                "no --witness KEY given and no [publish] witnesses in {}'s config.toml: name the \
                 witnesses whose cosignatures you trust",
                ctx.home.display()
            );
        }
        let keys = config
            .publish
            .witnesses
            .iter()
            .map(|witness| witness.key.clone())
            .collect::<Vec<_>>();
        (keys, k.unwrap_or(config.publish.k()))
    } else {
        (keys.to_vec(), k.unwrap_or(keys.len()))
    };
    let witnesses = keys
        .iter()
        .map(|key| WitnessKey::parse(key))
        .collect::<weft_ledger::Result<Vec<_>>>()?;
    Ok(Policy::new(witnesses, k)?)
}

pub fn anchor_status(
    ctx: &Globals,
    witness_keys: &[String],
    k: Option<usize>,
    trust: &[PathBuf],
) -> Result<()> {
    let node = crate::context::node_client(ctx)?;
    let typed = node.typed();
    let place = typed.base().to_string();
    let anchors: weft_api::AnchorsAnswer = typed.get("/v1/anchors")?;
    let Some(status) = typed.get_optional::<weft_api::PublishStatus>("/v1/publish")? else {
        ctx.out
            .emit(json!({"publishing": null, "anchors": anchors}), || {
                format!(
                    "PUBLISHING  not configured on {place} ([publish])\n{}",
                    anchors_text(&anchors)
                )
            });
        return Ok(());
    };
    let policy = policy(ctx, witness_keys, k)?;
    let witnessed = match typed.get_text("/v1/checkpoint/witnessed", 64 << 10) {
        Ok(text) => Some(text),
        Err(error) if error.is_not_found() => None,
        Err(error) => return Err(error.into()),
    };
    let checked = match &witnessed {
        None => Value::Null,
        Some(text) => {
            let note = Note::parse(text.as_bytes()).map_err(|error| {
                untrusted(format!(
                    "{place} answered with a malformed checkpoint: {error}"
                ))
            })?;
            let parsed = weft_ledger::checkpoint::Checkpoint::parse(&note.text)
                .map_err(|error| untrusted(format!("{place}: {error}")))?;
            let roots = roots(ctx, trust)?;
            let chain_id = parsed.origin.rsplit('/').next().unwrap_or_default();
            let pinned = root_for(&roots, chain_id)?;
            // Who signs a checkpoint of that size: the root's validators and the certified
            // changes, as the node gives them with the checkpoint of that size.
            let changes: Vec<ValidatorChangeProof> =
                serde_json::from_value(typed.checkpoint(Some(parsed.size))?.validator_changes)
                    .map_err(|error| {
                        untrusted(format!(
                            "{place} answered with malformed validator changes: {error}"
                        ))
                    })?;
            let schedule = weft_ledger::proof::checked_changes(
                &changes,
                &pinned.root,
                &weft_node::net::finality::Certificates,
            )
            .map_err(|error| {
                untrusted(format!("{place}'s validator changes do not check: {error}"))
            })?;
            let verified = weft_ledger::cosigned::verify(&note, &pinned.root, &schedule, &policy)
                .map_err(|error| {
                untrusted(format!(
                    "the witnessed checkpoint from {place} does not check: {error}"
                ))
            })?;
            json!({
                "size": verified.checkpoint.checkpoint.size,
                "root": verified.checkpoint.checkpoint.root.to_hex(),
                "signers": verified.checkpoint.signers.len(),
                "validators": verified.checkpoint.of,
                "cosigners": cosigners_json(&verified.cosigners),
                "policy": policy.k,
                "trust_root": root_json(pinned),
                "note": note.to_text(),
            })
        }
    };
    let mut value = serde_json::to_value(&status)?;
    value["checked"] = checked.clone();
    let value = json!({"publishing": value, "anchors": anchors});
    ctx.out.emit(value, || {
        let mut text = format!(
            "PUBLISHING  {} blocks; to {} witnesses, {} must cosign\n  pushed     {} blocks\n  \
             witnessed  {}",
            status.head_size,
            status.witnesses.len(),
            status.policy,
            status.published_size,
            if status.witnessed_size == 0 {
                "nothing yet".to_string()
            } else {
                format!(
                    "{} blocks at {} (lag {} blocks)",
                    status.witnessed_size,
                    weft_node::query::format_time(status.witnessed_at_ms),
                    status.lag_blocks
                )
            }
        );
        if !checked.is_null() {
            text.push_str(&format!(
                "\n  checked    signed by {} of {} validators and cosigned by {} ({} of {} \
                 needed), against {}",
                checked["signers"],
                checked["validators"],
                cosigner_names(&checked["cosigners"]),
                policy.k,
                policy.witnesses.len(),
                checked["trust_root"]["source"].as_str().unwrap_or_default()
            ));
        }
        if let Some(error) = &status.last_error {
            text.push_str(&format!("\n  last round failed: {error}"));
        }
        for witness in &status.witnesses {
            text.push_str(&format!(
                "\n  witness    {} ({}): cosigned {} blocks, {} failed pushes{}",
                witness.name,
                witness.url,
                witness.cosigned_size,
                witness.failures,
                witness
                    .last_error
                    .as_ref()
                    .map(|error| format!("; last: {error}"))
                    .unwrap_or_default()
            ));
        }
        text.push('\n');
        text.push_str(&anchors_text(&anchors));
        text
    });
    Ok(())
}

/// The chains anchored on a node's chain, as text (the node's answer, said to be so).
fn anchors_text(anchors: &weft_api::AnchorsAnswer) -> String {
    let mut text = format!(
        "ANCHORED    {} chains (as the node says)",
        anchors.chains.len()
    );
    for chain in &anchors.chains {
        let status = anchors
            .anchoring
            .as_ref()
            .and_then(|all| all.iter().find(|status| status.origin == chain.origin));
        text.push_str(&format!(
            "\n  {}  {} blocks anchored{}{}",
            chain.chain,
            chain.size.unwrap_or(0),
            status
                .map(|status| format!(
                    ", {} seen, {} failed rounds{}",
                    status.seen_size,
                    status.failures,
                    status
                        .last_error
                        .as_ref()
                        .map(|error| format!("; last: {error}"))
                        .unwrap_or_default()
                ))
                .unwrap_or_default(),
            if chain.evidence.is_empty() {
                String::new()
            } else {
                format!(
                    "\n    EVIDENCE: it signed two histories ({} transactions; `weft anchor evidence`)",
                    chain.evidence.len()
                )
            }
        ));
    }
    if let Some(stamping) = &anchors.timestamping {
        text.push_str(&format!(
            "\nTIMESTAMPED {} by {}{}{}",
            if stamping.size == 0 {
                "nothing yet".to_string()
            } else {
                format!(
                    "{} blocks at {} (transaction {}; `weft anchor timestamp` checks it)",
                    stamping.size,
                    weft_node::query::format_time(stamping.time_ms),
                    stamping.tx.as_deref().unwrap_or_default()
                )
            },
            stamping.url,
            if stamping.failures == 0 {
                String::new()
            } else {
                format!(", {} failed rounds", stamping.failures)
            },
            stamping
                .last_error
                .as_ref()
                .map(|error| format!("; last: {error}"))
                .unwrap_or_default()
        ));
    }
    text
}

/// `weft anchor register FILE`: a network authority registers another chain, by its trust root,
/// for anchoring.
pub fn anchor_register(ctx: &Globals, file: &Path) -> Result<()> {
    let root = weft_client::trust::read(file)?;
    let genesis = weft_ledger::trust::genesis_block(&root.document().genesis)?;
    let home = Home::open(&ctx.home)?;
    let authority = home.authority_key().context(
        "registering another chain is signed by a network authority; this home has no \
         keys/authority.key",
    )?;
    let mut chain = crate::chain::open(ctx)?;
    chain.commit(
        ctx,
        &home,
        weft_ledger::Signer::Authority,
        &authority,
        Payload::RegisterChain(RegisterChain {
            genesis: weft_core::encoding::encode(&genesis),
        }),
    )?;
    Ok(())
}

/// The evidence file's format.
pub const EVIDENCE_FORMAT: &str = "weft-anchor-evidence/v1";

/// Checks one piece of evidence against the trust roots: both notes signed by a quorum of the
/// chain's validators, of one size, with different roots.
fn check_evidence(
    roots: &[weft_client::trust::Pinned],
    first: &str,
    second: &str,
) -> Result<Value> {
    let verify = |text: &str| -> Result<(
        weft_ledger::checkpoint::VerifiedCheckpoint,
        &weft_client::trust::Pinned,
    )> {
        let note = Note::parse(text.as_bytes())?;
        let parsed = weft_ledger::checkpoint::Checkpoint::parse(&note.text)?;
        let chain_id = parsed
            .origin
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let pinned = root_for(roots, &chain_id)?;
        let schedule = weft_ledger::state::Schedule {
            genesis: pinned.root.validators.clone(),
            changes: Vec::new(),
        };
        let verified =
            weft_ledger::checkpoint::verify(&note, &pinned.root, &schedule).map_err(|error| {
                untrusted(format!(
                    "a checkpoint of the evidence does not check: {error}"
                ))
            })?;
        Ok((verified, pinned))
    };
    let (a, pinned) = verify(first)?;
    let (b, _) = verify(second)?;
    if a.checkpoint.origin != b.checkpoint.origin {
        return Err(untrusted("the two checkpoints are of two chains".into()));
    }
    weft_ledger::rules::anchors::check_conflict(&a, &b)
        .map_err(|error| untrusted(format!("no evidence: {error}")))?;
    Ok(json!({
        "origin": a.checkpoint.origin,
        "chain": pinned.root.chain,
        "size": a.checkpoint.size,
        "roots": [a.checkpoint.root.to_hex(), b.checkpoint.root.to_hex()],
        "trust_root": root_json(pinned),
    }))
}

/// `weft anchor evidence`: every piece of evidence recorded on the chain, each transaction
/// proven on it and each pair of checkpoints checked against the other chain's trust root.
pub fn anchor_evidence(ctx: &Globals, out: Option<&Path>, trust: &[PathBuf]) -> Result<()> {
    let node = crate::context::node_client(ctx)?;
    let anchors: weft_api::AnchorsAnswer = node.typed().get("/v1/anchors")?;
    let roots = roots(ctx, trust)?;
    let chain = crate::chain::open(ctx)?;
    let own_root = root_for(&roots, &chain.chain_id()?.to_hex())?;
    let mut found = Vec::new();
    for listed in &anchors.chains {
        for id in &listed.evidence {
            let id = TxId::from_hex(id)?;
            let (tx, height, _) = proven(chain.as_ref(), own_root, &id)?;
            let Some(Payload::AnchorEvidence(evidence)) = tx.payload else {
                return Err(untrusted(format!(
                    "transaction {id}, listed as evidence, is not AnchorEvidence"
                )));
            };
            let checked = check_evidence(&roots, &evidence.first, &evidence.second)?;
            found.push(json!({
                "format": EVIDENCE_FORMAT,
                "origin": checked["origin"],
                "first": evidence.first,
                "second": evidence.second,
                "recorded": {"chain": own_root.root.chain, "transaction": id.to_hex(), "height": height},
                "checked": checked,
            }));
        }
    }
    if let Some(out) = out {
        write_whole(out, serde_json::to_string_pretty(&found)?.as_bytes())?;
    }
    ctx.out.emit(json!({"evidence": found}), || {
        if found.is_empty() {
            return "no evidence: no chain anchored here signed two histories".to_string();
        }
        found
            .iter()
            .map(|piece| {
                format!(
                    "EVIDENCE  chain {} signed two histories of {} blocks\n  roots {} and {}\n  \
                     both checked against {}; recorded in transaction {} (block {})",
                    piece["checked"]["chain"].as_str().unwrap_or_default(),
                    piece["checked"]["size"],
                    piece["checked"]["roots"][0].as_str().unwrap_or_default(),
                    piece["checked"]["roots"][1].as_str().unwrap_or_default(),
                    piece["checked"]["trust_root"]["source"]
                        .as_str()
                        .unwrap_or_default(),
                    piece["recorded"]["transaction"]
                        .as_str()
                        .unwrap_or_default(),
                    piece["recorded"]["height"],
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// `weft anchor verify FILE`: evidence written by `weft anchor evidence --out`, checked offline
/// against the trust roots given (or pinned).
pub fn anchor_verify(ctx: &Globals, file: &Path, trust: &[PathBuf]) -> Result<()> {
    let metadata = fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if metadata.len() > 1 << 20 {
        bail!("{} is larger than evidence may be (1 MiB)", file.display());
    }
    let text =
        fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let pieces: Vec<Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not evidence (a JSON list)", file.display()))?;
    if pieces.is_empty() {
        bail!("{} holds no evidence", file.display());
    }
    let roots = roots(ctx, trust)?;
    let mut checked = Vec::new();
    for piece in &pieces {
        if piece["format"] != EVIDENCE_FORMAT {
            bail!("{}: a piece is not {EVIDENCE_FORMAT}", file.display());
        }
        let (Some(first), Some(second)) = (piece["first"].as_str(), piece["second"].as_str())
        else {
            bail!("{}: a piece lacks its two checkpoints", file.display());
        };
        checked.push(check_evidence(&roots, first, second)?);
    }
    ctx.out
        .emit(json!({"valid": true, "evidence": checked}), || {
            checked
            .iter()
            .map(|one| {
                format!(
                    "VALID EVIDENCE  chain {} signed two histories of {} blocks (roots {} and {}), \
                     checked against {}",
                    one["chain"].as_str().unwrap_or_default(),
                    one["size"],
                    one["roots"][0].as_str().unwrap_or_default(),
                    one["roots"][1].as_str().unwrap_or_default(),
                    one["trust_root"]["source"].as_str().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
        });
    Ok(())
}
