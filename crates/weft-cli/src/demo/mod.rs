//! `weft demo`: the NIST AMS 300-6 Fig. 4 story, narrated, through a real node: a temporary
//! home, `weft node run` started as a separate process on a free loopback port, every command
//! acting through its REST API (`--node`), machine records dropped into a watched directory,
//! a proof checked offline, and the node stopped gracefully before a full audit of its home;
//! then two companies' chains, one caught rewriting its history (`companies`).
//! Every step states what must happen; the demo exits 0 only if every expectation held.

use std::fs;
use std::path::Path;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use weft_core::HashAlgo;

use crate::commands::{self, AssetArgs, OrgArgs};
use crate::context::Globals;
use crate::output::Output;

mod companies;

struct Narrator {
    out: Output,
    steps: Vec<serde_json::Value>,
    failures: usize,
    /// The reader of standard output has gone (`weft demo | head`): the story goes on
    /// untold, so that the demo's node is stopped and its home removed, and the exit code
    /// still says whether every expectation held.
    unheard: std::cell::Cell<bool>,
}

impl Narrator {
    fn say(&self, text: &str) {
        if !self.out.json {
            self.print(&format!("{text}\n"));
        }
    }

    fn print(&self, text: &str) {
        if !self.unheard.get() && crate::output::try_print(text.as_bytes()).is_err() {
            self.unheard.set(true);
        }
    }

    /// Records one expectation: `outcome` is what happened, `expected` what had to.
    fn check(&mut self, step: &str, expected: &str, held: bool, detail: String) {
        if !held {
            self.failures += 1;
        }
        if !self.out.json {
            self.print(&format!(
                "  {} {step}\n      expected: {expected}; got: {detail}\n",
                if held { "✔" } else { "✘" }
            ));
        }
        self.steps
            .push(json!({"step": step, "expected": expected, "held": held, "detail": detail}));
    }
}

fn rejection(result: &Result<impl Sized>) -> String {
    match result {
        Ok(_) => "accepted".into(),
        Err(error) => match crate::client::remote_rule(error) {
            Some(rule) => format!("rejected ({})", rule.message),
            None => match error.downcast_ref::<weft_ledger::RuleError>() {
                Some(rule) => format!("rejected ({rule})"),
                None => format!("error ({error:#})"),
            },
        },
    }
}

/// The rule a node (or the embedded ledger) refused a transaction under.
fn rule_of(result: &Result<impl Sized>) -> Option<String> {
    let error = result.as_ref().err()?;
    if let Some(remote) = crate::client::remote_rule(error) {
        return Some(remote.rule.clone());
    }
    error
        .downcast_ref::<weft_ledger::RuleError>()
        .map(|rule| rule.rule().to_string())
}

/// The demo's node: a `weft node run` child process, killed if the demo ends without
/// stopping it.
struct DemoNode {
    child: std::process::Child,
    url: String,
}

