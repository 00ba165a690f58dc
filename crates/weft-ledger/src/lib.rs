//! weft-ledger: the ledger without networking.
//!
//! - [`tx`]: signed transactions; the header commits to the payload hash so stripped
//!   transactions still verify; batch signature verification across cores.
//! - [`block`]: block headers with the safe-UR-chain fields, producer seals, Merkle levels.
//! - [`rules`] and [`state`]: the business rules (NIST rules 1–3, Type C parts, time window,
//!   keys and acting-for) as a pure state machine over a [`state::StateView`].
//! - [`ledger`]: [`Ledger`] produces blocks (proof of authority) and validates blocks; the same
//!   [`ledger::validate_block`] serves production, import and [`audit`].
//! - [`store`]: the [`store::Store`] trait, [`store::RedbStore`] (durable) and
//!   [`store::MemoryStore`].
//! - [`tree`]: the block tree (canonical chain, forks, orphans) behind [`tree::ForkChoice`].
//! - [`proof`]: self-contained inclusion proofs, with their blocks' finality, and their offline
//!   verification against a [`trust::TrustRoot`].
//! - [`trust`]: trust roots, what a verifier pins.
//! - [`checkpoint`]: the chain's head as a C2SP signed checkpoint, consistency proofs, and
//!   C2SP tlog-proofs.
//! - [`anchored`]: a transaction's proof with the anchors other companies' chains hold of
//!   the checkpoint covering it, checked offline.
//! - [`filter`]: which transactions a thin or producer node stores whole.
//! - [`history`]: an asset's history from a peer, checked against this node's state roots (a
//!   node that follows on proofs and keeps no rule state).
//! - [`files`]: secrets refused when others may read them; ledger files created owner-only.

pub mod anchored;
pub mod audit;
pub mod block;
pub mod checkpoint;
pub mod commitment;
pub mod cosigned;
pub mod error;
pub mod files;
pub mod filter;
pub mod history;
pub mod ledger;
pub mod proof;
pub mod rules;
pub mod state;
pub mod store;
pub mod timestamp;
pub mod tree;
pub mod trust;
pub mod tx;
pub mod witness;

pub use error::{LedgerError, Result, RuleError};
pub use ledger::{Admitted, BlockOutcome, Ledger};
pub use tx::{Signer, Transaction};
