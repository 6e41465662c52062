//! Wallet records (stored) and command inputs (proposed). Postcard: append fields only.

use serde::{Deserialize, Serialize};

use crate::amount::DecimalInput;
use crate::result::ResultCode;
use crate::types::{AccountId, TransferId};

pub type TokenId = u128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenStatus {
    Active,
    /// No new allowance; records already made may still arrive until the hold is released.
    Revoked,
    /// The hold is gone (expired + grace, or revoked and released). Records become exceptions.
    Released,
}

/// A token: an offline allowance of one wallet on one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub id: TokenId,
    pub account_id: AccountId,
    pub clearing_account_id: AccountId,
    pub device_id: String,
    pub asset: String,
    pub offline_limit_minor: u128,
    pub max_offline_count: u32,
    pub issued_at_ns: u64,
    pub expires_at_ns: u64,
    /// When the hold is released if no complete sync came: expiry + grace.
    pub release_at_ns: u64,
    pub status: TokenStatus,
    pub revoke_reason: String,
    /// The current hold (a pending transfer wallet -> clearing) and what is left of it.
    pub hold_id: TransferId,
    pub hold_remaining_minor: u128,
    /// The hold placed for this window; below the limit when the balance capped it.
    pub hold_placed_minor: u128,
    /// Re-issues so far: the window number.
    pub generation: u32,
    /// Sequences of this window are `seq_base + 1 ..= seq_base + max_offline_count`.
    pub seq_base: u64,
    /// Highest sequence posted so far.
    pub seq_high: u64,
    pub window_count: u32,
    pub posted_total_minor: u128,
    pub validity_ms: u64,
}

/// One offline record as stored once posted (the de-duplication key is (token, sequence)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedRecord {
    pub token_id: TokenId,
    pub sequence: u64,
    pub amount_minor: u128,
    pub merchant_account_id: AccountId,
    pub device_time_ms: u64,
    pub mac: [u8; 32],
    pub transfer_id: TransferId,
    pub timestamp_ns: u64,
}

/// A record that was not posted, with the reason. Kept for the operator; never dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletException {
    pub token_id: TokenId,
    pub sequence: u64,
    pub amount: DecimalInput,
    pub merchant_account_id: AccountId,
    pub device_time_ms: u64,
    pub reason: ResultCode,
    pub timestamp_ns: u64,
}

// ---- inputs ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueTokenInput {
    pub token_id: TokenId,
    pub account_id: AccountId,
    pub clearing_account_id: AccountId,
    pub device_id: String,
    pub offline_limit: DecimalInput,
    pub max_offline_count: u32,
    /// 0: the default (1 day).
    pub validity_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineRecordInput {
    pub sequence: u64,
    pub amount: DecimalInput,
    pub merchant_account_id: AccountId,
    pub device_time_ms: u64,
    pub mac: [u8; 32],
    /// The proposing leader's verdict on the MAC (apply never holds the key).
    pub mac_valid: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncInput {
    pub token_id: TokenId,
    pub records: Vec<OfflineRecordInput>,
    /// Phone-initiated sync: the phone's last sequence of this window. When every sequence up to
    /// it is posted the token is re-issued (allowance reset to the limit). 0: no re-issue
    /// (terminal upload).
    pub reissue_through_sequence: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeTokenInput {
    pub token_id: TokenId,
    pub reason: String,
}
