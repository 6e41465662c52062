//! Wallet domain types: what wallet callers build and read (ids `u128`, amounts `Amount`,
//! timestamps `u64` ns). Conversion to and from `ledger.v1.Wallet` messages is in `convert.rs`.

use super::mac::{self, MAC_BYTES, TokenKey};
use crate::error::ParseError;
use crate::ResultCode;
use crate::types::{AccountRecord, WriteResult};
use crate::amount::Amount;
use ledger_core::types::AccountId;
pub use ledger_core::wallet::types::TokenId;

/// A token to issue: an offline allowance of `account_id` on one device, held in
/// `clearing_account_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Chosen by the caller, not zero. Issuing the same id again with the same account and
    /// device answers `exists` with the token (and its key): a retry is safe.
    pub token_id: TokenId,
    pub account_id: AccountId,
    pub clearing_account_id: AccountId,
    pub device_id: String,
    pub offline_limit: Amount,
    pub max_offline_count: u32,
    /// 0: the node's default (one day).
    pub validity_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenStatus {
    Active,
    /// No new allowance; records made before may still arrive until the hold is released.
    Revoked,
    /// The hold is gone; records arriving now become exceptions.
    Released,
}

impl TokenStatus {
    pub fn name(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Revoked => "revoked",
            TokenStatus::Released => "released",
        }
    }

    pub fn from_name(name: &str) -> Option<TokenStatus> {
        [
            TokenStatus::Active,
            TokenStatus::Revoked,
            TokenStatus::Released,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// A token as the ledger holds it (never with its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub token_id: TokenId,
    pub account_id: AccountId,
    pub clearing_account_id: AccountId,
    pub device_id: String,
    pub asset: String,
    pub offline_limit: Amount,
    pub max_offline_count: u32,
    pub issued_at_ns: u64,
    pub expires_at_ns: u64,
    /// When the hold is released if no complete sync came first: expiry + grace.
    pub release_at_ns: u64,
    pub status: TokenStatus,
    pub revoke_reason: String,
    /// The hold of the current window as placed (below the limit when the balance capped it)
    /// and what is left of it: the offline allowance.
    pub hold_placed: Amount,
    pub hold_remaining: Amount,
    pub hold_capped: bool,
    /// Re-issues so far.
    pub generation: u32,
    /// The window's sequences are `seq_base + 1 ..= seq_base + max_offline_count`.
    pub seq_base: u64,
    /// Highest sequence posted so far.
    pub seq_high: u64,
}

impl Token {
    /// The sequences the device may use in the current window.
    pub fn window(&self) -> std::ops::RangeInclusive<u64> {
        self.seq_base + 1..=self.seq_base + u64::from(self.max_offline_count)
    }
}

/// The answer to `issue_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// `ok`, `exists` (the same token again), or why not.
    pub result: WriteResult,
    /// Present when the result is a success.
    pub token: Option<Token>,
    /// The per-token MAC key, for the device only. Present when the result is a success.
    pub key: Option<TokenKey>,
}

/// One offline spend, as the device records it and the phone or terminal uploads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineRecord {
    pub sequence: u64,
    pub amount: Amount,
    pub merchant_account_id: AccountId,
    pub device_time_ms: u64,
    pub mac: [u8; MAC_BYTES],
}

impl OfflineRecord {
    /// A record signed with the token key, as the device makes it. `asset_scale` is the scale of
    /// the token's asset (the MAC covers the amount in minor units).
    pub fn signed(
        key: &TokenKey,
        token_id: TokenId,
        sequence: u64,
        amount: Amount,
        asset_scale: u32,
        merchant_account_id: AccountId,
        device_time_ms: u64,
    ) -> Result<OfflineRecord, ParseError> {
        let mac = mac::record_mac(
            key,
            token_id,
            sequence,
            amount,
            asset_scale,
            merchant_account_id,
            device_time_ms,
        )?;
        Ok(OfflineRecord {
            sequence,
            amount,
            merchant_account_id,
            device_time_ms,
            mac,
        })
    }
}

/// The answer to `sync_offline_records`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// One per record, in request order: `ok` (posted now, or `replay` when it was already
    /// posted) or the exception's reason.
    pub results: Vec<WriteResult>,
    /// The re-issue: `ok` (allowance reset, or nothing asked), `sync_incomplete`,
    /// `token_not_active`, ...
    pub reissue: WriteResult,
    /// The token after the sync; `None` when it is unknown.
    pub token: Option<Token>,
    /// The wallet's account after the sync (for the phone's balance).
    pub account: Option<AccountRecord>,
}

/// A record that was not posted, with the reason. Kept by the ledger, never dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineException {
    pub sequence: u64,
    pub amount: Amount,
    pub merchant_account_id: AccountId,
    pub device_time_ms: u64,
    pub reason: ResultCode,
    pub timestamp_ns: u64,
}

/// The answer to `reconcile`: a device's report compared with the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    pub token: Token,
    /// The wallet's account.
    pub account: AccountRecord,
    /// The wallet's posted balance (credits − debits).
    pub ledger_balance: Amount,
    /// Device balance − ledger balance. Negative by the sum of the records the ledger has not
    /// seen yet when all is well.
    pub difference: Amount,
    /// The highest sequence the ledger posted for the token.
    pub ledger_last_sequence: u64,
    /// Sequences of the current window up to the device's last that the ledger has not posted:
    /// the records to upload (or to look for among the exceptions).
    pub missing_sequences: Vec<u64>,
    /// The device's last sequence is past its window or below what the ledger posted.
    pub device_sequence_out_of_window: bool,
}

/// One message of `watch_wallet`: the token and its wallet after a committed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletUpdate {
    pub token: Token,
    pub account: AccountRecord,
    /// credits − debits − debits pending (+ overdraft): what online payments may still spend.
    pub available_online: Amount,
    /// What is left of the token's hold: what the phone may still spend offline.
    pub offline_allowance: Amount,
    /// Commit time of the change that caused the update; 0 for the first message.
    pub timestamp_ns: u64,
}
