//! Two-phase transfers: posting or voiding a hold, and expiring holds whose time is up.
//! Expiry is driven by Raft-entry timestamps only, so every replica expires the same holds.
//!
//! Both read the hold, prefetch its accounts into the command's working set, release its legs in
//! memory (`release`), then write the rows.

use std::io;

use super::clock::Clock;
use super::journal;
use super::limits::EXPIRIES_PER_COMMAND_MAX;
use super::result::{ItemResult, ResultCode};
use super::store::{self, Store, Table};
use super::transfer::{Refusal, Staged, WorkingSet, Written, assert_double_entry, assert_entries_match};
use super::types::*;

/// POST_PENDING or VOID_PENDING of `input.pending_id`.
pub fn resolve(
    store: &mut impl Store,
    working: &mut WorkingSet,
    input: &TransferInput,
    timestamp_ns: u64,
    entries: &mut Vec<AccountEntry>,
) -> io::Result<Result<Written, Refusal>> {
    let mut pending = match hold(store, input, timestamp_ns)? {
        Ok(pending) => pending,
        Err(code) => return Ok(Err(ItemResult::new(code))),
    };
    let is_post = input.kind == TransferKind::PostPending;
    let Some(scale) = working.load_asset(store, &pending.asset)?.map(|asset| asset.scale) else {
        return Err(store::corruption(Table::Assets, "a pending transfer names a missing asset"));
    };
    let posted = match post_amounts(input, &pending, scale, is_post) {
        Ok(posted) => posted,
        Err(refusal) => return Ok(Err(refusal)),
    };
    prefetch(store, working, &pending)?;
    let kind = if is_post { EntryKind::PostPending } else { EntryKind::VoidPending };
    let (staged, new_entries) = match release(working, &pending.legs, &posted, kind, input.id, timestamp_ns)? {
        Ok(released) => released,
        Err(refusal) => return Ok(Err(refusal)),
    };
    staged.commit(working);
    for entry in &new_entries {
        store::put_entry(store, entry);
    }
    entries.extend(new_entries);
    if pending.expires_at_ns != 0 {
        store.delete(Table::PendingExpiry, &store::expiry_key(pending.expires_at_ns, pending.id));
    }
    pending.pending_state = if is_post { PendingState::Posted } else { PendingState::Voided };
    store::put_transfer(store, &pending);
    let transfer = resolution(input, &pending, &posted, timestamp_ns);
    store::put_transfer(store, &transfer);
    // A post's journal line releases what the hold carried; a void's releases its own amounts.
    let held = if is_post { pending.legs } else { Vec::new() };
    Ok(Ok(Written { transfer, held }))
}

/// The hold a post or void names, if this input may resolve it now.
fn hold(store: &impl Store, input: &TransferInput, timestamp_ns: u64) -> io::Result<Result<Transfer, ResultCode>> {
    let Some(pending) = store::get_transfer(store, input.pending_id)? else {
        return Ok(Err(ResultCode::PendingTransferNotFound));
    };
    // Only the principal that placed a hold posts or voids it; another principal's hold (a
    // wallet hold included: the ledger's own, owner "") reads as absent, as it does to that
    // principal's reads (`api::auth::transfer_scope`): its existence is not revealed. An input
    // without an owner comes from the ledger itself or from a node without authentication.
    if !input.owner.is_empty() && input.owner != pending.owner {
        return Ok(Err(ResultCode::PendingTransferNotFound));
    }
    if pending.kind != TransferKind::Pending {
        return Ok(Err(ResultCode::PendingTransferNotPending));
    }
    if !input.asset.is_empty() && input.asset != pending.asset {
        return Ok(Err(ResultCode::AssetMismatch));
    }
    let refused = match pending.pending_state {
        PendingState::Pending => None,
        PendingState::Posted => Some(ResultCode::PendingTransferAlreadyPosted),
        PendingState::Voided => Some(ResultCode::PendingTransferAlreadyVoided),
        PendingState::Expired => Some(ResultCode::PendingTransferExpired),
        PendingState::None => Some(ResultCode::PendingTransferNotPending),
    };
    if let Some(code) = refused {
        return Ok(Err(code));
    }
    if pending.expires_at_ns != 0 && pending.expires_at_ns <= timestamp_ns {
        return Ok(Err(ResultCode::PendingTransferExpired));
    }
    Ok(Ok(pending))
}

