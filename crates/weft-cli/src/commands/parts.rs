//! `weft part register|transfer`: physical parts and their custody.

use super::*;

pub fn part_register(
    ctx: &Globals,
    code: String,
    as_: &str,
    signer: Option<&str>,
    description: Option<String>,
) -> Result<TxId> {
    let acting = Acting::open(ctx, as_, "--as", signer)?;
    let owner = acting.actor;
    let payload = Payload::RegisterPart(RegisterPart {
        owner,
        code,
        description,
    });
    acting.commit(ctx, payload)
}

pub fn part_transfer(
    ctx: &Globals,
    code: String,
    from: &str,
    to: &str,
    signer: Option<&str>,
) -> Result<TxId> {
    let acting = Acting::open(ctx, from, "--from", signer)?;
    let from = acting.actor;
    let to = acting.resolve(to, "--to")?;
    let payload = Payload::TransferPart(TransferPart { code, from, to });
    acting.commit(ctx, payload)
}
