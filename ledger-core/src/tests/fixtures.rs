//! Builders for commands, and a small ledger harness over `MemStore` that applies them with a
//! clock advancing 1 ms per command and checks that refused items change nothing.

use std::collections::BTreeMap;

use crate::amount::DecimalInput;
use crate::apply::{Applied, apply};
use crate::result::{ItemResult, ResultCode};
use crate::store::{self, MemStore, ReadStore, Store, Table};
use crate::types::*;

pub const MS: u64 = 1_000_000;
/// Proposal time of the first command.
pub const T0: u64 = 1_000_000_000;

// ---- the accounts and transfers of `Ledger::world()` ----

/// CNY, no limits: where money comes from.
pub const BANK: u128 = 1;
/// CNY, debits_must_not_exceed_credits; 100.00 received, 1.00 spent, 30.00 held by `HOLD`.
pub const WALLET: u128 = 2;
/// CNY, no limits.
pub const SHOP: u128 = 3;
/// CNY, credits_must_not_exceed_debits, no debits yet.
pub const CAPPED: u128 = 4;
/// USD, no limits.
pub const DOLLARS: u128 = 5;
/// CNY, frozen after receiving 1.00.
pub const FROZEN: u128 = 6;
/// CNY, closed.
pub const CLOSED: u128 = 7;
/// CNY, with external ref `REF`.
pub const REFERENCED: u128 = 8;
pub const REF: &str = "+8613800000000";

/// Posted: 100.00 BANK -> WALLET and 1.00 BANK -> FROZEN.
pub const FUNDING: u128 = 10;
/// Pending 30.00 WALLET -> SHOP, no timeout.
pub const HOLD: u128 = 50;
/// Pending 1.00 WALLET -> SHOP with a 1 ms timeout: expired by the next command.
pub const EXPIRED_HOLD: u128 = 51;
/// Pending 1.00 WALLET -> SHOP, posted in full by transfer 60.
pub const POSTED_HOLD: u128 = 52;
/// Pending 1.00 WALLET -> SHOP, voided by transfer 61.
pub const VOIDED_HOLD: u128 = 53;

// ---- inputs ----

/// An amount in hundredths (CNY and USD have scale 2): `cents(150)` is "1.50".
pub fn cents(digits: u128) -> DecimalInput {
    DecimalInput { digits, scale: 2 }
}

pub fn asset(code: &str, scale: u32) -> AssetInput {
    AssetInput { code: code.into(), scale }
}

pub fn account(id: u128, asset: &str) -> AccountInput {
    AccountInput {
        id,
        asset: asset.into(),
        code: 1,
        debits_must_not_exceed_credits: false,
        credits_must_not_exceed_debits: false,
        overdraft_limit: None,
        metadata: BTreeMap::new(),
        external_ref: None,
    }
}

/// An account whose debits may not exceed its credits plus `overdraft` cents.
pub fn limited(id: u128, asset: &str, overdraft: u128) -> AccountInput {
    AccountInput { debits_must_not_exceed_credits: true, overdraft_limit: Some(cents(overdraft)), ..account(id, asset) }
}

/// An account whose credits may not exceed its debits.
pub fn capped(id: u128, asset: &str) -> AccountInput {
    AccountInput { credits_must_not_exceed_debits: true, ..account(id, asset) }
}

pub fn leg(debit: u128, credit: u128, amount_cents: u128) -> LegInput {
    LegInput { debit_account_id: debit, credit_account_id: credit, amount: cents(amount_cents) }
}

/// A posted CNY transfer with key `key-{id}`; legs are (debit, credit, cents).
pub fn posted(id: u128, legs: &[(u128, u128, u128)]) -> TransferInput {
    TransferInput {
        id,
        idempotency_key: format!("key-{id}"),
        asset: "CNY".into(),
        kind: TransferKind::Posted,
        legs: legs.iter().map(|&(d, c, a)| leg(d, c, a)).collect(),
        pending_id: 0,
        timeout_ms: 0,
        post_amounts: Vec::new(),
        code: 0,
        owner: String::new(),
    }
}

pub fn pending(id: u128, legs: &[(u128, u128, u128)], timeout_ms: u64) -> TransferInput {
    TransferInput { kind: TransferKind::Pending, timeout_ms, ..posted(id, legs) }
}

/// POST_PENDING of `pending_id`: in full when `amounts` is empty, else these cents per leg.
pub fn post(id: u128, pending_id: u128, amounts: &[u128]) -> TransferInput {
    TransferInput {
        kind: TransferKind::PostPending,
        asset: String::new(),
        pending_id,
        post_amounts: amounts.iter().map(|&a| cents(a)).collect(),
        ..posted(id, &[])
    }
}

pub fn void(id: u128, pending_id: u128) -> TransferInput {
    TransferInput { kind: TransferKind::VoidPending, ..post(id, pending_id, &[]) }
}

pub fn status(account_id: u128, status: AccountStatus) -> StatusChangeInput {
    StatusChangeInput { account_id, status, reason: "test".into(), actor: "ops (admin)".into() }
}

