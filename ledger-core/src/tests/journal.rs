//! The audit journal: gap-free, hash-chained, complete (every balance change in it, so balances
//! replay from the journal alone), silent on refusals and replays, and tamper-evident.

use std::collections::BTreeMap;

use super::fixtures::*;
use super::wallet::{MERCHANT, TOKEN, record, upload, wallet_world};
use crate::audit;
use crate::journal::{self, Event, GENESIS_HASH, Head, Line};
use crate::result::ResultCode as R;
use crate::store::{MemStore, ReadStore, Store, Table};
use crate::types::*;

/// Every line in order, checked: numbered 1..=n without gaps, each hash the chain of the line
/// before, the head naming the last. Returns the parsed lines.
pub fn verified_lines(store: &MemStore) -> Result<Vec<Line>, String> {
    let rows = store.scan(Table::Journal, &[], &[0xff; 9], usize::MAX, false).map_err(|e| e.to_string())?;
    let mut previous = GENESIS_HASH;
    let mut lines = Vec::with_capacity(rows.len());
    for (position, (key, value)) in rows.iter().enumerate() {
        let row: journal::Row = crate::store::decode(Table::Journal, value).map_err(|e| e.to_string())?;
        let seq = position as u64 + 1;
        if key.as_slice() != journal::seq_key(seq) {
            return Err(format!("line {seq}: key {key:?} out of sequence"));
        }
        if row.hash != journal::chain(&previous, row.line.as_bytes()) {
            return Err(format!("line {seq}: hash does not chain"));
        }
        let line: Line = serde_json::from_str(&row.line).map_err(|e| format!("line {seq}: {e}"))?;
        if line.seq != seq {
            return Err(format!("line {seq}: says seq {}", line.seq));
        }
        if row.timestamp_ns != line.timestamp_ns {
            return Err(format!("line {seq}: row timestamp {} differs from the line's", row.timestamp_ns));
        }
        // A movement never follows another line of its timestamp (see ledger::audit).
        if let (Some(before), Event::Movement { .. }) = (lines.last(), &line.event) {
            let before: &Line = before;
            if before.timestamp_ns >= line.timestamp_ns {
                return Err(format!("line {seq}: a movement at the time of line {}", seq - 1));
            }
        }
        previous = row.hash;
        lines.push(line);
    }
    let head = journal::head(store).map_err(|e| e.to_string())?;
    let expected = Head { seq: lines.len() as u64, hash: previous, timestamp_ns: lines.last().map_or(0, |l| l.timestamp_ns) };
    if head != expected {
        return Err(format!("head {head:?}, chain ends at {expected:?}"));
    }
    Ok(lines)
}

/// At every line, the balances `ledger::audit` reports as of that line's time are those the
/// journal's movements up to that line give (what an export's opening and closing balances rely on).
pub fn check_balances_at_every_line(store: &MemStore, lines: &[Line]) -> Result<(), String> {
    let accounts = all_accounts(store);
    for k in 1..=lines.len() {
        let range = audit::resolve(store, audit::RangeRequest { to_seq: k as u64, ..Default::default() }).map_err(|e| e.to_string())?;
        let replayed = replayed_balances(&lines[..k]);
        for account in &accounts {
            let at = audit::balances_at(store, account.id, range.closing_timestamp_ns).map_err(|e| e.to_string())?;
            let expected = replayed.get(&account.id).copied().unwrap_or_default();
            if at != expected {
                return Err(format!("account {} as of line {k}: {at:?}, the journal says {expected:?}", account.id));
            }
        }
    }
    Ok(())
}

fn minor(text: &str) -> u128 {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    format!("{int}{frac}").parse().expect("a decimal amount")
}

/// Balances of every account, from the journal's movements alone.
pub fn replayed_balances(lines: &[Line]) -> BTreeMap<u128, Balances> {
    let mut balances: BTreeMap<u128, Balances> = BTreeMap::new();
    for line in lines {
        match &line.event {
            Event::AccountCreated { account_id, .. } => {
                balances.insert(account_id.parse().unwrap(), Balances::default());
            }
            Event::Movement { legs, .. } => {
                for leg in legs {
                    let (posted, added, released) = (minor(&leg.posted), minor(&leg.pending_added), minor(&leg.pending_released));
                    let debit = balances.entry(leg.debit_account_id.parse().unwrap()).or_default();
                    debit.debits_posted += posted;
                    debit.debits_pending = debit.debits_pending + added - released;
                    let credit = balances.entry(leg.credit_account_id.parse().unwrap()).or_default();
                    credit.credits_posted += posted;
                    credit.credits_pending = credit.credits_pending + added - released;
                }
            }
            _ => {}
        }
    }
    balances
}

fn event_types(lines: &[Line]) -> Vec<String> {
    lines
        .iter()
        .map(|l| serde_json::to_value(&l.event).unwrap()["type"].as_str().unwrap().to_string())
        .collect()
}

