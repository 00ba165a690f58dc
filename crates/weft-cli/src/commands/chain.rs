//! `weft chain info|verify`: the chain as a whole.

use super::*;

pub fn chain_info(ctx: &Globals) -> Result<()> {
    let info = crate::chain::open(ctx)?.chain_info()?;
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
    ctx.out.emit(
        serde_json::to_value(&info).context("the chain's parameters")?,
        || line,
    );
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
