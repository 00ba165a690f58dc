//! `weft trust show|export|add`, and [`roots`]: the trust roots a verifying command checks
//! answers against (docs/proofs.md, "Trust roots"). Without one, nothing is believed: the
//! command refuses with exit 4 and says how to give one.

use weft_client::trust::{self, Pinned};
use weft_ledger::trust::TrustRoot;

use super::*;
use crate::output::Untrusted;

/// The roots a verifying command uses: the `--trust` files if any are given (and only those),
/// else every root pinned in the home (the default home included). None at all is refused.
pub fn roots(ctx: &Globals, files: &[PathBuf]) -> Result<Vec<Pinned>> {
    let roots = if files.is_empty() {
        trust::pinned(&ctx.home)?
    } else {
        files
            .iter()
            .map(|file| {
                Ok(Pinned {
                    root: trust::read(file)?,
                    source: file.clone(),
                })
            })
            .collect::<Result<Vec<_>>>()?
    };
    if roots.is_empty() {
        return Err(Untrusted(format!(
            "no trust root: nothing can be checked, so nothing is believed. Give one with \
             --trust FILE (written by `weft trust export` on a home of the chain), or pin it \
             with `weft trust add FILE --genesis-hash HASH` (none is pinned in {})",
            trust::dir(&ctx.home).display()
        ))
        .into());
    }
    Ok(roots)
}

/// The root of chain `chain_id` among `roots`, or why there is none (exit 4). Two roots of the
/// same chain id (two chains of one name) are ambiguous: the user says which with `--trust`.
pub fn root_for<'a>(roots: &'a [Pinned], chain_id: &str) -> Result<&'a Pinned> {
    let mut matching = roots
        .iter()
        .filter(|pinned| pinned.root.chain_id.to_hex() == chain_id);
    match (matching.next(), matching.next()) {
        (Some(pinned), None) => Ok(pinned),
        (Some(first), Some(second)) => Err(Untrusted(format!(
            "two trust roots are pinned for chain {chain_id} ({} and {}): two chains share its \
             name; say which with --trust FILE",
            first.source.display(),
            second.source.display()
        ))
        .into()),
        _ => {
            let known: Vec<String> = roots
                .iter()
                .map(|pinned| format!("{:?}", pinned.root.chain))
                .collect();
            Err(Untrusted(format!(
                "no trust root for chain {chain_id} (the roots given are for {}): give its root \
                 with --trust FILE or `weft trust add`",
                known.join(", ")
            ))
            .into())
        }
    }
}

/// How JSON output names the trust root a command used.
pub fn root_json(pinned: &Pinned) -> Value {
    json!({
        "chain": pinned.root.chain,
        "chain_id": pinned.root.chain_id.to_hex(),
        "genesis_hash": pinned.root.genesis_hash.to_hex(),
        "source": pinned.source.display().to_string(),
    })
}

fn summary(pinned: &Pinned) -> Value {
    let root = &pinned.root;
    json!({
        "chain": root.chain,
        "chain_id": root.chain_id.to_hex(),
        "genesis_hash": root.genesis_hash.to_hex(),
        "validators": root.validators.iter().map(PublicKey::to_hex).collect::<Vec<_>>(),
        "authorities": root.authorities.iter().map(PublicKey::to_hex).collect::<Vec<_>>(),
        "file": pinned.source.display().to_string(),
    })
}

fn describe(pinned: &Pinned) -> String {
    let root = &pinned.root;
    let finality = match root.validators.len() {
        1 => "blocks final by the seal of producer".to_string(),
        n => format!("blocks final by a quorum of {n} validators"),
    };
    format!(
        "chain {:?} ({})\n  genesis hash {}\n  {finality}:\n    {}\n  file {}",
        root.chain,
        root.chain_id,
        root.genesis_hash,
        root.validators
            .iter()
            .map(PublicKey::to_hex)
            .collect::<Vec<_>>()
            .join("\n    "),
        pinned.source.display()
    )
}

