//! `config.toml`: the node-local settings of a ledger home.
//!
//! Every key has a default, and `weft init` writes them all out ([`NodeConfig::default_toml`]).
//! Unknown keys and values out of range are refused when the file is read, with the key named.
//! The chain's own parameters (name, time window, authorities, producers) are not here: they
//! live in its genesis block, where changing them would be visible to everyone.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    pub node: NodeSection,
    pub api: ApiSection,
    pub blocks: BlockSection,
    pub storage: StorageSection,
    pub ingest: IngestSection,
    pub tls: TlsSection,
    pub network: NetworkSection,
    pub witness: WitnessSection,
    pub publish: PublishSection,
    pub anchor: AnchorSection,
    pub timestamp: TimestampSection,
}

/// `[timestamp]`: this chain's checkpoints time-stamped by an RFC 3161 time-stamping authority,
/// each token recorded in a `Timestamp` transaction signed with the home's authority key
/// (docs/anchoring.md, "Public timestamps").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimestampSection {
    pub enabled: bool,
    /// The TSA: `http://HOST:PORT/PATH` or `https://…` (an RFC 3161 POST of
    /// `application/timestamp-query`).
    pub url: String,
    /// The TSA's CA certificate (PEM, relative to the home): a token is checked against it before
    /// it is recorded (and for `https://`, the TSA's TLS certificate too).
    pub ca: String,
    /// Time-stamp the latest checkpoint this often, ms, when the chain has grown.
    pub interval_ms: u64,
}

impl Default for TimestampSection {
    fn default() -> Self {
        TimestampSection {
            enabled: false,
            url: String::new(),
            ca: String::new(),
            interval_ms: 60_000,
        }
    }
}

impl TimestampSection {
    fn validate(&self) -> Result<(), ConfigError> {
        let rest = self
            .url
            .strip_prefix("http://")
            .or_else(|| self.url.strip_prefix("https://"));
        if rest.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
            return Err(ConfigError {
                key: "timestamp.url",
                message: format!(
                    "{:?}: give the TSA's http://HOST:PORT/PATH or https://HOST:PORT/PATH",
                    self.url
                ),
            });
        }
        if self.ca.is_empty() {
            return Err(ConfigError {
                key: "timestamp.ca",
                message: "the TSA's CA certificate (PEM): tokens are checked against it".into(),
            });
        }
        range("timestamp.interval_ms", self.interval_ms, 100, 86_400_000)
    }
}

/// `[anchor]`: other companies' chains whose checkpoints this node records on its own chain as
/// anchor transactions, signed with the home's authority key (docs/anchoring.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnchorSection {
    pub enabled: bool,
    pub chains: Vec<AnchoredChainConfig>,
    /// How often each chain's head is fetched, ms.
    pub interval_ms: u64,
}

impl Default for AnchorSection {
    fn default() -> Self {
        AnchorSection {
            enabled: false,
            chains: Vec::new(),
            interval_ms: 1000,
        }
    }
}

/// One chain of `[anchor]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchoredChainConfig {
    /// Its trust root file (`weft trust export` on a home of it), relative to the home.
    pub trust: String,
    /// Its nodes' APIs: the first is asked for its checkpoints and proofs (its witnessed
    /// checkpoint when it publishes one); the signatures of the others are added.
    pub urls: Vec<String>,
    /// Other companies' nodes that anchor the same chain: the checkpoints they anchored are
    /// compared with this chain's (a split view is caught).
    #[serde(default)]
    pub peers: Vec<String>,
    /// For `https://` URLs: the certificate (PEM, relative to the home) theirs chain to.
    #[serde(default)]
    pub ca: Option<String>,
}

/// `[publish]`: this chain's checkpoints are pushed to witnesses (C2SP tlog-witness), and the
/// latest one enough of them cosigned is served (docs/anchoring.md, "Publishing").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishSection {
    pub enabled: bool,
    /// The witnesses pushed to.
    pub witnesses: Vec<PublishWitness>,
    /// How many of them must cosign a checkpoint for it to count as witnessed (0: all).
    pub policy: usize,
    /// Push at least this often when the chain has grown, ms.
    pub interval_ms: u64,
    /// And as soon as it has grown by this many blocks (0: on the interval only).
    pub every_blocks: u64,
    /// In a network: the APIs of the other validators, whose signatures of the same checkpoint
    /// make up the quorum a witness asks for.
    pub validators: Vec<String>,
}

impl Default for PublishSection {
    fn default() -> Self {
        PublishSection {
            enabled: false,
            witnesses: Vec::new(),
            policy: 0,
            interval_ms: 1000,
            every_blocks: 0,
            validators: Vec::new(),
        }
    }
}

/// One witness of `[publish]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishWitness {
    /// Its API: `http://HOST:PORT` or `https://HOST:PORT`.
    pub url: String,
    /// Its verifier key (`GET /v1/witness` of it: `name+key ID+key`).
    pub key: String,
    /// For `https://`: the certificate (PEM, relative to the home) its certificate must chain to.
    #[serde(default)]
    pub ca: Option<String>,
}

impl PublishSection {
    /// How many witnesses must cosign.
    pub fn k(&self) -> usize {
        if self.policy == 0 {
            self.witnesses.len()
        } else {
            self.policy
        }
    }
}

/// `[witness]`: this node witnesses other chains (C2SP tlog-witness, `POST /add-checkpoint`;
/// docs/anchoring.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct WitnessSection {
    pub enabled: bool,
    /// The witness's name in its cosignatures (a schema-less URL, by convention).
    pub name: String,
    /// The chains it witnesses: trust root files (`weft trust export`), relative to the home.
    pub origins: Vec<String>,
}

impl PublishSection {
    fn validate(&self) -> Result<(), ConfigError> {
        let witnesses = self.witnesses.len();
        if witnesses == 0 || witnesses > weft_ledger::cosigned::MAX_WITNESSES {
            return Err(ConfigError {
                key: "publish.witnesses",
                message: format!(
                    "{witnesses} witnesses; publishing needs 1 to {}",
                    weft_ledger::cosigned::MAX_WITNESSES
                ),
            });
        }
        for witness in &self.witnesses {
            weft_ledger::cosigned::WitnessKey::parse(&witness.key).map_err(|error| {
                ConfigError {
                    key: "publish.witnesses.key",
                    message: error.to_string(),
                }
            })?;
            let https = witness.url.starts_with("https://");
            if !https && !witness.url.starts_with("http://") {
                return Err(ConfigError {
                    key: "publish.witnesses.url",
                    message: format!(
                        "{:?}: give http://HOST:PORT or https://HOST:PORT",
                        witness.url
                    ),
                });
            }
            if https && witness.ca.is_none() {
                return Err(ConfigError {
                    key: "publish.witnesses.ca",
                    message: format!(
                        "{}: an https:// witness needs `ca`, the certificate its own chains to",
                        witness.url
                    ),
                });
            }
        }
        if self.policy > witnesses {
            return Err(ConfigError {
                key: "publish.policy",
                message: format!(
                    "{} of {witnesses} witnesses: at most {witnesses}",
                    self.policy
                ),
            });
        }
        range("publish.interval_ms", self.interval_ms, 100, 3_600_000)?;
        range("publish.every_blocks", self.every_blocks, 0, 1_000_000)?;
        for url in &self.validators {
            if !url.starts_with("http://") {
                return Err(ConfigError {
                    key: "publish.validators",
                    message: format!("{url:?}: give http://HOST:PORT of another validator's API"),
                });
            }
        }
        Ok(())
    }
}

