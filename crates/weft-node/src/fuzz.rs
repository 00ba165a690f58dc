//! Entry points of the fuzz targets (fuzz/fuzz_targets/, docs/fuzzing.md): each takes untrusted
//! bytes, decodes them as the node (or the CLI) does, with the same limits, and checks what is
//! cheap to check: a decoded value encodes back to the same bytes, or decodes again to the same
//! value; nothing panics. tests/fuzz_corpus.rs replays every committed corpus file through these
//! same functions on stable Rust.
//!
//! Where the node's reading code is private to its module and does I/O (TCP ingest's reader),
//! the entry point repeats its steps with the same public decoders and the same limits.

use std::sync::OnceLock;

use weft_core::encoding::{decode, encode};
use weft_core::{ChainId, ResourceId, SigningKey};
use weft_ledger::Transaction;
use weft_ledger::block::{Block, SignedHeader};
use weft_ledger::proof::{self, InclusionProof};

use crate::config::NodeConfig;
use crate::net::wire::{Proposal, Sync, TxBatch};
use crate::net::{join, wire as net_wire};
use crate::wire;

/// A fixed chain for what must be signed or checked for a chain.
fn chain_id() -> ChainId {
    ChainId::from_name("fuzz").expect("a valid chain name")
}

/// A fixed key (and resource) that signs what a node would sign.
fn node_key() -> &'static (ResourceId, SigningKey) {
    static KEY: OnceLock<(ResourceId, SigningKey)> = OnceLock::new();
    KEY.get_or_init(|| {
        (
            ResourceId(weft_core::Hash32([7; 32])),
            SigningKey::from_seed(&[7; 32]),
        )
    })
}

/// Ids and Merkle root of a block's transactions, and its producer's seal: what import and
/// audit compute of any decoded block.
fn check_block(block: &Block) {
    let _ = block.signed.verify_producer();
    let ids: Vec<_> = block.transactions.iter().map(Transaction::id).collect();
    let _ = weft_ledger::block::merkle_levels(&block.transactions, &ids).root();
}

fn check_header(signed: &SignedHeader) {
    let _ = signed.header.hash();
    let _ = signed.producer_seal();
}

/// A canonical block (docs/encoding.md), as a block import or a peer's whole block.
pub fn decode_block(data: &[u8]) {
    if let Ok(block) = decode::<Block>(data) {
        assert_eq!(
            encode(&block),
            data,
            "canonical: decoding then encoding gives the same bytes"
        );
        check_block(&block);
    }
}

/// A canonical signed transaction, as the API, TCP ingest and peers submit it.
pub fn decode_transaction(data: &[u8]) {
    if let Ok(tx) = decode::<Transaction>(data) {
        assert_eq!(
            encode(&tx),
            data,
            "canonical: decoding then encoding gives the same bytes"
        );
        let _ = tx.verify_signature();
        let _ = tx.id();
    }
}

/// What a TCP ingest client sends (docs/ingest-tcp.md): frames one after the other, each read
/// as `tcp.rs` reads it (a length prefix; short and oversized frames skipped whole, with the
/// default `ingest.tcp.max_frame_bytes`), then taken as `tcp.rs` takes it on a connection that
/// said HELLO with the token: transactions decoded, records parsed, bounded and signed by the
/// node's identity. Every frame's body also goes through the client's parsers of the node's
/// answers (WELCOME, COMMITTED, REJECTED, ERROR), which read what a node sends.
pub fn tcp_frame(data: &[u8]) {
    let max_frame = NodeConfig::default().ingest.tcp.max_frame_bytes;
    let mut rest = data;
    while let Some((length, after)) = rest.split_first_chunk::<4>() {
        let length = u32::from_be_bytes(*length) as usize;
        let Some((bytes, after)) = after.split_at_checked(length) else {
            // The stream ends inside the frame: the connection closes.
            return;
        };
        rest = after;
        if length < wire::HEADER_LEN || length > max_frame + wire::HEADER_LEN {
            continue;
        }
        let frame =
            wire::parse_frame(bytes.to_vec()).expect("a frame of at least HEADER_LEN bytes parses");
        assert_eq!(
            &wire::encode(frame.kind, frame.request, &frame.body)[5..],
            &bytes[1..],
            "a frame encodes back to its bytes (but the version, which encode sets)"
        );
        take_frame(&frame);
        answers(&frame.body);
    }
}

