//! Signed transactions.
//!
//! A transaction is a header, an Ed25519 signature and an optional payload. The header carries
//! `timeOfTx`, the payload's kind and the SHA-256 of the payload's canonical bytes; the
//! transaction id (`txId`) is the hash of the header, and the signature is over the id in the
//! `transaction` namespace. So a transaction stripped of its payload (kept by nodes that do not
//! need it) still verifies, and re-attaching a different payload is detected.

use borsh::{BorshDeserialize, BorshSerialize};
use weft_core::encoding::{Canonical, FORMAT_VERSION, check_version, encode};
use weft_core::model::{Payload, PayloadKind};
use weft_core::{
    ChainId, CoreError, Hash32, Namespace, PublicKey, ResourceId, Signature, SigningKey, TxId,
};

/// Who signed: a network authority (for registering organisations) or a registered resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, serde::Serialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Signer {
    Authority,
    Resource(ResourceId),
}

/// The signed header of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TxHeader {
    pub version: u8,
    pub chain_id: ChainId,
    pub kind: PayloadKind,
    /// `timeOfTx`: milliseconds since the Unix epoch.
    pub time_of_tx: u64,
    pub signer: Signer,
    pub key: PublicKey,
    pub payload_hash: Hash32,
    pub payload_len: u32,
}

impl Canonical for TxHeader {
    const WHAT: &'static str = "transaction header";
    const MAX_ENCODED: usize = 256;
    fn validate(&self) -> Result<(), CoreError> {
        check_version("transaction header version", self.version)
    }
}

/// Hash of a payload's canonical bytes, as committed in the header.
pub fn payload_hash(payload_bytes: &[u8]) -> Hash32 {
    Hash32::sha256(&[b"weft payload v1\0", payload_bytes])
}

/// A signed transaction; `payload` is `None` when stripped.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Transaction {
    pub header: TxHeader,
    pub signature: Signature,
    pub payload: Option<Payload>,
}

impl Canonical for Transaction {
    const WHAT: &'static str = "transaction";
    const MAX_ENCODED: usize = TxHeader::MAX_ENCODED + 64 + 1 + Payload::MAX_ENCODED;
    fn validate(&self) -> Result<(), CoreError> {
        self.header.validate()?;
        if let Some(payload) = &self.payload {
            payload.validate()?;
            let bytes = encode(payload);
            if payload_hash(&bytes) != self.header.payload_hash
                || bytes.len() as u64 != u64::from(self.header.payload_len)
            {
                return Err(CoreError::InvalidField {
                    field: "payload",
                    reason: "does not match the payload hash committed in the header".into(),
                });
            }
            if payload.kind() != self.header.kind {
                return Err(CoreError::InvalidField {
                    field: "payload",
                    reason: format!(
                        "is a {} but the header says {}",
                        payload.kind().name(),
                        self.header.kind.name()
                    ),
                });
            }
        }
        Ok(())
    }
}

impl Transaction {
    /// Builds and signs a transaction.
    pub fn sign(
        chain_id: ChainId,
        time_of_tx: u64,
        signer: Signer,
        key: &SigningKey,
        payload: Payload,
    ) -> Result<Self, CoreError> {
        payload.validate()?;
        let payload_bytes = encode(&payload);
        let header = TxHeader {
            version: FORMAT_VERSION,
            chain_id,
            kind: payload.kind(),
            time_of_tx,
            signer,
            key: key.public_key(),
            payload_hash: payload_hash(&payload_bytes),
            payload_len: u32::try_from(payload_bytes.len()).map_err(|_| CoreError::TooLarge {
                what: "transaction payload",
                len: payload_bytes.len(),
                max: u32::MAX as usize,
            })?,
        };
        let id = TxId::of_header_bytes(&encode(&header));
        let signature = key.sign(Namespace::Transaction, id.as_bytes());
        Ok(Transaction {
            header,
            signature,
            payload: Some(payload),
        })
    }

    pub fn id(&self) -> TxId {
        TxId::of_header_bytes(&encode(&self.header))
    }

    /// Checks the signature over the id (one by one; see `verify_many` for batches).
    pub fn verify_signature(&self) -> Result<(), CoreError> {
        self.header.key.verify(
            Namespace::Transaction,
            self.id().as_bytes(),
            &self.signature,
        )
    }

