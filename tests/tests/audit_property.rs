//! Property: for random workloads (posted and multi-leg transfers, holds posted in part, voided
//! or expired, freezes), an export of a random range ending at a pinned head — produced by the
//! node's own export code and written by the client's own writer — verifies, and its closing
//! balances equal the ledger's balances at that head. No network: the state is a `MemStore`.

use std::collections::BTreeMap;

use ledger_client::audit::export::ExportWriter;
use ledger_client::audit::verify::{self, Pin};
use ledger_client::timestamp::UtcOffset;
use ledger_core::amount::{DecimalInput, format_minor};
use ledger_core::audit::RangeRequest;
use ledger_core::journal;
use ledger_core::types::*;
use ledger_core::{MemStore, apply};
use ledger_proto::api::export_message::Part;
use proptest::prelude::*;

const ACCOUNTS: u128 = 6;
const MS: u64 = 1_000_000;

#[derive(Debug, Clone)]
enum Op {
    Posted(Vec<(u128, u128, u128)>),
    Pending { debit: u128, credit: u128, cents: u128, expires: bool },
    Post { pick: usize, part: bool },
    Void { pick: usize },
    Freeze { account: u128, frozen: bool },
}

fn account_id() -> impl Strategy<Value = u128> {
    1..=ACCOUNTS
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec((account_id(), account_id(), 1u128..50_000), 1..4).prop_map(Op::Posted),
        2 => (account_id(), account_id(), 1u128..20_000, any::<bool>())
            .prop_map(|(debit, credit, cents, expires)| Op::Pending { debit, credit, cents, expires }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, part)| Op::Post { pick, part }),
        1 => any::<usize>().prop_map(|pick| Op::Void { pick }),
        1 => (account_id(), any::<bool>()).prop_map(|(account, frozen)| Op::Freeze { account, frozen }),
    ]
}

fn cents(c: u128) -> DecimalInput {
    DecimalInput { digits: c, scale: 2 }
}

fn transfer(id: u128, kind: TransferKind, legs: Vec<(u128, u128, u128)>, pending_id: u128, timeout_ms: u64, post: Vec<DecimalInput>) -> TransferInput {
    TransferInput {
        id,
        idempotency_key: format!("k{id}"),
        asset: if pending_id == 0 { "CNY".into() } else { String::new() },
        kind,
        legs: legs.into_iter().map(|(d, c, a)| LegInput { debit_account_id: d, credit_account_id: c, amount: cents(a) }).collect(),
        pending_id,
        timeout_ms,
        post_amounts: post,
        code: 7,
        owner: String::new(),
    }
}

struct Run {
    store: MemStore,
    now_ns: u64,
    next_id: u128,
    holds: Vec<u128>,
}

impl Run {
    fn apply(&mut self, operation: Operation) {
        self.now_ns += MS;
        apply(&mut self.store, &Command { proposed_at_ns: self.now_ns, operation }).expect("apply");
    }

    fn op(&mut self, op: &Op) {
        self.next_id += 1;
        let id = self.next_id;
        let operation = match op {
            Op::Posted(legs) => Operation::CreateTransfers(vec![transfer(id, TransferKind::Posted, legs.clone(), 0, 0, vec![])]),
            Op::Pending { debit, credit, cents, expires } => {
                self.holds.push(id);
                let timeout = if *expires { 2 } else { 0 };
                Operation::CreateTransfers(vec![transfer(id, TransferKind::Pending, vec![(*debit, *credit, *cents)], 0, timeout, vec![])])
            }
            Op::Post { pick, part } if !self.holds.is_empty() => {
                let hold = self.holds[pick % self.holds.len()];
                let amounts = if *part { vec![cents(1)] } else { vec![] };
                Operation::CreateTransfers(vec![transfer(id, TransferKind::PostPending, vec![], hold, 0, amounts)])
            }
            Op::Void { pick } if !self.holds.is_empty() => {
                let hold = self.holds[pick % self.holds.len()];
                Operation::CreateTransfers(vec![transfer(id, TransferKind::VoidPending, vec![], hold, 0, vec![])])
            }
            Op::Freeze { account, frozen } => Operation::SetAccountStatus(vec![StatusChangeInput {
                account_id: *account,
                status: if *frozen { AccountStatus::Frozen } else { AccountStatus::Active },
                reason: "property".into(),
                actor: "auditor-test (admin)".into(),
            }]),
            _ => Operation::Tick,
        };
        self.apply(operation);
    }
}

fn setup() -> Run {
    let mut run = Run { store: MemStore::default(), now_ns: 1_700_000_000 * 1_000_000_000, next_id: 1_000, holds: Vec::new() };
    run.apply(Operation::CreateAssets(vec![AssetInput { code: "CNY".into(), scale: 2 }]));
    let accounts = (1..=ACCOUNTS)
        .map(|id| AccountInput {
            id,
            asset: "CNY".into(),
            code: if id == 1 { 100 } else { 200 },
            // Account 1 is the unlimited source; the others may not go negative.
            debits_must_not_exceed_credits: id != 1,
            credits_must_not_exceed_debits: false,
            overdraft_limit: None,
            metadata: BTreeMap::new(),
            external_ref: None,
        })
        .collect();
    run.apply(Operation::CreateAccounts(accounts));
    run
}

fn balances_now(store: &MemStore) -> BTreeMap<u128, Vec<String>> {
    (1..=ACCOUNTS)
        .map(|id| {
            let b = ledger_core::store::get_account(store, id).unwrap().unwrap().balances;
            (id, [b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending].iter().map(|v| format_minor(*v, 2)).collect())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn an_exported_range_verifies_and_closes_at_the_ledgers_balances(
        before in prop::collection::vec(op(), 1..40),
        after in prop::collection::vec(op(), 0..20),
        from_pick in any::<u64>(),
    ) {
        let mut run = setup();
        for op in &before {
            run.op(op);
        }
        let head = journal::head(&run.store).unwrap();
        let expected = balances_now(&run.store);
        for op in &after {
            run.op(op);
        }
        // A range ending at the pinned head, starting anywhere up to it.
        let from_seq = 1 + from_pick % head.seq;
        let mut parts = Vec::new();
        let snapshot = ledger_node::service::Snapshot::over(run.store.clone());
        ledger_node::api::audit::export(&snapshot, RangeRequest { from_seq, to_seq: head.seq, ..Default::default() }, &mut |p| {
            parts.push(p);
            true
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut parts = parts.into_iter();
        let Some(Part::Header(header)) = parts.next() else { panic!("no header") };
        let mut writer = ExportWriter::create(dir.path(), UtcOffset::default(), &header).unwrap();
        for part in parts {
            writer.part(part).unwrap();
        }
        let manifest = writer.finish().unwrap();
        prop_assert_eq!((manifest.from_seq, manifest.to_seq), (from_seq, head.seq));
        let report = verify::verify(dir.path(), Some(Pin { seq: head.seq, hash: head.hash }));
        prop_assert!(report.is_ok(), "{:?}", report);
        let balances = std::fs::read_to_string(dir.path().join("balances.csv")).unwrap();
        for row in balances.lines().skip(1) {
            let fields: Vec<&str> = row.split(',').collect();
            let id: u128 = fields[0].parse().unwrap();
            let closing: Vec<String> = fields[7..].iter().map(|s| s.to_string()).collect();
            prop_assert_eq!(&closing, &expected[&id], "account {} at seq {}", id, head.seq);
        }
        prop_assert_eq!(balances.lines().count() - 1, ACCOUNTS as usize);
    }
}
