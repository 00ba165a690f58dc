//! Any bytes as a join document (`weft_node::fuzz::join_document`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_node::fuzz::join_document(data));
