//! Property tests of the ledger's invariants over random command sequences (in memory):
//! - money is conserved per asset, posted and pending;
//! - no account ever breaks its balance flags;
//! - timestamps are strictly increasing, whatever the proposers' clocks do;
//! - an idempotent replay returns the first result and moves nothing;
//! - applying the same log gives byte-identical state, also when replayed from a snapshot.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::amount::DecimalInput;
use super::result::{ItemResult, ResultCode};
use super::store::{self, MemStore, Table};
use super::types::*;
use super::{Store, apply};

/// Accounts 1..=6 are CNY (scale 2), 7..=8 USD (scale 0); 1 and 7 are unconstrained sources.
const ACCOUNTS: u128 = 8;

fn account(id: u128) -> AccountInput {
    let (asset, dmnec, cmned, overdraft) = match id {
        1 => ("CNY", false, false, None),
        2 | 6 => ("CNY", true, false, None),
        3 => ("CNY", true, false, Some(DecimalInput { digits: 500, scale: 2 })),
        4 => ("CNY", false, true, None),
        5 => ("CNY", false, false, None),
        7 => ("USD", false, false, None),
        _ => ("USD", true, false, None),
    };
    AccountInput {
        id,
        asset: asset.into(),
        code: 1,
        debits_must_not_exceed_credits: dmnec,
        credits_must_not_exceed_debits: cmned,
        overdraft_limit: overdraft,
        metadata: BTreeMap::new(),
        external_ref: None,
    }
}

