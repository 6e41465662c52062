//! `LedgerClient`: typed calls, leader discovery and safe retries over cached gRPC channels.

use crate::convert;
use crate::endpoints::Endpoints;
use crate::error::ClientError;
use crate::ids::encode_id;
use crate::retry::{Backoff, Disposition, classify};
use crate::types::*;
use futures::{Stream, StreamExt};
use ledger_proto::api;
use std::error::Error as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tonic::Status;
use tonic::transport::Channel;

type Grpc = api::ledger_client::LedgerClient<Channel>;
type ClusterGrpc = api::cluster_client::ClusterClient<Channel>;
pub(crate) type AuditGrpc = api::audit_client::AuditClient<Channel>;
pub(crate) type RiskGrpc = api::risk_client::RiskClient<Channel>;
pub(crate) type WalletGrpc = api::wallet_client::WalletClient<Channel>;
pub(crate) type AccountsGrpc = api::accounts_client::AccountsClient<Channel>;
pub(crate) type FeedGrpc = api::feed_client::FeedClient<Channel>;
pub(crate) type QueryGrpc = api::query_client::QueryClient<Channel>;

/// How long a snapshot may take to build on the node when forced.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a backup may take on the node (checkpoint, state hash, a SHA-256 of every file).
const BACKUP_TIMEOUT: Duration = Duration::from_secs(3_600);

/// Entries committed on one account from the moment of subscription. The stream ends with an
/// error when the connection breaks; resubscribe and fill the gap with `list_account_entries`
/// from the last `timestamp_ns` seen.
pub type AccountWatch = Pin<Box<dyn Stream<Item = Result<AccountEntry, ClientError>> + Send>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Per attempt, from sending the request to the whole response (or, for `watch_account`,
    /// to the stream's headers).
    pub request_timeout: Duration,
    /// Retries after the first attempt; a call makes at most `max_retries + 1` attempts.
    pub max_retries: u32,
    pub backoff: Backoff,
    pub connect_timeout: Duration,
    /// Both directions. A full CreateTransfers request (8,190 transfers) can exceed tonic's 4 MiB
    /// default decode limit by far.
    pub max_message_size_bytes: usize,
    /// `None` (the default): every read is linearizable. `Some(d)`: reads accept state up to `d`
    /// old (1 ms..=60 s), so a follower that heard from the leader within `d` serves them from
    /// its own state without a round trip to the leader. Writes are unaffected.
    pub max_staleness: Option<Duration>,
    /// Sent as `authorization: Bearer <token>` on every call (nodes started with a tokens file
    /// refuse calls without one). Never printed: its `Debug` is redacted.
    pub token: Option<BearerToken>,
    /// `Some`: endpoints are `https://` and the nodes' certificates are verified against its CA
    /// (and its client certificate, if any, is presented). `None`: `http://` endpoints only.
    pub tls: Option<crate::ClientTls>,
}

/// A secret bearer token; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// Refuses a token that cannot travel in an HTTP header.
    pub fn new(token: impl Into<String>) -> Result<BearerToken, String> {
        let token = token.into();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("a token is 1 or more visible ASCII characters".into());
        }
        Ok(BearerToken(token))
    }

    fn header(&self) -> tonic::metadata::MetadataValue<tonic::metadata::Ascii> {
        format!("Bearer {}", self.0).parse().expect("checked in BearerToken::new")
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Request metadata carrying `ClientConfig::max_staleness` in milliseconds.
pub const STALENESS_METADATA_KEY: &str = "x-ledger-max-staleness-ms";

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            request_timeout: Duration::from_secs(10),
            max_retries: 8,
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(2),
            max_message_size_bytes: 32 * 1024 * 1024,
            max_staleness: None,
            token: None,
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// A failed read changes nothing: exhausted retries are always `Unavailable`.
    Read,
    /// A failed write may have been applied: exhausted retries after a maybe are `Unknown`.
    Write,
    /// Server stream: no gRPC deadline (it would cut the stream), only the timeout to headers.
    Stream,
}

/// Cheap to clone: every clone shares the endpoint list and the channel cache.
#[derive(Clone)]
pub struct LedgerClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    endpoints: Endpoints,
}

