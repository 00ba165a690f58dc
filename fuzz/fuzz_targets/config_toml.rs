//! Any bytes as `config.toml` (`weft_node::fuzz::config_toml`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_node::fuzz::config_toml(data));
