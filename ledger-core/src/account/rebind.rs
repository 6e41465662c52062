//! Moving an external reference (the phone number a wallet is bound to) to another account, or
//! releasing it so it can be bound again (a number given up, or recycled after its account
//! closed). A reference names at most one account at any time, so one number is never bound to
//! two open accounts: the `external_refs` index and each account's `external_ref` change together
//! in one step.
//!
//! The caller names where the reference is now (`from_account_id`, 0: unbound) as a guard, so a
//! rebind decided on a stale read is refused instead of taking the number from someone else. A
//! rebind whose result already holds (the reference is on `to_account_id`, or unbound for a
//! release) succeeds without a change, so a retry is safe.

use std::io;

use serde::{Deserialize, Serialize};

use super::history::{AccountChange, ChangeKind};
use crate::clock::Clock;
use crate::limits::REASON_BYTES_MAX;
use crate::result::{ItemResult, ResultCode};
use crate::store::{self, Store, Table};
use crate::types::{Account, AccountId, AccountStatus};
use crate::validate;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebindInput {
    pub external_ref: String,
    /// The account the reference is bound to now (open or closed); 0: it is bound to none.
    pub from_account_id: AccountId,
    /// The account to bind it to (open, without a reference of its own); 0: release it.
    pub to_account_id: AccountId,
    pub reason: String,
    /// Who asked (`name (role)`), set by the API; empty when authentication is off.
    pub actor: String,
}

/// What one rebind did, for its journal line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebound {
    pub external_ref: String,
    pub from_account_id: AccountId,
    pub to_account_id: AccountId,
    pub timestamp_ns: u64,
}

/// Stateless checks (the API runs them before proposing).
pub fn check(input: &RebindInput) -> Result<(), ResultCode> {
    if !validate::external_ref_valid(&input.external_ref) {
        return Err(ResultCode::ExternalRefInvalid);
    }
    if input.from_account_id == input.to_account_id {
        return Err(ResultCode::AccountsMustBeDifferent);
    }
    if input.reason.len() > REASON_BYTES_MAX {
        return Err(ResultCode::ReasonInvalid);
    }
    Ok(())
}

pub fn rebind(store: &mut impl Store, input: &RebindInput, clock: &mut Clock) -> io::Result<(ItemResult, Option<Rebound>)> {
    let named = if input.to_account_id != 0 { input.to_account_id } else { input.from_account_id };
    let result = |code| ItemResult { id: named, ..ItemResult::new(code) };
    if let Err(code) = check(input) {
        return Ok((result(code), None));
    }
    let current = store::account_id_by_external_ref(store, &input.external_ref)?;
    // Already where it was asked to be (a retry of an applied rebind): success, nothing changes
    // (timestamp 0), so clients may retry a rebind whose outcome they did not learn.
    if current == (input.to_account_id != 0).then_some(input.to_account_id) {
        return Ok((result(ResultCode::Ok), None));
    }
    match current {
        None if input.from_account_id != 0 => return Ok((result(ResultCode::ExternalRefNotBound), None)),
        Some(holder) if holder != input.from_account_id => return Ok((result(ResultCode::ExternalRefAlreadyUsed), None)),
        _ => {}
    }
    let to = match target(store, input.to_account_id)? {
        Ok(to) => to,
        Err(code) => return Ok((result(code), None)),
    };
    let from = match input.from_account_id {
        0 => None,
        id => Some(store::get_account(store, id)?.ok_or_else(|| store::corruption(Table::ExternalRefs, "a reference names a missing account"))?),
    };
    let timestamp_ns = clock.tick();
    let change = |account: &Account, after: Option<String>, other_account_id| AccountChange {
        account_id: account.id,
        timestamp_ns,
        actor: input.actor.clone(),
        reason: input.reason.clone(),
        kind: ChangeKind::ExternalRef { before: account.external_ref.clone(), after, other_account_id },
    };
    if from.as_ref().is_some_and(|f| f.external_ref.as_deref() != Some(input.external_ref.as_str())) {
        return Err(store::corruption(Table::ExternalRefs, "a reference's account does not name it"));
    }
    if let Some(mut from) = from {
        super::history::record(store, &change(&from, None, input.to_account_id));
        from.external_ref = None;
        store::put_account(store, &from);
    }
    match to {
        Some(mut to) => {
            super::history::record(store, &change(&to, Some(input.external_ref.clone()), input.from_account_id));
            to.external_ref = Some(input.external_ref.clone());
            store::put_account(store, &to);
            store.put(Table::ExternalRefs, input.external_ref.as_bytes(), store::encode(&to.id));
        }
        None => store.delete(Table::ExternalRefs, input.external_ref.as_bytes()),
    }
    let rebound = Rebound {
        external_ref: input.external_ref.clone(),
        from_account_id: input.from_account_id,
        to_account_id: input.to_account_id,
        timestamp_ns,
    };
    Ok((ItemResult { timestamp_ns, ..result(ResultCode::Ok) }, Some(rebound)))
}

/// The account to bind to (`None`: a release), or why it cannot take the reference.
fn target(store: &impl store::ReadStore, to_account_id: AccountId) -> io::Result<Result<Option<Account>, ResultCode>> {
    if to_account_id == 0 {
        return Ok(Ok(None));
    }
    let Some(to) = store::get_account(store, to_account_id)? else { return Ok(Err(ResultCode::AccountNotFound)) };
    if to.status == AccountStatus::Closed {
        return Ok(Err(ResultCode::AccountClosed));
    }
    if to.external_ref.is_some() {
        return Ok(Err(ResultCode::AccountHasExternalRef));
    }
    Ok(Ok(Some(to)))
}
