//! An account's change history: who changed its settings or its external reference, when, and
//! from what to what. One row per change and account, written in the same write batch as the
//! change (table `account_changes`, keyed by account ‖ timestamp), so the history is exactly the
//! changes that committed. Status changes (freeze, close) are not here: they were journaled
//! before this table existed and stay in the audit journal only, so that a log written before it
//! replays to the same state.

use std::collections::BTreeMap;
use std::io;

use serde::{Deserialize, Serialize};

use crate::store::{self, ReadStore, Store, Table};
use crate::types::{Account, AccountId};

/// The settings `UpdateAccounts` may change, as they were before or after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSettings {
    pub code: u32,
    pub overdraft_limit_minor: u128,
    pub metadata: BTreeMap<String, String>,
}

impl AccountSettings {
    pub fn of(account: &Account) -> AccountSettings {
        AccountSettings {
            code: account.code,
            overdraft_limit_minor: account.overdraft_limit_minor,
            metadata: account.metadata.clone(),
        }
    }
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    Settings { before: AccountSettings, after: AccountSettings },
    /// The account's external reference; `other_account_id` is the account the reference came
    /// from or went to (0: none, it was unbound before or is released now).
    ExternalRef { before: Option<String>, after: Option<String>, other_account_id: AccountId },
}

/// One committed change of one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountChange {
    pub account_id: AccountId,
    pub timestamp_ns: u64,
    /// The authenticated principal as the API saw it (`name (role)`); empty with auth off.
    pub actor: String,
    pub reason: String,
    pub kind: ChangeKind,
}

fn key(account_id: AccountId, timestamp_ns: u64) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(&account_id.to_be_bytes());
    key[16..].copy_from_slice(&timestamp_ns.to_be_bytes());
    key
}

pub fn record(store: &mut impl Store, change: &AccountChange) {
    store.put(Table::AccountChanges, &key(change.account_id, change.timestamp_ns), store::encode(change));
}

/// Up to `limit` changes of an account after `after_ns` (exclusive; `None`: from the first),
/// oldest first.
pub fn list(store: &impl ReadStore, account_id: AccountId, after_ns: Option<u64>, limit: usize) -> io::Result<Vec<AccountChange>> {
    let start = match after_ns {
        Some(u64::MAX) => return Ok(Vec::new()),
        Some(ts) => key(account_id, ts + 1),
        None => key(account_id, 0),
    };
    let end = match account_id.checked_add(1) {
        Some(next) => key(next, 0).to_vec(),
        None => vec![0xff; 25],
    };
    store
        .scan(Table::AccountChanges, &start, &end, limit, false)?
        .iter()
        .map(|(_, v)| store::decode(Table::AccountChanges, v))
        .collect()
}