impl AnchorSection {
    fn validate(&self) -> Result<(), ConfigError> {
        let chains = self.chains.len();
        if chains == 0 || chains > weft_ledger::rules::anchors::MAX_CHAINS {
            return Err(ConfigError {
                key: "anchor.chains",
                message: format!(
                    "{chains} chains; anchoring needs 1 to {}",
                    weft_ledger::rules::anchors::MAX_CHAINS
                ),
            });
        }
        for chain in &self.chains {
            if chain.urls.is_empty() || chain.urls.len() > 64 {
                return Err(ConfigError {
                    key: "anchor.chains.urls",
                    message: format!("{}: 1 to 64 node URLs", chain.trust),
                });
            }
            if chain.peers.len() > 64 {
                return Err(ConfigError {
                    key: "anchor.chains.peers",
                    message: format!("{}: at most 64 peers", chain.trust),
                });
            }
            for url in chain.urls.iter().chain(&chain.peers) {
                let https = url.starts_with("https://");
                if !https && !url.starts_with("http://") {
                    return Err(ConfigError {
                        key: "anchor.chains.urls",
                        message: format!("{url:?}: give http://HOST:PORT or https://HOST:PORT"),
                    });
                }
                if https && chain.ca.is_none() {
                    return Err(ConfigError {
                        key: "anchor.chains.ca",
                        message: format!(
                            "{url}: an https:// node needs `ca`, the certificate its own chains to"
                        ),
                    });
                }
            }
        }
        range("anchor.interval_ms", self.interval_ms, 100, 3_600_000)
    }
}

/// Most chains one witness witnesses.
pub const MAX_WITNESSED: usize = 256;

/// `[node]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// `thin`, `producer`, `archive` or `full` (DESIGN.md, node types).
    #[serde(rename = "type")]
    pub node_type: NodeType,
    /// Thin and producer nodes: payload kinds stored whole (`Record`, `SendProductData`, …).
    pub keep_kinds: Vec<String>,
    /// Thin and producer nodes: resources (64 hex digits) whose transactions are stored whole
    /// (as signer, issuer, sender, recipient, owner or subject).
    pub keep_resources: Vec<String>,
    /// How a networked thin node follows its chain: `rules` (replay every block's rules on
    /// whole bodies, keep the whole rule state) or `proofs` (take each final block on its
    /// validators' certificate, ask peers for bodies filtered by `keep_kinds` and
    /// `keep_resources`, keep no rule state, and answer asset questions from peers' histories
    /// checked against its own headers' state roots; docs/network.md, "Thin nodes on proofs").
    pub follow: Follow,
}

impl Default for NodeSection {
    fn default() -> Self {
        NodeSection {
            node_type: NodeType::Full,
            keep_kinds: Vec::new(),
            keep_resources: Vec::new(),
            follow: Follow::Rules,
        }
    }
}

/// `node.follow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Follow {
    Rules,
    Proofs,
}

/// Most entries in `node.keep_kinds` plus `node.keep_resources`.
pub const MAX_KEEP_ENTRIES: usize = 1024;

/// Most peers besides the validators a node keeps connections with (`network.connections`).
pub const MAX_CONNECTIONS: usize = 64;

