//! Any bytes as a second-tier sealed record (`weft_node::fuzz::sealed_record`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_node::fuzz::sealed_record(data));
