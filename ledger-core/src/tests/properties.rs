//! Properties of random command sequences: three assets, nine accounts (three unlimited banks,
//! six with random assets and flags), multi-leg posted and pending transfers, posts (full and
//! partial) and voids, status changes, ticks, retries of earlier idempotency keys (same content
//! and altered), stray account ids, reused transfer ids, and proposal times that jump backwards.
//!
//! After every command:
//! (a) money is conserved per asset, posted and pending;
//! (b) no account breaks its balance flags (overdraft included);
//! (e) every new timestamp is after every earlier one (expiries first, then the items in order);
//! and the holds agree with the balances: each account's pending balances are the sum of the
//! legs of the transfers still pending, and only those have an expiry scheduled, after the
//! command's start.
//! (d) A retry of a recorded key returns the first result marked as a replay (altered content:
//! IDEMPOTENCY_KEY_CONFLICT); a command of retries only changes no balance and no transfer
//! (beyond holds that expire at its start).
//! At the end: every account's entries replay to its balances, leg by leg; the audit journal
//! chains without a gap and its movements alone replay the same balances; and (c) the same
//! log applied to two fresh stores (one through the log encoding), and from a snapshot taken
//! after a random prefix, gives the same results, byte-identical stores and the same state hash.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::fixtures::{MS, T0, all_accounts, all_transfers};
use crate::amount::DecimalInput;
use crate::apply::{Applied, apply};
use crate::result::{ItemResult, ResultCode};
use crate::store::{self, MemStore, Table};
use crate::types::*;

const ASSETS: [(&str, u32); 3] = [("CNY", 2), ("USD", 2), ("JPY", 0)];
/// Accounts 1..=3 are the unlimited banks of the three assets; 4..=9 are random.
const ACCOUNTS: u128 = 9;

// ---- what is generated ----

#[derive(Debug, Clone)]
struct AccountSpec {
    asset: usize,
    /// 0: no flags, 1: debits within credits, 2: the same with an overdraft, 3: credits within debits.
    flags: u8,
    overdraft_cents: u128,
}

#[derive(Debug, Clone)]
struct LegPick {
    debit: u8,
    credit: u8,
    digits: u128,
    scale: u8,
    /// Use a raw id (0, a missing one, or another asset's account) instead of an account of the
    /// transfer's asset.
    stray: bool,
}

#[derive(Debug, Clone)]
enum Item {
    New { pending: bool, asset: usize, legs: Vec<LegPick>, timeout_ms: u64, reuse_id: Option<usize> },
    /// Post or void an earlier pending transfer (one in ten: a random id instead).
    Resolve { target: usize, void: bool, percents: Vec<u8>, one_per_leg: bool, name_asset: bool },
    /// Resubmit an earlier recorded transfer, the same or altered.
    Retry { pick: usize, same: bool },
}

#[derive(Debug, Clone)]
enum Cmd {
    Transfers(Vec<Item>),
    /// A command of retries only: it must move nothing.
    Retries(Vec<(usize, bool)>),
    Status(Vec<(u8, u8)>),
    Tick,
}

#[derive(Debug, Clone)]
struct Scenario {
    accounts: Vec<AccountSpec>,
    /// Each command with the jump of the proposal time from the previous one (may be negative).
    commands: Vec<(i64, Cmd)>,
    /// Where the snapshot is taken (mod the number of commands + 1).
    cut: usize,
}

fn leg_pick() -> impl Strategy<Value = LegPick> {
    (any::<u8>(), any::<u8>(), 1u128..3_000, 0u8..=2, prop::bool::weighted(0.04))
        .prop_map(|(debit, credit, digits, scale, stray)| LegPick { debit, credit, digits, scale, stray })
}

