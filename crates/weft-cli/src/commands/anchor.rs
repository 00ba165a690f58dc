//! `weft anchor status`: how a node's publishing to its witnesses fares (lag, failures), and its
//! latest witnessed checkpoint, checked here against the chain's trust root and the witness keys
//! the user holds (docs/anchoring.md).

use weft_ledger::checkpoint::Note;
use weft_ledger::cosigned::{Policy, WitnessKey};
use weft_ledger::proof::ValidatorChangeProof;

use super::*;
use crate::output::Untrusted;

fn untrusted(message: String) -> anyhow::Error {
    Untrusted(message).into()
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
    let status: weft_api::PublishStatus = typed.get("/v1/publish")?;
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
                "cosigners": verified.cosigners.iter()
                    .map(|(name, time)| json!({"name": name, "time": time}))
                    .collect::<Vec<_>>(),
                "policy": policy.k,
                "trust_root": root_json(pinned),
                "note": note.to_text(),
            })
        }
    };
    let mut value = serde_json::to_value(&status)?;
    value["checked"] = checked.clone();
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
                checked["cosigners"]
                    .as_array()
                    .map(|all| all
                        .iter()
                        .map(|one| one["name"].as_str().unwrap_or_default().to_string())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default(),
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
        text
    });
    Ok(())
}
