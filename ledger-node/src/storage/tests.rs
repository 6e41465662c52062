//! The RocksDB store must hold exactly the bytes the in-memory reference store holds after the
//! same commands, however the commands are grouped into write batches and whatever the row cache
//! holds. This is what lets the
//! ledger's in-memory property tests speak for the real storage, and it exercises the overlay's
//! reads and merged scans (expiry, history) inside one batch.

use proptest::prelude::*;

use super::{BatchStore, RowCache, open};
use ledger_core::amount::DecimalInput;
use ledger_core::store::{MemStore, state_hash};
use ledger_core::types::*;
use ledger_core::{Table, apply};
use crate::storage::db::{Cf, cf};

const ACCOUNTS: u128 = 6;

fn setup_commands() -> Vec<Command> {
    let accounts = (1..=ACCOUNTS)
        .map(|id| AccountInput {
            id,
            asset: "CNY".into(),
            code: 1,
            debits_must_not_exceed_credits: id % 2 == 0,
            credits_must_not_exceed_debits: false,
            overdraft_limit: None,
            metadata: Default::default(),
            external_ref: None,
        })
        .collect();
    vec![
        Command { proposed_at_ns: 1_000, operation: Operation::CreateAssets(vec![AssetInput { code: "CNY".into(), scale: 2 }]) },
        Command { proposed_at_ns: 2_000, operation: Operation::CreateAccounts(accounts) },
    ]
}

/// One random transfer-ish item: posted or pending (maybe with a timeout), or a post/void of
/// an earlier id, with keys that sometimes repeat (replays and conflicts).
fn transfer_strategy() -> impl Strategy<Value = TransferInput> {
    (0u8..4, 1u128..=ACCOUNTS, 1u128..=ACCOUNTS, 1u128..500, 1u128..40, 0u64..3, 0u8..30).prop_map(
        |(kind, debit, credit, amount, id, timeout_ms, key)| {
            let kind = [TransferKind::Posted, TransferKind::Pending, TransferKind::PostPending, TransferKind::VoidPending]
                [kind as usize];
            let resolves = matches!(kind, TransferKind::PostPending | TransferKind::VoidPending);
            TransferInput {
                id: if resolves { 100 + id } else { id },
                idempotency_key: format!("k{key}"),
                asset: if resolves { String::new() } else { "CNY".into() },
                kind,
                legs: if resolves {
                    Vec::new()
                } else {
                    vec![LegInput { debit_account_id: debit, credit_account_id: credit, amount: DecimalInput { digits: amount, scale: 2 } }]
                },
                pending_id: if resolves { id } else { 0 },
                timeout_ms: if kind == TransferKind::Pending { timeout_ms } else { 0 },
                post_amounts: Vec::new(),
                code: 0,
                owner: String::new(),
            }
        },
    )
}

fn command_strategy() -> impl Strategy<Value = (u64, Vec<TransferInput>, bool)> {
    // Time steps of 0..3 ms cross the 0..2 ms timeouts; `true` makes it a Tick.
    (0u64..3_000_000, prop::collection::vec(transfer_strategy(), 0..6), prop::bool::weighted(0.15))
}

fn rocks_hash(db: &rocksdb::DB) -> [u8; 32] {
    let mut rows = Vec::new();
    for table in Table::ALL {
        for item in db.iterator_cf(cf(db, Cf::Ledger(table)), rocksdb::IteratorMode::Start) {
            let (k, v) = item.unwrap();
            rows.push((table, k, v));
        }
    }
    state_hash(rows.iter().map(|(t, k, v)| (*t, &k[..], &v[..])))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn rocksdb_store_matches_the_in_memory_store(
        steps in prop::collection::vec(command_strategy(), 1..40),
        group in 1usize..5,
        cache_rows in 1usize..12,
    ) {
        let mut commands = setup_commands();
        let mut now = 3_000u64;
        for (step, transfers, tick) in steps {
            now += step;
            let operation = if tick { Operation::Tick } else { Operation::CreateTransfers(transfers) };
            commands.push(Command { proposed_at_ns: now, operation });
        }

        let mut memory = MemStore::default();
        let mut memory_results = Vec::new();
        for command in &commands {
            memory_results.push(apply(&mut memory, command).unwrap().results);
        }

        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path()).unwrap();
        let mut rocks_results = Vec::new();
        // A row cache so small that it is cleared often: it must never change a result.
        let cache = std::sync::Mutex::new(RowCache::new(cache_rows));
        // Several commands per write batch, as one Raft apply does.
        for chunk in commands.chunks(group) {
            let mut batch = BatchStore::with_cache(&db, &cache);
            for command in chunk {
                rocks_results.push(apply(&mut batch, command).unwrap().results);
            }
            let (write, cached) = batch.into_parts();
            db.write(write).unwrap();
            cache.lock().unwrap().apply(cached);
        }
        prop_assert_eq!(&rocks_results, &memory_results);
        prop_assert_eq!(rocks_hash(&db), memory.state_hash());
    }
}

