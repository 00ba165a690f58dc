//! The TCP ingest protocol's frames (docs/ingest-tcp.md), shared by the node and the CLI.
//!
//! ```text
//! frame = length u32 BE | version u8 | kind u8 | request u64 BE | body
//! ```
//! `length` counts everything after itself (at least [`HEADER_LEN`]). Integers are big-endian;
//! short strings are a `u8` length and UTF-8 bytes. A client numbers its frames with `request`;
//! every answer carries the number of the frame it answers.

use weft_core::{ChainId, ResourceId, TxId};

/// The protocol version this build speaks.
pub const VERSION: u8 = 1;
/// `version`, `kind` and `request`: the bytes every frame has after its length.
pub const HEADER_LEN: usize = 10;

/// Client → node: optional first frame; body = the ingest token (may be empty).
pub const HELLO: u8 = 0x01;
/// Client → node: body = a canonical signed transaction.
pub const TX: u8 = 0x02;
/// Client → node: body = content type (short string) | record body; the node signs it.
pub const RECORD: u8 = 0x03;
/// Client → node: empty body; answered with [`PONG`].
pub const PING: u8 = 0x04;
/// Node → client: answer to [`HELLO`].
pub const WELCOME: u8 = 0x81;
/// Node → client: the frame's transaction is durably committed.
pub const COMMITTED: u8 = 0x82;
/// Node → client: a business rule refused the frame's transaction.
pub const REJECTED: u8 = 0x83;
/// Node → client: answer to [`PING`].
pub const PONG: u8 = 0x84;
/// Node → client: the frame could not be taken; body = code (short string) | message.
pub const ERROR: u8 = 0x8F;

/// `WELCOME` flag: this connection may send `RECORD` frames.
pub const FLAG_RECORDS: u8 = 1;

/// One frame without its length prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub version: u8,
    pub kind: u8,
    pub request: u64,
    pub body: Vec<u8>,
}

/// A frame's bytes, length prefix included.
pub fn encode(kind: u8, request: u64, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4 + HEADER_LEN + body.len());
    let length = u32::try_from(HEADER_LEN + body.len()).unwrap_or(u32::MAX);
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.push(VERSION);
    bytes.push(kind);
    bytes.extend_from_slice(&request.to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// Splits what followed a length prefix into a frame; `None` if it is shorter than a header.
pub fn parse_frame(bytes: Vec<u8>) -> Option<Frame> {
    if bytes.len() < HEADER_LEN {
        return None;
    }
    let request = u64::from_be_bytes(bytes[2..10].try_into().ok()?);
    Some(Frame {
        version: bytes[0],
        kind: bytes[1],
        request,
        body: bytes[HEADER_LEN..].to_vec(),
    })
}

fn short_string(bytes: &mut Vec<u8>, text: &str) {
    let text = truncate(text, 255);
    bytes.push(text.len() as u8);
    bytes.extend_from_slice(text.as_bytes());
}

/// `text` cut to at most `max` bytes on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Reads a short string at the front of `bytes`; the rest follows.
fn take_short_string(bytes: &[u8]) -> Result<(&str, &[u8]), String> {
    let (&length, rest) = bytes
        .split_first()
        .ok_or("the body ends before its string's length")?;
    if rest.len() < usize::from(length) {
        return Err(format!(
            "the body ends inside its {length}-byte string ({} bytes left)",
            rest.len()
        ));
    }
    let (text, rest) = rest.split_at(usize::from(length));
    let text = std::str::from_utf8(text).map_err(|_| "a string is not UTF-8".to_string())?;
    Ok((text, rest))
}

/// `RECORD` body.
pub fn record_body(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + content_type.len() + body.len());
    short_string(&mut bytes, content_type);
    bytes.extend_from_slice(body);
    bytes
}

/// Parses a `RECORD` body into content type and record body.
pub fn parse_record(body: &[u8]) -> Result<(&str, &[u8]), String> {
    let (content_type, rest) = take_short_string(body)?;
    if content_type.trim().is_empty() {
        return Err("the content type is empty".into());
    }
    Ok((content_type, rest))
}

/// `WELCOME` body.
pub fn welcome_body(
    chain: &ChainId,
    identity: Option<&ResourceId>,
    max_frame: u32,
    flags: u8,
) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(70);
    bytes.push(VERSION);
    bytes.extend_from_slice(chain.as_bytes());
    bytes.extend_from_slice(identity.map_or(&[0u8; 32], |id| id.as_bytes()));
    bytes.extend_from_slice(&max_frame.to_be_bytes());
    bytes.push(flags);
    bytes
}

/// A parsed `WELCOME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    pub version: u8,
    pub chain: [u8; 32],
    /// The resource that signs `RECORD` frames (all zeros if the node has none).
    pub identity: [u8; 32],
    pub max_frame: u32,
    pub flags: u8,
}

pub fn parse_welcome(body: &[u8]) -> Result<Welcome, String> {
    if body.len() != 70 {
        return Err(format!("a WELCOME body is 70 bytes, got {}", body.len()));
    }
    Ok(Welcome {
        version: body[0],
        chain: body[1..33].try_into().map_err(|_| "chain")?,
        identity: body[33..65].try_into().map_err(|_| "identity")?,
        max_frame: u32::from_be_bytes(body[65..69].try_into().map_err(|_| "max_frame")?),
        flags: body[69],
    })
}