fn item() -> impl Strategy<Value = Item> {
    let new = (
        any::<bool>(),
        0usize..ASSETS.len(),
        prop::collection::vec(leg_pick(), 1..4),
        prop_oneof![3 => Just(0u64), 2 => 1u64..6],
        prop::option::weighted(0.05, any::<usize>()),
    )
        .prop_map(|(pending, asset, legs, timeout_ms, reuse_id)| Item::New {
            pending,
            asset,
            legs,
            timeout_ms: if pending { timeout_ms } else { 0 },
            reuse_id,
        });
    let resolve = (any::<usize>(), any::<bool>(), prop::collection::vec(0u8..=110, 0..4), prop::bool::weighted(0.85), prop::bool::weighted(0.2))
        .prop_map(|(target, void, percents, one_per_leg, name_asset)| Item::Resolve { target, void, percents, one_per_leg, name_asset });
    let retry = (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(pick, same)| Item::Retry { pick, same });
    prop_oneof![5 => new, 3 => resolve, 1 => retry]
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        6 => prop::collection::vec(item(), 1..5).prop_map(Cmd::Transfers),
        2 => prop::collection::vec((any::<usize>(), prop::bool::weighted(0.8)), 1..4).prop_map(Cmd::Retries),
        1 => prop::collection::vec((1u8..=ACCOUNTS as u8, 0u8..3), 1..3).prop_map(Cmd::Status),
        1 => Just(Cmd::Tick),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let account = (0usize..ASSETS.len(), 0u8..4, 1u128..5_000).prop_map(|(asset, flags, overdraft_cents)| AccountSpec { asset, flags, overdraft_cents });
    let jump = -3 * MS as i64..4 * MS as i64;
    (prop::collection::vec(account, (ACCOUNTS - 3) as usize), prop::collection::vec((jump, cmd()), 1..60), any::<usize>())
        .prop_map(|(accounts, commands, cut)| Scenario { accounts, commands, cut })
}

// ---- the run ----

/// What a transfer item of a command was, to check its result.
enum Expect {
    /// A first submission (fresh key).
    First,
    /// The same content as this recorded first submission: its result again, as a replay.
    Replay(ItemResult),
    /// Altered content under a recorded key.
    Conflict(ItemResult),
}

#[derive(Default)]
struct Run {
    store: MemStore,
    now: u64,
    commands: Vec<Command>,
    results: Vec<Applied>,
    /// The asset of each account.
    asset_of: BTreeMap<u128, usize>,
    /// Transfer inputs recorded under their key at first submission, with that result.
    recorded: Vec<(TransferInput, ItemResult)>,
    /// The pending transfers created (their first submission was OK).
    pendings: Vec<TransferInput>,
    /// The ids of the transfers created.
    ids: Vec<u128>,
    next_id: u128,
    /// The last timestamp handed out so far.
    last_issued: u64,
    codes: BTreeMap<ResultCode, usize>,
    replays: usize,
    expiries: usize,
}

impl Run {
    fn new(accounts: &[AccountSpec]) -> Result<Run, TestCaseError> {
        let mut run = Run { now: T0, next_id: 100, ..Run::default() };
        run.command(0, Operation::CreateAssets(ASSETS.iter().map(|(code, scale)| AssetInput { code: code.to_string(), scale: *scale }).collect()), &[])?;
        let mut inputs = Vec::new();
        for (index, (code, _)) in ASSETS.iter().enumerate() {
            inputs.push(account_input(index as u128 + 1, code, 0, 0));
            run.asset_of.insert(index as u128 + 1, index);
        }
        for (i, spec) in accounts.iter().enumerate() {
            let id = i as u128 + 4;
            inputs.push(account_input(id, ASSETS[spec.asset].0, spec.flags, spec.overdraft_cents));
            run.asset_of.insert(id, spec.asset);
        }
        run.command(MS as i64, Operation::CreateAccounts(inputs), &[])?;
        // Fund every random account from its bank (capped ones refuse: they have no debits).
        let funding = (4..=ACCOUNTS)
            .map(|id| {
                let asset = run.asset_of[&id];
                let leg = LegInput { debit_account_id: asset as u128 + 1, credit_account_id: id, amount: DecimalInput { digits: 2_000, scale: 0 } };
                run.new_transfer(TransferKind::Posted, asset, vec![leg], 0, None)
            })
            .collect::<Vec<_>>();
        let expects = funding.iter().map(|_| Expect::First).collect::<Vec<_>>();
        run.command(MS as i64, Operation::CreateTransfers(funding), &expects)?;
        Ok(run)
    }

    fn fresh_id(&mut self) -> u128 {
        self.next_id += 1;
        self.next_id
    }

    fn new_transfer(&mut self, kind: TransferKind, asset: usize, legs: Vec<LegInput>, timeout_ms: u64, reuse_id: Option<usize>) -> TransferInput {
        let fresh = self.fresh_id();
        let id = match reuse_id {
            Some(n) if !self.ids.is_empty() => self.ids[n % self.ids.len()],
            _ => fresh,
        };
        TransferInput {
            id,
            idempotency_key: format!("key-{fresh}"),
            asset: ASSETS[asset].0.into(),
            kind,
            legs,
            pending_id: 0,
            timeout_ms,
            post_amounts: Vec::new(),
            code: 0,
            owner: String::new(),
        }
    }

