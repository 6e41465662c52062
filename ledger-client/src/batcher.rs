//! Automatic batching of transfers: many concurrent `submit` calls become one CreateTransfers
//! request, because the ledger's cost is per request (one Raft entry, one fsync), not per
//! transfer.
//!
//! One background task owns the queue. It takes the first queued transfer, everything queued
//! behind it up to `max_batch`, then waits at most `linger` for more, sends the batch, and hands
//! each caller its own result. Exactly one request is in flight per batcher (like a TigerBeetle
//! client session): while it is in flight the queue fills, so batches grow with load on their
//! own. For more parallelism, create more batchers. Order of transfers is the order they entered
//! the queue; concurrent submits have no order between them.

use crate::client::LedgerClient;
use crate::error::ClientError;
use crate::types::{NewTransfer, WriteResult};
use futures::future::BoxFuture;
use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatcherConfig {
    /// Transfers per request, at least 1. The server's request bound is 8,190.
    pub max_batch: usize,
    /// How long a non-full batch waits for more transfers; zero sends at once.
    pub linger: Duration,
    /// Transfers waiting to be batched, at least 1. When full, `submit` waits (backpressure)
    /// instead of growing memory without bound.
    pub queue_capacity: usize,
}

impl Default for BatcherConfig {
    fn default() -> BatcherConfig {
        BatcherConfig {
            max_batch: ledger_core::limits::BATCH_ITEMS_MAX,
            linger: Duration::from_millis(1),
            queue_capacity: 65536,
        }
    }
}

/// Sends one batch. `LedgerClient` implements it; tests substitute a fake.
pub trait SendTransfers: Send + Sync + 'static {
    fn send_transfers(
        &self,
        transfers: Vec<NewTransfer>,
    ) -> BoxFuture<'static, Result<Vec<WriteResult>, ClientError>>;
}

impl SendTransfers for LedgerClient {
    fn send_transfers(
        &self,
        transfers: Vec<NewTransfer>,
    ) -> BoxFuture<'static, Result<Vec<WriteResult>, ClientError>> {
        let client = self.clone();
        Box::pin(async move { client.create_transfers(transfers).await })
    }
}

struct Submission {
    transfer: NewTransfer,
    reply: oneshot::Sender<Result<WriteResult, ClientError>>,
}

/// Handle to a batching task. Cheap to clone; the task stops when every handle is dropped and
/// the queue is drained.
#[derive(Clone, Debug)]
pub struct TransferBatcher {
    queue: mpsc::Sender<Submission>,
}

impl LedgerClient {
    /// Starts a batcher on the current Tokio runtime.
    pub fn batcher(&self, config: BatcherConfig) -> TransferBatcher {
        TransferBatcher::new(self.clone(), config)
    }
}

impl TransferBatcher {
    /// Starts the background task on the current Tokio runtime (panics outside one, like
    /// `tokio::spawn`).
    pub fn new(sender: impl SendTransfers, config: BatcherConfig) -> TransferBatcher {
        let config = BatcherConfig {
            max_batch: config.max_batch.max(1),
            queue_capacity: config.queue_capacity.max(1),
            ..config
        };
        let (queue, receiver) = mpsc::channel(config.queue_capacity);
        tokio::spawn(run(receiver, sender, config));
        TransferBatcher { queue }
    }

    /// Queues one transfer and resolves to its own result (`index` 0). Waits while the queue is
    /// full. Once queued, the transfer is sent even if this future is dropped; its idempotency
    /// key makes a resubmission safe.
    pub fn submit(
        &self,
        transfer: NewTransfer,
    ) -> impl Future<Output = Result<WriteResult, ClientError>> + Send + 'static {
        let queue = self.queue.clone();
        async move {
            if transfer.linked {
                return Err(ClientError::InvalidInput(crate::error::ParseError::LinkedNotBatched));
            }
            let (reply, response) = oneshot::channel();
            queue
                .send(Submission { transfer, reply })
                .await
                .map_err(|_| ClientError::BatcherClosed)?;
            response.await.map_err(|_| ClientError::BatcherClosed)?
        }
    }
}

