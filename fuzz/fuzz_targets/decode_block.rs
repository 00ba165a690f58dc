//! Any bytes: the block decoder returns an error or a block that re-encodes to the same bytes;
//! checking it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_core::encoding::{decode, encode};
use weft_ledger::block::Block;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = decode::<Block>(data) {
        assert_eq!(encode(&block), data, "canonical: decoding then encoding gives the same bytes");
        let _ = block.signed.verify_producer();
        let ids: Vec<_> = block.transactions.iter().map(|tx| tx.id()).collect();
        let _ = weft_ledger::block::merkle_levels(&block.transactions, &ids).root();
    }
});
