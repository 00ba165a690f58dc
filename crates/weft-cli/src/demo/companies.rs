//! The demo's chapter between companies (docs/anchoring.md): a supplier's chain and a
//! customer's, each served by its own `weft node run`. The customer witnesses the supplier's
//! chain and anchors its checkpoints on its own; the supplier releases a design, the customer
//! takes a proof of it that holds without the supplier. Then the supplier restores its ledger
//! from a backup taken before the release and carries on, as if it never happened: the
//! customer's witness refuses the rewritten history, its chain records the evidence — two
//! checkpoints the supplier signed of one size with different roots — which anyone checks
//! offline, and the customer's proof of the release still holds.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use weft_core::HashAlgo;

use super::{DemoNode, Narrator, rejection};
use crate::commands::{self, AssetArgs, OrgArgs};
use crate::context::Globals;
use crate::output::Output;

/// How long the chapter waits for anchoring or for the evidence.
const WAIT: Duration = Duration::from_secs(60);

fn quiet(home: PathBuf, node: Option<String>) -> Globals {
    Globals {
        home,
        home_given: true,
        node,
        ca: None,
        out: Output {
            json: true,
            quiet: true,
        },
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Polls `probe` every 50 ms until it holds, for at most [`WAIT`]; the last thing it saw.
fn wait_for<T>(mut probe: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let started = Instant::now();
    loop {
        match probe() {
            Ok(found) => return Ok(found),
            Err(why) if started.elapsed() >= WAIT => return Err(why),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn get<T: serde::de::DeserializeOwned>(url: &str, path: &str) -> Result<T, String> {
    crate::client::NodeClient::new(url, None)
        .and_then(|client| Ok(client.typed().get::<T>(path)?))
        .map_err(|error| format!("{error:#}"))
}

/// The chain's trust root, written to `out` (what `weft trust export` writes).
fn export_root(home: &Path, out: &Path) -> Result<()> {
    let pinned = weft_client::trust::pinned(home)?;
    let root = pinned.first().context("the home pins no trust root")?;
    fs::write(out, serde_json::to_string_pretty(&root.root.document())?)?;
    Ok(())
}

/// Rewrites `home`'s config.toml through `change`.
fn configure(home: &Path, change: impl FnOnce(&mut weft_node::NodeConfig)) -> Result<()> {
    let path = home.join("config.toml");
    let mut config: weft_node::NodeConfig = toml::from_str(&fs::read_to_string(&path)?)?;
    // Blocks every 100 ms: the story waits on them.
    config.blocks.interval_ms = 100;
    change(&mut config);
    config.validate()?;
    fs::write(&path, toml::to_string(&config)?)?;
    Ok(())
}

/// The block of a transaction, as the node says (to know what to wait for; what is believed is
/// checked below, by proofs).
fn height_of(ctx: &Globals, id: &weft_core::TxId) -> Result<u64> {
    let chain = crate::chain::open(ctx)?;
    let answer = chain
        .transaction(id)?
        .with_context(|| format!("transaction {id} is not on {}", chain.place()))?;
    Ok(answer.height)
}

pub(super) fn story(n: &mut Narrator, temp: &Path) -> Result<()> {
    n.say("\n7. Between companies: a supplier that rewrites its history is caught.");
    let supplier = temp.join("supplier");
    let customer = temp.join("customer");
    let window = weft_client::home::DEFAULT_TIME_WINDOW_SECS;
    commands::init(&quiet(supplier.clone(), None), "supplier-demo", window)?;
    commands::init(&quiet(customer.clone(), None), "customer-demo", window)?;
    let supplier_root = temp.join("supplier.trust.json");
    let customer_root = temp.join("customer.trust.json");
    export_root(&supplier, &supplier_root)?;
    export_root(&customer, &customer_root)?;
    fs::copy(&supplier_root, customer.join("supplier.trust.json"))?;
    let supplier_api = format!("127.0.0.1:{}", weft_client::cluster::free_port()?);
    let customer_api = format!("127.0.0.1:{}", weft_client::cluster::free_port()?);
    let (supplier_url, customer_url) = (
        format!("http://{supplier_api}"),
        format!("http://{customer_api}"),
    );

    // The customer witnesses the supplier's chain and anchors it; the supplier publishes to
    // the customer's witness.
    let witness_name = "witness.customer-demo";
    let witness = weft_core::SigningKey::generate()?;
    weft_client::home::write_key(&customer.join("keys").join("witness.key"), &witness)?;
    let witness_key = weft_ledger::cosigned::verifier_key(witness_name, &witness.public_key());
    configure(&customer, |config| {
        config.witness.enabled = true;
        config.witness.name = witness_name.to_string();
        config.witness.origins = vec!["supplier.trust.json".into()];
        config.anchor.enabled = true;
        config.anchor.interval_ms = 200;
        config.anchor.chains = vec![weft_node::config::AnchoredChainConfig {
            trust: "supplier.trust.json".into(),
            urls: vec![supplier_url.clone()],
            peers: Vec::new(),
            ca: None,
        }];
    })?;
    configure(&supplier, |config| {
        config.publish.enabled = true;
        config.publish.interval_ms = 200;
        config.publish.witnesses = vec![weft_node::config::PublishWitness {
            url: customer_url.clone(),
            key: witness_key.clone(),
            ca: None,
        }];
    })?;
    let maker = commands::org_add(
        &quiet(supplier.clone(), None),
        OrgArgs {
            name: "Supplier GmbH".into(),
            town: "Aachen".into(),
            country: "DE".into(),
            ..OrgArgs::default()
        },
    )?
    .to_hex();
    // What a supplier that means to rewrite keeps: a copy of its ledger from before.
    let backup = temp.join("supplier-backup");
    copy_dir(&supplier, &backup)?;

    let customer_node = DemoNode::start(&customer, &customer_api, None)?;
    let supplier_node = DemoNode::start(&supplier, &supplier_api, None)?;
    n.say(&format!(
        "The supplier's chain at {supplier_url} publishes its checkpoints to the customer's\n\
         witness; the customer's chain at {customer_url} anchors them on itself."
    ));
    let on_supplier = quiet(supplier.clone(), Some(supplier_url.clone()));
    let release = temp.join("bracket-rev-D.gcode");
    fs::write(&release, "; bracket, revision D\nG21\nG90\nG1 X10 Y10 E1\n")?;
    let claim = |file: &Path| {
        let asset = AssetArgs {
            algo: HashAlgo::Sha256,
            ..AssetArgs::default()
        };
        commands::claim(&on_supplier, file, &maker, None, asset)
    };
    let released = claim(&release);
    n.check(
        "the supplier releases bracket-rev-D.gcode (a claim on its chain)",
        "accepted",
        released.is_ok(),
        rejection(&released),
    );
    let released = released?;
    let height = height_of(&on_supplier, &released)?;
    let anchored = wait_for(|| {
        let anchors: weft_api::AnchorsAnswer = get(&customer_url, "/v1/anchors")?;
        let size = anchors
            .chains
            .first()
            .and_then(|chain| chain.size)
            .unwrap_or(0);
        if size > height {
            Ok(size)
        } else {
            Err(format!(
                "the customer anchored {size} blocks of the supplier's chain; the release is in \
                 block {height}"
            ))
        }
    });
    n.check(
        "the customer's chain anchors a checkpoint of the supplier's that holds the release",
        "anchored",
        anchored.is_ok(),
        match &anchored {
            Ok(size) => format!("{size} blocks of the supplier's chain anchored"),
            Err(why) => why.clone(),
        },
    );
    let anchored = anchored.map_err(anyhow::Error::msg)?;

    let proof = temp.join("release.anchored.json");
    let roots = [supplier_root.clone(), customer_root.clone()];
    let policy = commands::explicit_policy(std::slice::from_ref(&witness_key), None)?;
    let offline = quiet(temp.join("auditor"), None);
    let proven = commands::anchored_build(
        &on_supplier,
        &released.to_hex(),
        Some(&proof),
        &roots,
        std::slice::from_ref(&customer_url),
        policy.clone(),
    )
    .and_then(|()| {
        commands::proof_verify(
            &offline,
            std::slice::from_ref(&proof),
            &roots,
            policy.clone(),
        )
    });
    n.check(
        "a proof of the release with the customer's anchor and witness, checked offline",
        "valid",
        proven.is_ok(),
        if proven.is_ok() {
            "valid".into()
        } else {
            rejection(&proven)
        },
    );

    // The rewrite: the supplier's node starts again from the backup, where the release never
    // happened, and carries on past what the customer anchored.
    let stopped = supplier_node.stop()?;
    if !stopped.success() {
        bail!("the supplier's node stopped with {stopped}");
    }
    fs::rename(&supplier, temp.join("supplier-abandoned"))?;
    fs::rename(&backup, &supplier)?;
    let rewritten = DemoNode::start(&supplier, &supplier_api, None)?;
    let mut grown = 0;
    for index in 0..(anchored + 5) {
        let other = temp.join(format!("other-{index}.gcode"));
        fs::write(&other, format!("; another part {index}\n"))?;
        let id = claim(&other)?;
        grown = height_of(&on_supplier, &id)? + 1;
        if grown > anchored + 1 {
            break;
        }
    }
    n.say(&format!(
        "The supplier restores its ledger from a backup taken before the release and carries on:\n\
         its chain is {grown} blocks long again, without the release."
    ));
    let refused = wait_for(|| {
        let status: weft_api::PublishStatus = get(&supplier_url, "/v1/publish")?;
        let error = status
            .witnesses
            .first()
            .and_then(|witness| witness.last_error.clone())
            .unwrap_or_default();
        if error.starts_with("409") || error.starts_with("422") {
            Ok(error)
        } else {
            Err(format!("the witness's last answer: {error:?}"))
        }
    });
    n.check(
        "the customer's witness refuses to cosign the rewritten history",
        "refused (409 or 422)",
        refused.is_ok(),
        refused.clone().unwrap_or_else(|why| why),
    );
    let caught = wait_for(|| {
        let anchors: weft_api::AnchorsAnswer = get(&customer_url, "/v1/anchors")?;
        let chain = anchors.chains.first().ok_or("nothing registered")?;
        if chain.evidence.is_empty() {
            Err(format!(
                "no evidence yet; {} blocks anchored",
                chain.size.unwrap_or(0)
            ))
        } else {
            Ok((chain.size.unwrap_or(0), chain.evidence.len()))
        }
    });
    n.check(
        "the customer's chain does not anchor it, and records the evidence",
        "caught: still the checkpoint anchored before, one AnchorEvidence",
        caught.as_ref().is_ok_and(|(size, _)| *size == anchored),
        match &caught {
            Ok((size, pieces)) => format!("{size} blocks anchored, {pieces} piece(s) of evidence"),
            Err(why) => why.clone(),
        },
    );

    let on_customer = quiet(customer.clone(), Some(customer_url.clone()));
    let evidence = temp.join("evidence.json");
    let checked = commands::anchor_evidence(&on_customer, Some(&evidence), &roots).and_then(|()| {
        commands::anchor_verify(&offline, &evidence, std::slice::from_ref(&supplier_root))
    });
    let shown = fs::read_to_string(&evidence)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .map(|pieces| {
            format!(
                "the supplier signed two roots for {} blocks: {}… and {}…",
                pieces[0]["checked"]["size"],
                &pieces[0]["checked"]["roots"][0]
                    .as_str()
                    .unwrap_or_default()[..16.min(
                    pieces[0]["checked"]["roots"][0]
                        .as_str()
                        .unwrap_or_default()
                        .len()
                )],
                &pieces[0]["checked"]["roots"][1]
                    .as_str()
                    .unwrap_or_default()[..16.min(
                    pieces[0]["checked"]["roots"][1]
                        .as_str()
                        .unwrap_or_default()
                        .len()
                )],
            )
        })
        .unwrap_or_else(|| rejection(&checked));
    n.check(
        "the evidence, checked offline against the supplier's trust root alone",
        "valid evidence",
        checked.is_ok(),
        shown,
    );
    let still = commands::proof_verify(&offline, std::slice::from_ref(&proof), &roots, policy);
    n.check(
        "the customer's proof of the release, made before the rewrite, checked offline again",
        "valid (the release is anchored on the customer's chain)",
        still.is_ok(),
        if still.is_ok() {
            "valid".into()
        } else {
            rejection(&still)
        },
    );
    drop(rewritten);
    drop(customer_node);
    Ok(())
}
