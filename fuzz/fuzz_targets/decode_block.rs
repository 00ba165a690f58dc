//! Any bytes as a canonical block (`weft_node::fuzz::decode_block`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_node::fuzz::decode_block(data));
