//! Joining a network (docs/network.md, "Joining a network"):
//! - `weft net genesis [--out FILE]` writes the join document of the network a home's node is
//!   part of (from the running node, or from the home itself);
//! - `weft init --join URL | --genesis FILE` makes a new home from it: a new node key, block 0
//!   checked in full, `[network]` with the document's seeds and followers;
//! - `weft net admit KEY --name NAME` / `weft net remove KEY` (a network authority) let the
//!   network's nodes accept the new node's connections, or stop accepting them.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use weft_api::JoinDocument;
use weft_core::model::{NetworkPeer, Payload, SetValidators};
use weft_core::{PublicKey, SigningKey};
use weft_ledger::store::{RedbStore, Store as _};
use weft_ledger::{Ledger, Signer};
use weft_node::{NodeConfig, NodeType};

use crate::chain::Chain;
use crate::context::Globals;
use weft_client::home::{Home, write_key};

/// Where `weft init` reads the join document from.
pub enum Source<'a> {
    Url(&'a str),
    File(&'a Path),
}

/// What the joining node will be.
pub struct JoinOptions<'a> {
    pub node_type: NodeType,
    /// How a thin node follows the chain (`node.follow`).
    pub follow: weft_node::Follow,
    /// Peer-to-peer listen address; a free loopback port if not given.
    pub p2p: Option<&'a str>,
    /// API listen address; the default if not given.
    pub api: Option<&'a str>,
    /// The block 0 hash the joiner was told out of band; the document must match it.
    pub block0_hash: Option<&'a str>,
}

/// `weft net genesis`: the join document, from the node running on the home (or --node), or
/// from the home itself when no node runs on it.
pub fn genesis(ctx: &Globals, out: Option<&Path>) -> Result<()> {
    let document = if ctx.node.is_some() || ctx.home.join("node.addr").exists() {
        let node = crate::context::node_client(ctx)?;
        node.typed().join_document()?
    } else {
        let home = Home::open(&ctx.home)?;
        let config = home.config()?;
        if !config.network.enabled {
            bail!(
                "the node of {} is not part of a network (network.enabled = false in its \
                 config.toml): there is nothing to join",
                ctx.home.display()
            );
        }
        let ledger = home.ledger()?;
        let block0 = ledger
            .store()
            .block(0)?
            .context("the home's ledger has no block 0")?;
        weft_node::join_document(
            &ledger.genesis().chain_name,
            &block0,
            &home.producer_key()?.public_key(),
            &config.network,
        )?
    };
    let text = serde_json::to_string_pretty(&document)? + "\n";
    match out {
        Some(path) => {
            write_new(path, text.as_bytes())?;
            ctx.out.emit(
                json!({"file": path.display().to_string(), "chain": document.chain, "block0_hash": document.block0_hash, "seeds": document.seeds}),
                || {
                    format!(
                        "wrote the join document of chain {:?} to {}\n  block 0 hash {}\n  seeds        {}",
                        document.chain,
                        path.display(),
                        document.block0_hash,
                        document.seeds.join("\n               ")
                    )
                },
            );
        }
        None => crate::output::print(&text),
    }
    Ok(())
}

/// `weft init --join URL` / `--genesis FILE`: a new home for a node joining an existing network.
pub fn init(ctx: &Globals, source: Source<'_>, options: &JoinOptions<'_>) -> Result<()> {
    let dir = &ctx.home;
    if dir.join("config.toml").exists() || dir.join("ledger.redb").exists() {
        bail!(
            "{} already holds a weft ledger; choose another --home or remove it",
            dir.display()
        );
    }
    let text = match source {
        Source::Url(url) => {
            // Checked below as a file is: its size, then block 0 in full.
            let node = crate::client::NodeClient::new(url, ctx.ca.as_deref())?;
            serde_json::to_string(&node.typed().join_document()?)?
        }
        Source::File(path) => {
            let size = fs::metadata(path)
                .with_context(|| format!("cannot read the join document {}", path.display()))?
                .len();
            if size > weft_node::MAX_JOIN_BYTES as u64 {
                bail!(
                    "{} is {size} bytes; a join document is at most {} bytes",
                    path.display(),
                    weft_node::MAX_JOIN_BYTES
                );
            }
            fs::read_to_string(path)
                .with_context(|| format!("cannot read the join document {}", path.display()))?
        }
    };
    let (document, block0) = weft_node::parse_join_document(&text)?;
    if let Some(expected) = options.block0_hash
        && !expected.eq_ignore_ascii_case(&document.block0_hash)
    {
        bail!(
            "the network's block 0 is {}, not the --block0-hash {expected} you expect: this is \
             not the network you meant to join",
            document.block0_hash
        );
    }
    let mut config = NodeConfig::default();
    config.node.node_type = options.node_type;
    config.node.follow = options.follow;
    if let Some(api) = options.api {
        config.api.listen = api.to_string();
    }
    config.network.enabled = true;
    config.network.listen = match options.p2p {
        Some(addr) => addr.to_string(),
        None => format!("127.0.0.1:{}", weft_client::cluster::free_port()?),
    };
    config.network.seeds = document.seeds.clone();
    config.network.followers = document.followers.clone();
    let key = SigningKey::generate()?;
    if !config
        .network
        .followers
        .contains(&key.public_key().to_hex())
    {
        // The node tracks itself like any other non-voting member.
        config.network.followers.push(key.public_key().to_hex());
    }
    config
        .validate()
        .map_err(|error| anyhow::anyhow!("the joining node's configuration: {error}"))?;

    let created_dir = !dir.exists();
    let written = write_home(dir, &key, &block0, &config, &document);
    if let Err(error) = written {
        let _ = fs::remove_file(dir.join("config.toml"));
        let _ = fs::remove_file(dir.join("config.tmp"));
        let _ = fs::remove_file(dir.join("ledger.redb"));
        let _ = fs::remove_dir_all(dir.join("keys"));
        let _ = fs::remove_dir_all(dir.join("trust"));
        if created_dir {
            let _ = fs::remove_dir(dir);
        }
        return Err(error);
    }
    let public = key.public_key();
    ctx.out.emit(
        json!({
            "home": dir.display().to_string(),
            "chain": document.chain,
            "chain_id": document.chain_id,
            "block0_hash": document.block0_hash,
            "key": public.to_hex(),
            "type": options.node_type.name(),
            "follow": match options.follow {
                weft_node::Follow::Rules => "rules",
                weft_node::Follow::Proofs => "proofs",
            },
            "p2p": config.network.listen,
            "seeds": document.seeds,
        }),
        || {
            format!(
                "made {} a node of chain {:?} ({})\n  block 0 hash {}\n  node key     {public}\n  p2p          {}\n\
                 Before it can connect, a network authority admits its key:\n  \
                 weft net admit {public} --name NAME\n\
                 then start it: weft --home {} node run",
                dir.display(),
                document.chain,
                options.node_type.name(),
                document.block0_hash,
                config.network.listen,
                dir.display()
            )
        },
    );
    Ok(())
}

