//! The body of every answer that is not a success, `{"error": {"code", "message"[, "rule"]}}`,
//! and its stable, machine-readable codes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every answer that is not a success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// `code` is stable and machine-readable; `message` says what was wrong.
///
/// Also the error of one refused transaction of a batch (`BatchResult.error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// e.g. `malformed_json`, `invalid_body`, `too_large`, `bad_transaction`, `rule`,
    /// `not_found`, `busy`, `rate_limited`, `unauthorized` (every code: `weft_api::ErrorCode`).
    #[schema(value_type = String)]
    pub code: ErrorCode,
    pub message: String,
    /// With `code = "rule"`: the business rule that refused the transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub rule: Option<String>,
}

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// The stable codes of [`ErrorDetail::code`], serialised as their snake-case text
        /// (`ErrorCode::NotFound` is `"not_found"`). A code this version does not know (from a
        /// newer node) is kept as [`ErrorCode::Other`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
            /// A code this version of weft does not know.
            Other(String),
        }

        impl ErrorCode {
            /// The code as it travels: `"not_found"`, `"rule"`, ….
            pub fn as_str(&self) -> &str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                    ErrorCode::Other(text) => text,
                }
            }
        }

        impl From<&str> for ErrorCode {
            fn from(text: &str) -> Self {
                match text {
                    $($text => ErrorCode::$variant,)*
                    other => ErrorCode::Other(other.to_string()),
                }
            }
        }
    };
}

error_codes! {
    /// The body is not JSON.
    MalformedJson = "malformed_json",
    /// The body is JSON of the wrong shape (a field of the wrong type, an unknown field).
    InvalidBody = "invalid_body",
    /// The body could not be read.
    BadBody = "bad_body",
    /// The body is not sent as `application/json`.
    ContentType = "content_type",
    /// The body is larger than the node accepts (`api.max_body_bytes`).
    TooLarge = "too_large",
    /// The body stopped arriving (`api.header_timeout_ms`).
    BodyTimeout = "body_timeout",
    /// The query string is malformed.
    BadQuery = "bad_query",
    /// A transaction is not hex, or not a canonical weft transaction.
    BadTransaction = "bad_transaction",
    /// A batch is empty or larger than `api.max_batch`.
    BatchSize = "batch_size",
    /// `timeout_ms` is out of range, or given with `wait=false`.
    TimeoutMs = "timeout_ms",
    /// A business rule refused the transaction; [`ErrorDetail::rule`] names it.
    Rule = "rule",
    /// No such thing (transaction, block, resource, claim, endpoint).
    NotFound = "not_found",
    /// Not a block height or hash.
    BadBlock = "bad_block",
    /// Not a block hash.
    BadHash = "bad_hash",
    /// Not a transaction or resource id.
    BadId = "bad_id",
    /// Not an id prefix (6 to 64 hex digits).
    BadPrefix = "bad_prefix",
    /// Not a fingerprint.
    BadFingerprint = "bad_fingerprint",
    /// Not a public key.
    BadKey = "bad_key",
    /// A resource that cannot be signed into a transaction.
    BadResource = "bad_resource",
    /// Wrong GraphQL arguments.
    BadArguments = "bad_arguments",
    /// A GraphQL subscription's WebSocket was refused.
    BadWebsocket = "bad_websocket",
    /// The node is at a limit (its submission queue or journal, GraphQL's running queries or
    /// sockets); retry shortly.
    Busy = "busy",
    /// Over the request rate (`api.rate_per_s`); `Retry-After` says when to retry.
    RateLimited = "rate_limited",
    /// The node is shutting down.
    ShuttingDown = "shutting_down",
    /// Not committed within the wait; the transactions stay queued.
    NotFinal = "not_final",
    /// The durable queue did not take the transactions.
    NotQueued = "not_queued",
    /// The block producer did not commit the transaction; submit again.
    NotCommitted = "not_committed",
    /// An administrative endpoint without the admin token.
    Unauthorized = "unauthorized",
    /// An administrative endpoint with a token that is not the node's.
    Forbidden = "forbidden",
    /// The node's home holds no authority key.
    NoAuthority = "no_authority",
    /// The node was started without a configuration file to reload.
    NoConfigFile = "no_config_file",
    /// The configuration file cannot be read or is invalid.
    BadConfig = "bad_config",
    /// The node follows its chain on proofs and keeps no rule state to answer from (409);
    /// ask a full node.
    NotKept = "not_kept",
    /// The node follows its chain on proofs and no peer gave an answer that checks out
    /// against its headers (502); the message names the peers and what was wrong.
    NoPeerAnswer = "no_peer_answer",
    /// The node failed (it could not read its ledger); not the client's fault.
    Internal = "internal",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str> as Deserialize>::deserialize(deserializer)?;
        Ok(ErrorCode::from(text.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes travel as the same text as before they were an enum, both ways; an unknown
    /// code survives a round trip.
    #[test]
    fn error_codes_travel_as_their_text() {
        for (code, text) in [
            (ErrorCode::NotFound, "\"not_found\""),
            (ErrorCode::Rule, "\"rule\""),
            (ErrorCode::TimeoutMs, "\"timeout_ms\""),
            (ErrorCode::Other("new_code".into()), "\"new_code\""),
        ] {
            assert_eq!(serde_json::to_string(&code).expect("serialises"), text);
            assert_eq!(
                serde_json::from_str::<ErrorCode>(text).expect("deserialises"),
                code
            );
        }
    }

    /// `rule` is absent, not null, when there is none.
    #[test]
    fn an_error_without_a_rule_has_no_rule_field() {
        let body = ErrorBody {
            error: ErrorDetail {
                code: ErrorCode::NotFound,
                message: "no such block".into(),
                rule: None,
            },
        };
        assert_eq!(
            serde_json::to_string(&body).expect("serialises"),
            r#"{"error":{"code":"not_found","message":"no such block"}}"#
        );
    }
}
