//! Group commit: concurrent CreateTransfers requests are coalesced into one Raft entry.
//!
//! Raft already shares one fsync among the entries appended together; coalescing also shares
//! everything paid per entry (encoding, replication bookkeeping, one apply call, one response
//! channel). Natural batching, no timer: at most `IN_FLIGHT_MAX` entries are being committed at
//! once, and while they are, new requests queue; the next entry takes everything queued, up to
//! the per-request bounds. At low load a request is proposed at once, alone.
//!
//! Memory: requests waiting or being committed hold at most `QUEUE_BYTES_MAX` bytes of
//! transfers (estimated per transfer, `request_bytes`); a submitter beyond it waits, so a flood of
//! large requests cannot exhaust the leader however many there are.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::{Node, ServiceError};
use ledger_core::ItemResult;
use ledger_core::limits::{BATCH_ITEMS_MAX, BATCH_LEGS_MAX};
use ledger_core::types::{Operation, TransferInput};

/// Requests waiting for an entry at most; submitters wait (backpressure) beyond it.
pub const QUEUE_REQUESTS_MAX: usize = 16_384;
/// Bytes of transfers waiting or being committed at most (`request_bytes`); submitters wait
/// (backpressure) beyond it. A request larger than this alone waits for the whole budget.
pub const QUEUE_BYTES_MAX: usize = 256 << 20;
/// Coalesced entries being committed at once.
pub const IN_FLIGHT_MAX: usize = 4;

type Reply = Result<Vec<ItemResult>, ServiceError>;

struct Waiting {
    transfers: Vec<TransferInput>,
    legs: usize,
    reply: oneshot::Sender<Reply>,
    /// Its share of `QUEUE_BYTES_MAX`, given back once its results are sent.
    bytes: OwnedSemaphorePermit,
}

#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Waiting>,
    bytes: Arc<Semaphore>,
}

/// An estimate of the memory a request's transfers hold: fixed fields plus every string and
/// leg. Within a small factor of the decoded size, which is what must be bounded.
pub fn request_bytes(transfers: &[TransferInput]) -> usize {
    transfers
        .iter()
        .map(|t| {
            std::mem::size_of::<TransferInput>()
                + t.idempotency_key.len()
                + t.asset.len()
                + t.owner.len()
                + t.legs.len() * std::mem::size_of::<ledger_core::types::LegInput>()
                + t.post_amounts.len() * std::mem::size_of::<ledger_core::amount::DecimalInput>()
        })
        .sum()
}

/// Takes `transfers`' share of the byte budget, waiting while it is spent.
async fn reserve(budget: &Arc<Semaphore>, transfers: &[TransferInput]) -> Result<OwnedSemaphorePermit, ServiceError> {
    let bytes = request_bytes(transfers).clamp(1, QUEUE_BYTES_MAX) as u32;
    budget.clone().acquire_many_owned(bytes).await.map_err(|_| ServiceError::Fatal("group commit stopped".into()))
}

impl GroupCommit {
    /// Starts the coalescing task for `node`; it ends when every `GroupCommit` handle is dropped.
    pub fn start(node: Node) -> GroupCommit {
        let (tx, rx) = mpsc::channel(QUEUE_REQUESTS_MAX);
        tokio::spawn(run(node, rx));
        GroupCommit { tx, bytes: Arc::new(Semaphore::new(QUEUE_BYTES_MAX)) }
    }

    /// Commits `transfers` (already within the per-request bounds) and returns their results in
    /// order, as if they had been proposed alone.
    pub async fn submit(&self, transfers: Vec<TransferInput>) -> Reply {
        assert!(transfers.len() <= BATCH_ITEMS_MAX);
        let legs = transfers.iter().map(|t| t.legs.len()).sum();
        let bytes = reserve(&self.bytes, &transfers).await?;
        let (reply, wait) = oneshot::channel();
        self.tx
            .send(Waiting { transfers, legs, reply, bytes })
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
    // Held until the results are sent: the transfers are in memory until then (the entry).
    let mut _bytes = Vec::with_capacity(group.len());
    for w in group {
        waiters.push((w.transfers.len(), w.reply));
        transfers.extend(w.transfers);
        _bytes.push(w.bytes);
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

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_core::amount::DecimalInput;
    use ledger_core::types::{LegInput, TransferKind};

    fn transfer(key_bytes: usize) -> TransferInput {
        TransferInput {
            id: 1,
            idempotency_key: "k".repeat(key_bytes),
            asset: "CNY".into(),
            kind: TransferKind::Posted,
            legs: vec![LegInput { debit_account_id: 1, credit_account_id: 2, amount: DecimalInput { digits: 1, scale: 0 } }],
            pending_id: 0,
            timeout_ms: 0,
            post_amounts: Vec::new(),
            code: 0,
            owner: String::new(),
        }
    }

    /// Issue 18 item 9: the queue is bounded by bytes, not only by count: once the requests
    /// held reach `QUEUE_BYTES_MAX`, the next submitter waits until one is done.
    #[tokio::test]
    async fn the_queue_is_bounded_by_bytes() {
        let budget = Arc::new(Semaphore::new(QUEUE_BYTES_MAX));
        // Requests of ~4 MiB each (the example): 64 of them fill 256 MiB.
        let big = vec![transfer(4 << 20)];
        assert!(request_bytes(&big) >= 4 << 20);
        let mut held = Vec::new();
        while budget.available_permits() >= request_bytes(&big) {
            held.push(reserve(&budget, &big).await.unwrap());
        }
        assert!(held.len() <= QUEUE_BYTES_MAX / (4 << 20), "{} requests held", held.len());
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), reserve(&budget, &big)).await;
        assert!(waiting.is_err(), "a submitter beyond the budget waits");
        held.pop();
        let admitted = tokio::time::timeout(std::time::Duration::from_secs(1), reserve(&budget, &big)).await;
        assert!(admitted.is_ok(), "admitted once a request is done");
    }
}
