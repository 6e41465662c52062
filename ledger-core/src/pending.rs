//! Two-phase transfers: posting or voiding a hold, and expiring holds whose time is up.
//! Expiry is driven by Raft-entry timestamps only, so every replica expires the same holds.

use std::io;

use super::clock::Clock;
use super::limits::EXPIRIES_PER_COMMAND_MAX;
use super::result::{ItemResult, ResultCode};
use super::store::{self, Store, Table};
use super::transfer::{Refusal, WorkingSet};
use super::types::*;

/// POST_PENDING or VOID_PENDING of `input.pending_id`.
pub fn resolve(
    store: &mut impl Store,
    input: &TransferInput,
    timestamp_ns: u64,
    entries: &mut Vec<AccountEntry>,
) -> io::Result<Result<(), Refusal>> {
    let refuse = |code| Ok(Err(ItemResult::new(code)));
    let Some(mut pending) = store::get_transfer(store, input.pending_id)? else {
        return refuse(ResultCode::PendingTransferNotFound);
    };
    // Only the principal that placed a hold posts or voids it; another principal's hold (a
    // wallet hold included: the ledger's own, owner "") reads as absent, as it does to that
    // principal's reads (`api::auth::transfer_scope`): its existence is not revealed. An input
    // without an owner comes from the ledger itself or from a node without authentication.
    if !input.owner.is_empty() && input.owner != pending.owner {
        return refuse(ResultCode::PendingTransferNotFound);
    }
    if pending.kind != TransferKind::Pending {
        return refuse(ResultCode::PendingTransferNotPending);
    }
    if !input.asset.is_empty() && input.asset != pending.asset {
        return refuse(ResultCode::AssetMismatch);
    }
    match pending.pending_state {
        PendingState::Pending => {}
        PendingState::Posted => return refuse(ResultCode::PendingTransferAlreadyPosted),
        PendingState::Voided => return refuse(ResultCode::PendingTransferAlreadyVoided),
        PendingState::Expired => return refuse(ResultCode::PendingTransferExpired),
        PendingState::None => return refuse(ResultCode::PendingTransferNotPending),
    }
    if pending.expires_at_ns != 0 && pending.expires_at_ns <= timestamp_ns {
        return refuse(ResultCode::PendingTransferExpired);
    }
    let is_post = input.kind == TransferKind::PostPending;
    let Some(asset) = store::get_asset(store, &pending.asset)? else {
        return Err(store::corruption(Table::Assets, "a pending transfer names a missing asset"));
    };
    // The amount to post per leg (void: nothing).
    let mut posted = Vec::with_capacity(pending.legs.len());
    if is_post && !input.post_amounts.is_empty() {
        if input.post_amounts.len() != pending.legs.len() {
            return refuse(ResultCode::PostAmountsMismatch);
        }
        for (index, (amount, leg)) in input.post_amounts.iter().zip(&pending.legs).enumerate() {
            match amount.to_minor(asset.scale) {
                Ok(minor) if minor > leg.amount_minor => {
                    return Ok(Err(ItemResult::at_leg(ResultCode::PostAmountExceedsPending, index)));
                }
                Ok(minor) => posted.push(minor),
                Err(code) => return Ok(Err(ItemResult::at_leg(code, index))),
            }
        }
    } else {
        posted.extend(pending.legs.iter().map(|leg| if is_post { leg.amount_minor } else { 0 }));
    }

    let kind = if is_post { EntryKind::PostPending } else { EntryKind::VoidPending };
    let mut working = WorkingSet::new();
    let mut new_entries = Vec::with_capacity(2 * pending.legs.len());
    for (index, (leg, &post_minor)) in pending.legs.iter().zip(&posted).enumerate() {
        match move_pending(&mut working, store, leg, index, post_minor, is_post)? {
            Ok([debit, credit]) => {
                for (account_id, is_debit, balances_after) in
                    [(leg.debit_account_id, true, debit), (leg.credit_account_id, false, credit)]
                {
                    new_entries.push(AccountEntry {
                        account_id,
                        timestamp_ns,
                        transfer_id: input.id,
                        leg_index: index as u8,
                        kind,
                        is_debit,
                        amount_minor: if is_post { post_minor } else { leg.amount_minor },
                        balances_after,
                    });
                }
            }
            Err(refusal) => return Ok(Err(refusal)),
        }
    }
    working.write_back(store);
    for entry in &new_entries {
        store::put_entry(store, entry);
    }
    entries.extend(new_entries);
    if pending.expires_at_ns != 0 {
        store.delete(Table::PendingExpiry, &store::expiry_key(pending.expires_at_ns, pending.id));
    }
    pending.pending_state = if is_post { PendingState::Posted } else { PendingState::Voided };
    store::put_transfer(store, &pending);
    let legs = pending
        .legs
        .iter()
        .zip(&posted)
        .map(|(leg, &post_minor)| Leg { amount_minor: if is_post { post_minor } else { leg.amount_minor }, ..*leg })
        .collect();
    store::put_transfer(
        store,
        &Transfer {
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
        },
    );
    Ok(Ok(()))
}