/// The amount to post per leg: as asked (each at most the leg's hold), else the whole hold;
/// a void posts nothing.
fn post_amounts(input: &TransferInput, pending: &Transfer, scale: u8, is_post: bool) -> Result<Vec<u128>, Refusal> {
    if !is_post || input.post_amounts.is_empty() {
        return Ok(pending.legs.iter().map(|leg| if is_post { leg.amount_minor } else { 0 }).collect());
    }
    if input.post_amounts.len() != pending.legs.len() {
        return Err(ItemResult::new(ResultCode::PostAmountsMismatch));
    }
    let mut posted = Vec::with_capacity(pending.legs.len());
    for (index, (amount, leg)) in input.post_amounts.iter().zip(&pending.legs).enumerate() {
        match amount.to_minor(scale) {
            Ok(minor) if minor > leg.amount_minor => {
                return Err(ItemResult::at_leg(ResultCode::PostAmountExceedsPending, index));
            }
            Ok(minor) => posted.push(minor),
            Err(code) => return Err(ItemResult::at_leg(code, index)),
        }
    }
    Ok(posted)
}

/// The post or void itself, as stored: the hold's legs with the amounts posted (a void: the
/// hold's amounts).
fn resolution(input: &TransferInput, pending: &Transfer, posted: &[u128], timestamp_ns: u64) -> Transfer {
    let is_post = input.kind == TransferKind::PostPending;
    let legs = pending
        .legs
        .iter()
        .zip(posted)
        .map(|(leg, &post_minor)| Leg { amount_minor: if is_post { post_minor } else { leg.amount_minor }, ..*leg })
        .collect();
    Transfer {
        id: input.id,
        idempotency_key: input.idempotency_key.clone(),
        asset: pending.asset.clone(),
        kind: input.kind,
        legs,
        pending_id: pending.id,
        timeout_ms: 0,
        code: input.code,
        timestamp_ns,
        pending_state: PendingState::None,
        expires_at_ns: 0,
        owner: input.owner.clone(),
    }
}

/// The hold's accounts, into the working set.
fn prefetch(store: &impl Store, working: &mut WorkingSet, pending: &Transfer) -> io::Result<()> {
    for leg in &pending.legs {
        working.load_account(store, leg.debit_account_id)?;
        working.load_account(store, leg.credit_account_id)?;
    }
    Ok(())
}

/// The execute phase of a post, void or expiry, in memory: releases each leg's hold and posts
/// `posted[leg]` of it. Returns the new balances (not yet committed) and the entries, or the
/// rule a leg breaks.
fn release(
    working: &WorkingSet,
    legs: &[Leg],
    posted: &[u128],
    kind: EntryKind,
    transfer_id: TransferId,
    timestamp_ns: u64,
) -> io::Result<Result<(Staged, Vec<AccountEntry>), Refusal>> {
    assert_eq!(legs.len(), posted.len(), "one posted amount per leg");
    assert!(matches!(kind, EntryKind::PostPending | EntryKind::VoidPending | EntryKind::ExpirePending));
    let is_post = kind == EntryKind::PostPending;
    let mut staged = Staged::default();
    let mut entries = Vec::with_capacity(2 * legs.len());
    for (index, (leg, &post_minor)) in legs.iter().zip(posted).enumerate() {
        assert!(post_minor <= leg.amount_minor, "a post exceeds its hold");
        for (account_id, is_debit) in [(leg.debit_account_id, true), (leg.credit_account_id, false)] {
            let balances_after = match release_side(working, &mut staged, leg, account_id, is_debit, post_minor, is_post)? {
                Ok(balances) => balances,
                Err(code) => return Ok(Err(ItemResult::at_leg(code, index))),
            };
            let amount_minor = if is_post { post_minor } else { leg.amount_minor };
            entries.push(AccountEntry {
                account_id,
                timestamp_ns,
                transfer_id,
                leg_index: index as u8,
                kind,
                is_debit,
                amount_minor,
                balances_after,
            });
        }
    }
    assert_released(&staged, &entries, legs, posted);
    Ok(Ok((staged, entries)))
}

