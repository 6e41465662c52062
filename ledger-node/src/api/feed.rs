//! `ledger.v1.Feed/Subscribe`: the change feed, every committed event in commit order with its
//! cursor (its journal sequence), served by any node from its applied state.
//!
//! The stream reads pages from storage (`Snapshot::feed_page`, a blocking task per page) and hands
//! them to the client through a channel of a few messages: a slow consumer holds back only its own
//! reader, never a commit, and costs at most those messages of memory. Caught up, the reader waits
//! for this node to apply more (`Node::wait_applied_beyond`), so a follower serves a follow as
//! well as the leader, and a consumer that reconnects anywhere with its last cursor misses
//! nothing.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::Stream;
use ledger_core::feed::{Filter, Page, Scope};
use ledger_proto::api as pb;
use ledger_proto::api::feed_server::Feed;
use tokio::sync::mpsc;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use super::auth::{Principal, Role};
use super::convert;
use super::status::{storage, to_status};
use crate::service::{Consistency, Node, Snapshot};

/// Feed streams one node serves at once; more get RESOURCE_EXHAUSTED.
pub const SUBSCRIBERS_MAX: usize = 256;
/// Messages (pages) buffered per subscriber before its reader waits for the client.
const MESSAGES_BUFFERED: usize = 4;
/// A subscriber that takes no message for this long is disconnected (it resumes by cursor), so a
/// client that stops reading but keeps the connection does not hold a slot for ever.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Caught up, the reader looks again at least this often even if nothing was applied.
const IDLE_RECHECK: Duration = Duration::from_secs(1);
/// Metadata of an OUT_OF_RANGE answer: the oldest event's cursor.
pub const OLDEST_CURSOR_HEADER: &str = "x-ledger-oldest-cursor";

pub type FeedStream = Pin<Box<dyn Stream<Item = Result<pb::FeedMessage, Status>> + Send + 'static>>;

pub struct FeedService {
    pub node: Node,
    subscribers: Arc<AtomicUsize>,
}

impl FeedService {
    pub fn new(node: Node) -> FeedService {
        FeedService { node, subscribers: Default::default() }
    }
}

