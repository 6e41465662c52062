//! The change feed's read side: pages of committed events after a cursor, filtered and scoped to
//! the caller, each movement with the balance entries it wrote.
//!
//! The feed is the audit journal read forward: the journal already holds every committed event
//! in commit order, is written in the same batch as the change, is identical on every replica and
//! is never deleted, so a line's sequence is a cursor any replica resumes from with no gap and no
//! reordering. Nothing is buffered in memory between pages: a page is read from a snapshot.
//!
//! Lines are interpreted loosely (`EventView`: only the fields filters and scopes need, every
//! other field ignored), so event types this crate does not know yet still flow through with
//! their type and verbatim line.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use serde::Deserialize;

use super::journal::{self, Hash, Row};
use super::store::{self, ReadStore, Table};
use super::types::{AccountEntry, AccountId, TransferId};

/// Lines read per page at most: the work one page costs, whatever the filter.
pub const PAGE_LINES_MAX: usize = 1_024;
/// Events returned per page at most.
pub const PAGE_EVENTS_MAX: usize = 256;
/// Bytes of events (lines and entries) per page at most; the page ends after the event that
/// passes it (one movement is at most ~60 KiB: 64 legs), so a page stays under 5 MiB.
pub const PAGE_BYTES_MAX: usize = 4 << 20;
/// Values per filter list (accounts, account codes, transfer codes).
pub const FILTER_VALUES_MAX: usize = 256;
/// Event types per filter.
pub const FILTER_KINDS_MAX: usize = 64;
/// Bytes of one event type name in a filter.
pub const KIND_BYTES_MAX: usize = 64;
/// An entry's share of a page's byte budget (ids, amounts, four balances).
const ENTRY_BYTES: usize = 160;

/// What a subscriber asked for; every set part must match, any value of a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub accounts: BTreeSet<AccountId>,
    pub asset: Option<String>,
    pub account_codes: BTreeSet<u32>,
    pub transfer_codes: BTreeSet<u32>,
    pub kinds: BTreeSet<String>,
}

impl Filter {
    /// Refuses a filter beyond its bounds, naming the part.
    pub fn check(&self) -> Result<(), String> {
        for (name, len) in [("accounts", self.accounts.len()), ("account codes", self.account_codes.len()), ("transfer codes", self.transfer_codes.len())] {
            if len > FILTER_VALUES_MAX {
                return Err(format!("filter: at most {FILTER_VALUES_MAX} {name}, got {len}"));
            }
        }
        if self.kinds.len() > FILTER_KINDS_MAX {
            return Err(format!("filter: at most {FILTER_KINDS_MAX} kinds, got {}", self.kinds.len()));
        }
        if let Some(kind) = self.kinds.iter().find(|k| k.is_empty() || k.len() > KIND_BYTES_MAX || !k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')) {
            return Err(format!("filter: kind {kind:?} must be 1..={KIND_BYTES_MAX} of a-z and _"));
        }
        if self.asset.as_ref().is_some_and(|a| a.is_empty() || a.len() > 16) {
            return Err("filter: asset must be 1..=16 bytes".into());
        }
        Ok(())
    }
}

/// Whose events a subscriber sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every event (auditors, admins; every caller when authentication is off).
    All,
    /// The movements of transfers this principal created (a `payments` principal: what
    /// `LookupTransfers` shows it), its holds' expiries included.
    Owner(String),
    /// The ledger's own movements (wallet holds, offline spends, releases) and wallet token and
    /// offline-record events (a `wallet` principal).
    Wallet,
}

/// One event as the feed sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEvent {
    /// The journal sequence.
    pub cursor: u64,
    pub timestamp_ns: u64,
    /// The line's event `type`.
    pub kind: String,
    /// The journal line, verbatim.
    pub line: String,
    pub hash: Hash,
    /// A movement's asset (the scale its entries' amounts are in); None for other events.
    pub asset: Option<String>,
    /// A movement's balance entries (debit then credit, by leg); empty for other events.
    pub entries: Vec<AccountEntry>,
}

/// What one page read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub events: Vec<FeedEvent>,
    /// The last line read: every matching event up to it is in `events` (or an earlier page).
    pub cursor: u64,
    /// The page reached the newest line (or `until`): wait for more before the next.
    pub at_end: bool,
}

/// A cursor older than the oldest line kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorExpired {
    /// The oldest event's cursor; subscribe from `oldest - 1`.
    pub oldest: u64,
}

