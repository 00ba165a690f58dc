//! `weft chain info|verify`: the chain as a whole.

use super::*;

/// `weft chain info`: the chain's parameters and head, checked against the trust root — the
/// genesis parameters against the root's block 0, the head through a checkpoint a quorum signed
/// (`--also` adds other validators' signatures), the validators of the next block through the
/// certified changes.
pub fn chain_info(ctx: &Globals, trust: &[PathBuf], also: &[String]) -> Result<()> {
    let roots = roots(ctx, trust)?;
    let chain = crate::chain::open(ctx)?;
    let place = chain.place();
    let info = chain.chain_info()?;
    let lie = |what: &str| -> anyhow::Error {
        crate::output::Untrusted(format!(
            "{place} gave chain parameters that do not check against the trust root: {what}"
        ))
        .into()
    };
    let pinned = root_for(&roots, &info.chain_id.to_hex())?;
    let root = &pinned.root;
    if info.chain_name != root.chain
        || info.authorities != root.authorities
        || info.producers != root.validators
        || info.time_window_secs.saturating_mul(1000) != root.time_window_ms
    {
        return Err(lie("its genesis parameters are not those of block 0"));
    }
    let head = gathered(ctx, chain.as_ref(), &roots, Some(info.height + 1), also)?;
    let last_path = head
        .answer
        .last_path
        .iter()
        .map(|text| {
            use base64ct::Encoding as _;
            base64ct::Base64::decode_vec(text)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .map(weft_core::Hash32)
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| lie("the head's inclusion path is malformed"))?;
    if head.answer.last_hash != info.head_hash
        || !weft_core::merkle::verify_inclusion(
            &weft_ledger::checkpoint::leaf(&info.head_hash),
            info.height,
            info.height + 1,
            &last_path,
            &head.verified.checkpoint.root,
        )
    {
        return Err(lie(
            "its head is not the last block of the checkpoint a quorum signed",
        ));
    }
    // The validators of the next block, unless a change not yet proven starts there.
    let starts_next = info
        .scheduled
        .first()
        .is_some_and(|change| change.from_height == info.height + 1);
    let sorted = |keys: &[PublicKey]| {
        let mut keys = keys.to_vec();
        keys.sort();
        keys
    };
    if !starts_next
        && (sorted(head.schedule.producers_at(info.height + 1)) != sorted(&info.validators)
            || head.schedule.epoch_of(info.height + 1) != info.epoch)
    {
        return Err(lie(
            "the validators of its next block are not those the certified changes give",
        ));
    }
    let checked = json!({
        "trust_root": root_json(pinned),
        "head_signers": head.verified.signers.len(),
        "validators": head.verified.of,
    });
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
    line.push_str(&format!(
        "\n  checked against {}: genesis, and the head in a checkpoint signed by {} of {} validators",
        pinned.source.display(),
        head.verified.signers.len(),
        head.verified.of
    ));
    let mut value = serde_json::to_value(&info).context("the chain's parameters")?;
    value["checked"] = checked;
    ctx.out.emit(value, || line);
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
