//! The ledger state machine alone, in memory: how many transfers one core applies per second.
//! `cargo bench -p ledger-bench --bench apply`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ledger_core::amount::DecimalInput;
use ledger_core::types::*;
use ledger_core::{MemStore, apply};

const ACCOUNTS: u128 = 10_000;
const BATCH: usize = 8_190;

fn setup() -> MemStore {
    let mut store = MemStore::default();
    apply(&mut store, &Command { proposed_at_ns: 1, operation: Operation::CreateAssets(vec![AssetInput { code: "CNY".into(), scale: 2 }]) })
        .unwrap();
    let accounts: Vec<AccountInput> = (1..=ACCOUNTS)
        .map(|id| AccountInput {
            id,
            asset: "CNY".into(),
            code: 1,
            debits_must_not_exceed_credits: false,
            credits_must_not_exceed_debits: false,
            overdraft_limit: None,
            metadata: Default::default(),
            external_ref: None,
        })
        .collect();
    for chunk in accounts.chunks(BATCH) {
        apply(&mut store, &Command { proposed_at_ns: 2, operation: Operation::CreateAccounts(chunk.to_vec()) }).unwrap();
    }
    store
}

fn transfers(batch: u128) -> Command {
    let transfers = (0..BATCH as u128)
        .map(|i| {
            let id = batch * 1_000_000 + i + 1;
            let debit = (id * 7919) % ACCOUNTS + 1;
            let credit = (debit % ACCOUNTS) + 1;
            TransferInput {
                id,
                idempotency_key: format!("k{id}"),
                asset: "CNY".into(),
                kind: TransferKind::Posted,
                legs: vec![LegInput { debit_account_id: debit, credit_account_id: credit, amount: DecimalInput { digits: 100, scale: 2 } }],
                pending_id: 0,
                timeout_ms: 0,
                post_amounts: Vec::new(),
                code: 0,
                owner: String::new(),
            }
        })
        .collect();
    Command { proposed_at_ns: 10 + batch as u64, operation: Operation::CreateTransfers(transfers) }
}

fn bench_apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    let base = setup();
    let command = transfers(1);
    group.bench_function("8190 single-leg transfers, MemStore", |b| {
        // The store is returned, so criterion drops it outside the timed region: freeing a
        // store of ~80,000 rows is the allocator's work, not the state machine's.
        b.iter_batched(
            || base.clone(),
            |mut store| {
                let applied = apply(&mut store, &command).unwrap();
                (store, applied)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_apply);
criterion_main!(benches);
