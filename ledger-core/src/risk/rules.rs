//! Risk rules beyond the debit limits of `risk` (issue 22 item 2): limits on credits as well as
//! debits, a balance cap, windows of a minute, hour, day or month, and a scope that combines an
//! account, an account code and the transfer's code. Each rule has an id the caller chooses; a
//! refusal's code says which limit broke (`RISK_AMOUNT_EXCEEDED`, `RISK_COUNT_EXCEEDED`,
//! `RISK_BALANCE_EXCEEDED`) and its leg names the first leg of the account concerned.
//!
//! Bounded and deterministic:
//! - at most `RULES_MAX` rules (table `risk_rules`, by id), read in id order for each transfer;
//! - windows are calendar windows at the rule's fixed UTC offset (a minute, hour, day or month
//!   of local time), numbered from the transfer's Raft timestamp, so every replica agrees; usage
//!   is kept per (rule, account) for the current window only (table `risk_usage`), so its size
//!   is bounded by rules × accounts. Rolling windows are not offered: they need every event of
//!   the window kept; a calendar minute or hour bounds bursts (高频率、短时间) instead;
//! - checked on client transfers (posted and pending) like the debit limits; a hold counts when
//!   placed, its post does not count again; refused transfers count nothing.

use std::io;

use serde::{Deserialize, Serialize};

use crate::amount::DecimalInput;
use crate::clock::Clock;
use crate::result::{ItemResult, ResultCode};
use crate::store::{self, ReadStore, Store, Table};
use crate::transfer::WorkingSet;
use crate::types::{Account, AccountId, TransferInput, TransferKind};

/// Rules at most (each transfer is checked against every rule of its asset).
pub const RULES_MAX: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    Debit,
    Credit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Window {
    /// One transfer (amount limits only).
    Transfer,
    Minute,
    Hour,
    Day,
    /// The calendar month of local time.
    Month,
}

/// Which transfers and accounts a rule applies to: every field set must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleScope {
    pub asset: String,
    /// 0: any account.
    pub account_id: AccountId,
    /// 0: any account code.
    pub account_code: u32,
    /// `None`: any transfer code (business type).
    pub transfer_code: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Limit<A> {
    /// The side's total per window (a top-up cap on credits, a spending cap on debits).
    Amount { side: Side, max: A, window: Window },
    /// The side's number of transfers per window (not `Window::Transfer`).
    Count { side: Side, max: u32, window: Window },
    /// The account's balance after a credit: credits (posted and pending) minus posted debits.
    Balance { max: A },
}

/// A rule as set; `rule: None` removes rule `rule_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInput {
    pub rule_id: u64,
    pub rule: Option<(RuleScope, Limit<DecimalInput>)>,
    /// Local time of the windows, −840..=840 minutes (e.g. 480 for UTC+8).
    pub utc_offset_minutes: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub rule_id: u64,
    pub scope: RuleScope,
    pub limit: Limit<u128>,
    pub utc_offset_minutes: i32,
    pub timestamp_ns: u64,
}

/// What an account has done under a rule in its current window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub window: i64,
    pub amount_minor: u128,
    pub count: u32,
}

fn usage_key(rule_id: u64, account_id: AccountId) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&rule_id.to_be_bytes());
    key[8..].copy_from_slice(&account_id.to_be_bytes());
    key
}

/// The window of a time, numbered from the epoch in local time (months: year × 12 + month).
pub fn window_of(timestamp_ns: u64, utc_offset_minutes: i32, window: Window) -> i64 {
    let seconds = i64::try_from(timestamp_ns / 1_000_000_000).unwrap_or(i64::MAX) + i64::from(utc_offset_minutes) * 60;
    match window {
        Window::Transfer => 0,
        Window::Minute => seconds.div_euclid(60),
        Window::Hour => seconds.div_euclid(3_600),
        Window::Day => seconds.div_euclid(86_400),
        Window::Month => {
            let (year, month) = year_month(seconds.div_euclid(86_400));
            year * 12 + month - 1
        }
    }
}

/// The civil year and month (1..=12) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn year_month(days: i64) -> (i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month)
}