fn leg_kinds(lines: &[Line]) -> Vec<String> {
    lines
        .iter()
        .flat_map(|l| match &l.event {
            Event::Movement { legs, .. } => legs.iter().map(|leg| leg.kind.clone()).collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn every_change_of_the_world_is_a_chained_line_and_balances_replay_from_it() {
    let l = Ledger::world();
    let lines = verified_lines(&l.store).unwrap();
    let types = event_types(&lines);
    assert_eq!(types.iter().filter(|t| *t == "asset_created").count(), 3);
    assert_eq!(types.iter().filter(|t| *t == "account_created").count(), 8);
    assert_eq!(types.iter().filter(|t| *t == "account_status_changed").count(), 2);
    let kinds = leg_kinds(&lines);
    for kind in ["posted", "pending", "post_pending", "void_pending", "expire_pending"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} leg in {kinds:?}");
    }
    let accounts: BTreeMap<u128, Balances> = all_accounts(&l.store).into_iter().map(|a| (a.id, a.balances)).collect();
    assert_eq!(replayed_balances(&lines), accounts);
    check_balances_at_every_line(&l.store, &lines).unwrap();
    // Timestamps never go back, and each line names its asset's amounts exactly.
    assert!(lines.windows(2).all(|w| w[0].timestamp_ns <= w[1].timestamp_ns));
    let funding = lines.iter().find_map(|line| match &line.event {
        Event::Movement { transfer_id, legs, .. } if transfer_id == &FUNDING.to_string() => Some(legs.clone()),
        _ => None,
    });
    let legs = funding.expect("the funding transfer is journaled");
    assert_eq!((legs[0].posted.as_str(), legs[0].debit_account_code, legs[1].posted.as_str()), ("100.00", 1, "1.00"));
}

#[test]
fn a_post_releases_the_whole_hold_and_posts_part_of_it() {
    let mut l = Ledger::world();
    // A hold like `HOLD` (30.00), placed by the principal that posts it (only its owner may).
    let hold = l.fresh_id();
    l.ok(transfer(TransferInput { owner: "settlement".into(), ..pending(hold, &[(WALLET, SHOP, 3_000)], 0) }));
    let id = l.fresh_id();
    l.ok(transfer(TransferInput { owner: "settlement".into(), ..post(id, hold, &[1_000]) }));
    let lines = verified_lines(&l.store).unwrap();
    let Event::Movement { legs, pending_id, owner, .. } = &lines.last().unwrap().event else { panic!("not a movement") };
    assert_eq!(pending_id.as_deref(), Some(hold.to_string().as_str()));
    assert_eq!(owner, "settlement", "a movement names who created it");
    assert_eq!((legs[0].posted.as_str(), legs[0].pending_released.as_str()), ("10.00", "30.00"));
    let accounts: BTreeMap<u128, Balances> = all_accounts(&l.store).into_iter().map(|a| (a.id, a.balances)).collect();
    assert_eq!(replayed_balances(&lines), accounts);
}

#[test]
fn refusals_replays_and_no_ops_write_no_line() {
    let mut l = Ledger::world();
    let head = journal::head(&l.store).unwrap();
    let id = l.fresh_id();
    l.refuses(transfer(posted(id, &[(WALLET, SHOP, 1_000_000)])), R::ExceedsCredits, Some(0));
    let again = l.apply(transfer(posted(FUNDING, &[(BANK, WALLET, 10_000), (BANK, FROZEN, 100)]))).results;
    assert!(again[0].replay);
    l.apply(statuses(vec![status(FROZEN, AccountStatus::Frozen)]));
    l.apply(Operation::Tick);
    assert_eq!(journal::head(&l.store).unwrap(), head);
}

#[test]
fn wallet_tokens_syncs_exceptions_and_revocations_are_journaled() {
    let mut l = wallet_world();
    l.apply(upload(vec![record(1, 3_000, MERCHANT), record(2, 2_500, MERCHANT)], 2));
    l.apply(upload(vec![record(2, 9_900, MERCHANT)], 0));
    l.apply(Operation::RevokeTokens(vec![crate::wallet::RevokeTokenInput { token_id: TOKEN, reason: "lost".into() }]));
    let lines = verified_lines(&l.store).unwrap();
    let changes: Vec<String> = lines
        .iter()
        .filter_map(|line| match &line.event {
            Event::WalletToken { change, .. } => Some(change.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(changes, ["issued", "reissued", "synced", "revoked"]);
    let exceptions: Vec<(u64, String)> = lines
        .iter()
        .filter_map(|line| match &line.event {
            Event::WalletException { sequence, reason, .. } => Some((*sequence, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(exceptions, [(2, "SequenceReused".to_string())]);
    check_balances_at_every_line(&l.store, &lines).unwrap();
    let accounts: BTreeMap<u128, Balances> = all_accounts(&l.store).into_iter().map(|a| (a.id, a.balances)).collect();
    assert_eq!(replayed_balances(&lines), accounts, "offline spends, hold releases and re-issues replay");
}

#[test]
fn membership_changes_are_journaled_with_the_last_time() {
    let mut l = Ledger::world();
    let last = l.last_timestamp();
    crate::record_membership(&mut l.store, 42, vec![1, 2, 3], vec![4]).unwrap();
    let lines = verified_lines(&l.store).unwrap();
    let line = lines.last().unwrap();
    assert_eq!(line.timestamp_ns, last);
    assert_eq!(line.event, Event::MembershipChanged { log_index: 42, voters: vec![1, 2, 3], learners: vec![4] });
}

#[test]
fn a_changed_line_or_a_gap_breaks_the_chain() {
    let l = Ledger::world();
    let rows = l.store.scan(Table::Journal, &[], &[0xff; 9], usize::MAX, false).unwrap();
    // One digit of one amount.
    let mut edited = l.store.clone();
    let (key, value) = &rows[11];
    let mut row: journal::Row = crate::store::decode(Table::Journal, value).unwrap();
    assert!(row.line.contains("\"100.00\""), "line 12 is the funding transfer");
    row.line = row.line.replacen("\"100.00\"", "\"200.00\"", 1);
    edited.put(Table::Journal, key, crate::store::encode(&row));
    assert!(verified_lines(&edited).unwrap_err().contains("line 12"));
    // A deleted line.
    let mut gap = l.store.clone();
    gap.delete(Table::Journal, &rows[5].0);
    assert!(verified_lines(&gap).unwrap_err().contains("out of sequence"));
}

#[test]
fn ranges_resolve_by_sequence_and_by_time() {
    let l = Ledger::world();
    let lines = verified_lines(&l.store).unwrap();
    let n = lines.len() as u64;
    let all = audit::resolve(&l.store, audit::RangeRequest::default()).unwrap();
    assert_eq!((all.from_seq, all.to_seq, all.hash_before, all.opening_timestamp_ns), (1, n, GENESIS_HASH, 0));
    let middle = audit::resolve(&l.store, audit::RangeRequest { from_seq: 5, to_seq: 12, ..Default::default() }).unwrap();
    assert_eq!((middle.from_seq, middle.to_seq), (5, 12));
    assert_eq!(middle.hash_before, journal::get_row(&l.store, 4).unwrap().unwrap().hash);
    assert_eq!((middle.opening_timestamp_ns, middle.closing_timestamp_ns), (lines[3].timestamp_ns, lines[11].timestamp_ns));
    // By time: exactly the lines inside [t5, t12].
    let by_time = audit::resolve(
        &l.store,
        audit::RangeRequest { from_timestamp_ns: lines[4].timestamp_ns, to_timestamp_ns: lines[11].timestamp_ns, ..Default::default() },
    )
    .unwrap();
    assert_eq!((by_time.from_seq, by_time.to_seq), (5, 12));
    let past_the_end = audit::resolve(&l.store, audit::RangeRequest { from_seq: n + 5, ..Default::default() }).unwrap();
    assert!(past_the_end.from_seq > past_the_end.to_seq);
    assert_eq!(audit::lines(&l.store, 5, 12, usize::MAX).unwrap().iter().map(|(s, _)| *s).collect::<Vec<_>>(), (5..=12).collect::<Vec<_>>());
}

#[test]
fn refused_calls_are_journaled_with_who_tried_and_long_fields_cut() {
    let mut l = Ledger::world();
    let denied = |principal: &str, method: String| AccessDeniedInput {
        principal: principal.into(),
        role: if principal.is_empty() { String::new() } else { "auditor".into() },
        method,
        reason: "role may not call this method".into(),
    };
    let results = l.all_ok(Operation::RecordAccessDenied(vec![
        denied("regulator", "/ledger.v1.Ledger/CreateTransfers".into()),
        denied("", format!("/{}", "é".repeat(300))),
    ]));
    assert_eq!(results.len(), 2);
    let lines = verified_lines(&l.store).unwrap();
    let [.., first, second] = lines.as_slice() else { panic!("two lines") };
    assert_eq!(
        first.event,
        Event::AccessDenied {
            principal: "regulator".into(),
            role: "auditor".into(),
            method: "/ledger.v1.Ledger/CreateTransfers".into(),
            reason: "role may not call this method".into()
        }
    );
    let Event::AccessDenied { method, principal, .. } = &second.event else { panic!("not a refusal") };
    assert!(principal.is_empty());
    assert!(method.len() <= crate::limits::ACCESS_DENIED_FIELD_BYTES_MAX && method.starts_with("/é"));
}
