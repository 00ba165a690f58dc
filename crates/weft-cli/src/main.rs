//! `weft`: the command-line tool. Thin: argument parsing and output here, the work in
//! weft-core and weft-ledger. Embedded mode: every command operates on a ledger home directory.

// Standard output is written through `output::print`, which ends a command quietly when the
// reader has gone; `println!` would panic.
#![deny(clippy::print_stdout)]

mod bench;
mod chain;
mod client;
mod cluster;
mod commands;
mod context;
mod demo;
mod gcode;
mod gcode_bench;
mod ingest;
mod join;
mod node;
mod node_bench;
mod output;
mod tcp_bench;
mod tls;
mod witness_bench;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use weft_client::home;
use weft_core::HashAlgo;

use commands::{AssetArgs, OrgArgs};
use context::Globals;
use output::{Output, exit};

#[derive(Parser, Debug)]
#[command(
    name = "weft",
    version,
    about = "A tamper-evident, permissioned ledger for the manufacturing digital thread"
)]
struct Cli {
    /// Ledger home directory.
    #[arg(
        long,
        global = true,
        default_value = "./.weft",
        env = "WEFT_HOME",
        help_heading = "Global options"
    )]
    home: PathBuf,
    /// Print machine-readable JSON.
    #[arg(long, global = true, help_heading = "Global options")]
    json: bool,
    /// Act through the running node at this API address (http://HOST:PORT, or https:// with
    /// --ca) instead of the home's own ledger; keys that sign still come from the home.
    #[arg(
        long,
        global = true,
        env = "WEFT_NODE",
        help_heading = "Global options"
    )]
    node: Option<String>,
    /// Trust this PEM certificate (the node's, or its CA's) for https:// nodes and TLS ingest.
    #[arg(long, global = true, env = "WEFT_CA", help_heading = "Global options")]
    ca: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new single-node ledger home: genesis block, authority and producer keys, config.
    /// With --join URL or --genesis FILE: a home for a node joining an existing network.
    Init {
        /// Chain name (letters, digits, '.', '_', '-'); the chain id is derived from it.
        #[arg(long = "chain-id", default_value = "weft-local")]
        chain_id: String,
        /// How far a transaction's timeOfTx may be from the node's clock, in seconds.
        #[arg(long, default_value_t = home::DEFAULT_TIME_WINDOW_SECS)]
        time_window_secs: u64,
        /// Join the network of the node at this API address: fetch its join document
        /// (GET /v1/net/join).
        #[arg(long, conflicts_with_all = ["genesis", "chain_id", "time_window_secs"])]
        join: Option<String>,
        /// Join the network described by this join document (`weft net genesis --out FILE`).
        #[arg(long, conflicts_with_all = ["chain_id", "time_window_secs"])]
        genesis: Option<PathBuf>,
        /// With --join/--genesis: the joining node's type: archive (keeps everything), full or
        /// thin.
        #[arg(long = "type")]
        node_type: Option<String>,
        /// With --join/--genesis and --type thin: how the node follows the chain: `rules`
        /// (whole bodies, every rule replayed; the default) or `proofs` (bodies filtered, each
        /// final block taken on its validators' certificate, asset questions answered from
        /// peers' histories checked against its own state roots).
        #[arg(long, value_parser = ["rules", "proofs"])]
        follow: Option<String>,
        /// With --join/--genesis: peer-to-peer listen address (default: a free loopback port).
        #[arg(long)]
        p2p: Option<String>,
        /// With --join/--genesis: API listen address.
        #[arg(long)]
        api: Option<String>,
        /// With --join/--genesis: the block 0 hash you were given out of band; joining stops if
        /// the network's differs.
        #[arg(long)]
        block0_hash: Option<String>,
    },
    /// Organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// People acting for organisations.
    #[command(subcommand)]
    Person(PersonCommand),
    /// Claim ownership of a file (NIST RecordOwnership).
    Claim {
        /// The file whose ownership is claimed (only its fingerprint goes on the ledger).
        file: PathBuf,
        /// The issuer (resource id or unique prefix).
        #[arg(long = "as")]
        as_: String,
        /// A person of the issuer's organisation who signs for it.
        #[arg(long)]
        signer: Option<String>,
        #[command(flatten)]
        asset: AssetFlags,
    },
    /// Record sending a file to another resource (NIST SendProductData).
    Send {
        /// The file sent (only its fingerprint goes on the ledger).
        file: PathBuf,
        /// The sender: its owner, or a recipient allowed to forward it (resource id or unique
        /// prefix).
        #[arg(long)]
        from: String,
        /// The recipient (resource id or unique prefix).
        #[arg(long)]
        to: String,
        /// Give the recipient the right to send the file on.
        #[arg(long)]
        forward: bool,
        /// A person of the sender's organisation who signs for it.
        #[arg(long)]
        signer: Option<String>,
        /// Fingerprint algorithm.
        #[arg(long, default_value = "sha256")]
        algo: HashAlgo,
    },
    /// Validate a received file: is it on the ledger, who owns it, was it sent to me?
    Verify {
        /// The received file.
        file: PathBuf,
        /// The resource checking the file (organisation or person).
        #[arg(long = "as")]
        as_: Option<String>,
        /// Only try this fingerprint algorithm (default: all, SHA-256 first).
        #[arg(long)]
        algo: Option<HashAlgo>,
        /// Check the answer against this trust root instead of those pinned in the home.
        #[arg(long = "trust", value_name = "FILE")]
        trust: Vec<PathBuf>,
    },
    /// Every transaction that mentions a file or fingerprint, in ledger order.
    History {
        /// A file path, or a fingerprint as `algo:hex` (or bare SHA-256 hex).
        target: String,
        /// The fingerprint algorithm of a file path (default: every one, SHA-256 first).
        #[arg(long)]
        algo: Option<HashAlgo>,
        /// Check the answer against this trust root instead of those pinned in the home.
        #[arg(long = "trust", value_name = "FILE")]
        trust: Vec<PathBuf>,
    },
    /// Inclusion proofs.
    Proof(ProofArgs),
    /// The chain.
    #[command(subcommand)]
    Chain(ChainCommand),
    /// The chain's head as a C2SP signed checkpoint, checked against the trust root; with
    /// --since, checked to extend the one you held (docs/checkpoints.md).
    Checkpoint {
        /// A checkpoint of the first SIZE blocks instead of the whole chain.
        #[arg(long)]
        size: Option<u64>,
        /// Another node (a validator of a network) to ask for the same checkpoint; its
        /// signature is added. Repeatable.
        #[arg(long, value_name = "URL")]
        also: Vec<String>,
        /// A checkpoint held from before (a file `--out` wrote): the new one must extend it.
        #[arg(long, value_name = "FILE")]
        since: Option<PathBuf>,
        /// Write the signed checkpoint here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Check against this trust root instead of those pinned in the home; repeatable.
        #[arg(long = "trust", value_name = "FILE")]
        trust: Vec<PathBuf>,
    },
    /// Trust roots: the chains whose answers you believe, and the keys that make their blocks
    /// final (docs/proofs.md).
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Transactions.
    #[command(subcommand)]
    Tx(TxCommand),
    /// Generic signed data records (machine, process, quality data).
    #[command(subcommand)]
    Record(RecordCommand),
    /// Physical parts (register by code, transfer to a new owner).
    #[command(subcommand)]
    Part(PartCommand),
    /// Key rotation and revocation.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The node daemon.
    #[command(subcommand)]
    Node(NodeCommand),
    /// A local multi-process network on loopback (docs/network.md).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// The network a running node is part of.
    #[command(subcommand)]
    Net(NetCommand),
    /// Between companies: this chain's checkpoints published to witnesses, and the other
    /// chains' anchored here (docs/anchoring.md).
    #[command(subcommand)]
    Anchor(AnchorCommand),
    /// Ingest over the node's TCP protocol, and second-tier sealing of what is sent.
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// Follow new blocks of a running node as they are committed (--node URL, or the one on
    /// --home).
    Tail {
        /// Start at this height (default: the next block).
        #[arg(long)]
        from: Option<u64>,
        /// Stop after this many blocks (default: follow until interrupted).
        #[arg(long)]
        count: Option<u64>,
        /// Check for a new block this often, in milliseconds.
        #[arg(long, default_value_t = 200)]
        poll_ms: u64,
        /// Check each block against this trust root instead of those pinned in the home.
        #[arg(long = "trust", value_name = "FILE")]
        trust: Vec<PathBuf>,
    },
    /// TLS certificates.
    #[command(subcommand)]
    Tls(TlsCommand),
    /// The NIST AMS 300-6 story end to end, in a temporary home, narrated.
    Demo,
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// G-code protection: layers, sealed per-layer chains, verification that names the layer.
    #[command(subcommand)]
    Gcode(gcode::GcodeCommand),
    /// Commits transactions in a loop, printing `ack TXID` after each durable commit (crash tests).
    #[command(hide = true)]
    Stress {
        /// Blocks to commit.
        #[arg(long, default_value_t = 1000)]
        blocks: u64,
        /// Transactions in each block.
        #[arg(long, default_value_t = 10)]
        per_block: usize,
        /// Merge index changes a step at a time between blocks, as a node does: a generation
        /// once this many transactions wait, `--merge-budget` transactions' worth a step.
        #[arg(long)]
        merge_after: Option<usize>,
        /// Transactions' worth of index changes merged a step (with --merge-after).
        #[arg(long, default_value_t = 16)]
        merge_budget: usize,
    },
}

