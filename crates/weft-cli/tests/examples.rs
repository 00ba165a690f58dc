//! The examples of README.md and docs/ run, in order, as a user would type them, so they cannot
//! drift from what the binary does: one test per document, in a fresh directory whose `./.weft`
//! is the default home.
//!
//! From README.md and docs/, every block fenced ```sh, in order within its document; a block
//! fenced ```sh dev holds commands for weft's developers (building, the test suite, benchmarks,
//! fuzzing), not examples, and is not run. `every_shell_block_in_docs_runs_or_is_marked_dev`
//! fails on a ```sh block of a document no test here runs, and on any other shell fence, so a
//! new example cannot be added untested. The README's one ```toml block is the edit of
//! `.weft/config.toml` its text asks for between two shell blocks: the test makes it.
//!
//! The blocks are read by the small shell interpreter of `common/shell.rs`: a form it does not
//! know fails the test with the document and line, so a new form must be taught there first.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::node::{http, wait_until};
use common::shell::{Fence, Session, fences};

/// The documents whose examples the tests below run.
const DOCUMENTS: [&str; 5] = [
    "README.md",
    "docs/checkpoints.md",
    "docs/graphql.md",
    "docs/ingest.md",
    "docs/network.md",
];

/// Fence languages that mean a shell: each block must be ```sh or ```sh dev.
const SHELLS: [&str; 6] = ["sh", "bash", "shell", "console", "zsh", "shell-session"];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(document: &str) -> String {
    std::fs::read_to_string(repository().join(document))
        .unwrap_or_else(|error| panic!("{document}: {error}"))
}

/// The blocks of `document` to run: every ```sh block but those marked ```sh dev.
fn examples(document: &str, text: &str) -> Vec<Fence> {
    fences(text)
        .into_iter()
        .filter(|fence| match fence.info.as_slice() {
            [sh] if sh == "sh" => true,
            [sh, dev] if sh == "sh" && dev == "dev" => false,
            [language, ..] if SHELLS.contains(&language.as_str()) => panic!(
                "{document}:{}: ```{}: fence an example ```sh (it then runs as a test) and \
                 commands for weft's developers ```sh dev",
                fence.line,
                fence.info.join(" ")
            ),
            _ => false,
        })
        .collect()
}

/// Runs every example of `document`, in order, in a new session.
fn run_document(document: &str) -> Session {
    let text = read(document);
    let blocks = examples(document, &text);
    assert!(!blocks.is_empty(), "{document} has no example to run");
    let mut session = Session::new();
    for fence in &blocks {
        session.run_block(document, fence);
    }
    session
}

/// The files the examples name: designs, readings, G-code from the corpus, and a copy of it
/// changed in one coordinate, as a machine might receive it.
fn files(dir: &Path) {
    std::fs::write(dir.join("bracket.step"), "ISO-10303-21; a bracket, rev C\n").expect("write");
    std::fs::write(dir.join("fixture.step"), "ISO-10303-21; a fixture\n").expect("write");
    std::fs::write(dir.join("reading.json"), "{\"spindle_rpm\": 9007}\n").expect("write");
    std::fs::write(dir.join("secret.csv"), "recipe,7\nfeed_mm_min,1200\n").expect("write");
    let gcode = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../corpus/gcode/13_mmu2s_prusaslicer250_small.gcode"),
    )
    .expect("corpus");
    std::fs::write(dir.join("part.gcode"), &gcode).expect("write");
    let text = String::from_utf8_lossy(&gcode).to_string();
    let middle = text.len() / 2;
    let at = middle + text[middle..].find(" X").expect("a move") + 2;
    let mut received = text.into_bytes();
    received[at] = if received[at] == b'9' { b'1' } else { b'9' };
    std::fs::write(dir.join("received.gcode"), received).expect("write");
}