    fn members(&self, asset: usize) -> Vec<u128> {
        self.asset_of.iter().filter(|(_, a)| **a == asset).map(|(id, _)| *id).collect()
    }

    /// Turns a generated item into an input, and says what its result must be.
    fn build(&mut self, item: &Item) -> Option<(TransferInput, Expect)> {
        match item {
            Item::New { pending, asset, legs, timeout_ms, reuse_id } => {
                let members = self.members(*asset);
                let n = members.len();
                // The credit account differs from the debit one whenever the asset has two.
                let pick = |l: &LegPick| {
                    let debit = l.debit as usize % n;
                    let credit = if n > 1 { (debit + 1 + l.credit as usize % (n - 1)) % n } else { debit };
                    (members[debit], members[credit])
                };
                let stray = |p: u8| u128::from(p) % (ACCOUNTS + 2);
                let legs = legs
                    .iter()
                    .map(|l| {
                        let (debit, credit) = if l.stray { (stray(l.debit), stray(l.credit)) } else { pick(l) };
                        LegInput { debit_account_id: debit, credit_account_id: credit, amount: DecimalInput { digits: l.digits, scale: l.scale } }
                    })
                    .collect();
                let kind = if *pending { TransferKind::Pending } else { TransferKind::Posted };
                Some((self.new_transfer(kind, *asset, legs, *timeout_ms, *reuse_id), Expect::First))
            }
            Item::Resolve { target, void, percents, one_per_leg, name_asset } => {
                let target_input = (!self.pendings.is_empty() && target % 10 != 0).then(|| self.pendings[target % self.pendings.len()].clone());
                let (pending_id, asset) = match &target_input {
                    Some(p) => (p.id, p.asset.clone()),
                    None => ((*target % 200) as u128 + 1, ASSETS[target % ASSETS.len()].0.to_string()),
                };
                let post_amounts = if *void || percents.is_empty() {
                    Vec::new()
                } else {
                    let legs = target_input.as_ref().map(|p| p.legs.clone()).unwrap_or_default();
                    let n = if *one_per_leg && !legs.is_empty() { legs.len() } else { percents.len() };
                    (0..n)
                        .map(|i| {
                            let pct = u128::from(percents[i % percents.len()]);
                            match legs.get(i) {
                                Some(leg) => DecimalInput { digits: leg.amount.digits * pct / 100, scale: leg.amount.scale },
                                None => DecimalInput { digits: pct, scale: 0 },
                            }
                        })
                        .collect()
                };
                let kind = if *void { TransferKind::VoidPending } else { TransferKind::PostPending };
                let mut input = self.new_transfer(kind, 0, Vec::new(), 0, None);
                input.asset = if *name_asset { asset } else { String::new() };
                input.pending_id = pending_id;
                input.post_amounts = post_amounts;
                Some((input, Expect::First))
            }
            Item::Retry { pick, same } => self.retry(*pick, *same),
        }
    }

    fn retry(&self, pick: usize, same: bool) -> Option<(TransferInput, Expect)> {
        if self.recorded.is_empty() {
            return None;
        }
        let (input, first) = self.recorded[pick % self.recorded.len()].clone();
        Some(if same { (input, Expect::Replay(first)) } else { (TransferInput { code: input.code + 1, ..input }, Expect::Conflict(first)) })
    }

    /// Applies one command and checks everything that must hold after it.
    fn command(&mut self, jump: i64, operation: Operation, expects: &[Expect]) -> Result<(), TestCaseError> {
        self.now = self.now.saturating_add_signed(jump).max(1);
        let command = Command { proposed_at_ns: self.now, operation };
        let before = self.store.clone();
        let last_before = store::last_timestamp(&before).unwrap();
        let start = self.now.max(last_before + 1);
        let applied = apply(&mut self.store, &command).unwrap();
        super::fixtures::golden(&self.store, &applied);
        let last_after = store::last_timestamp(&self.store).unwrap();

        check_money(&self.store)?;
        check_holds(&self.store, start)?;
        self.check_timestamps(&applied, start, last_before, last_after)?;
        if let Operation::CreateTransfers(inputs) = &command.operation {
            self.check_transfer_results(&before, inputs, &applied.results, expects)?;
        }
        for r in &applied.results {
            *self.codes.entry(r.code).or_default() += 1;
        }
        self.expiries += applied.entries.iter().filter(|e| e.kind == EntryKind::ExpirePending && e.is_debit).count();
        self.commands.push(command);
        self.results.push(applied);
        Ok(())
    }