fn write_home(
    dir: &Path,
    key: &SigningKey,
    block0: &weft_ledger::block::Block,
    config: &NodeConfig,
    document: &JoinDocument,
) -> Result<()> {
    weft_ledger::files::create_private_dir_all(dir)
        .with_context(|| format!("cannot create home directory {}", dir.display()))?;
    let keys = dir.join("keys");
    fs::create_dir(&keys).with_context(|| format!("cannot create {}", keys.display()))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o700))?;
    }
    write_key(&keys.join("producer.key"), key)?;
    let store = RedbStore::open(&dir.join("ledger.redb"))?;
    let ledger = Ledger::from_genesis_block(store, block0)
        .context("the network's block 0 does not check")?;
    // The user confirmed block 0 (its hash, or the node it came from): pin its trust root.
    weft_client::trust::pin(dir, &ledger.trust_root()?)?;
    drop(ledger);
    let text = format!(
        "# weft node joining chain {:?} (block 0 {}): written by `weft init --join`.\n{}",
        document.chain,
        document.block0_hash,
        toml::to_string(config)?
    );
    write_new(&dir.join("config.toml"), text.as_bytes())
}

/// Writes a file whole or not at all.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary: PathBuf = path.with_extension("tmp");
    fs::write(&temporary, bytes)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}

/// `weft net admit` / `weft net remove`: a network authority's `NetworkPeer` transaction.
pub fn peer(ctx: &Globals, key: &str, name: &str, admitted: bool) -> Result<()> {
    let key = PublicKey::from_hex(key).context("KEY (a node's public key, 64 hex digits)")?;
    let home = Home::open(&ctx.home)?;
    let authority = home.authority_key().context(
        "admitting or removing a network peer is signed by a network authority; this home has \
         no keys/authority.key",
    )?;
    let mut chain = crate::chain::open(ctx)?;
    chain.commit(
        ctx,
        &home,
        Signer::Authority,
        &authority,
        Payload::NetworkPeer(NetworkPeer {
            key,
            admitted,
            name: name.to_string(),
        }),
    )?;
    Ok(())
}

/// How far ahead of the head `weft net validators` schedules a change by default: time for the
/// transaction to be final and for every node to see it before the switch.
const DEFAULT_CHANGE_AHEAD: u64 = 20;

/// `weft net validators`: a network authority's `SetValidators` transaction.
pub fn validators(ctx: &Globals, keys: &[String], from_height: Option<u64>) -> Result<()> {
    let keys = keys
        .iter()
        .map(|key| {
            PublicKey::from_hex(key)
                .with_context(|| format!("validator key {key:?} (64 hex digits expected)"))
        })
        .collect::<Result<Vec<_>>>()?;
    let home = Home::open(&ctx.home)?;
    let authority = home.authority_key().context(
        "changing the validators is signed by a network authority; this home has no \
         keys/authority.key",
    )?;
    let mut chain = crate::chain::open(ctx)?;
    let from_height = match from_height {
        Some(height) => height,
        None => chain.head_height()? + DEFAULT_CHANGE_AHEAD,
    };
    set_validators(ctx, &home, &authority, chain.as_mut(), keys, from_height)
}

/// `weft net validators --withdraw`: the validators in effect now, scheduled again at the height
/// of the first change not yet in effect (which the rules replace, with any after it).
pub fn withdraw_validators(ctx: &Globals) -> Result<()> {
    let home = Home::open(&ctx.home)?;
    let authority = home.authority_key().context(
        "withdrawing a validator change is signed by a network authority; this home has no \
         keys/authority.key",
    )?;
    let mut chain = crate::chain::open(ctx)?;
    let Some((from_height, validators)) = chain.pending_validator_change()? else {
        bail!(
            "no validator change is scheduled on {}: there is nothing to withdraw",
            chain.place()
        );
    };
    set_validators(
        ctx,
        &home,
        &authority,
        chain.as_mut(),
        validators,
        from_height,
    )
}

fn set_validators(
    ctx: &Globals,
    home: &Home,
    authority: &SigningKey,
    chain: &mut dyn Chain,
    keys: Vec<PublicKey>,
    from_height: u64,
) -> Result<()> {
    chain.commit(
        ctx,
        home,
        Signer::Authority,
        authority,
        Payload::SetValidators(SetValidators {
            validators: keys,
            from_height,
        }),
    )?;
    Ok(())
}
