//! RFC 3161 tokens from OpenSSL's own TSA (`openssl ts -reply`), checked by
//! `weft_ledger::timestamp`: a token over a checkpoint verifies against the TSA's CA; a token
//! over another checkpoint, for another nonce, of another TSA, of a certificate without the
//! or with one byte changed, does not — each with its reason.

#[path = "support/tsa.rs"]
mod tsa;

use weft_ledger::timestamp;

const CHECKPOINT: &[u8] = b"weft/acme/4c61\n12\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

fn refused(result: weft_ledger::Result<timestamp::Verified>, says: &str) {
    let error = result.expect_err(says).to_string();
    assert!(error.contains(says), "{error} (expected: {says})");
}

#[test]
fn a_token_of_openssl_ts_verifies_against_its_ca_and_nothing_else_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    for kind in ["ec", "rsa"] {
        let tsa = tsa::Tsa::new(&dir.path().join(kind), kind, true);
        let nonce = 0x8000_0000_0000_0001_u64; // the top bit set: a positive DER integer
        let response = tsa.reply(&timestamp::request(CHECKPOINT, nonce));
        let token = timestamp::token_of(&response).expect("granted");
        let roots = [tsa.ca_der.clone()];
        let verified = timestamp::verify(&token, CHECKPOINT, nonce, &roots).expect(kind);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        assert!(verified.time_ms.abs_diff(now) < 120_000, "{verified:?}");
        assert!(verified.tsa.contains("weft test TSA"), "{verified:?}");

        refused(
            timestamp::verify(&token, b"another checkpoint\n", nonce, &roots),
            "over another message",
        );
        refused(
            timestamp::verify(&token, CHECKPOINT, nonce + 1, &roots),
            "nonce is not the one asked for",
        );
        refused(
            timestamp::verify(&token, CHECKPOINT, nonce, &[]),
            "no TSA root",
        );
        let stranger = tsa::Tsa::new(&dir.path().join(format!("{kind}-stranger")), kind, true);
        refused(
            timestamp::verify(
                &token,
                CHECKPOINT,
                nonce,
                std::slice::from_ref(&stranger.ca_der),
            ),
            "does not chain to the TSA root given",
        );
        // One byte of the signed time changed: the signed digest no longer matches.
        let mut altered = token.clone();
        let info = timestamp::parse(&token).expect("parses");
        let time = der::Encode::to_der(&info.info.gen_time).expect("encodes");
        let at = altered
            .windows(time.len())
            .position(|window| window == time.as_slice())
            .expect("the time is in the token");
        altered[at + time.len() - 2] ^= 1;
        refused(
            timestamp::verify(&altered, CHECKPOINT, nonce, &roots),
            "the token was altered",
        );
        // Not a token at all, or too large.
        refused(
            timestamp::verify(b"\x30\x03\x02\x01\x01", CHECKPOINT, nonce, &roots),
            "not CMS",
        );
        refused(
            timestamp::verify(
                &vec![0u8; timestamp::MAX_TOKEN_BYTES + 1],
                CHECKPOINT,
                nonce,
                &roots,
            ),
            "at most",
        );
    }
    // (A TSA certificate without the time-stamping usage: `openssl ts` refuses to sign with
    // one, so no such token is made here; rustls-webpki requires the usage, `KeyUsage::required`.)
}

mod common;

/// The rules keep a time-stamp only as a network authority's, of this chain's own checkpoint
/// of blocks before it, with a token over that checkpoint's text and for the nonce recorded.
#[test]
fn the_rules_keep_a_token_only_over_this_chains_checkpoint_and_nonce() {
    use weft_core::model::{Payload, Timestamp};
    use weft_ledger::Signer;
    use weft_ledger::checkpoint::{self, Checkpoint, Note};
    use weft_ledger::store::Store as _;

    let dir = tempfile::tempdir().expect("tempdir");
    let tsa = tsa::Tsa::new(dir.path(), "ec", true);
    let (mut w, leaves) = common::chain_of_claims();
    let producer = weft_core::SigningKey::from_text(&w.producer.to_text()).expect("key");
    let own = w.chain_id;
    let note_of = |chain_id: &weft_core::ChainId, size: u64, root: weft_core::Hash32| {
        let origin = checkpoint::origin("test", chain_id);
        let mut note = Note {
            text: Checkpoint {
                origin: origin.clone(),
                size,
                root,
            }
            .text(),
            signatures: Vec::new(),
        };
        note.sign(&origin, &producer).expect("sign");
        note
    };
    let ten = note_of(&own, 10, weft_core::merkle::root(&leaves[..10]));
    let token_for = |note: &Note, nonce: u64| {
        timestamp::token_of(&tsa.reply(&timestamp::request(note.text.as_bytes(), nonce)))
            .expect("granted")
    };
    let token = token_for(&ten, 5);
    let stamp = |note: &Note, nonce: u64, token: &[u8]| {
        Payload::Timestamp(Timestamp {
            note: note.to_text(),
            nonce,
            token: token.to_vec(),
        })
    };
    let authority = weft_core::SigningKey::from_text(&w.authority.to_text()).expect("key");
    let refused = |result: Result<weft_core::TxId, weft_ledger::RuleError>, says: &str| {
        let error = result.expect_err(says).to_string();
        assert!(error.contains(says), "{error} (expected: {says})");
    };
    let time = common::T0 + 100;

    let kept = w
        .submit_as(Signer::Authority, &authority, time, stamp(&ten, 5, &token))
        .expect("kept");
    assert!(w.ledger.store().tx_position(&kept).expect("read").is_some());
    // The same token with another checkpoint, or another nonce recorded.
    let eleven = note_of(&own, 11, weft_core::merkle::root(&leaves[..11]));
    refused(
        w.submit_as(
            Signer::Authority,
            &authority,
            time,
            stamp(&eleven, 5, &token),
        ),
        "over another message",
    );
    refused(
        w.submit_as(Signer::Authority, &authority, time, stamp(&ten, 6, &token)),
        "nonce is not the one asked for",
    );
    // Not by an authority; not of this chain; not of blocks before it; not a token.
    let designer = *w.keys.keys().next().expect("an organisation");
    refused(
        w.submit(designer, time, stamp(&ten, 5, &token)),
        "only a network authority",
    );
    let stranger = weft_core::ChainId::from_name("stranger").expect("id");
    let theirs = note_of(&stranger, 10, weft_core::merkle::root(&leaves[..10]));
    refused(
        w.submit_as(
            Signer::Authority,
            &authority,
            time,
            stamp(&theirs, 9, &token_for(&theirs, 9)),
        ),
        "not of this chain",
    );
    let ahead = note_of(&own, 500, weft_core::merkle::root(&leaves[..10]));
    refused(
        w.submit_as(
            Signer::Authority,
            &authority,
            time,
            stamp(&ahead, 9, &token_for(&ahead, 9)),
        ),
        "is not of the",
    );
    refused(
        w.submit_as(
            Signer::Authority,
            &authority,
            time,
            stamp(&ten, 5, b"\x30\x00"),
        ),
        "time-stamp token",
    );
}
