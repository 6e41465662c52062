//! The ledger's view of storage: ordered key-value tables, and the typed accessors the rules
//! use. The rules see only this trait; `storage::` gives it a RocksDB body, `MemStore` an
//! in-memory one for tests and benchmarks. Both must produce the same bytes for the same log.

use std::collections::BTreeMap;
use std::io;

use serde::de::DeserializeOwned;

use super::types::*;

/// The logical tables of the ledger state. Each is a RocksDB column family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Singletons: last timestamp.
    Meta,
    /// asset code -> Asset
    Assets,
    /// account id (16 B BE) -> Account
    Accounts,
    /// external ref bytes -> account id
    ExternalRefs,
    /// transfer id (16 B BE) -> Transfer
    Transfers,
    /// idempotency key bytes -> IdempotencyRecord
    Idempotency,
    /// account id ‖ timestamp (8 B BE) ‖ leg (1 B) ‖ side (1 B) -> AccountEntry
    Entries,
    /// expires_at (8 B BE) ‖ transfer id -> ()
    PendingExpiry,
    /// token id -> wallet::Token
    WalletTokens,
    /// token id ‖ sequence (8 B BE) -> wallet::PostedRecord: the de-duplication key
    WalletRecords,
    /// token id ‖ timestamp (8 B BE) -> wallet::WalletException
    WalletExceptions,
    /// release_at (8 B BE) ‖ token id -> ()
    WalletReleases,
    /// seq (8 B BE) -> journal::Row: the hash-chained audit journal, never deleted
    Journal,
    /// risk::scope_key -> risk::LimitRule
    Limits,
    /// account id -> risk::DailyUsage (the account's current day only)
    DailyDebits,
    /// wallet::blocklist key -> wallet::BlockEntry
    Blocklist,
    /// account id ‖ timestamp (8 B BE) -> account::history::AccountChange
    AccountChanges,
    /// rule id (8 B BE) -> risk::rules::Rule
    RiskRules,
    /// rule id (8 B BE) ‖ account id -> risk::rules::Usage (the current window only)
    RiskUsage,
    /// transfer id -> TransferDetails (refund link, reference, metadata); only when not empty
    TransferDetails,
    /// original transfer id -> Refunded: what its refunds took, per leg
    Refunds,
}

impl Table {
    pub const ALL: [Table; 21] = [
        Table::Meta,
        Table::Assets,
        Table::Accounts,
        Table::ExternalRefs,
        Table::Transfers,
        Table::Idempotency,
        Table::Entries,
        Table::PendingExpiry,
        Table::WalletTokens,
        Table::WalletRecords,
        Table::WalletExceptions,
        Table::WalletReleases,
        Table::Journal,
        Table::Limits,
        Table::DailyDebits,
        Table::Blocklist,
        Table::AccountChanges,
        Table::RiskRules,
        Table::RiskUsage,
        Table::TransferDetails,
        Table::Refunds,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "ledger_meta",
            Table::Assets => "assets",
            Table::Accounts => "accounts",
            Table::ExternalRefs => "external_refs",
            Table::Transfers => "transfers",
            Table::Idempotency => "idempotency",
            Table::Entries => "entries",
            Table::PendingExpiry => "pending_expiry",
            Table::WalletTokens => "wallet_tokens",
            Table::WalletRecords => "wallet_records",
            Table::WalletExceptions => "wallet_exceptions",
            Table::WalletReleases => "wallet_releases",
            Table::Journal => "journal",
            Table::Limits => "limits",
            Table::DailyDebits => "daily_debits",
            Table::Blocklist => "blocklist",
            Table::AccountChanges => "account_changes",
            Table::RiskRules => "risk_rules",
            Table::RiskUsage => "risk_usage",
            Table::TransferDetails => "transfer_details",
            Table::Refunds => "refunds",
        }
    }
}

pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Reading the tables (TiKV `engine_traits`: peekable and iterable). A read-only view (the
/// node's RocksDB snapshot) implements this alone; the typed getters below ask only for it.
pub trait ReadStore {
    fn get(&self, table: Table, key: &[u8]) -> io::Result<Option<Vec<u8>>>;
    /// Up to `limit` pairs with `start <= key < end`, ascending (descending when `reverse`).
    fn scan(&self, table: Table, start: &[u8], end: &[u8], limit: usize, reverse: bool)
    -> io::Result<Vec<KeyValue>>;
}

/// Writing the tables (`engine_traits`: mutable): what `apply` runs over. Every writable store
/// also reads (the writes of one apply are readable before they are written).
pub trait Store: ReadStore {
    fn put(&mut self, table: Table, key: &[u8], value: Vec<u8>);
    fn delete(&mut self, table: Table, key: &[u8]);
}

// ---- values: CRC-32 ‖ postcard, so a flipped bit is refused, not served ----

struct TableName(Table);
impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ledger state in table {}", self.0.name())
    }
}

pub use crate::codec::encode;

pub fn decode<T: DeserializeOwned>(table: Table, bytes: &[u8]) -> io::Result<T> {
    crate::codec::decode(&TableName(table), bytes)
}

pub fn corruption(table: Table, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("corrupted ledger state in table {}: {what}", table.name()))
}

// ---- keys ----

pub fn id_key(id: u128) -> [u8; 16] {
    id.to_be_bytes()
}

pub fn entry_key(account_id: AccountId, timestamp_ns: u64, leg_index: u8, is_debit: bool) -> [u8; 26] {
    let mut key = [0u8; 26];
    key[..16].copy_from_slice(&account_id.to_be_bytes());
    key[16..24].copy_from_slice(&timestamp_ns.to_be_bytes());
    key[24] = leg_index;
    key[25] = u8::from(!is_debit);
    key
}

pub fn expiry_key(expires_at_ns: u64, transfer_id: TransferId) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&expires_at_ns.to_be_bytes());
    key[8..].copy_from_slice(&transfer_id.to_be_bytes());
    key
}

pub fn expiry_key_parts(key: &[u8]) -> Option<(u64, TransferId)> {
    let at = u64::from_be_bytes(key.get(..8)?.try_into().ok()?);
    let id = u128::from_be_bytes(key.get(8..24)?.try_into().ok()?);
    Some((at, id))
}

const META_LAST_TIMESTAMP: &[u8] = b"last_timestamp_ns";

// ---- typed accessors ----

pub fn get_typed<T: DeserializeOwned>(store: &impl ReadStore, table: Table, key: &[u8]) -> io::Result<Option<T>> {
    store.get(table, key)?.map(|bytes| decode(table, &bytes)).transpose()
}

pub fn last_timestamp(store: &impl ReadStore) -> io::Result<u64> {
    Ok(get_typed::<u64>(store, Table::Meta, META_LAST_TIMESTAMP)?.unwrap_or(0))
}
pub fn set_last_timestamp(store: &mut impl Store, timestamp_ns: u64) {
    store.put(Table::Meta, META_LAST_TIMESTAMP, encode(&timestamp_ns));
}