impl std::fmt::Debug for LedgerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerClient")
            .field("endpoints", &self.inner.endpoints.list())
            .field("config", &self.inner.config)
            .finish()
    }
}

impl LedgerClient {
    /// Validates the endpoints (e.g. "http://127.0.0.1:7070"); connects lazily on first use.
    pub fn connect(endpoints: Vec<String>) -> Result<LedgerClient, ClientError> {
        LedgerClient::connect_with(endpoints, ClientConfig::default())
    }

    pub fn connect_with(
        endpoints: Vec<String>,
        config: ClientConfig,
    ) -> Result<LedgerClient, ClientError> {
        let endpoints = Endpoints::new(endpoints, config.connect_timeout, config.tls.clone())?;
        Ok(LedgerClient {
            inner: Arc::new(Inner { config, endpoints }),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Known endpoints, including those learned from leader redirects.
    pub fn endpoints(&self) -> Vec<String> {
        self.inner.endpoints.list()
    }

    // ---- writes: one result per item, in input order ----

    pub async fn create_assets(
        &self,
        assets: Vec<NewAsset>,
    ) -> Result<Vec<WriteResult>, ClientError> {
        if assets.is_empty() {
            return Ok(Vec::new());
        }
        let request = api::CreateAssetsRequest {
            assets: assets.iter().map(convert::asset_to_proto).collect(),
        };
        let response = self
            .call(
                "CreateAssets",
                CallKind::Write,
                None,
                request,
                |mut grpc, request| async move { grpc.create_assets(request).await },
            )
            .await?;
        convert::write_results_from_proto(response.results, assets.len())
            .map_err(ClientError::Protocol)
    }

    pub async fn create_accounts(
        &self,
        accounts: Vec<NewAccount>,
    ) -> Result<Vec<WriteResult>, ClientError> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let request = api::CreateAccountsRequest {
            accounts: accounts.iter().map(convert::account_to_proto).collect(),
        };
        let response = self
            .call(
                "CreateAccounts",
                CallKind::Write,
                None,
                request,
                |mut grpc, request| async move { grpc.create_accounts(request).await },
            )
            .await?;
        convert::write_results_from_proto(response.results, accounts.len())
            .map_err(ClientError::Protocol)
    }

    pub async fn create_transfers(
        &self,
        transfers: Vec<NewTransfer>,
    ) -> Result<Vec<WriteResult>, ClientError> {
        if transfers.is_empty() {
            return Ok(Vec::new());
        }
        let request = api::CreateTransfersRequest {
            transfers: transfers.iter().map(convert::transfer_to_proto).collect(),
        };
        let response = self
            .call(
                "CreateTransfers",
                CallKind::Write,
                None,
                request,
                |mut grpc, request| async move { grpc.create_transfers(request).await },
            )
            .await?;
        convert::write_results_from_proto(response.results, transfers.len())
            .map_err(ClientError::Protocol)
    }

    /// `(account id, target status, reason)`. Retried like the other writes: setting a status is
    /// a "set", not a toggle, so a repeat is harmless (except that a repeated close may answer
    /// `account_status_invalid` when the first attempt already closed the account).
    pub async fn set_account_status(
        &self,
        changes: Vec<(u128, AccountStatus, String)>,
    ) -> Result<Vec<WriteResult>, ClientError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let request = api::SetAccountStatusRequest {
            changes: changes
                .iter()
                .map(|(id, status, reason)| api::AccountStatusChange {
                    account_id: encode_id(*id),
                    status: convert::account_status_to_proto(*status),
                    reason: reason.clone(),
                })
                .collect(),
        };
        let response = self
            .call(
                "SetAccountStatus",
                CallKind::Write,
                None,
                request,
                |mut grpc, request| async move { grpc.set_account_status(request).await },
            )
            .await?;
        convert::write_results_from_proto(response.results, changes.len())
            .map_err(ClientError::Protocol)
    }

    // ---- reads ----

    /// The assets found, in request order; codes not found are left out.
    pub async fn lookup_assets(&self, codes: Vec<String>) -> Result<Vec<AssetRecord>, ClientError> {
        let request = api::LookupAssetsRequest { codes };
        let response = self
            .call(
                "LookupAssets",
                CallKind::Read,
                None,
                request,
                |mut grpc, request| async move { grpc.lookup_assets(request).await },
            )
            .await?;
        decode_all(response.assets, convert::asset_record_from_proto)
    }

    /// The accounts found, in request order; ids not found are left out.
    pub async fn lookup_accounts(&self, ids: Vec<u128>) -> Result<Vec<AccountRecord>, ClientError> {
        let request = api::LookupAccountsRequest {
            ids: ids.into_iter().map(encode_id).collect(),
        };
        let response = self
            .call(
                "LookupAccounts",
                CallKind::Read,
                None,
                request,
                |mut grpc, request| async move { grpc.lookup_accounts(request).await },
            )
            .await?;
        decode_all(response.accounts, convert::account_record_from_proto)
    }

    /// The transfers found, in request order; ids not found are left out.
    pub async fn lookup_transfers(
        &self,
        ids: Vec<u128>,
    ) -> Result<Vec<TransferRecord>, ClientError> {
        let request = api::LookupTransfersRequest {
            ids: ids.into_iter().map(encode_id).collect(),
        };
        let response = self
            .call(
                "LookupTransfers",
                CallKind::Read,
                None,
                request,
                |mut grpc, request| async move { grpc.lookup_transfers(request).await },
            )
            .await?;
        decode_all(response.transfers, convert::transfer_record_from_proto)
    }

    pub async fn lookup_account(&self, id: u128) -> Result<Option<AccountRecord>, ClientError> {
        let records = self.lookup_accounts(vec![id]).await?;
        Ok(records.into_iter().find(|r| r.account.id == id))
    }

    pub async fn lookup_transfer(&self, id: u128) -> Result<Option<TransferRecord>, ClientError> {
        let records = self.lookup_transfers(vec![id]).await?;
        Ok(records.into_iter().find(|r| r.transfer.id == id))
    }

    /// What the key is bound to, or `None` if it was never used.
    pub async fn get_transfer_by_idempotency_key(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<IdempotencyRecord>, ClientError> {
        let request = api::GetTransferByIdempotencyKeyRequest {
            idempotency_key: idempotency_key.to_string(),
        };
        let response = self
            .call("GetTransferByIdempotencyKey", CallKind::Read, None, request, |mut grpc, request| async move {
                grpc.get_transfer_by_idempotency_key(request).await
            })
            .await;
        // A single get answers NOT_FOUND for a key never used (ledger.proto "Not found").
        let response = match response {
            Err(ClientError::Rejected { code: tonic::Code::NotFound, .. }) => return Ok(None),
            other => other?,
        };
        convert::idempotency_record_from_proto(response).map_err(protocol)
    }

    pub async fn get_account_by_external_ref(
        &self,
        external_ref: &str,
    ) -> Result<Option<AccountRecord>, ClientError> {
        let request = api::GetAccountByExternalRefRequest {
            external_ref: external_ref.to_string(),
        };
        let response = self
            .call(
                "GetAccountByExternalRef",
                CallKind::Read,
                None,
                request,
                |mut grpc, request| async move { grpc.get_account_by_external_ref(request).await },
            )
            .await;
        // The proto lets "not found" be an empty response; ledger-node answers NOT_FOUND.
        // Both mean the same to the caller.
        let response = match response {
            Err(ClientError::Rejected {
                code: tonic::Code::NotFound,
                ..
            }) => return Ok(None),
            other => other?,
        };
        response
            .account
            .map(convert::account_record_from_proto)
            .transpose()
            .map_err(protocol)
    }

    /// One page of an account's entries strictly after `cursor_timestamp_ns` (strictly before it
    /// when `reverse`); cursor 0 starts at the beginning (or the end). `limit` 1..=1000, 0 = 100.
    pub async fn list_account_entries(
        &self,
        account_id: u128,
        cursor_timestamp_ns: u64,
        limit: u32,
        reverse: bool,
    ) -> Result<EntriesPage, ClientError> {
        let request = api::ListAccountEntriesRequest {
            account_id: encode_id(account_id),
            cursor_timestamp_ns,
            limit,
            reverse,
        };
        let response = self
            .call(
                "ListAccountEntries",
                CallKind::Read,
                None,
                request,
                |mut grpc, request| async move { grpc.list_account_entries(request).await },
            )
            .await?;
        convert::entries_page_from_proto(response).map_err(protocol)
    }

    /// Balances as of the last entry at or before `timestamp_ns`.
    pub async fn get_balance_at(
        &self,
        account_id: u128,
        timestamp_ns: u64,
    ) -> Result<BalanceAt, ClientError> {
        let request = api::GetBalanceAtRequest {
            account_id: encode_id(account_id),
            timestamp_ns,
        };
        let response = self
            .call(
                "GetBalanceAt",
                CallKind::Read,
                None,
                request,
                |mut grpc, request| async move { grpc.get_balance_at(request).await },
            )
            .await?;
        convert::balance_at_from_proto(response).map_err(protocol)
    }

    /// Subscribes to the entries committed on `account_id` from now on. Subscribing is retried
    /// like a read; a stream broken later ends with an error and is not resumed (the API has no
    /// cursor to resume from without a gap).
    pub async fn watch_account(&self, account_id: u128) -> Result<AccountWatch, ClientError> {
        let request = api::WatchAccountRequest {
            account_id: encode_id(account_id),
        };
        let stream = self
            .call(
                "WatchAccount",
                CallKind::Stream,
                None,
                request,
                |mut grpc, request| async move { grpc.watch_account(request).await },
            )
            .await?;
        Ok(Box::pin(stream.map(|item| match item {
            Ok(entry) => convert::entry_from_proto(entry).map_err(protocol),
            Err(status) => Err(stream_error(&status)),
        })))
    }

    /// The status of whichever node answers first (the preferred endpoint).
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ClientError> {
        self.cluster_status_inner(None).await
    }

    /// The status as seen by one known endpoint (no failover to other nodes).
    pub async fn cluster_status_of(&self, endpoint: &str) -> Result<ClusterStatus, ClientError> {
        let endpoint = self.known_endpoint(endpoint)?;
        self.cluster_status_inner(Some(&endpoint)).await
    }

    async fn cluster_status_inner(
        &self,
        pinned: Option<&str>,
    ) -> Result<ClusterStatus, ClientError> {
        let response = self
            .call(
                "ClusterStatus",
                CallKind::Read,
                pinned,
                api::ClusterStatusRequest {},
                |mut grpc, request| async move { grpc.cluster_status(request).await },
            )
            .await?;
        Ok(convert::cluster_status_from_proto(response))
    }

    /// The status of the node at `url`, which need not be one of the client's endpoints (e.g. a
    /// member named by `cluster_status`). One attempt, no failover.
    pub async fn cluster_status_at(&self, url: &str) -> Result<ClusterStatus, ClientError> {
        let url = crate::retry::normalize_endpoint(url);
        let channel = self
            .inner
            .endpoints
            .endpoint(&url)?
            .connect_timeout(self.inner.config.connect_timeout)
            .connect_lazy();
        let timeout = self.inner.config.request_timeout;
        let mut grpc = Grpc::new(channel);
        let call = grpc.cluster_status(api::ClusterStatusRequest {});
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(response)) => Ok(convert::cluster_status_from_proto(response.into_inner())),
            Ok(Err(status)) => Err(ClientError::Unavailable {
                attempts: 1,
                last_error: format!("{url}: {}", describe(&status)),
            }),
            Err(_) => Err(ClientError::Unavailable {
                attempts: 1,
                last_error: format!("{url}: no answer within {timeout:?}"),
            }),
        }
    }

