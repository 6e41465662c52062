//! Result codes: one per way a write can end, like a database error code. One enum for the
//! node and the client: the rules produce it, the node sends it, the client reads it back.
//!
//! The numbers never change (`as_u32`: persisted in idempotency records and journaled). They are
//! the wire numbers of `ledger.v1.ResultCode` except `Ok` and `Unspecified`, which trade places:
//! on the wire OK is 62 since API revision 2 and 0 is RESULT_CODE_UNSPECIFIED. The one mapping
//! to and from the proto enum is `ledger_proto::convert::{result_code_to_wire,
//! result_code_from_wire}`.
//!
//! Two values the rules never produce: `Unspecified` (a result whose code was not set) and
//! `Unrecognized(n)` (a wire number this build does not know, e.g. a newer server's new failure:
//! never folded into OK, the way prost's getter would). Neither is a success. Both come after
//! every rule's code, so the postcard encoding of the codes the ledger stores is unchanged.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! result_codes {
    ($($variant:ident = $value:literal => $name:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum ResultCode {
            $($variant,)*
            /// Never produced by the rules: a result with an unset code (wire 0). Not a success.
            Unspecified,
            /// Never produced by the rules: a wire number this build does not know. Not a success.
            Unrecognized(i32),
        }

        impl ResultCode {
            /// Every code the rules can produce, in number order (`Unspecified` and
            /// `Unrecognized` are not among them).
            pub const ALL: &'static [ResultCode] = &[$(ResultCode::$variant,)*];

            /// The ledger's own number (persisted, journaled). `Unspecified` is 62 (it trades
            /// places with `Ok` on the wire); `Unrecognized(n)` is `n`.
            pub fn as_u32(self) -> u32 {
                match self {
                    $(ResultCode::$variant => $value,)*
                    ResultCode::Unspecified => 62,
                    ResultCode::Unrecognized(other) => other as u32,
                }
            }

            /// The inverse of `as_u32` for the rules' codes and `Unspecified`; any other number
            /// is `Unrecognized`.
            pub fn from_u32(value: u32) -> ResultCode {
                match value {
                    $($value => ResultCode::$variant,)*
                    62 => ResultCode::Unspecified,
                    other => ResultCode::Unrecognized(other as i32),
                }
            }

            /// The proto enum name lowercased, e.g. `exceeds_credits` (`result_code_unspecified`
            /// for `Unspecified`); `unrecognized` for numbers this build does not know
            /// (`Display` adds the number).
            pub fn name(self) -> &'static str {
                match self {
                    $(ResultCode::$variant => $name,)*
                    ResultCode::Unspecified => "result_code_unspecified",
                    ResultCode::Unrecognized(_) => "unrecognized",
                }
            }

            /// The inverse of `name` (`unrecognized` has no inverse).
            pub fn from_name(name: &str) -> Option<ResultCode> {
                match name {
                    $($name => Some(ResultCode::$variant),)*
                    "result_code_unspecified" => Some(ResultCode::Unspecified),
                    _ => None,
                }
            }
        }
    };
}

