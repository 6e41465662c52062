//! Async Rust client for the ledger's gRPC API (`ledger.v1.Ledger`), and the `ledger` CLI.
//!
//! - [`LedgerClient`]: typed calls (ids `u128`, amounts `Decimal`), cached channels, leader
//!   redirects, and retries that are safe because every write is idempotent.
//! - [`TransferBatcher`]: coalesces concurrent single-transfer submits into batch requests.
//!
//! See README.md for the retry semantics and the CLI reference.

pub mod amount;
pub mod batcher;
pub mod cli;
pub mod client;
mod convert;
mod endpoints;
pub mod error;
pub mod ids;
pub mod result_code;
pub mod retry;
pub mod timestamp;
pub mod types;

pub use amount::{format_amount, parse_amount};
pub use batcher::{BatcherConfig, SendTransfers, TransferBatcher};
pub use client::{AccountWatch, ClientConfig, LedgerClient};
pub use endpoints::ENDPOINTS_MAX;
pub use error::{ClientError, ParseError};
pub use ids::{decode_id, encode_id, parse_id, transfer_id_from_key};
pub use result_code::ResultCode;
pub use retry::Backoff;
pub use rust_decimal::Decimal;
pub use types::*;
