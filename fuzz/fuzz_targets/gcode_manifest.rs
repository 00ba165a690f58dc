//! Any bytes as a G-code manifest (`entries/gcode.rs`, `gcode_manifest`).
#![no_main]

// Each G-code target calls one of the shared entry points.
#[allow(dead_code)]
#[path = "../entries/gcode.rs"]
mod gcode;

libfuzzer_sys::fuzz_target!(|data: &[u8]| gcode::gcode_manifest(data));