    /// (e): new timestamps (not replays, not EXISTS, not "nothing happened" zeros) strictly
    /// increase across the whole run, start at the command's start, expiries first.
    fn check_timestamps(&mut self, applied: &Applied, start: u64, last_before: u64, last_after: u64) -> Result<(), TestCaseError> {
        let mut issued = Vec::new();
        let mut seen = BTreeSet::new();
        for e in &applied.entries {
            prop_assert!(e.timestamp_ns >= start && e.timestamp_ns <= last_after, "entry {e:?} outside [{start}, {last_after}]");
            if e.kind == EntryKind::ExpirePending && seen.insert(e.timestamp_ns) {
                issued.push(e.timestamp_ns);
            }
        }
        for r in &applied.results {
            let old = matches!(r.code, ResultCode::Exists | ResultCode::ExistsWithDifferentFields);
            if r.timestamp_ns != 0 && !r.replay && !old {
                issued.push(r.timestamp_ns);
            } else if r.replay || old {
                prop_assert!(r.timestamp_ns <= last_before, "an old result {r:?} with a new timestamp");
            }
        }
        for t in &issued {
            prop_assert!(*t > self.last_issued, "timestamp {t} not after {} ({issued:?})", self.last_issued);
            self.last_issued = *t;
        }
        prop_assert_eq!(issued.first().is_none_or(|t| *t == start), true, "first timestamp {:?} is not the start {}", issued.first(), start);
        prop_assert_eq!(last_after, issued.last().copied().unwrap_or(last_before));
        Ok(())
    }

    /// (d) and the idempotency records.
    fn check_transfer_results(&mut self, before: &MemStore, inputs: &[TransferInput], results: &[ItemResult], expects: &[Expect]) -> Result<(), TestCaseError> {
        prop_assert_eq!(inputs.len(), results.len());
        for ((input, r), expect) in inputs.iter().zip(results).zip(expects) {
            match expect {
                Expect::Replay(first) => {
                    prop_assert_eq!(*r, ItemResult { replay: true, ..*first });
                    self.replays += 1;
                }
                Expect::Conflict(first) => {
                    prop_assert_eq!((r.code, r.id, r.replay, r.timestamp_ns), (ResultCode::IdempotencyKeyConflict, first.id, false, 0));
                }
                Expect::First => {
                    prop_assert!(!r.replay, "a fresh key replayed: {r:?}");
                    prop_assert!(store::get_idempotency(before, &input.idempotency_key).unwrap().is_none());
                    if let Some(record) = store::get_idempotency(&self.store, &input.idempotency_key).unwrap() {
                        prop_assert_eq!((record.code, record.leg_index, record.timestamp_ns, record.transfer_id), (r.code, r.leg_index, r.timestamp_ns, input.id));
                        self.recorded.push((input.clone(), *r));
                        if r.code == ResultCode::Ok {
                            prop_assert!(store::get_transfer(&self.store, input.id).unwrap().is_some());
                            self.ids.push(input.id);
                            if input.kind == TransferKind::Pending {
                                self.pendings.push(input.clone());
                            }
                        }
                    } else {
                        // Only malformed input goes unrecorded, and it takes no timestamp.
                        prop_assert_eq!(r.timestamp_ns, 0, "{:?} unrecorded", r);
                    }
                }
            }
        }
        Ok(())
    }

    /// (d) for a command of retries only: the only changes are holds expiring at its start.
    fn retries(&mut self, jump: i64, picks: &[(usize, bool)]) -> Result<(), TestCaseError> {
        let (inputs, expects): (Vec<_>, Vec<_>) = picks.iter().filter_map(|(pick, same)| self.retry(*pick, *same)).unzip();
        if inputs.is_empty() {
            return Ok(());
        }
        let before = self.store.clone();
        self.command(jump, Operation::CreateTransfers(inputs), &expects)?;
        let applied = self.results.last().unwrap();
        prop_assert!(applied.entries.iter().all(|e| e.kind == EntryKind::ExpirePending), "a retry wrote {:?}", applied.entries);
        let mut expected: BTreeMap<u128, Account> = all_accounts(&before).into_iter().map(|a| (a.id, a)).collect();
        for e in &applied.entries {
            expected.get_mut(&e.account_id).unwrap().balances = e.balances_after;
        }
        prop_assert_eq!(all_accounts(&self.store), expected.into_values().collect::<Vec<_>>());
        let expired: BTreeSet<u128> = applied.entries.iter().map(|e| e.transfer_id).collect();
        let mut expected_transfers = all_transfers(&before);
        for t in expected_transfers.iter_mut().filter(|t| expired.contains(&t.id)) {
            t.pending_state = PendingState::Expired;
        }
        prop_assert_eq!(all_transfers(&self.store), expected_transfers);
        Ok(())
    }

