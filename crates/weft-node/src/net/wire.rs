//! What nodes send each other on weft's own peer-to-peer channels (the consensus engine's
//! channels carry its own messages). Borsh, like everything else weft signs or stores; every
//! message is checked against its limits when decoded (docs/network.md, "Messages").

use borsh::{BorshDeserialize, BorshSerialize};
use weft_core::BlockHash;
use weft_core::CoreError;
use weft_core::TxId;
use weft_core::encoding::{Canonical, check_count};
use weft_ledger::Transaction;
use weft_ledger::block::{Block, MAX_BLOCK_TXS, SignedHeader};

/// The consensus engine's votes.
pub const CHANNEL_VOTES: u64 = 0;
/// The consensus engine's certificates.
pub const CHANNEL_CERTIFICATES: u64 = 1;
/// The consensus engine's requests for certificates it missed.
pub const CHANNEL_RESOLVER: u64 = 2;
/// Proposed blocks ([`Proposal`]): by transaction id, whole on request.
pub const CHANNEL_BLOCKS: u64 = 3;
/// Submitted transactions, flooded to every peer ([`TxBatch`]).
pub const CHANNEL_TXS: u64 = 4;
/// Catch-up: finalized headers, then block bodies, on request ([`Sync`]); whole transactions
/// with their proofs for nodes that store them stripped.
pub const CHANNEL_SYNC: u64 = 5;

/// Largest message on any channel: a whole block, with room for its framing.
pub const MAX_MESSAGE_BYTES: u32 = 32 << 20;
/// Most headers in one catch-up answer (about 260 bytes each: about 1 MiB).
pub const MAX_SYNC_HEADERS: u32 = 4096;
/// Most block bodies in one catch-up answer.
pub const MAX_SYNC_BODIES: u32 = 256;
/// Most bytes of bodies in one catch-up answer (a single larger body still goes alone).
pub const SYNC_ANSWER_BYTES: usize = 8 << 20;
/// Most transactions asked for in one proof request.
pub const MAX_PROOF_REQUEST: usize = 256;
/// Most bytes of proofs in one answer (a single larger proof still goes alone).
pub const PROOF_ANSWER_BYTES: usize = 8 << 20;
/// Most peers in one [`Sync::Online`] list.
pub const MAX_ONLINE_PEERS: usize = 1024;
/// Most signed addresses in one [`Sync::Addresses`] message.
pub const MAX_PEER_ADDRESSES: usize = 256;
/// Longest `IP:PORT` address a node gives (an IPv6 address with a zone and port fits).
pub const MAX_ADDRESS_BYTES: usize = 64;
/// Most transactions in one flooded batch.
pub const MAX_TX_BATCH: usize = 20_000;
/// Most bytes of transactions in one flooded batch.
pub const TX_BATCH_BYTES: usize = 4 << 20;

/// A proposed block. Every validator already holds most of its transactions (they were flooded
/// to every peer), so a leader sends the header and the transaction ids; a peer that lacks a
/// transaction, or whose copies do not give the header's Merkle root, asks for the whole block.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum Proposal {
    /// The signed header and the ids of the block's transactions, in order.
    Compact {
        signed: SignedHeader,
        ids: Vec<TxId>,
    },
    /// Please send this block whole.
    Request { hash: BlockHash },
    /// A whole block (docs/encoding.md).
    Whole(Block),
}

impl Canonical for Proposal {
    const WHAT: &'static str = "proposal";
    const MAX_ENCODED: usize = MAX_MESSAGE_BYTES as usize;
    fn validate(&self) -> Result<(), CoreError> {
        match self {
            Proposal::Compact { signed, ids } => {
                signed.validate()?;
                check_count("proposal ids", ids.len(), 0, MAX_BLOCK_TXS)?;
                if ids.len() as u64 != u64::from(signed.header.tx_count) {
                    return Err(CoreError::InvalidField {
                        field: "proposal ids",
                        reason: format!(
                            "{} present but the header says {}",
                            ids.len(),
                            signed.header.tx_count
                        ),
                    });
                }
                Ok(())
            }
            Proposal::Request { .. } => Ok(()),
            Proposal::Whole(block) => block.validate(),
        }
    }
}

/// Transactions flooded to peers.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub struct TxBatch {
    pub transactions: Vec<Transaction>,
}

impl Canonical for TxBatch {
    const WHAT: &'static str = "transaction batch";
    const MAX_ENCODED: usize = MAX_MESSAGE_BYTES as usize;
    fn validate(&self) -> Result<(), CoreError> {
        check_count(
            "batch transactions",
            self.transactions.len(),
            1,
            MAX_TX_BATCH,
        )?;
        self.transactions.iter().try_for_each(Canonical::validate)
    }
}