    /// The RFC 6962 leaf hash of this transaction: it commits to the id (hence the header and
    /// payload) and to the signature.
    pub fn leaf_hash(&self, id: &TxId) -> Hash32 {
        weft_core::merkle::leaf_hash(&[&id.as_bytes()[..], &self.signature.0[..]].concat())
    }

    /// The same transaction without its payload.
    pub fn stripped(&self) -> Transaction {
        Transaction {
            header: self.header.clone(),
            signature: self.signature,
            payload: None,
        }
    }
}

/// Verifies the signatures of `transactions` (with their precomputed ids), in parallel batches.
/// Returns the indexes of the transactions whose signature is bad (empty when all are good).
pub fn verify_many(transactions: &[Transaction], ids: &[TxId]) -> Vec<usize> {
    use weft_core::keys::{BatchItem, verify_batch};
    const CHUNK: usize = 1024;
    let check_chunk = |offset: usize, txs: &[Transaction], chunk_ids: &[TxId]| -> Vec<usize> {
        let mut bad = Vec::new();
        for (chunk_index, (small, small_ids)) in
            txs.chunks(CHUNK).zip(chunk_ids.chunks(CHUNK)).enumerate()
        {
            let items: Vec<BatchItem<'_>> = small
                .iter()
                .zip(small_ids)
                .map(|(tx, id)| BatchItem {
                    key: &tx.header.key,
                    namespace: Namespace::Transaction,
                    message: id.as_bytes(),
                    signature: &tx.signature,
                })
                .collect();
            if verify_batch(&items).is_err() {
                // Find the culprits one by one.
                for (index, (tx, id)) in small.iter().zip(small_ids).enumerate() {
                    if tx
                        .header
                        .key
                        .verify(Namespace::Transaction, id.as_bytes(), &tx.signature)
                        .is_err()
                    {
                        bad.push(offset + chunk_index * CHUNK + index);
                    }
                }
            }
        }
        bad
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(8);
    if transactions.len() < 2 * CHUNK || threads == 1 {
        return check_chunk(0, transactions, ids);
    }
    let per_thread = transactions.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = transactions
            .chunks(per_thread)
            .zip(ids.chunks(per_thread))
            .enumerate()
            .map(|(part, (txs, part_ids))| {
                scope.spawn(move || check_chunk(part * per_thread, txs, part_ids))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| {
                handle
                    .join()
                    .expect("signature verification does not panic")
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::encoding::decode;
    use weft_core::model::{Payload, RegisterPart};

    fn sample(seed: u8) -> Transaction {
        let key = SigningKey::from_seed(&[seed; 32]);
        let payload = Payload::RegisterPart(RegisterPart {
            owner: ResourceId(Hash32([seed; 32])),
            code: format!("SN-{seed}"),
            description: None,
        });
        Transaction::sign(
            ChainId::from_name("test").expect("name"),
            1_000,
            Signer::Resource(ResourceId(Hash32([seed; 32]))),
            &key,
            payload,
        )
        .expect("valid")
    }

    #[test]
    fn stripped_transaction_still_verifies() {
        let tx = sample(1);
        let stripped = tx.stripped();
        assert_eq!(stripped.id(), tx.id());
        assert!(stripped.verify_signature().is_ok());
        let decoded: Transaction = decode(&encode(&stripped)).expect("decodes");
        assert_eq!(decoded, stripped);
    }

    #[test]
    fn swapped_payload_is_detected() {
        let mut tx = sample(1);
        tx.payload = sample(2).payload;
        let error = decode::<Transaction>(&encode(&tx)).expect_err("payload does not match");
        assert!(error.to_string().contains("payload hash"), "{error}");
    }

    #[test]
    fn batch_finds_the_bad_signature() {
        let mut txs: Vec<Transaction> = (0..600u32).map(|i| sample((i % 200) as u8)).collect();
        txs[517].signature.0[0] ^= 1;
        let ids: Vec<TxId> = txs.iter().map(Transaction::id).collect();
        assert_eq!(verify_many(&txs, &ids), vec![517]);
    }
}