async fn run(
    mut queue: mpsc::Receiver<Submission>,
    sender: impl SendTransfers,
    config: BatcherConfig,
) {
    while let Some(batch) = collect_batch(&mut queue, config.max_batch, config.linger).await {
        dispatch(&sender, batch).await;
    }
    tracing::debug!("transfer batcher stopped: every handle dropped");
}

/// Waits for one submission, then gathers up to `max_batch`: first what is queued already, then
/// what arrives within `linger`. `None` when the queue is closed and empty.
async fn collect_batch(
    queue: &mut mpsc::Receiver<Submission>,
    max_batch: usize,
    linger: Duration,
) -> Option<Vec<Submission>> {
    let mut batch = Vec::new();
    if queue.recv_many(&mut batch, max_batch).await == 0 {
        return None;
    }
    if batch.len() < max_batch && !linger.is_zero() {
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max_batch {
            let wanted = max_batch - batch.len();
            match tokio::time::timeout_at(deadline, queue.recv_many(&mut batch, wanted)).await {
                Ok(0) | Err(_) => break, // closed, or linger over
                Ok(_) => {}
            }
        }
    }
    Some(batch)
}

async fn dispatch(sender: &impl SendTransfers, batch: Vec<Submission>) {
    let count = batch.len();
    let (transfers, replies): (Vec<NewTransfer>, Vec<_>) =
        batch.into_iter().map(|s| (s.transfer, s.reply)).unzip();
    tracing::trace!(count, "sending transfer batch");
    match sender
        .send_transfers(transfers)
        .await
        .and_then(|results| by_index(results, count))
    {
        Ok(results) => {
            for (mut result, reply) in results.into_iter().zip(replies) {
                // Each caller sent a one-transfer request as far as it can tell.
                result.index = 0;
                let _ = reply.send(Ok(result)); // The caller may have stopped waiting.
            }
        }
        Err(error) => {
            tracing::debug!(count, %error, "transfer batch failed");
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

/// Orders results by `index`, checking there is exactly one per transfer, so that a misbehaving
/// sender can never give a caller someone else's result.
fn by_index(results: Vec<WriteResult>, count: usize) -> Result<Vec<WriteResult>, ClientError> {
    let mut slots: Vec<Option<WriteResult>> = vec![None; count];
    for result in results {
        let slot = slots.get_mut(result.index as usize).ok_or_else(|| {
            ClientError::protocol(format!("result index {} out of range", result.index))
        })?;
        if slot.replace(result).is_some() {
            return Err(ClientError::protocol("two results for one transfer"));
        }
    }
    slots
        .into_iter()
        .enumerate()
        .map(|(index, slot)| {
            slot.ok_or_else(|| ClientError::protocol(format!("no result for transfer {index}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResultCode;
    use std::sync::{Arc, Mutex};

    /// Records batch sizes; answers OK for even ids and EXCEEDS_CREDITS for odd ones, with the
    /// results in reverse order to prove they are matched by index.
    #[derive(Clone, Default)]
    struct Fake {
        batch_sizes: Arc<Mutex<Vec<usize>>>,
        delay: Duration,
        fail: Option<ClientError>,
        drop_last_result: bool,
    }

    impl SendTransfers for Fake {
        fn send_transfers(
            &self,
            transfers: Vec<NewTransfer>,
        ) -> BoxFuture<'static, Result<Vec<WriteResult>, ClientError>> {
            let fake = self.clone();
            Box::pin(async move {
                fake.batch_sizes.lock().unwrap().push(transfers.len());
                tokio::time::sleep(fake.delay).await;
                if let Some(error) = fake.fail {
                    return Err(error);
                }
                let mut results: Vec<WriteResult> = transfers
                    .iter()
                    .enumerate()
                    .map(|(index, t)| WriteResult {
                        index: index as u32,
                        code: if t.id % 2 == 0 {
                            ResultCode::Ok
                        } else {
                            ResultCode::ExceedsCredits
                        },
                        timestamp_ns: 1000 + t.id as u64,
                        leg_index: None,
                        replay: false,
                        id: t.id,
                    })
                    .collect();
                if fake.drop_last_result {
                    results.pop();
                }
                results.reverse();
                Ok(results)
            })
        }
    }

    fn transfer(id: u128) -> NewTransfer {
        NewTransfer::posted(id, format!("key-{id}"), "CNY", vec![])
    }

    async fn submit_all(
        batcher: &TransferBatcher,
        ids: std::ops::Range<u128>,
    ) -> Vec<Result<WriteResult, ClientError>> {
        futures::future::join_all(ids.map(|id| batcher.submit(transfer(id)))).await
    }

    #[tokio::test]
    async fn concurrent_submits_share_one_request() {
        let fake = Fake::default();
        let config = BatcherConfig {
            linger: Duration::from_millis(50),
            ..BatcherConfig::default()
        };
        let batcher = TransferBatcher::new(fake.clone(), config);
        let results = submit_all(&batcher, 1..11).await;
        assert_eq!(*fake.batch_sizes.lock().unwrap(), vec![10]);
        for (id, result) in (1u128..11).zip(results) {
            let result = result.unwrap();
            assert_eq!(result.id, id, "each caller gets its own result");
            assert_eq!(
                result.index, 0,
                "index remapped to the caller's single item"
            );
            assert_eq!(result.timestamp_ns, 1000 + id as u64);
            let expected = if id % 2 == 0 {
                ResultCode::Ok
            } else {
                ResultCode::ExceedsCredits
            };
            assert_eq!(result.code, expected);
        }
    }

    #[tokio::test]
    async fn batches_never_exceed_max_batch() {
        let fake = Fake {
            delay: Duration::from_millis(5),
            ..Fake::default()
        };
        let config = BatcherConfig {
            max_batch: 4,
            linger: Duration::from_millis(20),
            queue_capacity: 3,
        };
        let batcher = TransferBatcher::new(fake.clone(), config);
        let results = submit_all(&batcher, 0..23).await;
        assert!(results.iter().all(Result::is_ok));
        let sizes = fake.batch_sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 23);
        assert!(sizes.iter().all(|&n| (1..=4).contains(&n)), "{sizes:?}");
    }

    #[tokio::test]
    async fn zero_linger_sends_without_waiting() {
        let fake = Fake::default();
        let config = BatcherConfig {
            linger: Duration::ZERO,
            ..BatcherConfig::default()
        };
        let batcher = TransferBatcher::new(fake.clone(), config);
        let started = std::time::Instant::now();
        assert_eq!(
            batcher.submit(transfer(2)).await.unwrap().code,
            ResultCode::Ok
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_failed_request_fails_every_caller() {
        let error = ClientError::Unknown {
            attempts: 9,
            last_error: "timeout".into(),
        };
        let fake = Fake {
            fail: Some(error),
            ..Fake::default()
        };
        let batcher = TransferBatcher::new(
            fake,
            BatcherConfig {
                linger: Duration::from_millis(20),
                ..Default::default()
            },
        );
        for result in submit_all(&batcher, 0..5).await {
            assert!(matches!(
                result,
                Err(ClientError::Unknown { attempts: 9, .. })
            ));
        }
    }

    #[tokio::test]
    async fn a_missing_result_is_a_protocol_error_for_all() {
        let fake = Fake {
            drop_last_result: true,
            ..Fake::default()
        };
        let batcher = TransferBatcher::new(
            fake,
            BatcherConfig {
                linger: Duration::from_millis(20),
                ..Default::default()
            },
        );
        for result in submit_all(&batcher, 0..3).await {
            assert!(matches!(result, Err(ClientError::Protocol(_))));
        }
    }

    #[test]
    fn by_index_checks_one_result_per_item() {
        let result = |index| WriteResult {
            index,
            code: ResultCode::Ok,
            timestamp_ns: 0,
            leg_index: None,
            replay: false,
            id: 0,
        };
        assert_eq!(by_index(vec![result(1), result(0)], 2).unwrap()[1].index, 1);
        assert!(by_index(vec![result(0), result(0)], 2).is_err());
        assert!(by_index(vec![result(5)], 1).is_err());
        assert!(by_index(vec![], 1).is_err());
    }
}
