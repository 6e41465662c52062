//! Reading the journal for auditors: ranges by sequence or time, lines in order, and any
//! account's balances as of a line. Pure reads over a `ReadStore`, so an export taken from one
//! snapshot is the same bytes on every replica.
//!
//! "Balances as of line n" are the balances after every movement up to line n: the journal puts
//! a movement before every other line of its timestamp, and every movement has a timestamp of its
//! own, so they are the balances of the last entry at or before line n's timestamp.

use std::io;

use super::journal::{self, GENESIS_HASH, Hash, Row};
use super::store::{self, ReadStore, Table};
use super::types::{Account, AccountId, Balances};

/// A resolved, non-empty or empty (`from_seq > to_seq`) range of lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from_seq: u64,
    pub to_seq: u64,
    /// The chain hash of line `from_seq - 1`.
    pub hash_before: Hash,
    /// Opening balances are as of this time (line `from_seq - 1`; 0 before the first line).
    pub opening_timestamp_ns: u64,
    /// Closing balances are as of this time (line `to_seq`).
    pub closing_timestamp_ns: u64,
}

/// What the caller asked for; 0 means unbounded on that side. Sequence and time bounds combine.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeRequest {
    pub from_seq: u64,
    pub to_seq: u64,
    pub from_timestamp_ns: u64,
    pub to_timestamp_ns: u64,
}

fn row(store: &impl ReadStore, seq: u64) -> io::Result<Row> {
    journal::get_row(store, seq)?.ok_or_else(|| store::corruption(Table::Journal, &format!("line {seq} is missing")))
}

/// The first seq in `1..=head` whose line is at or after `timestamp_ns` (head + 1 if none).
fn first_at_or_after(store: &impl ReadStore, head: u64, timestamp_ns: u64) -> io::Result<u64> {
    let (mut low, mut high) = (1, head + 1);
    while low < high {
        let middle = low + (high - low) / 2;
        if row(store, middle)?.timestamp_ns < timestamp_ns {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    Ok(low)
}

pub fn resolve(store: &impl ReadStore, request: RangeRequest) -> io::Result<Range> {
    let head = journal::head(store)?.seq;
    let mut from_seq = request.from_seq.max(1);
    let mut to_seq = if request.to_seq == 0 { head } else { request.to_seq.min(head) };
    if request.from_timestamp_ns != 0 {
        from_seq = from_seq.max(first_at_or_after(store, head, request.from_timestamp_ns)?);
    }
    if request.to_timestamp_ns != 0 {
        let after = first_at_or_after(store, head, request.to_timestamp_ns.saturating_add(1))?;
        to_seq = to_seq.min(after - 1);
    }
    let (hash_before, opening_timestamp_ns) = match from_seq - 1 {
        0 => (GENESIS_HASH, 0),
        before if before <= head => {
            let r = row(store, before)?;
            (r.hash, r.timestamp_ns)
        }
        _ => (journal::head(store)?.hash, journal::head(store)?.timestamp_ns),
    };
    let closing_timestamp_ns = if to_seq >= from_seq { row(store, to_seq)?.timestamp_ns } else { opening_timestamp_ns };
    Ok(Range { from_seq, to_seq, hash_before, opening_timestamp_ns, closing_timestamp_ns })
}

/// Up to `limit` lines from `from_seq` through `to_seq`, in order.
pub fn lines(store: &impl ReadStore, from_seq: u64, to_seq: u64, limit: usize) -> io::Result<Vec<(u64, Row)>> {
    if from_seq > to_seq {
        return Ok(Vec::new());
    }
    let end = journal::seq_key(to_seq.saturating_add(1));
    let end: &[u8] = if to_seq == u64::MAX { &[0xff; 9] } else { &end };
    let pairs = store.scan(Table::Journal, &journal::seq_key(from_seq), end, limit, false)?;
    let mut out = Vec::with_capacity(pairs.len());
    for (position, (key, value)) in pairs.iter().enumerate() {
        let seq = from_seq + position as u64;
        if key.as_slice() != journal::seq_key(seq) {
            return Err(store::corruption(Table::Journal, &format!("line {seq} is missing")));
        }
        out.push((seq, store::decode(Table::Journal, value)?));
    }
    Ok(out)
}

/// An account's balances after every entry at or before `timestamp_ns`.
pub fn balances_at(store: &impl ReadStore, account_id: AccountId, timestamp_ns: u64) -> io::Result<Balances> {
    let last = store::account_entries(store, account_id, None, Some(timestamp_ns.saturating_add(1)), 1, true)?;
    Ok(last.first().map(|e| e.balances_after).unwrap_or_default())
}

/// Up to `limit` accounts with an id above `after_id`, in id order, that existed at `timestamp_ns`.
pub fn accounts_page(store: &impl ReadStore, after_id: Option<AccountId>, timestamp_ns: u64, limit: usize) -> io::Result<(Vec<Account>, Option<AccountId>)> {
    let start = match after_id {
        None => store::id_key(0).to_vec(),
        Some(u128::MAX) => return Ok((Vec::new(), None)),
        Some(id) => store::id_key(id + 1).to_vec(),
    };
    let pairs = store.scan(Table::Accounts, &start, &[0xff; 17], limit, false)?;
    let last = if pairs.len() == limit { pairs.last().map(|(k, _)| k.clone()) } else { None };
    let mut accounts = Vec::with_capacity(pairs.len());
    for (_, value) in &pairs {
        let account: Account = store::decode(Table::Accounts, value)?;
        if account.timestamp_ns <= timestamp_ns {
            accounts.push(account);
        }
    }
    let next = match last {
        Some(key) => Some(u128::from_be_bytes(key.as_slice().try_into().map_err(|_| store::corruption(Table::Accounts, "short key"))?)),
        None => None,
    };
    Ok((accounts, next))
}
