//! The read door: `Node::read(consistency)` waits for the barrier the consistency asks for and
//! then hands out one consistent view of the state, in one call (after TiKV's `async_snapshot`:
//! ReadIndex and the snapshot together). Every answer a handler builds from one `Snapshot` is of
//! one applied index; nothing outside this module opens a view of the ledger tables for a client.
//!
//! The `Snapshot` answers typed questions (an account, a transfer, a page of entries, a journal
//! range, a wallet token, a limit rule...), so the API layer knows neither the tables, their
//! keys nor their encodings.

use std::io;
use std::time::Duration;

use openraft::ReadPolicy;
use openraft::errors::{ForwardToLeader, LinearizableReadError, RaftError};
use openraft::raft::linearizable_read::{Linearizer, ReadLogId};

use ledger_core::account::history::{self, AccountChange};
use ledger_core::audit::{self, Range, RangeRequest};
use ledger_core::{feed, query};
use ledger_core::journal::{self, Head, Row};
use ledger_core::risk::{self, DailyUsage, LimitRule, LimitScope};
use ledger_core::store::{self, ReadStore, Table};
use ledger_core::types::{
    Account, AccountEntry, AccountId, Asset, Balances, IdempotencyRecord, Refunded, Transfer, TransferDetails, TransferId,
};
use ledger_core::wallet::{PostedRecord, Token, TokenId, WalletException, sync, token};

use super::{Node, ServiceError, not_leader};
use crate::raft::TypeConfig;
use crate::storage::RocksSnapshot;

/// A follower serving a read asks the leader for a read index for at most this long...
const READ_INDEX_TIMEOUT: Duration = Duration::from_secs(2);
/// ...and then waits at most this long to apply up to it; else the client is sent to the leader.
const FOLLOWER_APPLY_WAIT: Duration = Duration::from_secs(2);

/// How fresh the state a read sees must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Every write acknowledged before the call (ReadIndex). On a follower: the follower asks
    /// the leader for its read index and waits to apply up to it (a follower read); if either
    /// step is slow the client is sent to the leader instead.
    Linearizable,
    /// State at most this stale (`x-ledger-max-staleness-ms`): served at once when a ReadIndex
    /// round that started within that time completed here (`freshness`), else linearizable.
    BoundedStaleness(Duration),
    /// This node's applied state as it is, with no barrier: for a read that follows a write this
    /// node proposed (a proposal returns once it is applied here), and for watch streams, which
    /// follow this node's applied entries.
    Applied,
}

impl Consistency {
    /// Linearizable unless the client accepts bounded staleness.
    pub fn from_staleness(max_staleness: Option<Duration>) -> Consistency {
        match max_staleness {
            None => Consistency::Linearizable,
            Some(max) => Consistency::BoundedStaleness(max),
        }
    }
}

impl Node {
    /// The barrier `consistency` asks for, then one consistent view of the state taken after it.
    pub async fn read(&self, consistency: Consistency) -> Result<Snapshot, ServiceError> {
        match consistency {
            Consistency::Linearizable => self.read_barrier().await?,
            Consistency::BoundedStaleness(max) => self.bounded_read_barrier(max).await?,
            Consistency::Applied => {}
        }
        Ok(self.snapshot())
    }

    /// A view of this node's applied state now (no barrier): for this node's own tasks.
    pub(super) fn snapshot(&self) -> Snapshot {
        Snapshot { view: RocksSnapshot::new(&self.db) }
    }

