//! The change feed (`ledger.v1.Feed/Subscribe`): every committed event after a cursor, in commit
//! order. A [`FeedSubscription`] remembers the cursor of the last page it returned and, when the
//! stream breaks (a node killed, a connection reset), subscribes again from it on the next
//! endpoint that answers: the caller sees every event once, in order, across fail-overs. Store
//! [`FeedSubscription::cursor`] with what you did with the events to resume after a restart.

use futures::StreamExt;
use ledger_proto::api;

use crate::client::{CallKind, LedgerClient, protocol, stream_error};
use crate::convert;
use crate::error::ClientError;
use crate::ids::encode_id;
use crate::types::AccountEntry;

/// Which events to receive; every set part must match, any value of a list. Empty: all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedFilter {
    /// Events naming any of these accounts (≤ 256).
    pub accounts: Vec<u128>,
    pub asset: Option<String>,
    /// Events naming an account of any of these codes (≤ 256).
    pub account_codes: Vec<u32>,
    /// Movements of any of these transfer codes (≤ 256).
    pub transfer_codes: Vec<u32>,
    /// Journal event types, e.g. `movement`, `account_created` (≤ 64).
    pub kinds: Vec<String>,
}

/// One committed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEvent {
    /// Its journal sequence: resume after it with `subscribe(cursor, ..)`.
    pub cursor: u64,
    pub timestamp_ns: u64,
    /// The journal event type (`movement`, `account_created`, … or a type newer than this client).
    pub kind: String,
    /// The journal line, verbatim (canonical JSON; README "Audit and export").
    pub line: String,
    /// The chain hash after the line.
    pub hash: Vec<u8>,
    /// A movement's balance entries with the balances after each (empty for other events).
    pub entries: Vec<AccountEntry>,
}

/// What one message brought: the events, and the cursor every matching event up to which has
/// now been delivered (it moves even when nothing matched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedPage {
    pub cursor: u64,
    pub events: Vec<FeedEvent>,
}

type Messages = tonic::Streaming<api::FeedMessage>;

/// An open subscription; see the module documentation.
pub struct FeedSubscription {
    client: LedgerClient,
    request: api::SubscribeRequest,
    stream: Option<Messages>,
    cursor: u64,
    /// Reconnections since the last page: bounded by the client's `max_retries`.
    reconnects: u32,
}

impl std::fmt::Debug for FeedSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedSubscription").field("cursor", &self.cursor).field("follow", &self.request.follow).finish()
    }
}

impl LedgerClient {
    /// Subscribes to the events after `from_cursor` (0: from the first). With `follow` the
    /// subscription waits for new events for ever; without, it ends at the head as of the call.
    /// A cursor older than the oldest event kept is `Rejected` with `OutOfRange` at once.
    pub async fn subscribe(&self, from_cursor: u64, filter: &FeedFilter, follow: bool) -> Result<FeedSubscription, ClientError> {
        let request = api::SubscribeRequest { from_cursor, follow, filter: Some(filter_to_proto(filter)) };
        let mut subscription = FeedSubscription { client: self.clone(), request, stream: None, cursor: from_cursor, reconnects: 0 };
        subscription.open().await?;
        Ok(subscription)
    }
}

impl FeedSubscription {
    /// The cursor of the last page returned: every matching event up to it was delivered.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    async fn open(&mut self) -> Result<(), ClientError> {
        let request = api::SubscribeRequest { from_cursor: self.cursor, ..self.request.clone() };
        let stream = self
            .client
            .feed_call("Subscribe", CallKind::Stream, request, |mut grpc, request| async move { grpc.subscribe(request).await })
            .await?;
        self.stream = Some(stream);
        Ok(())
    }

    /// The next page. `None`: the subscription ended (without `follow`, at the head). A broken
    /// stream is resumed from the cursor on any endpoint (after the client's retries, the error).
    pub async fn next(&mut self) -> Option<Result<FeedPage, ClientError>> {
        loop {
            let Some(stream) = self.stream.as_mut() else {
                if let Err(error) = self.open().await {
                    return Some(Err(error));
                }
                continue;
            };
            match stream.next().await {
                Some(Ok(message)) => {
                    self.reconnects = 0;
                    match self.accept(message) {
                        Ok(Some(page)) => return Some(Ok(page)),
                        Ok(None) => continue,
                        Err(error) => return Some(Err(error)),
                    }
                }
                Some(Err(status)) => {
                    let error = stream_error(&status);
                    if matches!(error, ClientError::Rejected { .. }) || !self.may_reconnect() {
                        return Some(Err(error));
                    }
                    tracing::debug!(cursor = self.cursor, error = %error, "feed stream broke; resubscribing");
                }
                // The server ended it: at the head without follow; else (a node stopping, a
                // stalled reader cut off) resubscribe.
                None if !self.request.follow => return None,
                None if !self.may_reconnect() => return Some(Err(ClientError::Unavailable { attempts: self.reconnects, last_error: "the feed stream kept ending".into() })),
                None => {}
            }
            self.stream = None;
        }
    }

    fn may_reconnect(&mut self) -> bool {
        self.reconnects += 1;
        self.reconnects <= self.client.config().max_retries.max(1)
    }

    /// A message as a page, its events past the cursor only (a resume never repeats one);
    /// `None` when it moves nothing.
    fn accept(&mut self, message: api::FeedMessage) -> Result<Option<FeedPage>, ClientError> {
        if message.cursor <= self.cursor && message.events.iter().all(|e| e.cursor <= self.cursor) {
            return Ok(None);
        }
        let mut events = Vec::with_capacity(message.events.len());
        for event in message.events.into_iter().filter(|e| e.cursor > self.cursor) {
            let entries = event.entries.into_iter().map(|e| convert::entry_from_proto(e).map_err(protocol)).collect::<Result<_, _>>()?;
            events.push(FeedEvent { cursor: event.cursor, timestamp_ns: event.timestamp_ns, kind: event.kind, line: event.line, hash: event.hash, entries });
        }
        if events.windows(2).any(|w| w[1].cursor <= w[0].cursor) || events.last().is_some_and(|e| e.cursor > message.cursor) {
            return Err(ClientError::protocol("feed events out of cursor order"));
        }
        self.cursor = self.cursor.max(message.cursor);
        Ok(Some(FeedPage { cursor: self.cursor, events }))
    }
}

fn filter_to_proto(filter: &FeedFilter) -> api::FeedFilter {
    api::FeedFilter {
        account_ids: filter.accounts.iter().map(|id| encode_id(*id)).collect(),
        asset: filter.asset.clone().unwrap_or_default(),
        account_codes: filter.account_codes.clone(),
        transfer_codes: filter.transfer_codes.clone(),
        kinds: filter.kinds.clone(),
    }
}