/// The events after `after` through `until` (None: the newest line), at most `PAGE_LINES_MAX`
/// lines read and `PAGE_EVENTS_MAX` events kept, those that pass `filter` and `scope`.
pub fn page(store: &impl ReadStore, after: u64, until: Option<u64>, filter: &Filter, scope: &Scope) -> io::Result<Result<Page, CursorExpired>> {
    if let Some(oldest) = oldest(store)? {
        if after.saturating_add(1) < oldest {
            return Ok(Err(CursorExpired { oldest }));
        }
    }
    let last = match until {
        Some(until) => until,
        None => journal::head(store)?.seq,
    };
    if after >= last {
        return Ok(Ok(Page { events: Vec::new(), cursor: after, at_end: true }));
    }
    let start = journal::seq_key(after + 1);
    let end = journal::seq_key(last.saturating_add(1));
    let rows = store.scan(Table::Journal, &start, &end, PAGE_LINES_MAX, false)?;
    let mut reader = Reader { store, filter, scope, accounts: BTreeMap::new() };
    let (mut events, mut cursor, mut bytes) = (Vec::new(), after, 0);
    for (key, value) in rows {
        let seq = u64::from_be_bytes(key.as_slice().try_into().map_err(|_| store::corruption(Table::Journal, "a key is not 8 bytes"))?);
        if seq != cursor + 1 {
            return Err(store::corruption(Table::Journal, &format!("line {} is missing", cursor + 1)));
        }
        cursor = seq;
        if let Some(event) = reader.event(seq, store::decode(Table::Journal, &value)?)? {
            bytes += event.line.len() + event.entries.len() * ENTRY_BYTES;
            events.push(event);
            if events.len() == PAGE_EVENTS_MAX || bytes >= PAGE_BYTES_MAX {
                break;
            }
        }
    }
    Ok(Ok(Page { events, at_end: cursor == last, cursor }))
}

/// The oldest line kept (None: the journal is empty). Lines are never deleted today, so it is 1;
/// a retention that deletes old lines makes it larger and older cursors `CursorExpired`.
pub fn oldest(store: &impl ReadStore) -> io::Result<Option<u64>> {
    let first = store.scan(Table::Journal, &[], &[0xff; 9], 1, false)?;
    Ok(first.first().and_then(|(key, _)| key.as_slice().try_into().ok()).map(u64::from_be_bytes))
}

/// The fields of a line filters and scopes look at; every other field is ignored, and a line
/// whose known fields have another shape (a future event type) is read by its type alone.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EventView {
    #[serde(rename = "type")]
    kind: String,
    account_id: Option<String>,
    clearing_account_id: Option<String>,
    merchant_account_id: Option<String>,
    asset: Option<String>,
    code: Option<u32>,
    transfer_id: Option<String>,
    pending_id: Option<String>,
    owner: Option<String>,
    legs: Vec<LegView>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LegView {
    debit_account_id: String,
    debit_account_code: u32,
    credit_account_id: String,
    credit_account_code: u32,
}

#[derive(Deserialize)]
struct LineView {
    event: EventView,
}

#[derive(Deserialize)]
struct KindOnly {
    event: KindView,
}

#[derive(Deserialize)]
struct KindView {
    #[serde(rename = "type")]
    kind: String,
}

impl EventView {
    fn parse(line: &str) -> EventView {
        match serde_json::from_str::<LineView>(line) {
            Ok(view) => view.event,
            Err(_) => EventView { kind: serde_json::from_str::<KindOnly>(line).map(|k| k.event.kind).unwrap_or_default(), ..EventView::default() },
        }
    }

    fn is_movement(&self) -> bool {
        self.kind == "movement"
    }

    /// Every account the event names.
    fn accounts(&self) -> Vec<AccountId> {
        let named = [&self.account_id, &self.clearing_account_id, &self.merchant_account_id];
        let legs = self.legs.iter().flat_map(|l| [&l.debit_account_id, &l.credit_account_id]);
        named.into_iter().flatten().chain(legs).filter_map(|id| id.parse().ok()).collect()
    }
}

/// One page's reading: the filter, the scope, and the accounts looked up so far.
struct Reader<'a, S> {
    store: &'a S,
    filter: &'a Filter,
    scope: &'a Scope,
    /// Asset and code of accounts an event names without them (bounded by the page's lines).
    accounts: BTreeMap<AccountId, Option<(String, u32)>>,
}

