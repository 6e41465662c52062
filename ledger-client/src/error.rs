//! Every error the client returns. Typed, `Clone` (the batcher hands one error to many callers),
//! and split by what the caller can conclude about a write: applied or not, or unknown.

use thiserror::Error;

/// A value could not be parsed or encoded (bad input, or a malformed server response).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("id must be exactly 16 bytes, got {len_bytes}")]
    IdLength { len_bytes: usize },
    #[error(
        "invalid id {input:?}: expected a decimal u128 or 0x-prefixed hex of at most 32 digits"
    )]
    IdSyntax { input: String },
    #[error("invalid amount {input:?}: expected a plain decimal like 12.50 (-?[0-9]+(.[0-9]+)?)")]
    AmountSyntax { input: String },
    #[error("amount {input:?} does not fit 28 significant digits")]
    AmountOverflow { input: String },
    #[error("invalid leg {input:?}: expected DEBIT_ID:CREDIT_ID:AMOUNT")]
    LegSyntax { input: String },
    #[error("invalid metadata {input:?}: expected KEY=VALUE")]
    MetadataSyntax { input: String },
    /// A batcher mixes callers' transfers into one request: a linked transfer would link to
    /// someone else's. Send a chain whole with `create_transfers`.
    #[error("a linked transfer must be sent with its chain in one create_transfers request, not through a batcher")]
    LinkedNotBatched,
    #[error("unknown {field} value {value}")]
    EnumValue { field: &'static str, value: i32 },
    #[error("unknown {field} value {value:?}")]
    EnumName { field: &'static str, value: String },
    #[error(
        "amount {input:?} is not a whole number of minor units of a scale-{scale} asset (negative, or too many decimal places)"
    )]
    AmountNotMinorUnits { input: String, scale: u32 },
    /// The input is not echoed: it may be a secret (a token key).
    #[error("invalid {what}: expected {len_bytes} bytes as {} hex digits", len_bytes * 2)]
    HexSyntax { what: &'static str, len_bytes: usize },
    #[error("missing field {field}")]
    MissingField { field: &'static str },
}

#[derive(Debug, Clone, Error)]
pub enum ClientError {
    /// The server answered with a definite gRPC error (e.g. INVALID_ARGUMENT): the request was not
    /// applied and retrying the same request will fail the same way.
    #[error("rejected by server ({code:?}): {message}")]
    Rejected { code: tonic::Code, message: String },

    /// No node could be reached, or every node refused before accepting the request (connect
    /// failure, leader redirect): nothing was applied.
    #[error("ledger unavailable after {attempts} attempt(s): {last_error}")]
    Unavailable { attempts: u32, last_error: String },

    /// A write may or may not have been committed: at least one attempt was sent and then timed out
    /// or lost its connection, and no later attempt got an answer that settles it. A later attempt
    /// refused outright (e.g. PERMISSION_DENIED, RESOURCE_EXHAUSTED) settles nothing about the
    /// earlier one, so it is reported here too, its refusal in `last_error`. Retry it with the same
    /// idempotency key (transfers) or the same fields (assets, accounts) to learn the outcome;
    /// never with a new key.
    #[error("commit outcome unknown after {attempts} attempt(s): {last_error}")]
    Unknown { attempts: u32, last_error: String },

    /// The caller's input is invalid; nothing was sent.
    #[error("invalid input: {0}")]
    InvalidInput(#[from] ParseError),

    /// An endpoint string is not a valid URI, or the endpoint list is empty.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },

    /// The server's response breaks the API contract (wrong id length, bad decimal, missing
    /// results). Never retried: a broken response is not transient.
    #[error("protocol violation in server response: {0}")]
    Protocol(String),

    /// The batcher's background task has stopped (its runtime shut down).
    #[error("transfer batcher is closed")]
    BatcherClosed,
}

impl ClientError {
    /// True when the error proves the write was not applied (safe to give up or change content).
    pub fn is_definitely_not_applied(&self) -> bool {
        !matches!(self, ClientError::Unknown { .. })
    }

    pub(crate) fn protocol(what: impl std::fmt::Display) -> ClientError {
        ClientError::Protocol(what.to_string())
    }
}