/// Sets or removes one rule. A refused rule changes nothing and takes no timestamp. Returns the
/// result and, when the rule changed, the rule as stored (`None` with OK: removed).
pub fn set(store: &mut impl Store, input: &RuleInput, clock: &mut Clock) -> io::Result<(ItemResult, Option<Option<Rule>>)> {
    let refuse = |code| Ok((ItemResult::new(code), None));
    if input.rule_id == 0 {
        return refuse(ResultCode::IdMustNotBeZero);
    }
    if input.utc_offset_minutes.unsigned_abs() > super::UTC_OFFSET_MINUTES_MAX.unsigned_abs() {
        return refuse(ResultCode::LimitInvalid);
    }
    let key = input.rule_id.to_be_bytes();
    let Some((scope, limit)) = &input.rule else {
        let timestamp_ns = clock.tick();
        store.delete(Table::RiskRules, &key);
        return Ok((ItemResult { timestamp_ns, ..ItemResult::new(ResultCode::Ok) }, Some(None)));
    };
    let Some(asset) = store::get_asset(store, &scope.asset)? else { return refuse(ResultCode::AssetNotFound) };
    let minor = |a: DecimalInput| a.to_minor(asset.scale);
    let limit = match limit {
        Limit::Count { window: Window::Transfer, .. } => return refuse(ResultCode::LimitInvalid),
        Limit::Amount { side, max, window } => Limit::Amount { side: *side, max: minor(*max), window: *window },
        Limit::Count { side, max, window } => Limit::Count { side: *side, max: *max, window: *window },
        Limit::Balance { max } => Limit::Balance { max: minor(*max) },
    };
    let limit = match limit {
        Limit::Amount { side, max: Ok(max), window } => Limit::Amount { side, max, window },
        Limit::Balance { max: Ok(max) } => Limit::Balance { max },
        Limit::Count { side, max, window } => Limit::Count { side, max, window },
        Limit::Amount { max: Err(code), .. } | Limit::Balance { max: Err(code) } => return refuse(code),
    };
    let exists = store.get(Table::RiskRules, &key)?.is_some();
    if !exists && all(store)?.len() >= RULES_MAX {
        return refuse(ResultCode::LimitInvalid);
    }
    let timestamp_ns = clock.tick();
    let rule = Rule { rule_id: input.rule_id, scope: scope.clone(), limit, utc_offset_minutes: input.utc_offset_minutes, timestamp_ns };
    store.put(Table::RiskRules, &key, store::encode(&rule));
    Ok((ItemResult { timestamp_ns, ..ItemResult::new(ResultCode::Ok) }, Some(Some(rule))))
}

/// Every rule, in id order (at most `RULES_MAX`).
pub fn all(store: &impl ReadStore) -> io::Result<Vec<Rule>> {
    store.scan(Table::RiskRules, &[], &[0xff; 9], RULES_MAX + 1, false)?.iter().map(|(_, v)| store::decode(Table::RiskRules, v)).collect()
}

pub fn usage(store: &impl ReadStore, rule: &Rule, account_id: AccountId, timestamp_ns: u64) -> io::Result<Usage> {
    let window = match rule.limit {
        Limit::Amount { window, .. } | Limit::Count { window, .. } => window_of(timestamp_ns, rule.utc_offset_minutes, window),
        Limit::Balance { .. } => 0,
    };
    let stored: Option<Usage> = store::get_typed(store, Table::RiskUsage, &usage_key(rule.rule_id, account_id))?;
    Ok(stored.filter(|u| u.window == window).unwrap_or(Usage { window, ..Usage::default() }))
}

/// One account's side of a transfer: its first leg on that side and the side's total.
struct Touch {
    account_id: AccountId,
    side: Side,
    leg: usize,
    total: u128,
}

/// Per (account, side) in leg order (a transfer has at most 64 legs).
fn touches(input: &TransferInput, amounts: &[u128]) -> Vec<Touch> {
    let mut out: Vec<Touch> = Vec::new();
    for (leg, (l, amount)) in input.legs.iter().zip(amounts).enumerate() {
        for (account_id, side) in [(l.debit_account_id, Side::Debit), (l.credit_account_id, Side::Credit)] {
            match out.iter_mut().find(|t| t.account_id == account_id && t.side == side) {
                Some(t) => t.total = t.total.saturating_add(*amount),
                None => out.push(Touch { account_id, side, leg, total: *amount }),
            }
        }
    }
    out
}