/// Catch-up, headers first: a node that is behind asks a peer for the final headers after its
/// head, checks them against the certificate of the last one, then asks any peers for the bodies
/// of those blocks and checks each against its header's Merkle root.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum Sync {
    /// Headers from `from_height` on, at most `max_headers`.
    HeadersRequest { from_height: u64, max_headers: u32 },
    /// Consecutive finalized headers starting at the requested height, up to the last one the
    /// peer holds the finalization certificate of (within the epoch of the first), and that
    /// certificate (commonware's encoding). Empty, both, when the peer has none to give.
    Headers {
        headers: Vec<SignedHeader>,
        finalization: Vec<u8>,
    },
    /// A node that stores transactions stripped asks for whole copies of these.
    ProofRequest { ids: Vec<TxId> },
    /// Inclusion proofs (docs/proofs.md, JSON) of the requested transactions the peer holds
    /// whole; those it does not hold are left out.
    Proofs { proofs: Vec<String> },
    /// The transactions of `count` blocks from `from_height` on.
    BodiesRequest { from_height: u64, count: u32 },
    /// The transactions of consecutive blocks from `from_height` on, whole: fewer than asked
    /// (none) when the peer holds fewer whole or the answer reached its size limit.
    Bodies {
        from_height: u64,
        bodies: Vec<Vec<Transaction>>,
    },
    /// Sent to every peer every 2 s: the address the sender is dialled at (`IP:PORT`, its
    /// `network.dialable`), kept in the receiver's address book, and the peers it heard from
    /// in the last 5 s: how a node learns which peers are online beyond those it is connected
    /// with.
    Online {
        dialable: String,
        peers: Vec<weft_core::PublicKey>,
    },
    /// Where peers are dialled, each address signed by the peer it is of: the sender's own and
    /// those it holds of other peers. Sent to every peer every 10 s and to a peer as soon as it
    /// is heard from: how a node that knows one peer learns where the others are.
    Addresses { records: Vec<PeerAddress> },
    /// [`Sync::BodiesRequest`] from a node that follows on proofs: the transactions the filter
    /// does not select come stripped (their signed header and signature: the body still gives
    /// its header's Merkle root). Answered with [`Sync::Bodies`].
    FilteredBodiesRequest {
        from_height: u64,
        count: u32,
        kinds: Vec<weft_core::model::PayloadKind>,
        resources: Vec<weft_core::ResourceId>,
    },
    /// A node that follows on proofs asks about an asset: every transaction naming
    /// `fingerprint`, the proof that they are all, and the registration of `recipient`.
    HistoryRequest {
        fingerprint: weft_core::Fingerprint,
        recipient: Option<weft_core::ResourceId>,
    },
    /// The answer (docs/network.md, "Thin nodes on proofs"); a node that keeps no rule state
    /// or holds the history stripped does not answer.
    History(Box<weft_ledger::history::HistoryAnswer>),
    /// The sender follows final blocks on proofs: send it no flooded transactions and no
    /// proposals (it would only drop them). Sent to a peer when it is first heard from.
    Quiet,
}

/// Most payload kinds and resources in a [`Sync::FilteredBodiesRequest`] (a node's storage
/// filter: `node.keep_kinds` and `node.keep_resources`).
pub const MAX_FILTER_ENTRIES: usize = crate::config::MAX_KEEP_ENTRIES;

/// Where a peer says it is dialled, signed by that peer's key (namespace `PeerAddress`, over the
/// chain id, the key, the address and the time): any node may pass it on, none can forge or
/// alter it. Of two records of one key, the later `time_ms` wins.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PeerAddress {
    pub key: weft_core::PublicKey,
    /// `IP:PORT`.
    pub address: String,
    /// When it was signed, ms since the Unix epoch.
    pub time_ms: u64,
    pub signature: weft_core::Signature,
}

impl PeerAddress {
    /// `address`, signed by `key` for `chain_id`'s network at `time_ms`.
    pub fn sign(
        chain_id: weft_core::ChainId,
        key: &weft_core::SigningKey,
        address: String,
        time_ms: u64,
    ) -> PeerAddress {
        let public = key.public_key();
        let message = Self::message(chain_id, &public, &address, time_ms);
        PeerAddress {
            key: public,
            signature: key.sign(weft_core::Namespace::PeerAddress, &message),
            address,
            time_ms,
        }
    }

