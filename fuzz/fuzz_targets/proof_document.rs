//! Any bytes as an inclusion proof document (`weft_node::fuzz::proof_document`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_node::fuzz::proof_document(data));
