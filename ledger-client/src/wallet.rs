//! Offline HCE wallets (`ledger.v1.Wallet`): typed calls on [`LedgerClient`], sharing its
//! endpoints, retries and leader following. See the top-level README "Offline wallets".
//!
//! Retries are safe: issuing the same token id again (same account and device) answers `exists`
//! with the token and its key; a record is de-duplicated by (token, sequence), so a repeated
//! upload answers `ok` with `replay`; revoking is a "set". A sync is a write: after exhausted
//! retries it fails `Unknown`, and sending it again is how to learn the outcome.

pub mod convert;
pub mod mac;
pub mod types;

pub use mac::{TokenKey, record_mac, record_mac_minor};
pub use types::*;

use crate::amount::format_amount;
use crate::client::{CallKind, LedgerClient, protocol};
use crate::convert::{
    account_record_from_proto, write_result_from_proto, write_results_from_proto,
};
use crate::error::ClientError;
use crate::ids::encode_id;
use crate::types::WriteResult;
use ledger_proto::api;
use crate::amount::Amount;

/// Records per sync request, as the node bounds it (`BATCH_ITEMS_MAX - 1`: one result is the
/// re-issue's).
pub const SYNC_RECORDS_MAX: usize = ledger_core::limits::BATCH_ITEMS_MAX - 1;
/// Exceptions per `list_exceptions` page (the node's `WALLET_EXCEPTIONS_PAGE_MAX`).
pub const EXCEPTIONS_PAGE_MAX: u32 = ledger_core::limits::WALLET_EXCEPTIONS_PAGE_MAX as u32;

impl LedgerClient {
    /// Issues a token and places a hold of its offline limit (capped by what the account can
    /// spend). The key comes back only here: hand it to the device, never log it.
    pub async fn issue_token(&self, token: NewToken) -> Result<IssuedToken, ClientError> {
        let request = convert::new_token_to_proto(&token);
        let response = self
            .wallet_call(
                "IssueToken",
                CallKind::Write,
                request,
                |mut grpc, request| async move { grpc.issue_token(request).await },
            )
            .await?;
        let result = response
            .result
            .ok_or_else(|| protocol_missing("IssueTokenResponse.result"))?;
        let result = write_result_from_proto(result).map_err(ClientError::Protocol)?;
        let key = match &response.token {
            Some(wire) => convert::token_key_from_proto(&wire.mac_key).map_err(protocol)?,
            None => None,
        };
        let token = response
            .token
            .map(convert::token_from_proto)
            .transpose()
            .map_err(protocol)?;
        if result.is_success() && (token.is_none() || key.is_none()) {
            return Err(ClientError::protocol(
                "IssueToken succeeded without the token and its key",
            ));
        }
        Ok(IssuedToken { result, token, key })
    }

    /// Uploads offline records (phone or terminal, any order, any number of times); at most
    /// [`SYNC_RECORDS_MAX`]. `reissue_through_sequence`: the phone's last sequence, to reset the
    /// allowance once every record up to it is posted; 0 for a terminal upload.
    pub async fn sync_offline_records(
        &self,
        token_id: u128,
        records: &[OfflineRecord],
        reissue_through_sequence: u64,
    ) -> Result<SyncOutcome, ClientError> {
        let request = api::SyncOfflineRecordsRequest {
            token_id: encode_id(token_id),
            records: records.iter().map(convert::record_to_proto).collect(),
            reissue_through_sequence,
        };
        let response = self
            .wallet_call(
                "SyncOfflineRecords",
                CallKind::Write,
                request,
                |mut grpc, request| async move { grpc.sync_offline_records(request).await },
            )
            .await?;
        let results = write_results_from_proto(response.results, records.len())
            .map_err(ClientError::Protocol)?;
        let reissue = response
            .reissue
            .ok_or_else(|| protocol_missing("SyncOfflineRecordsResponse.reissue"))?;
        let reissue = write_result_from_proto(reissue).map_err(ClientError::Protocol)?;
        let token = response
            .token
            .map(convert::token_from_proto)
            .transpose()
            .map_err(protocol)?;
        let account = response
            .account
            .map(account_record_from_proto)
            .transpose()
            .map_err(protocol)?;
        Ok(SyncOutcome {
            results,
            reissue,
            token,
            account,
        })
    }

