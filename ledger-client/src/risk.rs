//! Account risk limits and the token/device blocklist (`ledger.v1.Risk`).

use ledger_proto::api;
use crate::amount::Amount;

use crate::client::{CallKind, LedgerClient};
use crate::convert;
use crate::error::ClientError;
use crate::ids::{decode_id, encode_id};
use crate::types::WriteResult;

/// Whom a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitScope {
    Account(u128),
    /// Every account of this asset and code without a rule of its own.
    Code { asset: String, code: u32 },
}

/// A risk rule. All three limits `None` removes the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub scope: LimitScope,
    pub max_single_debit: Option<Amount>,
    pub daily_debit_amount: Option<Amount>,
    pub daily_debit_count: Option<u32>,
    /// The day's fixed UTC offset in minutes (480 = UTC+8).
    pub utc_offset_minutes: i32,
}

/// The rule that applies to an account, and what it debited today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLimits {
    pub rule: Option<Limits>,
    pub debited_today: Amount,
    pub debits_today: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockTarget {
    Token(u128),
    Device(String),
}

fn to_proto(l: &Limits) -> api::LimitRule {
    api::LimitRule {
        scope: Some(match &l.scope {
            LimitScope::Account(id) => api::limit_rule::Scope::AccountId(encode_id(*id)),
            LimitScope::Code { asset, code } => api::limit_rule::Scope::Code(api::CodeScope { asset: asset.clone(), code: *code }),
        }),
        max_single_debit: l.max_single_debit.map(|d| d.to_string()),
        daily_debit_amount: l.daily_debit_amount.map(|d| d.to_string()),
        daily_debit_count: l.daily_debit_count,
        utc_offset_minutes: l.utc_offset_minutes,
    }
}

fn decimal(text: &str) -> Result<Amount, ClientError> {
    Amount::parse_balance(text).map_err(|_| ClientError::Protocol(format!("amount {text:?}")))
}

impl LedgerClient {
    pub async fn set_limits(&self, rules: Vec<Limits>) -> Result<Vec<WriteResult>, ClientError> {
        let count = rules.len();
        let request = api::SetLimitsRequest { rules: rules.iter().map(to_proto).collect() };
        let response = self
            .risk_call("SetLimits", CallKind::Write, request, |mut grpc, request| async move { grpc.set_limits(request).await })
            .await?;
        convert::write_results_from_proto(response.results, count).map_err(ClientError::Protocol)
    }

    pub async fn get_limits(&self, account_id: u128) -> Result<AccountLimits, ClientError> {
        let request = api::GetLimitsRequest { account_id: encode_id(account_id) };
        let r = self
            .risk_call("GetLimits", CallKind::Read, request, |mut grpc, request| async move { grpc.get_limits(request).await })
            .await?;
        let rule = match (r.has_rule, r.rule) {
            (true, Some(rule)) => Some(Limits {
                scope: match rule.scope {
                    Some(api::limit_rule::Scope::AccountId(id)) => LimitScope::Account(decode_id(&id).map_err(|e| ClientError::Protocol(e.to_string()))?),
                    Some(api::limit_rule::Scope::Code(c)) => LimitScope::Code { asset: c.asset, code: c.code },
                    None => return Err(ClientError::Protocol("a rule without a scope".into())),
                },
                max_single_debit: rule.max_single_debit.as_deref().map(decimal).transpose()?,
                daily_debit_amount: rule.daily_debit_amount.as_deref().map(decimal).transpose()?,
                daily_debit_count: rule.daily_debit_count,
                utc_offset_minutes: rule.utc_offset_minutes,
            }),
            _ => None,
        };
        let debited_today = if r.debited_today.is_empty() { Amount::ZERO } else { decimal(&r.debited_today)? };
        Ok(AccountLimits { rule, debited_today, debits_today: r.debits_today })
    }

    /// Blocks (`blocked`) or unblocks each target. Blocking a token also revokes it.
    pub async fn set_blocklist(&self, changes: Vec<(BlockTarget, bool, String)>) -> Result<Vec<WriteResult>, ClientError> {
        let count = changes.len();
        let request = api::SetBlocklistRequest {
            changes: changes
                .into_iter()
                .map(|(target, blocked, reason)| api::BlocklistChange {
                    target: Some(match target {
                        BlockTarget::Token(id) => api::blocklist_change::Target::TokenId(encode_id(id)),
                        BlockTarget::Device(device) => api::blocklist_change::Target::DeviceId(device),
                    }),
                    blocked,
                    reason,
                })
                .collect(),
        };
        let response = self
            .risk_call("SetBlocklist", CallKind::Write, request, |mut grpc, request| async move { grpc.set_blocklist(request).await })
            .await?;
        convert::write_results_from_proto(response.results, count).map_err(ClientError::Protocol)
    }
}