fn take_frame(frame: &wire::Frame) {
    if frame.version != wire::VERSION {
        return;
    }
    match frame.kind {
        wire::HELLO => {
            let _ = String::from_utf8_lossy(&frame.body).trim().is_empty();
        }
        wire::TX => decode_transaction(&frame.body),
        wire::RECORD => {
            let Ok((content_type, body)) = wire::parse_record(&frame.body) else {
                return;
            };
            assert_eq!(
                wire::record_body(content_type, body),
                frame.body,
                "a RECORD body encodes back to its bytes"
            );
            if body.len() > weft_core::model::MAX_RECORD_BODY {
                return;
            }
            let (identity, key) = node_key();
            let payload = weft_core::model::Payload::Record(weft_core::model::Record {
                issuer: *identity,
                content_type: content_type.to_string(),
                product_code: None,
                body: body.to_vec(),
            });
            if let Ok(tx) = crate::ingest::sign_as(chain_id(), *identity, key, payload) {
                let again = decode::<Transaction>(&encode(&tx))
                    .expect("a record the node signed decodes as a transaction");
                assert_eq!(again, tx, "a signed record round-trips");
            }
        }
        _ => {}
    }
}

/// The client's parsers of what a node answers.
fn answers(body: &[u8]) {
    if let Ok(welcome) = wire::parse_welcome(body) {
        assert_eq!(welcome.version, body[0]);
    }
    if let Ok((id, height, index)) = wire::parse_committed(body) {
        let id = weft_core::TxId(weft_core::Hash32(id));
        assert_eq!(wire::committed_body(&id, height, index), body);
    }
    let _ = wire::parse_rejected(body);
    let _ = wire::parse_error(body);
}

/// A message on one of weft's own peer-to-peer channels (net/wire.rs): the first byte picks
/// the channel (blocks, transactions, sync), the rest is the message, decoded as the network
/// core decodes it and then taken as far as needs no state: hashes and seals of headers,
/// Merkle roots of blocks and bodies, the signatures of flooded transactions and of peer
/// addresses, the finalization certificate of a headers answer, the proofs of a proofs answer.
pub fn p2p_message(data: &[u8]) {
    let Some((&channel, bytes)) = data.split_first() else {
        return;
    };
    match net_wire::CHANNEL_BLOCKS + u64::from(channel % 3) {
        net_wire::CHANNEL_BLOCKS => proposal(bytes),
        net_wire::CHANNEL_TXS => tx_batch(bytes),
        _ => sync(bytes),
    }
}

fn proposal(bytes: &[u8]) {
    let Ok(proposal) = decode::<Proposal>(bytes) else {
        return;
    };
    assert_eq!(encode(&proposal), bytes, "a proposal is canonical");
    match &proposal {
        Proposal::Compact { signed, .. } => check_header(signed),
        Proposal::Request { .. } => {}
        Proposal::Whole(block) => check_block(block),
    }
}

fn tx_batch(bytes: &[u8]) {
    let Ok(batch) = decode::<TxBatch>(bytes) else {
        return;
    };
    assert_eq!(encode(&batch), bytes, "a transaction batch is canonical");
    let _ = weft_ledger::Admitted::check(batch.transactions).into_parts();
}

fn sync(bytes: &[u8]) {
    use commonware_codec::Decode as _;
    let Ok(message) = decode::<Sync>(bytes) else {
        return;
    };
    assert_eq!(encode(&message), bytes, "a sync message is canonical");
    match &message {
        Sync::Headers {
            headers,
            finalization,
        } => {
            headers.iter().for_each(check_header);
            if !finalization.is_empty() {
                // A network of four validators, as the core decodes for its epoch's.
                let participants = 4usize;
                let _ = crate::net::Finalization::decode_cfg(
                    commonware_codec::Copying(&finalization[..]),
                    &participants,
                );
            }
        }
        Sync::Bodies { bodies, .. } => {
            for body in bodies {
                let ids: Vec<_> = body.iter().map(Transaction::id).collect();
                let _ = weft_ledger::block::merkle_levels(body, &ids).root();
            }
        }
        Sync::Proofs { proofs } => {
            for text in proofs {
                if let Ok(proof) = serde_json::from_str::<InclusionProof>(text) {
                    let _ = proof::verify(&proof, fuzz_root(), &crate::net::finality::Certificates);
                }
            }
        }
        Sync::Addresses { records } => {
            for record in records {
                let _ = record.verify(chain_id());
            }
        }
        Sync::History(answer) => {
            let _ = weft_core::encoding::decode::<weft_core::smt::Proof>(&answer.proof);
            for tx in &answer.transactions {
                let _ = tx.id();
            }
        }
        Sync::HeadersRequest { .. }
        | Sync::BodiesRequest { .. }
        | Sync::FilteredBodiesRequest { .. }
        | Sync::HistoryRequest { .. }
        | Sync::Quiet
        | Sync::ProofRequest { .. }
        | Sync::Online { .. } => {}
    }
}