    fn play(scenario: &Scenario) -> Result<Run, TestCaseError> {
        let mut run = Run::new(&scenario.accounts)?;
        for (jump, cmd) in &scenario.commands {
            match cmd {
                Cmd::Transfers(items) => {
                    let (inputs, expects): (Vec<_>, Vec<_>) = items.iter().filter_map(|item| run.build(item)).unzip();
                    run.command(*jump, Operation::CreateTransfers(inputs), &expects)?;
                }
                Cmd::Retries(picks) => run.retries(*jump, picks)?,
                Cmd::Status(changes) => {
                    let statuses = [AccountStatus::Active, AccountStatus::Frozen, AccountStatus::Closed];
                    let items = changes
                        .iter()
                        .map(|(id, s)| StatusChangeInput { account_id: u128::from(*id), status: statuses[*s as usize], reason: "property".into(), actor: String::new() })
                        .collect();
                    run.command(*jump, Operation::SetAccountStatus(items), &[])?;
                }
                Cmd::Tick => run.command(*jump, Operation::Tick, &[])?,
            }
        }
        check_entries(&run.store)?;
        check_journal(&run.store)?;
        Ok(run)
    }
}

fn account_input(id: u128, asset: &str, flags: u8, overdraft_cents: u128) -> AccountInput {
    AccountInput {
        id,
        asset: asset.into(),
        code: 1,
        debits_must_not_exceed_credits: matches!(flags, 1 | 2),
        credits_must_not_exceed_debits: flags == 3,
        // Scale 0 is valid for every asset.
        overdraft_limit: (flags == 2).then_some(DecimalInput { digits: overdraft_cents / 100, scale: 0 }),
        metadata: BTreeMap::new(),
        external_ref: None,
    }
}

// ---- the checks ----

/// (a) money conserved per asset, (b) no account breaks its flags.
pub(super) fn check_money(store: &MemStore) -> Result<(), TestCaseError> {
    let mut sums: BTreeMap<String, [u128; 4]> = BTreeMap::new();
    for a in all_accounts(store) {
        let b = a.balances;
        let s = sums.entry(a.asset.clone()).or_default();
        for (sum, value) in s.iter_mut().zip([b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending]) {
            *sum += value;
        }
        if a.debits_must_not_exceed_credits {
            prop_assert!(b.debits_posted + b.debits_pending <= b.credits_posted + a.overdraft_limit_minor, "account {} overdrawn: {b:?}, overdraft {}", a.id, a.overdraft_limit_minor);
        }
        if a.credits_must_not_exceed_debits {
            prop_assert!(b.credits_posted + b.credits_pending <= b.debits_posted, "account {} over-credited: {b:?}", a.id);
        }
    }
    for (asset, [debits, credits, debits_pending, credits_pending]) in sums {
        prop_assert_eq!(debits, credits, "posted {} not conserved", asset);
        prop_assert_eq!(debits_pending, credits_pending, "pending {} not conserved", asset);
    }
    Ok(())
}

/// Pending balances are exactly the holds still pending; only they may expire, and not before
/// `start` (they would have expired at the start of the command).
fn check_holds(store: &MemStore, start: u64) -> Result<(), TestCaseError> {
    let mut held: BTreeMap<u128, (u128, u128)> = BTreeMap::new();
    let mut expiring = BTreeSet::new();
    for t in all_transfers(store).into_iter().filter(|t| t.pending_state == PendingState::Pending) {
        for leg in &t.legs {
            held.entry(leg.debit_account_id).or_default().0 += leg.amount_minor;
            held.entry(leg.credit_account_id).or_default().1 += leg.amount_minor;
        }
        if t.expires_at_ns != 0 {
            prop_assert!(t.expires_at_ns > start, "hold {} due at {} still pending after a command starting at {}", t.id, t.expires_at_ns, start);
            expiring.insert(store::expiry_key(t.expires_at_ns, t.id).to_vec());
        }
    }
    for a in all_accounts(store) {
        let b = a.balances;
        prop_assert_eq!((b.debits_pending, b.credits_pending), held.get(&a.id).copied().unwrap_or_default(), "holds of account {}", a.id);
    }
    let scheduled: BTreeSet<Vec<u8>> = store.tables.get(&Table::PendingExpiry).map(|t| t.keys().cloned().collect()).unwrap_or_default();
    prop_assert_eq!(scheduled, expiring);
    Ok(())
}

