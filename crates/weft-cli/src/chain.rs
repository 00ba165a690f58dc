//! The chain a command reads and commits to: one trait, [`Chain`], with two implementations.
//!
//! - [`LocalChain`]: the home's own ledger, opened in this process (redb); its blocks are
//!   produced with the home's producer key.
//! - [`RemoteChain`]: a node, through its REST API (`--node URL`, or the node running on the
//!   home), with weft-api's typed client.
//!
//! Both answer with weft-api's bodies (the local one builds them with `weft_node::query`, as
//! the node does), so a command is written once and its `--node` output equals its embedded
//! output. [`open`] picks the implementation.

use std::path::PathBuf;

use anyhow::{Context, Result};
use weft_api::{
    AssetReport, ChainInfo, CheckpointAnswer, ClaimAnswer, ConsistencyAnswer, ResourceAnswer,
    TransactionAnswer,
};
use weft_core::model::{DigitalAsset, Payload, RegisterResource, Resource};
use weft_core::{ChainId, Fingerprint, PublicKey, ResourceId, SigningKey, TxId};
use weft_ledger::state::{Position, StateView};
use weft_ledger::store::{RedbStore, Store};
use weft_ledger::{Signer, Transaction};
use weft_node::query;

use crate::client::NodeClient;
use crate::context::Globals;
use weft_client::home::{Home, now_ms, resolve_tx_with, resolve_with, write_key};

/// Where a command reads the chain and commits to it.
pub(crate) trait Chain {
    /// Where the chain is, for messages: the node's URL or the home's directory.
    fn place(&self) -> String;

    /// The chain's id, which every transaction signs over.
    fn chain_id(&self) -> Result<ChainId>;

    /// The height of the last committed block.
    fn head_height(&self) -> Result<u64>;

    /// The chain's parameters and head (`GET /v1/chain`).
    fn chain_info(&self) -> Result<ChainInfo>;

    /// The first validator change scheduled and not yet in effect: its height, and the
    /// validators in effect until then.
    fn pending_validator_change(&self) -> Result<Option<(u64, Vec<PublicKey>)>>;

    /// Registered resources whose id starts with `prefix` (at most 1,000).
    fn resources_with_prefix(&self, prefix: &str) -> Result<Vec<ResourceId>>;

    /// Transactions on the chain whose id starts with `prefix` (at most 1,000).
    fn transactions_with_prefix(&self, prefix: &str) -> Result<Vec<TxId>>;

    /// A registered resource; `None` if `id` is not registered.
    fn resource(&self, id: &ResourceId) -> Result<Option<ResourceAnswer>>;

    /// A committed transaction with its inclusion proof.
    fn transaction(&self, id: &TxId) -> Result<Option<TransactionAnswer>>;

    /// A signed checkpoint of the first `size` blocks (all of them by default), signed by the
    /// node (or the home's producer key), with the validator changes in effect at its end.
    fn checkpoint(&self, size: Option<u64>) -> Result<CheckpointAnswer>;

    /// The consistency proof between the trees of the first `old` and `new` blocks.
    fn consistency(&self, old: u64, new: u64) -> Result<ConsistencyAnswer>;

    /// The transaction's C2SP tlog-proof against the head's checkpoint (or that of the first
    /// `size` blocks); `None` if it is not on the chain.
    fn tlog_proof(&self, id: &TxId, size: Option<u64>) -> Result<Option<String>>;

    /// The NIST validation report on `fingerprint`, for `recipient` or for anyone.
    fn asset_report(
        &self,
        fingerprint: &Fingerprint,
        recipient: Option<ResourceId>,
    ) -> Result<AssetReport>;

    /// The asset as first claimed, so a send describes the data the same way.
    fn claimed_asset(&self, fingerprint: &Fingerprint) -> Result<Option<DigitalAsset>>;

    /// Who claimed `fingerprint`; `None` if nobody did.
    fn claim(&self, fingerprint: &Fingerprint) -> Result<Option<ClaimAnswer>>;

