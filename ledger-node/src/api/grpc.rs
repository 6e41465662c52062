//! `ledger.v1.Ledger`: every RPC of the client API.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use ledger_proto::api as pb;
use ledger_proto::api::ledger_server::Ledger;
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};

use super::{bounds, convert};
use super::status::{storage, to_status};
use ledger_core::limits::*;
use ledger_core::result::ItemResult;
use ledger_core::types::*;
use ledger_core::validate;
use crate::service::group_commit::GroupCommit;
use crate::service::{Consistency, Node, ServiceError, Snapshot};

/// Open watch streams per node at most; more get RESOURCE_EXHAUSTED.
pub const WATCHERS_MAX: usize = 1_024;

pub struct LedgerService {
    pub node: Node,
    /// Coalesces concurrent transfer requests into shared Raft entries.
    pub transfers: GroupCommit,
    /// Watch streams open now.
    pub watchers: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl LedgerService {
    /// Must run inside a Tokio runtime (starts the group-commit task).
    pub fn new(node: Node) -> LedgerService {
        LedgerService { transfers: GroupCommit::start(node.clone()), node, watchers: Default::default() }
    }
}

/// Counts one open watch stream for as long as it lives.
struct WatcherSlot(std::sync::Arc<std::sync::atomic::AtomicUsize>);
impl Drop for WatcherSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Request metadata: the client accepts a read up to this many milliseconds stale (1..=60,000),
/// which a follower may then serve from its own state without asking the leader.
pub const STALENESS_HEADER: &str = "x-ledger-max-staleness-ms";
const STALENESS_MAX_MS: u64 = 60_000;

pub(super) fn max_staleness<T>(request: &Request<T>) -> Result<Option<Duration>, Status> {
    let Some(value) = request.metadata().get(STALENESS_HEADER) else { return Ok(None) };
    match value.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(ms @ 1..=STALENESS_MAX_MS) => Ok(Some(Duration::from_millis(ms))),
        _ => Err(Status::invalid_argument(format!("{STALENESS_HEADER} must be 1..={STALENESS_MAX_MS}"))),
    }
}

fn request_id(bytes: &[u8], what: &str) -> Result<u128, Status> {
    match convert::id(bytes) {
        Ok(0) | Err(_) => Err(Status::invalid_argument(format!("{what} must be 16 bytes and not zero"))),
        Ok(id) => Ok(id),
    }
}

/// Asset scales, looked up once per request.
struct Scales<'r> {
    snapshot: &'r Snapshot,
    known: BTreeMap<String, u8>,
}

impl<'r> Scales<'r> {
    fn new(snapshot: &'r Snapshot) -> Self {
        Scales { snapshot, known: BTreeMap::new() }
    }
    fn of(&mut self, asset: &str) -> Result<u8, Status> {
        if let Some(scale) = self.known.get(asset) {
            return Ok(*scale);
        }
        let found = self.snapshot.asset(asset).map_err(storage)?;
        let scale = found.ok_or_else(|| Status::data_loss(format!("record names a missing asset {asset}")))?.scale;
        self.known.insert(asset.to_string(), scale);
        Ok(scale)
    }
}

impl LedgerService {
    /// Proposes one command of `operation` and returns its results.
    async fn propose<I>(&self, inputs: Vec<I>, operation: impl FnOnce(Vec<I>) -> Operation) -> Result<Vec<ItemResult>, ServiceError> {
        Ok(self.node.propose(operation(inputs)).await?.results)
    }

    /// `id_of`: the item's id (account, transfer) as the request gives it, 0 when it has none or
    /// it does not decode. Every result names it unless the ledger named another (the transfer
    /// an idempotency key is bound to): a refused item is matched by its id like an applied one.
    async fn write<P, I, F>(
        &self,
        operation: &'static str,
        items: &[P],
        id_of: impl Fn(&P) -> u128,
        prepare: impl Fn(&P) -> Result<I, ItemResult>,
        submit: impl FnOnce(Vec<I>) -> F,
    ) -> Result<Vec<pb::WriteResult>, Status>
    where
        F: Future<Output = Result<Vec<ItemResult>, ServiceError>>,
    {
        let mut results = write_items(operation, items, prepare, submit).await?;
        for (result, item) in results.iter_mut().zip(items) {
            if result.id.is_empty() {
                result.id = match id_of(item) {
                    0 => Vec::new(),
                    id => convert::id_bytes(id),
                };
            }
        }
        Ok(results)
    }

