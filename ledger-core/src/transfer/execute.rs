//! The execute phase of a new transfer (posted or pending): every leg applied in memory to the
//! prefetched accounts, with no I/O. Returns the balance entries and legs to write, or the first
//! rule a leg breaks; the working set changes only when `Staged::commit` is called.

use crate::account;
use crate::result::{ItemResult, ResultCode};
use crate::types::*;

use super::Refusal;
use super::working::WorkingSet;

/// An item's new balances, per account in the order first touched, not yet in the working set.
#[derive(Default)]
pub struct Staged {
    accounts: Vec<StagedAccount>,
}

/// One account an item changes: where it is in the working set, its balances before the item
/// and as the item leaves them.
#[derive(Clone, Copy)]
pub struct StagedAccount {
    pub id: AccountId,
    pub slot: u32,
    pub before: Balances,
    pub after: Balances,
}

impl Staged {
    /// The account's balances as this item sees them: staged, else as loaded.
    pub fn get(&self, account: &Account) -> Balances {
        match self.accounts.iter().find(|staged| staged.id == account.id) {
            Some(staged) => staged.after,
            None => account.balances,
        }
    }

    /// The account (found in slot `slot`) leaves this item with `balances`.
    pub fn set(&mut self, slot: u32, account: &Account, balances: Balances) {
        match self.accounts.iter_mut().find(|staged| staged.id == account.id) {
            Some(staged) => staged.after = balances,
            None => self.accounts.push(StagedAccount { id: account.id, slot, before: account.balances, after: balances }),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &StagedAccount> {
        self.accounts.iter()
    }

    /// The item passed: its balances become the command's.
    pub fn commit(self, working: &mut WorkingSet) {
        for staged in self.accounts {
            working.set_balances_at(staged.slot, staged.id, staged.after);
        }
    }
}

/// What a new transfer's legs did, in memory.
pub struct Executed {
    pub legs: Vec<Leg>,
    pub entries: Vec<AccountEntry>,
    pub staged: Staged,
}

/// Applies the legs in order (a later leg may spend what an earlier one credited). `amounts` are
/// the legs' amounts in minor units, converted once by the caller (a bad one refuses its leg).
pub fn legs(
    working: &WorkingSet,
    input: &TransferInput,
    asset: &Asset,
    amounts: &[Result<u128, ResultCode>],
    timestamp_ns: u64,
) -> Result<Executed, Refusal> {
    assert_eq!(amounts.len(), input.legs.len(), "one amount per leg");
    assert!(matches!(input.kind, TransferKind::Posted | TransferKind::Pending), "legs of a new transfer");
    let is_pending = input.kind == TransferKind::Pending;
    let kind = if is_pending { EntryKind::Pending } else { EntryKind::Posted };
    let mut executed = Executed {
        legs: Vec::with_capacity(input.legs.len()),
        entries: Vec::with_capacity(2 * input.legs.len()),
        staged: Staged::default(),
    };
    for (index, (leg, amount)) in input.legs.iter().zip(amounts).enumerate() {
        let amount_minor = (*amount).map_err(|code| ItemResult::at_leg(code, index))?;
        for (id, is_debit) in [(leg.debit_account_id, true), (leg.credit_account_id, false)] {
            let balances_after = one_side(working, &mut executed.staged, asset, id, is_debit, is_pending, amount_minor)
                .map_err(|code| ItemResult::at_leg(code, index))?;
            executed.entries.push(AccountEntry {
                account_id: id,
                timestamp_ns,
                transfer_id: input.id,
                leg_index: index as u8,
                kind,
                is_debit,
                amount_minor,
                balances_after,
            });
        }
        executed.legs.push(Leg { debit_account_id: leg.debit_account_id, credit_account_id: leg.credit_account_id, amount_minor });
    }
    assert_new_transfer(working, &executed, is_pending);
    Ok(executed)
}

/// One side of one leg: the account's checks, then the amount added to the balance.
fn one_side(
    working: &WorkingSet,
    staged: &mut Staged,
    asset: &Asset,
    id: AccountId,
    is_debit: bool,
    is_pending: bool,
    amount_minor: u128,
) -> Result<Balances, ResultCode> {
    let missing = if is_debit { ResultCode::DebitAccountNotFound } else { ResultCode::CreditAccountNotFound };
    let (slot, account) = working.find(id).ok_or(missing)?;
    if account.asset != asset.code {
        return Err(ResultCode::AssetMismatch);
    }
    if is_debit { account::check_debit(account)? } else { account::check_credit(account)? }
    let mut b = staged.get(account);
    let balance = match (is_debit, is_pending) {
        (true, false) => &mut b.debits_posted,
        (true, true) => &mut b.debits_pending,
        (false, false) => &mut b.credits_posted,
        (false, true) => &mut b.credits_pending,
    };
    *balance = balance.checked_add(amount_minor).ok_or(ResultCode::OverflowsBalance)?;
    account::check_balances(account, &b)?;
    staged.set(slot, account, b);
    Ok(b)
}

/// The invariants of a new transfer, on in release builds: a broken one stops the node rather
/// than let it write wrong balances.
fn assert_new_transfer(working: &WorkingSet, executed: &Executed, is_pending: bool) {
    assert_double_entry(&executed.staged);
    assert_entries_match(&executed.entries, &executed.staged);
    for staged in executed.staged.iter() {
        let (before, after) = (staged.before, staged.after);
        let account = working.account_at(staged.slot);
        assert!(account::check_balances(account, &after).is_ok(), "account {} breaks its balance rule", staged.id);
        // A hold moves only pending balances; a posted transfer only posted ones.
        if is_pending {
            assert!(after.debits_posted == before.debits_posted && after.credits_posted == before.credits_posted);
        } else {
            assert!(after.debits_pending == before.debits_pending && after.credits_pending == before.credits_pending);
        }
    }
}

/// Double entry: across the accounts an item changed, the debits added equal the credits
/// added (posted plus pending; modular sums, so no balance is too large to check).
pub fn assert_double_entry(staged: &Staged) {
    let (mut debits, mut credits) = (0u128, 0u128);
    let side = |posted: u128, pending: u128| posted.wrapping_add(pending);
    for account in staged.iter() {
        let (before, after) = (account.before, account.after);
        debits = debits
            .wrapping_add(side(after.debits_posted, after.debits_pending))
            .wrapping_sub(side(before.debits_posted, before.debits_pending));
        credits = credits
            .wrapping_add(side(after.credits_posted, after.credits_pending))
            .wrapping_sub(side(before.credits_posted, before.credits_pending));
    }
    assert_eq!(debits, credits, "debits and credits moved by one item differ");
}

/// The balance entries agree with the rows: each changed account's last entry carries the
/// balances it is written with.
pub fn assert_entries_match(entries: &[AccountEntry], staged: &Staged) {
    assert_eq!(entries.len() % 2, 0, "balance entries come in (debit, credit) pairs");
    for account in staged.iter() {
        let last = entries.iter().rev().find(|entry| entry.account_id == account.id);
        assert_eq!(last.map(|entry| entry.balances_after), Some(account.after), "account {}: entries and row differ", account.id);
    }
}