    /// Has `tx` committed in a block: by the home's producer key, or by the node.
    fn submit(&mut self, home: &Home, tx: Transaction) -> Result<(TxId, Position)>;

    /// A full resource id, or a unique hex prefix of at least 6 digits.
    fn resolve(&self, input: &str, role: &str) -> Result<ResourceId> {
        resolve_with(input, role, |prefix| self.resources_with_prefix(prefix))
    }

    /// A full transaction id, or a unique hex prefix of at least 6 digits.
    fn resolve_tx(&self, input: &str, role: &str) -> Result<TxId> {
        resolve_tx_with(input, role, |prefix| self.transactions_with_prefix(prefix))
    }

    /// `None` if `id` is not registered; else the organisation it belongs to (`None` for an
    /// organisation).
    fn organization_of(&self, id: &ResourceId) -> Result<Option<Option<ResourceId>>> {
        Ok(self.resource(id)?.map(|resource| resource.organization))
    }

    /// Signs `payload` and has it committed in a block; prints `{"tx_id", "height"}`.
    fn commit(
        &mut self,
        ctx: &Globals,
        home: &Home,
        signer: Signer,
        key: &SigningKey,
        payload: Payload,
    ) -> Result<TxId> {
        let tx = Transaction::sign(self.chain_id()?, now_ms(), signer, key, payload)
            .context("invalid transaction")?;
        let (id, position) = self.submit(home, tx)?;
        ctx.out.committed(&id, position);
        Ok(id)
    }
}

/// The home's ledger, or the node of `--node`. When a node runs on the home (it holds the
/// ledger open), commands go through that node.
pub(crate) fn open(ctx: &Globals) -> Result<Box<dyn Chain>> {
    if let Some(url) = &ctx.node {
        return Ok(Box::new(RemoteChain::new(NodeClient::new(
            url,
            ctx.ca.as_deref(),
        )?)));
    }
    let home = Home::open(&ctx.home)?;
    match home.ledger() {
        Ok(ledger) => Ok(Box::new(LocalChain::new(ledger, ctx.home.clone()))),
        Err(error) if ctx.home.join("node.addr").exists() => crate::context::node_client(ctx)
            .map(|node| Box::new(RemoteChain::new(node)) as Box<dyn Chain>)
            .map_err(|_| error),
        Err(error) => Err(error),
    }
}

/// The home's own ledger, in this process.
pub(crate) struct LocalChain {
    ledger: weft_ledger::Ledger<RedbStore>,
    /// The home's directory, to name it in messages.
    home: PathBuf,
}

impl LocalChain {
    pub(crate) fn new(ledger: weft_ledger::Ledger<RedbStore>, home: PathBuf) -> Self {
        LocalChain { ledger, home }
    }
}

impl Chain for LocalChain {
    fn place(&self) -> String {
        self.home.display().to_string()
    }

    fn chain_id(&self) -> Result<ChainId> {
        Ok(self.ledger.chain_id())
    }

    fn head_height(&self) -> Result<u64> {
        Ok(self.ledger.head().header.height)
    }

    fn chain_info(&self) -> Result<ChainInfo> {
        Ok(query::chain_info(&self.ledger)?)
    }

    fn pending_validator_change(&self) -> Result<Option<(u64, Vec<PublicKey>)>> {
        let schedule = self.ledger.store().snapshot()?.schedule()?;
        let epoch = schedule.epoch_of(self.ledger.head().header.height + 1);
        Ok(schedule
            .changes
            .get(epoch as usize)
            .map(|change| (change.from_height, schedule.validators(epoch).to_vec())))
    }

    fn resources_with_prefix(&self, prefix: &str) -> Result<Vec<ResourceId>> {
        Ok(query::resources_with_prefix(self.ledger.store(), prefix)?)
    }

    fn transactions_with_prefix(&self, prefix: &str) -> Result<Vec<TxId>> {
        Ok(query::txs_with_prefix(self.ledger.store(), prefix)?)
    }