pub fn transfers(items: Vec<TransferInput>) -> Operation {
    Operation::CreateTransfers(items)
}
pub fn transfer(item: TransferInput) -> Operation {
    Operation::CreateTransfers(vec![item])
}
/// Transfers with options (`Operation::CreateTransfersWith`).
pub fn with(items: Vec<(TransferInput, TransferExtras)>) -> Operation {
    let (items, extras) = items.into_iter().unzip();
    Operation::CreateTransfersWith { items, extras }
}

/// Extras that make a transfer a refund of `original`.
pub fn refund_of(original: u128) -> TransferExtras {
    TransferExtras { details: TransferDetails { refund_of: original, ..TransferDetails::default() }, linked: false }
}

/// Extras that link a transfer to the next one.
pub fn linked() -> TransferExtras {
    TransferExtras { linked: true, ..TransferExtras::default() }
}

pub fn assets(items: Vec<AssetInput>) -> Operation {
    Operation::CreateAssets(items)
}
pub fn accounts(items: Vec<AccountInput>) -> Operation {
    Operation::CreateAccounts(items)
}
pub fn statuses(items: Vec<StatusChangeInput>) -> Operation {
    Operation::SetAccountStatus(items)
}

// ---- reading the store ----

pub fn all_accounts(store: &MemStore) -> Vec<Account> {
    rows(store, Table::Accounts)
}

pub fn all_transfers(store: &MemStore) -> Vec<Transfer> {
    rows(store, Table::Transfers)
}

fn rows<T: serde::de::DeserializeOwned>(store: &MemStore, table: Table) -> Vec<T> {
    store
        .tables
        .get(&table)
        .map(|t| t.values().map(|v| store::decode(table, v).expect("decodable row")).collect())
        .unwrap_or_default()
}

/// Two stores hold the same rows (an emptied table counts as absent).
pub fn same_rows(a: &MemStore, b: &MemStore) -> bool {
    let non_empty = |s: &MemStore| s.tables.iter().filter(|(_, t)| !t.is_empty()).map(|(k, t)| (*k, t.clone())).collect::<Vec<_>>();
    non_empty(a) == non_empty(b)
}

/// With `LEDGER_GOLDEN_DIR` set, appends the state hash, results and entries after each command
/// to a file named after the test: two runs (before and after a change to apply) must give
/// identical files wherever the test is deterministic, byte for byte of every table.
pub fn golden(store: &MemStore, applied: &Applied) {
    let Some(dir) = std::env::var_os("LEDGER_GOLDEN_DIR") else { return };
    use std::io::Write;
    let name = std::thread::current().name().unwrap_or("unnamed").replace("::", ".");
    let hash: String = store.state_hash().iter().map(|b| format!("{b:02x}")).collect();
    let path = std::path::Path::new(&dir).join(name);
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("golden file");
    writeln!(file, "{hash} {:?} {:?}", applied.results, applied.entries).expect("golden write");
}

// ---- the harness ----

pub struct Ledger {
    pub store: MemStore,
    /// The proposal time of the last command.
    pub now: u64,
    next_id: u128,
}

impl Ledger {
    /// A ledger with nothing in it.
    pub fn empty() -> Ledger {
        Ledger { store: MemStore::default(), now: T0, next_id: 1_000 }
    }

    /// A ledger with assets CNY and USD (scale 2) and JPY (scale 0).
    pub fn new() -> Ledger {
        let mut l = Ledger::empty();
        let results = l.apply(assets(vec![asset("CNY", 2), asset("USD", 2), asset("JPY", 0)])).results;
        assert!(results.iter().all(|r| r.code == ResultCode::Ok), "{results:?}");
        l
    }

    /// The ledger described by the constants above.
    pub fn world() -> Ledger {
        let mut l = Ledger::new();
        let mut referenced = account(REFERENCED, "CNY");
        referenced.external_ref = Some(REF.into());
        l.all_ok(accounts(vec![
            account(BANK, "CNY"),
            limited(WALLET, "CNY", 0),
            account(SHOP, "CNY"),
            capped(CAPPED, "CNY"),
            account(DOLLARS, "USD"),
            account(FROZEN, "CNY"),
            account(CLOSED, "CNY"),
            referenced,
        ]));
        l.all_ok(transfers(vec![
            posted(FUNDING, &[(BANK, WALLET, 10_000), (BANK, FROZEN, 100)]),
            pending(HOLD, &[(WALLET, SHOP, 3_000)], 0),
            pending(EXPIRED_HOLD, &[(WALLET, SHOP, 100)], 1),
            pending(POSTED_HOLD, &[(WALLET, SHOP, 100)], 0),
            pending(VOIDED_HOLD, &[(WALLET, SHOP, 100)], 0),
        ]));
        l.all_ok(transfers(vec![post(60, POSTED_HOLD, &[]), void(61, VOIDED_HOLD)]));
        l.all_ok(statuses(vec![status(FROZEN, AccountStatus::Frozen), status(CLOSED, AccountStatus::Closed)]));
        assert_eq!(l.transfer(EXPIRED_HOLD).pending_state, PendingState::Expired);
        l
    }

