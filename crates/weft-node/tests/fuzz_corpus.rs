//! Replays every committed fuzz corpus (fuzz/corpus/TARGET/, docs/fuzzing.md) through the
//! target's own entry function, on stable Rust: a decoder that fails again on an input a fuzzer
//! found, or kept for its coverage, fails here, in CI, without nightly. A target without a
//! corpus, or a fuzz target missing from this list, fails too.
//!
//! The valid inputs the corpora were grown from are written by `weft_node::fuzz`'s ignored
//! unit test `write_seed_inputs` (docs/fuzzing.md).

#[path = "../../../fuzz/entries/gcode.rs"]
mod gcode;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Runs `entry` on every file of `target`'s corpus; names every file that fails.
fn replay(target: &str, entry: fn(&[u8])) {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("no corpus for fuzz target {target} at {dir:?}: {error}"))
        .map(|entry| entry.expect("a readable corpus directory").path())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "the corpus of {target} at {dir:?} is empty"
    );
    let failed: Vec<String> = files
        .iter()
        .filter(|file| {
            let data = std::fs::read(file).expect("a readable corpus file");
            std::panic::catch_unwind(|| entry(&data)).is_err()
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: {} of {} corpus files fail (reproduce one with `cargo +nightly fuzz run \
         {target} FILE` in fuzz/): {failed:#?}",
        failed.len(),
        files.len()
    );
}

macro_rules! targets {
    ($($target:ident => $entry:path,)*) => {
        /// Every fuzz target, in fuzz/Cargo.toml's order.
        const TARGETS: &[&str] = &[$(stringify!($target)),*];
        $(
            #[test]
            fn $target() {
                replay(stringify!($target), $entry);
            }
        )*
    };
}

targets! {
    decode_transaction => weft_node::fuzz::decode_transaction,
    decode_block => weft_node::fuzz::decode_block,
    gcode_segment => gcode::gcode_segment,
    gcode_container => gcode::gcode_container,
    tcp_frame => weft_node::fuzz::tcp_frame,
    p2p_message => weft_node::fuzz::p2p_message,
    sealed_record => weft_node::fuzz::sealed_record,
    gcode_manifest => gcode::gcode_manifest,
    proof_document => weft_node::fuzz::proof_document,
    join_document => weft_node::fuzz::join_document,
    api_request_json => weft_node::fuzz::api_request_json,
    config_toml => weft_node::fuzz::config_toml,
}

#[test]
fn every_fuzz_target_is_replayed() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let manifest: toml::Table = toml::from_str(&manifest).expect("fuzz/Cargo.toml parses");
    let bins: Vec<&str> = manifest["bin"]
        .as_array()
        .expect("[[bin]] targets")
        .iter()
        .map(|bin| bin["name"].as_str().expect("a target's name"))
        .collect();
    assert_eq!(
        bins, TARGETS,
        "fuzz/Cargo.toml's targets and the ones replayed here"
    );
}
