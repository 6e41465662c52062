//! Posting one accepted offline record: release its amount from the token's hold and post it
//! wallet -> merchant in the same step. Two legs of entries (leg 0: hold release wallet ->
//! clearing, leg 1: posting wallet -> merchant), so history replays and both the pending and
//! the posted totals stay balanced.

use std::io;

use super::types::*;
use crate::result::ResultCode;
use crate::store::{self, Store, Table};
use crate::types::*;

/// Checks everything first, then writes: a refusal changes nothing.
pub fn spend(
    store: &mut impl Store,
    token: &mut Token,
    amount_minor: u128,
    merchant_account_id: AccountId,
    transfer_id: TransferId,
    timestamp_ns: u64,
    entries: &mut Vec<AccountEntry>,
) -> io::Result<Result<(), ResultCode>> {
    if amount_minor > token.hold_remaining_minor {
        return Ok(Err(ResultCode::OfflineLimitExceeded));
    }
    if merchant_account_id == token.account_id || merchant_account_id == token.clearing_account_id {
        return Ok(Err(ResultCode::AccountsMustBeDifferent));
    }
    let Some(mut merchant) = store::get_account(store, merchant_account_id)? else {
        return Ok(Err(ResultCode::CreditAccountNotFound));
    };
    if merchant.asset != token.asset {
        return Ok(Err(ResultCode::AssetMismatch));
    }
    if let Err(code) = crate::account::check_credit(&merchant) {
        return Ok(Err(code));
    }
    let corrupt = |what| store::corruption(Table::WalletTokens, what);
    let mut wallet = store::get_account(store, token.account_id)?.ok_or_else(|| corrupt("missing wallet"))?;
    let mut clearing = store::get_account(store, token.clearing_account_id)?.ok_or_else(|| corrupt("missing clearing"))?;
    let mut hold = store::get_transfer(store, token.hold_id)?.ok_or_else(|| corrupt("missing hold"))?;
    let Some(credited) = merchant.balances.credits_posted.checked_add(amount_minor) else {
        return Ok(Err(ResultCode::OverflowsBalance));
    };
    let Some(debited) = wallet.balances.debits_posted.checked_add(amount_minor) else {
        return Ok(Err(ResultCode::OverflowsBalance));
    };
    // The merchant's own rule (credits_must_not_exceed_debits) holds for offline money too.
    merchant.balances.credits_posted = credited;
    if let Err(code) = crate::account::check_constraints(&merchant) {
        return Ok(Err(code));
    }
    // The money was reserved by the hold: a freeze after issue does not stop what was spent.
    let entry = |account_id, leg_index, kind, is_debit, balances_after| AccountEntry {
        account_id,
        timestamp_ns,
        transfer_id,
        leg_index,
        kind,
        is_debit,
        amount_minor,
        balances_after,
    };
    wallet.balances.debits_pending =
        wallet.balances.debits_pending.checked_sub(amount_minor).ok_or_else(|| corrupt("hold above wallet pending"))?;
    let wallet_released = wallet.balances;
    clearing.balances.credits_pending =
        clearing.balances.credits_pending.checked_sub(amount_minor).ok_or_else(|| corrupt("hold above clearing"))?;
    wallet.balances.debits_posted = debited;
    let new_entries = [
        entry(wallet.id, 0, EntryKind::VoidPending, true, wallet_released),
        entry(clearing.id, 0, EntryKind::VoidPending, false, clearing.balances),
        entry(wallet.id, 1, EntryKind::Posted, true, wallet.balances),
        entry(merchant.id, 1, EntryKind::Posted, false, merchant.balances),
    ];
    for e in &new_entries {
        store::put_entry(store, e);
    }
    entries.extend(new_entries);
    for account in [&wallet, &clearing, &merchant] {
        store::put_account(store, account);
    }
    // The hold now carries only what is left, so a later void or release frees exactly that.
    hold.legs[0].amount_minor -= amount_minor;
    store::put_transfer(store, &hold);
    store::put_transfer(
        store,
        &Transfer {
            id: transfer_id,
            idempotency_key: format!("wallet:{}:spend:{}", token.id, transfer_id),
            asset: token.asset.clone(),
            kind: TransferKind::Posted,
            legs: vec![Leg { debit_account_id: wallet.id, credit_account_id: merchant.id, amount_minor }],
            pending_id: 0,
            timeout_ms: 0,
            code: 0,
            timestamp_ns,
            pending_state: PendingState::None,
            expires_at_ns: 0,
            owner: String::new(),
        },
    );
    token.hold_remaining_minor -= amount_minor;
    token.posted_total_minor = token.posted_total_minor.saturating_add(amount_minor);
    Ok(Ok(()))
}