    /// Checks the signature for `chain_id`'s network.
    pub fn verify(&self, chain_id: weft_core::ChainId) -> Result<(), CoreError> {
        let message = Self::message(chain_id, &self.key, &self.address, self.time_ms);
        self.key
            .verify(weft_core::Namespace::PeerAddress, &message, &self.signature)
    }

    /// The signed bytes: Borsh of (chain id, key, address, time).
    fn message(
        chain_id: weft_core::ChainId,
        key: &weft_core::PublicKey,
        address: &str,
        time_ms: u64,
    ) -> Vec<u8> {
        borsh::to_vec(&(chain_id.0.0, key, address, time_ms))
            .expect("encoding into memory cannot fail")
    }

    /// The address, checked to be `IP:PORT` of at most [`MAX_ADDRESS_BYTES`].
    fn validate(&self) -> Result<(), CoreError> {
        check_address("peer address", &self.address)
    }
}

/// `address` is `IP:PORT` and at most [`MAX_ADDRESS_BYTES`] long.
fn check_address(field: &'static str, address: &str) -> Result<(), CoreError> {
    check_count(field, address.len(), 1, MAX_ADDRESS_BYTES)?;
    address
        .parse::<std::net::SocketAddr>()
        .map(|_| ())
        .map_err(|error| CoreError::InvalidField {
            field,
            reason: format!("{address:?}: {error}"),
        })
}

