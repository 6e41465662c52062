//! Account risk limits (the payment rules wallets live under): the largest single debit, the
//! debit amount per day and the number of debits per day, set per account or per account code
//! (a wallet tier by real-name level). An account's own rule wins over its code's.
//!
//! The day is the calendar day at the rule's fixed UTC offset, computed from the transfer's Raft
//! timestamp, so every replica agrees on it. Checked on client transfers (posted and pending) only:
//! posts and voids settle a hold already counted, and offline wallet spends were authorized when
//! their token's hold was placed. Usage is counted from when a rule applies to an account.

pub mod rules;

use std::io;

use serde::{Deserialize, Serialize};

use super::amount::DecimalInput;
use super::clock::Clock;
use super::result::{ItemResult, ResultCode};
use super::store::{self, Store, Table};
use super::transfer::WorkingSet;
use super::types::{Account, AccountId, TransferInput, TransferKind};

/// Whom a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitScope {
    Account(AccountId),
    /// Every account of this asset and code without a rule of its own.
    Code { asset: String, code: u32 },
}

/// A rule as set. All three limits absent removes the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitInput {
    pub scope: LimitScope,
    pub max_single_debit: Option<DecimalInput>,
    pub daily_debit_amount: Option<DecimalInput>,
    pub daily_debit_count: Option<u32>,
    /// The day's time zone as a fixed offset, −14 h..=+14 h (e.g. +480 for UTC+8).
    pub utc_offset_minutes: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitRule {
    pub max_single_debit_minor: Option<u128>,
    pub daily_debit_amount_minor: Option<u128>,
    pub daily_debit_count: Option<u32>,
    pub utc_offset_minutes: i32,
    pub timestamp_ns: u64,
}

/// What an account has debited on its current day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyUsage {
    /// Days since 1970-01-01 at the rule's offset.
    pub day: i64,
    pub amount_minor: u128,
    pub count: u32,
}

pub const UTC_OFFSET_MINUTES_MAX: i32 = 14 * 60;

pub fn scope_key(scope: &LimitScope) -> Vec<u8> {
    match scope {
        LimitScope::Account(id) => [&[b'a'][..], &store::id_key(*id)].concat(),
        LimitScope::Code { asset, code } => [&[b'c'][..], &code.to_be_bytes(), asset.as_bytes()].concat(),
    }
}

pub fn day_of(timestamp_ns: u64, utc_offset_minutes: i32) -> i64 {
    let seconds = i64::try_from(timestamp_ns / 1_000_000_000).unwrap_or(i64::MAX) + i64::from(utc_offset_minutes) * 60;
    seconds.div_euclid(86_400)
}

/// Sets or removes one rule. A refused rule changes nothing (and takes no timestamp). Returns
/// the result and, when the rule changed, its asset's scale (for its journal line).
pub fn set(store: &mut impl Store, input: &LimitInput, clock: &mut Clock) -> io::Result<(ItemResult, Option<u8>)> {
    let refuse = |code| Ok((ItemResult::new(code), None));
    // unsigned_abs: i32::MIN has no i32 absolute value (`abs` would panic every replica).
    if input.utc_offset_minutes.unsigned_abs() > UTC_OFFSET_MINUTES_MAX.unsigned_abs() {
        return refuse(ResultCode::LimitInvalid);
    }
    let asset = match &input.scope {
        LimitScope::Account(0) => return refuse(ResultCode::IdMustNotBeZero),
        LimitScope::Account(id) => match store::get_account(store, *id)? {
            Some(account) => account.asset,
            None => return refuse(ResultCode::AccountNotFound),
        },
        LimitScope::Code { code: 0, .. } => return refuse(ResultCode::AccountCodeMustNotBeZero),
        LimitScope::Code { asset, .. } => asset.clone(),
    };
    let Some(asset) = store::get_asset(store, &asset)? else {
        return refuse(ResultCode::AssetNotFound);
    };
    let minor = |amount: Option<DecimalInput>| -> Result<Option<u128>, ResultCode> {
        amount.map(|a| a.to_minor(asset.scale)).transpose()
    };
    let (max_single, daily_amount) = match (minor(input.max_single_debit), minor(input.daily_debit_amount)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(code), _) | (_, Err(code)) => return refuse(code),
    };
    let key = scope_key(&input.scope);
    let timestamp_ns = clock.tick();
    if max_single.is_none() && daily_amount.is_none() && input.daily_debit_count.is_none() {
        store.delete(Table::Limits, &key);
    } else {
        let rule = LimitRule {
            max_single_debit_minor: max_single,
            daily_debit_amount_minor: daily_amount,
            daily_debit_count: input.daily_debit_count,
            utc_offset_minutes: input.utc_offset_minutes,
            timestamp_ns,
        };
        store.put(Table::Limits, &key, store::encode(&rule));
    }
    Ok((ItemResult { timestamp_ns, ..ItemResult::new(ResultCode::Ok) }, Some(asset.scale)))
}

/// The rule that applies to an account: its own, else its code's.
pub fn rule_for(store: &impl store::ReadStore, account_id: AccountId) -> io::Result<Option<LimitRule>> {
    if let Some(rule) = store::get_typed(store, Table::Limits, &scope_key(&LimitScope::Account(account_id)))? {
        return Ok(Some(rule));
    }
    let account = store::get_account(store, account_id)?;
    code_rule(store, account.as_ref())
}