fn setup() -> Vec<Command> {
    let assets = vec![AssetInput { code: "CNY".into(), scale: 2 }, AssetInput { code: "USD".into(), scale: 0 }];
    vec![
        Command { proposed_at_ns: 1_000_000, operation: Operation::CreateAssets(assets) },
        Command { proposed_at_ns: 2_000_000, operation: Operation::CreateAccounts((1..=ACCOUNTS).map(account).collect()) },
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Transfer(TransferInput),
    /// Re-submit the n-th transfer input submitted so far (mod count), unchanged.
    Replay(usize),
    Status(StatusChangeInput),
    Tick,
}

fn leg() -> impl Strategy<Value = LegInput> {
    (1u128..=ACCOUNTS, 1u128..=ACCOUNTS, 1u128..3_000, 0u8..=3).prop_map(|(debit, credit, digits, scale)| LegInput {
        debit_account_id: debit,
        credit_account_id: credit,
        amount: DecimalInput { digits, scale },
    })
}

fn transfer() -> impl Strategy<Value = TransferInput> {
    (0u8..6, prop::collection::vec(leg(), 1..4), 1u128..60, 0u128..60, 0u64..4, prop::bool::ANY, prop::collection::vec(0u128..2_000, 0..3))
        .prop_map(|(kind, legs, id, pending_id, timeout_ms, usd, post)| {
            let kind = match kind {
                0 | 1 => TransferKind::Posted,
                2 | 3 => TransferKind::Pending,
                4 => TransferKind::PostPending,
                _ => TransferKind::VoidPending,
            };
            let resolves = matches!(kind, TransferKind::PostPending | TransferKind::VoidPending);
            TransferInput {
                id,
                idempotency_key: format!("key-{id}-{kind:?}"),
                asset: if resolves { String::new() } else if usd { "USD".into() } else { "CNY".into() },
                kind,
                legs: if resolves { Vec::new() } else { legs },
                pending_id: if resolves { pending_id } else { 0 },
                timeout_ms: if kind == TransferKind::Pending { timeout_ms } else { 0 },
                post_amounts: if kind == TransferKind::PostPending {
                    post.into_iter().map(|digits| DecimalInput { digits, scale: 2 }).collect()
                } else {
                    Vec::new()
                },
                code: 0,
            }
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => transfer().prop_map(Step::Transfer),
        2 => (0usize..1_000).prop_map(Step::Replay),
        1 => (1u128..=ACCOUNTS, 0u8..3).prop_map(|(account_id, s)| Step::Status(StatusChangeInput {
            account_id,
            status: [AccountStatus::Active, AccountStatus::Frozen, AccountStatus::Closed][s as usize],
            reason: "property test".into(),
        })),
        1 => Just(Step::Tick),
    ]
}

/// Commands from steps: a few steps per command, with clock jumps that go backwards too.
fn commands() -> impl Strategy<Value = Vec<(i64, Vec<Step>)>> {
    prop::collection::vec((-2_000_000i64..4_000_000, prop::collection::vec(step(), 1..5)), 1..40)
}

fn accounts(store: &MemStore) -> Vec<Account> {
    store
        .tables
        .get(&Table::Accounts)
        .map(|t| t.values().map(|v| store::decode(Table::Accounts, v).unwrap()).collect())
        .unwrap_or_default()
}

fn check_conservation_and_flags(store: &MemStore) -> Result<(), TestCaseError> {
    let mut sums: BTreeMap<String, [u128; 4]> = BTreeMap::new();
    for a in accounts(store) {
        let b = a.balances;
        let s = sums.entry(a.asset.clone()).or_default();
        s[0] += b.debits_posted;
        s[1] += b.credits_posted;
        s[2] += b.debits_pending;
        s[3] += b.credits_pending;
        if a.debits_must_not_exceed_credits {
            prop_assert!(b.debits_posted + b.debits_pending <= b.credits_posted + a.overdraft_limit_minor, "account {} broke debits_must_not_exceed_credits: {b:?}", a.id);
        }
        if a.credits_must_not_exceed_debits {
            prop_assert!(b.credits_posted + b.credits_pending <= b.debits_posted, "account {} broke credits_must_not_exceed_debits: {b:?}", a.id);
        }
    }
    for (asset, s) in sums {
        prop_assert_eq!(s[0], s[1], "posted money not conserved in {}", asset);
        prop_assert_eq!(s[2], s[3], "pending money not conserved in {}", asset);
    }
    Ok(())
}

/// Turns steps into concrete commands (replays pick earlier inputs) and applies them, checking
/// the invariants after every command. Returns the commands, for determinism checks.
#[derive(Debug, Default)]
struct Stats {
    ok: u64,
    replays: u64,
}

fn run(steps: Vec<(i64, Vec<Step>)>) -> Result<(Vec<Command>, MemStore, Stats), TestCaseError> {
    let mut stats = Stats::default();
    let mut store = MemStore::default();
    let mut commands = setup();
    for c in &commands {
        apply(&mut store, c).unwrap();
    }
    // Fund the constrained accounts so transfers can succeed.
    let fund = |id: u128, debit: u128, asset: &str, digits: u128| TransferInput {
        id: 1_000 + id,
        idempotency_key: format!("fund-{id}"),
        asset: asset.into(),
        kind: TransferKind::Posted,
        legs: vec![LegInput { debit_account_id: debit, credit_account_id: id, amount: DecimalInput { digits, scale: 0 } }],
        pending_id: 0,
        timeout_ms: 0,
        post_amounts: Vec::new(),
        code: 0,
    };
    let funding = Command {
        proposed_at_ns: 3_000_000,
        operation: Operation::CreateTransfers(vec![fund(2, 1, "CNY", 100), fund(3, 1, "CNY", 100), fund(6, 1, "CNY", 100), fund(8, 7, "USD", 100)]),
    };
    apply(&mut store, &funding).unwrap();
    commands.push(funding);

    let mut submitted: Vec<TransferInput> = Vec::new();
    let mut first_results: BTreeMap<String, ItemResult> = BTreeMap::new();
    let mut last_timestamp = store::last_timestamp(&store).unwrap();
    let mut now = 4_000_000i64;
    for (jump, group) in steps {
        now = (now + jump).max(1);
        let mut transfers = Vec::new();
        let mut replays = Vec::new();
        let mut statuses = Vec::new();
        let mut tick = false;
        for step in group {
            match step {
                Step::Transfer(t) => transfers.push(t),
                Step::Replay(n) if !submitted.is_empty() => {
                    let t = submitted[n % submitted.len()].clone();
                    replays.push(t.clone());
                    transfers.push(t);
                }
                Step::Replay(_) => {}
                Step::Status(s) => statuses.push(s),
                Step::Tick => tick = true,
            }
        }
        let mut batch = Vec::new();
        if !transfers.is_empty() {
            batch.push(Operation::CreateTransfers(transfers.clone()));
        }
        if !statuses.is_empty() {
            batch.push(Operation::SetAccountStatus(statuses));
        }
        if tick {
            batch.push(Operation::Tick);
        }
        for operation in batch {
            let is_transfers = matches!(operation, Operation::CreateTransfers(_));
            let command = Command { proposed_at_ns: now as u64, operation };
            let applied = apply(&mut store, &command).unwrap();
            check_conservation_and_flags(&store)?;
            // Every new timestamp is after every earlier one (replays and EXISTS give old ones).
            for r in &applied.results {
                if r.timestamp_ns != 0 && !r.replay && r.code != ResultCode::Exists {
                    prop_assert!(r.timestamp_ns > last_timestamp, "timestamp {} not after {}", r.timestamp_ns, last_timestamp);
                    last_timestamp = r.timestamp_ns;
                }
            }
            for e in &applied.entries {
                prop_assert!(e.timestamp_ns <= store::last_timestamp(&store).unwrap());
            }
            if is_transfers {
                for (t, r) in transfers.iter().zip(&applied.results) {
                    if replays.contains(t) {
                        // A replay of a first submission: its first result again, marked, and
                        // it wrote no balance entry of its own.
                        let first = first_results[&t.idempotency_key];
                        prop_assert!(r.replay, "replay not marked: {r:?}");
                        prop_assert_eq!((r.code, r.leg_index, r.timestamp_ns, r.id), (first.code, first.leg_index, first.timestamp_ns, first.id));
                        prop_assert!(applied.entries.iter().all(|e| e.timestamp_ns != r.timestamp_ns || r.timestamp_ns == 0));
                        stats.replays += 1;
                    } else if !first_results.contains_key(&t.idempotency_key) && super::validate::transfer(t).is_ok() {
                        first_results.insert(t.idempotency_key.clone(), *r);
                        submitted.push(t.clone());
                        stats.ok += u64::from(r.code == ResultCode::Ok);
                    }
                }
            }
            commands.push(command);
        }
    }
    Ok((commands, store, stats))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_and_replaying_the_log_gives_the_same_bytes(steps in commands(), cut in 0usize..1_000) {
        let (commands, store, _) = run(steps)?;
        // The same log on a fresh replica: byte-identical state.
        let mut replica = MemStore::default();
        for c in &commands {
            apply(&mut replica, c).unwrap();
        }
        prop_assert!(replica == store, "replica differs");
        prop_assert_eq!(replica.state_hash(), store.state_hash());
        // From a snapshot taken after `cut` commands, the rest of the log gives the same bytes.
        let cut = cut % (commands.len() + 1);
        let mut prefix = MemStore::default();
        for c in &commands[..cut] {
            apply(&mut prefix, c).unwrap();
        }
        let mut from_snapshot = prefix.clone();
        for c in &commands[cut..] {
            apply(&mut from_snapshot, c).unwrap();
        }
        prop_assert_eq!(from_snapshot.state_hash(), store.state_hash());
    }
}

#[test]
fn a_fixed_run_moves_money_and_replays() {
    let t = |id: u128, debit: u128, credit: u128, digits: u128| TransferInput {
        id,
        idempotency_key: format!("key-{id}-Posted"),
        asset: "CNY".into(),
        kind: TransferKind::Posted,
        legs: vec![LegInput { debit_account_id: debit, credit_account_id: credit, amount: DecimalInput { digits, scale: 2 } }],
        pending_id: 0,
        timeout_ms: 0,
        post_amounts: Vec::new(),
        code: 0,
    };
    let steps = vec![
        (1_000, vec![Step::Transfer(t(1, 2, 5, 150)), Step::Transfer(t(2, 5, 1, 100))]),
        (-500_000, vec![Step::Replay(0), Step::Replay(1), Step::Tick]),
    ];
    let (_, store, stats) = run(steps).unwrap();
    assert_eq!((stats.ok, stats.replays), (2, 2), "{stats:?}");
    let b = store::get_account(&store, 5).unwrap().unwrap().balances;
    assert_eq!((b.debits_posted, b.credits_posted), (100, 150), "each transfer moved once");
}

#[test]
fn the_invariant_checks_can_fail() {
    // A store where money appeared from nowhere must be caught.
    let mut store = MemStore::default();
    for c in setup() {
        apply(&mut store, &c).unwrap();
    }
    let mut a = store::get_account(&store, 2).unwrap().unwrap();
    a.balances.credits_posted += 1;
    store::put_account(&mut store, &a);
    assert!(check_conservation_and_flags(&store).is_err());
    // And a constrained account in overdraft.
    let mut store = MemStore::default();
    for c in setup() {
        apply(&mut store, &c).unwrap();
    }
    let mut a = store::get_account(&store, 2).unwrap().unwrap();
    let mut b = store::get_account(&store, 5).unwrap().unwrap();
    a.balances.debits_posted += 1;
    b.balances.credits_posted += 1;
    store::put_account(&mut store, &a);
    store::put_account(&mut store, &b);
    assert!(check_conservation_and_flags(&store).is_err());
    let _ = store.get(Table::Meta, b"x");
}
