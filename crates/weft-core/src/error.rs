//! The one error type of weft-core.

/// Everything that can go wrong in weft-core. Messages are lowercase and name the input at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// Bytes were longer than the limit for the type being decoded.
    #[error("{what} is {len} bytes, more than the limit of {max} bytes")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// Bytes did not decode as the canonical encoding of the expected type.
    #[error("{what} is not a valid canonical encoding: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// A decoded value broke a field limit (length, count, character set).
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// A textual identifier (hex hash, fingerprint, key) could not be parsed.
    #[error("cannot parse {what} from {input:?}: {reason}")]
    Parse {
        what: &'static str,
        input: String,
        reason: String,
    },
    /// A signature did not verify under the given key and namespace.
    #[error("signature does not verify for {namespace} under key {key}")]
    BadSignature {
        namespace: &'static str,
        key: String,
    },
    /// A batch of signatures did not verify; at least one is bad.
    #[error("batch signature verification failed: at least one of {count} signatures is invalid")]
    BadBatch { count: usize },
    /// The operating system's random number generator failed.
    #[error("cannot obtain randomness from the operating system: {0}")]
    Randomness(String),
}