    /// Forms a new cluster of the first endpoint's node and `members` (`(id, peer URL)`), every
    /// one a voter. Sent to the first endpoint only (initialising another node would form
    /// another cluster). Refused (`Rejected` FAILED_PRECONDITION) if any node already holds
    /// Raft state: a cluster is initialised once.
    pub async fn init_cluster(
        &self,
        members: Vec<(u64, String)>,
    ) -> Result<MembershipChange, ClientError> {
        let first = self.inner.endpoints.list()[0].clone();
        let request = api::InitClusterRequest {
            members: members
                .into_iter()
                .map(|(node_id, peer_address)| api::MemberAddress {
                    node_id,
                    peer_address,
                })
                .collect(),
        };
        let response = self
            .cluster_call(
                "InitCluster",
                CallKind::Write,
                Some(&first),
                request,
                self.inner.config.request_timeout,
                |mut grpc, request| async move { grpc.init_cluster(request).await },
            )
            .await?;
        Ok(convert::membership_change_from_proto(response))
    }

    /// Adds node `node_id`, reachable by peers at `peer_address`, as a learner. Idempotent:
    /// `changed` is false when it already is a member at that address.
    pub async fn add_learner(
        &self,
        node_id: u64,
        peer_address: &str,
    ) -> Result<MembershipChange, ClientError> {
        let request = api::AddLearnerRequest {
            node_id,
            peer_address: peer_address.to_string(),
        };
        let response = self
            .cluster_call(
                "AddLearner",
                CallKind::Write,
                None,
                request,
                self.inner.config.request_timeout,
                |mut grpc, request| async move { grpc.add_learner(request).await },
            )
            .await?;
        Ok(convert::membership_change_from_proto(response))
    }

