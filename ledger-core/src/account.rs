//! Creating accounts and changing their status (active, frozen, closed); changing their
//! settings afterwards (`update`), moving their external references (`rebind`), and the history
//! of those changes (`history`).

pub mod history;
pub mod rebind;
pub mod update;

use std::io;

use super::clock::Clock;
use super::result::{ItemResult, ResultCode};
use super::store::{self, Store, Table};
use super::types::*;
use super::validate;

/// The result, and the account with its asset's scale when this item created it (for its
/// journal line).
pub fn create(
    store: &mut impl Store,
    input: &AccountInput,
    clock: &mut Clock,
) -> io::Result<(ItemResult, Option<(Account, u8)>)> {
    let refuse = |code| Ok((ItemResult::new(code), None));
    if let Err(code) = validate::account(input) {
        return refuse(code);
    }
    let Some(asset) = store::get_asset(store, &input.asset)? else {
        return refuse(ResultCode::AssetNotFound);
    };
    let overdraft_limit_minor = match input.overdraft_limit.map(|l| l.to_minor(asset.scale)).transpose() {
        Ok(limit) => limit.unwrap_or(0),
        Err(_) => return refuse(ResultCode::OverdraftLimitInvalid),
    };
    if let Some(existing) = store::get_account(store, input.id)? {
        let same = existing.asset == input.asset
            && existing.code == input.code
            && existing.debits_must_not_exceed_credits == input.debits_must_not_exceed_credits
            && existing.credits_must_not_exceed_debits == input.credits_must_not_exceed_debits
            && existing.overdraft_limit_minor == overdraft_limit_minor
            && existing.metadata == input.metadata
            && existing.external_ref == input.external_ref;
        let code = if same { ResultCode::Exists } else { ResultCode::ExistsWithDifferentFields };
        return Ok((ItemResult { timestamp_ns: existing.timestamp_ns, id: input.id, ..ItemResult::new(code) }, None));
    }
    if let Some(external_ref) = &input.external_ref {
        if store::account_id_by_external_ref(store, external_ref)?.is_some() {
            return refuse(ResultCode::ExternalRefAlreadyUsed);
        }
    }
    let account = Account {
        id: input.id,
        asset: input.asset.clone(),
        code: input.code,
        debits_must_not_exceed_credits: input.debits_must_not_exceed_credits,
        credits_must_not_exceed_debits: input.credits_must_not_exceed_debits,
        overdraft_limit_minor,
        metadata: input.metadata.clone(),
        external_ref: input.external_ref.clone(),
        status: AccountStatus::Active,
        status_reason: String::new(),
        balances: Balances::default(),
        timestamp_ns: clock.tick(),
    };
    if let Some(external_ref) = &account.external_ref {
        store.put(Table::ExternalRefs, external_ref.as_bytes(), store::encode(&account.id));
    }
    store::put_account(store, &account);
    let result = ItemResult { timestamp_ns: account.timestamp_ns, id: account.id, ..ItemResult::new(ResultCode::Ok) };
    Ok((result, Some((account, asset.scale))))
}

/// The result, and the account as written when its status changed (for its journal line).
pub fn set_status(
    store: &mut impl Store,
    input: &StatusChangeInput,
    clock: &mut Clock,
) -> io::Result<(ItemResult, Option<Account>)> {
    if let Err(code) = validate::status_change(input) {
        return Ok((ItemResult::new(code), None));
    }
    let Some(mut account) = store::get_account(store, input.account_id)? else {
        return Ok((ItemResult::new(ResultCode::AccountNotFound), None));
    };
    let result = |code| ItemResult { id: input.account_id, ..ItemResult::new(code) };
    // Asking for the status the account already has changes nothing and succeeds, so a retried
    // freeze or close is not mistaken for a failure (timestamp_ns stays 0: nothing happened).
    if account.status == input.status {
        return Ok((result(ResultCode::Ok), None));
    }
    if account.status == AccountStatus::Closed {
        return Ok((result(ResultCode::AccountClosed), None));
    }
    if input.status == AccountStatus::Closed {
        let b = account.balances;
        if b.debits_posted != b.credits_posted || b.debits_pending != 0 || b.credits_pending != 0 {
            return Ok((result(ResultCode::BalanceNotZero), None));
        }
    }
    account.status = input.status;
    account.status_reason = input.reason.clone();
    let timestamp_ns = clock.tick();
    store::put_account(store, &account);
    Ok((ItemResult { timestamp_ns, ..result(ResultCode::Ok) }, Some(account)))
}

/// Whether the account may take a debit now.
pub fn check_debit(account: &Account) -> Result<(), ResultCode> {
    match account.status {
        AccountStatus::Active => Ok(()),
        AccountStatus::Frozen => Err(ResultCode::AccountFrozen),
        AccountStatus::Closed => Err(ResultCode::AccountClosed),
    }
}

/// Whether the account may take a credit now (frozen accounts still receive).
pub fn check_credit(account: &Account) -> Result<(), ResultCode> {
    match account.status {
        AccountStatus::Active | AccountStatus::Frozen => Ok(()),
        AccountStatus::Closed => Err(ResultCode::AccountClosed),
    }
}

/// The account's balance constraints after a change: debits within credits (plus overdraft),
/// or credits within debits.
pub fn check_constraints(account: &Account) -> Result<(), ResultCode> {
    check_balances(account, &account.balances)
}

/// `check_constraints` of the account with these balances instead of its own.
pub fn check_balances(account: &Account, b: &Balances) -> Result<(), ResultCode> {
    if account.debits_must_not_exceed_credits {
        let debits = b.debits_posted.checked_add(b.debits_pending).ok_or(ResultCode::OverflowsBalance)?;
        let allowed = b.credits_posted.saturating_add(account.overdraft_limit_minor);
        if debits > allowed {
            return Err(ResultCode::ExceedsCredits);
        }
    }
    if account.credits_must_not_exceed_debits {
        let credits = b.credits_posted.checked_add(b.credits_pending).ok_or(ResultCode::OverflowsBalance)?;
        if credits > b.debits_posted {
            return Err(ResultCode::ExceedsDebits);
        }
    }
    Ok(())
}