/// `rule_for` with the account in hand (`None`: it does not exist).
pub fn rule_for_account(store: &impl Store, account_id: AccountId, account: Option<&Account>) -> io::Result<Option<LimitRule>> {
    if let Some(rule) = store::get_typed(store, Table::Limits, &scope_key(&LimitScope::Account(account_id)))? {
        return Ok(Some(rule));
    }
    code_rule(store, account)
}

fn code_rule(store: &impl store::ReadStore, account: Option<&Account>) -> io::Result<Option<LimitRule>> {
    let Some(account) = account else { return Ok(None) };
    let scope = LimitScope::Code { asset: account.asset.clone(), code: account.code };
    store::get_typed(store, Table::Limits, &scope_key(&scope))
}

/// Whether any rule exists (one seek per table): without one, a command's transfers skip the
/// lookups.
pub fn any_rule(store: &impl store::ReadStore) -> io::Result<bool> {
    Ok(!store.scan(Table::Limits, &[], &[0xff; 32], 1, false)?.is_empty()
        || !store.scan(Table::RiskRules, &[], &[0xff; 9], 1, false)?.is_empty())
}

pub fn usage(store: &impl store::ReadStore, account_id: AccountId, day: i64) -> io::Result<DailyUsage> {
    let stored: Option<DailyUsage> = store::get_typed(store, Table::DailyDebits, &store::id_key(account_id))?;
    Ok(stored.filter(|u| u.day == day).unwrap_or(DailyUsage { day, ..DailyUsage::default() }))
}

/// The debits a client transfer would make, per account with a rule: checked now, recorded by
/// `record` if the transfer then succeeds. Each entry: (account, first leg, total, rule, the
/// account's day so far as read by the check).
pub struct Debits(Vec<(AccountId, usize, u128, LimitRule, DailyUsage)>, rules::Counted);

/// Checks a new posted or pending transfer against the limits of its debit accounts. `amounts`
/// are its legs' amounts as the transfer converted them (empty: its asset does not exist); the
/// accounts come from the command's working set.
pub fn check(
    store: &impl Store,
    working: &WorkingSet,
    input: &TransferInput,
    amounts: &[Result<u128, ResultCode>],
    timestamp_ns: u64,
) -> io::Result<Result<Debits, ItemResult>> {
    let mut debits = Debits(Vec::new(), rules::Counted::default());
    // Not a new transfer, no asset, or a bad amount: refused by the transfer itself, with its own code.
    let new = matches!(input.kind, TransferKind::Posted | TransferKind::Pending);
    if !new || amounts.len() != input.legs.len() || amounts.iter().any(Result::is_err) {
        return Ok(Ok(debits));
    }
    // Totals per debit account in leg order (a transfer has at most 64 legs).
    let mut totals: Vec<(AccountId, usize, u128)> = Vec::new();
    for (index, (leg, amount)) in input.legs.iter().zip(amounts).enumerate() {
        let amount = amount.expect("checked above");
        match totals.iter_mut().find(|(id, _, _)| *id == leg.debit_account_id) {
            Some((_, _, total)) => *total = total.saturating_add(amount),
            None => totals.push((leg.debit_account_id, index, amount)),
        }
    }
    for (account_id, leg, total) in totals {
        let Some(rule) = rule_for_account(store, account_id, working.account(account_id))? else { continue };
        let used = usage(store, account_id, day_of(timestamp_ns, rule.utc_offset_minutes))?;
        let refused = if rule.max_single_debit_minor.is_some_and(|max| total > max) {
            Some(ResultCode::DebitLimitExceeded)
        } else if rule.daily_debit_amount_minor.is_some_and(|max| used.amount_minor.saturating_add(total) > max) {
            Some(ResultCode::DailyDebitAmountExceeded)
        } else if rule.daily_debit_count.is_some_and(|max| used.count >= max) {
            Some(ResultCode::DailyDebitCountExceeded)
        } else {
            None
        };
        if let Some(code) = refused {
            return Ok(Err(ItemResult::at_leg(code, leg)));
        }
        debits.0.push((account_id, leg, total, rule, used));
    }
    // Then the rules of `risk::rules` (credits, balances, windows, transfer codes).
    let rules = rules::all(store)?;
    if !rules.is_empty() {
        let minor: Vec<u128> = amounts.iter().map(|a| *a.as_ref().expect("checked above")).collect();
        match rules::check(store, working, &rules, input, &minor, timestamp_ns)? {
            Ok(counted) => debits.1 = counted,
            Err(refusal) => return Ok(Err(refusal)),
        }
    }
    Ok(Ok(debits))
}

/// Counts a successful transfer's debits into each account's day (as read by `check`).
pub fn record(store: &mut impl Store, debits: Debits, timestamp_ns: u64) {
    rules::record(store, debits.1);
    for (account_id, _, total, rule, mut used) in debits.0 {
        assert_eq!(used.day, day_of(timestamp_ns, rule.utc_offset_minutes), "usage of the transfer's day");
        used.amount_minor = used.amount_minor.saturating_add(total);
        used.count = used.count.saturating_add(1);
        store.put(Table::DailyDebits, &store::id_key(account_id), store::encode(&used));
    }
}
