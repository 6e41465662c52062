//! `Wallet/WatchWallet`: system-initiated sync. A wallet app subscribes with its token; it gets
//! the token and wallet now, then an update after every committed change to the wallet account
//! (an online payment, a top-up, another device's sync), so the phone can refresh its balance
//! and offline allowance without polling. Read from this node's applied state.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::Stream;
use ledger_proto::api as pb;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tonic::Status;

use super::convert;
use super::grpc::WATCHERS_MAX;
use super::status::{storage, to_status};
use ledger_core::amount::format_minor;
use crate::service::{Consistency, Node, Snapshot};

pub type WalletStream = Pin<Box<dyn Stream<Item = Result<pb::WalletUpdate, Status>> + Send + 'static>>;

/// Updates buffered per watcher before it counts as lagging.
const UPDATES_BUFFERED: usize = 64;

/// This node's applied state (the stream follows this node's applied entries).
async fn applied(node: &Node) -> Result<Snapshot, Status> {
    node.read(Consistency::Applied).await.map_err(to_status)
}

/// The token and its wallet as one update, from one view; `None` if the token is gone (never:
/// tokens are kept).
fn update(snapshot: &Snapshot, token_id: u128, timestamp_ns: u64) -> Result<Option<pb::WalletUpdate>, Status> {
    let Some(t) = snapshot.wallet_token(token_id).map_err(storage)? else { return Ok(None) };
    let account = snapshot.account(t.account_id).map_err(storage)?.ok_or_else(|| Status::data_loss("token names a missing account"))?;
    let scale = snapshot.asset(&t.asset).map_err(storage)?.ok_or_else(|| Status::data_loss("token names a missing asset"))?.scale;
    let b = &account.balances;
    let have = i128::try_from(b.credits_posted.saturating_add(account.overdraft_limit_minor)).unwrap_or(i128::MAX);
    let spent = i128::try_from(b.debits_posted.saturating_add(b.debits_pending)).unwrap_or(i128::MAX);
    let available = have - spent;
    let available_online = if available < 0 {
        format!("-{}", format_minor(available.unsigned_abs(), scale))
    } else {
        format_minor(available.unsigned_abs(), scale)
    };
    Ok(Some(pb::WalletUpdate {
        token: Some(super::wallet::token_wire(&t, scale, Vec::new())),
        account: Some(convert::account_record(&account, scale)),
        available_online,
        offline_allowance: format_minor(t.hold_remaining_minor, scale),
        timestamp_ns,
    }))
}

/// Counts one open watch stream for as long as it lives.
struct Slot(Arc<AtomicUsize>);
impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub async fn watch(node: Node, token_id: u128, watchers: Arc<AtomicUsize>) -> Result<WalletStream, Status> {
    // Subscribe before the first read, so no change falls between the two.
    let mut feed = node.subscribe();
    let snapshot = applied(&node).await?;
    let Some(first) = update(&snapshot, token_id, 0)? else {
        return Err(Status::not_found(format!("token {token_id} not found")));
    };
    let account_id = snapshot.wallet_token(token_id).map_err(storage)?.map(|t| t.account_id).unwrap_or_default();
    drop(snapshot);
    if watchers.fetch_add(1, Ordering::Relaxed) >= WATCHERS_MAX {
        watchers.fetch_sub(1, Ordering::Relaxed);
        return Err(Status::resource_exhausted(format!("this node serves at most {WATCHERS_MAX} watch streams")));
    }
    let slot = Slot(watchers);
    let (tx, rx) = mpsc::channel(UPDATES_BUFFERED);
    tokio::spawn(async move {
        let _slot = slot;
        if tx.send(Ok(first)).await.is_err() {
            return;
        }
        loop {
            let received = tokio::select! {
                _ = tx.closed() => return,
                received = feed.recv() => received,
            };
            match received {
                Ok(batch) => {
                    // One update per committed batch that touched the wallet, as of its last change.
                    let Some(last) = batch.iter().filter(|e| e.account_id == account_id).map(|e| e.timestamp_ns).max() else { continue };
                    let next = match applied(&node).await.and_then(|snapshot| update(&snapshot, token_id, last)) {
                        Ok(Some(next)) => Ok(next),
                        Ok(None) => return,
                        Err(status) => Err(status),
                    };
                    let failed = next.is_err();
                    if tx.send(next).await.is_err() || failed {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    let _ = tx.send(Err(Status::data_loss(format!("watcher fell {n} batches behind; resubscribe")))).await;
                    return;
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}