impl Canonical for Sync {
    const WHAT: &'static str = "sync message";
    const MAX_ENCODED: usize = MAX_MESSAGE_BYTES as usize;
    fn validate(&self) -> Result<(), CoreError> {
        match self {
            Sync::HeadersRequest { max_headers, .. } => check_count(
                "requested headers",
                *max_headers as usize,
                1,
                MAX_SYNC_HEADERS as usize,
            ),
            Sync::Headers {
                headers,
                finalization,
            } => {
                check_count(
                    "answer headers",
                    headers.len(),
                    0,
                    MAX_SYNC_HEADERS as usize,
                )?;
                check_count("finalization bytes", finalization.len(), 0, 64 << 10)?;
                headers.iter().try_for_each(Canonical::validate)
            }
            Sync::BodiesRequest { count, .. } => check_count(
                "requested bodies",
                *count as usize,
                1,
                MAX_SYNC_BODIES as usize,
            ),
            Sync::Bodies { bodies, .. } => {
                check_count("answer bodies", bodies.len(), 0, MAX_SYNC_BODIES as usize)?;
                bodies.iter().try_for_each(|body| {
                    check_count("body transactions", body.len(), 0, MAX_BLOCK_TXS)?;
                    body.iter().try_for_each(Canonical::validate)
                })
            }
            Sync::ProofRequest { ids } => {
                check_count("requested proofs", ids.len(), 1, MAX_PROOF_REQUEST)
            }
            Sync::Online { dialable, peers } => {
                check_count("online peers", peers.len(), 0, MAX_ONLINE_PEERS)?;
                check_address("dialable address", dialable)
            }
            Sync::FilteredBodiesRequest {
                count,
                kinds,
                resources,
                ..
            } => {
                check_count(
                    "requested bodies",
                    *count as usize,
                    1,
                    MAX_SYNC_BODIES as usize,
                )?;
                check_count(
                    "filter entries",
                    kinds.len() + resources.len(),
                    0,
                    MAX_FILTER_ENTRIES,
                )
            }
            Sync::HistoryRequest { .. } | Sync::Quiet => Ok(()),
            Sync::History(answer) => answer.validate(),
            Sync::Addresses { records } => {
                check_count("peer addresses", records.len(), 1, MAX_PEER_ADDRESSES)?;
                records.iter().try_for_each(PeerAddress::validate)
            }
            Sync::Proofs { proofs } => {
                check_count("answer proofs", proofs.len(), 0, MAX_PROOF_REQUEST)?;
                proofs.iter().try_for_each(|proof| {
                    check_count(
                        "proof bytes",
                        proof.len(),
                        2,
                        weft_ledger::proof::MAX_PROOF_BYTES,
                    )
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::encoding::{decode, encode};

    #[test]
    fn the_messages_of_thin_nodes_on_proofs_are_variants_8_to_11_and_checked() {
        let fingerprint = weft_core::Fingerprint::of_bytes(weft_core::HashAlgo::Sha256, b"vector");
        let request = encode(&Sync::FilteredBodiesRequest {
            from_height: 1,
            count: 2,
            kinds: vec![weft_core::model::PayloadKind::Record],
            resources: Vec::new(),
        });
        assert_eq!(request[0], 8);
        let asked = encode(&Sync::HistoryRequest {
            fingerprint,
            recipient: None,
        });
        assert_eq!(asked[0], 9);
        assert_eq!(encode(&Sync::Quiet), vec![11], "docs/network.md, Messages");
        // A filter larger than a node may have, and a history answer without a proof.
        let error = decode::<Sync>(&encode(&Sync::FilteredBodiesRequest {
            from_height: 1,
            count: 2,
            kinds: Vec::new(),
            resources: vec![weft_core::ResourceId(weft_core::Hash32([1; 32])); 1025],
        }))
        .expect_err("too many filter entries");
        assert!(error.to_string().contains("filter entries"), "{error}");
        let answer = weft_ledger::history::HistoryAnswer {
            fingerprint,
            height: 1,
            transactions: Vec::new(),
            proof: Vec::new(),
            registration: None,
        };
        let bytes = encode(&Sync::History(Box::new(answer)));
        assert_eq!(bytes[0], 10);
        let error = decode::<Sync>(&bytes).expect_err("no proof");
        assert!(error.to_string().contains("state proof"), "{error}");
    }

    #[test]
    fn a_compact_proposal_names_as_many_transactions_as_its_header() {
        use weft_ledger::block::{BlockHeader, ConsensusData};
        let key = weft_core::SigningKey::from_seed(&[3; 32]);
        let header = BlockHeader {
            version: weft_ledger::block::HEADER_VERSION,
            chain_id: weft_core::ChainId::from_name("wire-test").expect("chain id"),
            height: 5,
            timestamp: 1,
            previous_digest: BlockHash::default(),
            merkle_root: Default::default(),
            tx_count: 2,
            consensus: ConsensusData::default(),
            producer: key.public_key(),
            state_root: Some(Default::default()),
        };
        let signed = SignedHeader::seal(header, &key);
        let good = Proposal::Compact {
            signed: signed.clone(),
            ids: vec![TxId::default(); 2],
        };
        assert!(matches!(
            decode::<Proposal>(&encode(&good)),
            Ok(Proposal::Compact { ids, .. }) if ids.len() == 2
        ));
        let error = decode::<Proposal>(&encode(&Proposal::Compact {
            signed,
            ids: vec![TxId::default(); 3],
        }))
        .expect_err("more ids than the header says");
        assert!(error.to_string().contains("proposal ids"), "{error}");
        assert!(decode::<Proposal>(&[7]).is_err(), "no such variant");
    }

    #[test]
    fn oversized_or_empty_messages_are_refused_with_their_field_named() {
        let error = decode::<TxBatch>(&encode(&TxBatch {
            transactions: Vec::new(),
        }))
        .expect_err("an empty batch");
        assert!(error.to_string().contains("batch transactions"), "{error}");
        let error = decode::<Sync>(&encode(&Sync::HeadersRequest {
            from_height: 1,
            max_headers: MAX_SYNC_HEADERS + 1,
        }))
        .expect_err("too many headers asked for");
        assert!(error.to_string().contains("requested headers"), "{error}");
        let request = Sync::HeadersRequest {
            from_height: 7,
            max_headers: 3,
        };
        let decoded = decode::<Sync>(&encode(&request)).expect("a good request");
        assert!(matches!(
            decoded,
            Sync::HeadersRequest {
                from_height: 7,
                max_headers: 3
            }
        ));
        let error = decode::<Sync>(&encode(&Sync::BodiesRequest {
            from_height: 1,
            count: 0,
        }))
        .expect_err("no bodies asked for");
        assert!(error.to_string().contains("requested bodies"), "{error}");
        let error = decode::<Sync>(&encode(&Sync::Bodies {
            from_height: 1,
            bodies: vec![Vec::new(); MAX_SYNC_BODIES as usize + 1],
        }))
        .expect_err("too many bodies");
        assert!(error.to_string().contains("answer bodies"), "{error}");
        assert!(decode::<Sync>(&[9, 1, 2]).is_err(), "no such variant");
        let error =
            decode::<Sync>(&encode(&Sync::ProofRequest { ids: Vec::new() })).expect_err("no ids");
        assert!(error.to_string().contains("requested proofs"), "{error}");
        let error = decode::<Sync>(&encode(&Sync::ProofRequest {
            ids: vec![TxId::default(); MAX_PROOF_REQUEST + 1],
        }))
        .expect_err("too many ids");
        assert!(error.to_string().contains("requested proofs"), "{error}");
        let error = decode::<Sync>(&encode(&Sync::Proofs {
            proofs: vec![String::new()],
        }))
        .expect_err("an empty proof");
        assert!(error.to_string().contains("proof bytes"), "{error}");
        let error = decode::<Sync>(&encode(&Sync::Online {
            dialable: "127.0.0.1:7000".into(),
            peers: vec![weft_core::PublicKey([1; 32]); MAX_ONLINE_PEERS + 1],
        }))
        .expect_err("too many online peers");
        assert!(error.to_string().contains("online peers"), "{error}");
        let error = decode::<Sync>(&encode(&Sync::Online {
            dialable: "somewhere:7000".into(),
            peers: Vec::new(),
        }))
        .expect_err("not IP:PORT");
        assert!(error.to_string().contains("dialable address"), "{error}");
        let online = Sync::Online {
            dialable: "1.2.3.4:5".into(),
            peers: vec![weft_core::PublicKey([2; 32])],
        };
        let bytes = encode(&online);
        // Appended last: variant 6, the address (u32 little-endian length, UTF-8), then the
        // list (u32 little-endian count, 32-byte keys).
        let mut vector = vec![6, 9, 0, 0, 0];
        vector.extend(b"1.2.3.4:5");
        vector.extend([1, 0, 0, 0]);
        vector.extend([2; 32]);
        assert_eq!(bytes, vector, "docs/network.md's test vector");
        assert!(matches!(
            decode::<Sync>(&bytes),
            Ok(Sync::Online { dialable, peers })
                if dialable == "1.2.3.4:5" && peers == [weft_core::PublicKey([2; 32])]
        ));
    }

    #[test]
    fn a_signed_address_verifies_for_its_chain_only_and_not_once_altered() {
        let chain = weft_core::ChainId::from_name("wire-test").expect("chain id");
        let other = weft_core::ChainId::from_name("another").expect("chain id");
        let key = weft_core::SigningKey::from_seed(&[4; 32]);
        let record = PeerAddress::sign(chain, &key, "10.0.0.5:7000".into(), 1_700_000_000_000);
        record.verify(chain).expect("verifies");
        assert!(record.verify(other).is_err(), "another network's");
        for altered in [
            PeerAddress {
                address: "10.0.0.6:7000".into(),
                ..record.clone()
            },
            PeerAddress {
                time_ms: record.time_ms + 1,
                ..record.clone()
            },
            PeerAddress {
                key: weft_core::SigningKey::from_seed(&[5; 32]).public_key(),
                ..record.clone()
            },
        ] {
            assert!(altered.verify(chain).is_err(), "{altered:?}");
        }
        // Round trip through the message that carries it.
        let message = Sync::Addresses {
            records: vec![record.clone()],
        };
        match decode::<Sync>(&encode(&message)) {
            Ok(Sync::Addresses { records }) => assert_eq!(records, vec![record.clone()]),
            other => panic!("{other:?}"),
        }
        // Limits: at least one record, at most MAX_PEER_ADDRESSES, each IP:PORT.
        let error =
            decode::<Sync>(&encode(&Sync::Addresses { records: vec![] })).expect_err("no records");
        assert!(error.to_string().contains("peer addresses"), "{error}");
        let error = decode::<Sync>(&encode(&Sync::Addresses {
            records: vec![record.clone(); MAX_PEER_ADDRESSES + 1],
        }))
        .expect_err("too many");
        assert!(error.to_string().contains("peer addresses"), "{error}");
        let error = decode::<Sync>(&encode(&Sync::Addresses {
            records: vec![PeerAddress {
                address: "example.com:7000".into(),
                ..record.clone()
            }],
        }))
        .expect_err("a host name");
        assert!(error.to_string().contains("peer address"), "{error}");
        let error = decode::<Sync>(&encode(&Sync::Addresses {
            records: vec![PeerAddress {
                address: format!("{}:1", "1".repeat(MAX_ADDRESS_BYTES)),
                ..record
            }],
        }))
        .expect_err("too long");
        assert!(error.to_string().contains("peer address"), "{error}");
    }

    /// docs/network.md's test vector of the bytes a node signs for its address.
    #[test]
    fn the_signed_bytes_of_an_address_match_the_documented_vector() {
        let chain = weft_core::ChainId(weft_core::Hash32([7; 32]));
        let key = weft_core::PublicKey([2; 32]);
        let message = PeerAddress::message(chain, &key, "1.2.3.4:5", 6);
        let mut vector = vec![7; 32];
        vector.extend([2; 32]);
        vector.extend([9, 0, 0, 0]);
        vector.extend(b"1.2.3.4:5");
        vector.extend(6u64.to_le_bytes());
        assert_eq!(message, vector);
        // Signed in the namespace `weft/peer-address/v1`: its tag's length, the tag, then these.
        let signed = weft_core::Namespace::PeerAddress.signed_bytes(&message);
        assert_eq!(&signed[..21], b"\x14weft/peer-address/v1");
    }
}