    /// Makes learner `node_id` a voter once it has caught up, waiting up to `wait` for it.
    pub async fn promote_voter(
        &self,
        node_id: u64,
        wait: Duration,
    ) -> Result<MembershipChange, ClientError> {
        let request = api::PromoteVoterRequest {
            node_id,
            wait_ms: wait.as_millis().min(u64::MAX as u128) as u64,
            max_lag_entries: 0,
        };
        let response = self
            .cluster_call(
                "PromoteVoter",
                CallKind::Write,
                None,
                request,
                self.inner.config.request_timeout + wait,
                |mut grpc, request| async move { grpc.promote_voter(request).await },
            )
            .await?;
        Ok(convert::membership_change_from_proto(response))
    }

    /// Removes node `node_id` (voter or learner) from the cluster; its id is retired.
    pub async fn remove_node(&self, node_id: u64) -> Result<MembershipChange, ClientError> {
        let response = self
            .cluster_call(
                "RemoveNode",
                CallKind::Write,
                None,
                api::RemoveNodeRequest { node_id },
                self.inner.config.request_timeout,
                |mut grpc, request| async move { grpc.remove_node(request).await },
            )
            .await?;
        Ok(convert::membership_change_from_proto(response))
    }

    /// Makes the node at `endpoint` (one of the client's endpoints) build a snapshot now and,
    /// with `purge_log`, delete the log entries it covers.
    pub async fn trigger_snapshot(
        &self,
        endpoint: &str,
        purge_log: bool,
    ) -> Result<SnapshotTaken, ClientError> {
        let endpoint = self.known_endpoint(endpoint)?;
        let response = self
            .cluster_call(
                "TriggerSnapshot",
                CallKind::Read,
                Some(&endpoint),
                api::TriggerSnapshotRequest { purge_log },
                SNAPSHOT_TIMEOUT,
                |mut grpc, request| async move { grpc.trigger_snapshot(request).await },
            )
            .await?;
        Ok(SnapshotTaken {
            snapshot_index: response.snapshot_index,
            purged_index: response.purged_index,
        })
    }