    /// A view after the barrier: linearizable unless the client accepts bounded staleness
    /// (`x-ledger-max-staleness-ms`).
    async fn read(&self, staleness: Option<Duration>) -> Result<Snapshot, Status> {
        self.node.read(Consistency::from_staleness(staleness)).await.map_err(to_status)
    }

    /// A linearizable lookup by id: bounded, decoded, found records in request order.
    async fn lookup<T, W>(
        &self,
        staleness: Option<Duration>,
        raw_ids: &[Vec<u8>],
        what: &str,
        get: impl Fn(&Snapshot, u128) -> std::io::Result<Option<T>>,
        to_wire: impl for<'r> Fn(&T, &mut Scales<'r>) -> Result<W, Status>,
    ) -> Result<Vec<W>, Status> {
        bounds::lookup(raw_ids.len(), "ids")?;
        let ids = raw_ids.iter().map(|b| request_id(b, what)).collect::<Result<Vec<_>, _>>()?;
        let snapshot = self.read(staleness).await?;
        let mut scales = Scales::new(&snapshot);
        let mut found = Vec::new();
        for id in ids {
            if let Some(record) = get(&snapshot, id).map_err(storage)? {
                found.push(to_wire(&record, &mut scales)?);
            }
        }
        Ok(found)
    }
}

/// A transfer as reads show it: its row and what is kept beside it (details, refunds).
struct TransferView {
    transfer: Transfer,
    details: Option<TransferDetails>,
    refunded: Option<Refunded>,
}

impl TransferView {
    fn read(snapshot: &Snapshot, transfer: Transfer) -> std::io::Result<TransferView> {
        let details = snapshot.transfer_details(transfer.id)?;
        let refunded = snapshot.refunded(transfer.id)?;
        Ok(TransferView { transfer, details, refunded })
    }

    fn record(&self, scale: u8) -> pb::TransferRecord {
        convert::transfer_record_with(&self.transfer, scale, self.details.as_ref(), self.refunded.as_ref())
    }
}

impl LedgerService {
    /// Transfers of which one at least carries a format-4 option: one `CreateTransfersWith`
    /// command, outside group commit (a linked chain must stay within its request's command).
    /// An item refused before proposing fails its whole chain: the others of the chain get
    /// LINKED_EVENT_FAILED and are not proposed.
    async fn create_transfers_with(&self, transfers: &[pb::Transfer], owner: &str) -> Result<Vec<pb::WriteResult>, Status> {
        let refused = refused_chains(transfers);
        let items: Vec<_> = transfers.iter().zip(refused).collect();
        let prepare = |(t, refused): &(&pb::Transfer, Option<ItemResult>)| {
            if let Some(result) = refused {
                return Err(*result);
            }
            let (mut input, extras) = convert::prepare_transfer_with(t)?;
            input.owner = owner.to_string();
            Ok((input, extras))
        };
        let submit = |pairs: Vec<(TransferInput, TransferExtras)>| {
            let (items, extras) = pairs.into_iter().unzip();
            async move { Ok(self.node.propose(Operation::CreateTransfersWith { items, extras }).await?.results) }
        };
        self.write("create_transfers", &items, |(t, _)| convert::transfer_id(t).unwrap_or(0), prepare, submit).await
    }
}

/// For each transfer: LINKED_EVENT_FAILED when another member of its linked chain is refused
/// before proposing (decoding or a stateless check); `None` otherwise.
fn refused_chains(transfers: &[pb::Transfer]) -> Vec<Option<ItemResult>> {
    let mut refused = vec![None; transfers.len()];
    let mut start = 0;
    while start < transfers.len() {
        let mut end = start;
        while end + 1 < transfers.len() && transfers[end].linked {
            end += 1;
        }
        let chain = start..=end;
        if end > start && transfers[chain.clone()].iter().any(|t| convert::prepare_transfer_with(t).is_err()) {
            for index in chain {
                if convert::prepare_transfer_with(&transfers[index]).is_ok() {
                    refused[index] = Some(ItemResult::new(ledger_core::result::ResultCode::LinkedEventFailed));
                }
            }
        }
        start = end + 1;
    }
    refused
}

