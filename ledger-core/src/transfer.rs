//! Creating transfers: idempotency, then all legs or none.

use std::collections::BTreeMap;
use std::io;

use sha2::{Digest, Sha256};

use super::account;
use super::clock::Clock;
use super::pending;
use super::risk;
use super::result::{ItemResult, ResultCode};
use super::store::{self, Store, Table};
use super::types::*;
use super::validate;

/// A rule broken by one item: its code and, when a leg broke it, the leg.
pub type Refusal = ItemResult;

/// A client's transfer: account risk limits apply (see `risk`).
pub fn create(
    store: &mut impl Store,
    input: &TransferInput,
    clock: &mut Clock,
    entries: &mut Vec<AccountEntry>,
) -> io::Result<ItemResult> {
    create_with(store, input, clock, entries, true)
}

/// A client's transfer when the caller knows no risk rule exists at all (checked once per
/// command: rules change only by their own commands), which saves the rule lookups.
pub fn create_without_rules(
    store: &mut impl Store,
    input: &TransferInput,
    clock: &mut Clock,
    entries: &mut Vec<AccountEntry>,
) -> io::Result<ItemResult> {
    create_with(store, input, clock, entries, false)
}

/// A transfer the ledger makes itself (wallet holds and their voids): no risk limits, which
/// govern what customers spend, not how the ledger reserves or releases it.
pub fn create_internal(
    store: &mut impl Store,
    input: &TransferInput,
    clock: &mut Clock,
    entries: &mut Vec<AccountEntry>,
) -> io::Result<ItemResult> {
    create_with(store, input, clock, entries, false)
}

fn create_with(
    store: &mut impl Store,
    input: &TransferInput,
    clock: &mut Clock,
    entries: &mut Vec<AccountEntry>,
    check_limits: bool,
) -> io::Result<ItemResult> {
    // Malformed input is refused without being recorded: it fails the same way every time.
    if let Err(refusal) = validate::transfer(input) {
        return Ok(ItemResult { id: input.id, ..refusal });
    }
    let fingerprint = fingerprint(input);
    if let Some(record) = store::get_idempotency(store, &input.idempotency_key)? {
        if record.fingerprint != fingerprint {
            // Another principal's key: refused without naming its transfer (nothing leaks).
            let id = if record.owner == input.owner { record.transfer_id } else { input.id };
            return Ok(ItemResult { id, ..ItemResult::new(ResultCode::IdempotencyKeyConflict) });
        }
        return Ok(ItemResult {
            code: record.code,
            leg_index: record.leg_index,
            timestamp_ns: record.timestamp_ns,
            replay: true,
            id: record.transfer_id,
        });
    }
    let timestamp_ns = clock.tick();
    let outcome = if store::get_transfer(store, input.id)?.is_some() {
        Err(ItemResult::new(ResultCode::IdAlreadyUsed))
    } else {
        match input.kind {
            TransferKind::Posted | TransferKind::Pending if check_limits => {
                match risk::check(store, input, timestamp_ns)? {
                    Err(refusal) => Err(refusal),
                    Ok(debits) => {
                        let applied = apply_legs(store, input, timestamp_ns, entries)?;
                        if applied.is_ok() {
                            risk::record(store, debits, timestamp_ns)?;
                        }
                        applied
                    }
                }
            }
            TransferKind::Posted | TransferKind::Pending => apply_legs(store, input, timestamp_ns, entries)?,
            TransferKind::PostPending | TransferKind::VoidPending => {
                pending::resolve(store, input, timestamp_ns, entries)?
            }
        }
    };
    let (code, leg_index) = match outcome {
        Ok(()) => (ResultCode::Ok, None),
        Err(refusal) => (refusal.code, refusal.leg_index),
    };
    // Every outcome from here on is recorded, so a retry returns it and never moves money twice.
    let record =
        IdempotencyRecord { fingerprint, transfer_id: input.id, code, leg_index, timestamp_ns, owner: input.owner.clone() };
    store.put(Table::Idempotency, input.idempotency_key.as_bytes(), store::encode(&record));
    Ok(ItemResult { code, leg_index, timestamp_ns, replay: false, id: input.id })
}

/// SHA-256 of the input's canonical encoding: what "the same content" means for a retry.
pub fn fingerprint(input: &TransferInput) -> [u8; 32] {
    let bytes = postcard::to_allocvec(input).expect("postcard encode into Vec");
    Sha256::digest(&bytes).into()
}

