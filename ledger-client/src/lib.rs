//! Async Rust client for the ledger's gRPC API (`ledger.v1.Ledger`), and the `ledger` CLI.
//!
//! - [`LedgerClient`]: typed calls (ids `u128`, amounts `Amount`: u128 minor units, 38 digits), cached channels, leader
//!   redirects, and retries that are safe because every write is idempotent.
//! - [`TransferBatcher`]: coalesces concurrent single-transfer submits into batch requests.
//!
//! See README.md for the retry semantics and the CLI reference.
//!
//! ```no_run
//! use ledger_client::{ClientError, LedgerClient, Leg, NewAccount, NewAsset, NewTransfer, ResultCode, parse_amount};
//!
//! async fn example() -> Result<(), ClientError> {
//!     let client = LedgerClient::connect(vec![
//!         "http://127.0.0.1:7070".into(),
//!         "http://127.0.0.1:7071".into(),
//!     ])?;
//!     client.create_assets(vec![NewAsset::new("CNY", 2)]).await?;
//!     client
//!         .create_accounts(vec![
//!             NewAccount { debits_must_not_exceed_credits: true, ..NewAccount::new(1001, "CNY", 1) },
//!             NewAccount::new(2002, "CNY", 1),
//!         ])
//!         .await?;
//!
//!     let amount = parse_amount("12.50")?;
//!     let legs = vec![Leg::new(2002, 1001, amount)];
//!     let results = client.create_transfers(vec![NewTransfer::posted(9001, "order-1", "CNY", legs)]).await?;
//!     match results[0].code {
//!         ResultCode::Ok => println!("moved at {} (replay: {})", results[0].timestamp_ns, results[0].replay),
//!         code => println!("refused: {code} on leg {:?}", results[0].leg_index), // e.g. "exceeds_credits"
//!     }
//!
//!     // Many concurrent single transfers, one request per batch.
//!     let batcher = client.batcher(ledger_client::BatcherConfig::default());
//!     let result = batcher.submit(NewTransfer::posted(9002, "order-2", "CNY", vec![Leg::new(2002, 1001, amount)])).await?;
//!     assert_eq!(result.index, 0);
//!     Ok(())
//! }
//! ```

pub mod accounts;
pub mod amount;
pub mod audit;
pub mod batcher;
pub mod cli;
pub mod client;
mod convert;
mod endpoints;
pub mod error;
pub mod feed;
pub mod ids;
pub mod query;
pub mod retry;
pub mod risk;
pub mod timestamp;
pub mod tls;
pub mod types;
pub mod wallet;

pub use amount::{format_amount, parse_amount};
pub use batcher::{BatcherConfig, SendTransfers, TransferBatcher};
pub use client::{AccountWatch, BearerToken, ClientConfig, LedgerClient, STALENESS_METADATA_KEY};
pub use endpoints::ENDPOINTS_MAX;
pub use error::{ClientError, ParseError};
pub use feed::{FeedEvent, FeedFilter, FeedPage, FeedSubscription};
pub use query::{AccountHistoryPage, BalanceChange, HistoryRange};
pub use ids::{decode_id, encode_id, parse_id, transfer_id_from_key};
/// One enum for node and client (ledger-core); wire numbers via `ledger_proto::convert`.
pub use ledger_core::result::ResultCode;
pub use retry::Backoff;
pub use tls::ClientTls;
pub use amount::Amount;
pub use types::*;
