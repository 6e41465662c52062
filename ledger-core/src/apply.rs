//! The one entry point of the state machine: apply a command to a store. Deterministic: time
//! comes from the command, iteration is in key order, and nothing here reads a clock or does IO
//! of its own.
//!
//! `apply` is a dispatch table: the due expiries and wallet releases first, then the command's
//! operation, handed to the module that owns it (`transfer/`, `pending/`, `account`, `asset`,
//! `risk`, `wallet/`), then the journal lines of the command in one append.

use std::io;

use super::clock::Clock;
use super::result::{ItemResult, ResultCode};
use super::store::{self, Store};
use super::types::*;
use super::{account, asset, journal, pending, risk, transfer, wallet};

/// What one command did: a result per item, and the balance entries it wrote (for watchers).
#[derive(Debug, Default)]
pub struct Applied {
    pub results: Vec<ItemResult>,
    pub entries: Vec<AccountEntry>,
}

/// One command in progress: its store, clock, results and journal lines.
struct Step<'a, S: Store> {
    store: &'a mut S,
    clock: Clock,
    applied: Applied,
    events: journal::Pending,
}

pub fn apply(store: &mut impl Store, command: &Command) -> io::Result<Applied> {
    let clock = Clock::new(store::last_timestamp(store)?, command.proposed_at_ns);
    let applied = Applied { results: Vec::with_capacity(command.item_count()), entries: Vec::new() };
    let mut step = Step { store, clock, applied, events: journal::Pending::default() };
    step.due()?;
    match &command.operation {
        Operation::CreateAssets(items) => step.create_assets(items)?,
        Operation::CreateAccounts(items) => step.create_accounts(items)?,
        Operation::CreateTransfers(items) => step.create_transfers(items, &[])?,
        Operation::SetAccountStatus(items) => step.set_account_status(items)?,
        Operation::Tick => {}
        Operation::IssueTokens(items) => step.issue_tokens(items)?,
        Operation::SyncOfflineRecords(items) => step.sync_offline_records(items)?,
        Operation::RecordAccessDenied(items) => step.record_access_denied(items),
        Operation::SetLimits(items) => step.set_limits(items)?,
        Operation::SetBlocklist(items) => step.set_blocklist(items)?,
        Operation::RevokeTokens(items) => step.revoke_tokens(items)?,
        Operation::UpdateAccounts(items) => step.update_accounts(items)?,
        Operation::RebindExternalRefs(items) => step.rebind_external_refs(items)?,
        Operation::SetRiskRules(items) => step.set_risk_rules(items)?,
        Operation::CreateTransfersWith { items, extras } => step.create_transfers(items, extras)?,
    }
    let Step { store, clock, applied, events } = step;
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

impl<S: Store> Step<'_, S> {
    /// Holds and wallet windows whose time is up, before the command's own items.
    fn due(&mut self) -> io::Result<()> {
        // Movements first: a line of money always precedes the other lines of its timestamp, so
        // "balances as of a line's time" means "after every movement up to that line".
        pending::expire_due(self.store, &mut self.clock, &mut self.applied.entries, &mut self.events)?;
        let mark = self.applied.entries.len();
        let released = wallet::token::release_due(self.store, &mut self.clock, &mut self.applied.entries)?;
        journal::movements(self.store, &self.applied.entries[mark..], &mut self.events)?;
        for token in released {
            self.events.push(self.clock.last(), journal::wallet_token(self.store, "released", &token)?);
        }
        Ok(())
    }

    fn create_assets(&mut self, items: &[AssetInput]) -> io::Result<()> {
        for item in items {
            let (result, created) = asset::create(self.store, item, &mut self.clock)?;
            if let Some(asset) = created.filter(|_| changed(&result)) {
                self.events.push(result.timestamp_ns, journal::asset_created(&asset));
            }
            self.applied.results.push(result);
        }
        Ok(())
    }

    fn create_accounts(&mut self, items: &[AccountInput]) -> io::Result<()> {
        for item in items {
            let (result, created) = account::create(self.store, item, &mut self.clock)?;
            if let Some((account, scale)) = created.filter(|_| changed(&result)) {
                self.events.push(result.timestamp_ns, journal::account_opened(&account, scale));
            }
            self.applied.results.push(result);
        }
        Ok(())
    }

    /// Plain transfers (`extras` empty) and transfers with options: one path.
    fn create_transfers(&mut self, items: &[TransferInput], extras: &[TransferExtras]) -> io::Result<()> {
        let Applied { results, entries } = &mut self.applied;
        transfer::create_all(self.store, items, extras, &mut self.clock, entries, results, &mut self.events)
    }

    fn set_account_status(&mut self, items: &[StatusChangeInput]) -> io::Result<()> {
        for item in items {
            let (result, account) = account::set_status(self.store, item, &mut self.clock)?;
            if let Some(account) = account.filter(|_| changed(&result)) {
                self.events.push(result.timestamp_ns, journal::status_changed(&account, &item.actor));
            }
            self.applied.results.push(result);
        }
        Ok(())
    }

    fn update_accounts(&mut self, items: &[account::update::AccountUpdateInput]) -> io::Result<()> {
        for item in items {
            let (result, change) = account::update::update(self.store, item, &mut self.clock)?;
            if let Some(change) = change.filter(|_| changed(&result)) {
                let Some(account) = store::get_account(self.store, change.account_id)? else {
                    return Err(store::corruption(store::Table::Accounts, "an account just written is missing"));
                };
                let scale = journal::asset_scale(self.store, &account.asset)?;
                self.events.push(result.timestamp_ns, journal::account_updated(&change, scale));
            }
            self.applied.results.push(result);
        }
        Ok(())
    }

    fn rebind_external_refs(&mut self, items: &[account::rebind::RebindInput]) -> io::Result<()> {
        for item in items {
            let (result, rebound) = account::rebind::rebind(self.store, item, &mut self.clock)?;
            if let Some(rebound) = rebound.filter(|_| changed(&result)) {
                self.events.push(result.timestamp_ns, journal::external_ref_rebound(&rebound, item));
            }
            self.applied.results.push(result);
        }
        Ok(())
    }

    fn set_risk_rules(&mut self, items: &[risk::rules::RuleInput]) -> io::Result<()> {
        for item in items {
            let (result, rule) = risk::rules::set(self.store, item, &mut self.clock)?;
            if let Some(rule) = rule.filter(|_| changed(&result)) {
                self.events.push(result.timestamp_ns, journal::risk_rule_changed(item.rule_id, rule.as_ref()));
            }
            self.applied.results.push(result);
        }
        Ok(())
    }

    fn issue_tokens(&mut self, items: &[wallet::IssueTokenInput]) -> io::Result<()> {
        for item in items {
            let mark = self.applied.entries.len();
            let result = wallet::token::issue(self.store, item, &mut self.clock, &mut self.applied.entries)?;
            journal::movements(self.store, &self.applied.entries[mark..], &mut self.events)?;
            if changed(&result) {
                self.token_event("issued", item.token_id)?;
            }
            self.applied.results.push(result);
        }
        Ok(())
    }

    fn sync_offline_records(&mut self, items: &[wallet::SyncInput]) -> io::Result<()> {
        for item in items {
            let (mark, first) = (self.applied.entries.len(), self.applied.results.len());
            wallet::sync::sync(self.store, item, &mut self.clock, &mut self.applied.entries, &mut self.applied.results)?;
            journal::movements(self.store, &self.applied.entries[mark..], &mut self.events)?;
            let results = &self.applied.results[first..];
            for (record, result) in item.records.iter().zip(results) {
                if !result.code.is_success() {
                    let exception = wallet::sync::exception(item.token_id, record, result);
                    self.events.push(result.timestamp_ns, journal::wallet_exception(&exception));
                }
            }
            let reissued = results.last().is_some_and(|r| r.code == ResultCode::Ok && item.reissue_through_sequence != 0);
            let change = if reissued { "reissued" } else { "synced" };
            let touched = results.iter().any(|r| !r.replay && r.timestamp_ns != 0);
            if touched && wallet::token::get_token(self.store, item.token_id)?.is_some() {
                self.token_event(change, item.token_id)?;
            }
        }
        Ok(())
    }

    fn record_access_denied(&mut self, items: &[AccessDeniedInput]) {
        for item in items {
            let timestamp_ns = self.clock.tick();
            self.events.push(timestamp_ns, journal::access_denied(item));
            self.applied.results.push(ItemResult { timestamp_ns, ..ItemResult::new(ResultCode::Ok) });
        }
    }

    fn set_limits(&mut self, items: &[risk::LimitInput]) -> io::Result<()> {
        for item in items {
            let (result, scale) = risk::set(self.store, item, &mut self.clock)?;
            if let Some(scale) = scale.filter(|_| changed(&result)) {
                self.events.push(result.timestamp_ns, journal::limit_set(item, scale));
            }
            self.applied.results.push(result);
        }
        Ok(())
    }

    fn set_blocklist(&mut self, items: &[wallet::blocklist::BlockInput]) -> io::Result<()> {
        for item in items {
            let result = wallet::blocklist::set(self.store, item, &mut self.clock)?;
            if changed(&result) {
                self.events.push(result.timestamp_ns, journal::blocklist_changed(item));
                if let wallet::blocklist::BlockTarget::Token(token_id) = item.target {
                    if wallet::token::get_token(self.store, token_id)?.is_some() {
                        self.token_event("revoked", token_id)?;
                    }
                }
            }
            self.applied.results.push(result);
        }
        Ok(())
    }

    fn revoke_tokens(&mut self, items: &[wallet::RevokeTokenInput]) -> io::Result<()> {
        for item in items {
            let result = wallet::token::revoke(self.store, item, &mut self.clock)?;
            if changed(&result) {
                self.token_event("revoked", item.token_id)?;
            }
            self.applied.results.push(result);
        }
        Ok(())
    }

    fn token_event(&mut self, change: &str, token_id: u128) -> io::Result<()> {
        let Some(token) = wallet::token::get_token(self.store, token_id)? else {
            return Err(store::corruption(store::Table::WalletTokens, "a token just written is missing"));
        };
        self.events.push(self.clock.last(), journal::wallet_token(self.store, change, &token)?);
        Ok(())
    }
}