/// Found by the jepsen bank workload (a read of all balances summed to 8043 instead of 8000):
/// a `ReadStore` (now `RocksSnapshot`) read each account at a different moment, so a transfer applied between two gets
/// showed one leg and not the other. Every read through one `RocksSnapshot` must see one state.
#[test]
fn a_read_store_sees_one_state_even_while_transfers_apply() {
    use ledger_core::store::ReadStore;
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).unwrap();
    let mut commands = setup_commands();
    let transfer = |id: u128, key: &str, digits: u128| TransferInput {
        id,
        idempotency_key: key.into(),
        asset: "CNY".into(),
        kind: TransferKind::Posted,
        legs: vec![LegInput { debit_account_id: 1, credit_account_id: 3, amount: DecimalInput { digits, scale: 2 } }],
        pending_id: 0,
        timeout_ms: 0,
        post_amounts: Vec::new(),
        code: 0,
        owner: String::new(),
    };
    let fund = transfer(100, "fund", 1_000);
    commands.push(Command { proposed_at_ns: 3_000, operation: Operation::CreateTransfers(vec![fund]) });
    for command in &commands {
        let mut batch = BatchStore::new(&db);
        apply(&mut batch, command).unwrap();
        db.write(batch.into_parts().0).unwrap();
    }
    let reader = super::RocksSnapshot::new(&db);
    let rows = reader.scan(Table::Accounts, &[0], &[0xff; 40], 100, false).unwrap();
    let first_key = rows[0].0.clone();
    let before = (reader.get(Table::Accounts, &first_key).unwrap(), rows);
    // A second transfer applies after the reader was made: the reader must not see it.
    let again = transfer(101, "again", 500);
    let mut batch = BatchStore::new(&db);
    apply(&mut batch, &Command { proposed_at_ns: 4_000, operation: Operation::CreateTransfers(vec![again]) }).unwrap();
    db.write(batch.into_parts().0).unwrap();
    let after = (reader.get(Table::Accounts, &first_key).unwrap(), reader.scan(Table::Accounts, &[0], &[0xff; 40], 100, false).unwrap());
    assert_eq!(before, after, "a reader saw a write applied after it was made");
    assert!(before.1.len() >= 2, "the scan read the accounts");
    let fresh = super::RocksSnapshot::new(&db);
    assert_ne!(fresh.scan(Table::Accounts, &[0], &[0xff; 40], 100, false).unwrap(), before.1, "a new reader sees the new state");
}

/// A `RocksSnapshot` owns its handle on the database (an audit export moves its view to a
/// blocking task): it reads the same state on another thread after every other handle is gone.
#[test]
fn a_snapshot_outlives_every_other_handle_on_the_database() {
    use ledger_core::store::ReadStore;
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).unwrap();
    for command in &setup_commands() {
        let mut batch = BatchStore::new(&db);
        apply(&mut batch, command).unwrap();
        db.write(batch.into_parts().0).unwrap();
    }
    let snapshot = super::RocksSnapshot::new(&db);
    let expected = snapshot.scan(Table::Accounts, &[0], &[0xff; 40], 100, false).unwrap();
    assert!(expected.len() >= 2, "the scan read the accounts");
    drop(db);
    let read = std::thread::spawn(move || snapshot.scan(Table::Accounts, &[0], &[0xff; 40], 100, false).unwrap());
    assert_eq!(read.join().unwrap(), expected);
}

/// A byte flipped inside an SST data block of a closed database: the open must refuse with the
/// typed corruption error (RocksDB alone opens it and fails only when the block is read).
#[test]
fn a_flipped_byte_in_an_sst_data_block_refuses_the_open() {
    use super::db::{TableCorruption, open_with};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    {
        let db = open(&path).expect("open");
        let family = cf(&db, Cf::Ledger(Table::Transfers));
        for i in 0u32..2_000 {
            // Incompressible-ish values so the first data block is a few KiB of real bytes.
            let value: Vec<u8> = (0..100u32).map(|j| (i.wrapping_mul(2_654_435_761).wrapping_add(j * 40_503) >> 13) as u8).collect();
            db.put_cf(family, i.to_be_bytes(), value).expect("put");
        }
        db.flush_cf(family).expect("flush to an SST");
    }
    let ssts: Vec<std::path::PathBuf> = std::fs::read_dir(&path)
        .expect("db dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .collect();
    assert_eq!(ssts.len(), 1, "{ssts:?}");
    // Data blocks come first in a block-based table: byte 100 is inside the first one.
    let mut bytes = std::fs::read(&ssts[0]).expect("read sst");
    assert!(bytes.len() > 8_192, "several data blocks: {}", bytes.len());
    bytes[100] ^= 0x5a;
    std::fs::write(&ssts[0], &bytes).expect("write sst");

    // RocksDB itself opens the damaged database: that is the gap the scan closes.
    assert!(open_with(&path, false).is_ok(), "RocksDB's own open does not read data blocks");
    let error = open(&path).err().expect("the open must refuse a corrupted SST");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
    let corruption = error.get_ref().and_then(|e| e.downcast_ref::<TableCorruption>()).expect("a TableCorruption");
    assert_eq!(corruption.column_family, Table::Transfers.name());
    assert!(corruption.detail.contains("checksum mismatch") && corruption.detail.contains(".sst"), "{corruption:?}");
    assert!(error.to_string().contains("remove the node and add a fresh one"), "{error}");
}

#[test]
fn an_intact_database_passes_the_scan_at_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    {
        let db = open(&path).expect("open");
        let family = cf(&db, Cf::Ledger(Table::Accounts));
        for i in 0u32..500 {
            db.put_cf(family, i.to_be_bytes(), [7u8; 64]).expect("put");
        }
        db.flush_cf(family).expect("flush");
        db.put_cf(family, b"in the memtable", b"x").expect("put");
    }
    let db = open(&path).expect("reopen");
    let verified = super::db::verify_tables_of(&db).expect("verify");
    assert_eq!(verified.rows, 501);
}