impl NodeSection {
    /// The storage filter of this node: `None` for archive and full nodes, which keep every
    /// payload.
    pub fn storage_filter(
        &self,
    ) -> Result<Option<weft_ledger::filter::StorageFilter>, ConfigError> {
        if self.keep_kinds.len() + self.keep_resources.len() > MAX_KEEP_ENTRIES {
            return Err(ConfigError {
                key: "node.keep_kinds",
                message: format!(
                    "node.keep_kinds and node.keep_resources hold {} entries; at most \
                     {MAX_KEEP_ENTRIES}",
                    self.keep_kinds.len() + self.keep_resources.len()
                ),
            });
        }
        let kinds = self
            .keep_kinds
            .iter()
            .map(|name| {
                weft_core::model::PayloadKind::from_name(name).ok_or_else(|| ConfigError {
                    key: "node.keep_kinds",
                    message: format!(
                        "{name:?} is not a payload kind; one of {}",
                        weft_core::model::PayloadKind::ALL
                            .iter()
                            .map(|kind| kind.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let resources = self
            .keep_resources
            .iter()
            .map(|text| {
                weft_core::ResourceId::from_hex(text.trim()).map_err(|error| ConfigError {
                    key: "node.keep_resources",
                    message: format!("{text:?}: {error}"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.node_type.keeps_all() {
            if !kinds.is_empty() || !resources.is_empty() {
                return Err(ConfigError {
                    key: "node.keep_kinds",
                    message: format!(
                        "a {} node keeps every payload; node.keep_kinds and \
                         node.keep_resources apply to thin and producer nodes",
                        self.node_type.name()
                    ),
                });
            }
            return Ok(None);
        }
        Ok(Some(weft_ledger::filter::StorageFilter {
            kinds,
            resources,
        }))
    }
}

/// What a node keeps and whether it produces blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeType {
    Thin,
    Producer,
    Archive,
    Full,
}

impl NodeType {
    pub fn name(self) -> &'static str {
        match self {
            NodeType::Thin => "thin",
            NodeType::Producer => "producer",
            NodeType::Archive => "archive",
            NodeType::Full => "full",
        }
    }

    /// Does this type produce blocks?
    pub fn produces(self) -> bool {
        matches!(self, NodeType::Producer | NodeType::Full)
    }

    /// Does this type keep every payload (else it keeps what its filter selects)?
    pub fn keeps_all(self) -> bool {
        matches!(self, NodeType::Archive | NodeType::Full)
    }
}

/// `[api]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Listen address of the REST API; port 0 picks a free port.
    pub listen: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most transactions in one batch request.
    pub max_batch: usize,
    /// Submissions waiting for the block producer; beyond this the API answers 503.
    pub queue: usize,
    /// Requests per second one client address may make on average; 0: no limit.
    pub rate_per_s: u32,
    /// Requests one client address may make at once above the average rate.
    pub rate_burst: u32,
    /// How long a submission that waits for its block (the default) waits at most, in ms; then
    /// the API answers 504 and the transactions stay queued (a request's `timeout_ms` may ask
    /// for less).
    pub wait_timeout_ms: u64,
    /// Connections served at once (lowered at start to fit the process's file-descriptor
    /// limit); when all are taken, the oldest connection of the address holding the most is
    /// closed to let a new one in.
    pub max_connections: usize,
    /// Connections one client address may hold; its oldest is closed for a new one.
    pub max_connections_per_address: usize,
    /// A request's headers must arrive within this many ms of the connection opening or of
    /// its previous answer; a kept-alive connection idle this long is closed.
    pub header_timeout_ms: u64,
    /// Largest GraphQL request: the body of `POST /graphql`, the query of `GET /graphql`, a
    /// message on a subscription socket, bytes.
    pub graphql_max_bytes: usize,
    /// Most fields a GraphQL query may select, every field counted (`__typename` and aliases
    /// too, a fragment once per use).
    pub graphql_max_fields: usize,
    /// GraphQL queries run at once, through `/graphql` and on subscription sockets alike; more
    /// wait up to a second, then are refused (503 `busy`, or a `busy` error on a socket).
    pub graphql_concurrent: usize,
    /// GraphQL subscription sockets open at once; more get 503. Each takes a file descriptor
    /// beside the API's connections, set aside at start.
    pub graphql_sockets: usize,
    /// Operations (subscriptions and queries) one subscription socket may have going at once;
    /// more are answered with an error, and the socket goes on.
    pub graphql_socket_operations: usize,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            listen: "127.0.0.1:7460".into(),
            max_body_bytes: 16 << 20,
            max_batch: 10_000,
            queue: 4_096,
            rate_per_s: 0,
            rate_burst: 200,
            wait_timeout_ms: 60_000,
            max_connections: 1_024,
            max_connections_per_address: 64,
            header_timeout_ms: 10_000,
            graphql_max_bytes: 64 << 10,
            graphql_max_fields: 5_000,
            graphql_concurrent: 4,
            graphql_sockets: 256,
            graphql_socket_operations: 16,
        }
    }
}

/// `[blocks]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlockSection {
    /// A block is sealed this long after its first transaction arrived, or when full.
    pub interval_ms: u64,
    /// Most transactions in one block.
    pub max_txs: usize,
}

impl Default for BlockSection {
    fn default() -> Self {
        BlockSection {
            interval_ms: 1_000,
            max_txs: 10_000,
        }
    }
}

/// `[network]`: joining a network of nodes that agree on blocks by BFT consensus
/// (docs/network.md). Off by default: a node on its own seals blocks itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    /// Take part in a network; `listen` and the peers below must be set.
    pub enabled: bool,
    /// Address the peer-to-peer listener binds, `IP:PORT`.
    pub listen: String,
    /// The address other nodes dial to reach this one; empty = `listen`.
    pub dialable: String,
    /// Seed nodes dialled at start, each `PUBLIC_KEY@IP:PORT`; the rest are learnt from them.
    pub seeds: Vec<String>,
    /// Public keys of the nodes that follow the chain without voting (thin, archive, full
    /// non-validators). Validators come from the genesis block.
    pub followers: Vec<String>,
    /// A leader that has not proposed after this long is skipped, ms.
    pub leader_timeout_ms: u64,
    /// A leader waits this long after its parent block for transactions to gather before it
    /// proposes, ms; with none waiting it proposes an empty block after `idle_block_ms`.
    pub block_interval_ms: u64,
    /// With nothing to commit, a leader proposes an empty block after this long, ms.
    pub idle_block_ms: u64,
    /// Transactions waiting to be proposed, at most; beyond that submissions are refused.
    pub mempool_max: usize,
    /// The peer-to-peer network dials one peer it should be and is not connected to this often,
    /// ms: a dropped connection is replaced within about this long per missing peer.
    pub dial_interval_ms: u64,
    /// A validator's consensus engine starts once every other validator answered it, or after
    /// this long, ms (0: at once). docs/network.md, "Starting".
    pub start_wait_ms: u64,
    /// Peers besides the validators that this node keeps connections with: its seeds first,
    /// then other peers it knows to be online; one that drops is replaced from the list at
    /// once. Every node also keeps a connection with every validator (votes and proposals go to
    /// all of them). docs/network.md, "Connections".
    pub connections: usize,
}

impl Default for NetworkSection {
    fn default() -> Self {
        NetworkSection {
            enabled: false,
            listen: String::new(),
            dialable: String::new(),
            seeds: Vec::new(),
            followers: Vec::new(),
            leader_timeout_ms: 2_000,
            block_interval_ms: 50,
            idle_block_ms: 500,
            mempool_max: 500_000,
            dial_interval_ms: 100,
            start_wait_ms: 2_000,
            connections: 8,
        }
    }
}

/// A parsed `network.seeds` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed {
    pub key: weft_core::PublicKey,
    pub addr: SocketAddr,
}

impl NetworkSection {
    /// The peer-to-peer listen address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        parse_addr("network.listen", &self.listen)
    }

    /// The address peers dial.
    pub fn dialable_addr(&self) -> Result<SocketAddr, ConfigError> {
        if self.dialable.is_empty() {
            self.listen_addr()
        } else {
            parse_addr("network.dialable", &self.dialable)
        }
    }

    pub fn seed_list(&self) -> Result<Vec<Seed>, ConfigError> {
        self.seeds
            .iter()
            .map(|seed| {
                let bad = |message: String| ConfigError {
                    key: "network.seeds",
                    message,
                };
                let (key, addr) = seed
                    .split_once('@')
                    .ok_or_else(|| bad(format!("{seed:?} is not PUBLIC_KEY@IP:PORT (no '@')")))?;
                let key = weft_core::PublicKey::from_hex(key)
                    .map_err(|error| bad(format!("{seed:?}: {error}")))?;
                let addr = addr
                    .parse()
                    .map_err(|error| bad(format!("{seed:?}: address {addr:?}: {error}")))?;
                Ok(Seed { key, addr })
            })
            .collect()
    }

    pub fn follower_keys(&self) -> Result<Vec<weft_core::PublicKey>, ConfigError> {
        self.followers
            .iter()
            .map(|key| {
                weft_core::PublicKey::from_hex(key).map_err(|error| ConfigError {
                    key: "network.followers",
                    message: format!("{key:?}: {error}"),
                })
            })
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        self.listen_addr()?;
        self.dialable_addr()?;
        self.seed_list()?;
        self.follower_keys()?;
        range(
            "network.leader_timeout_ms",
            self.leader_timeout_ms,
            100,
            600_000,
        )?;
        range(
            "network.block_interval_ms",
            self.block_interval_ms,
            0,
            60_000,
        )?;
        range("network.idle_block_ms", self.idle_block_ms, 10, 600_000)?;
        if self.idle_block_ms >= self.leader_timeout_ms {
            return Err(ConfigError {
                key: "network.idle_block_ms",
                message: format!(
                    "must be below network.leader_timeout_ms ({}), got {}: otherwise an idle \
                     leader is skipped before it proposes",
                    self.leader_timeout_ms, self.idle_block_ms
                ),
            });
        }
        range(
            "network.dial_interval_ms",
            self.dial_interval_ms,
            10,
            60_000,
        )?;
        range("network.start_wait_ms", self.start_wait_ms, 0, 600_000)?;
        range("network.connections", self.connections, 0, MAX_CONNECTIONS)?;
        range("network.mempool_max", self.mempool_max, 1_000, 10_000_000)
    }
}

fn parse_addr(key: &'static str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|error| ConfigError {
        key,
        message: format!("{text:?} is not IP:PORT: {error}"),
    })
}

/// `[storage]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// Transactions whose index and rule-state changes wait in memory (durably logged)
    /// before they are merged into the hash-keyed tables, in one write with a block. Larger
    /// merges cost less per transaction; smaller ones pause block production for less time.
    pub merge_after_txs: usize,
    /// Most MiB of the ledger file's pages kept in memory (an upper bound).
    pub cache_mib: usize,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            merge_after_txs: weft_ledger::store::DEFAULT_MERGE_AFTER_TXS,
            cache_mib: weft_ledger::store::DEFAULT_CACHE_BYTES >> 20,
        }
    }
}