    /// Makes the node at `endpoint` (one of the client's endpoints) write a consistent backup of
    /// its database to `dir`, an absolute path on the node's filesystem that does not exist yet.
    pub async fn backup(&self, endpoint: &str, dir: &str) -> Result<BackupTaken, ClientError> {
        let endpoint = self.known_endpoint(endpoint)?;
        let response = self
            .cluster_call(
                "Backup",
                CallKind::Write,
                Some(&endpoint),
                api::BackupRequest { dir: dir.to_string() },
                BACKUP_TIMEOUT,
                |mut grpc, request| async move { grpc.backup(request).await },
            )
            .await?;
        Ok(BackupTaken {
            dir: response.dir,
            applied_index: response.applied_index,
            state_hash: response.state_hash,
            files: response.files,
            bytes: response.bytes,
            elapsed_ms: response.elapsed_ms,
        })
    }

    pub async fn state_hash(&self) -> Result<StateHash, ClientError> {
        self.state_hash_inner(None).await
    }

    /// The state hash of one known endpoint: compare replicas at equal `applied_index`.
    pub async fn state_hash_of(&self, endpoint: &str) -> Result<StateHash, ClientError> {
        let endpoint = self.known_endpoint(endpoint)?;
        self.state_hash_inner(Some(&endpoint)).await
    }