    /// No new allowance for the token; its hold is released once its records are in or it
    /// expires plus the grace period.
    pub async fn revoke_token(
        &self,
        token_id: u128,
        reason: &str,
    ) -> Result<WriteResult, ClientError> {
        let request = api::RevokeTokenRequest {
            token_id: encode_id(token_id),
            reason: reason.to_string(),
        };
        let response = self
            .wallet_call(
                "RevokeToken",
                CallKind::Write,
                request,
                |mut grpc, request| async move { grpc.revoke_token(request).await },
            )
            .await?;
        let mut results =
            write_results_from_proto(vec![response], 1).map_err(ClientError::Protocol)?;
        Ok(results.remove(0))
    }

    /// The token (without its key), or `None` when the ledger has none with this id.
    pub async fn get_token(&self, token_id: u128) -> Result<Option<Token>, ClientError> {
        let request = api::GetTokenRequest {
            token_id: encode_id(token_id),
        };
        let response = self
            .wallet_call(
                "GetToken",
                CallKind::Read,
                request,
                |mut grpc, request| async move { grpc.get_token(request).await },
            )
            .await;
        // A single get answers NOT_FOUND for an unknown token (ledger.proto "Not found").
        let response = match response {
            Err(ClientError::Rejected { code: tonic::Code::NotFound, .. }) => return Ok(None),
            other => other?,
        };
        response
            .token
            .map(convert::token_from_proto)
            .transpose()
            .map_err(protocol)
    }

    /// System-initiated sync: the token and its wallet now, then after every committed change to
    /// the wallet account (an online payment, a top-up, another device's sync). The stream ends
    /// with an error if the connection breaks or the watcher falls behind: resubscribe (the
    /// first message is always the current state, so nothing is missed).
    pub async fn watch_wallet(
        &self,
        token_id: u128,
    ) -> Result<std::pin::Pin<Box<dyn futures::Stream<Item = Result<WalletUpdate, ClientError>> + Send>>, ClientError> {
        use futures::StreamExt;
        let request = api::WatchWalletRequest { token_id: encode_id(token_id) };
        let stream = self
            .wallet_call("WatchWallet", CallKind::Stream, request, |mut grpc, request| async move {
                grpc.watch_wallet(request).await
            })
            .await?;
        Ok(Box::pin(stream.map(|item| match item {
            Ok(update) => convert::wallet_update_from_proto(update).map_err(protocol),
            Err(status) => Err(crate::client::stream_error(&status)),
        })))
    }

    /// Compares the device's balance and last sequence with the ledger (read-only, linearizable).
    /// `None` when the ledger has no such token.
    pub async fn reconcile(
        &self,
        token_id: u128,
        device_balance: Amount,
        device_last_sequence: u64,
    ) -> Result<Option<Reconciliation>, ClientError> {
        let request = api::ReconcileRequest {
            token_id: encode_id(token_id),
            device_balance: format_amount(device_balance),
            device_last_sequence,
        };
        let response = self
            .wallet_call(
                "Reconcile",
                CallKind::Read,
                request,
                |mut grpc, request| async move { grpc.reconcile(request).await },
            )
            .await;
        let response = match response {
            Err(ClientError::Rejected {
                code: tonic::Code::NotFound,
                ..
            }) => return Ok(None),
            other => other?,
        };
        convert::reconciliation_from_proto(response)
            .map(Some)
            .map_err(protocol)
    }

    /// The token's exceptions in arrival order; `limit` 1..=1000, 0 = 1000.
    pub async fn list_exceptions(
        &self,
        token_id: u128,
        limit: u32,
    ) -> Result<Vec<OfflineException>, ClientError> {
        let request = api::ListExceptionsRequest {
            token_id: encode_id(token_id),
            limit,
        };
        let response = self
            .wallet_call(
                "ListExceptions",
                CallKind::Read,
                request,
                |mut grpc, request| async move { grpc.list_exceptions(request).await },
            )
            .await?;
        response
            .exceptions
            .into_iter()
            .map(|e| convert::exception_from_proto(e).map_err(protocol))
            .collect()
    }
}

fn protocol_missing(field: &'static str) -> ClientError {
    protocol(crate::error::ParseError::MissingField { field })
}
