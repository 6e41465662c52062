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
