//! The one entry point of the state machine: apply a command to a store. Deterministic: time
//! comes from the command, iteration is in key order, and nothing here reads a clock or does IO
//! of its own.

use std::io;

use super::result::ItemResult;
use super::store::{self, Store};
use super::types::{AccountEntry, Command, Operation};
use super::{account, asset, pending, transfer, wallet};

/// Hands out the timestamps of one command: strictly increasing across the ledger, starting at
/// the leader's proposal time or just after the last timestamp given, whichever is later (a new
/// leader's clock may be behind the old one's).
pub struct Clock {
    next_ns: u64,
    issued: bool,
}

impl Clock {
    pub fn new(last_timestamp_ns: u64, proposed_at_ns: u64) -> Clock {
        Clock { next_ns: proposed_at_ns.max(last_timestamp_ns + 1), issued: false }
    }
    /// The next timestamp, without taking it.
    pub fn peek(&self) -> u64 {
        self.next_ns
    }
    pub fn tick(&mut self) -> u64 {
        let now = self.next_ns;
        self.next_ns = now.checked_add(1).expect("timestamps exhausted (year 2554)");
        self.issued = true;
        now
    }
}

/// What one command did: a result per item, and the balance entries it wrote (for watchers).
#[derive(Debug, Default)]
pub struct Applied {
    pub results: Vec<ItemResult>,
    pub entries: Vec<AccountEntry>,
}

pub fn apply(store: &mut impl Store, command: &Command) -> io::Result<Applied> {
    let last = store::last_timestamp(store)?;
    let mut clock = Clock::new(last, command.proposed_at_ns);
    let mut applied = Applied { results: Vec::with_capacity(command.item_count()), entries: Vec::new() };
    pending::expire_due(store, &mut clock, &mut applied.entries)?;
    wallet::token::release_due(store, &mut clock, &mut applied.entries)?;
    let results = &mut applied.results;
    match &command.operation {
        Operation::CreateAssets(items) => {
            for item in items {
                results.push(asset::create(store, item, &mut clock)?);
            }
        }
        Operation::CreateAccounts(items) => {
            for item in items {
                results.push(account::create(store, item, &mut clock)?);
            }
        }
        Operation::CreateTransfers(items) => {
            for item in items {
                results.push(transfer::create(store, item, &mut clock, &mut applied.entries)?);
            }
        }
        Operation::SetAccountStatus(items) => {
            for item in items {
                results.push(account::set_status(store, item, &mut clock)?);
            }
        }
        Operation::Tick => {}
        Operation::IssueTokens(items) => {
            for item in items {
                results.push(wallet::token::issue(store, item, &mut clock, &mut applied.entries)?);
            }
        }
        Operation::SyncOfflineRecords(items) => {
            for item in items {
                wallet::sync::sync(store, item, &mut clock, &mut applied.entries, results)?;
            }
        }
        Operation::RevokeTokens(items) => {
            for item in items {
                results.push(wallet::token::revoke(store, item, &mut clock)?);
            }
        }
    }
    assert_eq!(applied.results.len(), command.item_count(), "one result per item");
    if clock.issued {
        store::set_last_timestamp(store, clock.peek() - 1);
    }
    Ok(applied)
}
