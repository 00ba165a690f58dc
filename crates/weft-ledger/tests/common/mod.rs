//! A small world for ledger tests: a chain with an authority, organisations and people.

#![allow(dead_code)]

use std::collections::HashMap;

use weft_core::model::*;
use weft_core::{ChainId, Fingerprint, HashAlgo, ResourceId, SigningKey, TxId};
use weft_ledger::store::{MemoryStore, Store};
use weft_ledger::{Ledger, RuleError, Signer, Transaction};

pub const T0: u64 = 1_700_000_000_000;
pub const WINDOW: u64 = 300_000;

#[allow(missing_debug_implementations)]
pub struct World<S: Store> {
    pub ledger: Ledger<S>,
    pub authority: SigningKey,
    pub producer: SigningKey,
    pub chain_id: ChainId,
    pub keys: HashMap<ResourceId, SigningKey>,
    pub seed: u8,
    /// After every block, merge one step of the store's waiting changes:
    /// `(start_at, budget_txs)` of `Ledger::merge_some`.
    pub merge_step: Option<(usize, usize)>,
}

pub fn genesis_tx(chain: &str, authority: &SigningKey, producer: &SigningKey) -> Transaction {
    let genesis = Genesis {
        chain_name: chain.into(),
        authorities: vec![authority.public_key()],
        producers: vec![producer.public_key()],
        time_window_ms: WINDOW,
    };
    Transaction::sign(
        ChainId::from_name(chain).expect("name"),
        T0,
        Signer::Authority,
        authority,
        Payload::Genesis(genesis),
    )
    .expect("valid")
}

impl World<MemoryStore> {
    pub fn new() -> Self {
        Self::with_store(MemoryStore::new())
    }
}

impl<S: Store> World<S> {
    pub fn with_store(store: S) -> Self {
        Self::named("test", store)
    }

    /// A world on chain `chain` (its authority and producer keys the same as every world's).
    pub fn named(chain: &str, store: S) -> Self {
        let authority = SigningKey::from_seed(&[1; 32]);
        let producer = SigningKey::from_seed(&[2; 32]);
        let ledger = Ledger::create(
            store,
            genesis_tx(chain, &authority, &producer),
            &producer,
            T0,
        )
        .expect("genesis");
        let chain_id = ledger.chain_id();
        World {
            ledger,
            authority,
            producer,
            chain_id,
            keys: HashMap::new(),
            seed: 10,
            merge_step: None,
        }
    }

    pub fn fresh_key(&mut self) -> SigningKey {
        self.seed += 1;
        SigningKey::from_seed(&[self.seed; 32])
    }

    /// Submits one transaction signed by `signer`'s key, at `time`; returns its id or the rule error.
    pub fn submit_as(
        &mut self,
        signer: Signer,
        key: &SigningKey,
        time: u64,
        payload: Payload,
    ) -> Result<TxId, RuleError> {
        let tx =
            Transaction::sign(self.chain_id, time, signer, key, payload).expect("valid payload");
        self.submit_tx(tx, time)
    }

    pub fn submit_tx(&mut self, tx: Transaction, now: u64) -> Result<TxId, RuleError> {
        let outcome = self
            .ledger
            .produce_block(vec![tx], &self.producer, now)
            .expect("storage works");
        if let Some((start_at, budget_txs)) = self.merge_step {
            self.ledger
                .merge_some(start_at, budget_txs)
                .expect("merging works");
        }
        if let Some((_, _, error)) = outcome.rejected.into_iter().next() {
            return Err(error);
        }
        Ok(outcome.accepted[0].0)
    }

    pub fn submit(
        &mut self,
        signer: ResourceId,
        time: u64,
        payload: Payload,
    ) -> Result<TxId, RuleError> {
        let key = SigningKey::from_text(&self.keys[&signer].to_text()).expect("key");
        self.submit_as(Signer::Resource(signer), &key, time, payload)
    }

    pub fn org(&mut self, name: &str) -> ResourceId {
        let key = self.fresh_key();
        let organization = Organization {
            name: Some(name.into()),
            website: None,
            address: Address {
                town: "Gaithersburg".into(),
                country: "US".into(),
                ..Address::default()
            },
        };
        let authority = SigningKey::from_text(&self.authority.to_text()).expect("key");
        let payload = Payload::RegisterResource(RegisterResource {
            resource: Resource::Organization(organization),
            key: key.public_key(),
        });
        let id = self
            .submit_as(Signer::Authority, &authority, T0, payload)
            .expect("organisation registers");
        let id = ResourceId(id.0);
        self.keys.insert(id, key);
        id
    }

    pub fn person(&mut self, organization: ResourceId) -> ResourceId {
        let key = self.fresh_key();
        let person = PersonInOrganization {
            first_name: Some("Ada".into()),
            last_name: None,
            email: None,
            belongs_to: organization,
        };
        let payload = Payload::RegisterResource(RegisterResource {
            resource: Resource::PersonInOrganization(person),
            key: key.public_key(),
        });
        let id = ResourceId(
            self.submit(organization, T0, payload)
                .expect("person registers")
                .0,
        );
        self.keys.insert(id, key);
        id
    }
}

/// A chain of 20 blocks (an organisation, 18 claims) with fixed keys and times, and its log's
/// leaves (docs/checkpoints.md).
pub fn chain_of_claims() -> (World<MemoryStore>, Vec<weft_core::Hash32>) {
    let mut w = World::new();
    let designer = w.org("designer");
    for i in 0..18u64 {
        w.submit(
            designer,
            T0 + 10 + i,
            claim(designer, format!("part {i}").as_bytes()),
        )
        .expect("claim");
    }
    let leaves = leaves_of(&w);
    (w, leaves)
}

/// The leaves of the log of `w`'s chain (docs/checkpoints.md): one per block, in height order.
pub fn leaves_of<S: Store>(w: &World<S>) -> Vec<weft_core::Hash32> {
    (0..=w.ledger.head().header.height)
        .map(|height| {
            weft_ledger::checkpoint::leaf(
                &w.ledger
                    .store()
                    .signed_header(height)
                    .expect("read")
                    .expect("header")
                    .header
                    .hash(),
            )
        })
        .collect()
}

pub fn asset(content: &[u8]) -> DigitalAsset {
    DigitalAsset {
        fingerprint: Fingerprint::of_bytes(HashAlgo::Sha256, content),
        public: false,
        doi: None,
        doi_no_redirect: None,
        file: File {
            id: "part-42".into(),
            version_ids: vec!["A".into()],
            descriptions: vec!["bracket".into()],
        },
        data_type: DataType::Geometry3d,
    }
}

pub fn claim(issuer: ResourceId, content: &[u8]) -> Payload {
    Payload::RecordOwnership(RecordOwnership {
        issuer,
        product_data: asset(content),
    })
}

pub fn send(from: ResourceId, to: ResourceId, forward: bool, content: &[u8]) -> Payload {
    Payload::SendProductData(SendProductData {
        from,
        to,
        forward,
        product_data: asset(content),
    })
}
