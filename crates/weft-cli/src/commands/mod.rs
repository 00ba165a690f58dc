//! The commands on a home's chain (embedded, or through the node running on it), one file per
//! noun: `resources` (`init`, `org add`, `person add`, `key rotate|revoke`), `assets` (`claim`,
//! `send`, `record add`, `verify`, `history`), `parts` (`part register|transfer`), `proofs`
//! (`tx`, `proof`, `proof verify`), `chain` (`chain info|verify`) and `trust` (`trust
//! show|export|add`, and the trust roots every verifying command checks against). Each opens the home,
//! does one thing and prints the result. Here: what they share, and the error report of a
//! failed command.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use weft_api::{AssetReport, Verdict};
use weft_core::model::*;
use weft_core::{Fingerprint, Fingerprinter, HashAlgo, PublicKey, ResourceId, SigningKey, TxId};
use weft_ledger::{RuleError, Signer};

use crate::chain::{Chain, certainly_refused, register_resource};
use crate::context::Globals;
use crate::output::{Negative, Output};
use weft_client::home::{Home, write_key};

mod anchor;
mod anchored;
mod assets;
mod chain;
mod checked;
mod checkpoints;
mod parts;
mod proofs;
mod resources;
mod timestamps;
mod trust;

pub use anchor::*;
pub use anchored::*;
pub use assets::*;
pub use chain::*;
pub use checked::*;
pub use checkpoints::*;
pub use parts::*;
pub use proofs::*;
pub use resources::*;
pub use timestamps::*;
pub use trust::*;

/// Fingerprints a file in constant memory, with a progress bar for large files on a terminal.
pub fn fingerprint_file(path: &Path, algo: HashAlgo, out: &Output) -> Result<Fingerprint> {
    let mut file =
        fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let metadata = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if metadata.is_dir() {
        bail!("{} is a directory, not a file", path.display());
    }
    let bar = if metadata.len() > 64 << 20 {
        out.progress(metadata.len(), "fingerprinting")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut fingerprinter = Fingerprinter::new(algo);
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if read == 0 {
            break;
        }
        fingerprinter.update(&buffer[..read]);
        bar.inc(read as u64);
    }
    bar.finish_and_clear();
    Ok(fingerprinter.finish())
}

/// The resource that signs for `actor`: the actor itself, or `--signer PERSON` of that organisation.
fn signer_for(
    home: &Home,
    chain: &dyn Chain,
    actor: ResourceId,
    signer: Option<&str>,
) -> Result<(ResourceId, SigningKey)> {
    let Some(signer) = signer else {
        return Ok((actor, home.resource_key(&actor)?));
    };
    let person = chain.resolve(signer, "--signer")?;
    match chain
        .organization_of(&person)?
        .context("--signer is not registered")?
    {
        Some(organization) if organization == actor => Ok((person, home.resource_key(&person)?)),
        Some(_) => bail!("--signer {person} does not belong to organization {actor}"),
        None => bail!("--signer {person} is an organization, not a person"),
    }
}

/// A command acting for a resource: the opened home and chain, the acting resource, and the
/// resource (itself, or `--signer PERSON` of it) whose key signs.
pub(crate) struct Acting {
    pub(crate) home: Home,
    pub(crate) chain: Box<dyn Chain>,
    pub(crate) actor: ResourceId,
    pub(crate) signer: ResourceId,
    pub(crate) key: SigningKey,
}

impl Acting {
    pub(crate) fn open(
        ctx: &Globals,
        actor: &str,
        role: &str,
        signer: Option<&str>,
    ) -> Result<Self> {
        let home = Home::open(&ctx.home)?;
        let chain = crate::chain::open(ctx)?;
        let actor = chain.resolve(actor, role)?;
        let (signer, key) = signer_for(&home, chain.as_ref(), actor, signer)?;
        Ok(Acting {
            home,
            chain,
            actor,
            signer,
            key,
        })
    }

    fn resolve(&self, input: &str, role: &str) -> Result<ResourceId> {
        self.chain.resolve(input, role)
    }

    pub(crate) fn commit(mut self, ctx: &Globals, payload: Payload) -> Result<TxId> {
        let signer = Signer::Resource(self.signer);
        self.chain
            .commit(ctx, &self.home, signer, &self.key, payload)
    }
}

/// Writes `bytes` to `path` whole or not at all: a temporary file beside it, renamed.
pub(crate) fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = path.with_extension("tmp");
    fs::write(&temporary, bytes)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}

/// SHA-256 hashes sent as base64 (consistency and inclusion paths); `None` if any is not one.
pub(crate) fn base64_hashes(texts: &[String]) -> Option<Vec<weft_core::Hash32>> {
    use base64ct::Encoding as _;
    texts
        .iter()
        .map(|text| {
            base64ct::Base64::decode_vec(text)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .map(weft_core::Hash32)
        })
        .collect()
}

/// `{"error": {...}}` for a failed command, and its exit code.
pub fn error_report(error: &anyhow::Error) -> (Value, String, i32) {
    use crate::output::exit;
    if error.downcast_ref::<Negative>().is_some() {
        return (Value::Null, String::new(), exit::NEGATIVE);
    }
    // An answer of another shape than the endpoint's cannot be believed either.
    if let Some(shape @ weft_api::client::ClientError::Shape { .. }) =
        error.downcast_ref::<weft_api::client::ClientError>()
    {
        let message = format!("{shape}: {error:#}");
        return (
            json!({"error": {"rule": null, "untrusted": true, "message": message}}),
            format!("untrusted: {message}"),
            exit::NEGATIVE,
        );
    }
    if let Some(untrusted) = error.downcast_ref::<crate::output::Untrusted>() {
        return (
            json!({"error": {"rule": null, "untrusted": true, "message": untrusted.0}}),
            format!("untrusted: {}", untrusted.0),
            exit::NEGATIVE,
        );
    }
    if let Some(remote) = crate::client::remote_rule(error) {
        return (
            json!({"error": {"rule": remote.rule, "message": remote.message}}),
            format!("rejected: {}", remote.message),
            exit::REJECTED,
        );
    }
    let rule = error
        .downcast_ref::<RuleError>()
        .cloned()
        .or_else(|| match error.downcast_ref::<weft_ledger::LedgerError>() {
            Some(weft_ledger::LedgerError::Rule(rule)) => Some(rule.clone()),
            _ => None,
        });
    match rule {
        Some(rule) => (
            json!({"error": {"rule": rule.rule(), "message": rule.to_string()}}),
            format!("rejected: {rule}"),
            exit::REJECTED,
        ),
        None => {
            let message = format!("{error:#}");
            (
                json!({"error": {"rule": null, "message": message}}),
                format!("error: {message}"),
                exit::ERROR,
            )
        }
    }
}
