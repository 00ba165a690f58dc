//! Any bytes: the transaction decoder returns an error or a transaction that re-encodes to the
//! same bytes; it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_core::encoding::{decode, encode};
use weft_ledger::Transaction;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = decode::<Transaction>(data) {
        assert_eq!(encode(&tx), data, "canonical: decoding then encoding gives the same bytes");
        let _ = tx.verify_signature();
        let _ = tx.id();
    }
});
