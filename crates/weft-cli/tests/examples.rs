//! The README's examples run, in order, as a new user would type them: the shell blocks under
//! "Using it" and "Through a node", in a fresh directory whose `./.weft` is the home. So the
//! README cannot drift from what the binary does.
//!
//! The blocks are read by the small shell interpreter of `common/shell.rs`: a form it does not
//! know fails the test, so a new form in the README must be taught there first.

use std::path::Path;

mod common;
use common::shell::{Session, block};

/// The files the examples name: a design, G-code from the corpus, and a copy of it changed in
/// one coordinate, as a machine might receive it.
fn files(dir: &Path) {
    std::fs::write(dir.join("bracket.step"), "ISO-10303-21; a bracket, rev C\n").expect("write");
    std::fs::write(dir.join("fixture.step"), "ISO-10303-21; a fixture\n").expect("write");
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

#[test]
fn the_readme_examples_run_in_order() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    let dir = tempfile::tempdir().expect("tempdir");
    files(dir.path());
    let mut session = Session::new(dir.path());
    let lines: Vec<String> = block(&readme, "## Using it")
        .into_iter()
        .chain(block(&readme, "### Through a node"))
        .collect();
    assert!(lines.len() > 20, "the README's examples were found");
    for line in &lines {
        session.run(line);
    }
    let mut node = session
        .take_node()
        .expect("the node example started a node");
    let pid = rustix::process::Pid::from_raw(node.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    assert!(
        node.wait().expect("exits").success(),
        "the node stops cleanly"
    );
    // What the examples wrote is there.
    for made in [
        "proof.json",
        "part.wgc",
        "part.json",
        "machine.gcode",
        "printer.key",
    ] {
        assert!(dir.path().join(made).is_file(), "{made} was not written");
    }
    assert_eq!(
        std::fs::read(dir.path().join("machine.gcode")).expect("opened"),
        std::fs::read(dir.path().join("part.gcode")).expect("sealed"),
        "the printer gets the G-code byte for byte"
    );
}