    async fn state_hash_inner(&self, pinned: Option<&str>) -> Result<StateHash, ClientError> {
        let response = self
            .call(
                "GetStateHash",
                CallKind::Read,
                pinned,
                api::GetStateHashRequest {},
                |mut grpc, request| async move { grpc.get_state_hash(request).await },
            )
            .await?;
        Ok(StateHash {
            applied_index: response.applied_index,
            state_hash: response.state_hash,
        })
    }

    fn known_endpoint(&self, endpoint: &str) -> Result<String, ClientError> {
        let endpoint = crate::retry::normalize_endpoint(endpoint);
        if self.inner.endpoints.list().contains(&endpoint) {
            Ok(endpoint)
        } else {
            Err(ClientError::InvalidEndpoint {
                endpoint,
                reason: "not one of the client's endpoints".into(),
            })
        }
    }

    /// One RPC with retries. `pinned` sends every attempt to that endpoint (no rotation, no
    /// redirects). Returns `Rejected` for a definite gRPC error at once, unless an earlier attempt
    /// of a write may have been applied (then `Unknown`); after the last retry, `Unknown` if a
    /// write may have been applied, else `Unavailable`.
    async fn call<Req, Resp, F, Fut>(
        &self,
        rpc: &'static str,
        kind: CallKind,
        pinned: Option<&str>,
        request: Req,
        send: F,
    ) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(Grpc, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let max = self.inner.config.max_message_size_bytes;
        let make = move |channel| {
            Grpc::new(channel)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max)
        };
        let timeout = self.inner.config.request_timeout;
        self.call_with(rpc, kind, pinned, request, timeout, make, send)
            .await
    }

    /// A call to the `Cluster` service (operators): same retries and leader following.
    async fn cluster_call<Req, Resp, F, Fut>(
        &self,
        rpc: &'static str,
        kind: CallKind,
        pinned: Option<&str>,
        request: Req,
        timeout: Duration,
        send: F,
    ) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(ClusterGrpc, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let max = self.inner.config.max_message_size_bytes;
        let make = move |channel| ClusterGrpc::new(channel).max_decoding_message_size(max).max_encoding_message_size(max);
        self.call_with(rpc, kind, pinned, request, timeout, make, send)
            .await
    }

    /// A call to the `Audit` service: same retries and leader following; large messages allowed.
    pub(crate) async fn audit_call<Req, Resp, F, Fut>(&self, rpc: &'static str, kind: CallKind, request: Req, send: F) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(AuditGrpc, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let max = self.inner.config.max_message_size_bytes;
        let make = move |channel| AuditGrpc::new(channel).max_decoding_message_size(max).max_encoding_message_size(max);
        let timeout = self.inner.config.request_timeout;
        self.call_with(rpc, kind, None, request, timeout, make, send).await
    }

    /// A call to the `Risk` service: same retries and leader following.
    pub(crate) async fn risk_call<Req, Resp, F, Fut>(&self, rpc: &'static str, kind: CallKind, request: Req, send: F) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(RiskGrpc, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let max = self.inner.config.max_message_size_bytes;
        let make = move |channel| RiskGrpc::new(channel).max_decoding_message_size(max).max_encoding_message_size(max);
        let timeout = self.inner.config.request_timeout;
        self.call_with(rpc, kind, None, request, timeout, make, send).await
    }

    /// A call to the `Accounts` service (see `accounts.rs`): same retries and leader following.
    pub(crate) async fn accounts_call<Req, Resp, F, Fut>(&self, rpc: &'static str, kind: CallKind, request: Req, send: F) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(AccountsGrpc, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let max = self.inner.config.max_message_size_bytes;
        let make = move |channel| AccountsGrpc::new(channel).max_decoding_message_size(max).max_encoding_message_size(max);
        let timeout = self.inner.config.request_timeout;
        self.call_with(rpc, kind, None, request, timeout, make, send).await
    }

    /// A call to the `Wallet` service (see `wallet.rs`): same retries, leader following and
    /// message size limits as the `Ledger` calls.
    pub(crate) async fn wallet_call<Req, Resp, F, Fut>(&self, rpc: &'static str, kind: CallKind, request: Req, send: F) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(WalletGrpc, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let max = self.inner.config.max_message_size_bytes;
        let make = move |channel| WalletGrpc::new(channel).max_decoding_message_size(max).max_encoding_message_size(max);
        let timeout = self.inner.config.request_timeout;
        self.call_with(rpc, kind, None, request, timeout, make, send).await
    }

    /// A call to the `Feed` service (see `feed.rs`): same retries and endpoint rotation.
    pub(crate) async fn feed_call<Req, Resp, F, Fut>(&self, rpc: &'static str, kind: CallKind, request: Req, send: F) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(FeedGrpc, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let max = self.inner.config.max_message_size_bytes;
        let make = move |channel| FeedGrpc::new(channel).max_decoding_message_size(max).max_encoding_message_size(max);
        let timeout = self.inner.config.request_timeout;
        self.call_with(rpc, kind, None, request, timeout, make, send).await
    }

    /// A call to the `Query` service (see `query.rs`): same retries and leader following.
    pub(crate) async fn query_call<Req, Resp, F, Fut>(&self, rpc: &'static str, request: Req, send: F) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(QueryGrpc, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let max = self.inner.config.max_message_size_bytes;
        let make = move |channel| QueryGrpc::new(channel).max_decoding_message_size(max).max_encoding_message_size(max);
        let timeout = self.inner.config.request_timeout;
        self.call_with(rpc, CallKind::Read, None, request, timeout, make, send).await
    }

    /// `call` with the client type (`make`) and the per-attempt timeout chosen by the caller.
    #[allow(clippy::too_many_arguments)]
    async fn call_with<C, Req, Resp, F, Fut>(
        &self,
        rpc: &'static str,
        kind: CallKind,
        pinned: Option<&str>,
        request: Req,
        request_timeout: Duration,
        make: impl Fn(Channel) -> C,
        send: F,
    ) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(C, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let endpoints = &self.inner.endpoints;
        let attempts_max = self.inner.config.max_retries.saturating_add(1);
        let mut maybe_applied = false;
        let mut last_error = String::new();
        let mut backoff_count: u32 = 0;

        for attempt in 1..=attempts_max {
            let url = pinned.map_or_else(|| endpoints.preferred(), str::to_string);
            let grpc = make(endpoints.channel(&url)?);
            let grpc_request = self.grpc_request(kind, request.clone(), request_timeout);

            tracing::trace!(rpc, attempt, %url, "sending");
            let status = match tokio::time::timeout(request_timeout, send(grpc, grpc_request)).await
            {
                Ok(Ok(response)) => {
                    if pinned.is_none() {
                        endpoints.prefer(&url);
                    }
                    return Ok(response.into_inner());
                }
                Ok(Err(status)) => status,
                Err(_elapsed) => {
                    Status::deadline_exceeded(format!("no answer within {request_timeout:?}"))
                }
            };
            let disposition = classify(&status);
            last_error = format!("{url}: {}", describe(&status));
            if disposition == Disposition::Fatal {
                return Err(refused(rpc, &url, kind, &status, maybe_applied, attempt, last_error));
            }
            maybe_applied |= disposition == Disposition::RetryMaybeApplied;
            if attempt == attempts_max {
                break;
            }
            self.before_next_attempt(rpc, attempt, &url, pinned, &disposition, &last_error, &mut backoff_count)
                .await;
        }
        Err(gave_up(rpc, kind, attempts_max, maybe_applied, last_error))
    }

    /// One attempt's request: the timeout (also told to the server, so it can drop work nobody
    /// waits for), the bearer token, and for reads the staleness the caller accepts.
    fn grpc_request<Req>(&self, kind: CallKind, request: Req, request_timeout: Duration) -> tonic::Request<Req> {
        let config = &self.inner.config;
        let mut grpc_request = tonic::Request::new(request);
        if kind != CallKind::Stream {
            // Tell the server too, so it can drop work nobody waits for.
            grpc_request.set_timeout(request_timeout);
        }
        if let Some(token) = &config.token {
            grpc_request.metadata_mut().insert("authorization", token.header());
        }
        if let (CallKind::Read, Some(staleness)) = (kind, config.max_staleness) {
            let ms = staleness.as_millis().clamp(1, 60_000) as u64;
            grpc_request
                .metadata_mut()
                .insert(STALENESS_METADATA_KEY, ms.into());
        }
        grpc_request
    }

    /// Where the next attempt goes, and whether to wait first: straight to the leader a
    /// follower named, else the next endpoint after a backoff.
    #[allow(clippy::too_many_arguments)]
    async fn before_next_attempt(
        &self,
        rpc: &'static str,
        attempt: u32,
        url: &str,
        pinned: Option<&str>,
        disposition: &Disposition,
        last_error: &str,
        backoff_count: &mut u32,
    ) {
        let endpoints = &self.inner.endpoints;
        let redirected = match (disposition, pinned) {
            (
                Disposition::RetryNotApplied {
                    leader: Some(leader),
                },
                None,
            ) if *leader != url => endpoints.redirect(leader),
            _ => false,
        };
        if redirected {
            // The follower named the leader: go there at once.
            tracing::debug!(rpc, attempt, from = %url, to = %endpoints.preferred(), "leader redirect");
            return;
        }
        if pinned.is_none() {
            endpoints.rotate_after(url);
        }
        let delay = self.inner.config.backoff.delay(*backoff_count);
        *backoff_count = backoff_count.saturating_add(1);
        tracing::debug!(rpc, attempt, error = %last_error, delay_ms = delay.as_millis() as u64, "retrying");
        tokio::time::sleep(delay).await;
    }
}