/// Accounts a transfer reads and changes, loaded once, written back only if every leg passes.
pub struct WorkingSet {
    accounts: BTreeMap<AccountId, Account>,
}

impl WorkingSet {
    pub fn new() -> Self {
        WorkingSet { accounts: BTreeMap::new() }
    }

    pub fn load(
        &mut self,
        store: &impl Store,
        id: AccountId,
        missing: ResultCode,
        leg_index: usize,
    ) -> io::Result<Result<&mut Account, Refusal>> {
        if !self.accounts.contains_key(&id) {
            match store::get_account(store, id)? {
                Some(account) => {
                    self.accounts.insert(id, account);
                }
                None => return Ok(Err(ItemResult::at_leg(missing, leg_index))),
            }
        }
        Ok(Ok(self.accounts.get_mut(&id).expect("inserted above")))
    }

    pub fn write_back(self, store: &mut impl Store) {
        for account in self.accounts.values() {
            store::put_account(store, account);
        }
    }
}

fn apply_legs(
    store: &mut impl Store,
    input: &TransferInput,
    timestamp_ns: u64,
    entries: &mut Vec<AccountEntry>,
) -> io::Result<Result<(), Refusal>> {
    let Some(asset) = store::get_asset(store, &input.asset)? else {
        return Ok(Err(ItemResult::new(ResultCode::AssetNotFound)));
    };
    let is_pending = input.kind == TransferKind::Pending;
    let entry_kind = if is_pending { EntryKind::Pending } else { EntryKind::Posted };
    let mut working = WorkingSet::new();
    let mut legs = Vec::with_capacity(input.legs.len());
    let mut new_entries = Vec::with_capacity(2 * input.legs.len());
    // Legs apply in order: a later leg may spend what an earlier one credited.
    for (index, leg) in input.legs.iter().enumerate() {
        let at = |code| Err(ItemResult::at_leg(code, index));
        let amount_minor = match leg.amount.to_minor(asset.scale) {
            Ok(amount) => amount,
            Err(code) => return Ok(at(code)),
        };
        for (id, missing, is_debit) in [
            (leg.debit_account_id, ResultCode::DebitAccountNotFound, true),
            (leg.credit_account_id, ResultCode::CreditAccountNotFound, false),
        ] {
            let account = match working.load(store, id, missing, index)? {
                Ok(account) => account,
                Err(refusal) => return Ok(Err(refusal)),
            };
            if account.asset != asset.code {
                return Ok(at(ResultCode::AssetMismatch));
            }
            let allowed = if is_debit { account::check_debit(account) } else { account::check_credit(account) };
            if let Err(code) = allowed {
                return Ok(at(code));
            }
            let b = &mut account.balances;
            let balance = match (is_debit, is_pending) {
                (true, false) => &mut b.debits_posted,
                (true, true) => &mut b.debits_pending,
                (false, false) => &mut b.credits_posted,
                (false, true) => &mut b.credits_pending,
            };
            match balance.checked_add(amount_minor) {
                Some(sum) => *balance = sum,
                None => return Ok(at(ResultCode::OverflowsBalance)),
            }
            if let Err(code) = account::check_constraints(account) {
                return Ok(at(code));
            }
            new_entries.push(AccountEntry {
                account_id: id,
                timestamp_ns,
                transfer_id: input.id,
                leg_index: index as u8,
                kind: entry_kind,
                is_debit,
                amount_minor,
                balances_after: account.balances,
            });
        }
        legs.push(Leg { debit_account_id: leg.debit_account_id, credit_account_id: leg.credit_account_id, amount_minor });
    }
    // Every leg passed: write it all.
    working.write_back(store);
    for entry in &new_entries {
        store::put_entry(store, entry);
    }
    entries.extend(new_entries);
    let expires_at_ns = if is_pending && input.timeout_ms > 0 {
        timestamp_ns.saturating_add(input.timeout_ms.saturating_mul(1_000_000))
    } else {
        0
    };
    if expires_at_ns != 0 {
        store.put(Table::PendingExpiry, &store::expiry_key(expires_at_ns, input.id), store::encode(&()));
    }
    store::put_transfer(
        store,
        &Transfer {
            id: input.id,
            idempotency_key: input.idempotency_key.clone(),
            asset: asset.code,
            kind: input.kind,
            legs,
            pending_id: 0,
            timeout_ms: input.timeout_ms,
            code: input.code,
            timestamp_ns,
            pending_state: if is_pending { PendingState::Pending } else { PendingState::None },
            expires_at_ns,
            owner: input.owner.clone(),
        },
    );
    Ok(Ok(()))
}