impl<S: ReadStore> Reader<'_, S> {
    fn event(&mut self, seq: u64, row: Row) -> io::Result<Option<FeedEvent>> {
        let view = EventView::parse(&row.line);
        if !self.in_scope(&view)? || !self.matches(&view)? {
            return Ok(None);
        }
        let (entries, asset) = match view.is_movement() {
            true => (self.entries(&view, row.timestamp_ns)?, view.asset),
            false => (Vec::new(), None),
        };
        Ok(Some(FeedEvent { cursor: seq, timestamp_ns: row.timestamp_ns, kind: view.kind, line: row.line, hash: row.hash, asset, entries }))
    }

    fn in_scope(&self, view: &EventView) -> io::Result<bool> {
        Ok(match self.scope {
            Scope::All => true,
            Scope::Owner(name) => view.is_movement() && self.movement_owner(view)? == *name,
            Scope::Wallet => match view.kind.as_str() {
                "wallet_token" | "wallet_exception" => true,
                "movement" => self.movement_owner(view)?.is_empty(),
                _ => false,
            },
        })
    }

    /// Who created a movement's transfer; an expiry (no owner of its own) is its hold's owner's.
    fn movement_owner(&self, view: &EventView) -> io::Result<String> {
        let owner = view.owner.clone().unwrap_or_default();
        let expiry = view.pending_id.is_some() && view.pending_id == view.transfer_id;
        if !owner.is_empty() || !expiry {
            return Ok(owner);
        }
        let Some(hold) = view.transfer_id.as_deref().and_then(|id| id.parse::<TransferId>().ok()) else { return Ok(owner) };
        Ok(store::get_transfer(self.store, hold)?.map(|t| t.owner).unwrap_or_default())
    }

    fn matches(&mut self, view: &EventView) -> io::Result<bool> {
        let f = self.filter;
        if !f.kinds.is_empty() && !f.kinds.contains(&view.kind) {
            return Ok(false);
        }
        if !f.transfer_codes.is_empty() && !(view.is_movement() && view.code.is_some_and(|c| f.transfer_codes.contains(&c))) {
            return Ok(false);
        }
        let accounts = view.accounts();
        if !f.accounts.is_empty() && !accounts.iter().any(|a| f.accounts.contains(a)) {
            return Ok(false);
        }
        if let Some(asset) = &f.asset {
            let event_asset = match &view.asset {
                Some(a) => Some(a.clone()),
                None => self.account_facts(&accounts)?.into_iter().next().map(|(asset, _)| asset),
            };
            if event_asset.as_ref() != Some(asset) {
                return Ok(false);
            }
        }
        if !f.account_codes.is_empty() && !self.account_codes(view, &accounts)?.iter().any(|c| f.account_codes.contains(c)) {
            return Ok(false);
        }
        Ok(true)
    }

    /// The codes of the accounts an event names: a movement's legs carry them, an account's
    /// creation its own; anything else is looked up.
    fn account_codes(&mut self, view: &EventView, accounts: &[AccountId]) -> io::Result<Vec<u32>> {
        if view.is_movement() {
            return Ok(view.legs.iter().flat_map(|l| [l.debit_account_code, l.credit_account_code]).collect());
        }
        if let (Some(code), Some(_)) = (view.code, &view.account_id) {
            return Ok(vec![code]);
        }
        Ok(self.account_facts(accounts)?.into_iter().map(|(_, code)| code).collect())
    }

    /// Asset and code of each account (those that exist), looked up once per page.
    fn account_facts(&mut self, accounts: &[AccountId]) -> io::Result<Vec<(String, u32)>> {
        let mut facts = Vec::with_capacity(accounts.len());
        for id in accounts {
            if !self.accounts.contains_key(id) {
                let found = store::get_account(self.store, *id)?.map(|a| (a.asset, a.code));
                self.accounts.insert(*id, found);
            }
            facts.extend(self.accounts[id].clone());
        }
        Ok(facts)
    }

    /// The entries a movement wrote: its accounts' entries at its time, of its transfer.
    fn entries(&self, view: &EventView, timestamp_ns: u64) -> io::Result<Vec<AccountEntry>> {
        let Some(transfer) = view.transfer_id.as_deref().and_then(|id| id.parse::<TransferId>().ok()) else { return Ok(Vec::new()) };
        let accounts: BTreeSet<AccountId> = view.accounts().into_iter().collect();
        let mut entries = Vec::new();
        for account in accounts {
            let at = store::account_entries(self.store, account, timestamp_ns.checked_sub(1), timestamp_ns.checked_add(1), 2 * crate::limits::TRANSFER_LEGS_MAX, false)?;
            entries.extend(at.into_iter().filter(|e| e.transfer_id == transfer));
        }
        entries.sort_by_key(|e| (e.leg_index, !e.is_debit));
        Ok(entries)
    }
}