/// `COMMITTED` body.
pub fn committed_body(id: &TxId, height: u64, index: u32) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(44);
    bytes.extend_from_slice(id.as_bytes());
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&index.to_be_bytes());
    bytes
}

/// A parsed `COMMITTED`: transaction id, height, index.
pub fn parse_committed(body: &[u8]) -> Result<([u8; 32], u64, u32), String> {
    if body.len() != 44 {
        return Err(format!("a COMMITTED body is 44 bytes, got {}", body.len()));
    }
    let id: [u8; 32] = body[..32].try_into().map_err(|_| "id")?;
    let height = u64::from_be_bytes(body[32..40].try_into().map_err(|_| "height")?);
    let index = u32::from_be_bytes(body[40..44].try_into().map_err(|_| "index")?);
    Ok((id, height, index))
}

/// `REJECTED` body.
pub fn rejected_body(id: &TxId, rule: &str, message: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(64 + message.len());
    bytes.extend_from_slice(id.as_bytes());
    short_string(&mut bytes, rule);
    bytes.extend_from_slice(truncate(message, 4096).as_bytes());
    bytes
}

/// A parsed `REJECTED`: transaction id, rule, message.
pub fn parse_rejected(body: &[u8]) -> Result<([u8; 32], String, String), String> {
    if body.len() < 33 {
        return Err(format!(
            "a REJECTED body is at least 33 bytes, got {}",
            body.len()
        ));
    }
    let id: [u8; 32] = body[..32].try_into().map_err(|_| "id")?;
    let (rule, rest) = take_short_string(&body[32..])?;
    Ok((id, rule.into(), String::from_utf8_lossy(rest).into_owned()))
}

/// `ERROR` body.
pub fn error_body(code: &str, message: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + code.len() + message.len());
    short_string(&mut bytes, code);
    bytes.extend_from_slice(truncate(message, 4096).as_bytes());
    bytes
}

/// A parsed `ERROR`: code and message.
pub fn parse_error(body: &[u8]) -> Result<(String, String), String> {
    let (code, rest) = take_short_string(body)?;
    Ok((code.into(), String::from_utf8_lossy(rest).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_short_ones_are_refused() {
        let bytes = encode(RECORD, 7, &record_body("text/csv", b"a,b\n1,2\n"));
        assert_eq!(
            u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes")) as usize,
            bytes.len() - 4
        );
        let frame = parse_frame(bytes[4..].to_vec()).expect("a frame");
        assert_eq!(
            (frame.version, frame.kind, frame.request),
            (VERSION, RECORD, 7)
        );
        assert_eq!(
            parse_record(&frame.body),
            Ok(("text/csv", &b"a,b\n1,2\n"[..]))
        );
        assert_eq!(parse_frame(vec![1, 2, 3]), None);
        assert!(
            parse_record(&[9, b'a']).is_err(),
            "string longer than the body"
        );
        assert!(parse_record(&[0, b'x']).is_err(), "empty content type");
        assert!(parse_record(&[2, 0xff, 0xfe]).is_err(), "not UTF-8");
    }

    /// The test vectors of docs/ingest-tcp.md.
    #[test]
    fn documented_test_vectors() {
        assert_eq!(
            hex::encode(encode(PING, 7, &[])),
            "0000000a01040000000000000007"
        );
        assert_eq!(
            hex::encode(encode(RECORD, 2, &record_body("text/csv", b"spindle,1\n"))),
            "0000001d01030000000000000002\
             08746578742f637376\
             7370696e646c652c310a"
        );
        let id = TxId(weft_core::Hash32([0xab; 32]));
        assert_eq!(
            hex::encode(encode(COMMITTED, 2, &committed_body(&id, 5, 3))),
            format!(
                "0000003601820000000000000002{}000000000000000500000003",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn answers_round_trip() {
        let id = TxId(weft_core::Hash32([7; 32]));
        assert_eq!(
            parse_committed(&committed_body(&id, 12, 3)),
            Ok(([7; 32], 12, 3))
        );
        assert_eq!(
            parse_rejected(&rejected_body(&id, "R1", "no such issuer")),
            Ok(([7; 32], "R1".into(), "no such issuer".into()))
        );
        assert_eq!(
            parse_error(&error_body("malformed", "too short")),
            Ok(("malformed".into(), "too short".into()))
        );
        // A long multi-byte message is cut on a character boundary.
        let long = "é".repeat(3000);
        let (_, message) = parse_error(&error_body("x", &long)).expect("parses");
        assert!(message.len() <= 4096 && message.chars().all(|c| c == 'é'));
        let chain = ChainId(weft_core::Hash32([1; 32]));
        let welcome =
            parse_welcome(&welcome_body(&chain, None, 1 << 20, FLAG_RECORDS)).expect("parses");
        assert_eq!((welcome.chain, welcome.identity), ([1; 32], [0; 32]));
        assert_eq!((welcome.max_frame, welcome.flags), (1 << 20, FLAG_RECORDS));
    }
}