    /// A transfer id no test has used (keys follow: `key-{id}`).
    pub fn fresh_id(&mut self) -> u128 {
        self.next_id += 1;
        self.next_id
    }

    /// Applies a command proposed 1 ms after the previous one.
    pub fn apply(&mut self, operation: Operation) -> Applied {
        self.apply_at(self.now + MS, operation)
    }

    /// Applies a command with this proposal time (which may be in the past).
    pub fn apply_at(&mut self, proposed_at_ns: u64, operation: Operation) -> Applied {
        self.now = proposed_at_ns;
        let applied = apply(&mut self.store, &Command { proposed_at_ns, operation }).expect("in-memory apply");
        golden(&self.store, &applied);
        applied
    }

    /// Applies a one-item command and returns its result.
    pub fn one(&mut self, operation: Operation) -> ItemResult {
        let results = self.apply(operation).results;
        assert_eq!(results.len(), 1);
        results[0]
    }

    /// Applies a command whose items must all succeed with OK.
    pub fn all_ok(&mut self, operation: Operation) -> Vec<ItemResult> {
        let results = self.apply(operation).results;
        assert!(results.iter().all(|r| r.code == ResultCode::Ok && !r.replay), "{results:?}");
        results
    }

    pub fn ok(&mut self, operation: Operation) -> ItemResult {
        let r = self.one(operation);
        assert_eq!((r.code, r.leg_index, r.replay), (ResultCode::Ok, None, false), "{r:?}");
        r
    }

    /// Applies one item that must leave the ledger as it was: byte-identical, except that a
    /// transfer refused after validation records its outcome under its idempotency key (which
    /// also takes a timestamp). Returns its result.
    pub fn changes_nothing(&mut self, operation: Operation) -> ItemResult {
        let key = match &operation {
            Operation::CreateTransfers(items) | Operation::CreateTransfersWith { items, .. } if items.len() == 1 => {
                Some(items[0].idempotency_key.clone())
            }
            _ => None,
        };
        let before = self.store.clone();
        let applied = self.apply(operation);
        assert_eq!(applied.results.len(), 1);
        let r = applied.results[0];
        assert!(applied.entries.is_empty(), "{r:?} wrote entries: {:?}", applied.entries);
        let mut after = self.store.clone();
        if let Some(key) = key {
            let newly_recorded = store::get_idempotency(&before, &key).unwrap().is_none()
                && store::get_idempotency(&after, &key).unwrap().is_some();
            if newly_recorded {
                let record = store::get_idempotency(&after, &key).unwrap().unwrap();
                assert_eq!((record.code, record.leg_index, record.timestamp_ns), (r.code, r.leg_index, r.timestamp_ns));
                assert_eq!(store::last_timestamp(&after).unwrap(), r.timestamp_ns);
                after.delete(Table::Idempotency, key.as_bytes());
                after.tables.remove(&Table::Meta);
                if let Some(meta) = before.tables.get(&Table::Meta) {
                    after.tables.insert(Table::Meta, meta.clone());
                }
            }
        }
        assert!(same_rows(&before, &after), "{r:?} changed the ledger");
        r
    }

    /// Asserts that one item is refused with `code`, naming `leg`, and changes nothing.
    pub fn refuses(&mut self, operation: Operation, code: ResultCode, leg: Option<u8>) -> ItemResult {
        let r = self.changes_nothing(operation);
        assert_eq!((r.code, r.leg_index, r.replay), (code, leg, false), "{r:?}");
        r
    }

    pub fn account(&self, id: u128) -> Account {
        store::get_account(&self.store, id).unwrap().unwrap_or_else(|| panic!("no account {id}"))
    }

    pub fn balances(&self, id: u128) -> Balances {
        self.account(id).balances
    }

    /// (debits_posted, credits_posted, debits_pending, credits_pending) of an account.
    pub fn b(&self, id: u128) -> (u128, u128, u128, u128) {
        let b = self.balances(id);
        (b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending)
    }

    pub fn transfer(&self, id: u128) -> Transfer {
        self.find_transfer(id).unwrap_or_else(|| panic!("no transfer {id}"))
    }

    pub fn find_transfer(&self, id: u128) -> Option<Transfer> {
        store::get_transfer(&self.store, id).unwrap()
    }

    pub fn all_balances(&self) -> Vec<(u128, Balances)> {
        all_accounts(&self.store).into_iter().map(|a| (a.id, a.balances)).collect()
    }

    pub fn last_timestamp(&self) -> u64 {
        store::last_timestamp(&self.store).unwrap()
    }

    pub fn entries(&self, account_id: u128) -> Vec<AccountEntry> {
        store::account_entries(&self.store, account_id, None, None, usize::MAX, false).unwrap()
    }

    pub fn has_expiry_key(&self, transfer: &Transfer) -> bool {
        self.store.get(Table::PendingExpiry, &store::expiry_key(transfer.expires_at_ns, transfer.id)).unwrap().is_some()
    }
}
