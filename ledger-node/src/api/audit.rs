//! `ledger.v1.Audit`: the journal head and range exports for auditors. Read-only; any replica
//! serves it after a read barrier, from one RocksDB snapshot, so the same range gives the same
//! bytes everywhere. Exports stream from a blocking task through a small channel: memory per
//! export is a few messages, whatever the range.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use ledger_proto::api as pb;
use ledger_proto::api::audit_server::Audit;
use tokio::sync::{Semaphore, mpsc};
use tonic::{Request, Response, Status};

use super::convert;
use super::status::{storage, to_status};
use ledger_core::audit::RangeRequest;
use ledger_core::journal::Head;
use crate::service::read::View;
use crate::service::{Consistency, Node, Snapshot};
use pb::export_message::Part;

/// Lines per export message (a line is a few hundred bytes; a message stays well under 1 MiB).
pub const EXPORT_LINES_PER_MESSAGE: usize = 1_024;
/// Accounts (opening and closing balances) per export message.
pub const EXPORT_BALANCES_PER_MESSAGE: usize = 1_024;
/// Exports running at once on one node; more get RESOURCE_EXHAUSTED.
pub const EXPORTS_MAX: usize = 4;
/// Messages buffered per export before the reader waits for the client.
const EXPORT_CHANNEL_MESSAGES: usize = 4;
/// An export whose client reads nothing for this long is ended, giving back its slot and its
/// thread (a client that stops reading but keeps the connection would hold them forever).
pub const EXPORT_STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

pub struct AuditService {
    pub node: Node,
    exports: Arc<Semaphore>,
}

impl AuditService {
    pub fn new(node: Node) -> AuditService {
        AuditService { node, exports: Arc::new(Semaphore::new(EXPORTS_MAX)) }
    }
}

fn head_to_wire(head: &Head) -> pb::JournalHead {
    pb::JournalHead { seq: head.seq, hash: head.hash.to_vec(), timestamp_ns: head.timestamp_ns }
}