    fn resource(&self, id: &ResourceId) -> Result<Option<ResourceAnswer>> {
        Ok(query::resource_answer(
            &self.ledger.store().snapshot()?,
            id,
        )?)
    }

    fn transaction(&self, id: &TxId) -> Result<Option<TransactionAnswer>> {
        Ok(query::transaction(self.ledger.store(), id)?)
    }

    fn checkpoint(&self, size: Option<u64>) -> Result<CheckpointAnswer> {
        let key = Home::open(&self.home)?.producer_key()?;
        Ok(weft_node::checkpoints::BlockLog::default()
            .checkpoint(&self.ledger, size, &key)?
            .answer())
    }

    fn consistency(&self, old: u64, new: u64) -> Result<ConsistencyAnswer> {
        let proof =
            weft_node::checkpoints::BlockLog::default().consistency(&self.ledger, old, new)?;
        Ok(weft_node::checkpoints::consistency_answer(old, new, &proof))
    }

    fn tlog_proof(&self, id: &TxId, size: Option<u64>) -> Result<Option<String>> {
        if self.ledger.store().tx_position(id)?.is_none() {
            return Ok(None);
        }
        let key = Home::open(&self.home)?.producer_key()?;
        let proof =
            weft_node::checkpoints::BlockLog::default().tlog_proof(&self.ledger, id, size, &key)?;
        Ok(Some(proof.to_text()))
    }

    fn asset_report(
        &self,
        fingerprint: &Fingerprint,
        recipient: Option<ResourceId>,
    ) -> Result<AssetReport> {
        Ok(query::asset_report(
            self.ledger.store(),
            &query::Whole::new(),
            fingerprint,
            recipient,
        )?)
    }

    fn claimed_asset(&self, fingerprint: &Fingerprint) -> Result<Option<DigitalAsset>> {
        let store = self.ledger.store();
        let Some(owner) = store.snapshot()?.owner(fingerprint)? else {
            return Ok(None);
        };
        Ok(query::claimed_asset(
            store,
            &query::Whole::new(),
            &owner.tx_id,
        )?)
    }

    fn claim(&self, fingerprint: &Fingerprint) -> Result<Option<ClaimAnswer>> {
        Ok(query::claim_record(self.ledger.store(), fingerprint)?)
    }

    fn submit(&mut self, home: &Home, tx: Transaction) -> Result<(TxId, Position)> {
        let producer = home.producer_key()?;
        let outcome = self.ledger.produce_block(vec![tx], &producer, now_ms())?;
        if let Some((_, _, error)) = outcome.rejected.into_iter().next() {
            return Err(error.into());
        }
        outcome
            .accepted
            .first()
            .copied()
            .context("the block producer accepted no transaction and refused none")
    }
}

/// A node, through its REST API.
pub(crate) struct RemoteChain {
    node: weft_api::client::NodeClient,
}

impl RemoteChain {
    pub(crate) fn new(node: NodeClient) -> Self {
        RemoteChain { node: node.into() }
    }
}

impl Chain for RemoteChain {
    fn place(&self) -> String {
        self.node.base().to_string()
    }

    fn chain_id(&self) -> Result<ChainId> {
        Ok(self.node.status()?.chain_id)
    }

    fn head_height(&self) -> Result<u64> {
        Ok(self.node.status()?.height)
    }

    fn chain_info(&self) -> Result<ChainInfo> {
        Ok(self.node.chain()?)
    }

    /// As the node's `GET /v1/chain` reports it.
    fn pending_validator_change(&self) -> Result<Option<(u64, Vec<PublicKey>)>> {
        let chain = self.node.chain()?;
        Ok(chain
            .scheduled
            .first()
            .map(|next| (next.from_height, chain.validators.clone())))
    }

    fn resources_with_prefix(&self, prefix: &str) -> Result<Vec<ResourceId>> {
        Ok(self.node.resources_with_prefix(prefix)?.ids)
    }