    /// Waits until this node's state reflects every write acknowledged before the call (ReadIndex).
    /// On a follower: asks the leader for its read index, then waits to apply up to it; if that
    /// cannot be done quickly, the client is sent to the leader instead.
    /// Every completed barrier records its start in `freshness`.
    async fn read_barrier(&self) -> Result<(), ServiceError> {
        let started = std::time::Instant::now();
        let done = match self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => self.follower_read_barrier(&f).await,
            Err(RaftError::APIError(e)) => Err(ServiceError::NoQuorum(e.to_string())),
            Err(RaftError::Fatal(f)) => Err(ServiceError::Fatal(f.to_string())),
        };
        if done.is_ok() {
            self.freshness.confirm(started);
        }
        done
    }

    /// For a read that accepts state up to `max_staleness` old: served from this node's state at
    /// once when a ReadIndex round that started within that time completed here (`freshness`:
    /// quorum-confirmed, so a node cut off with a deposed leader is never fresh); anything else
    /// is a linearizable read, which confirms freshness for the reads that follow.
    async fn bounded_read_barrier(&self, max_staleness: Duration) -> Result<(), ServiceError> {
        if self.freshness.fresh_within(max_staleness) {
            return Ok(());
        }
        self.read_barrier().await
    }

    async fn follower_read_barrier(&self, f: &ForwardToLeader<TypeConfig>) -> Result<(), ServiceError> {
        let (Some(leader_id), Some(leader)) = (f.leader_id, f.leader_node.as_ref()) else {
            return Err(not_leader(f));
        };
        let read_log_id = match self.peers.read_index(leader_id, leader, READ_INDEX_TIMEOUT).await {
            Ok(id) => id,
            Err(e) => {
                tracing::debug!(error = %e, "follower read: no read index; redirecting");
                return Err(not_leader(f));
            }
        };
        // The read index is a committed log id of the leader's term: once this node has applied
        // that index, its state holds every write acknowledged before the read began.
        let linearizer = Linearizer::new(self.id, ReadLogId::from_log_id(read_log_id), None);
        match linearizer.try_await_ready(&self.raft, Some(FOLLOWER_APPLY_WAIT)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(state)) => {
                tracing::debug!(read_index = state.read_log_id().index(), "follower read: applying too slowly; redirecting");
                Err(not_leader(f))
            }
            Err(fatal) => Err(ServiceError::Fatal(fatal.to_string())),
        }
    }
}

/// What a `Snapshot` can be taken over: anything ledger-core reads (`ReadStore`): the node's
/// RocksDB view, or an in-memory ledger (`MemStore`: property tests, fuzzing). It adds no
/// method: a holder of a `Snapshot` asks its typed questions, never for raw keys.
pub trait View: ReadStore {}
impl<T: ReadStore> View for T {}

/// One consistent, read-only view of the ledger state, handed out by `Node::read` after its
/// barrier: one RocksDB snapshot, owned, so it can move to a blocking task (an audit export).
/// While a Raft snapshot is being installed every answer is `ErrorKind::WouldBlock`.
pub struct Snapshot<V = RocksSnapshot> {
    view: V,
}

impl<V: View> Snapshot<V> {
    /// The typed questions over another view (an in-memory ledger); the node's own views come
    /// from `Node::read`.
    pub fn over(view: V) -> Snapshot<V> {
        Snapshot { view }
    }

    pub fn asset(&self, code: &str) -> io::Result<Option<Asset>> {
        store::get_asset(&self.view, code)
    }

    pub fn account(&self, id: AccountId) -> io::Result<Option<Account>> {
        store::get_account(&self.view, id)
    }

    pub fn account_id_by_external_ref(&self, external_ref: &str) -> io::Result<Option<AccountId>> {
        store::account_id_by_external_ref(&self.view, external_ref)
    }

    pub fn transfer(&self, id: TransferId) -> io::Result<Option<Transfer>> {
        store::get_transfer(&self.view, id)
    }

    /// What a transfer records beside its row (refund link, reference, metadata), if any.
    pub fn transfer_details(&self, id: TransferId) -> io::Result<Option<TransferDetails>> {
        store::get_transfer_details(&self.view, id)
    }

    /// What the refunds of a posted transfer took, per leg (none yet: `None`).
    pub fn refunded(&self, id: TransferId) -> io::Result<Option<Refunded>> {
        store::get_refunded(&self.view, id)
    }

    /// The record of an idempotency key: what the transfer submitted with it got.
    pub fn idempotency(&self, key: &str) -> io::Result<Option<IdempotencyRecord>> {
        store::get_idempotency(&self.view, key)
    }

    /// Up to `limit` of an account's entries with `after_ns < timestamp < before_ns`, in time
    /// order (newest first when `reverse`).
    pub fn entries(
        &self,
        account_id: AccountId,
        after_ns: Option<u64>,
        before_ns: Option<u64>,
        limit: usize,
        reverse: bool,
    ) -> io::Result<Vec<AccountEntry>> {
        store::account_entries(&self.view, account_id, after_ns, before_ns, limit, reverse)
    }

    /// An account's balances after every entry at or before `timestamp_ns`.
    pub fn balances_at(&self, account_id: AccountId, timestamp_ns: u64) -> io::Result<Balances> {
        audit::balances_at(&self.view, account_id, timestamp_ns)
    }

