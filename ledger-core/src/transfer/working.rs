//! The working set of one command: every account and asset its transfers touch, read from the
//! store once (the prefetch), changed in memory by the execute phase, and written back once at
//! the end (`flush`). Nothing in it is read from the store twice within a command.
//!
//! Accounts are never created by a transfer, and a transfer changes only an account's balances,
//! so a command's transfers can share one copy of each account: the rows written at the end are
//! the same bytes as writing each account after every transfer.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::io;

use crate::store::{self, Store};
use crate::types::*;

/// One account as the command sees it: `None` if it does not exist.
struct Slot {
    account: Option<Account>,
    /// Changed since it was loaded: written back by `flush`.
    dirty: bool,
}

#[derive(Default)]
pub struct WorkingSet {
    /// Account id -> its slot in `slots`: the index is small, so lookups stay in cache.
    index: BTreeMap<AccountId, u32>,
    slots: Vec<Slot>,
    assets: BTreeMap<String, Option<Asset>>,
    /// While a linked chain runs: each slot's balances and dirty flag before the chain changed
    /// them, in change order (`rollback` undoes them in reverse).
    undo: Option<Vec<(u32, Balances, bool)>>,
}

impl WorkingSet {
    pub fn new() -> Self {
        WorkingSet::default()
    }

    /// Prefetch: what a new transfer names (its asset and its legs' accounts). Post/void name a
    /// hold, whose accounts are loaded when the hold is read (`load_account`).
    pub fn prefetch(&mut self, store: &impl Store, input: &TransferInput) -> io::Result<()> {
        if !matches!(input.kind, TransferKind::Posted | TransferKind::Pending) {
            return Ok(());
        }
        self.load_asset(store, &input.asset)?;
        for leg in &input.legs {
            self.load_account(store, leg.debit_account_id)?;
            self.load_account(store, leg.credit_account_id)?;
        }
        Ok(())
    }

    /// Reads the account into the set unless it is there already (present or absent).
    pub fn load_account(&mut self, store: &impl Store, id: AccountId) -> io::Result<()> {
        if let Entry::Vacant(vacant) = self.index.entry(id) {
            let account = store::get_account(store, id)?;
            let slot = u32::try_from(self.slots.len()).expect("a command touches fewer than 2^32 accounts");
            self.slots.push(Slot { account, dirty: false });
            vacant.insert(slot);
        }
        Ok(())
    }

    /// Reads the asset into the set unless it is there already; returns it.
    pub fn load_asset(&mut self, store: &impl Store, code: &str) -> io::Result<Option<&Asset>> {
        if !self.assets.contains_key(code) {
            let asset = store::get_asset(store, code)?;
            self.assets.insert(code.to_owned(), asset);
        }
        Ok(self.asset(code))
    }

    fn slot(&self, id: AccountId) -> Option<&Slot> {
        self.index.get(&id).map(|&slot| &self.slots[slot as usize])
    }

    /// A loaded account (`None`: it does not exist). Asking for one never loaded is a bug in the
    /// prefetch: it would be a read in the execute phase.
    pub fn account(&self, id: AccountId) -> Option<&Account> {
        let slot = self.slot(id);
        assert!(slot.is_some(), "account {id} used without a prefetch");
        slot.and_then(|slot| slot.account.as_ref())
    }

    /// `account`, with the account's slot for `account_at` and `set_balances_at` (no second lookup).
    pub fn find(&self, id: AccountId) -> Option<(u32, &Account)> {
        let index = self.index.get(&id);
        assert!(index.is_some(), "account {id} used without a prefetch");
        let slot = *index?;
        self.slots[slot as usize].account.as_ref().map(|account| (slot, account))
    }

    /// The account in a slot `find` returned.
    pub fn account_at(&self, slot: u32) -> &Account {
        self.slots[slot as usize].account.as_ref().expect("a found account exists")
    }

    /// A loaded asset (`None`: it does not exist, or was never loaded).
    pub fn asset(&self, code: &str) -> Option<&Asset> {
        self.assets.get(code).and_then(Option::as_ref)
    }

    /// Commits an item's new balances to the set (the item passed every check).
    pub fn set_balances_at(&mut self, slot_index: u32, id: AccountId, balances: Balances) {
        let slot = &mut self.slots[slot_index as usize];
        let account = slot.account.as_mut().expect("balances of an existing account");
        assert_eq!(account.id, id, "a slot holds the account it was found for");
        if let Some(undo) = self.undo.as_mut() {
            undo.push((slot_index, account.balances, slot.dirty));
        }
        account.balances = balances;
        slot.dirty = true;
    }

    /// A linked chain starts: remember what it changes.
    pub fn savepoint(&mut self) {
        assert!(self.undo.is_none(), "linked chains do not nest");
        self.undo = Some(Vec::new());
    }

    /// The chain passed: its changes stay.
    pub fn release(&mut self) {
        assert!(self.undo.take().is_some(), "release without a savepoint");
    }

    /// The chain failed: every balance it changed goes back to what it was before the chain.
    pub fn rollback(&mut self) {
        let undo = self.undo.take().expect("rollback without a savepoint");
        for (slot, balances, dirty) in undo.into_iter().rev() {
            let slot = &mut self.slots[slot as usize];
            slot.account.as_mut().expect("only existing accounts change").balances = balances;
            slot.dirty = dirty;
        }
    }

    /// Writes every changed account, in id order, and marks them clean.
    pub fn flush(&mut self, store: &mut impl Store) {
        for &index in self.index.values() {
            let slot = &mut self.slots[index as usize];
            if slot.dirty {
                let account = slot.account.as_ref().expect("only existing accounts change");
                store::put_account(store, account);
                slot.dirty = false;
            }
        }
    }
}
