//! Any bytes as a message on weft's peer-to-peer channels (`weft_node::fuzz::p2p_message`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_node::fuzz::p2p_message(data));