/// The body of a second-tier sealed record (docs/ingest-tcp.md), split as `weft ingest open`
/// splits it before decrypting.
pub fn sealed_record(data: &[u8]) {
    let Ok(sealed) = crate::sealed::parse(data) else {
        return;
    };
    assert_eq!(sealed.header.len(), crate::sealed::HEADER_LEN);
    assert!(sealed.ciphertext.len() >= crate::sealed::TAG_LEN);
    assert_eq!(
        crate::sealed::header(&sealed.key_id, &sealed.nonce),
        sealed.header,
        "the header is made of its parts"
    );
    assert_eq!(
        [sealed.header, sealed.ciphertext].concat(),
        data,
        "nothing is lost"
    );
}

/// The fuzz chain's time of genesis.
const FUZZ_T0: u64 = 1_700_000_000_000;

/// The fuzz chain's genesis transaction, its authority and its producer.
fn fuzz_genesis() -> (Transaction, SigningKey, SigningKey) {
    use weft_core::model::{Genesis, Payload};
    let authority = SigningKey::from_seed(&[1; 32]);
    let producer = SigningKey::from_seed(&[2; 32]);
    let genesis = Transaction::sign(
        chain_id(),
        FUZZ_T0,
        weft_ledger::Signer::Authority,
        &authority,
        Payload::Genesis(Genesis {
            chain_name: "fuzz".into(),
            authorities: vec![authority.public_key()],
            producers: vec![producer.public_key()],
            time_window_ms: 300_000,
        }),
    )
    .expect("a valid genesis");
    (genesis, authority, producer)
}

/// The fuzz chain's trust root: block 0 of the chain the proof seeds come from.
fn fuzz_root() -> &'static weft_ledger::trust::TrustRoot {
    static ROOT: OnceLock<weft_ledger::trust::TrustRoot> = OnceLock::new();
    ROOT.get_or_init(|| {
        let (genesis, _, producer) = fuzz_genesis();
        weft_ledger::Ledger::create(
            weft_ledger::store::MemoryStore::new(),
            genesis,
            &producer,
            FUZZ_T0,
        )
        .and_then(|ledger| ledger.trust_root())
        .expect("the fuzz chain's trust root")
    })
}

/// An inclusion proof document (docs/proofs.md), as `weft proof verify` reads it: parsed under
/// its size limit, then checked alone and in a batch, with the same verdict both ways.
pub fn proof_document(data: &[u8]) {
    let Ok(document) = proof::parse(data) else {
        return;
    };
    let text = serde_json::to_vec(&document).expect("a proof serialises");
    assert_eq!(
        proof::parse(&text).expect("a serialised proof parses"),
        document,
        "a proof round-trips through JSON"
    );
    let root = fuzz_root();
    let certificates = crate::net::finality::Certificates;
    let alone = proof::verify(&document, root, &certificates);
    if proof::verify_inclusion_only(&document, root).is_ok() {
        let batch = proof::verify_many(std::slice::from_ref(&document), root, &certificates);
        assert_eq!(
            batch.first().map(Result::is_ok),
            Some(alone.is_ok()),
            "a proof has the same verdict alone and in a batch"
        );
    }
}

/// A join document (docs/network.md, "Joining a network"), as `weft init --join` reads it: the
/// text (UTF-8, as the file is read), its block 0 checked in full by starting a ledger from it,
/// and the configuration the joining node writes from its seeds and followers.
pub fn join_document(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((document, block0)) = join::parse_join_document(text) else {
        return;
    };
    let again = serde_json::to_string(&document).expect("a join document serialises");
    let (parsed, block) = join::parse_join_document(&again).expect("a serialised document parses");
    assert_eq!(
        (&parsed, &block),
        (&document, &block0),
        "a join document round-trips"
    );
    let _ =
        weft_ledger::Ledger::from_genesis_block(weft_ledger::store::MemoryStore::new(), &block0);
    let mut config = NodeConfig::default();
    config.network.enabled = true;
    config.network.listen = "127.0.0.1:7000".into();
    config.network.seeds = document.seeds;
    config.network.followers = document.followers;
    let _ = config.validate();
}

