//! History queries (`ledger.v1.Query`): read like every other read (linearizable unless
//! `ClientConfig::max_staleness`), paged by a cursor the answer returns.

use ledger_proto::api;

use crate::client::{LedgerClient, protocol};
use crate::convert::balances_from_proto;
use crate::error::ClientError;
use crate::ids::{decode_id, encode_id};
use crate::types::Balances;

/// One change of an account's balances: a transfer step and the balances after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceChange {
    pub timestamp_ns: u64,
    pub transfer_id: u128,
    pub balances: Balances,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountHistoryPage {
    pub changes: Vec<BalanceChange>,
    /// Pass as `cursor_timestamp_ns` for the next page; `None` when the range holds no more.
    pub next_cursor_timestamp_ns: Option<u64>,
}

/// Which part of an account's history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistoryRange {
    /// Inclusive; 0: from the first change.
    pub from_timestamp_ns: u64,
    /// Inclusive; 0: to the last.
    pub to_timestamp_ns: u64,
    /// The previous page's next cursor; 0: from the start of the range.
    pub cursor_timestamp_ns: u64,
    /// 1..=8,190; 0: 100.
    pub limit: u32,
    /// Newest first.
    pub reverse: bool,
}

impl LedgerClient {
    /// One page of an account's balances after each change (`Query/GetAccountHistory`).
    /// `Rejected` with `NotFound` when there is no such account.
    pub async fn get_account_history(&self, account_id: u128, range: HistoryRange) -> Result<AccountHistoryPage, ClientError> {
        let request = api::GetAccountHistoryRequest {
            account_id: encode_id(account_id),
            from_timestamp_ns: range.from_timestamp_ns,
            to_timestamp_ns: range.to_timestamp_ns,
            limit: range.limit,
            reverse: range.reverse,
            cursor_timestamp_ns: range.cursor_timestamp_ns,
        };
        let response = self
            .query_call("GetAccountHistory", request, |mut grpc, request| async move { grpc.get_account_history(request).await })
            .await?;
        let mut changes = Vec::with_capacity(response.changes.len());
        for change in response.changes {
            changes.push(BalanceChange {
                timestamp_ns: change.timestamp_ns,
                transfer_id: decode_id(&change.transfer_id).map_err(protocol)?,
                balances: balances_from_proto(change.balances).map_err(protocol)?,
            });
        }
        let next = response.next_cursor_timestamp_ns;
        Ok(AccountHistoryPage { changes, next_cursor_timestamp_ns: (next != 0).then_some(next) })
    }
}