fn decode_all<P, T>(
    items: Vec<P>,
    decode: impl Fn(P) -> Result<T, crate::error::ParseError>,
) -> Result<Vec<T>, ClientError> {
    items
        .into_iter()
        .map(|item| decode(item).map_err(protocol))
        .collect()
}

/// A response that does not decode breaks the contract: not the caller's input error.
pub(crate) fn protocol(error: crate::error::ParseError) -> ClientError {
    ClientError::protocol(error)
}

/// A mid-stream failure: definite errors stay `Rejected`; anything transient is `Unavailable`
/// (a watch has no commit outcome to be unsure about).
pub(crate) fn stream_error(status: &Status) -> ClientError {
    match classify(status) {
        Disposition::Fatal => ClientError::Rejected {
            code: status.code(),
            message: status.message().to_string(),
        },
        _ => ClientError::Unavailable {
            attempts: 1,
            last_error: describe(status),
        },
    }
}

/// Code, message and the transport cause (e.g. "Connection refused"), which tonic keeps only in
/// the source chain.
fn describe(status: &Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut source = status.source();
    while let Some(error) = source {
        let cause = error.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = error.source();
    }
    text
}

/// The error of an attempt the server refused for good (not retried).
fn refused(
    rpc: &'static str,
    url: &str,
    kind: CallKind,
    status: &Status,
    maybe_applied: bool,
    attempt: u32,
    last_error: String,
) -> ClientError {
    tracing::debug!(rpc, %url, code = ?status.code(), message = status.message(), maybe_applied, "rejected");
    // A refusal of this attempt says nothing about an earlier one that may have been
    // applied: "rejected" would read as "not applied", and a caller retrying with a
    // new key would pay twice.
    if maybe_applied && kind == CallKind::Write {
        return ClientError::Unknown { attempts: attempt, last_error };
    }
    ClientError::Rejected {
        code: status.code(),
        message: status.message().to_string(),
    }
}

/// The error after the last attempt failed: the write's fate is unknown if any attempt may
/// have been applied, else the cluster was unavailable.
fn gave_up(rpc: &'static str, kind: CallKind, attempts_max: u32, maybe_applied: bool, last_error: String) -> ClientError {
    tracing::warn!(rpc, attempts = attempts_max, error = %last_error, maybe_applied, "giving up");
    if maybe_applied && kind == CallKind::Write {
        ClientError::Unknown {
            attempts: attempts_max,
            last_error,
        }
    } else {
        ClientError::Unavailable {
            attempts: attempts_max,
            last_error,
        }
    }
}
