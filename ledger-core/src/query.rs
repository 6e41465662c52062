//! Queries over the ledger's history, answered from the tables apply already writes, with
//! bounded scans (no secondary index of their own).

use std::io;

use super::limits::TRANSFER_LEGS_MAX;
use super::store::{self, ReadStore};
use super::types::{AccountId, Balances, TransferId};

/// Changes (or other items) one query page returns at most: a batch's size.
pub const QUERY_LIMIT_MAX: u32 = 8_190;
pub const QUERY_LIMIT_DEFAULT: u32 = 100;

/// One change of an account's balances: a transfer step (its legs on the account, at one
/// timestamp) and the balances after all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceChange {
    pub timestamp_ns: u64,
    pub transfer_id: TransferId,
    pub balances: Balances,
}

/// Up to `limit` changes of an account with `from_ns <= timestamp <= to_ns`, strictly after
/// `cursor_ns` (before it when `reverse`), oldest first (newest when `reverse`), and the cursor
/// of the next page (None: no more). One scan of at most `limit + 2 × 64` entries; a page never
/// splits the entries of one timestamp.
pub fn account_history(
    store: &impl ReadStore,
    account_id: AccountId,
    (from_ns, to_ns): (u64, u64),
    cursor_ns: Option<u64>,
    limit: usize,
    reverse: bool,
) -> io::Result<(Vec<BalanceChange>, Option<u64>)> {
    assert!(limit > 0 && limit <= QUERY_LIMIT_MAX as usize, "the API bounds the limit");
    let (mut after, mut before) = (from_ns.checked_sub(1), to_ns.checked_add(1));
    match (cursor_ns, reverse) {
        (Some(c), false) => after = Some(after.map_or(c, |a| a.max(c))),
        (Some(c), true) => before = Some(before.map_or(c, |b| b.min(c))),
        (None, _) => {}
    }
    let scan_max = limit + 2 * TRANSFER_LEGS_MAX;
    let entries = store::account_entries(store, account_id, after, before, scan_max, reverse)?;
    let full = entries.len() == scan_max;
    let mut changes: Vec<BalanceChange> = Vec::new();
    for entry in entries {
        match changes.last_mut() {
            // Entries of one step share its timestamp; in time order the last leg's balances
            // are the step's, newest first the first's.
            Some(last) if last.timestamp_ns == entry.timestamp_ns => {
                if !reverse {
                    last.balances = entry.balances_after;
                }
            }
            _ => changes.push(BalanceChange { timestamp_ns: entry.timestamp_ns, transfer_id: entry.transfer_id, balances: entry.balances_after }),
        }
    }
    if full {
        changes.pop(); // the scan may have cut the last step
    }
    let more = full || changes.len() > limit;
    changes.truncate(limit);
    let next = if more { changes.last().map(|c| c.timestamp_ns) } else { None };
    Ok((changes, next))
}