    /// Up to `limit` accounts with an id above `after_id`, in id order, that existed at
    /// `timestamp_ns`, and the id to continue after (None: no more).
    pub fn accounts_at(&self, after_id: Option<AccountId>, timestamp_ns: u64, limit: usize) -> io::Result<(Vec<Account>, Option<AccountId>)> {
        audit::accounts_page(&self.view, after_id, timestamp_ns, limit)
    }

    pub fn journal_head(&self) -> io::Result<Head> {
        journal::head(&self.view)
    }

    /// The journal lines a request by sequence and/or time names.
    pub fn journal_range(&self, request: RangeRequest) -> io::Result<Range> {
        audit::resolve(&self.view, request)
    }

    /// Up to `limit` journal lines from `from_seq` through `to_seq`, in order.
    pub fn journal_lines(&self, from_seq: u64, to_seq: u64, limit: usize) -> io::Result<Vec<(u64, Row)>> {
        audit::lines(&self.view, from_seq, to_seq, limit)
    }

    /// One page of the change feed: the events after `after` (through `until`; None: the newest
    /// line) that pass `filter` and `scope`, or the oldest cursor kept when `after` is older.
    pub fn feed_page(&self, after: u64, until: Option<u64>, filter: &feed::Filter, scope: &feed::Scope) -> io::Result<Result<feed::Page, feed::CursorExpired>> {
        feed::page(&self.view, after, until, filter, scope)
    }

    /// An account's balances after each change in `from..=to` (`ledger_core::query`), a page of
    /// at most `limit`, and the cursor of the next.
    pub fn account_history(&self, account_id: AccountId, range: (u64, u64), cursor: Option<u64>, limit: usize, reverse: bool) -> io::Result<(Vec<query::BalanceChange>, Option<u64>)> {
        query::account_history(&self.view, account_id, range, cursor, limit, reverse)
    }

    pub fn wallet_token(&self, token_id: TokenId) -> io::Result<Option<Token>> {
        token::get_token(&self.view, token_id)
    }

    /// The posted offline record of a token at `sequence` (None: not posted).
    pub fn wallet_record(&self, token_id: TokenId, sequence: u64) -> io::Result<Option<PostedRecord>> {
        sync::get_record(&self.view, token_id, sequence)
    }

    /// Up to `limit` of a token's refused offline records, in arrival order.
    pub fn wallet_exceptions(&self, token_id: TokenId, limit: usize) -> io::Result<Vec<WalletException>> {
        sync::exceptions(&self.view, token_id, limit)
    }

    /// The limit rule that applies to an account: its own, else its asset and code's.
    pub fn limit_rule(&self, account_id: AccountId) -> io::Result<Option<LimitRule>> {
        risk::rule_for(&self.view, account_id)
    }

    /// Whether the account has a limit rule of its own (not its asset and code's).
    pub fn has_own_limit_rule(&self, account_id: AccountId) -> io::Result<bool> {
        let key = risk::scope_key(&LimitScope::Account(account_id));
        Ok(store::get_typed::<LimitRule>(&self.view, Table::Limits, &key)?.is_some())
    }

    /// What an account has debited on `day` (its rule's local day), for its daily limits.
    pub fn daily_usage(&self, account_id: AccountId, day: i64) -> io::Result<DailyUsage> {
        risk::usage(&self.view, account_id, day)
    }

    /// Every risk rule of `risk::rules`, by id.
    pub fn risk_rules(&self) -> io::Result<Vec<risk::rules::Rule>> {
        risk::rules::all(&self.view)
    }

    /// An account's changes (settings, external references) after `after_ns`, oldest first.
    pub fn account_changes(&self, account_id: AccountId, after_ns: Option<u64>, limit: usize) -> io::Result<Vec<AccountChange>> {
        history::list(&self.view, account_id, after_ns, limit)
    }

    /// The earliest time a hold expires or a wallet token's hold is due for release.
    pub(super) fn next_expiry_ns(&self) -> io::Result<Option<u64>> {
        let mut earliest: Option<u64> = None;
        for table in [Table::PendingExpiry, Table::WalletReleases] {
            let first = self.view.scan(table, &[], &[0xff; 25], 1, false)?;
            if let Some((at, _)) = first.first().and_then(|(k, _)| store::expiry_key_parts(k)) {
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
        }
        Ok(earliest)
    }
}
