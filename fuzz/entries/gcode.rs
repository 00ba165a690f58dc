//! Entry points of the G-code fuzz targets (docs/fuzzing.md). weft-node does not depend on
//! weft-gcode, so they live here rather than in `weft_node::fuzz`: the targets in
//! fuzz/fuzz_targets/ include this file, and so does the replay of their corpora on stable
//! Rust (crates/weft-node/tests/fuzz_corpus.rs), so both run the same code.

use std::io::{Cursor, Read};
use std::sync::OnceLock;

use weft_gcode::container::ContainerReader;
use weft_gcode::manifest::Manifest;
use weft_gcode::{SegmentKind, segment};

/// A small two-layer file, sealed without receivers: its bytes, its container and its manifest.
struct Sealed {
    plain: &'static [u8],
    container: Vec<u8>,
    manifest: Manifest,
}

fn sealed() -> &'static Sealed {
    static SEALED: OnceLock<Sealed> = OnceLock::new();
    SEALED.get_or_init(|| {
        let plain: &'static [u8] = b"G90\nM82\nG1 Z0.2\nG1 X1 Y1 E1\nG1 Z0.4\nG1 X2 Y2 E2\nM84\n";
        let s = segment(plain);
        let mut container = Vec::new();
        let sealed = weft_gcode::container::seal(plain, &s.segments, &[], &mut container)
            .expect("a plain file seals");
        let manifest = Manifest::new("fuzz.gcode", plain, "motion", &s.segments, &sealed);
        Sealed {
            plain,
            container,
            manifest,
        }
    })
}

/// Any bytes as G-code: segmentation never panics, and its segments cover every byte exactly
/// once, in order, none empty, with layers numbered 1..N.
pub fn gcode_segment(data: &[u8]) {
    let segmentation = segment(data);
    let mut at = 0u64;
    let mut layer = 0u32;
    for s in &segmentation.segments {
        assert_eq!(s.start, at, "segments are contiguous");
        assert!(s.end > s.start, "no empty segment");
        if s.kind == SegmentKind::Layer {
            layer += 1;
            assert_eq!(s.layer, Some(layer), "layers are numbered 1..N");
        }
        at = s.end;
    }
    assert_eq!(at, data.len() as u64, "every byte is in a segment");
}

/// Any bytes as a sealed container: reading, verifying against a manifest and opening return
/// errors or reports, never panic, and never allocate beyond the format's limits.
pub fn gcode_container(data: &[u8]) {
    let manifest = &sealed().manifest;
    if let Ok(mut reader) = ContainerReader::new(Cursor::new(data)) {
        while let Ok(Some(_block)) = reader.next_block() {}
    }
    let _ = weft_gcode::verify::verify_container(Cursor::new(data), manifest);
    let mut out = Vec::new();
    let open = || Ok(Box::new(Cursor::new(data.to_vec())) as Box<dyn Read>);
    if weft_gcode::open::open_container(open, manifest, None, &mut out).is_err() {
        assert!(
            out.is_empty(),
            "nothing is written from a container that fails"
        );
    }
    let _ = Manifest::from_json(data);
}

/// Any bytes as a manifest (docs/gcode.md), as `weft gcode verify/open` read one: parsed and
/// checked; a manifest that parses writes back to JSON that parses to the same manifest; its
/// signature is checked, and it is used to verify a real container and its plain G-code, and
/// to open the container (which writes nothing unless everything matches).
pub fn gcode_manifest(data: &[u8]) {
    let Ok(manifest) = Manifest::from_json(data) else {
        return;
    };
    let again = Manifest::from_json(manifest.to_json().as_bytes())
        .expect("a manifest written back to JSON parses");
    assert_eq!(again, manifest, "a manifest round-trips through JSON");
    let _ = manifest.check_signature();
    let sealed = sealed();
    if let Ok(report) =
        weft_gcode::verify::verify_container(Cursor::new(&sealed.container[..]), &manifest)
    {
        let _ = weft_gcode::verify::layer_map(&report, &manifest);
    }
    let plain = || Ok(Box::new(Cursor::new(sealed.plain)) as Box<dyn Read>);
    if let Ok(report) = weft_gcode::verify::verify_plain(plain, &manifest, 1 << 20) {
        let _ = weft_gcode::verify::layer_map(&report, &manifest);
    }
    let mut out = Vec::new();
    let open = || Ok(Box::new(Cursor::new(sealed.container.clone())) as Box<dyn Read>);
    match weft_gcode::open::open_container(open, &manifest, None, &mut out) {
        Ok(_) => assert_eq!(out, sealed.plain, "an intact container opens to its G-code"),
        Err(_) => assert!(
            out.is_empty(),
            "nothing is written from a container that fails"
        ),
    }
}