/// Applies a ```toml block to a home's `config.toml` as a user's editor would: each `key = value`
/// of a `[section]` replaces that key's line in the same section (every key is written there by
/// `weft init`).
fn edit_config(config: &Path, fence: &Fence) {
    let mut text = std::fs::read_to_string(config).expect("config.toml");
    let mut section = String::new();
    for (number, line) in &fence.lines {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            section = format!("[{name}");
            continue;
        }
        let Some((key, _)) = line.split_once('=') else {
            assert!(
                line.is_empty(),
                "README.md:{number}: not key = value: {line}"
            );
            continue;
        };
        let start = text
            .find(&format!("\n{section}\n"))
            .unwrap_or_else(|| panic!("README.md:{number}: no {section} in config.toml"))
            + 1;
        let end = text[start + 1..]
            .find("\n[")
            .map_or(text.len(), |at| start + 1 + at);
        let prefix = format!("\n{} = ", key.trim());
        let at = text[start..end]
            .find(&prefix)
            .unwrap_or_else(|| panic!("README.md:{number}: no {key} in {section}"))
            + start
            + 1;
        let line_end = text[at..].find('\n').map_or(text.len(), |end| at + end);
        text.replace_range(at..line_end, line);
    }
    std::fs::write(config, text).expect("config.toml");
}

/// The node's height (`GET /v1/status`).
fn height(api: &str) -> u64 {
    let (code, status) = http("GET", &format!("{api}/v1/status"), None, b"");
    assert_eq!(code, 200, "{status}");
    status["height"].as_u64().expect("height")
}

/// Waits until the node at `node` has the height `network` had.
fn wait_for_sync(node: &str, network: &str) {
    let network = height(network);
    wait_until(120, || match height(node) {
        synced if synced >= network => Ok(()),
        behind => Err(format!(
            "the late node is at {behind}, the network at {network}"
        )),
    });
}

#[test]
fn the_readme_examples_run_in_order() {
    let readme = read("README.md");
    let mut session = Session::new();
    files(session.dir());
    let blocks = examples("README.md", &readme);
    assert!(
        blocks.iter().map(|fence| fence.lines.len()).sum::<usize>() > 60,
        "the README's examples were found"
    );
    let configs: Vec<Fence> = fences(&readme)
        .into_iter()
        .filter(|fence| fence.info == ["toml"])
        .collect();
    assert_eq!(configs.len(), 1, "the README's config.toml edit (TLS)");
    let mut stops = 0;
    let mut edited = false;
    for fence in &blocks {
        if !edited && fence.line > configs[0].line {
            edit_config(&session.dir().join(".weft/config.toml"), &configs[0]);
            edited = true;
        }
        session.run_block_checking("README.md", fence, |session, line| {
            let dir = session.dir();
            if line.starts_with("kill $!") {
                stops += 1;
            }
            if line.starts_with("kill $!") && stops == 2 {
                // Before the watching node stops: the file dropped into spool/ was recorded and
                // moved to done/.
                cycle_7_recorded_and_moved(&dir.join("spool"));
            }
            if line.contains("net remove") {
                // Before it is cut off: the late node synced the chain from the seeds.
                wait_for_sync(session.node_url("./late"), session.var("API"));
            }
            if line.starts_with("weft cluster down") {
                // The withdrawal leaves the validators in effect scheduled.
                let api = session.var("API");
                let (code, chain) = http("GET", &format!("{api}/v1/chain"), None, b"");
                assert_eq!(code, 200, "{chain}");
                assert_eq!(
                    chain["scheduled"][0]["validators"], chain["validators"],
                    "{chain}"
                );
                assert_eq!(chain["scheduled"][0]["from_height"], 5000, "{chain}");
            }
        });
    }
    assert!(edited, "the config.toml edit comes before a shell block");
    assert_eq!(
        stops, 3,
        "the node was started again with directory, TCP ingest and TLS"
    );
    // The node on ./.weft (serving TLS) and the late node are still running.
    let stopped = session.stop_nodes();
    assert_eq!(stopped.len(), 2, "the nodes the examples left running");
    for status in &stopped {
        assert!(status.success(), "the node stops cleanly: {status}");
    }
    // What the examples wrote is there.
    let dir = session.dir();
    for made in [
        "proof.json",
        "part.wgc",
        "part.json",
        "machine.gcode",
        "printer.key",
        "my.key",
        ".weft/tls/cert.pem",
    ] {
        assert!(dir.join(made).is_file(), "{made} was not written");
    }
    assert_eq!(
        std::fs::read(dir.join("machine.gcode")).expect("opened"),
        std::fs::read(dir.join("part.gcode")).expect("sealed"),
        "the printer gets the G-code byte for byte"
    );
    // The records sent through TCP ingest are on the chain, and it audits.
    let sealed = common::run(
        dir.join(".weft").as_path(),
        &["tx", "show", session.var("TXID")],
        0,
    );
    assert_eq!(sealed["kind"], "Record", "{sealed}");
    let audit = common::run(dir.join(".weft").as_path(), &["chain", "verify"], 0);
    assert_eq!(audit["ok"], true, "{audit}");
}