/// Every account's entries, replayed from zero, give each entry's balances_after and end at the
/// account's balances.
fn check_entries(store: &MemStore) -> Result<(), TestCaseError> {
    for a in all_accounts(store) {
        let mut b = Balances::default();
        for e in store::account_entries(store, a.id, None, None, usize::MAX, false).unwrap() {
            let (posted, pending) = if e.is_debit { (&mut b.debits_posted, &mut b.debits_pending) } else { (&mut b.credits_posted, &mut b.credits_pending) };
            match e.kind {
                EntryKind::Posted => *posted += e.amount_minor,
                EntryKind::Pending => *pending += e.amount_minor,
                EntryKind::PostPending => {
                    let post = store::get_transfer(store, e.transfer_id).unwrap().unwrap();
                    let hold = store::get_transfer(store, post.pending_id).unwrap().unwrap();
                    *pending -= hold.legs[e.leg_index as usize].amount_minor;
                    *posted += e.amount_minor;
                }
                EntryKind::VoidPending | EntryKind::ExpirePending => *pending -= e.amount_minor,
            }
            prop_assert_eq!(b, e.balances_after, "entry {:?} of account {}", e, a.id);
        }
        prop_assert_eq!(b, a.balances, "entries of account {} do not add up", a.id);
    }
    Ok(())
}

/// The journal chains without a gap and its movements alone replay every account's balances.
fn check_journal(store: &MemStore) -> Result<(), TestCaseError> {
    let lines = super::journal::verified_lines(store).map_err(TestCaseError::fail)?;
    super::journal::check_balances_at_every_line(store, &lines).map_err(TestCaseError::fail)?;
    let accounts: BTreeMap<u128, Balances> = all_accounts(store).into_iter().map(|a| (a.id, a.balances)).collect();
    prop_assert_eq!(super::journal::replayed_balances(&lines), accounts, "the journal does not replay to the balances");
    Ok(())
}

/// (c): the same log gives the same results and bytes on fresh replicas and from a snapshot.
fn check_determinism(run: &Run, cut: usize) -> Result<(), TestCaseError> {
    let replay = |store: &mut MemStore, commands: &[Command]| -> Vec<Applied> { commands.iter().map(|c| apply(store, c).unwrap()).collect() };
    let same = |a: &[Applied], b: &[Applied]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.results == y.results && x.entries == y.entries);
    // The second replica gets the commands as a follower does: encoded into the log and back.
    let logged: Vec<Command> = run.commands.iter().map(|c| crate::codec::decode(&"command", &crate::codec::encode(c)).unwrap()).collect();
    prop_assert!(logged == run.commands, "a command changed through the log encoding");
    let (mut one, mut two) = (MemStore::default(), MemStore::default());
    let (applied_one, applied_two) = (replay(&mut one, &run.commands), replay(&mut two, &logged));
    prop_assert!(same(&applied_one, &run.results) && same(&applied_two, &run.results), "a replica gave other results");
    prop_assert!(one == run.store && two == run.store, "a replica's bytes differ");
    prop_assert_eq!(one.state_hash(), two.state_hash());
    let cut = cut % (run.commands.len() + 1);
    let mut prefix = MemStore::default();
    replay(&mut prefix, &run.commands[..cut]);
    let mut snapshot = prefix.clone();
    let rest = replay(&mut snapshot, &run.commands[cut..]);
    prop_assert!(same(&rest, &run.results[cut..]), "the snapshot replica gave other results");
    prop_assert!(snapshot == run.store, "the snapshot replica's bytes differ");
    prop_assert_eq!(snapshot.state_hash(), run.store.state_hash());
    Ok(())
}