#[derive(Args, Debug)]
struct AssetFlags {
    /// DataType: GEOMETRY_3D, GEOMETRY_SLICED, CONFIGURATION, CONTROL_DATA (or a custom NAME).
    #[arg(long = "type")]
    data_type: Option<String>,
    /// File id (default: the file name).
    #[arg(long)]
    file_id: Option<String>,
    /// Version id (repeatable; default "1").
    #[arg(long = "version-id")]
    version_ids: Vec<String>,
    /// Description (repeatable).
    #[arg(long = "description")]
    descriptions: Vec<String>,
    /// The content is publicly available.
    #[arg(long)]
    public: bool,
    /// DOI of the content (needs --public).
    #[arg(long)]
    doi: Option<String>,
    /// DOI of more metadata (needs --public).
    #[arg(long)]
    doi_no_redirect: Option<String>,
    /// Fingerprint algorithm: sha256, sha3-256, blake3.
    #[arg(long, default_value = "sha256")]
    algo: HashAlgo,
}

#[derive(Subcommand, Debug)]
enum AnchorCommand {
    /// How the node's publishing to its witnesses fares (sizes pushed and witnessed, lag,
    /// failures by witness), with its latest witnessed checkpoint checked against the trust root
    /// and the witness keys you hold.
    Status {
        /// A witness whose cosignatures you trust (its verifier key, `name+keyid+key`);
        /// repeatable. Default: the witnesses of this home's [publish].
        #[arg(long = "witness", value_name = "KEY")]
        witnesses: Vec<String>,
        /// How many of them must cosign (default: [publish].policy, or all given).
        #[arg(long)]
        policy: Option<usize>,
        /// Check against this trust root instead of those pinned in the home; repeatable.
        #[arg(long = "trust", value_name = "FILE")]
        trust: Vec<PathBuf>,
    },
    /// Register another company's chain, by its trust root, so its checkpoints can be anchored
    /// here (a RegisterChain transaction signed with the home's authority key).
    Register {
        /// The other chain's trust root (`weft trust export` on a home of it).
        file: PathBuf,
    },
    /// The evidence recorded here that another chain signed two histories: each transaction
    /// proven on this chain, each pair of checkpoints checked against that chain's trust root.
    Evidence {
        /// Write the evidence here, for anyone to check with `weft anchor verify`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Trust roots to check against (this chain's and the other's) instead of those pinned.
        #[arg(long = "trust", value_name = "FILE")]
        trust: Vec<PathBuf>,
    },
    /// Check evidence written by `weft anchor evidence --out` offline, against trust roots.
    Verify {
        /// The evidence file (`weft anchor evidence --out`).
        file: PathBuf,
        /// The other chain's trust root to check against, instead of those pinned; repeatable.
        #[arg(long = "trust", value_name = "FILE")]
        trust: Vec<PathBuf>,
    },
    /// Check an RFC 3161 time-stamp of this chain's checkpoint: the Timestamp transaction proven
    /// on the chain, its checkpoint signed by the validators, the TSA's token (signature and
    /// certificate chain, message imprint, nonce) against the TSA's CA you hold.
    Timestamp {
        /// The Timestamp transaction (its id, or a unique prefix), or its proof file (`weft
        /// proof TX --out FILE`), checked offline.
        target: String,
        /// The TSA's CA certificate (PEM); repeatable.
        #[arg(long = "tsa-ca", value_name = "PEM", required = true)]
        tsa_ca: Vec<PathBuf>,
        /// Check against this trust root instead of those pinned; repeatable.
        #[arg(long = "trust", value_name = "FILE")]
        trust: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum OrgCommand {
    /// Register an organisation (signed by this home's network authority).
    Add {
        /// The organisation's name.
        name: String,
        /// Country (ISO 3166 code or name), part of the NIST address.
        #[arg(long)]
        country: String,
        /// Town or city.
        #[arg(long)]
        town: String,
        /// Street.
        #[arg(long)]
        street: Option<String>,
        /// House number.
        #[arg(long)]
        street_number: Option<String>,
        /// Postal code.
        #[arg(long)]
        postal_code: Option<String>,
        /// Region or state.
        #[arg(long)]
        region: Option<String>,
        /// Post office box.
        #[arg(long)]
        postal_box: Option<String>,
        /// Web address.
        #[arg(long)]
        website: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum PersonCommand {
    /// Register a person of an organisation (signed by the organisation).
    Add {
        /// The organisation the person acts for (resource id or unique prefix); its key signs.
        #[arg(long)]
        org: String,
        /// First name.
        #[arg(long)]
        first: Option<String>,
        /// Last name.
        #[arg(long)]
        last: Option<String>,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
    },
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
struct ProofArgs {
    #[command(subcommand)]
    verify: Option<ProofCommand>,
    /// Transaction id to prove: 64 hex digits, or a unique prefix of at least 6 (as `weft
    /// history` shows).
    tx_id: Option<String>,
    /// Write the proof here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Check the proof against this trust root (`weft trust export`) instead of those pinned in
    /// the home; repeatable.
    #[arg(long = "trust", value_name = "FILE")]
    trust: Vec<PathBuf>,
    /// Write a C2SP tlog-proof (transaction → block → the head's signed checkpoint) instead of
    /// weft's JSON proof.
    #[arg(long)]
    tlog: bool,
    /// With --tlog: another node (a validator of a network) whose signature on the same
    /// checkpoint is added. Repeatable.
    #[arg(long, value_name = "URL", requires = "tlog")]
    also: Vec<String>,
    /// Write a cross-chain proof: the tlog-proof, the checkpoint covering the transaction with
    /// its witnesses' cosignatures, and the Anchor transactions other companies' chains hold of
    /// it, each with its proof there (docs/anchoring.md).
    #[arg(long, conflicts_with = "tlog")]
    anchored: bool,
    /// With --anchored: a node of a chain that anchors this one; repeatable. Default: the first
    /// URL of each chain in this home's [anchor].
    #[arg(long, value_name = "URL", requires = "anchored")]
    by: Vec<String>,
    /// With --anchored: a witness whose cosignature the checkpoint must carry (its verifier key,
    /// `name+keyid+key`); repeatable. Default: the witnesses of this home's [publish], if any.
    #[arg(long = "witness", value_name = "KEY", requires = "anchored")]
    witnesses: Vec<String>,
    /// With --anchored: how many of the witnesses must cosign (default: [publish].policy, or
    /// all given).
    #[arg(long, requires = "anchored")]
    policy: Option<usize>,
}

#[derive(Subcommand, Debug)]
enum ProofCommand {
    /// Check proofs offline (several at once are checked in signature batches).
    Verify {
        /// Proof files (`weft proof TX_ID --out FILE`).
        #[arg(required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Check against this trust root (`weft trust export`) instead of those pinned in the
        /// home; repeatable, one per chain (an anchored proof needs one for each chain in it).
        #[arg(long = "trust", value_name = "FILE")]
        trust: Vec<PathBuf>,
        /// For an anchored proof: a witness whose cosignature its checkpoint must carry (its
        /// verifier key, `name+keyid+key`); repeatable. Without it the cosignatures are not
        /// checked.
        #[arg(long = "witness", value_name = "KEY")]
        witnesses: Vec<String>,
        /// How many of the witnesses must cosign (default: all given).
        #[arg(long, requires = "witnesses")]
        policy: Option<usize>,
    },
}

#[derive(Subcommand, Debug)]
enum TrustCommand {
    /// The trust roots pinned in the home: what verifying commands check answers against.
    Show,
    /// Write a pinned trust root (the home's own chain by default) for those who verify.
    Export {
        /// The chain whose root to write, when several are pinned.
        #[arg(long)]
        chain: Option<String>,
        /// Write it here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Pin a chain's trust root, from a trust root or a join document, once you confirm the
    /// hash of its block 0 (told to you apart from the file).
    Add {
        /// A trust root (`weft trust export`) or a join document (`weft net genesis`).
        file: PathBuf,
        /// The hash of block 0 you were told; the file must match it.
        #[arg(long = "genesis-hash", value_name = "HASH")]
        genesis_hash: String,
    },
}

#[derive(Subcommand, Debug)]
enum ChainCommand {
    /// Re-verify every block and transaction from genesis.
    Verify,
    /// The chain's parameters (from its genesis) and its head, checked against the trust root.
    Info {
        /// Check against this trust root instead of those pinned in the home.
        #[arg(long = "trust", value_name = "FILE")]
        trust: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum TxCommand {
    /// Show a transaction, once its proof checks against the trust root.
    Show {
        /// Transaction id: 64 hex digits, or a unique prefix of at least 6.
        tx_id: String,
        /// Check against this trust root instead of those pinned in the home; repeatable.
        #[arg(long = "trust", value_name = "FILE")]
        trust: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum RecordCommand {
    /// Record a file's bytes (at most 1 MiB) as a signed record.
    Add {
        /// The file whose bytes are recorded.
        file: PathBuf,
        /// The resource that records it (resource id or unique prefix).
        #[arg(long = "as")]
        as_: String,
        /// A person of that organisation who signs for it.
        #[arg(long)]
        signer: Option<String>,
        /// The media type of the bytes.
        #[arg(long, default_value = "application/octet-stream")]
        content_type: String,
        /// The product (a part's code) the record is about.
        #[arg(long)]
        product_code: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum PartCommand {
    /// Register a physical part by the code applied to it.
    Register {
        /// The code applied to the part (serial number, DataMatrix content, …).
        code: String,
        /// The part's first owner (resource id or unique prefix).
        #[arg(long = "as")]
        as_: String,
        /// A person of that organisation who signs for it.
        #[arg(long)]
        signer: Option<String>,
        /// What the part is.
        #[arg(long)]
        description: Option<String>,
    },
    /// Transfer a part to a new owner (only its current owner can).
    Transfer {
        /// The part's code.
        code: String,
        /// Its current owner (resource id or unique prefix).
        #[arg(long)]
        from: String,
        /// The new owner (resource id or unique prefix).
        #[arg(long)]
        to: String,
        /// A person of the current owner's organisation who signs for it.
        #[arg(long)]
        signer: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum NodeCommand {
    /// Serve the home: REST API, block production, metrics. Stops on SIGTERM/SIGINT.
    Run {
        /// Listen address of the API (overrides api.listen; port 0 = a free port). The bound
        /// address is printed and written to HOME/node.addr.
        #[arg(long)]
        api: Option<String>,
        /// Watch this directory: files dropped into it are recorded (as `Record`s signed by
        /// the node's identity) and moved to its done/ or failed/ (repeatable; adds to
        /// [[ingest.watch]] with the default rules).
        #[arg(long)]
        watch: Vec<PathBuf>,
        /// Listen for TCP ingest here (overrides ingest.tcp.listen; port 0 = a free port).
        #[arg(long)]
        tcp: Option<String>,
    },
    /// Height, head, type and peers of a running node (--node URL, or the one on --home).
    Status,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Make and start a network on loopback: validators (with one genesis naming them all),
    /// plus thin and archive nodes that follow; prints each node's name, type, API and pid.
    /// With --networks N, N companies' networks that witness and anchor each other.
    Up {
        /// Validators; with --networks, of each network, or one count per network
        /// (`--nodes 4,1,1`).
        #[arg(long, default_value = "4", value_delimiter = ',')]
        nodes: Vec<usize>,
        /// Several companies' networks (2 to 8, in DIR/a, DIR/b, …): the first validator of
        /// each witnesses the others, publishes its chain's checkpoints to their witnesses and
        /// anchors their chains on its own (docs/anchoring.md).
        #[arg(long, default_value_t = 1)]
        networks: usize,
        /// Thin nodes (follow the chain without voting).
        #[arg(long, default_value_t = 0)]
        thin: usize,
        /// Archive nodes (follow the chain without voting, keep everything).
        #[arg(long, default_value_t = 0)]
        archive: usize,
        /// A new or empty directory for the nodes' homes and cluster.json.
        #[arg(long)]
        dir: PathBuf,
        /// Seconds to wait for every node to commit the network's first block (1 to 3600);
        /// then all are stopped and `up` fails.
        #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
    },
    /// Restart one node (after a crash, or to stop and start it): by index or name.
    Restart {
        /// The cluster's directory (as given to `cluster up`).
        #[arg(long)]
        dir: PathBuf,
        /// The node: its index or its name.
        #[arg(long)]
        node: String,
    },
    /// Every node: running or not, height, sync state, peers, and whether all hold the same
    /// block at the highest height they share. Exit code 4 when a node is down or not
    /// answering, or the nodes disagree.
    Status {
        /// The cluster's directory (as given to `cluster up`).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Stop every node of the cluster (SIGTERM; their homes stay).
    Down {
        /// The cluster's directory (as given to `cluster up`).
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum NetCommand {
    /// Peers, validators, height, view and sync state of a running node (--node URL, or the
    /// one on --home).
    Status,
    /// The join document of this node's network (block 0, seeds, followers), for
    /// `weft init --genesis FILE` on a new node.
    Genesis {
        /// Write it to this file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Admit a node's key to the network (a NetworkPeer transaction signed with the home's
    /// authority key): the network's nodes then accept its connections.
    Admit {
        /// The node's public key (`weft init --join` prints it).
        key: String,
        /// What the operators call the node.
        #[arg(long)]
        name: String,
    },
    /// Remove a node's key from the network: its connections are cut and refused.
    Remove {
        /// The node's public key.
        key: String,
        /// What the operators call the node.
        #[arg(long, default_value = "removed")]
        name: String,
    },
    /// Replace the validators from a later height on (a SetValidators transaction signed with
    /// the home's authority key). Every node switches at that height; a new validator's key
    /// must be admitted (or be a follower) for the others to connect to it. A change at or
    /// before the height of one scheduled and not yet in effect replaces it (and any after it).
    Validators {
        /// The validators' public keys, in order (1 to 64).
        #[arg(required_unless_present = "withdraw", conflicts_with = "withdraw")]
        keys: Vec<String>,
        /// The first height the new validators produce (later than the current head; default:
        /// 20 blocks after it).
        #[arg(long, conflicts_with = "withdraw")]
        from_height: Option<u64>,
        /// Withdraw the scheduled changes not yet in effect: the validators in effect now are
        /// scheduled again at the height of the first, which replaces it and any after it.
        #[arg(long)]
        withdraw: bool,
    },
}

#[derive(Subcommand, Debug)]
enum IngestCommand {
    /// Record files (or lines of standard input) through a node's TCP ingest: the node signs
    /// each as a record of its identity; prints each transaction id once committed.
    Tcp {
        /// Files to record, one record each.
        files: Vec<PathBuf>,
        /// The node's TCP ingest address HOST:PORT (default: the one the node on --home wrote).
        #[arg(long)]
        to: Option<String>,
        /// Record each line of standard input instead of files.
        #[arg(long)]
        lines: bool,
        /// Media type of the records.
        #[arg(long, default_value = "application/octet-stream")]
        content_type: String,
        /// The node's ingest token (default: HOME/ingest.token).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Seal every record with this second-tier key first: only its holder can read them.
        #[arg(long)]
        seal_key: Option<PathBuf>,
        /// Most records sent and not yet answered.
        #[arg(long, default_value_t = 4096)]
        window: usize,
    },
    /// Make a second-tier seal key (AES-256, hex, mode 0600).
    SealKey {
        /// Where to write the new key (mode 600).
        file: PathBuf,
    },
    /// Print (or write) the plaintext of a sealed record.
    Open {
        /// The record's transaction id: 64 hex digits, or a unique prefix of at least 6.
        tx_id: String,
        /// The seal key the record was sealed with (`weft ingest seal-key`).
        #[arg(long)]
        seal_key: PathBuf,
        /// Write the plaintext here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum TlsCommand {
    /// Make a self-signed certificate and key for a node under test (cert.pem, key.pem).
    SelfSigned {
        /// A directory for cert.pem and key.pem (the key mode 600).
        #[arg(long)]
        out: PathBuf,
        /// Host names and IP addresses the certificate is for (default 127.0.0.1, localhost).
        #[arg(long = "name")]
        names: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// Replace a resource's key: a new key file is written, the old key is revoked.
    Rotate {
        /// The resource whose key is replaced (resource id or unique prefix); its key in this
        /// home signs the change.
        #[arg(long)]
        resource: String,
    },
    /// Revoke one key of a resource.
    Revoke {
        /// The resource whose key is revoked (resource id or unique prefix).
        #[arg(long)]
        resource: String,
        /// The public key to revoke (hex).
        #[arg(long)]
        key: String,
        /// Sign as this resource (the person's organisation) instead of the resource itself.
        #[arg(long)]
        signer: Option<String>,
    },
}

fn run(cli: Cli, home_given: bool) -> anyhow::Result<()> {
    let ctx = Globals {
        home: cli.home,
        home_given,
        node: cli.node,
        ca: cli.ca,
        out: Output {
            json: cli.json,
            quiet: false,
        },
    };
    match cli.command {
        Command::Init {
            chain_id,
            time_window_secs,
            join,
            genesis,
            node_type,
            follow,
            p2p,
            api,
            block0_hash,
        } => {
            let source = match (&join, &genesis) {
                (Some(url), _) => Some(join::Source::Url(url)),
                (None, Some(path)) => Some(join::Source::File(path)),
                (None, None) => None,
            };
            match source {
                None => {
                    if node_type.is_some()
                        || follow.is_some()
                        || p2p.is_some()
                        || api.is_some()
                        || block0_hash.is_some()
                    {
                        anyhow::bail!(
                            "--type, --follow, --p2p, --api and --block0-hash are for a node \
                             joining a network: give --join URL or --genesis FILE too"
                        );
                    }
                    commands::init(&ctx, &chain_id, time_window_secs)
                }
                Some(source) => {
                    let node_type = match node_type.as_deref().unwrap_or("archive") {
                        "archive" => weft_node::NodeType::Archive,
                        "full" => weft_node::NodeType::Full,
                        "thin" => weft_node::NodeType::Thin,
                        other => anyhow::bail!(
                            "--type {other:?}: a joining node is archive, full or thin (it \
                             validates only if named in the network's genesis)"
                        ),
                    };
                    let follow = match follow.as_deref() {
                        Some("proofs") if node_type != weft_node::NodeType::Thin => {
                            anyhow::bail!(
                                "--follow proofs is for a thin node (--type thin): the others \
                                 keep the rule state they check or answer from"
                            )
                        }
                        Some("proofs") => weft_node::Follow::Proofs,
                        _ => weft_node::Follow::Rules,
                    };
                    join::init(
                        &ctx,
                        source,
                        &join::JoinOptions {
                            node_type,
                            follow,
                            p2p: p2p.as_deref(),
                            api: api.as_deref(),
                            block0_hash: block0_hash.as_deref(),
                        },
                    )
                }
            }
        }
        Command::Org(OrgCommand::Add {
            name,
            country,
            town,
            street,
            street_number,
            postal_code,
            region,
            postal_box,
            website,
        }) => commands::org_add(
            &ctx,
            OrgArgs {
                name,
                country,
                town,
                street,
                street_number,
                postal_code,
                region,
                postal_box,
                website,
            },
        )
        .map(drop),
        Command::Person(PersonCommand::Add {
            org,
            first,
            last,
            email,
        }) => commands::person_add(&ctx, &org, first, last, email).map(drop),
        Command::Claim {
            file,
            as_,
            signer,
            asset,
        } => {
            let args = AssetArgs {
                data_type: asset.data_type,
                file_id: asset.file_id,
                version_ids: asset.version_ids,
                descriptions: asset.descriptions,
                public: asset.public,
                doi: asset.doi,
                doi_no_redirect: asset.doi_no_redirect,
                algo: asset.algo,
            };
            commands::claim(&ctx, &file, &as_, signer.as_deref(), args).map(drop)
        }
        Command::Send {
            file,
            from,
            to,
            forward,
            signer,
            algo,
        } => commands::send(&ctx, &file, &from, &to, forward, signer.as_deref(), algo).map(drop),
        Command::Verify {
            file,
            as_,
            algo,
            trust,
        } => commands::verify(&ctx, &file, as_.as_deref(), algo, &trust),
        Command::History {
            target,
            algo,
            trust,
        } => commands::history(&ctx, &target, algo, &trust),
        Command::Proof(ProofArgs {
            verify:
                Some(ProofCommand::Verify {
                    files,
                    trust,
                    witnesses,
                    policy,
                }),
            ..
        }) => commands::proof_verify(
            &ctx,
            &files,
            &trust,
            commands::explicit_policy(&witnesses, policy)?,
        ),
        Command::Proof(ProofArgs {
            verify: None,
            tx_id: Some(tx_id),
            out,
            trust,
            anchored: true,
            by,
            witnesses,
            policy,
            ..
        }) => commands::anchored_build(
            &ctx,
            &tx_id,
            out.as_deref(),
            &trust,
            &by,
            commands::home_policy(&ctx, &witnesses, policy)?,
        ),
        Command::Proof(ProofArgs {
            verify: None,
            tx_id: Some(tx_id),
            out,
            trust,
            tlog,
            also,
            ..
        }) => commands::proof_build(
            &ctx,
            &tx_id,
            out.as_deref(),
            &trust,
            tlog.then_some(&also[..]),
        ),
        Command::Proof(ProofArgs {
            verify: None,
            tx_id: None,
            ..
        }) => {
            anyhow::bail!(
                "give a transaction id (`weft proof TX_ID [--out FILE]`) or `weft proof verify FILE`"
            )
        }
        Command::Chain(ChainCommand::Verify) => commands::chain_verify(&ctx),
        Command::Chain(ChainCommand::Info { trust }) => commands::chain_info(&ctx, &trust),
        Command::Tx(TxCommand::Show { tx_id, trust }) => commands::tx_show(&ctx, &tx_id, &trust),
        Command::Trust(TrustCommand::Show) => commands::trust_show(&ctx),
        Command::Checkpoint {
            size,
            also,
            since,
            out,
            trust,
        } => commands::checkpoint(
            &ctx,
            &commands::CheckpointArgs {
                size,
                also: &also,
                since: since.as_deref(),
                out: out.as_deref(),
                trust: &trust,
            },
        ),
        Command::Trust(TrustCommand::Export { chain, out }) => {
            commands::trust_export(&ctx, chain.as_deref(), out.as_deref())
        }
        Command::Trust(TrustCommand::Add { file, genesis_hash }) => {
            commands::trust_add(&ctx, &file, &genesis_hash)
        }
        Command::Record(RecordCommand::Add {
            file,
            as_,
            signer,
            content_type,
            product_code,
        }) => commands::record_add(
            &ctx,
            &as_,
            signer.as_deref(),
            &file,
            content_type,
            product_code,
        )
        .map(drop),
        Command::Part(PartCommand::Register {
            code,
            as_,
            signer,
            description,
        }) => commands::part_register(&ctx, code, &as_, signer.as_deref(), description).map(drop),
        Command::Part(PartCommand::Transfer {
            code,
            from,
            to,
            signer,
        }) => commands::part_transfer(&ctx, code, &from, &to, signer.as_deref()).map(drop),
        Command::Key(KeyCommand::Rotate { resource }) => commands::key_rotate(&ctx, &resource),
        Command::Key(KeyCommand::Revoke {
            resource,
            key,
            signer,
        }) => commands::key_revoke(&ctx, &resource, &key, signer.as_deref()),
        Command::Node(NodeCommand::Run { api, watch, tcp }) => node::run(&ctx, api, watch, tcp),
        Command::Ingest(IngestCommand::Tcp {
            files,
            to,
            lines,
            content_type,
            token_file,
            seal_key,
            window,
        }) => {
            let to = match to {
                Some(to) => to,
                None => context::tcp_address(&ctx)?,
            };
            ingest::tcp(
                &ctx,
                ingest::IngestArgs {
                    to,
                    ca: ctx.ca.clone(),
                    files,
                    lines,
                    content_type,
                    token_file,
                    seal_key,
                    window,
                },
            )
        }
        Command::Ingest(IngestCommand::SealKey { file }) => ingest::seal_key_new(&ctx, &file),
        Command::Ingest(IngestCommand::Open {
            tx_id,
            seal_key,
            out,
        }) => ingest::open(&ctx, &tx_id, &seal_key, out.as_deref()),
        Command::Tail {
            from,
            count,
            poll_ms,
            trust,
        } => node::tail(&ctx, from, count, poll_ms, &trust),
        Command::Tls(TlsCommand::SelfSigned { out, names }) => {
            tls::self_signed(&ctx.out, &ctx.home, &out, names)
        }
        Command::Node(NodeCommand::Status) => node::status(&ctx),
        Command::Cluster(ClusterCommand::Up {
            nodes,
            networks,
            thin,
            archive,
            dir,
            timeout,
        }) => cluster::up(
            &ctx,
            &nodes,
            networks,
            (thin, archive),
            &dir,
            std::time::Duration::from_secs(timeout),
        ),
        Command::Cluster(ClusterCommand::Restart { dir, node }) => {
            cluster::restart(&ctx, &dir, &node)
        }
        Command::Cluster(ClusterCommand::Down { dir }) => cluster::down(&ctx, &dir),
        Command::Cluster(ClusterCommand::Status { dir }) => cluster::show(&ctx, &dir),
        Command::Net(NetCommand::Status) => cluster::status(&ctx),
        Command::Anchor(AnchorCommand::Status {
            witnesses,
            policy,
            trust,
        }) => commands::anchor_status(&ctx, &witnesses, policy, &trust),
        Command::Anchor(AnchorCommand::Register { file }) => commands::anchor_register(&ctx, &file),
        Command::Anchor(AnchorCommand::Evidence { out, trust }) => {
            commands::anchor_evidence(&ctx, out.as_deref(), &trust)
        }
        Command::Anchor(AnchorCommand::Verify { file, trust }) => {
            commands::anchor_verify(&ctx, &file, &trust)
        }
        Command::Anchor(AnchorCommand::Timestamp {
            target,
            tsa_ca,
            trust,
        }) => commands::anchor_timestamp(&ctx, &target, &tsa_ca, &trust),
        Command::Net(NetCommand::Genesis { out }) => join::genesis(&ctx, out.as_deref()),
        Command::Net(NetCommand::Admit { key, name }) => join::peer(&ctx, &key, &name, true),
        Command::Net(NetCommand::Remove { key, name }) => join::peer(&ctx, &key, &name, false),
        Command::Net(NetCommand::Validators {
            keys,
            from_height,
            withdraw,
        }) => {
            if withdraw {
                join::withdraw_validators(&ctx)
            } else {
                join::validators(&ctx, &keys, from_height)
            }
        }
        Command::Demo => demo::run(&ctx),
        Command::Bench(command) => bench::run(&ctx, command),
        Command::Gcode(command) => gcode::run(&ctx, command),
        Command::Stress {
            blocks,
            per_block,
            merge_after,
            merge_budget,
        } => bench::stress(
            &ctx,
            blocks,
            per_block,
            merge_after.map(|at| (at, merge_budget)),
        ),
    }
}

/// Commands that never talk to a node: `--node` (a global option) given on their command line is
/// refused rather than ignored. (`WEFT_NODE` in the environment is not: it is meant for every
/// command of a shell.) `weft cluster restart` is not listed: its own `--node` names the node to
/// restart.
const NO_NODE: [&[&str]; 18] = [
    &["init"],
    &["node", "run"],
    &["cluster", "up"],
    &["cluster", "status"],
    &["cluster", "down"],
    &["gcode", "layers"],
    &["gcode", "keygen"],
    &["bench", "ledger"],
    &["bench", "audit"],
    &["bench", "proofs"],
    &["bench", "gcode"],
    &["bench", "fingerprint"],
    &["tls", "self-signed"],
    &["ingest", "seal-key"],
    &["demo"],
    &["trust", "show"],
    &["trust", "export"],
    &["trust", "add"],
];

/// `--node` given on the command line of a command that never talks to a node.
fn node_given_in_vain(matches: &clap::ArgMatches) -> Option<String> {
    let mut path = Vec::new();
    let mut leaf = matches;
    while let Some((name, sub)) = leaf.subcommand() {
        path.push(name);
        leaf = sub;
    }
    let explicit = leaf.value_source("node") == Some(clap::parser::ValueSource::CommandLine);
    (explicit && NO_NODE.contains(&path.as_slice())).then(|| path.join(" "))
}

/// The global options of [`Cli`], by id.
const GLOBALS: [&str; 4] = ["home", "json", "node", "ca"];

/// The global options each of these commands ignores, hidden from its `--help` so that it lists
/// only what does something for it. (A group of commands, such as `weft cluster`, hides those
/// that every command in it ignores.) Hidden, not removed: they are parsed as before, and `--node`
/// on a `NO_NODE` command is still refused.
const IDLE_GLOBALS: [(&[&str], &[&str]); 22] = [
    // --ca: the certificate of an https:// --join URL.
    (&["init"], &["node"]),
    (&["node", "run"], &["node", "ca"]),
    (&["cluster", "up"], &["home", "node", "ca"]),
    (&["cluster", "status"], &["home", "node", "ca"]),
    (&["cluster", "down"], &["home", "node", "ca"]),
    // Its own --node names the node to restart; the global one never reaches it.
    (&["cluster", "restart"], &["home", "ca"]),
    (&["gcode", "layers"], &["home", "node", "ca"]),
    (&["gcode", "keygen"], &["home", "node", "ca"]),
    (&["bench", "ledger"], &["home", "node", "ca"]),
    (&["bench", "audit"], &["home", "node", "ca"]),
    (&["bench", "proofs"], &["home", "node", "ca"]),
    (&["bench", "gcode"], &["home", "node", "ca"]),
    (&["bench", "fingerprint"], &["home", "node", "ca"]),
    // --home: the config.toml lines it prints name the files relative to the home.
    (&["tls", "self-signed"], &["node", "ca"]),
    (&["ingest", "seal-key"], &["home", "node", "ca"]),
    // It sends to --to, or to the TCP address the node on --home wrote; --ca is for TLS ingest.
    (&["ingest", "tcp"], &["node"]),
    // It audits the home's own files and refuses --node with the reason.
    (&["chain", "verify"], &["node", "ca"]),
    // --home: the trust roots pinned in it.
    (&["proof", "verify"], &["node", "ca"]),
    (&["trust", "show"], &["node", "ca"]),
    (&["trust", "export"], &["node", "ca"]),
    (&["trust", "add"], &["node", "ca"]),
    (&["demo"], &["home", "node", "ca"]),
];

/// The global options that do nothing for `command` (at `path`), nor for any command under it.
fn idle_globals(command: &clap::Command, path: &[String]) -> Vec<&'static str> {
    let mut idle: Vec<&'static str> = if command.is_subcommand_required_set() {
        // A group that does nothing itself: what all of its commands ignore.
        GLOBALS.to_vec()
    } else {
        IDLE_GLOBALS
            .iter()
            .find(|(at, _)| at.iter().eq(path.iter()))
            .map_or_else(Vec::new, |(_, ids)| ids.to_vec())
    };
    for sub in command.get_subcommands() {
        let sub_path = [path, &[sub.get_name().to_string()]].concat();
        let sub_idle = idle_globals(sub, &sub_path);
        // An argument of the command's own by that name: the global one never reaches it.
        idle.retain(|id| sub_idle.contains(id) || sub.get_arguments().any(|a| a.get_id() == id));
    }
    idle
}

/// Hides the idle global options of every command under `command` (at `path`) from its help:
/// before the parser is built, each such command gets a hidden copy of the global argument,
/// which clap then propagates to the commands under it in place of the visible one (clap does
/// not propagate a global argument to a command that already has one of that id). Nothing but
/// `hide` differs from the copy clap would have propagated, so parsing does not change. (Hiding
/// the propagated arguments after `Command::build` instead breaks parsing: `mut_arg` moves the
/// argument to the end of the command's list while the built lookup of options still points at
/// the old positions.)
fn hide_idle_globals(
    command: clap::Command,
    path: &[String],
    globals: &[clap::Arg],
) -> clap::Command {
    command.mut_subcommands(|sub| {
        let sub_path = [path, &[sub.get_name().to_string()]].concat();
        let idle = idle_globals(&sub, &sub_path);
        let mut sub = hide_idle_globals(sub, &sub_path, globals);
        for global in globals {
            let id = global.get_id();
            if idle.contains(&id.as_str()) && sub.get_arguments().all(|a| a.get_id() != id) {
                sub = sub.arg(global.clone().hide(true));
            }
        }
        sub
    })
}

/// `weft`'s parser: [`Cli`], its commands' idle global options hidden from their help.
fn command() -> clap::Command {
    let command = <Cli as clap::CommandFactory>::command();
    let globals: Vec<clap::Arg> = command
        .get_arguments()
        .filter(|arg| arg.is_global_set())
        .cloned()
        .collect();
    hide_idle_globals(command, &[], &globals)
}

fn main() {
    let parsed = command().try_get_matches().and_then(|matches| {
        if let Some(path) = node_given_in_vain(&matches) {
            return Err(clap::Error::raw(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "--node has no effect on `weft {path}`: it does not talk to a node; \
                     leave --node out\n"
                ),
            ));
        }
        let given = matches
            .value_source("home")
            .is_some_and(|source| source != clap::parser::ValueSource::DefaultValue);
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).map(|cli| (cli, given))
    });
    let (cli, home_given) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let code = if error.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = error.print();
            std::process::exit(code);
        }
    };
    // The default home (./.weft) counts as given where it exists: every command means the same
    // home, whether it was named or not.
    let home_given = home_given || cli.home.join("config.toml").is_file();
    let json = cli.json;
    let result = run(cli, home_given);
    if std::env::var_os(bench::PEAK_RSS_ENV).is_some() {
        eprintln!("weft-peak-rss-kib {}", bench::peak_rss_kib().unwrap_or(0));
    }
    if let Err(error) = result {
        let (value, human, code) = commands::error_report(&error);
        if !human.is_empty() {
            if json {
                // The exit code says what happened, whether or not the report is still read.
                let report = serde_json::to_string_pretty(&value).expect("JSON values serialise");
                let _ = output::try_print(format!("{report}\n").as_bytes());
            } else {
                eprintln!("{human}");
            }
        }
        std::process::exit(code);
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every argument of every command says what it is in `--help` (the global options are
    /// described once, at the top).
    #[test]
    fn every_argument_of_every_command_is_described() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_global_set() || matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        let command = super::Cli::command();
        walk(&command, "weft", &mut missing);
        assert!(
            missing.is_empty(),
            "arguments without a description: {missing:#?}"
        );
    }

    /// The help of `weft PATH…` as the user reaches it, three ways: `-h` and `--help` on the
    /// command line, and `render_help` of the command in the built tree.
    fn helps(path: &[&str]) -> [String; 3] {
        let flag = |flag: &str| {
            let args = std::iter::once("weft")
                .chain(path.iter().copied())
                .chain([flag]);
            let error = super::command()
                .try_get_matches_from(args)
                .expect_err("help ends parsing");
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::DisplayHelp,
                "{path:?}"
            );
            error.render().to_string()
        };
        let mut built = super::command();
        built.build();
        let mut command = &mut built;
        for name in path {
            command = command
                .find_subcommand_mut(name)
                .expect("a command of weft");
        }
        [
            flag("-h"),
            flag("--help"),
            command.render_help().to_string(),
        ]
    }

    /// The global options `weft PATH… --help` lists.
    fn listed_globals(path: &[&str]) -> Vec<&'static str> {
        let [short, long, rendered] = helps(path);
        let listed = |help: &str| -> Vec<&'static str> {
            [
                ("home", "--home <HOME>"),
                ("json", "--json "),
                ("node", "--node <NODE>"),
                ("ca", "--ca <CA>"),
            ]
            .into_iter()
            .filter(|(_, option)| {
                help.lines()
                    .any(|line| line.trim_start().starts_with(option))
            })
            .map(|(id, _)| id)
            .collect()
        };
        let listed_short = listed(&short);
        assert_eq!(
            listed_short,
            listed(&long),
            "weft {path:?}: -h and --help differ"
        );
        assert_eq!(
            listed_short,
            listed(&rendered),
            "weft {path:?}: render_help differs"
        );
        listed_short
    }

    /// A command that never talks to a node (it refuses --node) does not list --node in its
    /// help; commands that talk to one still list --node and --ca.
    #[test]
    fn help_lists_node_only_where_it_does_something() {
        for path in super::NO_NODE {
            assert!(!listed_globals(path).contains(&"node"), "weft {path:?}");
            for help in helps(path) {
                assert!(!help.contains("--node <NODE>"), "weft {path:?}:\n{help}");
            }
        }
        for path in [
            &["history"][..],
            &["verify"],
            &["chain", "info"],
            &["proof"],
            &["node", "status"],
            &["gcode", "seal"],
            &["bench", "node"],
        ] {
            assert_eq!(
                listed_globals(path),
                ["home", "json", "node", "ca"],
                "weft {path:?}"
            );
        }
        // Its own --node (the node to restart) is listed.
        let [help, ..] = helps(&["cluster", "restart"]);
        assert!(help.contains("The node: its index or its name"), "{help}");
    }

    /// Each command's help lists exactly the global options that do something for it; a group
    /// lists those that do something for one of its commands.
    #[test]
    fn help_lists_only_the_global_options_a_command_uses() {
        let globals: Vec<String> = super::Cli::command()
            .get_arguments()
            .filter(|arg| arg.is_global_set())
            .map(|arg| arg.get_id().to_string())
            .collect();
        assert_eq!(globals, super::GLOBALS);
        for (path, idle) in super::IDLE_GLOBALS {
            let expected: Vec<&str> = super::GLOBALS
                .into_iter()
                .filter(|id| !idle.contains(id))
                .collect();
            assert_eq!(listed_globals(path), expected, "weft {path:?}");
        }
        assert_eq!(listed_globals(&["cluster"]), ["json"]);
        assert_eq!(listed_globals(&["tls"]), ["home", "json"]);
        assert_eq!(listed_globals(&["ingest"]), ["home", "json", "node", "ca"]);
        assert_eq!(listed_globals(&["bench"]), ["home", "json", "node", "ca"]);
        assert_eq!(listed_globals(&["stress"]), ["home", "json", "node", "ca"]);
    }

    /// A command that refuses --node hides it: NO_NODE and IDLE_GLOBALS agree.
    #[test]
    fn every_command_that_refuses_node_hides_it() {
        for path in super::NO_NODE {
            assert!(
                super::IDLE_GLOBALS
                    .iter()
                    .any(|(at, idle)| *at == path && idle.contains(&"node")),
                "weft {path:?} refuses --node but lists it"
            );
        }
    }
}
