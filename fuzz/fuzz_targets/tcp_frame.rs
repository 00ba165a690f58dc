//! Any bytes as what a TCP ingest client sends (`weft_node::fuzz::tcp_frame`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_node::fuzz::tcp_frame(data));