proptest! {
    // 64 cases by default (well under a second in release); PROPTEST_CASES=n for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_command_sequences_keep_every_invariant(scenario in scenario()) {
        let run = Run::play(&scenario)?;
        check_determinism(&run, scenario.cut)?;
    }
}

// ---- the properties can fail ----

/// The generator reaches the interesting cases (else the properties above would be vacuous).
#[test]
fn the_generator_reaches_successes_refusals_replays_and_expiries() {
    let mut runner = TestRunner::deterministic();
    let mut codes: BTreeMap<ResultCode, usize> = BTreeMap::new();
    let (mut replays, mut expiries) = (0, 0);
    for _ in 0..32 {
        let scenario = scenario().new_tree(&mut runner).unwrap().current();
        let run = Run::play(&scenario).unwrap();
        for (code, n) in run.codes {
            *codes.entry(code).or_default() += n;
        }
        replays += run.replays;
        expiries += run.expiries;
    }
    use ResultCode as R;
    for code in [
        R::Ok,
        R::IdempotencyKeyConflict,
        R::IdAlreadyUsed,
        R::ExceedsCredits,
        R::ExceedsDebits,
        R::AccountFrozen,
        R::AccountClosed,
        R::BalanceNotZero,
        R::AssetMismatch,
        R::PendingTransferNotFound,
        R::PendingTransferAlreadyPosted,
        R::PendingTransferAlreadyVoided,
        R::PendingTransferExpired,
        R::PostAmountExceedsPending,
        R::PostAmountsMismatch,
        R::AmountScaleExceeded,
    ] {
        assert!(codes.contains_key(&code), "never saw {code:?}: {codes:?}");
    }
    assert!(replays > 50 && expiries > 20, "replays {replays}, expiries {expiries}");
}

/// Each check rejects a ledger that breaks its rule.
#[test]
fn the_checks_reject_a_broken_ledger() {
    use super::fixtures::{Ledger, account, accounts, capped, limited, pending, posted, transfer};
    let ledger = || {
        let mut l = Ledger::new();
        l.all_ok(accounts(vec![account(1, "CNY"), limited(2, "CNY", 0), capped(3, "CNY")]));
        l.ok(transfer(posted(10, &[(1, 2, 500), (3, 1, 100)])));
        l.ok(transfer(pending(11, &[(2, 1, 100)], 5)));
        l.store
    };
    let tampered = |changes: &[(u128, fn(&mut Balances))]| {
        let mut store = ledger();
        for (id, change) in changes {
            let mut account = store::get_account(&store, *id).unwrap().unwrap();
            change(&mut account.balances);
            store::put_account(&mut store, &account);
        }
        store
    };
    let good = ledger();
    assert!(check_money(&good).is_ok() && check_holds(&good, 0).is_ok() && check_entries(&good).is_ok());
    // Money from nowhere.
    assert!(check_money(&tampered(&[(1, |b| b.credits_posted += 1)])).is_err());
    assert!(check_money(&tampered(&[(1, |b| b.debits_pending += 1)])).is_err());
    // Conserved, but beyond a flag: 2 spends more than it has, 3 receives more than it paid.
    // (2 has 5.00 in and 1.00 held: 4.00 more may go out, not 4.01.)
    assert!(check_money(&tampered(&[(2, |b| b.debits_posted += 400), (1, |b| b.credits_posted += 400)])).is_ok());
    assert!(check_money(&tampered(&[(2, |b| b.debits_posted += 401), (1, |b| b.credits_posted += 401)])).is_err());
    assert!(check_money(&tampered(&[(3, |b| b.credits_posted += 100), (1, |b| b.debits_posted += 100)])).is_ok());
    assert!(check_money(&tampered(&[(3, |b| b.credits_posted += 101), (1, |b| b.debits_posted += 101)])).is_err());
    // Conserved, but a hold with no pending transfer behind it, and no entry either.
    let phantom = tampered(&[(1, |b| {
        b.debits_pending += 1;
        b.credits_pending += 1;
    })]);
    assert!(check_money(&phantom).is_ok());
    assert!(check_holds(&phantom, 0).is_err());
    assert!(check_entries(&phantom).is_err());
    // A hold past its deadline, or one whose expiry was never scheduled.
    assert!(check_holds(&good, u64::MAX - 1).is_err());
    let mut unscheduled = ledger();
    unscheduled.tables.remove(&Table::PendingExpiry);
    assert!(check_holds(&unscheduled, 0).is_err());
}