/// A JSON body of the REST API, decoded as the handler's `ApiJson` extractor decodes it (under
/// the default `api.max_body_bytes`, or `api.graphql_max_bytes` for GraphQL), then taken as
/// far as needs no ledger. The first byte picks the body: `POST /v1/transactions`,
/// `POST /v1/transactions/batch` (with the default `api.max_batch`), `POST /v1/admin/resources`,
/// `POST /graphql` (parsed, validated and run against the schema without a ledger: every field
/// of the root answers an error, so what is exercised is parsing, variables, the size, depth
/// and complexity limits).
pub fn api_request_json(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let config = NodeConfig::default();
    if body.len() > config.api.max_body_bytes {
        return;
    }
    match which % 4 {
        0 => {
            if let Ok(request) = serde_json::from_slice::<weft_api::SubmitOne>(body) {
                let _ = crate::api::submit::decode_transaction(None, &request.transaction);
            }
        }
        1 => {
            if let Ok(request) = serde_json::from_slice::<weft_api::SubmitBatch>(body)
                && !request.transactions.is_empty()
                && request.transactions.len() <= config.api.max_batch
            {
                for (index, text) in request.transactions.iter().enumerate() {
                    let _ = crate::api::submit::decode_transaction(Some(index), text);
                }
            }
        }
        2 => register_resource(body),
        _ if body.len() > config.api.graphql_max_bytes => {}
        _ => graphql(body),
    }
}

/// `POST /v1/admin/resources`: the body, then the transaction the handler signs of it.
fn register_resource(body: &[u8]) {
    use weft_core::model::{Payload, RegisterResource, Resource};
    if serde_json::from_slice::<weft_api::RegisterBody>(body).is_err() {
        return;
    }
    // The body's fields are the handler's own: read them again from the same JSON.
    let value: serde_json::Value =
        serde_json::from_slice(body).expect("a body that decodes is JSON");
    let resource = serde_json::from_value::<Resource>(value["resource"].clone())
        .expect("a body that decodes holds a resource");
    let Ok(key) = weft_core::PublicKey::from_hex(value["key"].as_str().unwrap_or_default().trim())
    else {
        return;
    };
    let (_, authority) = node_key();
    let payload = Payload::RegisterResource(RegisterResource { resource, key });
    if let Ok(tx) = Transaction::sign(
        chain_id(),
        1,
        weft_ledger::Signer::Authority,
        authority,
        payload,
    ) {
        assert_eq!(
            decode::<Transaction>(&encode(&tx)).ok().as_ref(),
            Some(&tx),
            "a registration the node signed decodes again"
        );
    }
}

