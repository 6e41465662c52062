//! Changing an account's settings after creation: its metadata (bank account change), its
//! overdraft limit (credit line adjustment) and its code (a tier change after real-name
//! verification). One item changes one account in one step of the state machine, so a transfer
//! in the same log sees the settings before or after the change, never a mix.
//!
//! Never changes a balance, the asset, the flags, the status or the external reference (that is
//! `rebind`). A closed account is final: refused. A frozen one may be changed.

use std::collections::BTreeMap;
use std::io;

use serde::{Deserialize, Serialize};

use super::history::{AccountChange, AccountSettings, ChangeKind};
use crate::amount::DecimalInput;
use crate::clock::Clock;
use crate::limits::REASON_BYTES_MAX;
use crate::result::{ItemResult, ResultCode};
use crate::store;
use crate::types::{Account, AccountId, AccountStatus};

/// One account's new settings; an absent field keeps its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountUpdateInput {
    pub account_id: AccountId,
    /// The whole new metadata (replaces the old map; `Some(empty)` clears it).
    pub metadata: Option<BTreeMap<String, String>>,
    /// Only on an account with `debits_must_not_exceed_credits`; never below what it has drawn.
    pub overdraft_limit: Option<DecimalInput>,
    pub code: Option<u32>,
    pub reason: String,
    /// Who asked (`name (role)`), set by the API; empty when authentication is off.
    pub actor: String,
}

/// Stateless checks (the API runs them before proposing).
pub fn check(input: &AccountUpdateInput) -> Result<(), ResultCode> {
    if input.account_id == 0 {
        return Err(ResultCode::IdMustNotBeZero);
    }
    if input.code == Some(0) {
        return Err(ResultCode::AccountCodeMustNotBeZero);
    }
    if input.metadata.as_ref().is_some_and(|m| !crate::validate::metadata_valid(m)) {
        return Err(ResultCode::MetadataInvalid);
    }
    if input.reason.len() > REASON_BYTES_MAX {
        return Err(ResultCode::ReasonInvalid);
    }
    Ok(())
}

/// The result, and the change when the account changed (for its journal line; its history row
/// is written here). Asking for the settings the account already has succeeds and changes
/// nothing (timestamp 0), so a retried update is not mistaken for a failure.
pub fn update(store: &mut impl store::Store, input: &AccountUpdateInput, clock: &mut Clock) -> io::Result<(ItemResult, Option<AccountChange>)> {
    let result = |code| ItemResult { id: input.account_id, ..ItemResult::new(code) };
    if let Err(code) = check(input) {
        return Ok((result(code), None));
    }
    let Some(mut account) = store::get_account(store, input.account_id)? else {
        return Ok((result(ResultCode::AccountNotFound), None));
    };
    if account.status == AccountStatus::Closed {
        return Ok((result(ResultCode::AccountClosed), None));
    }
    let before = AccountSettings::of(&account);
    let after = match new_settings(store, &account, input)? {
        Ok(after) => after,
        Err(code) => return Ok((result(code), None)),
    };
    if after == before {
        return Ok((result(ResultCode::Ok), None));
    }
    account.code = after.code;
    account.overdraft_limit_minor = after.overdraft_limit_minor;
    account.metadata = after.metadata.clone();
    let timestamp_ns = clock.tick();
    store::put_account(store, &account);
    let change = AccountChange {
        account_id: account.id,
        timestamp_ns,
        actor: input.actor.clone(),
        reason: input.reason.clone(),
        kind: ChangeKind::Settings { before, after },
    };
    super::history::record(store, &change);
    Ok((ItemResult { timestamp_ns, ..result(ResultCode::Ok) }, Some(change)))
}

/// The settings after the update, or why not.
fn new_settings(store: &impl store::ReadStore, account: &Account, input: &AccountUpdateInput) -> io::Result<Result<AccountSettings, ResultCode>> {
    let mut after = AccountSettings::of(account);
    if let Some(code) = input.code {
        after.code = code;
    }
    if let Some(metadata) = &input.metadata {
        after.metadata = metadata.clone();
    }
    if let Some(limit) = input.overdraft_limit {
        let Some(asset) = store::get_asset(store, &account.asset)? else {
            return Err(store::corruption(store::Table::Assets, "an account names a missing asset"));
        };
        let Ok(minor) = limit.to_minor(asset.scale) else { return Ok(Err(ResultCode::OverdraftLimitInvalid)) };
        if minor != 0 && !account.debits_must_not_exceed_credits {
            return Ok(Err(ResultCode::OverdraftLimitInvalid));
        }
        // What the account has drawn (debits, held ones included, beyond its credits) must stay
        // covered: the balance rule a transfer checks must still hold after the change.
        let lowered = Account { overdraft_limit_minor: minor, ..account.clone() };
        if crate::account::check_constraints(&lowered).is_err() {
            return Ok(Err(ResultCode::OverdraftBelowDrawn));
        }
        after.overdraft_limit_minor = minor;
    }
    Ok(Ok(after))
}
