//! Errors of the G-code layer: each says what was wrong.

#[derive(Debug, thiserror::Error)]
pub enum GcodeError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A container, manifest or key that is not well formed.
    #[error("{what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// A cryptographic operation refused (wrong key, forged data).
    #[error("{0}")]
    Crypto(String),
    /// The input is larger than this format allows.
    #[error("{what} is too large: {size} bytes, at most {max}")]
    TooLarge {
        what: &'static str,
        size: u64,
        max: u64,
    },
}

pub type Result<T, E = GcodeError> = std::result::Result<T, E>;

pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> GcodeError {
    GcodeError::Malformed {
        what,
        reason: reason.into(),
    }
}