/// One side of one leg of a release: its hold taken off the pending balance, `post_minor` added
/// to the posted one.
fn release_side(
    working: &WorkingSet,
    staged: &mut Staged,
    leg: &Leg,
    account_id: AccountId,
    is_debit: bool,
    post_minor: u128,
    is_post: bool,
) -> io::Result<Result<Balances, ResultCode>> {
    let Some((slot, account)) = working.find(account_id) else {
        return Err(store::corruption(Table::Accounts, "a pending transfer names a missing account"));
    };
    // A hold placed before a freeze may be voided, not spent.
    if is_post && post_minor > 0 && is_debit {
        if let Err(code) = super::account::check_debit(account) {
            return Ok(Err(code));
        }
    }
    let mut b = staged.get(account);
    let (held, posted) =
        if is_debit { (&mut b.debits_pending, &mut b.debits_posted) } else { (&mut b.credits_pending, &mut b.credits_posted) };
    *held = held
        .checked_sub(leg.amount_minor)
        .ok_or_else(|| store::corruption(Table::Accounts, "pending balance below a hold it carries"))?;
    match posted.checked_add(post_minor) {
        Some(sum) => *posted = sum,
        None => return Ok(Err(ResultCode::OverflowsBalance)),
    }
    staged.set(slot, account, b);
    Ok(Ok(b))
}

/// The invariants of a release, on in release builds: double entry, entries agree with the
/// rows, and the pending balances fell by exactly the holds while the posted ones rose by
/// exactly the amounts posted.
fn assert_released(staged: &Staged, entries: &[AccountEntry], legs: &[Leg], posted: &[u128]) {
    assert_double_entry(staged);
    assert_entries_match(entries, staged);
    let (mut pending_delta, mut posted_delta) = (0u128, 0u128);
    for account in staged.iter() {
        let (before, after) = (account.before, account.after);
        pending_delta = pending_delta.wrapping_add(before.debits_pending.wrapping_sub(after.debits_pending));
        posted_delta = posted_delta.wrapping_add(after.debits_posted.wrapping_sub(before.debits_posted));
    }
    let held = legs.iter().fold(0u128, |sum, leg| sum.wrapping_add(leg.amount_minor));
    let post = posted.iter().fold(0u128, |sum, amount| sum.wrapping_add(*amount));
    assert_eq!(pending_delta, held, "a release took off other than its holds");
    assert_eq!(posted_delta, post, "a release posted other than its amounts");
}

/// Expires holds whose time is at or before the command's first timestamp. Bounded per command.
/// Each expiry's journal line is built from the hold and accounts in hand.
pub fn expire_due(
    store: &mut impl Store,
    clock: &mut Clock,
    entries: &mut Vec<AccountEntry>,
    events: &mut journal::Pending,
) -> io::Result<usize> {
    let now_ns = clock.peek();
    let end = store::expiry_key(now_ns.saturating_add(1), 0);
    let due = store.scan(Table::PendingExpiry, &[], &end, EXPIRIES_PER_COMMAND_MAX, false)?;
    let mut working = WorkingSet::new();
    for (key, _) in &due {
        store.delete(Table::PendingExpiry, key);
        let (_, transfer_id) =
            store::expiry_key_parts(key).ok_or_else(|| store::corruption(Table::PendingExpiry, "short key"))?;
        let Some(mut pending) = store::get_transfer(store, transfer_id)? else {
            return Err(store::corruption(Table::Transfers, "an expiry names a missing transfer"));
        };
        if pending.pending_state != PendingState::Pending {
            continue;
        }
        let timestamp_ns = clock.tick();
        prefetch(store, &mut working, &pending)?;
        let nothing = vec![0; pending.legs.len()];
        let released = release(&working, &pending.legs, &nothing, EntryKind::ExpirePending, transfer_id, timestamp_ns)?;
        let Ok((staged, new_entries)) = released else {
            return Err(store::corruption(Table::Accounts, "expiry refused"));
        };
        staged.commit(&mut working);
        for entry in &new_entries {
            store::put_entry(store, entry);
        }
        if !new_entries.is_empty() {
            events.push_json(timestamp_ns, expiry_line(store, &mut working, &pending, &new_entries)?);
        }
        entries.extend(new_entries);
        pending.pending_state = PendingState::Expired;
        store::put_transfer(store, &pending);
    }
    working.flush(store);
    Ok(due.len())
}

/// An expiry's journal line: the hold itself names the movement.
fn expiry_line(
    store: &impl Store,
    working: &mut WorkingSet,
    pending: &Transfer,
    pairs: &[AccountEntry],
) -> io::Result<String> {
    let Some(scale) = working.load_asset(store, &pending.asset)?.map(|asset| asset.scale) else {
        return Err(store::corruption(Table::Assets, "a journal event names a missing asset"));
    };
    let code_of = |id: AccountId| match working.account(id) {
        Some(account) => Ok(account.code),
        None => Err(store::corruption(Table::Accounts, "a balance entry names a missing account")),
    };
    journal::movement_json(pending, &[], pairs, scale, code_of, None)
}