/// Risk rules by id (`SetRiskRules`, issue 22): limits on credits, debits and balances, scoped by
/// account, account code and transfer code, per transfer or per calendar window.
pub use ledger_core::risk::rules::{Side as RiskSide, Window as RiskWindow};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RiskLimit {
    Amount { side: RiskSide, max: Amount, window: RiskWindow },
    Count { side: RiskSide, max: u32, window: RiskWindow },
    /// The balance after a credit: credits (posted and pending) minus posted debits.
    Balance { max: Amount },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskRule {
    pub rule_id: u64,
    pub asset: String,
    /// 0: any account.
    pub account_id: u128,
    /// 0: any account code.
    pub account_code: u32,
    /// `None`: any transfer code.
    pub transfer_code: Option<u32>,
    pub limit: RiskLimit,
    pub utc_offset_minutes: i32,
}

fn side_to_wire(side: RiskSide) -> i32 {
    match side {
        RiskSide::Debit => api::RiskSide::Debit as i32,
        RiskSide::Credit => api::RiskSide::Credit as i32,
    }
}

fn window_to_wire(window: RiskWindow) -> i32 {
    (match window {
        RiskWindow::Transfer => api::RiskWindow::Transfer,
        RiskWindow::Minute => api::RiskWindow::Minute,
        RiskWindow::Hour => api::RiskWindow::Hour,
        RiskWindow::Day => api::RiskWindow::Day,
        RiskWindow::Month => api::RiskWindow::Month,
    }) as i32
}

fn rule_to_proto(r: &RiskRule) -> api::RiskRule {
    let mut wire = api::RiskRule {
        rule_id: r.rule_id,
        asset: r.asset.clone(),
        account_id: if r.account_id == 0 { Vec::new() } else { encode_id(r.account_id) },
        account_code: r.account_code,
        transfer_code: r.transfer_code,
        utc_offset_minutes: r.utc_offset_minutes,
        ..Default::default()
    };
    match &r.limit {
        RiskLimit::Amount { side, max, window } => {
            (wire.kind, wire.side, wire.window, wire.max_amount) = (api::RiskLimitKind::Amount as i32, side_to_wire(*side), window_to_wire(*window), max.to_string());
        }
        RiskLimit::Count { side, max, window } => {
            (wire.kind, wire.side, wire.window, wire.max_count) = (api::RiskLimitKind::Count as i32, side_to_wire(*side), window_to_wire(*window), *max);
        }
        RiskLimit::Balance { max } => (wire.kind, wire.max_amount) = (api::RiskLimitKind::Balance as i32, max.to_string()),
    }
    wire
}

fn rule_from_proto(w: api::RiskRule) -> Result<RiskRule, ClientError> {
    let bad = || ClientError::Protocol(format!("risk rule {} of an unknown kind", w.rule_id));
    let side = match api::RiskSide::try_from(w.side) {
        Ok(api::RiskSide::Debit) => Ok(RiskSide::Debit),
        Ok(api::RiskSide::Credit) => Ok(RiskSide::Credit),
        _ => Err(bad()),
    };
    let window = match api::RiskWindow::try_from(w.window) {
        Ok(api::RiskWindow::Transfer) => Ok(RiskWindow::Transfer),
        Ok(api::RiskWindow::Minute) => Ok(RiskWindow::Minute),
        Ok(api::RiskWindow::Hour) => Ok(RiskWindow::Hour),
        Ok(api::RiskWindow::Day) => Ok(RiskWindow::Day),
        Ok(api::RiskWindow::Month) => Ok(RiskWindow::Month),
        _ => Err(bad()),
    };
    let limit = match api::RiskLimitKind::try_from(w.kind) {
        Ok(api::RiskLimitKind::Amount) => RiskLimit::Amount { side: side?, max: decimal(&w.max_amount)?, window: window? },
        Ok(api::RiskLimitKind::Count) => RiskLimit::Count { side: side?, max: w.max_count, window: window? },
        Ok(api::RiskLimitKind::Balance) => RiskLimit::Balance { max: decimal(&w.max_amount)? },
        _ => return Err(bad()),
    };
    let account_id = if w.account_id.is_empty() { 0 } else { decode_id(&w.account_id).map_err(|e| ClientError::Protocol(e.to_string()))? };
    Ok(RiskRule { rule_id: w.rule_id, asset: w.asset, account_id, account_code: w.account_code, transfer_code: w.transfer_code, limit, utc_offset_minutes: w.utc_offset_minutes })
}

impl LedgerClient {
    /// Sets each rule (replacing one with the same id). Role admin.
    pub async fn set_risk_rules(&self, rules: Vec<RiskRule>) -> Result<Vec<WriteResult>, ClientError> {
        self.send_risk_rules(rules.iter().map(rule_to_proto).collect()).await
    }

    /// Removes these rules (an unknown id is OK: nothing to remove).
    pub async fn remove_risk_rules(&self, rule_ids: Vec<u64>) -> Result<Vec<WriteResult>, ClientError> {
        self.send_risk_rules(rule_ids.into_iter().map(|rule_id| api::RiskRule { rule_id, remove: true, ..Default::default() }).collect()).await
    }

    async fn send_risk_rules(&self, rules: Vec<api::RiskRule>) -> Result<Vec<WriteResult>, ClientError> {
        let count = rules.len();
        let request = api::SetRiskRulesRequest { rules };
        let response = self
            .risk_call("SetRiskRules", CallKind::Write, request, |mut grpc, request| async move { grpc.set_risk_rules(request).await })
            .await?;
        convert::write_results_from_proto(response.results, count).map_err(ClientError::Protocol)
    }

    pub async fn list_risk_rules(&self) -> Result<Vec<RiskRule>, ClientError> {
        let response = self
            .risk_call("ListRiskRules", CallKind::Read, api::ListRiskRulesRequest {}, |mut grpc, request| async move { grpc.list_risk_rules(request).await })
            .await?;
        response.rules.into_iter().map(rule_from_proto).collect()
    }
}
