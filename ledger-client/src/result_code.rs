//! `ResultCode`: a mirror of the proto enum `ledger.v1.ResultCode` with snake_case names and an
//! `Unrecognized` arm, so a newer server's code is reported as a number instead of being folded
//! into OK (prost's `code()` getter maps unknown values to the default, which is OK: dangerous
//! for a ledger; since API revision 2 the default is RESULT_CODE_UNSPECIFIED, still no success).
//! A unit test checks every proto value maps to the same number and name.

use std::fmt;

macro_rules! result_codes {
    ($($variant:ident = $value:literal => $name:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ResultCode {
            $($variant,)*
            /// A value this client does not know (a newer server). Never treated as success.
            Unrecognized(i32),
        }

        impl ResultCode {
            pub fn from_i32(value: i32) -> ResultCode {
                match value {
                    $($value => ResultCode::$variant,)*
                    other => ResultCode::Unrecognized(other),
                }
            }

            pub fn as_i32(self) -> i32 {
                match self {
                    $(ResultCode::$variant => $value,)*
                    ResultCode::Unrecognized(other) => other,
                }
            }

            /// The proto enum name lowercased, e.g. `exceeds_credits`; `unrecognized` for
            /// values this client does not know (`Display` adds the number).
            pub fn name(self) -> &'static str {
                match self {
                    $(ResultCode::$variant => $name,)*
                    ResultCode::Unrecognized(_) => "unrecognized",
                }
            }

            pub fn from_name(name: &str) -> Option<ResultCode> {
                match name {
                    $($name => Some(ResultCode::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

result_codes! {
    // Never sent by the node (API revision 2): a result with an unset code. Not a success.
    Unspecified = 0 => "result_code_unspecified",
    // 62 since API revision 2 (it was 0).
    Ok = 62 => "ok",
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
}

impl ResultCode {
    /// OK or EXISTS: the object is there as asked (EXISTS is an idempotent success).
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

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_proto::api;

    #[test]
    fn mirrors_every_proto_value() {
        let mut known = 0;
        for value in 0..1000 {
            let Ok(proto) = api::ResultCode::try_from(value) else {
                assert!(
                    matches!(ResultCode::from_i32(value), ResultCode::Unrecognized(v) if v == value)
                );
                continue;
            };
            known += 1;
            let mirror = ResultCode::from_i32(value);
            assert_eq!(mirror.as_i32(), value);
            assert_eq!(mirror.name(), proto.as_str_name().to_ascii_lowercase());
            assert_eq!(ResultCode::from_name(mirror.name()), Some(mirror));
        }
        assert_eq!(known, 63);
    }

    #[test]
    fn names_and_success() {
        assert_eq!(ResultCode::ExceedsCredits.name(), "exceeds_credits");
        assert_eq!(ResultCode::Ok.to_string(), "ok");
        assert_eq!(ResultCode::from_i32(4242).to_string(), "unrecognized_4242");
        assert!(ResultCode::Ok.is_success());
        assert!(ResultCode::Exists.is_success());
        assert!(!ResultCode::ExistsWithDifferentFields.is_success());
        assert!(!ResultCode::Unrecognized(99).is_success());
        // An unset code (0) is never read as success (API revision 2).
        assert_eq!(ResultCode::from_i32(0), ResultCode::Unspecified);
        assert!(!ResultCode::from_i32(0).is_success());
        assert_eq!(ResultCode::Ok.as_i32(), 62);
    }
}