fn applies(rule: &Rule, input: &TransferInput, account: &Account) -> bool {
    let s = &rule.scope;
    s.asset == input.asset
        && (s.account_id == 0 || s.account_id == account.id)
        && (s.account_code == 0 || s.account_code == account.code)
        && s.transfer_code.is_none_or(|code| code == input.code)
}

/// The usage a successful transfer adds, per (rule, account), as read by `check`.
#[derive(Debug, Default)]
pub struct Counted(Vec<(u64, AccountId, Usage)>);

/// Checks a new transfer against every rule (`rules`, read once per command). `amounts`: its
/// legs in minor units; the accounts come from the working set (as before the transfer).
pub fn check(
    store: &impl ReadStore,
    working: &WorkingSet,
    rules: &[Rule],
    input: &TransferInput,
    amounts: &[u128],
    timestamp_ns: u64,
) -> io::Result<Result<Counted, ItemResult>> {
    let mut counted = Counted::default();
    let all_touches = touches(input, amounts);
    for rule in rules {
        for t in &all_touches {
            let Some(account) = working.account(t.account_id) else { continue };
            if !applies(rule, input, account) {
                continue;
            }
            match verdict(store, rule, input, amounts, account, t, timestamp_ns)? {
                Err(code) => return Ok(Err(ItemResult::at_leg(code, t.leg))),
                Ok(Some(usage)) => counted.0.push((rule.rule_id, t.account_id, usage)),
                Ok(None) => {}
            }
        }
    }
    Ok(Ok(counted))
}

/// One rule for one account's side: refused, or the usage to record (`None`: nothing to count).
fn verdict(
    store: &impl ReadStore,
    rule: &Rule,
    input: &TransferInput,
    amounts: &[u128],
    account: &Account,
    t: &Touch,
    timestamp_ns: u64,
) -> io::Result<Result<Option<Usage>, ResultCode>> {
    match rule.limit {
        Limit::Amount { side, .. } | Limit::Count { side, .. } if side != t.side => Ok(Ok(None)),
        Limit::Amount { max, window: Window::Transfer, .. } => Ok(if t.total > max { Err(ResultCode::RiskAmountExceeded) } else { Ok(None) }),
        Limit::Amount { max, .. } => {
            let mut used = usage(store, rule, t.account_id, timestamp_ns)?;
            used.amount_minor = used.amount_minor.saturating_add(t.total);
            Ok(if used.amount_minor > max { Err(ResultCode::RiskAmountExceeded) } else { Ok(Some(used)) })
        }
        Limit::Count { max, .. } => {
            let mut used = usage(store, rule, t.account_id, timestamp_ns)?;
            used.count = used.count.saturating_add(1);
            Ok(if used.count > max { Err(ResultCode::RiskCountExceeded) } else { Ok(Some(used)) })
        }
        Limit::Balance { .. } if t.side == Side::Debit => Ok(Ok(None)),
        Limit::Balance { max } => {
            // Credits in and debits out of this account in this transfer, then its balance.
            let (mut credits, mut debits) = (0u128, 0u128);
            for (l, amount) in input.legs.iter().zip(amounts) {
                if l.credit_account_id == account.id {
                    credits = credits.saturating_add(*amount);
                }
                // A held debit does not lower the balance until it is posted.
                if l.debit_account_id == account.id && input.kind == TransferKind::Posted {
                    debits = debits.saturating_add(*amount);
                }
            }
            let b = &account.balances;
            let after = b.credits_posted.saturating_add(b.credits_pending).saturating_add(credits).saturating_sub(b.debits_posted.saturating_add(debits));
            Ok(if after > max { Err(ResultCode::RiskBalanceExceeded) } else { Ok(None) })
        }
    }
}

/// Records a successful transfer's usage (as read by `check`).
pub fn record(store: &mut impl Store, counted: Counted) {
    for (rule_id, account_id, usage) in counted.0 {
        store.put(Table::RiskUsage, &usage_key(rule_id, account_id), store::encode(&usage));
    }
}
