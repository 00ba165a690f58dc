//! What runs beside weft's nodes on a user's machine, as a library the command line and the
//! tests share (the command line only parses, calls and prints):
//!
//! - [`home`]: a home's layout — keys, the ledger, `config.toml` — made for a new chain or a
//!   network, and read back.
//! - [`cluster`]: local networks of real `weft node run` processes on loopback — made, started,
//!   waited for, surveyed, restarted and stopped (`weft cluster`, and the multi-process network
//!   tests).
//! - [`tcp`]: the pipelined TCP ingest client (`weft ingest tcp`, `weft bench tcp`), over TLS
//!   with [`tls`]'s trust in a PEM file.
//! - [`trust`]: the trust roots a home pins (`HOME/trust/`), which every verifying command
//!   checks answers against.
//!
//! The typed client of a node's REST API is weft-api's (`client` feature); the load generators
//! are weft-load's.

pub mod cluster;
pub mod home;
pub mod networks;
pub mod tcp;
pub mod tls;
pub mod trust;