/// Releases one leg's hold and posts `post_minor` of it. Returns both accounts' balances after.
fn move_pending(
    working: &mut WorkingSet,
    store: &impl Store,
    leg: &Leg,
    index: usize,
    post_minor: u128,
    is_post: bool,
) -> io::Result<Result<[Balances; 2], Refusal>> {
    let mut after = [Balances::default(); 2];
    for (slot, (id, is_debit)) in [(leg.debit_account_id, true), (leg.credit_account_id, false)].into_iter().enumerate() {
        let account = match working.load(store, id, ResultCode::AccountNotFound, index)? {
            Ok(account) => account,
            Err(_) => return Err(store::corruption(Table::Accounts, "a pending transfer names a missing account")),
        };
        // A hold placed before a freeze may be voided, not spent.
        if is_post && post_minor > 0 && is_debit {
            if let Err(code) = super::account::check_debit(account) {
                return Ok(Err(ItemResult::at_leg(code, index)));
            }
        }
        let b = &mut account.balances;
        let (held, posted) =
            if is_debit { (&mut b.debits_pending, &mut b.debits_posted) } else { (&mut b.credits_pending, &mut b.credits_posted) };
        *held = held
            .checked_sub(leg.amount_minor)
            .ok_or_else(|| store::corruption(Table::Accounts, "pending balance below a hold it carries"))?;
        match posted.checked_add(post_minor) {
            Some(sum) => *posted = sum,
            None => return Ok(Err(ItemResult::at_leg(ResultCode::OverflowsBalance, index))),
        }
        after[slot] = account.balances;
    }
    Ok(Ok(after))
}

/// Expires holds whose time is at or before the command's first timestamp. Bounded per command.
pub fn expire_due(store: &mut impl Store, clock: &mut Clock, entries: &mut Vec<AccountEntry>) -> io::Result<usize> {
    let now_ns = clock.peek();
    let end = store::expiry_key(now_ns.saturating_add(1), 0);
    let due = store.scan(Table::PendingExpiry, &[], &end, EXPIRIES_PER_COMMAND_MAX, false)?;
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
        let mut working = WorkingSet::new();
        for (index, leg) in pending.legs.iter().enumerate() {
            let Ok([debit, credit]) = move_pending(&mut working, store, leg, index, 0, false)? else {
                return Err(store::corruption(Table::Accounts, "expiry refused"));
            };
            for (account_id, is_debit, balances_after) in
                [(leg.debit_account_id, true, debit), (leg.credit_account_id, false, credit)]
            {
                let entry = AccountEntry {
                    account_id,
                    timestamp_ns,
                    transfer_id,
                    leg_index: index as u8,
                    kind: EntryKind::ExpirePending,
                    is_debit,
                    amount_minor: leg.amount_minor,
                    balances_after,
                };
                store::put_entry(store, &entry);
                entries.push(entry);
            }
        }
        working.write_back(store);
        pending.pending_state = PendingState::Expired;
        store::put_transfer(store, &pending);
    }
    Ok(due.len())
}
