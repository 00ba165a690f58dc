//! The join document: what a new node needs to join a network, as one JSON file (docs/network.md,
//! "Joining a network"). A running node serves it at `GET /v1/net/join`; `weft net genesis`
//! writes it from a home; `weft init --join URL` or `weft init --genesis FILE` reads it. The
//! document is weft-api's [`JoinDocument`]; here it is made ([`join_document`]) and checked
//! ([`parse_join_document`]), which takes the ledger's blocks and the node's configuration.
//!
//! It carries the network's block 0 (its genesis transaction names the validators), the seeds
//! to dial and the configured followers. Nothing in it is trusted beyond what it proves: block 0
//! is checked in full (its seal, its genesis) and its hash can be pinned by the joiner; every
//! later block arrives with the validators' finalization certificate.

use anyhow::{Context as _, Result, bail};
use weft_api::{JOIN_FORMAT, JoinDocument};
use weft_core::encoding::{decode, encode};
use weft_ledger::block::Block;

use crate::config::NetworkSection;

/// Largest join document accepted (block 0 is small; seeds and followers are bounded).
pub const MAX_JOIN_BYTES: usize = 1 << 20;

/// The document for the network a node is part of: `key` is the node's own key, dialable at
/// its `network.dialable` address; its own seeds follow.
pub fn join_document(
    chain: &str,
    block0: &Block,
    key: &weft_core::PublicKey,
    network: &NetworkSection,
) -> Result<JoinDocument> {
    let own = format!("{}@{}", key.to_hex(), network.dialable_addr()?);
    let mut seeds = vec![own];
    for seed in network.seed_list()? {
        if seed.key != *key {
            seeds.push(format!("{}@{}", seed.key.to_hex(), seed.addr));
        }
    }
    Ok(JoinDocument {
        format: JOIN_FORMAT.into(),
        chain: chain.into(),
        chain_id: block0.signed.header.chain_id.to_hex(),
        block0_hash: block0.signed.header.hash().to_hex(),
        block0: hex::encode(encode(block0)),
        seeds,
        followers: network.followers.clone(),
    })
}

/// Reads a document and its block 0, refusing anything malformed with the reason. The block
/// itself is checked in full when the ledger is created from it.
pub fn parse_join_document(text: &str) -> Result<(JoinDocument, Block)> {
    if text.len() > MAX_JOIN_BYTES {
        bail!(
            "the join document is {} bytes; at most {MAX_JOIN_BYTES} are accepted",
            text.len()
        );
    }
    let document: JoinDocument =
        serde_json::from_str(text).context("the join document is not valid JSON for it")?;
    if document.format != JOIN_FORMAT {
        bail!(
            "the join document's format is {:?}; this weft reads {JOIN_FORMAT:?}",
            document.format
        );
    }
    let bytes = hex::decode(&document.block0).context("the join document's block0 is not hex")?;
    let block: Block = decode(&bytes).context("the join document's block0")?;
    let header = &block.signed.header;
    if header.height != 0 {
        bail!(
            "the join document's block0 has height {}, not 0",
            header.height
        );
    }
    if header.hash().to_hex() != document.block0_hash {
        bail!(
            "the join document's block0 hashes to {}, not the block0_hash it states ({})",
            header.hash(),
            document.block0_hash
        );
    }
    let named =
        weft_core::ChainId::from_name(&document.chain).context("the join document's chain name")?;
    if named != header.chain_id || named.to_hex() != document.chain_id {
        bail!(
            "the join document's chain {:?} does not match its chain_id or block 0",
            document.chain
        );
    }
    if document.seeds.is_empty() {
        bail!("the join document names no seeds: a joining node would have nobody to dial");
    }
    let network = NetworkSection {
        seeds: document.seeds.clone(),
        followers: document.followers.clone(),
        ..NetworkSection::default()
    };
    network.seed_list().context("the join document's seeds")?;
    network
        .follower_keys()
        .context("the join document's followers")?;
    Ok((document, block))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::SigningKey;
    use weft_core::model::{Genesis, Payload};
    use weft_ledger::store::{MemoryStore, Store as _};
    use weft_ledger::{Ledger, Signer, Transaction};

    fn network() -> (Block, SigningKey, NetworkSection) {
        let authority = SigningKey::from_seed(&[1; 32]);
        let producer = SigningKey::from_seed(&[2; 32]);
        let chain_id = weft_core::ChainId::from_name("joinable").expect("name");
        let genesis = Transaction::sign(
            chain_id,
            1,
            Signer::Authority,
            &authority,
            Payload::Genesis(Genesis {
                chain_name: "joinable".into(),
                authorities: vec![authority.public_key()],
                producers: vec![producer.public_key()],
                time_window_ms: 1000,
            }),
        )
        .expect("genesis");
        let ledger = Ledger::create(MemoryStore::new(), genesis, &producer, 1).expect("ledger");
        let block0 = ledger.store().block(0).expect("read").expect("block 0");
        let other = SigningKey::from_seed(&[3; 32]).public_key();
        let section = NetworkSection {
            enabled: true,
            listen: "127.0.0.1:7000".into(),
            seeds: vec![
                format!("{}@127.0.0.1:7000", producer.public_key().to_hex()),
                format!("{}@127.0.0.1:7001", other.to_hex()),
            ],
            followers: vec![other.to_hex()],
            ..NetworkSection::default()
        };
        (block0, producer, section)
    }

    #[test]
    fn a_document_round_trips_and_names_the_node_first_once() {
        let (block0, producer, section) = network();
        let document =
            join_document("joinable", &block0, &producer.public_key(), &section).expect("doc");
        assert_eq!(document.seeds.len(), 2, "{:?}", document.seeds);
        assert!(document.seeds[0].starts_with(&producer.public_key().to_hex()));
        let text = serde_json::to_string(&document).expect("json");
        let (parsed, block) = parse_join_document(&text).expect("parse");
        assert_eq!(parsed, document);
        assert_eq!(block, block0);
    }

    #[test]
    fn malformed_documents_are_refused_with_the_reason() {
        let (block0, producer, section) = network();
        let good =
            join_document("joinable", &block0, &producer.public_key(), &section).expect("doc");
        let refused = |document: &JoinDocument| {
            let text = serde_json::to_string(document).expect("json");
            parse_join_document(&text).expect_err("refused").to_string()
        };

        let mut wrong = good.clone();
        wrong.format = "weft-join-v9".into();
        assert!(refused(&wrong).contains("format"));

        let mut wrong = good.clone();
        wrong.block0_hash = "00".repeat(32);
        assert!(refused(&wrong).contains("block0_hash"));

        let mut wrong = good.clone();
        wrong.chain = "another".into();
        assert!(refused(&wrong).contains("does not match"));

        let mut wrong = good.clone();
        wrong.block0.truncate(10);
        assert!(refused(&wrong).contains("block0"));

        let mut wrong = good.clone();
        wrong.seeds = vec!["nokey".into()];
        assert!(refused(&wrong).contains("seeds"));

        let mut wrong = good.clone();
        wrong.seeds.clear();
        assert!(refused(&wrong).contains("no seeds"));

        assert!(
            parse_join_document("{\"format\": 1}")
                .expect_err("not a document")
                .to_string()
                .contains("not valid JSON")
        );
        let huge = " ".repeat(MAX_JOIN_BYTES + 1);
        assert!(
            parse_join_document(&huge)
                .expect_err("too large")
                .to_string()
                .contains("at most")
        );
    }
}