/// Every Markdown file under `dir`.
fn markdown_in(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("docs/") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            markdown_in(&path, out);
        } else if path.extension().is_some_and(|extension| extension == "md") {
            out.push(path);
        }
    }
}

#[test]
fn every_shell_block_in_docs_runs_or_is_marked_dev() {
    let mut documents = Vec::new();
    markdown_in(&repository().join("docs"), &mut documents);
    assert!(documents.len() > 10, "the docs were found");
    // The README is held to the same rule.
    documents.push(repository().join("README.md"));
    for path in documents {
        let document = path
            .strip_prefix(repository())
            .expect("in the repository")
            .to_string_lossy()
            .to_string();
        let blocks = examples(&document, &read(&document));
        if let Some(fence) = blocks.first() {
            assert!(
                DOCUMENTS.contains(&document.as_str()),
                "{document}:{}: an example no test runs: add {document} to DOCUMENTS and a \
                 test for it in tests/examples.rs (or, for commands for weft's developers, \
                 fence the block ```sh dev)",
                fence.line
            );
        }
    }
    for document in DOCUMENTS {
        assert!(
            !examples(document, &read(document)).is_empty(),
            "{document} is in DOCUMENTS but has no example"
        );
    }
}

#[test]
fn the_graphql_examples_run_in_order() {
    let session = run_document("docs/graphql.md");
    let answer: Value = serde_json::from_str(session.answer()).expect("JSON");
    assert_eq!(answer["data"]["head"]["height"], 0, "{answer}");
}

#[test]
fn the_ingest_examples_run_in_order() {
    let session = run_document("docs/ingest.md");
    // The watched directory does what the document says: a file dropped there is recorded and
    // moves to done/.
    let spool = session.dir().join("spool");
    std::fs::write(spool.join("cycle-7.csv"), "cycle,7\nspindle_rpm,9007\n").expect("write");
    cycle_7_recorded_and_moved(&spool);
}

/// The watching node recorded `spool/cycle-7.csv` (one line of `done/ingested.tsv`) and moved it
/// to `done/`, byte for byte.
fn cycle_7_recorded_and_moved(spool: &Path) {
    let log = wait_until(60, || {
        std::fs::read_to_string(spool.join("done").join("ingested.tsv"))
            .ok()
            .filter(|log| log.lines().count() == 1)
            .ok_or_else(|| "cycle-7.csv is not recorded yet".to_string())
    });
    assert!(log.trim_end().ends_with("\tcycle-7.csv"), "{log}");
    assert_eq!(
        std::fs::read(spool.join("done").join("cycle-7.csv")).expect("moved"),
        b"cycle,7\nspindle_rpm,9007\n"
    );
}

#[test]
fn the_checkpoint_examples_run_in_order() {
    let session = run_document("docs/checkpoints.md");
    // The checkpoint kept is the later one: three blocks (genesis and two organisations).
    let kept = std::fs::read_to_string(session.dir().join("head.note")).expect("head.note");
    assert_eq!(kept.lines().nth(1), Some("3"), "{kept}");
}

#[test]
fn the_network_examples_run_in_order() {
    let session = run_document("docs/network.md");
    let api = session.var("API");
    // The late node syncs the chain from the seeds ("Joining a network", step 3).
    let late = session.node_url("./late");
    let network = height(api);
    wait_until(120, || match height(late) {
        synced if synced >= network => Ok(()),
        behind => Err(format!(
            "the late node is at {behind}, the network at {network}"
        )),
    });
    // The withdrawal ("Changing the validators") leaves the validators in effect scheduled.
    let (code, chain) = http("GET", &format!("{api}/v1/chain"), None, b"");
    assert_eq!(code, 200, "{chain}");
    assert_eq!(
        chain["scheduled"][0]["validators"], chain["validators"],
        "{chain}"
    );
    assert_eq!(chain["scheduled"][0]["from_height"], 5000, "{chain}");
}