/// Converts and pre-validates each item; submits the valid ones; puts every result back at
/// its item's position.
pub(crate) async fn write_items<P, I, F>(
    operation: &'static str,
    items: &[P],
    prepare: impl Fn(&P) -> Result<I, ItemResult>,
    submit: impl FnOnce(Vec<I>) -> F,
) -> Result<Vec<pb::WriteResult>, Status>
where
    F: Future<Output = Result<Vec<ItemResult>, ServiceError>>,
{
    bounds::items(items.len())?;
    let mut results: Vec<Option<ItemResult>> = vec![None; items.len()];
    let mut positions = Vec::with_capacity(items.len());
    let mut inputs = Vec::with_capacity(items.len());
    for (position, item) in items.iter().enumerate() {
        match prepare(item) {
            Ok(input) => {
                positions.push(position);
                inputs.push(input);
            }
            Err(refused) => results[position] = Some(refused),
        }
    }
    if !inputs.is_empty() {
        let replies = submit(inputs).await.map_err(to_status)?;
        if replies.len() != positions.len() {
            return Err(Status::internal("state machine returned a result count that differs from the items"));
        }
        for (position, result) in positions.into_iter().zip(replies) {
            results[position] = Some(result);
        }
    }
    Ok(results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let result = r.as_ref().expect("every item has a result");
            count_result(operation, result);
            convert::write_result(i, result)
        })
        .collect())
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::AccountEntry, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Ledger for LedgerService {
    async fn create_assets(&self, request: Request<pb::CreateAssetsRequest>) -> Result<Response<pb::CreateAssetsResponse>, Status> {
        let req = request.into_inner();
        bounds::create_assets(&req)?;
        let results = self
            .write("create_assets", &req.assets, |_| 0, convert::prepare_asset, |inputs| self.propose(inputs, Operation::CreateAssets))
            .await?;
        Ok(Response::new(pb::CreateAssetsResponse { results }))
    }

    async fn create_accounts(
        &self,
        request: Request<pb::CreateAccountsRequest>,
    ) -> Result<Response<pb::CreateAccountsResponse>, Status> {
        let req = request.into_inner();
        bounds::create_accounts(&req)?;
        let results = self
            .write("create_accounts", &req.accounts, |a| convert::id(&a.id).unwrap_or(0), convert::prepare_account, |inputs| self.propose(inputs, Operation::CreateAccounts))
            .await?;
        Ok(Response::new(pb::CreateAccountsResponse { results }))
    }

    async fn create_transfers(
        &self,
        request: Request<pb::CreateTransfersRequest>,
    ) -> Result<Response<pb::CreateTransfersResponse>, Status> {
        let owner = super::auth::owner(&request);
        let req = request.into_inner();
        bounds::create_transfers(&req)?;
        if req.transfers.iter().any(convert::has_extras) {
            let results = self.create_transfers_with(&req.transfers, &owner).await?;
            return Ok(Response::new(pb::CreateTransfersResponse { results }));
        }
        let results = self
            .write(
                "create_transfers",
                &req.transfers,
                |t| convert::transfer_id(t).unwrap_or(0),
                |t| {
                    let mut input = convert::prepare_transfer(t)?;
                    input.owner = owner.clone();
                    Ok(input)
                },
                |inputs| self.transfers.submit(inputs),
            )
            .await?;
        Ok(Response::new(pb::CreateTransfersResponse { results }))
    }

    async fn set_account_status(
        &self,
        request: Request<pb::SetAccountStatusRequest>,
    ) -> Result<Response<pb::SetAccountStatusResponse>, Status> {
        let actor = super::auth::actor(&request);
        let req = request.into_inner();
        bounds::set_account_status(&req)?;
        let results = self
            .write("set_account_status", &req.changes, |c| convert::id(&c.account_id).unwrap_or(0), |c| convert::prepare_status_change(c, &actor), |inputs| {
                self.propose(inputs, Operation::SetAccountStatus)
            })
            .await?;
        Ok(Response::new(pb::SetAccountStatusResponse { results }))
    }

    async fn lookup_assets(&self, request: Request<pb::LookupAssetsRequest>) -> Result<Response<pb::LookupAssetsResponse>, Status> {
        let staleness = max_staleness(&request)?;
        let req = request.into_inner();
        bounds::lookup(req.codes.len(), "codes")?;
        req.codes.iter().try_for_each(|code| bounds::named_asset(code))?;
        let snapshot = self.read(staleness).await?;
        let mut assets = Vec::new();
        for code in &req.codes {
            if let Some(asset) = snapshot.asset(code).map_err(storage)? {
                assets.push(convert::asset_record(&asset));
            }
        }
        Ok(Response::new(pb::LookupAssetsResponse { assets }))
    }

    async fn lookup_accounts(
        &self,
        request: Request<pb::LookupAccountsRequest>,
    ) -> Result<Response<pb::LookupAccountsResponse>, Status> {
        let accounts = self
            .lookup(max_staleness(&request)?, &request.into_inner().ids, "account id", |s, id| s.account(id), |a: &Account, scales| {
                Ok(convert::account_record(a, scales.of(&a.asset)?))
            })
            .await?;
        Ok(Response::new(pb::LookupAccountsResponse { accounts }))
    }

    async fn lookup_transfers(
        &self,
        request: Request<pb::LookupTransfersRequest>,
    ) -> Result<Response<pb::LookupTransfersResponse>, Status> {
        let scope = super::auth::transfer_scope(&request);
        let get = |s: &Snapshot, id| match s.transfer(id)?.filter(|t| scope.admits(&t.owner)) {
            Some(t) => Ok(Some(TransferView::read(s, t)?)),
            None => Ok(None),
        };
        let transfers = self
            .lookup(max_staleness(&request)?, &request.into_inner().ids, "transfer id", get, |t: &TransferView, scales| {
                Ok(t.record(scales.of(&t.transfer.asset)?))
            })
            .await?;
        Ok(Response::new(pb::LookupTransfersResponse { transfers }))
    }

    async fn get_transfer_by_idempotency_key(
        &self,
        request: Request<pb::GetTransferByIdempotencyKeyRequest>,
    ) -> Result<Response<pb::GetTransferByIdempotencyKeyResponse>, Status> {
        let staleness = max_staleness(&request)?;
        let scope = super::auth::transfer_scope(&request);
        let key = request.into_inner().idempotency_key;
        if !validate::idempotency_key(&key) {
            return Err(Status::invalid_argument(format!("idempotency key must be 1..={IDEMPOTENCY_KEY_BYTES_MAX} bytes")));
        }
        let snapshot = self.read(staleness).await?;
        // Another principal's key reads as never used: its existence is not revealed.
        let Some(record) = snapshot.idempotency(&key).map_err(storage)?.filter(|r| scope.admits(&r.owner)) else {
            return Err(Status::not_found("no transfer was submitted with this idempotency key"));
        };
        let transfer = match snapshot.transfer(record.transfer_id).map_err(storage)? {
            Some(t) if record.code.is_success() => {
                let scale = Scales::new(&snapshot).of(&t.asset)?;
                Some(TransferView::read(&snapshot, t).map_err(storage)?.record(scale))
            }
            _ => None,
        };
        Ok(Response::new(pb::GetTransferByIdempotencyKeyResponse {
            found: true,
            code: convert::result_code(record.code),
            transfer_id: convert::id_bytes(record.transfer_id),
            timestamp_ns: record.timestamp_ns,
            transfer,
        }))
    }

    async fn get_account_by_external_ref(
        &self,
        request: Request<pb::GetAccountByExternalRefRequest>,
    ) -> Result<Response<pb::GetAccountByExternalRefResponse>, Status> {
        let staleness = max_staleness(&request)?;
        let external_ref = request.into_inner().external_ref;
        if external_ref.is_empty() || external_ref.len() > EXTERNAL_REF_BYTES_MAX {
            return Err(Status::invalid_argument(format!("external ref must be 1..={EXTERNAL_REF_BYTES_MAX} bytes")));
        }
        let snapshot = self.read(staleness).await?;
        let id = snapshot.account_id_by_external_ref(&external_ref)
            .map_err(storage)?
            .ok_or_else(|| Status::not_found(format!("no account has external ref {external_ref:?}")))?;
        let account = snapshot.account(id)
            .map_err(storage)?
            .ok_or_else(|| Status::data_loss("external ref names a missing account"))?;
        let scale = Scales::new(&snapshot).of(&account.asset)?;
        Ok(Response::new(pb::GetAccountByExternalRefResponse { account: Some(convert::account_record(&account, scale)) }))
    }

    async fn list_account_entries(
        &self,
        request: Request<pb::ListAccountEntriesRequest>,
    ) -> Result<Response<pb::ListAccountEntriesResponse>, Status> {
        let staleness = max_staleness(&request)?;
        let req = request.into_inner();
        let account_id = request_id(&req.account_id, "account id")?;
        let limit = match req.limit {
            0 => ENTRIES_PAGE_DEFAULT,
            n if n > ENTRIES_PAGE_MAX => {
                return Err(Status::invalid_argument(format!("limit must be at most {ENTRIES_PAGE_MAX}")));
            }
            n => n,
        } as usize;
        let snapshot = self.read(staleness).await?;
        let account = snapshot.account(account_id)
            .map_err(storage)?
            .ok_or_else(|| Status::not_found("account not found"))?;
        let scale = Scales::new(&snapshot).of(&account.asset)?;
        let cursor = (req.cursor_timestamp_ns != 0).then_some(req.cursor_timestamp_ns);
        let (after, before) = if req.reverse { (None, cursor) } else { (cursor, None) };
        let mut entries = snapshot.entries(account_id, after, before, limit, req.reverse).map_err(storage)?;
        // A page never splits one timestamp (one transfer's legs): the cursor is a timestamp.
        let mut next_cursor = 0;
        if entries.len() == limit {
            let last_ts = entries.last().expect("limit > 0").timestamp_ns;
            let same_ts = snapshot.entries(
                account_id,
                Some(last_ts.saturating_sub(1)),
                Some(last_ts.saturating_add(1)),
                2 * TRANSFER_LEGS_MAX,
                req.reverse,
            )
            .map_err(storage)?;
            entries.retain(|e| e.timestamp_ns != last_ts);
            entries.extend(same_ts);
            next_cursor = last_ts;
        }
        let entries = entries.iter().map(|e| convert::account_entry(e, scale)).collect();
        Ok(Response::new(pb::ListAccountEntriesResponse { entries, next_cursor_timestamp_ns: next_cursor }))
    }

    async fn get_balance_at(&self, request: Request<pb::GetBalanceAtRequest>) -> Result<Response<pb::GetBalanceAtResponse>, Status> {
        let staleness = max_staleness(&request)?;
        let req = request.into_inner();
        let account_id = request_id(&req.account_id, "account id")?;
        let snapshot = self.read(staleness).await?;
        let account = snapshot.account(account_id)
            .map_err(storage)?
            .ok_or_else(|| Status::not_found("account not found"))?;
        let scale = Scales::new(&snapshot).of(&account.asset)?;
        let before = req.timestamp_ns.saturating_add(1);
        let last = snapshot.entries(account_id, None, Some(before), 1, true).map_err(storage)?;
        let (balances, as_of) = match last.first() {
            Some(e) => (e.balances_after, e.timestamp_ns),
            None => (Balances::default(), 0),
        };
        Ok(Response::new(pb::GetBalanceAtResponse {
            balances: Some(convert::balances(&balances, scale)),
            as_of_timestamp_ns: as_of,
        }))
    }

    type WatchAccountStream = WatchStream;

    async fn watch_account(&self, request: Request<pb::WatchAccountRequest>) -> Result<Response<WatchStream>, Status> {
        let account_id = request_id(&request.into_inner().account_id, "account id")?;
        // This node's applied state: the stream that follows is this node's applied entries.
        let snapshot = self.node.read(Consistency::Applied).await.map_err(to_status)?;
        let account = snapshot.account(account_id)
            .map_err(storage)?
            .ok_or_else(|| Status::not_found("account not found"))?;
        let scale = Scales::new(&snapshot).of(&account.asset)?;
        use std::sync::atomic::Ordering;
        if self.watchers.fetch_add(1, Ordering::Relaxed) >= WATCHERS_MAX {
            self.watchers.fetch_sub(1, Ordering::Relaxed);
            return Err(Status::resource_exhausted(format!("this node serves at most {WATCHERS_MAX} watch streams")));
        }
        let slot = WatcherSlot(self.watchers.clone());
        let mut feed = self.node.subscribe();
        let stream = async_stream(move |tx| async move {
            let _slot = slot;
            loop {
                let received = tokio::select! {
                    // A client that went away frees its slot now, not at the next entry.
                    _ = tx.closed() => return,
                    received = feed.recv() => received,
                };
                match received {
                    Ok(batch) => {
                        for entry in batch.iter().filter(|e| e.account_id == account_id) {
                            if tx.send(Ok(convert::account_entry(entry, scale))).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        let _ = tx.send(Err(Status::data_loss(format!("watcher fell {n} batches behind; resubscribe and read the history")))).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn cluster_status(&self, _: Request<pb::ClusterStatusRequest>) -> Result<Response<pb::ClusterStatusResponse>, Status> {
        let metrics = self.node.metrics();
        let membership = metrics.membership_config.membership();
        let leader_address = metrics
            .current_leader
            .and_then(|l| membership.get_node(&l).map(|n| n.api.clone()))
            .unwrap_or_default();
        let members = super::cluster::member_rows(&self.node);
        let retired_node_ids =
            self.node.ids_seen().into_iter().filter(|id| !members.iter().any(|m| m.node_id == *id)).collect();
        Ok(Response::new(pb::ClusterStatusResponse {
            node_id: metrics.id,
            role: format!("{:?}", metrics.state).to_lowercase(),
            term: metrics.current_term,
            leader_id: metrics.current_leader,
            leader_address,
            last_log_index: metrics.last_log_index.unwrap_or(0),
            committed_index: metrics.cluster_committed.as_ref().map(|l| l.index()).unwrap_or(0),
            applied_index: metrics.last_applied.as_ref().map(|l| l.index()).unwrap_or(0),
            snapshot_index: metrics.snapshot.as_ref().map(|l| l.index()).unwrap_or(0),
            nodes: members,
            purged_index: metrics.purged.as_ref().map(|l| l.index()).unwrap_or(0),
            error: metrics.running_state.as_ref().err().map(|e| e.to_string()).unwrap_or_default(),
            retired_node_ids,
        }))
    }

    async fn get_state_hash(&self, _: Request<pb::GetStateHashRequest>) -> Result<Response<pb::GetStateHashResponse>, Status> {
        let (applied_index, hash) = self
            .node
            .state_hash()
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(storage)?;
        let state_hash = hash.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Response::new(pb::GetStateHashResponse { applied_index, state_hash }))
    }
}

/// A stream fed by a task through a bounded channel.
fn async_stream<F, Fut>(body: F) -> WatchStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<pb::AccountEntry, Status>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(body(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// One write item answered: by operation and result code (bounded: the codes are an enum).
/// A replayed result (same idempotency key and content) moved nothing now: not a transfer applied.
fn count_result(operation: &'static str, result: &ItemResult) {
    let code = result.code;
    let name = pb::ResultCode::try_from(convert::result_code(code)).map(|c| c.as_str_name()).unwrap_or("UNKNOWN");
    metrics::counter!(crate::telemetry::WRITE_RESULTS_TOTAL, "operation" => operation, "code" => name).increment(1);
    if operation == "create_transfers" && code == ledger_core::result::ResultCode::Ok && !result.replay {
        metrics::counter!(crate::telemetry::TRANSFERS_APPLIED_TOTAL).increment(1);
    }
}
