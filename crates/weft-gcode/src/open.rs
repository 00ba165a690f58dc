//! Opening a container: verify it completely first, then decrypt block by block, checking each
//! block again as it is written, so not one byte of G-code comes from a tampered container.

use std::io::{Read, Write};

use crate::container::ContainerReader;
use crate::error::{GcodeError, Result};
use crate::keys::ReceiverSecret;
use crate::manifest::{Manifest, parse_hash};
use crate::verify::{Report, verify_container};

/// Verifies the container read by `open`, then writes its G-code to `out`. `key` is needed for
/// an encrypted container. Returns the verification report and the bytes written.
pub fn open_container(
    mut open: impl FnMut() -> std::io::Result<Box<dyn Read>>,
    manifest: &Manifest,
    key: Option<&ReceiverSecret>,
    out: &mut impl Write,
) -> Result<(Report, u64)> {
    let report = verify_container(open()?, manifest)?;
    if !report.intact() {
        return Err(GcodeError::Crypto(format!(
            "the container is tampered ({} finding(s)); nothing was written",
            report.findings.len().max(1)
        )));
    }
    let mut reader = ContainerReader::new(open()?)?;
    let content = match (reader.header.encrypted(), key) {
        (true, Some(key)) => Some(reader.content_key(key)?),
        (true, None) => {
            return Err(GcodeError::Crypto(
                "the container is encrypted: give the receiver's secret key".into(),
            ));
        }
        (false, _) => None,
    };
    let mut previous = reader.header.hash();
    let mut written = 0u64;
    for (index, segment) in manifest.body.segments.iter().enumerate() {
        // The file could change between the two passes: check every block again.
        let block = reader.next_block()?.ok_or_else(|| {
            GcodeError::Crypto(format!(
                "the container changed while opening: block {index} is gone"
            ))
        })?;
        let hash = block.hash();
        if block.previous != previous || parse_hash("manifest block hash", &segment.block)? != hash
        {
            return Err(GcodeError::Crypto(format!(
                "the container changed while opening: block {index} differs; output stopped after {written} bytes"
            )));
        }
        previous = hash;
        let plain = match &content {
            Some(key) => key.decrypt(&block)?,
            None => block.body,
        };
        if plain.len() as u64 != block.plain_bytes {
            return Err(GcodeError::Crypto(format!(
                "block {index} holds {} bytes, its header says {}",
                plain.len(),
                block.plain_bytes
            )));
        }
        out.write_all(&plain)?;
        written += plain.len() as u64;
    }
    out.flush()?;
    Ok((report, written))
}
