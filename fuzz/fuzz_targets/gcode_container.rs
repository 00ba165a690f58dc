//! Any bytes as a sealed G-code container (`entries/gcode.rs`, `gcode_container`).
#![no_main]

// Each G-code target calls one of the shared entry points.
#[allow(dead_code)]
#[path = "../entries/gcode.rs"]
mod gcode;

libfuzzer_sys::fuzz_target!(|data: &[u8]| gcode::gcode_container(data));
