//! Checks that need no state. The API runs them to refuse bad input before it costs a Raft
//! round trip; the state machine runs them again, because the log is the only authority.

use super::limits::*;
use super::result::{ItemResult, ResultCode};
use super::types::*;

pub fn asset_code_valid(code: &str) -> bool {
    (1..=ASSET_CODE_LEN_MAX).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

pub fn asset(input: &AssetInput) -> Result<(), ResultCode> {
    if !asset_code_valid(&input.code) {
        return Err(ResultCode::AssetCodeInvalid);
    }
    if input.scale > u32::from(ASSET_SCALE_MAX) {
        return Err(ResultCode::AssetScaleOutOfRange);
    }
    Ok(())
}

pub fn account(input: &AccountInput) -> Result<(), ResultCode> {
    if input.id == 0 {
        return Err(ResultCode::IdMustNotBeZero);
    }
    if input.code == 0 {
        return Err(ResultCode::AccountCodeMustNotBeZero);
    }
    if input.debits_must_not_exceed_credits && input.credits_must_not_exceed_debits {
        return Err(ResultCode::FlagsAreMutuallyExclusive);
    }
    if input.overdraft_limit.is_some_and(|l| l.digits != 0) && !input.debits_must_not_exceed_credits {
        return Err(ResultCode::OverdraftLimitInvalid);
    }
    if !metadata_valid(&input.metadata) {
        return Err(ResultCode::MetadataInvalid);
    }
    if input.external_ref.as_ref().is_some_and(|r| !external_ref_valid(r)) {
        return Err(ResultCode::ExternalRefInvalid);
    }
    Ok(())
}

/// At most 16 entries, keys 1..=64 bytes, values at most 256 bytes (at creation and update).
pub fn metadata_valid(metadata: &std::collections::BTreeMap<String, String>) -> bool {
    metadata.len() <= METADATA_ENTRIES_MAX
        && metadata.iter().all(|(k, v)| (1..=METADATA_KEY_BYTES_MAX).contains(&k.len()) && v.len() <= METADATA_VALUE_BYTES_MAX)
}

/// 1..=128 bytes (at creation and rebind).
pub fn external_ref_valid(external_ref: &str) -> bool {
    (1..=EXTERNAL_REF_BYTES_MAX).contains(&external_ref.len())
}

/// A transfer's extras: bounded reference and metadata; only a posted transfer refunds.
pub fn transfer_extras(input: &TransferInput, extras: &TransferExtras) -> Result<(), ItemResult> {
    let details = &extras.details;
    if details.reference.len() > TRANSFER_REFERENCE_BYTES_MAX {
        return Err(ItemResult::new(ResultCode::ReferenceInvalid));
    }
    if !metadata_valid(&details.metadata) {
        return Err(ItemResult::new(ResultCode::MetadataInvalid));
    }
    if details.refund_of != 0 && input.kind != TransferKind::Posted {
        return Err(ItemResult::new(ResultCode::RefundKindInvalid));
    }
    Ok(())
}

pub fn idempotency_key(key: &str) -> bool {
    (1..=IDEMPOTENCY_KEY_BYTES_MAX).contains(&key.len())
}

pub fn transfer(input: &TransferInput) -> Result<(), ItemResult> {
    let fail = |code| Err(ItemResult::new(code));
    if input.id == 0 {
        return fail(ResultCode::IdMustNotBeZero);
    }
    if !idempotency_key(&input.idempotency_key) {
        return fail(ResultCode::IdempotencyKeyInvalid);
    }
    if input.timeout_ms > 0 && input.kind != TransferKind::Pending {
        return fail(ResultCode::TimeoutReservedForPending);
    }
    if input.timeout_ms > TIMEOUT_MS_MAX {
        return fail(ResultCode::TimeoutTooLarge);
    }
    if !input.post_amounts.is_empty() && input.kind != TransferKind::PostPending {
        return fail(ResultCode::PostAmountsMismatch);
    }
    match input.kind {
        TransferKind::Posted | TransferKind::Pending => {
            if input.pending_id != 0 {
                return fail(ResultCode::PendingIdInvalid);
            }
            if input.legs.is_empty() {
                return fail(ResultCode::LegsEmpty);
            }
            if input.legs.len() > TRANSFER_LEGS_MAX {
                return fail(ResultCode::LegsTooMany);
            }
            for (index, leg) in input.legs.iter().enumerate() {
                if leg.debit_account_id == 0 || leg.credit_account_id == 0 {
                    return Err(ItemResult::at_leg(ResultCode::IdMustNotBeZero, index));
                }
                if leg.debit_account_id == leg.credit_account_id {
                    return Err(ItemResult::at_leg(ResultCode::AccountsMustBeDifferent, index));
                }
                if leg.amount.digits == 0 {
                    return Err(ItemResult::at_leg(ResultCode::AmountZero, index));
                }
            }
        }
        TransferKind::PostPending | TransferKind::VoidPending => {
            if input.pending_id == 0 {
                return fail(ResultCode::PendingIdInvalid);
            }
            if !input.legs.is_empty() {
                return fail(ResultCode::LegsNotAllowed);
            }
            if input.post_amounts.len() > TRANSFER_LEGS_MAX {
                return fail(ResultCode::PostAmountsMismatch);
            }
        }
    }
    Ok(())
}

pub fn status_change(input: &StatusChangeInput) -> Result<(), ResultCode> {
    if input.account_id == 0 {
        return Err(ResultCode::IdMustNotBeZero);
    }
    if input.reason.len() > REASON_BYTES_MAX {
        return Err(ResultCode::ReasonInvalid);
    }
    Ok(())
}
