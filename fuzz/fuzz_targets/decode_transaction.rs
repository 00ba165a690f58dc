//! Any bytes as a canonical transaction (`weft_node::fuzz::decode_transaction`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_node::fuzz::decode_transaction(data));