impl DemoNode {
    /// Starts the node with its API on `api` (`127.0.0.1:0`: a free loopback port), watching
    /// `spool` if given, and waits (at most 60 s) until it listens.
    fn start(home: &Path, api: &str, spool: Option<&Path>) -> Result<DemoNode> {
        let addr_file = home.join("node.addr");
        let _ = fs::remove_file(&addr_file);
        let mut command = std::process::Command::new(std::env::current_exe()?);
        command
            .arg("--home")
            .arg(home)
            .args(["node", "run", "--api", api]);
        if let Some(spool) = spool {
            command.arg("--watch").arg(spool);
        }
        let mut child = command
            .env("WEFT_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("cannot start `weft node run`")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = fs::read_to_string(&addr_file)
                && text.ends_with('\n')
            {
                return Ok(DemoNode {
                    child,
                    // The API address is the first line (`tcp`/`tls` lines may follow).
                    url: format!("http://{}", text.lines().next().unwrap_or_default().trim()),
                });
            }
            if let Some(status) = child.try_wait()? {
                bail!("the node exited before it listened ({status})");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("the node did not listen within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, and the exit status once the node has stopped (at most 60 s).
    fn stop(mut self) -> Result<std::process::ExitStatus> {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("cannot signal the node")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("the node did not stop within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for DemoNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (at most 30 s) until `log` has `lines` lines.
fn wait_for_lines(log: &Path, lines: usize) -> Result<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        let found: Vec<String> = text.lines().map(str::to_string).collect();
        if found.len() >= lines {
            return Ok(found);
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {lines} files were ingested within 30 s",
                found.len()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn verdict(ctx: &Globals, file: &Path, as_: Option<&str>) -> String {
    match commands::verdict(ctx, file, as_, None, &[]) {
        Ok(verdict) => verdict,
        Err(error) => format!("error: {error:#}"),
    }
}

pub fn run(outer: &Globals) -> Result<()> {
    let temp = std::env::temp_dir().join(format!(
        "weft-demo-{}-{}",
        std::process::id(),
        weft_client::home::now_ms()
    ));
    let result = run_in(outer, &temp);
    let _ = fs::remove_dir_all(&temp);
    result
}

fn run_in(outer: &Globals, temp: &Path) -> Result<()> {
    fs::create_dir_all(temp)?;
    let embedded = Globals {
        home: temp.join("home"),
        home_given: true,
        node: None,
        ca: None,
        out: Output {
            json: true,
            quiet: true,
        },
    };
    let mut n = Narrator {
        out: outer.out,
        steps: Vec::new(),
        failures: 0,
        unheard: std::cell::Cell::new(false),
    };

    n.say(
        "weft demo: the NIST AMS 300-6 product data story (Fig. 4), through a single-node ledger\n",
    );
    commands::init(
        &embedded,
        "nist-demo",
        weft_client::home::DEFAULT_TIME_WINDOW_SECS,
    )?;
    // Blocks every 100 ms instead of every second: the story submits one step at a time.
    let config_path = embedded.home.join("config.toml");
    let config = fs::read_to_string(&config_path)?
        .replace("interval_ms = 1000", "interval_ms = 100")
        .replace("min_age_ms = 200", "min_age_ms = 50");
    fs::write(&config_path, config)?;
    let spool = temp.join("machine-spool");
    fs::create_dir_all(&spool)?;
    let node = DemoNode::start(&embedded.home, "127.0.0.1:0", Some(&spool))?;
    let ctx = Globals {
        node: Some(node.url.clone()),
        ..embedded.clone()
    };
    n.say(&format!(
        "A new ledger in {}, served by `weft node run` (pid {}) at {}\n(one node, proof of authority); every step below goes through its REST API.",
        ctx.home.display(),
        node.child.id(),
        node.url
    ));

    let org = |name: &str, town: &str, country: &str| OrgArgs {
        name: name.into(),
        town: town.into(),
        country: country.into(),
        ..OrgArgs::default()
    };
    let designer = commands::org_add(&ctx, org("Designer Inc.", "Gaithersburg", "US"))?.to_hex();
    let m1 = commands::org_add(&ctx, org("Manufacturer One", "Dayton", "US"))?.to_hex();
    let m2 = commands::org_add(&ctx, org("Manufacturer Two", "Stuttgart", "DE"))?.to_hex();
    let bad = commands::org_add(&ctx, org("Bad Actor Ltd.", "Nowhere", "XX"))?.to_hex();
    let alice = commands::person_add(
        &ctx,
        &designer,
        Some("Alice".into()),
        Some("Engineer".into()),
        None,
    )?
    .to_hex();
    n.say("Registered four organisations (designer, manufacturer 1, manufacturer 2, a bad actor)");
    n.say("and Alice, an engineer who signs for the designer.\n");

    let design = temp.join("bracket.step");
    fs::write(
        &design,
        "ISO-10303-21;\nHEADER;FILE_DESCRIPTION(('bracket, revision C'),'2;1');\nENDSEC;\nDATA;\n#1=CARTESIAN_POINT('',(0.,0.,0.));\nENDSEC;\nEND-ISO-10303-21;\n",
    )?;

    n.say("1. Record before send: the designer claims the design, then records each send.");
    let asset = AssetArgs {
        data_type: Some("GEOMETRY_3D".into()),
        file_id: Some("bracket".into()),
        version_ids: vec!["C".into()],
        descriptions: vec!["mounting bracket, revision C".into()],
        algo: HashAlgo::Sha256,
        ..AssetArgs::default()
    };
    let claim = commands::claim(&ctx, &design, &designer, Some(&alice), asset.clone());
    n.check(
        "Alice claims bracket.step for the designer",
        "accepted",
        claim.is_ok(),
        rejection(&claim),
    );
    let send1 = commands::send(&ctx, &design, &designer, &m1, true, None, HashAlgo::Sha256);
    n.check(
        "designer sends it to manufacturer 1 with the right to forward",
        "accepted",
        send1.is_ok(),
        rejection(&send1),
    );
    let send2 = commands::send(&ctx, &design, &m1, &m2, false, None, HashAlgo::Sha256);
    n.check(
        "manufacturer 1 forwards it to manufacturer 2 (no further forwarding)",
        "accepted (rule 2)",
        send2.is_ok(),
        rejection(&send2),
    );

    n.say(
        "\n2. Validate before consume: each receiver fingerprints what it got and asks the ledger.",
    );
    let v = verdict(&ctx, &design, Some(&m1));
    n.check(
        "manufacturer 1 verifies the file it received",
        "valid",
        v == "valid",
        v,
    );
    let v = verdict(&ctx, &design, Some(&m2));
    n.check(
        "manufacturer 2 verifies the file it received",
        "valid",
        v == "valid",
        v,
    );
    let altered = temp.join("bracket-altered.step");
    let mut bytes = fs::read(&design)?;
    let at = bytes.iter().position(|b| *b == b'0').unwrap_or(0);
    bytes[at] = b'1'; // one character of a coordinate
    fs::write(&altered, bytes)?;
    let v = verdict(&ctx, &altered, Some(&m2));
    n.check(
        "a bad actor alters one coordinate on the way; manufacturer 2 verifies",
        "unknown (tampering caught)",
        v == "unknown",
        v,
    );
    let v = verdict(&ctx, &design, Some(&bad));
    n.check(
        "the bad actor got the real file by other means and verifies it",
        "not_recipient",
        v == "not_recipient",
        v,
    );

    n.say("\n3. The business rules refuse what the paper forbids.");
    let resend = commands::send(&ctx, &design, &m2, &bad, false, None, HashAlgo::Sha256);
    n.check(
        "manufacturer 2 (no forward right) sends it to the bad actor",
        "rejected by rule 2",
        rule_of(&resend).as_deref() == Some("rule-2"),
        rejection(&resend),
    );
    let steal = commands::claim(&ctx, &design, &bad, None, asset.clone());
    n.check(
        "the bad actor claims ownership of the design",
        "rejected by rule 3 (conflict)",
        rule_of(&steal).as_deref() == Some("rule-3"),
        rejection(&steal),
    );
    let duplicate = commands::claim(&ctx, &design, &designer, None, asset);
    n.check(
        "the designer claims the same design again",
        "rejected by rule 3 (duplicate)",
        rule_of(&duplicate).as_deref() == Some("rule-3"),
        rejection(&duplicate),
    );

    gcode_story(&mut n, &ctx, temp, &designer, &alice, &bad)?;

    n.say("\n5. Machine data: the machine drops its cycle records into a watched directory.");
    let records: Vec<(String, String)> = (1..=3)
        .map(|cycle| {
            (
                format!("cycle-{cycle}.csv"),
                format!(
                    "cycle,{cycle}\nspindle_rpm,{}\nlayer_time_s,{}.4\n",
                    11_800 + cycle * 50,
                    40 + cycle
                ),
            )
        })
        .collect();
    for (name, body) in &records {
        // Written under a hidden name and renamed in, as a machine should.
        let hidden = spool.join(format!(".{name}"));
        fs::write(&hidden, body)?;
        fs::rename(&hidden, spool.join(name))?;
    }
    let ingested = wait_for_lines(&spool.join("done").join("ingested.tsv"), records.len());
    let detail = match &ingested {
        Ok(lines) => format!("{} files in done/, one transaction each", lines.len()),
        Err(error) => format!("{error:#}"),
    };
    n.check(
        "the node records each file as a signed Record and moves it to done/",
        "3 records committed",
        ingested.is_ok(),
        detail,
    );
    let first_record = ingested
        .as_ref()
        .ok()
        .and_then(|lines| lines.first())
        .and_then(|line| line.split('\t').next())
        .map(str::to_string);
    let record_matches = first_record.as_ref().is_some_and(|id| {
        let Ok(id) = weft_core::TxId::from_hex(id) else {
            return false;
        };
        crate::client::NodeClient::new(&node.url, None)
            .and_then(|client| Ok(client.typed().transaction(&id)?))
            .is_ok_and(|tx| {
                matches!(
                    tx.and_then(|tx| tx.payload),
                    Some(weft_core::model::Payload::Record(record))
                        if record.body == records[0].1.as_bytes()
                )
            })
    });
    n.check(
        "the first record on the ledger holds exactly the bytes of cycle-1.csv",
        "identical",
        record_matches,
        if record_matches {
            "identical".into()
        } else {
            "different or missing".into()
        },
    );

    n.say("\n6. An auditor checks without trusting this node.");
    if let Ok(send2_id) = &send2 {
        let proof_path = temp.join("send-proof.json");
        // The auditor pins the chain's trust root (block 0 and its producer), exported once.
        let root_path = temp.join("trust-root.json");
        let exported = weft_client::trust::pinned(&embedded.home).and_then(|pinned| {
            let root = pinned.first().context("the home pins no trust root")?;
            let text = serde_json::to_string_pretty(&root.root.document())?;
            fs::write(&root_path, text).context("the trust root file")
        });
        let roots = std::slice::from_ref(&root_path);
        let built = exported.and_then(|()| {
            commands::proof_build(&ctx, &send2_id.to_hex(), Some(&proof_path), roots, None)
        });
        // Offline: the proof file and the trust root alone, no node and no home.
        let checked = built.and_then(|()| {
            commands::proof_verify(&embedded, std::slice::from_ref(&proof_path), roots, None)
        });
        let detail = if checked.is_ok() {
            "valid".into()
        } else {
            rejection(&checked)
        };
        n.check(
            "inclusion proof of the forward to manufacturer 2, fetched from the node, checked offline",
            "valid",
            checked.is_ok(),
            detail,
        );
    } else {
        n.check(
            "inclusion proof of the forward to manufacturer 2, fetched from the node, checked offline",
            "valid",
            false,
            "no transaction to prove".into(),
        );
    }
    let stopped = node.stop();
    let detail = match &stopped {
        Ok(status) => status.to_string(),
        Err(error) => format!("{error:#}"),
    };
    n.check(
        "the node stops on SIGTERM: last block committed, ledger flushed",
        "exit status 0",
        stopped
            .as_ref()
            .is_ok_and(std::process::ExitStatus::success),
        detail,
    );
    let audit = commands::chain_verify(&embedded);
    let detail = if audit.is_ok() {
        "ok".into()
    } else {
        rejection(&audit)
    };
    n.check(
        "full audit of the node's home from genesis (hashes, Merkle roots, signatures, rules)",
        "ok",
        audit.is_ok(),
        detail,
    );

    if let Err(error) = companies::story(&mut n, temp) {
        n.check(
            "the chapter between companies runs to its end",
            "it does",
            false,
            format!("{error:#}"),
        );
    }

    let total = n.steps.len();
    if outer.out.json {
        let report = serde_json::to_string_pretty(
            &json!({"ok": n.failures == 0, "expectations": total, "failed": n.failures, "steps": n.steps}),
        )?;
        n.print(&format!("{report}\n"));
    } else if n.failures == 0 {
        n.print(&format!("\nAll {total} expectations held.\n"));
    }
    if n.failures > 0 {
        bail!("demo: {} of {total} expectations did not hold", n.failures);
    }
    Ok(())
}

/// A small print file: `layers` layers of a few extruding moves each, with PrusaSlicer markers.
fn print_file(layers: usize) -> Vec<u8> {
    let mut text =
        String::from("; bracket, revision C, sliced for a 0.4 mm nozzle\nG21\nG90\nM82\nG92 E0\n");
    let mut e = 0.0;
    for layer in 1..=layers {
        let z = 0.2 * layer as f64;
        text.push_str(&format!(";LAYER_CHANGE\n;Z:{z:.1}\nG1 Z{z:.1} F600\n"));
        for step in 0..4 {
            e += 0.4;
            text.push_str(&format!("G1 X{} Y{} E{e:.2}\n", 20 + step * 5, 20 + layer));
        }
    }
    text.push_str("G1 Z30 F600\nM84\n");
    text.into_bytes()
}

/// Section 4: the print file sealed for the printer, its manifest recorded on the ledger, and
/// tampering caught before a part is made.
fn gcode_story(
    n: &mut Narrator,
    ctx: &Globals,
    temp: &Path,
    designer: &str,
    alice: &str,
    bad: &str,
) -> Result<()> {
    use crate::gcode::{GcodeCommand, run as gcode};
    n.say(
        "\n4. The print file: sealed layer by layer for the printer, its manifest on the ledger.",
    );
    let at = |name: &str| temp.join(name);
    let original = print_file(12);
    fs::write(at("bracket.gcode"), &original)?;
    gcode(
        ctx,
        GcodeCommand::Keygen {
            out: at("printer"),
            rsa: false,
            rsa_bits: 3072,
        },
    )?;
    let sealed = gcode(
        ctx,
        GcodeCommand::Seal {
            file: at("bracket.gcode"),
            out: at("bracket.wgc"),
            manifest: at("bracket.manifest.json"),
            to: vec![at("printer.pub")],
            sign: None,
            as_: Some(designer.into()),
            signer: Some(alice.into()),
            no_record: false,
        },
    );
    n.check(
        "Alice seals the 12-layer print file for the printer; its manifest is recorded",
        "sealed and recorded",
        sealed.is_ok(),
        rejection(&sealed),
    );
    let verify = |file: &str, manifest: &str| {
        gcode(
            ctx,
            GcodeCommand::Verify {
                file: at(file),
                manifest: at(manifest),
                anchor: Default::default(),
            },
        )
    };
    let intact = verify("bracket.wgc", "bracket.manifest.json");
    n.check(
        "the printer verifies the sealed file against the recorded manifest",
        "intact, recorded by the designer",
        intact.is_ok(),
        if intact.is_ok() {
            "intact, on the ledger".into()
        } else {
            rejection(&intact)
        },
    );

    // Someone edits one coordinate of layer 7 in the plain G-code on its way to the machine.
    let mut altered = original.clone();
    let text = String::from_utf8_lossy(&original).into_owned();
    let layer7 = text
        .match_indices(";LAYER_CHANGE")
        .nth(6)
        .map_or(0, |(i, _)| i);
    let digit = layer7 + text[layer7..].find("G1 X").unwrap_or(0) + 4;
    altered[digit] = if altered[digit] == b'9' {
        b'1'
    } else {
        altered[digit] + 1
    };
    fs::write(at("bracket-altered.gcode"), &altered)?;
    let manifest_bytes = fs::read(at("bracket.manifest.json"))?;
    let manifest = weft_gcode::manifest::Manifest::from_json(&manifest_bytes)?;
    let path = at("bracket-altered.gcode");
    let report = weft_gcode::verify::verify_plain(
        || Ok(Box::new(fs::File::open(&path)?) as Box<dyn std::io::Read>),
        &manifest,
        1 << 30,
    )?;
    let map = weft_gcode::verify::layer_map(&report, &manifest);
    n.check(
        "one coordinate of layer 7 is changed on the way; the printer verifies the G-code",
        "tampered: layer 7 modified",
        !report.intact() && map.contains("7 modified"),
        map,
    );

    // A bad actor re-seals altered G-code under a manifest of its own, not on the ledger.
    let key = ctx.home.join("keys").join(format!("{bad}.key"));
    let forged = gcode(
        ctx,
        GcodeCommand::Seal {
            file: at("bracket-altered.gcode"),
            out: at("forged.wgc"),
            manifest: at("forged.manifest.json"),
            to: vec![at("printer.pub")],
            sign: Some(key),
            as_: None,
            signer: None,
            no_record: true,
        },
    );
    let refused = forged.and_then(|()| verify("forged.wgc", "forged.manifest.json"));
    n.check(
        "the bad actor re-seals it with a manifest of its own; the printer verifies",
        "refused: the manifest is not on the ledger",
        refused
            .as_ref()
            .is_err_and(|e| e.downcast_ref::<crate::output::Negative>().is_some()),
        match &refused {
            Err(e) if e.downcast_ref::<crate::output::Negative>().is_some() => {
                "not on the ledger".into()
            }
            other => rejection(other),
        },
    );

    let opened = gcode(
        ctx,
        GcodeCommand::Open {
            file: at("bracket.wgc"),
            key: Some(at("printer.key")),
            manifest: at("bracket.manifest.json"),
            out: at("bracket-printed.gcode"),
            // The designer's own printer: the owner of the print file receives it.
            as_: Some(designer.into()),
            anchor: Default::default(),
        },
    );
    let same = opened.is_ok() && fs::read(at("bracket-printed.gcode"))? == original;
    n.check(
        "the printer opens the genuine file with its key",
        "byte-identical G-code",
        same,
        if same {
            "byte-identical".into()
        } else {
            rejection(&opened)
        },
    );
    Ok(())
}