type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportMessage, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Audit for AuditService {
    async fn get_journal_head(&self, _: Request<pb::GetJournalHeadRequest>) -> Result<Response<pb::JournalHead>, Status> {
        let snapshot = self.node.read(Consistency::Linearizable).await.map_err(to_status)?;
        let head = snapshot.journal_head().map_err(storage)?;
        Ok(Response::new(head_to_wire(&head)))
    }

    type ExportJournalStream = ExportStream;

    async fn export_journal(&self, request: Request<pb::ExportJournalRequest>) -> Result<Response<ExportStream>, Status> {
        let req = request.into_inner();
        let permit = self
            .exports
            .clone()
            .try_acquire_owned()
            .map_err(|_| Status::resource_exhausted(format!("this node runs at most {EXPORTS_MAX} exports at once")))?;
        let snapshot = self.node.read(Consistency::Linearizable).await.map_err(to_status)?;
        let range = RangeRequest {
            from_seq: req.from_seq,
            to_seq: req.to_seq,
            from_timestamp_ns: req.from_timestamp_ns,
            to_timestamp_ns: req.to_timestamp_ns,
        };
        let (tx, rx) = mpsc::channel(EXPORT_CHANNEL_MESSAGES);
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut sink = |part| send_or_give_up(&runtime, &tx, Ok(pb::ExportMessage { part: Some(part) }), EXPORT_STALL_TIMEOUT);
            if let Err(status) = export(&snapshot, range, &mut sink) {
                let _ = send_or_give_up(&runtime, &tx, Err(status), EXPORT_STALL_TIMEOUT);
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

/// Sends one export message from a blocking thread, waiting at most `stall` for the client to
/// make room. False (the export ends) when the client went away or read nothing for `stall`.
fn send_or_give_up<T>(runtime: &tokio::runtime::Handle, tx: &mpsc::Sender<T>, message: T, stall: std::time::Duration) -> bool {
    match runtime.block_on(tokio::time::timeout(stall, tx.send(message))) {
        Ok(Ok(())) => true,
        Ok(Err(_closed)) => false,
        Err(_elapsed) => {
            tracing::warn!(stall_s = stall.as_secs(), "audit export ended: the client read nothing for too long");
            false
        }
    }
}

/// Produces the messages of one export from one consistent view of the state, in order, into
/// `send`; stops early when `send` returns `false` (the client went away). Deterministic: the
/// same state and range give the same messages on every replica.
pub fn export(snapshot: &Snapshot<impl View>, request: RangeRequest, send: &mut impl FnMut(Part) -> bool) -> Result<(), Status> {
    let head = snapshot.journal_head().map_err(storage)?;
    let range = snapshot.journal_range(request).map_err(storage)?;
    let header = pb::ExportHeader {
        from_seq: range.from_seq,
        to_seq: range.to_seq,
        hash_before: range.hash_before.to_vec(),
        opening_timestamp_ns: range.opening_timestamp_ns,
        closing_timestamp_ns: range.closing_timestamp_ns,
        head: Some(head_to_wire(&head)),
    };
    if !send(Part::Header(header)) {
        return Ok(());
    }
    let mut lines_sent = 0u64;
    let mut next = range.from_seq;
    while next <= range.to_seq {
        let page = snapshot.journal_lines(next, range.to_seq, EXPORT_LINES_PER_MESSAGE).map_err(storage)?;
        let Some((last, _)) = page.last() else {
            return Err(Status::data_loss(format!("journal line {next} is missing")));
        };
        next = last + 1;
        lines_sent += page.len() as u64;
        let lines = page
            .into_iter()
            .map(|(seq, row)| pb::ExportLine { seq, hash: row.hash.to_vec(), line: row.line })
            .collect();
        if !send(Part::Lines(pb::ExportLines { lines })) {
            return Ok(());
        }
    }
    let mut scales: BTreeMap<String, u8> = BTreeMap::new();
    let mut accounts_sent = 0u64;
    let mut after = None;
    loop {
        let (accounts, next_after) =
            snapshot.accounts_at(after, range.closing_timestamp_ns, EXPORT_BALANCES_PER_MESSAGE).map_err(storage)?;
        let mut rows = Vec::with_capacity(accounts.len());
        for account in &accounts {
            let scale = match scales.get(&account.asset) {
                Some(scale) => *scale,
                None => {
                    let asset = snapshot
                        .asset(&account.asset)
                        .map_err(storage)?
                        .ok_or_else(|| Status::data_loss(format!("account names a missing asset {}", account.asset)))?;
                    scales.insert(asset.code.clone(), asset.scale);
                    asset.scale
                }
            };
            let opening = snapshot.balances_at(account.id, range.opening_timestamp_ns).map_err(storage)?;
            let closing = snapshot.balances_at(account.id, range.closing_timestamp_ns).map_err(storage)?;
            let wire = |b: &ledger_core::types::Balances| {
                let b = convert::balances(b, scale);
                pb::Balance {
                    debits_posted: b.debits_posted,
                    credits_posted: b.credits_posted,
                    debits_pending: b.debits_pending,
                    credits_pending: b.credits_pending,
                }
            };
            rows.push(pb::AccountBalances {
                account_id: convert::id_bytes(account.id),
                asset: account.asset.clone(),
                code: account.code,
                opening: Some(wire(&opening)),
                closing: Some(wire(&closing)),
            });
        }
        accounts_sent += rows.len() as u64;
        if !rows.is_empty() && !send(Part::Balances(pb::ExportBalances { accounts: rows })) {
            return Ok(());
        }
        match next_after {
            Some(id) => after = Some(id),
            None => break,
        }
    }
    send(Part::Trailer(pb::ExportTrailer { lines: lines_sent, accounts: accounts_sent }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Issue 18 item 9: an export whose client stops reading ends after the stall timeout and
    /// gives back its slot and its thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_export_gives_back_its_slot_and_thread() {
        let slots = Arc::new(Semaphore::new(1));
        let permit = slots.clone().try_acquire_owned().unwrap();
        let (tx, rx) = mpsc::channel::<u32>(1);
        let runtime = tokio::runtime::Handle::current();
        let started = Instant::now();
        // The exporting thread: the client (rx) never reads.
        let exporter = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut sent = 0;
            while send_or_give_up(&runtime, &tx, sent, Duration::from_millis(200)) {
                sent += 1;
            }
            sent
        });
        let sent = tokio::time::timeout(Duration::from_secs(5), exporter).await.expect("the thread is given back").unwrap();
        assert_eq!(sent, 1, "one message fits the channel, then the stall");
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(slots.available_permits(), 1, "the slot is given back");
        drop(rx);

        // A client that went away ends the export at once.
        let (tx, rx) = mpsc::channel::<u32>(1);
        drop(rx);
        let runtime = tokio::runtime::Handle::current();
        let gone = tokio::task::spawn_blocking(move || send_or_give_up(&runtime, &tx, 1, Duration::from_secs(60)));
        assert!(!tokio::time::timeout(Duration::from_secs(1), gone).await.unwrap().unwrap());
    }
}