/// Holds one of the node's subscriber places for as long as it lives.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(count: &Arc<AtomicUsize>) -> Result<Slot, Status> {
        if count.fetch_add(1, Ordering::Relaxed) >= SUBSCRIBERS_MAX {
            count.fetch_sub(1, Ordering::Relaxed);
            return Err(Status::resource_exhausted(format!("this node serves at most {SUBSCRIBERS_MAX} feed subscribers")));
        }
        Ok(Slot(count.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whose events the caller sees: payments principals the movements of the transfers they
/// created, wallet principals the wallet's; everyone else (and everyone without authentication) all.
fn scope_of<T>(request: &Request<T>) -> Scope {
    match request.extensions().get::<Principal>() {
        Some(p) if p.role == Role::Payments => Scope::Owner(p.name.clone()),
        Some(p) if p.role == Role::Wallet => Scope::Wallet,
        _ => Scope::All,
    }
}

fn filter_from(wire: Option<pb::FeedFilter>) -> Result<Filter, Status> {
    let wire = wire.unwrap_or_default();
    let mut accounts = std::collections::BTreeSet::new();
    for raw in &wire.account_ids {
        match convert::id(raw) {
            Ok(id) if id != 0 => accounts.insert(id),
            _ => return Err(Status::invalid_argument("filter: account ids must be 16 bytes and not zero")),
        };
    }
    let filter = Filter {
        accounts,
        asset: (!wire.asset.is_empty()).then_some(wire.asset),
        account_codes: wire.account_codes.into_iter().collect(),
        transfer_codes: wire.transfer_codes.into_iter().collect(),
        kinds: wire.kinds.into_iter().collect(),
    };
    filter.check().map_err(Status::invalid_argument)?;
    Ok(filter)
}

/// The reading of one subscription: where it is, up to where, and what it keeps.
struct Reader {
    node: Node,
    cursor: u64,
    /// Without follow: the head as of the call; the stream ends there.
    until: Option<u64>,
    filter: Arc<Filter>,
    scope: Arc<Scope>,
}

impl Reader {
    /// One page from `snapshot`, read and put on the wire on a blocking thread.
    async fn page(&self, snapshot: Snapshot) -> Result<Read, Status> {
        let (after, until, filter, scope) = (self.cursor, self.until, self.filter.clone(), self.scope.clone());
        let read = tokio::task::spawn_blocking(move || {
            match snapshot.feed_page(after, until, &filter, &scope).map_err(storage)? {
                Ok(page) => to_message(&snapshot, &page).map(|message| Ok(Read { at_end: page.at_end, events: page.events.len(), message })),
                Err(expired) => Ok(Err(expired)),
            }
        });
        match read.await.map_err(|e| Status::internal(e.to_string()))?? {
            Ok(read) => Ok(read),
            Err(expired) => {
                let mut status = Status::out_of_range(format!(
                    "cursor {after} is older than the oldest event kept ({}); subscribe from {}",
                    expired.oldest,
                    expired.oldest - 1
                ));
                status.metadata_mut().insert(OLDEST_CURSOR_HEADER, MetadataValue::from(expired.oldest));
                Err(status)
            }
        }
    }

    /// Sends each page and reads the next until the client leaves, the end is reached, or an
    /// error (sent as the stream's last item).
    async fn run(mut self, mut page: Read, tx: mpsc::Sender<Result<pb::FeedMessage, Status>>) {
        loop {
            let cursor = page.message.cursor;
            if cursor > self.cursor || page.events > 0 {
                match tokio::time::timeout(STALL_TIMEOUT, tx.send(Ok(page.message))).await {
                    Ok(Ok(())) => {}
                    _ => return, // gone, or stalled: it resumes by cursor
                }
                self.cursor = cursor;
            }
            if self.until.is_some_and(|until| self.cursor >= until) {
                return;
            }
            // Read before the view: anything applied after it is past this index.
            let applied = self.node.applied_index();
            if page.at_end {
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = self.node.wait_applied_beyond(applied, IDLE_RECHECK) => {}
                }
            }
            let next = match self.node.read(Consistency::Applied).await.map_err(to_status) {
                Ok(snapshot) => self.page(snapshot).await,
                Err(status) => Err(status),
            };
            page = match next {
                Ok(page) => page,
                Err(status) => return drop(tx.send(Err(status)).await),
            };
        }
    }
}

/// A page read: its message, and whether it reached the end.
struct Read {
    message: pb::FeedMessage,
    events: usize,
    at_end: bool,
}

/// A page on the wire: each movement's entries in its asset's scale.
fn to_message(snapshot: &Snapshot, page: &Page) -> Result<pb::FeedMessage, Status> {
    let mut scales = std::collections::BTreeMap::new();
    let mut events = Vec::with_capacity(page.events.len());
    for event in &page.events {
        let mut entries = Vec::with_capacity(event.entries.len());
        if let Some(asset) = &event.asset {
            if !scales.contains_key(asset) {
                let found = snapshot.asset(asset).map_err(storage)?;
                let scale = found.ok_or_else(|| Status::data_loss(format!("a movement names a missing asset {asset}")))?.scale;
                scales.insert(asset.clone(), scale);
            }
            entries = event.entries.iter().map(|e| convert::account_entry(e, scales[asset])).collect();
        }
        events.push(pb::FeedEvent {
            cursor: event.cursor,
            timestamp_ns: event.timestamp_ns,
            kind: event.kind.clone(),
            line: event.line.clone(),
            hash: event.hash.to_vec(),
            entries,
        });
    }
    Ok(pb::FeedMessage { cursor: page.cursor, events })
}

#[tonic::async_trait]
impl Feed for FeedService {
    type SubscribeStream = FeedStream;

    async fn subscribe(&self, request: Request<pb::SubscribeRequest>) -> Result<Response<FeedStream>, Status> {
        let staleness = super::grpc::max_staleness(&request)?;
        let scope = Arc::new(scope_of(&request));
        let req = request.into_inner();
        let filter = Arc::new(filter_from(req.filter)?);
        let slot = Slot::take(&self.subscribers)?;
        // A follow serves this node's applied state as it is (it waits for more anyway); a read
        // to the end is as fresh as any other read.
        let consistency = if req.follow { Consistency::Applied } else { Consistency::from_staleness(staleness) };
        let snapshot = self.node.read(consistency).await.map_err(to_status)?;
        let until = match req.follow {
            true => None,
            false => Some(snapshot.journal_head().map_err(storage)?.seq),
        };
        let reader = Reader { node: self.node.clone(), cursor: req.from_cursor, until, filter, scope };
        // The first page here: an expired cursor is the call's answer, not a stream item.
        let first = reader.page(snapshot).await?;
        let (tx, rx) = mpsc::channel(MESSAGES_BUFFERED);
        tokio::spawn(async move {
            let _slot = slot;
            reader.run(first, tx).await;
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_is_decoded_and_bounded() {
        let wire = pb::FeedFilter { account_ids: vec![convert::id_bytes(7)], asset: "CNY".into(), account_codes: vec![1], transfer_codes: vec![2, 2], kinds: vec!["movement".into()] };
        let filter = filter_from(Some(wire)).unwrap();
        assert_eq!((filter.accounts.len(), filter.asset.as_deref(), filter.transfer_codes.len()), (1, Some("CNY"), 1));
        assert_eq!(filter_from(None).unwrap(), Filter::default());
        let zero = pb::FeedFilter { account_ids: vec![vec![0; 16]], ..Default::default() };
        assert_eq!(filter_from(Some(zero)).unwrap_err().code(), tonic::Code::InvalidArgument);
        let short = pb::FeedFilter { account_ids: vec![vec![1; 3]], ..Default::default() };
        assert_eq!(filter_from(Some(short)).unwrap_err().code(), tonic::Code::InvalidArgument);
        let kinds = pb::FeedFilter { kinds: vec!["Not A Kind".into()], ..Default::default() };
        assert_eq!(filter_from(Some(kinds)).unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn the_subscriber_places_are_bounded() {
        let count = Arc::new(AtomicUsize::new(0));
        let held: Vec<Slot> = (0..SUBSCRIBERS_MAX).map(|_| Slot::take(&count).unwrap()).collect();
        assert_eq!(Slot::take(&count).err().map(|s| s.code()), Some(tonic::Code::ResourceExhausted));
        drop(held);
        assert_eq!(count.load(Ordering::Relaxed), 0);
        assert!(Slot::take(&count).is_ok());
    }
}
