//! Any bytes as a sealed container: reading, verifying against a manifest and opening return
//! errors or reports, never panic, and never allocate beyond the format's limits.
#![no_main]

use std::io::{Cursor, Read};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use weft_gcode::container::ContainerReader;
use weft_gcode::manifest::Manifest;

/// A real manifest (of a small two-layer file) to verify the fuzzed bytes against.
fn manifest() -> &'static Manifest {
    static MANIFEST: OnceLock<Manifest> = OnceLock::new();
    MANIFEST.get_or_init(|| {
        let plain = b"G90\nM82\nG1 Z0.2\nG1 X1 Y1 E1\nG1 Z0.4\nG1 X2 Y2 E2\nM84\n";
        let s = weft_gcode::segment(plain);
        let mut out = Vec::new();
        let sealed = weft_gcode::container::seal(plain, &s.segments, &[], &mut out)
            .expect("a plain file seals");
        Manifest::new("fuzz.gcode", plain, "motion", &s.segments, &sealed)
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(mut reader) = ContainerReader::new(Cursor::new(data)) {
        while let Ok(Some(_block)) = reader.next_block() {}
    }
    let _ = weft_gcode::verify::verify_container(Cursor::new(data), manifest());
    let mut out = Vec::new();
    let open = || Ok(Box::new(Cursor::new(data.to_vec())) as Box<dyn Read>);
    if weft_gcode::open::open_container(open, manifest(), None, &mut out).is_err() {
        assert!(out.is_empty(), "nothing is written from a container that fails");
    }
    let _ = Manifest::from_json(data);
});