/// `[ingest]`: files dropped into watched directories become transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// The registered resource whose key signs ingested files (its key in HOME/keys/). Empty:
    /// the node registers an organisation of its own on first use, with the home's authority
    /// key, and keeps its id in HOME/keys/node-identity.id.
    pub identity: String,
    /// How often a watched directory is scanned, in milliseconds.
    pub poll_ms: u64,
    /// Most files turned into transactions in one round.
    pub batch: usize,
    /// A file is taken only once it has not been modified for this long, in milliseconds, so
    /// a file still being written is not recorded half-written. (Writers that create the file
    /// under another name and rename it into the directory are safe with 0.)
    pub min_age_ms: u64,
    /// The TCP ingest listener (`[ingest.tcp]`, docs/ingest-tcp.md).
    pub tcp: TcpIngestSection,
    /// The watched directories (`[[ingest.watch]]`).
    pub watch: Vec<WatchSource>,
}

/// `[ingest.tcp]`: the framed TCP ingest protocol (docs/ingest-tcp.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TcpIngestSection {
    /// Listen address; empty: no TCP ingest. `weft node run --tcp` overrides it.
    pub listen: String,
    /// Largest frame body accepted, bytes; larger frames are answered with an error frame.
    pub max_frame_bytes: usize,
    /// Authenticated connections (a `HELLO` with the ingest token, or a committed `TX`) served
    /// at once; one more is refused when it authenticates.
    pub max_connections: usize,
    /// Connections not yet authenticated, at once; for a new one the oldest of the address
    /// holding the most is closed.
    pub max_unauthenticated: usize,
    /// Connections not yet authenticated that one address may hold; its oldest is closed for a
    /// new one.
    pub max_unauthenticated_per_address: usize,
    /// A connection must authenticate within this many seconds, or it is closed.
    pub auth_timeout_s: u64,
    /// A connection that sends nothing for this long, seconds, is closed.
    pub idle_timeout_s: u64,
    /// Bytes of frames one connection may have sent and not yet had answered (each frame
    /// counts its body plus 256); past that the node stops reading it until answers go out.
    pub max_unanswered_bytes: usize,
}

impl Default for TcpIngestSection {
    fn default() -> Self {
        TcpIngestSection {
            listen: String::new(),
            max_frame_bytes: (1 << 20) + 4096,
            max_connections: 256,
            max_unauthenticated: 64,
            max_unauthenticated_per_address: 16,
            auth_timeout_s: 10,
            idle_timeout_s: 300,
            max_unanswered_bytes: 64 << 20,
        }
    }
}

/// `[tls]`: with a certificate and its key, the API and TCP ingest speak TLS only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// PEM file with the certificate chain, the node's own certificate first (relative paths
    /// are inside the home). Empty: plain TCP.
    pub cert: String,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection {
            identity: String::new(),
            poll_ms: 100,
            batch: 10_000,
            min_age_ms: 200,
            tcp: TcpIngestSection::default(),
            watch: Vec::new(),
        }
    }
}

/// One `[[ingest.watch]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSource {
    /// The directory; `done/`, `failed/` and `.weft-ingest/` are made inside it.
    pub dir: std::path::PathBuf,
    /// Which file names are taken (shell pattern: `*`, `?`, `[…]`). Names starting with `.`
    /// never are.
    #[serde(default = "WatchSource::default_pattern")]
    pub pattern: String,
    /// What a file becomes.
    #[serde(default)]
    pub action: IngestAction,
    /// The media type of `record` bodies.
    #[serde(default = "WatchSource::default_content_type")]
    pub content_type: String,
}

impl WatchSource {
    fn default_pattern() -> String {
        "*".into()
    }

    fn default_content_type() -> String {
        "application/octet-stream".into()
    }

    /// A source with the default rules (`--watch DIR`).
    pub fn with_defaults(dir: std::path::PathBuf) -> WatchSource {
        WatchSource {
            dir,
            pattern: Self::default_pattern(),
            action: IngestAction::default(),
            content_type: Self::default_content_type(),
        }
    }
}

/// What an ingested file becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IngestAction {
    /// A `Record` whose body is the file (at most 1 MiB).
    #[default]
    Record,
    /// A `RecordOwnership` claim of the file's SHA-256 fingerprint (any size).
    Claim,
}

/// A bad configuration value, with its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: &'static str,
    pub message: String,
}

fn range<T: PartialOrd + std::fmt::Display>(
    key: &'static str,
    value: T,
    low: T,
    high: T,
) -> Result<(), ConfigError> {
    if value < low || value > high {
        return Err(ConfigError {
            key,
            message: format!("must be between {low} and {high}, got {value}"),
        });
    }
    Ok(())
}