fn graphql(body: &[u8]) {
    static SCHEMA: OnceLock<crate::graphql::WeftSchema> = OnceLock::new();
    let Ok(request) = serde_json::from_slice::<async_graphql::Request>(body) else {
        return;
    };
    let schema = SCHEMA.get_or_init(|| {
        let api = crate::config::ApiSection::default();
        crate::graphql::schema(
            api.graphql_max_bytes,
            api.graphql_max_fields,
            std::sync::Arc::new(tokio::sync::Semaphore::new(api.graphql_concurrent)),
            api.graphql_concurrent,
        )
    });
    // On a thread with the stack of a tokio worker (2 MiB), where the node runs a query: a
    // recursion too deep for it is caught here, not hidden by the main thread's larger stack.
    std::thread::scope(|scope| {
        let running = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn_scoped(scope, || {
                let _ = futures::executor::block_on(schema.execute(request));
            })
            .expect("a thread for the query");
        if let Err(panic) = running.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

/// `config.toml` text, as a home is opened and `POST /v1/admin/reload` reads it: parsed and
/// validated; a valid file serialises and parses back to the same settings, and everything
/// the node derives from it at start is derived.
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = NodeConfig::parse(text) else {
        return;
    };
    let again = toml::to_string(&config).expect("a valid configuration serialises");
    assert_eq!(
        NodeConfig::parse(&again).as_ref(),
        Ok(&config),
        "a valid configuration round-trips through TOML"
    );
    let _ = config.listen_addr();
    let _ = config.tcp_ingest_addr();
    let _ = config.node.storage_filter();
    let _ = config.network.listen_addr();
    let _ = config.network.dialable_addr();
    let _ = config.network.seed_list();
    let _ = config.network.follower_keys();
}

/// Valid inputs of every target, made by the code's own encoders, and the test vectors of the
/// docs: what the corpora in fuzz/corpus/ were grown from (docs/fuzzing.md).
#[cfg(test)]
mod seeds {
    use std::path::{Path, PathBuf};

    use weft_core::model::*;
    use weft_core::{Fingerprint, HashAlgo, PublicKey, TxId};
    use weft_ledger::store::{MemoryStore, Store as _};
    use weft_ledger::{Ledger, Signer};

    use super::*;
    use crate::net::wire::PeerAddress;

    const T0: u64 = FUZZ_T0;

    fn fuzz_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
    }

    /// Writes every target's seeds into fuzz/work/seeds/TARGET/.
    #[test]
    #[ignore = "writes seed inputs into fuzz/work/seeds; run by hand (docs/fuzzing.md)"]
    fn write_seed_inputs() {
        let world = World::new();
        let targets: Vec<(&str, Vec<Vec<u8>>)> = vec![
            ("decode_transaction", world.transaction_seeds()),
            ("decode_block", world.blocks.iter().map(encode).collect()),
            ("tcp_frame", world.tcp_seeds()),
            ("p2p_message", world.p2p_seeds()),
            ("sealed_record", sealed_seeds()),
            ("proof_document", world.proof_seeds()),
            ("join_document", world.join_seeds()),
            ("api_request_json", world.api_seeds()),
            ("config_toml", config_seeds()),
            ("gcode_segment", gcode_pieces()),
            ("gcode_container", gcode_sealed().0),
            ("gcode_manifest", gcode_sealed().1),
        ];
        for (target, inputs) in targets {
            assert!(!inputs.is_empty(), "{target}");
            let dir = fuzz_dir().join("work/seeds").join(target);
            std::fs::create_dir_all(&dir).expect("create the seed directory");
            for (index, input) in inputs.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{index:03}")), input).expect("write");
            }
        }
    }

    /// A small chain of the fuzz chain id with a transaction of every payload kind.
    struct World {
        ledger: Ledger<MemoryStore>,
        producer: SigningKey,
        transactions: Vec<Transaction>,
        blocks: Vec<Block>,
    }

    impl World {
        fn new() -> World {
            let (genesis, authority, producer) = fuzz_genesis();
            let chain = chain_id();
            let sign = |signer, key: &SigningKey, payload| {
                Transaction::sign(chain, T0, signer, key, payload).expect("a valid payload")
            };
            let mut ledger =
                Ledger::create(MemoryStore::new(), genesis.clone(), &producer, T0).expect("chain");
            let org_key = SigningKey::from_seed(&[11; 32]);
            let register_org = sign(
                Signer::Authority,
                &authority,
                Payload::RegisterResource(RegisterResource {
                    resource: Resource::Organization(Organization {
                        name: Some("NIST".into()),
                        website: Some("https://www.nist.gov".into()),
                        address: Address {
                            town: "Gaithersburg".into(),
                            country: "US".into(),
                            ..Address::default()
                        },
                    }),
                    key: org_key.public_key(),
                }),
            );
            let org = ResourceId(register_org.id().0);
            let person_key = SigningKey::from_seed(&[12; 32]);
            let register_person = sign(
                Signer::Resource(org),
                &org_key,
                Payload::RegisterResource(RegisterResource {
                    resource: Resource::PersonInOrganization(PersonInOrganization {
                        first_name: Some("Ada".into()),
                        last_name: Some("Lovelace".into()),
                        email: Some("ada@example.org".into()),
                        belongs_to: org,
                    }),
                    key: person_key.public_key(),
                }),
            );
            let person = ResourceId(register_person.id().0);
            let asset = DigitalAsset {
                fingerprint: Fingerprint::of_bytes(HashAlgo::Sha256, b"bracket rev C"),
                public: false,
                doi: None,
                doi_no_redirect: None,
                file: File {
                    id: "bracket".into(),
                    version_ids: vec!["C".into()],
                    descriptions: vec!["rev C".into()],
                },
                data_type: DataType::Geometry3d,
            };
            let by_org = |payload| sign(Signer::Resource(org), &org_key, payload);
            let mut later = vec![
                by_org(Payload::RecordOwnership(RecordOwnership {
                    issuer: org,
                    product_data: asset.clone(),
                })),
                by_org(Payload::SendProductData(SendProductData {
                    from: org,
                    to: person,
                    forward: true,
                    product_data: asset,
                })),
                by_org(Payload::Record(Record {
                    issuer: org,
                    content_type: "text/csv".into(),
                    product_code: Some("SN-1".into()),
                    body: b"spindle,42\n".to_vec(),
                })),
                by_org(Payload::RegisterPart(RegisterPart {
                    owner: org,
                    code: "SN-1".into(),
                    description: Some("bracket".into()),
                })),
                by_org(Payload::TransferPart(TransferPart {
                    code: "SN-1".into(),
                    from: org,
                    to: person,
                })),
            ];
            later.push(sign(
                Signer::Resource(person),
                &person_key,
                Payload::RotateKey(RotateKey {
                    resource: person,
                    new_key: SigningKey::from_seed(&[13; 32]).public_key(),
                }),
            ));
            later.push(sign(
                Signer::Authority,
                &authority,
                Payload::RevokeKey(RevokeKey {
                    resource: org,
                    key: SigningKey::from_seed(&[14; 32]).public_key(),
                }),
            ));
            later.push(sign(
                Signer::Authority,
                &authority,
                Payload::NetworkPeer(NetworkPeer {
                    key: SigningKey::from_seed(&[15; 32]).public_key(),
                    admitted: true,
                    name: "node1".into(),
                }),
            ));
            later.push(sign(
                Signer::Authority,
                &authority,
                Payload::SetValidators(SetValidators {
                    validators: vec![producer.public_key()],
                    from_height: 100,
                }),
            ));
            let mut transactions = vec![genesis, register_org.clone(), register_person.clone()];
            transactions.extend(later.iter().cloned());
            let mut now = T0;
            for batch in [vec![register_org], vec![register_person], later] {
                now += 10;
                ledger
                    .produce_block(batch, &producer, now)
                    .expect("storage works");
            }
            let head = ledger.head().header.height;
            let blocks = (0..=head)
                .map(|height| {
                    ledger
                        .store()
                        .block(height)
                        .expect("read")
                        .expect("a block")
                })
                .collect();
            World {
                ledger,
                producer,
                transactions,
                blocks,
            }
        }

        /// Transactions committed, whose proofs can be built.
        fn committed(&self) -> Vec<TxId> {
            self.blocks
                .iter()
                .flat_map(|block| block.transactions.iter().map(Transaction::id))
                .collect()
        }

        fn transaction_seeds(&self) -> Vec<Vec<u8>> {
            let mut seeds: Vec<Vec<u8>> = self.transactions.iter().map(encode).collect();
            let mut stripped = self.transactions[3].clone();
            stripped.payload = None;
            seeds.push(encode(&stripped));
            seeds
        }

        fn tcp_seeds(&self) -> Vec<Vec<u8>> {
            let tx = encode(&self.transactions[3]);
            let id = TxId(weft_core::Hash32([0xab; 32]));
            let record = wire::record_body("text/csv", b"spindle,1\n");
            let mut seeds = vec![
                wire::encode(wire::HELLO, 1, b""),
                wire::encode(wire::HELLO, 1, b"0123456789abcdef"),
                wire::encode(wire::PING, 7, &[]),
                wire::encode(wire::TX, 2, &tx),
                wire::encode(wire::RECORD, 2, &record),
                wire::encode(
                    wire::WELCOME,
                    1,
                    &wire::welcome_body(&chain_id(), Some(&node_key().0), 1 << 20, 1),
                ),
                wire::encode(wire::COMMITTED, 2, &wire::committed_body(&id, 5, 3)),
                wire::encode(wire::REJECTED, 2, &wire::rejected_body(&id, "rule-3", "no")),
                wire::encode(wire::ERROR, 2, &wire::error_body("malformed", "too short")),
            ];
            let mut other_version = wire::encode(wire::PING, 8, &[]);
            other_version[4] = 2;
            seeds.push(other_version);
            seeds.push(seeds[1..5].concat());
            seeds
        }

        fn p2p_seeds(&self) -> Vec<Vec<u8>> {
            let with_channel = |channel: u64, bytes: Vec<u8>| {
                let mut message = vec![(channel - net_wire::CHANNEL_BLOCKS) as u8];
                message.extend(bytes);
                message
            };
            let block = self.blocks.last().expect("blocks");
            let ids: Vec<TxId> = block.transactions.iter().map(Transaction::id).collect();
            let proof = proof::build(self.ledger.store(), &ids[0]).expect("a proof");
            let address = PeerAddress::sign(chain_id(), &self.producer, "10.0.0.5:7000".into(), T0);
            let mut seeds = vec![
                with_channel(
                    net_wire::CHANNEL_BLOCKS,
                    encode(&Proposal::Compact {
                        signed: block.signed.clone(),
                        ids: ids.clone(),
                    }),
                ),
                with_channel(
                    net_wire::CHANNEL_BLOCKS,
                    encode(&Proposal::Request {
                        hash: block.signed.header.hash(),
                    }),
                ),
                with_channel(
                    net_wire::CHANNEL_BLOCKS,
                    encode(&Proposal::Whole(block.clone())),
                ),
                with_channel(
                    net_wire::CHANNEL_TXS,
                    encode(&TxBatch {
                        transactions: block.transactions.clone(),
                    }),
                ),
            ];
            let sync = [
                Sync::HeadersRequest {
                    from_height: 1,
                    max_headers: 4096,
                },
                Sync::Headers {
                    headers: self.blocks.iter().map(|b| b.signed.clone()).collect(),
                    finalization: finalization(&block.signed.header.hash()),
                },
                Sync::ProofRequest { ids: ids.clone() },
                Sync::Proofs {
                    proofs: vec![serde_json::to_string(&proof).expect("json")],
                },
                Sync::BodiesRequest {
                    from_height: 1,
                    count: 3,
                },
                Sync::Bodies {
                    from_height: 1,
                    bodies: self.blocks[1..]
                        .iter()
                        .map(|b| b.transactions.clone())
                        .collect(),
                },
                Sync::Online {
                    dialable: "1.2.3.4:5".into(),
                    peers: vec![PublicKey([2; 32])],
                },
                Sync::FilteredBodiesRequest {
                    from_height: 1,
                    count: 3,
                    kinds: vec![weft_core::model::PayloadKind::Record],
                    resources: vec![weft_core::ResourceId(weft_core::Hash32([5; 32]))],
                },
                Sync::HistoryRequest {
                    fingerprint: weft_core::Fingerprint::of_bytes(
                        weft_core::fingerprint::HashAlgo::Sha256,
                        b"fuzz",
                    ),
                    recipient: Some(weft_core::ResourceId(weft_core::Hash32([5; 32]))),
                },
                Sync::History(Box::new(weft_ledger::history::HistoryAnswer {
                    fingerprint: weft_core::Fingerprint::of_bytes(
                        weft_core::fingerprint::HashAlgo::Sha256,
                        b"fuzz",
                    ),
                    height: 1,
                    transactions: self.blocks[1].transactions.clone(),
                    proof: encode(&weft_core::smt::Proof {
                        siblings: Vec::new(),
                        end: weft_core::smt::PathEnd::Empty,
                    }),
                    registration: None,
                })),
                Sync::Addresses {
                    records: vec![address],
                },
            ];
            seeds.extend(
                sync.iter()
                    .map(|message| with_channel(net_wire::CHANNEL_SYNC, encode(message))),
            );
            seeds
        }

        fn proof_seeds(&self) -> Vec<Vec<u8>> {
            self.committed()
                .iter()
                .take(4)
                .map(|id| {
                    let proof = proof::build(self.ledger.store(), id).expect("a proof");
                    serde_json::to_vec_pretty(&proof).expect("json")
                })
                .collect()
        }

        fn join_seeds(&self) -> Vec<Vec<u8>> {
            let other = SigningKey::from_seed(&[3; 32]).public_key();
            let network = crate::config::NetworkSection {
                enabled: true,
                listen: "127.0.0.1:7000".into(),
                seeds: vec![format!("{}@127.0.0.1:7001", other.to_hex())],
                followers: vec![other.to_hex()],
                ..Default::default()
            };
            let document = join::join_document(
                "fuzz",
                &self.blocks[0],
                &self.producer.public_key(),
                &network,
            )
            .expect("a join document");
            vec![
                serde_json::to_vec_pretty(&document).expect("json"),
                serde_json::to_vec(&document).expect("json"),
            ]
        }

        fn api_seeds(&self) -> Vec<Vec<u8>> {
            let hex_of = |tx: &Transaction| hex::encode(encode(tx));
            let resource = |index: usize| match &self.transactions[index].payload {
                Some(Payload::RegisterResource(register)) => serde_json::json!({
                    "resource": register.resource,
                    "key": register.key.to_hex(),
                }),
                _ => unreachable!("a registration"),
            };
            let bodies = [
                (
                    0,
                    serde_json::json!({"transaction": hex_of(&self.transactions[3])}),
                ),
                (
                    1,
                    serde_json::json!({"transactions": [
                        hex_of(&self.transactions[4]),
                        hex_of(&self.transactions[5]),
                    ]}),
                ),
                (2, resource(1)),
                (2, resource(2)),
                (
                    3,
                    serde_json::json!({"query": "{ node { chain height head } }"}),
                ),
                (
                    3,
                    serde_json::json!({
                        "query": "query ($f: String!, $me: String) { asset(fingerprint: $f, \
                                  recipient: $me) { verdict owner { name id } history { kind \
                                  height timeUtc signer { name } payload } } }",
                        "variables": {"f": "sha256:00", "me": null},
                    }),
                ),
                (
                    3,
                    serde_json::json!({
                        "query": "query Blocks { blocks(from: 1, count: 5) { height hash \
                                  transactions { id kind } } } query Head { head { height } }",
                        "operationName": "Blocks",
                    }),
                ),
            ];
            bodies
                .iter()
                .map(|(which, body)| {
                    let mut seed = vec![*which];
                    seed.extend(serde_json::to_vec(body).expect("json"));
                    seed
                })
                .collect()
        }
    }

    /// A finalization certificate of `hash` by four validators (commonware's encoding).
    fn finalization(hash: &weft_core::BlockHash) -> Vec<u8> {
        use commonware_codec::{Decode as _, Encode as _};
        use commonware_consensus::simplex::types::{Finalize, Proposal};
        use commonware_consensus::types::{Epoch, Round, View};
        use commonware_cryptography::Signer as _;
        use commonware_cryptography::ed25519;
        let privates: Vec<ed25519::PrivateKey> =
            (1..=4).map(ed25519::PrivateKey::from_seed).collect();
        let validators = commonware_utils::ordered::Set::from_iter_dedup(
            privates.iter().map(|key| key.public_key()),
        );
        let schemes: Vec<crate::net::Scheme> = privates
            .into_iter()
            .map(|private| {
                crate::net::Scheme::signer(b"weft-fuzz", validators.clone(), private)
                    .expect("a signer")
            })
            .collect();
        let proposal = Proposal::new(
            Round::new(Epoch::new(0), View::new(5)),
            View::new(4),
            commonware_cryptography::sha256::Digest(hash.0.0),
        );
        let votes: Vec<_> = schemes
            .iter()
            .map(|scheme| Finalize::sign(scheme, proposal.clone()).expect("a vote"))
            .collect();
        let bytes = crate::net::Finalization::from_finalizes(
            &schemes[0],
            commonware_utils::non_empty![@&votes],
            &commonware_parallel::Sequential,
        )
        .expect("a quorum")
        .encode()
        .to_vec();
        assert!(
            crate::net::Finalization::decode_cfg(commonware_codec::Copying(&bytes[..]), &4).is_ok(),
            "decodes as p2p_message decodes it"
        );
        bytes
    }

    fn sealed_seeds() -> Vec<Vec<u8>> {
        [0usize, 16, 40]
            .iter()
            .map(|extra| {
                let mut record = crate::sealed::header(&[1; 8], &[2; 12]).to_vec();
                record.extend((0..crate::sealed::TAG_LEN + extra).map(|i| i as u8));
                record
            })
            .collect()
    }

    fn config_seeds() -> Vec<Vec<u8>> {
        let mut network = NodeConfig::default();
        network.network.enabled = true;
        network.network.listen = "0.0.0.0:7000".into();
        network.network.dialable = "10.0.0.5:7000".into();
        let other = SigningKey::from_seed(&[3; 32]).public_key().to_hex();
        network.network.seeds = vec![format!("{other}@10.0.0.6:7000")];
        network.network.followers = vec![other];
        network.node.node_type = crate::config::NodeType::Thin;
        network.node.keep_kinds = vec!["Record".into()];
        network.node.keep_resources = vec!["ab".repeat(32)];
        let mut ingest = NodeConfig::default();
        ingest.ingest.identity = "cd".repeat(32);
        ingest.ingest.tcp.listen = "127.0.0.1:7461".into();
        ingest.ingest.watch = vec![crate::config::WatchSource::with_defaults("in".into())];
        ingest.tls.cert = "cert.pem".into();
        ingest.tls.key = "key.pem".into();
        vec![
            NodeConfig::default_toml().into_bytes(),
            toml::to_string(&network).expect("toml").into_bytes(),
            toml::to_string(&ingest).expect("toml").into_bytes(),
        ]
    }

    /// Pieces of the G-code corpus (corpus/gcode/): each file's start and the bytes around its
    /// second layer change, at most 4 KiB each.
    fn gcode_pieces() -> Vec<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus/gcode");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("corpus/gcode")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "gcode"))
            .collect();
        files.sort();
        let mut pieces = Vec::new();
        for file in files {
            let bytes = std::fs::read(file).expect("read");
            pieces.push(bytes[..bytes.len().min(4096)].to_vec());
            let segments = weft_gcode::segment(&bytes).segments;
            if let Some(second) = segments.get(2) {
                let start = (second.start as usize).saturating_sub(1024);
                pieces.push(bytes[start..bytes.len().min(start + 4096)].to_vec());
            }
        }
        pieces
    }

    /// Containers and manifests (unsigned and signed) sealed from the G-code pieces.
    fn gcode_sealed() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let mut containers = Vec::new();
        let mut manifests = Vec::new();
        for (index, plain) in gcode_pieces().iter().enumerate().step_by(3) {
            let segmentation = weft_gcode::segment(plain);
            let mut container = Vec::new();
            let sealed =
                weft_gcode::container::seal(plain, &segmentation.segments, &[], &mut container)
                    .expect("seals");
            let mut manifest = weft_gcode::manifest::Manifest::new(
                "piece.gcode",
                plain,
                "motion",
                &segmentation.segments,
                &sealed,
            );
            if index % 2 == 0 {
                manifest.sign(&SigningKey::from_seed(&[9; 32]));
            }
            containers.push(container);
            manifests.push(manifest.to_json().into_bytes());
        }
        (containers, manifests)
    }
}