/// `weft trust show`: the roots pinned in the home.
pub fn trust_show(ctx: &Globals) -> Result<()> {
    if let Ok(home) = Home::open(&ctx.home) {
        home.ensure_trust()?;
    }
    let pinned = trust::pinned(&ctx.home)?;
    ctx.out.emit(
        json!({"dir": trust::dir(&ctx.home).display().to_string(), "roots": pinned.iter().map(summary).collect::<Vec<_>>()}),
        || {
            if pinned.is_empty() {
                format!(
                    "no trust root pinned in {} (`weft trust add FILE --genesis-hash HASH`)",
                    trust::dir(&ctx.home).display()
                )
            } else {
                pinned.iter().map(describe).collect::<Vec<_>>().join("\n")
            }
        },
    );
    Ok(())
}

/// `weft trust export [--chain NAME] [--out FILE]`: a pinned root as a document to hand to
/// those who verify (by default the home's own chain, or the only root pinned).
pub fn trust_export(ctx: &Globals, chain: Option<&str>, out_file: Option<&Path>) -> Result<()> {
    if let Ok(home) = Home::open(&ctx.home) {
        home.ensure_trust()?;
    }
    let pinned = trust::pinned(&ctx.home)?;
    let own = Home::open(&ctx.home)
        .ok()
        .and_then(|home| home.config().ok().map(|_| home))
        .and_then(|home| home.ledger().ok())
        .map(|ledger| ledger.genesis().chain_name.clone());
    let wanted = chain.map(str::to_string).or(own);
    let chosen: Vec<&Pinned> = pinned
        .iter()
        .filter(|pinned| {
            wanted
                .as_ref()
                .is_none_or(|name| &pinned.root.chain == name)
        })
        .collect();
    let pinned = match chosen.as_slice() {
        [one] => *one,
        [] => bail!(
            "no trust root {}pinned in {}",
            wanted
                .map(|name| format!("of chain {name:?} "))
                .unwrap_or_default(),
            trust::dir(&ctx.home).display()
        ),
        _ => bail!("several roots are pinned: name one with --chain NAME"),
    };
    let text =
        serde_json::to_string_pretty(&pinned.root.document()).expect("a root serialises") + "\n";
    match out_file {
        Some(path) => {
            write_whole(path, text.as_bytes())?;
            ctx.out.emit(
                json!({"out": path.display().to_string(), "chain": pinned.root.chain, "genesis_hash": pinned.root.genesis_hash.to_hex()}),
                || {
                    format!(
                        "wrote the trust root of chain {:?} to {}\n  genesis hash {} (tell it to \
                         those you give the file, apart from it)",
                        pinned.root.chain,
                        path.display(),
                        pinned.root.genesis_hash
                    )
                },
            );
        }
        None => crate::output::print(&text),
    }
    Ok(())
}

/// `weft trust add FILE --genesis-hash HASH`: pins a chain's root from a trust root document or
/// a join document, once the user confirms block 0's hash (told out of band).
pub fn trust_add(ctx: &Globals, file: &Path, genesis_hash: &str) -> Result<()> {
    let metadata = fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if metadata.len() > weft_node::MAX_JOIN_BYTES as u64 {
        bail!(
            "{} is {} bytes: too large for a trust root or join document",
            file.display(),
            metadata.len()
        );
    }
    let bytes = fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let format = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|value| {
            value
                .get("format")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    let root = match format.as_deref() {
        Some(weft_ledger::trust::TRUST_FORMAT) => {
            TrustRoot::parse(&bytes).with_context(|| format!("{}", file.display()))?
        }
        Some("weft-join-v1") => {
            let text = std::str::from_utf8(&bytes).context("the join document is not UTF-8")?;
            let (_, block) = weft_node::parse_join_document(text)
                .with_context(|| format!("{}", file.display()))?;
            TrustRoot::from_genesis(&block)?
        }
        _ => bail!(
            "{} is neither a trust root ({}) nor a join document (weft-join-v1)",
            file.display(),
            weft_ledger::trust::TRUST_FORMAT
        ),
    };
    root.confirm(genesis_hash)
        .map_err(|error| Untrusted(error.to_string()))?;
    let (path, new) = trust::pin(&ctx.home, &root)?;
    let pinned = Pinned { root, source: path };
    ctx.out
        .emit(json!({"added": new, "root": summary(&pinned)}), || {
            let verb = if new { "pinned" } else { "already pinned:" };
            format!("{verb} {}", describe(&pinned))
        });
    Ok(())
}
