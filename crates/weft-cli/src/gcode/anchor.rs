//! Anchoring a manifest (docs/gcode.md, "Anchored to the ledger"): what `gcode verify` and
//! `gcode open` believe of a manifest before they believe the G-code it describes, and the
//! writer that hashes the plaintext `open` writes.

use std::io::Write;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};
use weft_core::model::Payload;
use weft_core::{Fingerprint, HashAlgo, PublicKey, TxId};
use weft_gcode::manifest::Manifest;

use super::AnchorArgs;
use crate::commands::format_time;
use crate::context::Globals;

/// Anchors a manifest (docs/gcode.md, "Anchored to the ledger"): either its signer is a key the
/// user pinned, or — against the trust root, every answer proven — it is on the ledger, recorded
/// by the owner of the G-code it describes (or by a holder of a copy it may forward), signed by
/// the recorder's key, by the expected issuer, and, for `open`, the receiver is an intended
/// recipient of the G-code. The bool says whether all of that holds; the value and text say
/// what was found.
pub(super) fn anchor(
    ctx: &Globals,
    manifest_bytes: &[u8],
    manifest: &Manifest,
    args: &AnchorArgs,
    receiver: Option<&str>,
) -> Result<(Value, String, bool)> {
    let signature = manifest.check_signature();
    let signer = match signature {
        Some((true, Some(key))) => Some(key),
        _ => None,
    };
    if !args.pinned.is_empty() {
        let pinned = args
            .pinned
            .iter()
            .map(|key| PublicKey::from_hex(key).context("--trust-manifest-key"))
            .collect::<Result<Vec<_>>>()?;
        let ok = signer.is_some_and(|key| pinned.contains(&key));
        let human = if ok {
            format!(
                "anchor: signed by {}, a key you pinned (the ledger was not asked)",
                signer.expect("ok")
            )
        } else {
            "anchor: the manifest is not signed by a key you pinned".to_string()
        };
        return Ok((
            json!({"anchor": "pinned key", "signer": signer, "ok": ok}),
            human,
            ok,
        ));
    }
    let roots = crate::commands::roots(ctx, &args.trust)?;
    let chain = crate::chain::open(ctx)?;
    let place = chain.place();
    let fingerprint = Fingerprint::of_bytes(HashAlgo::Sha256, manifest_bytes);
    let mut report = chain.asset_report(&fingerprint, None)?;
    let checked =
        crate::commands::checked_report(chain.as_ref(), &roots, &fingerprint, None, &mut report)?;
    let Some(recorder) = checked.owner else {
        return Ok((
            json!({"recorded": false, "fingerprint": fingerprint.to_string(), "trust_root": checked.trust_root}),
            format!(
                "ledger: this manifest is NOT on the ledger at {place} (never recorded, or altered since)"
            ),
            false,
        ));
    };
    let pinned = crate::commands::root_for(&roots, &chain.chain_id()?.to_hex())?;
    let claim = report
        .history
        .iter()
        .find(|entry| entry.kind == "RecordOwnership")
        .context("a claimed manifest has its claim in its history")?;
    let (claim_tx, height, _) = crate::commands::proven(chain.as_ref(), pinned, &claim.tx_id)?;
    let mut problems: Vec<String> = Vec::new();
    // The manifest's signature: by the key that signed its recording, or the recorder's first key.
    match (signature, signer) {
        (None, _) => problems.push("the manifest is unsigned".into()),
        (Some(_), None) => problems.push("the manifest's signature does not verify".into()),
        (Some(_), Some(key)) if key == claim_tx.header.key => {}
        (Some(_), Some(key)) => {
            let registered =
                match crate::commands::proven(chain.as_ref(), pinned, &TxId(recorder.0))?
                    .0
                    .payload
                {
                    Some(Payload::RegisterResource(register)) => register.key == key,
                    _ => false,
                };
            if !registered {
                problems.push(format!(
                    "the manifest is signed by {key}, not by the recorder's key"
                ));
            }
        }
    }
    // The G-code it describes: its owner released it, or a holder of a copy it may forward.
    let design = format!("sha256:{}", manifest.body.file_sha256)
        .parse::<Fingerprint>()
        .context("the manifest's file_sha256")?;
    let receiver = receiver
        .map(|text| chain.resolve(text, "--as"))
        .transpose()?;
    let mut design_report = chain.asset_report(&design, receiver)?;
    let design_checked = crate::commands::checked_report(
        chain.as_ref(),
        &roots,
        &design,
        receiver,
        &mut design_report,
    )?;
    let owner_label = design_report.owner_label.clone().unwrap_or_default();
    match design_checked.owner {
        None => problems.push(format!(
            "the G-code itself ({design}) is not claimed on the ledger: nobody owns what the manifest releases"
        )),
        Some(owner) if owner != recorder && !design_checked.forwardable.contains(&recorder) => {
            problems.push(format!(
                "the manifest was recorded by {}, who neither owns the G-code ({owner_label} does) nor holds a copy it may forward",
                report.owner_label.as_deref().unwrap_or("?")
            ));
        }
        Some(_) => {}
    }
    if let Some(expected) = &args.expect_issuer {
        let expected = chain.resolve(expected, "--expect-issuer")?;
        if expected != recorder {
            problems.push(format!(
                "the manifest was recorded by {recorder}, not by {expected}"
            ));
        }
    }
    if let Some(me) = receiver
        && design_checked.verdict != weft_api::Verdict::Valid
    {
        problems.push(format!(
            "{me} is not an intended recipient of the G-code (neither its owner nor sent it)"
        ));
    }
    let ok = problems.is_empty();
    let human = format!(
        "ledger: recorded by {} at {} (block {height}, transaction {}); the G-code is owned by {}{}",
        report.owner_label.as_deref().unwrap_or("?"),
        format_time(claim.time),
        claim.tx_id,
        if owner_label.is_empty() {
            "nobody"
        } else {
            owner_label.as_str()
        },
        if ok {
            String::new()
        } else {
            format!("\n  NOT ANCHORED: {}", problems.join("; "))
        }
    );
    Ok((
        json!({
            "recorded": true,
            "fingerprint": fingerprint.to_string(),
            "by": report.owner,
            "time": claim.time,
            "time_utc": format_time(claim.time),
            "height": height,
            "tx_id": claim.tx_id,
            "signer_matches": signer.is_some() && !problems.iter().any(|p| p.contains("key")),
            "design": {"fingerprint": design.to_string(), "owner": design_report.owner, "verdict": design_checked.verdict},
            "anchored": ok,
            "problems": problems,
            "trust_root": checked.trust_root,
        }),
        human,
        ok,
    ))
}

/// A writer that hashes (SHA-256) what it passes on.
pub(super) struct Hashing<W> {
    inner: W,
    hasher: weft_core::Fingerprinter,
}

impl<W: Write> Hashing<W> {
    pub(super) fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: weft_core::Fingerprinter::new(HashAlgo::Sha256),
        }
    }

    /// The SHA-256 of everything written, hex.
    pub(super) fn into_hex(self) -> String {
        hex::encode(self.hasher.finish().digest)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
