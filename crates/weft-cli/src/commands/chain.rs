//! `weft chain info|verify`: the chain as a whole.

use super::*;

/// `weft chain info`: the chain's parameters and head, checked against the trust root — the
/// genesis parameters against the root's block 0, the head as a block final on the chain (its
/// producer's seal, or a quorum's certificate, through the certified validator changes), the
/// validators of the next block through those changes.
pub fn chain_info(ctx: &Globals, trust: &[PathBuf]) -> Result<()> {
    let roots = roots(ctx, trust)?;
    let chain = crate::chain::open(ctx)?;
    let place = chain.place();
    let info = chain.chain_info()?;
    let lie = |what: String| -> anyhow::Error {
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
        return Err(lie("its genesis parameters are not those of block 0".into()));
    }
    // The head: a final block of the chain, at the height and with the hash given.
    let next = info
        .height
        .checked_add(1)
        .ok_or_else(|| lie("its height has no next block".into()))?;
    let head = chain.checkpoint(Some(next))?;
    let (signed, schedule, head_final) = final_block(head, root).map_err(&lie)?;
    if signed.header.hash() != info.head_hash || signed.header.height != info.height {
        return Err(lie("the head it names is not the header it gives".into()));
    }
    // The validators of the next block, unless a change not yet proven starts there.
    let starts_next = info
        .scheduled
        .first()
        .is_some_and(|change| change.from_height == next);
    let sorted = |keys: &[PublicKey]| {
        let mut keys = keys.to_vec();
        keys.sort();
        keys
    };
    if !starts_next
        && (sorted(schedule.producers_at(next)) != sorted(&info.validators)
            || schedule.epoch_of(next) != info.epoch)
    {
        return Err(lie(
            "the validators of its next block are not those the certified changes give".into(),
        ));
    }
    let head_finality = head_final;
    let checked = json!({
        "trust_root": root_json(pinned),
        "head": head_finality,
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
        "\n  checked against {}: genesis, and the head ({head_finality})",
        pinned.source.display(),
    ));
    let mut value = serde_json::to_value(&info).context("the chain's parameters")?;
    value["checked"] = checked;
    ctx.out.emit(value, || line);
    Ok(())
}

/// The last block of a checkpoint answer (`GET /v1/checkpoint?size=H+1`), believed once its
/// header is final on the chain of `root` — its producer's seal, or a quorum's certificate,
/// through the certified validator changes the answer carries. Returns the header, the schedule
/// those changes give, and how it is final (`sealed`, `certified` or `genesis`); the error says
/// what does not hold.
pub(crate) fn final_block(
    answer: weft_api::CheckpointAnswer,
    root: &weft_ledger::trust::TrustRoot,
) -> std::result::Result<
    (
        weft_ledger::block::SignedHeader,
        weft_ledger::state::Schedule,
        &'static str,
    ),
    String,
> {
    let changes: Vec<weft_ledger::proof::ValidatorChangeProof> =
        serde_json::from_value(answer.validator_changes)
            .map_err(|error| format!("malformed validator changes: {error}"))?;
    let certificates = weft_node::net::finality::Certificates;
    let schedule = weft_ledger::proof::checked_changes(&changes, root, &certificates)
        .map_err(|error| format!("its validator changes: {error}"))?;
    let signed: weft_ledger::block::SignedHeader = hex::decode(&answer.last_header)
        .ok()
        .and_then(|bytes| weft_core::encoding::decode(&bytes).ok())
        .ok_or("the block's header does not decode")?;
    if signed.header.hash() != answer.last_hash || signed.header.height + 1 != answer.size {
        return Err("the block it names is not the header it gives".into());
    }
    let finality: Option<weft_ledger::proof::FinalityProof> =
        serde_json::from_value(answer.last_finality)
            .map_err(|error| format!("the block's finality is malformed: {error}"))?;
    if signed.header.height > 0 && finality.is_none() {
        return Err(
            "it holds no certificate of the block yet (ask again once the next block is final)"
                .into(),
        );
    }
    let how = weft_ledger::proof::check_block_final(
        &signed,
        finality.as_ref(),
        false,
        root,
        &schedule,
        &certificates,
    )
    .map_err(|error| format!("the block is not final: {error}"))?;
    Ok((
        signed,
        schedule,
        how.as_ref().map_or("genesis", |f| f.kind()),
    ))
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
