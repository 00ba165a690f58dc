//! Any bytes as a JSON body of the REST API (`weft_node::fuzz::api_request_json`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_node::fuzz::api_request_json(data));
