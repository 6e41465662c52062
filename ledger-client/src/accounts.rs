//! Account changes after creation (`ledger.v1.Accounts`): settings updates, moving or releasing
//! external references, and an account's change history.

use std::collections::BTreeMap;

use ledger_proto::api;

use crate::amount::Amount;
use crate::client::{CallKind, LedgerClient};
use crate::convert;
use crate::error::ClientError;
use crate::ids::{decode_id, encode_id};
use crate::types::WriteResult;

/// New settings of one account; `None` keeps a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountUpdate {
    pub account_id: u128,
    /// Replaces the whole metadata map (`Some(empty)` clears it).
    pub metadata: Option<BTreeMap<String, String>>,
    /// Only on accounts with `debits_must_not_exceed_credits`; never below what is drawn.
    pub overdraft_limit: Option<Amount>,
    pub code: Option<u32>,
    pub reason: String,
}

impl AccountUpdate {
    pub fn new(account_id: u128) -> AccountUpdate {
        AccountUpdate { account_id, ..AccountUpdate::default() }
    }
}

/// Move `external_ref` from the account holding it (0: it is free) to another (0: release it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rebind {
    pub external_ref: String,
    pub from_account_id: u128,
    pub to_account_id: u128,
    pub reason: String,
}

/// The settings an update may change, as they were before or after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSettings {
    pub code: u32,
    pub overdraft_limit: Amount,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    Settings { before: AccountSettings, after: AccountSettings },
    /// `other_account_id`: where the reference came from or went to (0: none).
    ExternalRef { before: Option<String>, after: Option<String>, other_account_id: u128 },
}

/// One committed change of an account: when, who, why, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChange {
    pub timestamp_ns: u64,
    pub actor: String,
    pub reason: String,
    pub kind: ChangeKind,
}

/// A page of changes; `next_after_timestamp_ns` is the cursor of the next page (`None`: last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChanges {
    pub changes: Vec<AccountChange>,
    pub next_after_timestamp_ns: Option<u64>,
}

fn id(bytes: &[u8]) -> Result<u128, ClientError> {
    if bytes.is_empty() {
        return Ok(0);
    }
    decode_id(bytes).map_err(ClientError::protocol)
}

fn optional_id(value: u128) -> Vec<u8> {
    if value == 0 { Vec::new() } else { encode_id(value) }
}

fn settings(s: Option<api::AccountSettings>) -> Result<AccountSettings, ClientError> {
    let s = s.ok_or_else(|| ClientError::protocol("a settings change without its settings"))?;
    let overdraft_limit = Amount::parse_balance(&s.overdraft_limit).map_err(|_| ClientError::protocol(format!("amount {:?}", s.overdraft_limit)))?;
    Ok(AccountSettings { code: s.code, overdraft_limit, metadata: s.metadata })
}

fn change(c: api::AccountChange) -> Result<AccountChange, ClientError> {
    let kind = match c.change {
        Some(api::account_change::Change::Settings(s)) => ChangeKind::Settings { before: settings(s.before)?, after: settings(s.after)? },
        Some(api::account_change::Change::ExternalRef(r)) => {
            ChangeKind::ExternalRef { before: r.before, after: r.after, other_account_id: id(&r.other_account_id)? }
        }
        None => return Err(ClientError::protocol("an account change without its kind")),
    };
    Ok(AccountChange { timestamp_ns: c.timestamp_ns, actor: c.actor, reason: c.reason, kind })
}

impl LedgerClient {
    /// One result per update, in order. Retrying is safe: the same settings again are OK.
    pub async fn update_accounts(&self, updates: Vec<AccountUpdate>) -> Result<Vec<WriteResult>, ClientError> {
        let count = updates.len();
        let request = api::UpdateAccountsRequest {
            updates: updates
                .into_iter()
                .map(|u| api::AccountUpdate {
                    account_id: encode_id(u.account_id),
                    set_metadata: u.metadata.is_some(),
                    metadata: u.metadata.unwrap_or_default(),
                    overdraft_limit: u.overdraft_limit.map(|a| a.to_string()),
                    code: u.code,
                    reason: u.reason,
                })
                .collect(),
        };
        let response = self
            .accounts_call("UpdateAccounts", CallKind::Write, request, |mut grpc, request| async move { grpc.update_accounts(request).await })
            .await?;
        convert::write_results_from_proto(response.results, count).map_err(ClientError::Protocol)
    }

    /// One result per rebind, in order. Retrying is safe: a number already where it was asked
    /// to be is OK.
    pub async fn rebind_external_refs(&self, rebinds: Vec<Rebind>) -> Result<Vec<WriteResult>, ClientError> {
        let count = rebinds.len();
        let request = api::RebindExternalRefsRequest {
            rebinds: rebinds
                .into_iter()
                .map(|r| api::ExternalRefRebind {
                    external_ref: r.external_ref,
                    from_account_id: optional_id(r.from_account_id),
                    to_account_id: optional_id(r.to_account_id),
                    reason: r.reason,
                })
                .collect(),
        };
        let response = self
            .accounts_call("RebindExternalRefs", CallKind::Write, request, |mut grpc, request| async move { grpc.rebind_external_refs(request).await })
            .await?;
        convert::write_results_from_proto(response.results, count).map_err(ClientError::Protocol)
    }

    /// Up to `limit` changes (1..=1000; 0: 100) after `after_timestamp_ns` (0: from the first).
    pub async fn list_account_changes(&self, account_id: u128, after_timestamp_ns: u64, limit: u32) -> Result<AccountChanges, ClientError> {
        let request = api::ListAccountChangesRequest { account_id: encode_id(account_id), after_timestamp_ns, limit };
        let r = self
            .accounts_call("ListAccountChanges", CallKind::Read, request, |mut grpc, request| async move { grpc.list_account_changes(request).await })
            .await?;
        let changes = r.changes.into_iter().map(change).collect::<Result<Vec<_>, _>>()?;
        Ok(AccountChanges { changes, next_after_timestamp_ns: (r.next_after_timestamp_ns != 0).then_some(r.next_after_timestamp_ns) })
    }
}
