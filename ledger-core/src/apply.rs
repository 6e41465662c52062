//! The one entry point of the state machine: apply a command to a store. Deterministic: time
//! comes from the command, iteration is in key order, and nothing here reads a clock or does IO
//! of its own.

use std::io;

use super::result::{ItemResult, ResultCode};
use super::store::{self, Store};
use super::types::{Account, AccountEntry, Command, Operation};
use super::clock::Clock;
use super::{account, asset, journal, pending, risk, transfer, wallet};

/// What one command did: a result per item, and the balance entries it wrote (for watchers).
#[derive(Debug, Default)]
pub struct Applied {
    pub results: Vec<ItemResult>,
    pub entries: Vec<AccountEntry>,
}

pub fn apply(store: &mut impl Store, command: &Command) -> io::Result<Applied> {
    let last = store::last_timestamp(store)?;
    let mut clock = Clock::new(last, command.proposed_at_ns);
    let mut applied = Applied { results: Vec::with_capacity(command.item_count()), entries: Vec::new() };
    let mut events = journal::Pending::default();
    pending::expire_due(store, &mut clock, &mut applied.entries)?;
    let released = wallet::token::release_due(store, &mut clock, &mut applied.entries)?;
    // Movements first: a line of money always precedes the other lines of its timestamp, so
    // "balances as of a line's time" means "after every movement up to that line".
    journal::movements(store, &applied.entries, &mut events)?;
    for token in released {
        events.push(clock.last(), journal::wallet_token(store, "released", &token)?);
    }
    match &command.operation {
        Operation::CreateAssets(items) => {
            for item in items {
                let result = asset::create(store, item, &mut clock)?;
                if changed(&result) {
                    if let Some(asset) = store::get_asset(store, &item.code)? {
                        events.push(result.timestamp_ns, journal::asset_created(&asset));
                    }
                }
                applied.results.push(result);
            }
        }
        Operation::CreateAccounts(items) => {
            for item in items {
                let result = account::create(store, item, &mut clock)?;
                if changed(&result) {
                    let account = created_account(store, item.id)?;
                    events.push(result.timestamp_ns, journal::account_created(store, &account)?);
                }
                applied.results.push(result);
            }
        }
        Operation::CreateTransfers(items) => {
            let rules_exist = risk::any_rule(store)?;
            for item in items {
                let mark = applied.entries.len();
                let result = if rules_exist {
                    transfer::create(store, item, &mut clock, &mut applied.entries)?
                } else {
                    transfer::create_without_rules(store, item, &mut clock, &mut applied.entries)?
                };
                applied.results.push(result);
                journal::movements(store, &applied.entries[mark..], &mut events)?;
            }
        }
        Operation::SetAccountStatus(items) => {
            for item in items {
                let result = account::set_status(store, item, &mut clock)?;
                if changed(&result) {
                    let account = created_account(store, item.account_id)?;
                    events.push(result.timestamp_ns, journal::status_changed(&account, &item.actor));
                }
                applied.results.push(result);
            }
        }
        Operation::Tick => {}
        Operation::IssueTokens(items) => {
            for item in items {
                let mark = applied.entries.len();
                let result = wallet::token::issue(store, item, &mut clock, &mut applied.entries)?;
                journal::movements(store, &applied.entries[mark..], &mut events)?;
                if changed(&result) {
                    wallet_token_event(store, &mut events, &clock, "issued", item.token_id)?;
                }
                applied.results.push(result);
            }
        }
        Operation::SyncOfflineRecords(items) => {
            for item in items {
                let (mark, first) = (applied.entries.len(), applied.results.len());
                wallet::sync::sync(store, item, &mut clock, &mut applied.entries, &mut applied.results)?;
                journal::movements(store, &applied.entries[mark..], &mut events)?;
                let results = &applied.results[first..];
                for (record, result) in item.records.iter().zip(results) {
                    if !result.code.is_success() {
                        let exception = wallet::sync::exception(item.token_id, record, result);
                        events.push(result.timestamp_ns, journal::wallet_exception(&exception));
                    }
                }
                let reissued = results.last().is_some_and(|r| r.code == ResultCode::Ok && item.reissue_through_sequence != 0);
                let change = if reissued { "reissued" } else { "synced" };
                let touched = results.iter().any(|r| !r.replay && r.timestamp_ns != 0);
                if touched && wallet::token::get_token(store, item.token_id)?.is_some() {
                    wallet_token_event(store, &mut events, &clock, change, item.token_id)?;
                }
            }
        }
        Operation::RecordAccessDenied(items) => {
            for item in items {
                let timestamp_ns = clock.tick();
                events.push(timestamp_ns, journal::access_denied(item));
                applied.results.push(ItemResult { timestamp_ns, ..ItemResult::new(ResultCode::Ok) });
            }
        }
        Operation::SetLimits(items) => {
            for item in items {
                let result = risk::set(store, item, &mut clock)?;
                if changed(&result) {
                    events.push(result.timestamp_ns, journal::limit_changed(store, item)?);
                }
                applied.results.push(result);
            }
        }
        Operation::SetBlocklist(items) => {
            for item in items {
                let result = wallet::blocklist::set(store, item, &mut clock)?;
                if changed(&result) {
                    events.push(result.timestamp_ns, journal::blocklist_changed(item));
                    if let wallet::blocklist::BlockTarget::Token(token_id) = item.target {
                        if wallet::token::get_token(store, token_id)?.is_some() {
                            wallet_token_event(store, &mut events, &clock, "revoked", token_id)?;
                        }
                    }
                }
                applied.results.push(result);
            }
        }
        Operation::RevokeTokens(items) => {
            for item in items {
                let result = wallet::token::revoke(store, item, &mut clock)?;
                if changed(&result) {
                    wallet_token_event(store, &mut events, &clock, "revoked", item.token_id)?;
                }
                applied.results.push(result);
            }
        }
    }
    assert_eq!(applied.results.len(), command.item_count(), "one result per item");
    events.write(store)?;
    if clock.issued() {
        store::set_last_timestamp(store, clock.last());
    }
    Ok(applied)
}

/// Membership changes come from the Raft layer, outside any command: stamped with the last time.
pub fn record_membership(store: &mut impl Store, log_index: u64, voters: Vec<u64>, learners: Vec<u64>) -> io::Result<()> {
    let mut events = journal::Pending::default();
    events.push(store::last_timestamp(store)?, journal::Event::MembershipChanged { log_index, voters, learners });
    events.write(store)?;
    Ok(())
}

/// An item changed the ledger: it succeeded now (not an `EXISTS`, not a replay, not a no-op).
fn changed(result: &ItemResult) -> bool {
    result.code == ResultCode::Ok && !result.replay && result.timestamp_ns != 0
}

fn created_account(store: &impl Store, id: u128) -> io::Result<Account> {
    store::get_account(store, id)?.ok_or_else(|| store::corruption(store::Table::Accounts, "an account just written is missing"))
}

fn wallet_token_event(
    store: &impl Store,
    events: &mut journal::Pending,
    clock: &Clock,
    change: &str,
    token_id: u128,
) -> io::Result<()> {
    let Some(token) = wallet::token::get_token(store, token_id)? else {
        return Err(store::corruption(store::Table::WalletTokens, "a token just written is missing"));
    };
    events.push(clock.last(), journal::wallet_token(store, change, &token)?);
    Ok(())
}