impl NodeConfig {
    /// Parses and checks `config.toml` text.
    pub fn parse(text: &str) -> Result<NodeConfig, ConfigError> {
        let config: NodeConfig = toml::from_str(text).map_err(|error| ConfigError {
            key: "config.toml",
            message: error.to_string().trim_end().replace('\n', " "),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.node.storage_filter()?;
        if self.witness.enabled {
            let name = &self.witness.name;
            if name.is_empty() || name.contains(char::is_whitespace) || name.contains('+') {
                return Err(ConfigError {
                    key: "witness.name",
                    message: format!(
                        "{name:?}: a witness needs a name without spaces or '+' (e.g. \
                         \"witness.example.com/w1\")"
                    ),
                });
            }
            if self.witness.origins.is_empty() || self.witness.origins.len() > MAX_WITNESSED {
                return Err(ConfigError {
                    key: "witness.origins",
                    message: format!(
                        "{} trust root files; a witness witnesses 1 to {MAX_WITNESSED} chains",
                        self.witness.origins.len()
                    ),
                });
            }
        }
        if self.publish.enabled {
            self.publish.validate()?;
        }
        if self.anchor.enabled {
            self.anchor.validate()?;
        }
        if self.timestamp.enabled {
            self.timestamp.validate()?;
        }
        if self.node.follow == Follow::Proofs
            && (self.node.node_type != NodeType::Thin || !self.network.enabled)
        {
            return Err(ConfigError {
                key: "node.follow",
                message: format!(
                    "\"proofs\" is for a thin node of a network (this is a {} node{}): the others \
                     keep the rule state they validate or answer from",
                    self.node.node_type.name(),
                    if self.network.enabled {
                        ""
                    } else {
                        " without [network]"
                    }
                ),
            });
        }
        range(
            "api.max_body_bytes",
            self.api.max_body_bytes,
            1 << 10,
            1 << 30,
        )?;
        range("api.max_batch", self.api.max_batch, 1, 100_000)?;
        range("api.queue", self.api.queue, 1, 1 << 20)?;
        range("blocks.interval_ms", self.blocks.interval_ms, 50, 60_000)?;
        range("ingest.poll_ms", self.ingest.poll_ms, 10, 60_000)?;
        range("ingest.batch", self.ingest.batch, 1, 10_000)?;
        range("ingest.min_age_ms", self.ingest.min_age_ms, 0, 3_600_000)?;
        range("api.rate_per_s", self.api.rate_per_s, 0, 10_000_000)?;
        range("api.rate_burst", self.api.rate_burst, 1, 10_000_000)?;
        range(
            "api.wait_timeout_ms",
            self.api.wait_timeout_ms,
            100,
            3_600_000,
        )?;
        range(
            "api.max_connections",
            self.api.max_connections,
            16,
            1_000_000,
        )?;
        range(
            "api.max_connections_per_address",
            self.api.max_connections_per_address,
            1,
            1_000_000,
        )?;
        range(
            "api.header_timeout_ms",
            self.api.header_timeout_ms,
            100,
            600_000,
        )?;
        range(
            "api.graphql_max_bytes",
            self.api.graphql_max_bytes,
            1 << 10,
            16 << 20,
        )?;
        range(
            "api.graphql_max_fields",
            self.api.graphql_max_fields,
            1,
            1_000_000,
        )?;
        range(
            "api.graphql_concurrent",
            self.api.graphql_concurrent,
            1,
            1_024,
        )?;
        range("api.graphql_sockets", self.api.graphql_sockets, 1, 100_000)?;
        range(
            "api.graphql_socket_operations",
            self.api.graphql_socket_operations,
            1,
            1_024,
        )?;
        range(
            "ingest.tcp.max_unauthenticated",
            self.ingest.tcp.max_unauthenticated,
            1,
            100_000,
        )?;
        range(
            "ingest.tcp.max_unauthenticated_per_address",
            self.ingest.tcp.max_unauthenticated_per_address,
            1,
            100_000,
        )?;
        range(
            "ingest.tcp.auth_timeout_s",
            self.ingest.tcp.auth_timeout_s,
            1,
            3_600,
        )?;
        self.tcp_ingest_addr()?;
        self.network.validate()?;
        range(
            "ingest.tcp.max_frame_bytes",
            self.ingest.tcp.max_frame_bytes,
            1 << 10,
            64 << 20,
        )?;
        range(
            "ingest.tcp.max_connections",
            self.ingest.tcp.max_connections,
            1,
            100_000,
        )?;
        range(
            "ingest.tcp.idle_timeout_s",
            self.ingest.tcp.idle_timeout_s,
            1,
            86_400,
        )?;
        range(
            "ingest.tcp.max_unanswered_bytes",
            self.ingest.tcp.max_unanswered_bytes,
            64 << 10,
            1 << 30,
        )?;
        if self.tls.cert.trim().is_empty() != self.tls.key.trim().is_empty() {
            return Err(ConfigError {
                key: if self.tls.cert.trim().is_empty() {
                    "tls.cert"
                } else {
                    "tls.key"
                },
                message: "tls.cert and tls.key are given together, or neither".into(),
            });
        }
        if !self.ingest.identity.is_empty()
            && weft_core::ResourceId::from_hex(self.ingest.identity.trim()).is_err()
        {
            return Err(ConfigError {
                key: "ingest.identity",
                message: format!(
                    "{:?} is not a resource id (64 hex digits)",
                    self.ingest.identity
                ),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for source in &self.ingest.watch {
            if source.dir.as_os_str().is_empty() {
                return Err(ConfigError {
                    key: "ingest.watch.dir",
                    message: "must name a directory".into(),
                });
            }
            if !seen.insert(source.dir.clone()) {
                return Err(ConfigError {
                    key: "ingest.watch.dir",
                    message: format!("{} is watched twice", source.dir.display()),
                });
            }
            if let Err(error) = glob::Pattern::new(&source.pattern) {
                return Err(ConfigError {
                    key: "ingest.watch.pattern",
                    message: format!("{:?} is not a file name pattern: {error}", source.pattern),
                });
            }
            if source.content_type.trim().is_empty() || source.content_type.len() > 255 {
                return Err(ConfigError {
                    key: "ingest.watch.content_type",
                    message: "must be a media type of 1 to 255 characters".into(),
                });
            }
        }
        range(
            "storage.merge_after_txs",
            self.storage.merge_after_txs,
            0,
            10_000_000,
        )?;
        range("storage.cache_mib", self.storage.cache_mib, 16, 1 << 20)?;
        range(
            "blocks.max_txs",
            self.blocks.max_txs,
            1,
            weft_ledger::block::MAX_BLOCK_TXS,
        )?;
        Ok(())
    }

    /// The API's listen address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.api.listen.parse().map_err(|_| ConfigError {
            key: "api.listen",
            message: format!(
                "{:?} is not an IP address with a port (e.g. 127.0.0.1:7460)",
                self.api.listen
            ),
        })
    }

    /// The TCP ingest listen address, if TCP ingest is on.
    pub fn tcp_ingest_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let listen = self.ingest.tcp.listen.trim();
        if listen.is_empty() {
            return Ok(None);
        }
        listen.parse().map(Some).map_err(|_| ConfigError {
            key: "ingest.tcp.listen",
            message: format!(
                "{listen:?} is not an IP address with a port (e.g. 127.0.0.1:7461), or empty"
            ),
        })
    }

    /// Is TLS configured?
    pub fn tls_enabled(&self) -> bool {
        !self.tls.cert.trim().is_empty()
    }

    /// The file `weft init` writes: every setting with its default and what it means.
    pub fn default_toml() -> String {
        let d = NodeConfig::default();
        format!(
            "# weft ledger home: node-local settings. Every key is shown with its default;\n\
             # unknown keys are refused. The chain's parameters (name, time window, authorities,\n\
             # producers) are in its genesis block: see `weft chain info`.\n\
             \n\
             [node]\n\
             # thin | producer | archive | full. A node without peers must produce: producer or full.\n\
             type = \"{node_type}\"\n\
             # Thin and producer nodes store whole only the transactions of these payload kinds\n\
             # (Genesis, RegisterResource, RotateKey, RevokeKey, RecordOwnership, SendProductData,\n\
             # Record, RegisterPart, TransferPart, NetworkPeer) ...\n\
             keep_kinds = []\n\
             # ... and those naming one of these resources (ids, 64 hex digits); the rest are\n\
             # stored stripped (header and signature) and fetched whole from a peer on demand.\n\
             # Genesis and NetworkPeer transactions are always kept.\n\
             keep_resources = []\n\
             # A networked thin node follows its chain by `rules` (whole bodies, every rule\n\
             # replayed, the whole rule state kept) or by `proofs` (each final block taken on its\n\
             # validators' certificate, bodies filtered as above, no rule state: asset questions\n\
             # are answered from peers' histories, checked against this node's state roots).\n\
             follow = \"rules\"\n\
             \n\
             [api]\n\
             # Listen address of the REST API (`weft node run --api` overrides it; port 0 = any free port).\n\
             listen = \"{listen}\"\n\
             # Largest request body, bytes (1 KiB to 1 GiB).\n\
             max_body_bytes = {max_body_bytes}\n\
             # Most transactions in one batch request (1 to 100000).\n\
             max_batch = {max_batch}\n\
             # Submissions waiting for the block producer before the API answers 503 (1 to 1048576).\n\
             queue = {queue}\n\
             # Requests per second one client address may make on average (0 = no limit; at most\n\
             # 10000000); beyond it the API answers 429 with a retry-after header.\n\
             rate_per_s = {rate_per_s}\n\
             # Requests one client address may make at once above that rate (1 to 10000000).\n\
             rate_burst = {rate_burst}\n\
             # Longest wait, ms, of a submission for its block (100 to 3600000); then 504, and the\n\
             # transactions stay queued.\n\
             wait_timeout_ms = {wait_timeout_ms}\n\
             # Connections at once (16 to 1000000; lowered at start to fit the file-descriptor\n\
             # limit); when all are taken, the oldest of the address holding the most is closed.\n\
             max_connections = {api_max_connections}\n\
             # Connections one client address may hold (1 to 1000000); its oldest is closed for a new one.\n\
             max_connections_per_address = {max_connections_per_address}\n\
             # A request's headers must arrive within this many ms of the connection opening or of\n\
             # the previous answer (100 to 600000); an idle kept-alive connection is closed then.\n\
             header_timeout_ms = {header_timeout_ms}\n\
             # Largest GraphQL request, bytes (1024 to 16777216), and most fields one query may\n\
             # select, every field counted (__typename and aliases too; 1 to 1000000).\n\
             graphql_max_bytes = {graphql_max_bytes}\n\
             graphql_max_fields = {graphql_max_fields}\n\
             # GraphQL queries run at once, over HTTP and subscription sockets (1 to 1024); more\n\
             # wait up to a second, then get 503 busy.\n\
             graphql_concurrent = {graphql_concurrent}\n\
             # GraphQL subscription sockets open at once (1 to 100000; more get 503), and the\n\
             # operations one socket may have going at once (1 to 1024; more get an error).\n\
             graphql_sockets = {graphql_sockets}\n\
             graphql_socket_operations = {graphql_socket_operations}\n\
             \n\
             [tls]\n\
             # PEM certificate chain and private key (paths relative to the home). With both, the\n\
             # API and TCP ingest speak TLS only; empty = plain TCP, for development on loopback.\n\
             # `weft tls self-signed` makes a pair for testing.\n\
             cert = \"\"\n\
             key = \"\"\n\
             \n\
             [blocks]\n\
             # A block is sealed this many milliseconds after its first transaction arrived,\n\
             # or as soon as it is full (50 to 60000).\n\
             interval_ms = {interval_ms}\n\
             # Most transactions in one block (1 to {max_block}).\n\
             max_txs = {max_txs}\n\
             \n\
             [storage]\n\
             # Transactions whose index changes wait in memory (logged durably) before they are\n\
             # merged into the tables, a step after each block, between blocks (0 to 10000000;\n\
             # 0 = start with every block). Larger: less work per transaction, more memory.\n\
             merge_after_txs = {merge_after_txs}\n\
             # MiB of the ledger file's pages kept in memory, at most (16 to 1048576). Less\n\
             # makes large ledgers read pages back while merging.\n\
             cache_mib = {cache_mib}\n\
             \n\
             [ingest]\n\
             # The registered resource that signs ingested files (its key in HOME/keys/). Empty:\n\
             # the node registers an organisation of its own on first use (HOME/keys/node-identity.id).\n\
             identity = \"\"\n\
             # How often watched directories are scanned, ms (10 to 60000).\n\
             poll_ms = {poll_ms}\n\
             # Most files turned into transactions in one round (1 to 10000).\n\
             batch = {ingest_batch}\n\
             # A file is taken once unmodified for this long, ms (0 to 3600000): a file still being\n\
             # written is not recorded half-written. Writers that rename files in are safe with 0.\n\
             min_age_ms = {min_age_ms}\n\
             \n\
             [ingest.tcp]\n\
             # The TCP ingest protocol (docs/ingest-tcp.md): listen address, empty = off\n\
             # (`weft node run --tcp ADDR` overrides it).\n\
             listen = \"\"\n\
             # Largest frame, bytes (1024 to 67108864); larger ones get an error frame.\n\
             max_frame_bytes = {max_frame_bytes}\n\
             # Authenticated connections at once (1 to 100000): a HELLO with the ingest token, or a\n\
             # committed TX frame, authenticates a connection.\n\
             max_connections = {max_connections}\n\
             # Connections not yet authenticated (1 to 100000), and per client address (1 to\n\
             # 100000): for a new one the oldest of the address holding the most is closed.\n\
             max_unauthenticated = {max_unauthenticated}\n\
             max_unauthenticated_per_address = {max_unauthenticated_per_address}\n\
             # Seconds a connection has to authenticate before it is closed (1 to 3600).\n\
             auth_timeout_s = {auth_timeout_s}\n\
             # A connection silent this long, seconds, is closed (1 to 86400).\n\
             idle_timeout_s = {idle_timeout_s}\n\
             # Bytes a connection may have sent and not yet had answered, each frame counting its\n\
             # body + 256 (65536 to 1073741824); past that the node reads no more from it until\n\
             # answers go out.\n\
             max_unanswered_bytes = {max_unanswered_bytes}\n\
             \n\
             [network]\n\
             # Join a network of nodes that agree on blocks by BFT consensus (docs/network.md).\n\
             # The validators are the genesis block's producers; `weft cluster up` writes all this.\n\
             enabled = false\n\
             # Peer-to-peer listen address, IP:PORT, and the address peers dial (empty = listen).\n\
             listen = \"\"\n\
             dialable = \"\"\n\
             # Seed nodes dialled at start: [\"PUBLIC_KEY@IP:PORT\", ...].\n\
             seeds = []\n\
             # Public keys of non-voting nodes allowed to connect (thin, archive, full).\n\
             followers = []\n\
             # A leader that has not proposed within this many ms is skipped (100 to 600000).\n\
             leader_timeout_ms = {leader_timeout_ms}\n\
             # A leader lets transactions gather this long after its parent block, ms (0 to 60000).\n\
             block_interval_ms = {block_interval_ms}\n\
             # With nothing to commit, a leader proposes an empty block after this many ms\n\
             # (10 to 600000, below leader_timeout_ms).\n\
             idle_block_ms = {idle_block_ms}\n\
             # Transactions waiting to be proposed, at most (1000 to 10000000).\n\
             mempool_max = {mempool_max}\n\
             # Dial a peer this node should be and is not connected to this often, ms (10 to 60000):\n\
             # a dropped connection is replaced within about this long per missing peer.\n\
             dial_interval_ms = {dial_interval_ms}\n\
             # A validator's consensus engine starts once every other validator answered, or after\n\
             # this many ms (0 to 600000; 0 = at once).\n\
             start_wait_ms = {start_wait_ms}\n\
             # Peers besides the validators to keep connections with (0 to {most_connections}): the seeds\n\
             # first, then others known to be online; one that drops is replaced at once.\n\
             connections = {connections}\n\
             \n\
             [witness]\n\
             # Witness other companies' chains (C2SP tlog-witness: POST /add-checkpoint; docs/anchoring.md):\n\
             # cosign a checkpoint only if a quorum of its chain's validators signed it and it extends\n\
             # the last one cosigned. The key is keys/witness.key (made at first start).\n\
             enabled = false\n\
             # The name in its cosignatures, e.g. \"witness.example.com/w1\".\n\
             name = \"\"\n\
             # The chains witnessed: trust root files (`weft trust export`), relative to the home.\n\
             origins = []\n\
             \n\
             [publish]\n\
             # Push this chain's checkpoints to witnesses (C2SP tlog-witness) and serve the latest one\n\
             # they cosigned at GET /v1/checkpoint/witnessed (docs/anchoring.md).\n\
             enabled = false\n\
             # Each: its API and its verifier key (GET /v1/witness of it); `ca` for an https:// one.\n\
             # witnesses = [{{ url = \"witness.example.com:7460\", key = \"w.example/1+1a2b3c4d+BB…\" }}]\n\
             witnesses = []\n\
             # How many of them must cosign a checkpoint (0 = all).\n\
             policy = {publish_policy}\n\
             # Push at least this often when the chain has grown, ms (100 to 3600000)…\n\
             interval_ms = {publish_interval_ms}\n\
             # …and as soon as it has grown by this many blocks (0 = on the interval only).\n\
             every_blocks = {publish_every_blocks}\n\
             # In a network: the other validators' APIs, whose signatures make up the quorum.\n\
             validators = []\n\
             \n\
             [anchor]\n\
             # Record other companies' checkpoints on this chain (Anchor transactions, signed with the\n\
             # home's authority key; docs/anchoring.md). A chain is registered (RegisterChain) at start.\n\
             enabled = false\n\
             # Each: its trust root file (relative to the home) and its nodes' APIs (the first is asked;\n\
             # the others' signatures are added); `ca` for https:// ones.\n\
             # chains = [{{ trust = \"trust/supplier.json\", urls = [\"http://supplier.example.com:7460\"],\n\
             #            peers = [\"http://customer.example.com:7460\"] }}]   # others anchoring it: a split view is caught\n\
             chains = []\n\
             # Fetch each chain's head this often, ms (100 to 3600000).\n\
             interval_ms = {anchor_interval_ms}\n\
             \n\
             [timestamp]\n\
             # Time-stamp this chain's checkpoints by an RFC 3161 time-stamping authority; each token is\n\
             # recorded in a Timestamp transaction (home's authority key; docs/anchoring.md).\n\
             enabled = false\n\
             # The TSA, http://HOST:PORT/PATH or https://…\n\
             url = \"\"\n\
             # Its CA certificate (PEM, relative to the home): each token is checked against it.\n\
             ca = \"\"\n\
             # The latest checkpoint is time-stamped this often, ms, when the chain has grown (100 to 86400000).\n\
             interval_ms = {timestamp_interval_ms}\n\
             \n\
             # Watched directories (`weft node run --watch DIR` adds one with these defaults):\n\
             # [[ingest.watch]]\n\
             # dir = \"/var/spool/weft\"\n\
             # pattern = \"*\"                         # shell pattern of file names; `.names` are skipped\n\
             # action = \"record\"                     # record (body = the file, at most 1 MiB) | claim (SHA-256)\n\
             # content_type = \"application/octet-stream\"\n",
            node_type = d.node.node_type.name(),
            publish_policy = d.publish.policy,
            publish_interval_ms = d.publish.interval_ms,
            publish_every_blocks = d.publish.every_blocks,
            anchor_interval_ms = d.anchor.interval_ms,
            timestamp_interval_ms = d.timestamp.interval_ms,
            listen = d.api.listen,
            max_body_bytes = d.api.max_body_bytes,
            max_batch = d.api.max_batch,
            queue = d.api.queue,
            rate_per_s = d.api.rate_per_s,
            rate_burst = d.api.rate_burst,
            wait_timeout_ms = d.api.wait_timeout_ms,
            api_max_connections = d.api.max_connections,
            max_connections_per_address = d.api.max_connections_per_address,
            header_timeout_ms = d.api.header_timeout_ms,
            graphql_max_bytes = d.api.graphql_max_bytes,
            graphql_max_fields = d.api.graphql_max_fields,
            graphql_concurrent = d.api.graphql_concurrent,
            graphql_sockets = d.api.graphql_sockets,
            graphql_socket_operations = d.api.graphql_socket_operations,
            max_unauthenticated = d.ingest.tcp.max_unauthenticated,
            max_unauthenticated_per_address = d.ingest.tcp.max_unauthenticated_per_address,
            auth_timeout_s = d.ingest.tcp.auth_timeout_s,
            max_frame_bytes = d.ingest.tcp.max_frame_bytes,
            max_connections = d.ingest.tcp.max_connections,
            idle_timeout_s = d.ingest.tcp.idle_timeout_s,
            max_unanswered_bytes = d.ingest.tcp.max_unanswered_bytes,
            interval_ms = d.blocks.interval_ms,
            max_block = weft_ledger::block::MAX_BLOCK_TXS,
            max_txs = d.blocks.max_txs,
            merge_after_txs = d.storage.merge_after_txs,
            cache_mib = d.storage.cache_mib,
            poll_ms = d.ingest.poll_ms,
            ingest_batch = d.ingest.batch,
            min_age_ms = d.ingest.min_age_ms,
            leader_timeout_ms = d.network.leader_timeout_ms,
            block_interval_ms = d.network.block_interval_ms,
            idle_block_ms = d.network.idle_block_ms,
            mempool_max = d.network.mempool_max,
            dial_interval_ms = d.network.dial_interval_ms,
            start_wait_ms = d.network.start_wait_ms,
            connections = d.network.connections,
            most_connections = MAX_CONNECTIONS,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_defaults_are_the_defaults() {
        assert_eq!(
            NodeConfig::parse(&NodeConfig::default_toml()),
            Ok(NodeConfig::default())
        );
        // A file with comments only (homes made before there were settings) is all defaults.
        assert_eq!(NodeConfig::parse("# nothing\n"), Ok(NodeConfig::default()));
    }

    #[test]
    fn publishing_needs_witnesses_with_keys() {
        let key = weft_ledger::witness::verifier_key(
            "w.example/1",
            &weft_core::SigningKey::from_seed(&[7; 32]).public_key(),
        );
        let good = format!(
            "[publish]\nenabled = true\npolicy = 1\nwitnesses = [{{ url = \"http://127.0.0.1:1\", key = \"{key}\" }}]\n"
        );
        let config = NodeConfig::parse(&good).expect("a publisher");
        assert_eq!(config.publish.k(), 1);
        let error = NodeConfig::parse("[publish]\nenabled = true\n").expect_err("no witness");
        assert_eq!(error.key, "publish.witnesses");
        let error =
            NodeConfig::parse(&good.replace("policy = 1", "policy = 2")).expect_err("2 of 1");
        assert_eq!(error.key, "publish.policy");
        let error = NodeConfig::parse(&good.replace("w.example/1+", "w.example/2+"))
            .expect_err("a key ID of another name");
        assert_eq!(error.key, "publish.witnesses.key");
        let error = NodeConfig::parse(&good.replace("http://", "https://")).expect_err("no ca");
        assert_eq!(error.key, "publish.witnesses.ca");
        let error = NodeConfig::parse(&good.replace("policy = 1", "interval_ms = 5"))
            .expect_err("too often");
        assert_eq!(error.key, "publish.interval_ms");
    }

    #[test]
    fn a_witness_needs_a_name_and_chains() {
        let config = NodeConfig::parse(
            "[witness]\nenabled = true\nname = \"w.example/1\"\norigins = [\"a.json\"]\n",
        )
        .expect("a witness");
        assert_eq!(config.witness.origins, ["a.json"]);
        let error = NodeConfig::parse("[witness]\nenabled = true\norigins = [\"a.json\"]\n")
            .expect_err("no name");
        assert_eq!(error.key, "witness.name");
        let error =
            NodeConfig::parse("[witness]\nenabled = true\nname = \"w\"\n").expect_err("no chain");
        assert_eq!(error.key, "witness.origins");
        let error =
            NodeConfig::parse("[witness]\nenabled = true\nname = \"a b\"\n").expect_err("a space");
        assert!(
            error.message.contains("without spaces"),
            "{}",
            error.message
        );
        // Disabled, nothing is asked of it.
        assert!(NodeConfig::parse("[witness]\nname = \"a b\"\n").is_ok());
    }

    #[test]
    fn only_a_networked_thin_node_follows_on_proofs() {
        let config = NodeConfig::parse(
            "[node]\ntype = \"thin\"\nfollow = \"proofs\"\n[network]\nenabled = true\n\
             listen = \"127.0.0.1:7000\"\n",
        )
        .expect("a thin node of a network");
        assert_eq!(config.node.follow, Follow::Proofs);
        let error = NodeConfig::parse("[node]\ntype = \"full\"\nfollow = \"proofs\"\n")
            .expect_err("a full node keeps its rule state");
        assert_eq!(error.key, "node.follow");
        assert!(error.message.contains("full node"), "{}", error.message);
        let error = NodeConfig::parse("[node]\ntype = \"thin\"\nfollow = \"proofs\"\n")
            .expect_err("no network, no certificates");
        assert!(
            error.message.contains("without [network]"),
            "{}",
            error.message
        );
        let error = NodeConfig::parse("[node]\nfollow = \"faith\"\n").expect_err("no such mode");
        assert!(error.to_string().contains("faith"), "{error}");
    }

    #[test]
    fn storage_filters_are_checked_and_only_for_nodes_that_strip() {
        let id = "ab".repeat(32);
        let config = NodeConfig::parse(&format!(
            "[node]\ntype = \"thin\"\nkeep_kinds = [\"record\", \"SendProductData\"]\n\
             keep_resources = [\"{id}\"]\n"
        ))
        .expect("a thin node's filter");
        let filter = config
            .node
            .storage_filter()
            .expect("valid")
            .expect("a filter");
        assert_eq!(
            filter.kinds,
            [
                weft_core::model::PayloadKind::Record,
                weft_core::model::PayloadKind::SendProductData
            ]
        );
        assert_eq!(filter.resources[0].to_hex(), id);
        // Thin and producer nodes without keys still strip (everything but the always-kept).
        let config = NodeConfig::parse("[node]\ntype = \"producer\"\n").expect("producer");
        assert_eq!(
            config.node.storage_filter(),
            Ok(Some(weft_ledger::filter::StorageFilter::default()))
        );
        assert_eq!(NodeConfig::default().node.storage_filter(), Ok(None));

        let error = NodeConfig::parse("[node]\ntype = \"thin\"\nkeep_kinds = [\"Blueprint\"]\n")
            .expect_err("no such kind");
        assert_eq!(error.key, "node.keep_kinds");
        assert!(
            error
                .message
                .contains("\"Blueprint\" is not a payload kind"),
            "{error}"
        );
        let error = NodeConfig::parse("[node]\ntype = \"thin\"\nkeep_resources = [\"abc\"]\n")
            .expect_err("not an id");
        assert_eq!(error.key, "node.keep_resources");
        let error = NodeConfig::parse(&format!(
            "[node]\ntype = \"archive\"\nkeep_resources = [\"{id}\"]\n"
        ))
        .expect_err("an archive node keeps everything");
        assert!(error.message.contains("keeps every payload"), "{error}");
        let many = vec![format!("\"{id}\""); MAX_KEEP_ENTRIES + 1].join(", ");
        let error = NodeConfig::parse(&format!(
            "[node]\ntype = \"thin\"\nkeep_resources = [{many}]\n"
        ))
        .expect_err("too many");
        assert!(error.message.contains("at most 1024"), "{error}");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let error = NodeConfig::parse("[blocks]\ninterval = 5\n").expect_err("unknown key");
        assert!(error.message.contains("interval"), "{error}");
        let error = NodeConfig::parse("[blocks]\ninterval_ms = 10\n").expect_err("too short");
        assert_eq!(error.key, "blocks.interval_ms");
        assert!(error.to_string().contains("got 10"), "{error}");
        let error = NodeConfig::parse("[api]\nlisten = \"localhost\"\n").expect_err("no port");
        assert_eq!(error.key, "api.listen");
        let error = NodeConfig::parse("[node]\ntype = \"giant\"\n").expect_err("no such type");
        assert!(error.message.contains("giant"), "{error}");
        let error = NodeConfig::parse("[[ingest.watch]]\ndir = \"/d\"\npattern = \"[\"\n")
            .expect_err("bad pattern");
        assert_eq!(error.key, "ingest.watch.pattern");
        let error = NodeConfig::parse("[[ingest.watch]]\ndir = \"/d\"\naction = \"shred\"\n")
            .expect_err("no such action");
        assert!(error.message.contains("shred"), "{error}");
        let error =
            NodeConfig::parse("[[ingest.watch]]\ndir = \"/d\"\n[[ingest.watch]]\ndir = \"/d\"\n")
                .expect_err("twice");
        assert_eq!(error.key, "ingest.watch.dir");
        let error = NodeConfig::parse("[ingest]\nidentity = \"me\"\n").expect_err("not an id");
        assert_eq!(error.key, "ingest.identity");
        let error = NodeConfig::parse("[ingest.tcp]\nlisten = \"nowhere\"\n").expect_err("no port");
        assert_eq!(error.key, "ingest.tcp.listen");
        let error = NodeConfig::parse("[tls]\ncert = \"c.pem\"\n").expect_err("no key");
        assert_eq!(error.key, "tls.key");
        let error = NodeConfig::parse("[api]\nrate_burst = 0\n").expect_err("no burst");
        assert_eq!(error.key, "api.rate_burst");
        let error =
            NodeConfig::parse("[api]\nwait_timeout_ms = 5\n").expect_err("too short a wait");
        assert_eq!(error.key, "api.wait_timeout_ms");
        let error = NodeConfig::parse("[network]\nenabled = true\nlisten = \"127.0.0.1\"\n")
            .expect_err("no port");
        assert_eq!(error.key, "network.listen");
        let error = NodeConfig::parse(
            "[network]\nenabled = true\nlisten = \"127.0.0.1:7000\"\nseeds = [\"127.0.0.1:7001\"]\n",
        )
        .expect_err("a seed without its key");
        assert_eq!(error.key, "network.seeds");
        assert!(error.message.contains("no '@'"), "{error}");
        let error = NodeConfig::parse(
            "[network]\nenabled = true\nlisten = \"127.0.0.1:7000\"\nidle_block_ms = 3000\n",
        )
        .expect_err("idle blocks after the leader timeout");
        assert_eq!(error.key, "network.idle_block_ms");
        let error = NodeConfig::parse(
            "[network]\nenabled = true\nlisten = \"127.0.0.1:7000\"\ndial_interval_ms = 5\n",
        )
        .expect_err("dialing too often");
        assert_eq!(error.key, "network.dial_interval_ms");
        let error = NodeConfig::parse(
            "[network]\nenabled = true\nlisten = \"127.0.0.1:7000\"\nstart_wait_ms = 600001\n",
        )
        .expect_err("waiting over ten minutes to start");
        assert_eq!(error.key, "network.start_wait_ms");
        let error = NodeConfig::parse(
            "[network]\nenabled = true\nlisten = \"127.0.0.1:7000\"\nconnections = 65\n",
        )
        .expect_err("more connections than a node keeps");
        assert_eq!(error.key, "network.connections");
        assert!(error.message.contains("65"), "{error}");
        let error = NodeConfig::parse("[api]\nmax_batch = \"many\"\n").expect_err("wrong type");
        assert!(error.message.contains("max_batch"), "{error}");
    }
}
