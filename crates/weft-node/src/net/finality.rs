//! Checks a network's finalization certificates outside the node: what a verifier of an
//! inclusion proof (`weft_ledger::proof`) needs to believe that a quorum of a chain's
//! validators finalized a block. The certificate is commonware Simplex's `Finalization`, as the
//! node stores it with the block it finalizes (ADR 0010).

use commonware_codec::Decode as _;
use commonware_consensus::Epochable as _;
use weft_core::{BlockHash, ChainId, PublicKey};
use weft_ledger::proof::CertificateCheck;

use super::{Finalization, Scheme, key_set, namespace};

/// Verifies finalization certificates of weft networks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Certificates;

impl CertificateCheck for Certificates {
    fn check(
        &self,
        chain_id: &ChainId,
        epoch: u64,
        validators: &[PublicKey],
        block: &BlockHash,
        certificate: &[u8],
    ) -> Result<(), String> {
        let participants = validators.len();
        let decoded =
            Finalization::decode_cfg(commonware_codec::Copying(certificate), &participants)
                .map_err(|error| format!("not a finalization certificate: {error}"))?;
        if decoded.epoch().get() != epoch {
            return Err(format!(
                "it is of epoch {}, not {epoch}",
                decoded.epoch().get()
            ));
        }
        if decoded.proposal.payload.0 != block.0.0 {
            return Err(format!("it finalizes another block than {block}"));
        }
        let keys = key_set(validators).map_err(|error| error.to_string())?;
        if keys.len() != participants {
            return Err("the validators of the epoch repeat a key".into());
        }
        let verifier = Scheme::verifier(&namespace(*chain_id), keys);
        let mut rng = rand::rng();
        if decoded.verify(&mut rng, &verifier, &commonware_parallel::Sequential) {
            Ok(())
        } else {
            Err("its signatures are not those of a quorum of the epoch's validators".into())
        }
    }
}