    fn transactions_with_prefix(&self, prefix: &str) -> Result<Vec<TxId>> {
        Ok(self.node.transactions_with_prefix(prefix)?.ids)
    }

    fn resource(&self, id: &ResourceId) -> Result<Option<ResourceAnswer>> {
        Ok(self.node.resource(id)?)
    }

    fn transaction(&self, id: &TxId) -> Result<Option<TransactionAnswer>> {
        Ok(self.node.transaction(id)?)
    }

    fn checkpoint(&self, size: Option<u64>) -> Result<CheckpointAnswer> {
        Ok(self.node.checkpoint(size)?)
    }

    fn consistency(&self, old: u64, new: u64) -> Result<ConsistencyAnswer> {
        Ok(self.node.consistency(old, new)?)
    }

    fn tlog_proof(&self, id: &TxId, size: Option<u64>) -> Result<Option<String>> {
        Ok(self
            .node
            .tlog_proof(id, size)?
            .map(|answer| answer.tlog_proof))
    }

    fn asset_report(
        &self,
        fingerprint: &Fingerprint,
        recipient: Option<ResourceId>,
    ) -> Result<AssetReport> {
        Ok(self.node.asset(fingerprint, recipient.as_ref())?)
    }

    fn claimed_asset(&self, fingerprint: &Fingerprint) -> Result<Option<DigitalAsset>> {
        Ok(self.node.asset(fingerprint, None)?.product_data)
    }

    fn claim(&self, fingerprint: &Fingerprint) -> Result<Option<ClaimAnswer>> {
        Ok(self.node.claim(fingerprint)?)
    }

    fn submit(&mut self, _home: &Home, tx: Transaction) -> Result<(TxId, Position)> {
        let body = weft_api::SubmitOne {
            transaction: hex::encode(weft_core::encoding::encode(&tx)),
        };
        let committed = self.node.submit(&body)?;
        Ok((
            committed.tx_id,
            Position {
                height: committed.height,
                index: committed.index,
            },
        ))
    }
}

/// Registers `resource` with a new key, written to the home's keys before the transaction is
/// submitted; `before_submit` runs then too (with the new id), for more that must be durable
/// before the registration can be.
pub(crate) fn register_resource(
    home: &Home,
    chain: &mut dyn Chain,
    signer: Signer,
    key: &SigningKey,
    resource: Resource,
    before_submit: impl FnOnce(&ResourceId) -> Result<()>,
) -> Result<(ResourceId, Position)> {
    let new_key = SigningKey::generate()?;
    let payload = Payload::RegisterResource(RegisterResource {
        resource,
        key: new_key.public_key(),
    });
    let tx = Transaction::sign(chain.chain_id()?, now_ms(), signer, key, payload)
        .context("invalid resource")?;
    let id = ResourceId(tx.id().0);
    // The key file is written first, so an acknowledged resource always has its key. If the
    // chain certainly refused the registration, the key file is removed again; if the answer
    // was lost on the way back, it stays, for the resource may be registered.
    let key_path = home.resource_key_path(&id);
    write_key(&key_path, &new_key)?;
    before_submit(&id)?;
    let (_, position) = match chain.submit(home, tx) {
        Ok(committed) => committed,
        Err(error) if certainly_refused(&error) => {
            let _ = std::fs::remove_file(&key_path);
            return Err(error);
        }
        Err(error) => {
            return Err(error.context(format!(
                "the registration of {id} may or may not have been committed; its key is kept \
                 in {}",
                key_path.display()
            )));
        }
    };
    Ok((id, position))
}

/// Did the chain certainly not take the transaction? (A rule refusal, a request the node
/// refused, or a local failure; not a lost connection, after which it may have committed.)
pub(crate) fn certainly_refused(error: &anyhow::Error) -> bool {
    if let Some(remote) = error.downcast_ref::<crate::client::ClientError>() {
        return remote.certainly_refused();
    }
    error.downcast_ref::<weft_ledger::LedgerError>().is_some()
        || error.downcast_ref::<weft_ledger::RuleError>().is_some()
}