result_codes! {
    Ok = 0 => "ok",
    Exists = 1 => "exists",
    ExistsWithDifferentFields = 2 => "exists_with_different_fields",
    IdMustNotBeZero = 3 => "id_must_not_be_zero",
    IdInvalid = 4 => "id_invalid",
    IdAlreadyUsed = 5 => "id_already_used",
    IdempotencyKeyConflict = 6 => "idempotency_key_conflict",
    IdempotencyKeyInvalid = 7 => "idempotency_key_invalid",
    AssetNotFound = 8 => "asset_not_found",
    AssetCodeInvalid = 9 => "asset_code_invalid",
    AssetScaleOutOfRange = 10 => "asset_scale_out_of_range",
    AccountNotFound = 11 => "account_not_found",
    DebitAccountNotFound = 12 => "debit_account_not_found",
    CreditAccountNotFound = 13 => "credit_account_not_found",
    AssetMismatch = 14 => "asset_mismatch",
    AccountsMustBeDifferent = 15 => "accounts_must_be_different",
    LegsEmpty = 16 => "legs_empty",
    LegsTooMany = 17 => "legs_too_many",
    AmountInvalid = 18 => "amount_invalid",
    AmountZero = 19 => "amount_zero",
    AmountNegative = 20 => "amount_negative",
    AmountScaleExceeded = 21 => "amount_scale_exceeded",
    AmountOverflow = 22 => "amount_overflow",
    AccountFrozen = 23 => "account_frozen",
    AccountClosed = 24 => "account_closed",
    ExceedsCredits = 25 => "exceeds_credits",
    ExceedsDebits = 26 => "exceeds_debits",
    OverflowsBalance = 27 => "overflows_balance",
    PendingTransferNotFound = 28 => "pending_transfer_not_found",
    PendingTransferNotPending = 29 => "pending_transfer_not_pending",
    PendingTransferAlreadyPosted = 30 => "pending_transfer_already_posted",
    PendingTransferAlreadyVoided = 31 => "pending_transfer_already_voided",
    PendingTransferExpired = 32 => "pending_transfer_expired",
    PostAmountExceedsPending = 33 => "post_amount_exceeds_pending",
    PostAmountsMismatch = 34 => "post_amounts_mismatch",
    TimeoutReservedForPending = 35 => "timeout_reserved_for_pending",
    FlagsAreMutuallyExclusive = 36 => "flags_are_mutually_exclusive",
    MetadataInvalid = 37 => "metadata_invalid",
    ExternalRefInvalid = 38 => "external_ref_invalid",
    ExternalRefAlreadyUsed = 39 => "external_ref_already_used",
    BalanceNotZero = 40 => "balance_not_zero",
    AccountCodeMustNotBeZero = 41 => "account_code_must_not_be_zero",
    OverdraftLimitInvalid = 42 => "overdraft_limit_invalid",
    AccountStatusInvalid = 43 => "account_status_invalid",
    LegsNotAllowed = 44 => "legs_not_allowed",
    PendingIdInvalid = 45 => "pending_id_invalid",
    TimeoutTooLarge = 46 => "timeout_too_large",
    ReasonInvalid = 47 => "reason_invalid",
    KindInvalid = 48 => "kind_invalid",
    TokenNotFound = 49 => "token_not_found",
    MacInvalid = 50 => "mac_invalid",
    SequenceReused = 51 => "sequence_reused",
    OfflineLimitExceeded = 52 => "offline_limit_exceeded",
    OfflineCountExceeded = 53 => "offline_count_exceeded",
    TokenNotActive = 54 => "token_not_active",
    SyncIncomplete = 55 => "sync_incomplete",
    DeviceIdInvalid = 56 => "device_id_invalid",
    DebitLimitExceeded = 57 => "debit_limit_exceeded",
    DailyDebitAmountExceeded = 58 => "daily_debit_amount_exceeded",
    DailyDebitCountExceeded = 59 => "daily_debit_count_exceeded",
    LimitInvalid = 60 => "limit_invalid",
    Blocked = 61 => "blocked",
    // 62 is the wire's OK (and `Unspecified` here): the rules' numbers skip it.
    OverdraftBelowDrawn = 63 => "overdraft_below_drawn",
    ExternalRefNotBound = 64 => "external_ref_not_bound",
    AccountHasExternalRef = 65 => "account_has_external_ref",
    RiskAmountExceeded = 66 => "risk_amount_exceeded",
    RiskCountExceeded = 67 => "risk_count_exceeded",
    RiskBalanceExceeded = 68 => "risk_balance_exceeded",
    RefundOriginalNotFound = 69 => "refund_original_not_found",
    RefundOriginalNotPosted = 70 => "refund_original_not_posted",
    RefundAssetMismatch = 71 => "refund_asset_mismatch",
    RefundAccountsMismatch = 72 => "refund_accounts_mismatch",
    RefundExceedsRefundable = 73 => "refund_exceeds_refundable",
    RefundKindInvalid = 74 => "refund_kind_invalid",
    ReferenceInvalid = 75 => "reference_invalid",
    LinkedEventFailed = 76 => "linked_event_failed",
    LinkedEventChainOpen = 77 => "linked_event_chain_open",
}

impl ResultCode {
    /// `Ok` and `Exists` leave the ledger as the caller wanted it (EXISTS is an idempotent
    /// success). `Unspecified` and `Unrecognized` never are.
    pub fn is_success(self) -> bool {
        matches!(self, ResultCode::Ok | ResultCode::Exists)
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResultCode::Unrecognized(value) => write!(f, "unrecognized_{value}"),
            known => f.write_str(known.name()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_round_trip() {
        assert_eq!(ResultCode::ALL.len(), 77);
        for (i, code) in ResultCode::ALL.iter().enumerate() {
            // Dense and in order, skipping 62 (the wire's OK, `Unspecified` here).
            let number = if i < 62 { i as u32 } else { i as u32 + 1 };
            assert_eq!(code.as_u32(), number, "{code:?}: numbers are dense and in order");
            assert_eq!(ResultCode::from_u32(code.as_u32()), *code);
            assert_eq!(ResultCode::from_name(code.name()), Some(*code));
            // The postcard encoding (variant index) is the number: stored codes stay readable.
            assert_eq!(postcard::to_allocvec(code).unwrap(), vec![i as u8]);
        }
        for extra in [ResultCode::Unspecified, ResultCode::Unrecognized(4242)] {
            assert_eq!(ResultCode::from_u32(extra.as_u32()), extra);
            assert!(!extra.is_success());
        }
        assert_eq!(ResultCode::from_name("result_code_unspecified"), Some(ResultCode::Unspecified));
        assert_eq!(ResultCode::from_name("unrecognized"), None);
    }

    #[test]
    fn names_and_success() {
        assert_eq!(ResultCode::ExceedsCredits.name(), "exceeds_credits");
        assert_eq!(ResultCode::Ok.to_string(), "ok");
        assert_eq!(ResultCode::Unrecognized(4242).to_string(), "unrecognized_4242");
        assert!(ResultCode::Ok.is_success());
        assert!(ResultCode::Exists.is_success());
        assert!(!ResultCode::ExistsWithDifferentFields.is_success());
    }
}