pub fn get_asset(store: &impl ReadStore, code: &str) -> io::Result<Option<Asset>> {
    get_typed(store, Table::Assets, code.as_bytes())
}
pub fn get_account(store: &impl ReadStore, id: AccountId) -> io::Result<Option<Account>> {
    get_typed(store, Table::Accounts, &id_key(id))
}
pub fn put_account(store: &mut impl Store, account: &Account) {
    store.put(Table::Accounts, &id_key(account.id), encode(account));
}
pub fn get_transfer(store: &impl ReadStore, id: TransferId) -> io::Result<Option<Transfer>> {
    get_typed(store, Table::Transfers, &id_key(id))
}
pub fn put_transfer(store: &mut impl Store, transfer: &Transfer) {
    store.put(Table::Transfers, &id_key(transfer.id), encode(transfer));
}
pub fn get_transfer_details(store: &impl ReadStore, id: TransferId) -> io::Result<Option<TransferDetails>> {
    get_typed(store, Table::TransferDetails, &id_key(id))
}
pub fn get_refunded(store: &impl ReadStore, original: TransferId) -> io::Result<Option<Refunded>> {
    get_typed(store, Table::Refunds, &id_key(original))
}
pub fn get_idempotency(store: &impl ReadStore, key: &str) -> io::Result<Option<IdempotencyRecord>> {
    get_typed(store, Table::Idempotency, key.as_bytes())
}
pub fn account_id_by_external_ref(store: &impl ReadStore, external_ref: &str) -> io::Result<Option<AccountId>> {
    get_typed(store, Table::ExternalRefs, external_ref.as_bytes())
}
pub fn put_entry(store: &mut impl Store, entry: &AccountEntry) {
    let key = entry_key(entry.account_id, entry.timestamp_ns, entry.leg_index, entry.is_debit);
    store.put(Table::Entries, &key, encode(entry));
}

/// An account's entries in time order from a cursor, for history pages and balance-at queries.
pub fn account_entries(
    store: &impl ReadStore,
    account_id: AccountId,
    after_ns: Option<u64>,
    before_ns: Option<u64>,
    limit: usize,
    reverse: bool,
) -> io::Result<Vec<AccountEntry>> {
    let start = match after_ns {
        Some(ts) if ts == u64::MAX => return Ok(Vec::new()),
        Some(ts) => entry_key(account_id, ts + 1, 0, true).to_vec(),
        None => entry_key(account_id, 0, 0, true).to_vec(),
    };
    let end = match before_ns {
        Some(ts) => entry_key(account_id, ts, 0, true).to_vec(),
        None => match account_id.checked_add(1) {
            Some(next) => entry_key(next, 0, 0, true).to_vec(),
            None => vec![0xff; 27],
        },
    };
    store
        .scan(Table::Entries, &start, &end, limit, reverse)?
        .iter()
        .map(|(_, v)| decode(Table::Entries, v))
        .collect()
}

/// An in-memory store: the reference body of `Store`, for property tests and benchmarks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemStore {
    pub tables: BTreeMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl ReadStore for MemStore {
    fn get(&self, table: Table, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        Ok(self.tables.get(&table).and_then(|t| t.get(key)).cloned())
    }

    fn scan(&self, table: Table, start: &[u8], end: &[u8], limit: usize, reverse: bool) -> io::Result<Vec<KeyValue>> {
        let Some(t) = self.tables.get(&table) else { return Ok(Vec::new()) };
        if start >= end {
            return Ok(Vec::new());
        }
        let range = t.range(start.to_vec()..end.to_vec());
        let pairs: Vec<KeyValue> = if reverse {
            range.rev().take(limit).map(|(k, v)| (k.clone(), v.clone())).collect()
        } else {
            range.take(limit).map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        Ok(pairs)
    }
}

impl Store for MemStore {
    fn put(&mut self, table: Table, key: &[u8], value: Vec<u8>) {
        self.tables.entry(table).or_default().insert(key.to_vec(), value);
    }

    fn delete(&mut self, table: Table, key: &[u8]) {
        if let Some(t) = self.tables.get_mut(&table) {
            t.remove(key);
        }
    }
}

/// SHA-256 over every table, key and value in order: equal on every replica at the same index.
pub fn state_hash<'a>(pairs: impl Iterator<Item = (Table, &'a [u8], &'a [u8])>) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (table, key, value) in pairs {
        hasher.update([table as u8]);
        hasher.update((key.len() as u32).to_le_bytes());
        hasher.update(key);
        hasher.update((value.len() as u32).to_le_bytes());
        hasher.update(value);
    }
    hasher.finalize().into()
}

impl MemStore {
    pub fn state_hash(&self) -> [u8; 32] {
        state_hash(
            self.tables
                .iter()
                .flat_map(|(t, kv)| kv.iter().map(move |(k, v)| (*t, k.as_slice(), v.as_slice()))),
        )
    }
}
