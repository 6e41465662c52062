//! Result codes: one per way a write can end, like a database error code.
//! The numbers never change. They are the wire numbers of `ledger.v1.ResultCode` except `Ok`:
//! on the wire OK is 62 since API revision 2 (0 is RESULT_CODE_UNSPECIFIED there); the API maps
//! (`api::convert::result_code`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u16)]
pub enum ResultCode {
    Ok = 0,
    Exists = 1,
    ExistsWithDifferentFields = 2,
    IdMustNotBeZero = 3,
    IdInvalid = 4,
    IdAlreadyUsed = 5,
    IdempotencyKeyConflict = 6,
    IdempotencyKeyInvalid = 7,
    AssetNotFound = 8,
    AssetCodeInvalid = 9,
    AssetScaleOutOfRange = 10,
    AccountNotFound = 11,
    DebitAccountNotFound = 12,
    CreditAccountNotFound = 13,
    AssetMismatch = 14,
    AccountsMustBeDifferent = 15,
    LegsEmpty = 16,
    LegsTooMany = 17,
    AmountInvalid = 18,
    AmountZero = 19,
    AmountNegative = 20,
    AmountScaleExceeded = 21,
    AmountOverflow = 22,
    AccountFrozen = 23,
    AccountClosed = 24,
    ExceedsCredits = 25,
    ExceedsDebits = 26,
    OverflowsBalance = 27,
    PendingTransferNotFound = 28,
    PendingTransferNotPending = 29,
    PendingTransferAlreadyPosted = 30,
    PendingTransferAlreadyVoided = 31,
    PendingTransferExpired = 32,
    PostAmountExceedsPending = 33,
    PostAmountsMismatch = 34,
    TimeoutReservedForPending = 35,
    FlagsAreMutuallyExclusive = 36,
    MetadataInvalid = 37,
    ExternalRefInvalid = 38,
    ExternalRefAlreadyUsed = 39,
    BalanceNotZero = 40,
    AccountCodeMustNotBeZero = 41,
    OverdraftLimitInvalid = 42,
    AccountStatusInvalid = 43,
    LegsNotAllowed = 44,
    PendingIdInvalid = 45,
    TimeoutTooLarge = 46,
    ReasonInvalid = 47,
    KindInvalid = 48,
    TokenNotFound = 49,
    MacInvalid = 50,
    SequenceReused = 51,
    OfflineLimitExceeded = 52,
    OfflineCountExceeded = 53,
    TokenNotActive = 54,
    SyncIncomplete = 55,
    DeviceIdInvalid = 56,
    DebitLimitExceeded = 57,
    DailyDebitAmountExceeded = 58,
    DailyDebitCountExceeded = 59,
    LimitInvalid = 60,
    Blocked = 61,
}

impl ResultCode {
    pub fn as_u32(self) -> u32 {
        self as u16 as u32
    }

    /// `Ok` and `Exists` leave the ledger as the caller wanted it.
    pub fn is_success(self) -> bool {
        matches!(self, ResultCode::Ok | ResultCode::Exists)
    }
}

/// The result of one item of a write command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemResult {
    pub code: ResultCode,
    /// The leg that broke a rule, for transfers.
    pub leg_index: Option<u8>,
    /// Timestamp of the created (or, for EXISTS and replays, the original) object; 0 if none.
    pub timestamp_ns: u64,
    /// The result was recorded before for the same idempotency key and content.
    pub replay: bool,
    /// For transfers: the transfer id bound to the idempotency key.
    pub id: u128,
}

impl ItemResult {
    pub fn new(code: ResultCode) -> Self {
        ItemResult { code, leg_index: None, timestamp_ns: 0, replay: false, id: 0 }
    }
    pub fn at_leg(code: ResultCode, leg_index: usize) -> Self {
        debug_assert!(leg_index < super::limits::TRANSFER_LEGS_MAX);
        ItemResult { leg_index: Some(leg_index as u8), ..ItemResult::new(code) }
    }
}
