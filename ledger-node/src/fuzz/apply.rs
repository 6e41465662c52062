//! Target `apply`: any sequence of commands, applied to the fuzz world, must not panic and must
//! keep the ledger's promises: `apply` answers (an error would stop every replica at the same
//! entry), one result per item, money conserved per asset and no balance flag broken, a refused
//! or replayed single-item command writes nothing (a refused transfer records only its
//! idempotency outcome), timestamps never go back, and the same log replayed from the world
//! gives byte-identical state.
//!
//! Bytes: postcard of `Vec<(u64, Operation)>` (milliseconds since the previous command, the
//! command). Anything else is ignored: the log codec's CRC is the `peer` target's business.

use std::collections::BTreeMap;

use ledger_core::apply::{Applied, apply};
use ledger_core::limits::BATCH_ITEMS_MAX;
use ledger_core::result::ResultCode;
use ledger_core::store::{self, MemStore, Store, Table};
use ledger_core::types::*;

use super::world::{WORLD_END_NS, world};

/// Commands per case at most (bounds the time of one case, not the ledger).
pub const COMMANDS_MAX: usize = 64;
const MS: u64 = 1_000_000;

pub fn run(bytes: &[u8]) {
    if let Ok(commands) = postcard::from_bytes::<Vec<(u64, Operation)>>(bytes) {
        check_sequence(&commands);
    }
}

/// Applies the commands (each `jump_ms` after the previous) to the world, checking after each;
/// then replays the log. Returns what each command answered.
pub fn check_sequence(commands: &[(u64, Operation)]) -> Vec<Applied> {
    let mut store = world();
    let mut now = WORLD_END_NS;
    let mut log = Vec::new();
    let mut answers = Vec::new();
    for (jump_ms, operation) in commands.iter().take(COMMANDS_MAX) {
        let command = Command { proposed_at_ns: now.saturating_add(jump_ms.saturating_mul(MS)).min(u64::MAX / 2), operation: operation.clone() };
        // The API never proposes more; the state machine need not survive what it never gets.
        if command.item_count() > BATCH_ITEMS_MAX {
            continue;
        }
        now = command.proposed_at_ns;
        answers.push(check_command(&mut store, &command));
        log.push(command);
    }
    // Replicas: the log through its encoding, from the world, gives the same bytes.
    let mut replica = world();
    for command in &log {
        let logged: Command = ledger_core::codec::decode(&"fuzz command", &ledger_core::codec::encode(command)).expect("a command round-trips");
        assert_eq!(&logged, command, "the log encoding changed a command");
        apply(&mut replica, &logged).expect("the replica applies");
    }
    assert!(replica == store, "a replica of the same log holds other bytes");
    answers
}

/// Applies one command and checks everything that must hold after it.
pub fn check_command(store: &mut MemStore, command: &Command) -> Applied {
    let before = store.clone();
    let applied = match apply(store, command) {
        Ok(applied) => applied,
        Err(e) => panic!("apply failed on {command}: {e} ({:?})", command.operation),
    };
    assert_eq!(applied.results.len(), command.item_count(), "one result per item");
    for r in &applied.results {
        assert!(r.leg_index.is_none_or(|l| usize::from(l) < ledger_core::limits::TRANSFER_LEGS_MAX), "{r:?}");
    }
    if let Err(broken) = check_money(store) {
        panic!("after {command}: {broken}: {:?}", command.operation);
    }
    let last_before = store::last_timestamp(&before).expect("meta");
    let last_after = store::last_timestamp(store).expect("meta");
    assert!(last_after >= last_before, "the last timestamp went back: {last_before} -> {last_after}");
    if let [result] = applied.results.as_slice() {
        let single = !matches!(command.operation, Operation::SyncOfflineRecords(_) | Operation::RecordAccessDenied(_));
        if single && (result.code != ResultCode::Ok || result.replay) {
            check_wrote_nothing(&before, store, command, result.code);
        }
    }
    applied
}

/// Money is conserved per asset (posted and pending) and no account breaks its flags.
pub fn check_money(store: &MemStore) -> Result<(), String> {
    // Per asset: debits posted, credits posted, debits pending, credits pending, each as
    // (carries, low): one balance fits u128, the sum over many accounts need not.
    let mut sums: BTreeMap<String, [(u64, u128); 4]> = BTreeMap::new();
    for (_, value) in store.tables.get(&Table::Accounts).into_iter().flatten() {
        let a: Account = store::decode(Table::Accounts, value).map_err(|e| e.to_string())?;
        let b = a.balances;
        let s = sums.entry(a.asset.clone()).or_default();
        for ((carries, low), value) in s.iter_mut().zip([b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending]) {
            let (sum, carried) = low.overflowing_add(value);
            *low = sum;
            *carries += u64::from(carried);
        }
        if a.debits_must_not_exceed_credits {
            let out = b.debits_posted.checked_add(b.debits_pending);
            let allowed = b.credits_posted.checked_add(a.overdraft_limit_minor);
            if out.is_none() || (allowed.is_some() && out > allowed) {
                return Err(format!("account {} overdrawn: {b:?}", a.id));
            }
        }
        if a.credits_must_not_exceed_debits && !b.credits_posted.checked_add(b.credits_pending).is_some_and(|c| c <= b.debits_posted) {
            return Err(format!("account {} over-credited: {b:?}", a.id));
        }
    }
    for (asset, [debits, credits, debits_pending, credits_pending]) in sums {
        if (debits, debits_pending) != (credits, credits_pending) {
            return Err(format!("{asset} not conserved: debits {debits:?}/{debits_pending:?}, credits {credits:?}/{credits_pending:?}"));
        }
    }
    Ok(())
}

/// A refused (or replayed, or EXISTS) item changed nothing but what the command's start did on
/// its own (holds expired, tokens released: a `Tick` at the same time gives exactly that). A
/// refused transfer records its outcome under its key, and that takes a timestamp.
fn check_wrote_nothing(before: &MemStore, after: &MemStore, command: &Command, code: ResultCode) {
    let mut baseline = before.clone();
    apply(&mut baseline, &Command { proposed_at_ns: command.proposed_at_ns, operation: Operation::Tick }).expect("a tick applies");
    let mut after = after.clone();
    if let Operation::CreateTransfers(items) = &command.operation {
        let key = items[0].idempotency_key.as_bytes();
        if store::get_idempotency(&baseline, &items[0].idempotency_key).expect("idempotency").is_none() {
            after.delete(Table::Idempotency, key);
            for table in [Table::Meta] {
                match baseline.tables.get(&table) {
                    Some(rows) => after.tables.insert(table, rows.clone()),
                    None => after.tables.remove(&table),
                };
            }
        }
    }
    let non_empty = |s: &MemStore| s.tables.iter().filter(|(_, t)| !t.is_empty()).map(|(k, t)| (*k, t.clone())).collect::<Vec<_>>();
    let (expected, got) = (non_empty(&baseline), non_empty(&after));
    if expected != got {
        let changed: Vec<Table> = Table::ALL
            .into_iter()
            .filter(|t| baseline.tables.get(t).filter(|r| !r.is_empty()) != after.tables.get(t).filter(|r| !r.is_empty()))
            .collect();
        panic!("{command} answered {code:?} but wrote tables {changed:?}: {:?}", command.operation);
    }
}
