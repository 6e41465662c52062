//! Group commit: concurrent CreateTransfers requests are coalesced into one Raft entry.
//!
//! Raft already shares one fsync among the entries appended together; coalescing also shares
//! everything paid per entry (encoding, replication bookkeeping, one apply call, one response
//! channel). Natural batching, no timer: at most `IN_FLIGHT_MAX` entries are being committed at
//! once, and while they are, new requests queue; the next entry takes everything queued, up to
//! the per-request bounds. At low load a request is proposed at once, alone.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{Node, ServiceError};
use crate::ledger::ItemResult;
use crate::ledger::limits::{BATCH_ITEMS_MAX, BATCH_LEGS_MAX};
use crate::ledger::types::{Operation, TransferInput};

/// Requests waiting for an entry at most; submitters wait (backpressure) beyond it.
pub const QUEUE_REQUESTS_MAX: usize = 16_384;
/// Coalesced entries being committed at once.
pub const IN_FLIGHT_MAX: usize = 4;

type Reply = Result<Vec<ItemResult>, ServiceError>;

struct Waiting {
    transfers: Vec<TransferInput>,
    legs: usize,
    reply: oneshot::Sender<Reply>,
}

#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Waiting>,
}

impl GroupCommit {
    /// Starts the coalescing task for `node`; it ends when every `GroupCommit` handle is dropped.
    pub fn start(node: Node) -> GroupCommit {
        let (tx, rx) = mpsc::channel(QUEUE_REQUESTS_MAX);
        tokio::spawn(run(node, rx));
        GroupCommit { tx }
    }

    /// Commits `transfers` (already within the per-request bounds) and returns their results in
    /// order, as if they had been proposed alone.
    pub async fn submit(&self, transfers: Vec<TransferInput>) -> Reply {
        assert!(transfers.len() <= BATCH_ITEMS_MAX);
        let legs = transfers.iter().map(|t| t.legs.len()).sum();
        let (reply, wait) = oneshot::channel();
        self.tx
            .send(Waiting { transfers, legs, reply })
            .await
            .map_err(|_| ServiceError::Fatal("group commit stopped".into()))?;
        wait.await.map_err(|_| ServiceError::Fatal("group commit dropped a request".into()))?
    }
}

async fn run(node: Node, mut rx: mpsc::Receiver<Waiting>) {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    let mut carried: Option<Waiting> = None;
    loop {
        let Ok(permit) = in_flight.clone().acquire_owned().await else { return };
        let first = match carried.take() {
            Some(w) => w,
            None => match rx.recv().await {
                Some(w) => w,
                None => return,
            },
        };
        let (mut items, mut legs) = (first.transfers.len(), first.legs);
        let mut group = vec![first];
        while let Ok(next) = rx.try_recv() {
            if items + next.transfers.len() > BATCH_ITEMS_MAX || legs + next.legs > BATCH_LEGS_MAX {
                carried = Some(next);
                break;
            }
            items += next.transfers.len();
            legs += next.legs;
            group.push(next);
        }
        let node = node.clone();
        tokio::spawn(async move {
            commit(&node, group, items).await;
            drop(permit);
        });
    }
}

async fn commit(node: &Node, group: Vec<Waiting>, items: usize) {
    let mut transfers = Vec::with_capacity(items);
    let mut waiters = Vec::with_capacity(group.len());
    for w in group {
        waiters.push((w.transfers.len(), w.reply));
        transfers.extend(w.transfers);
    }
    tracing::trace!(requests = waiters.len(), transfers = items, "group commit");
    metrics::histogram!(crate::telemetry::GROUP_COMMIT_TRANSFERS).record(items as f64);
    metrics::histogram!(crate::telemetry::GROUP_COMMIT_REQUESTS).record(waiters.len() as f64);
    match node.propose(Operation::CreateTransfers(transfers)).await {
        Ok(response) if response.results.len() == items => {
            let mut results = response.results.into_iter();
            for (count, reply) in waiters {
                // A caller that went away just misses its results; the transfers stand.
                let _ = reply.send(Ok(results.by_ref().take(count).collect()));
            }
        }
        Ok(response) => {
            let why = format!("state machine returned {} results for {items} transfers", response.results.len());
            for (_, reply) in waiters {
                let _ = reply.send(Err(ServiceError::Fatal(why.clone())));
            }
        }
        Err(e) => {
            for (_, reply) in waiters {
                let _ = reply.send(Err(e.duplicate()));
            }
        }
    }
}
