//! The client's domain types: what callers build and read. Ids are `u128` (ledger-core's
//! `AccountId`, `TransferId`), amounts `Amount` (ledger-core's: u128 minor units),
//! timestamps `u64` nanoseconds since the Unix epoch (assigned by the Raft leader, unique).
//! Conversion to and from the proto messages lives in `convert.rs`.

use crate::ResultCode;
use crate::amount::Amount;
pub use ledger_core::types::{AccountId, TransferId};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAsset {
    /// 1..=16 of A-Z 0-9 _, e.g. "CNY".
    pub code: String,
    /// Decimal places of the minor unit, 0..=18.
    pub scale: u32,
}

impl NewAsset {
    pub fn new(code: impl Into<String>, scale: u32) -> NewAsset {
        NewAsset {
            code: code.into(),
            scale,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetRecord {
    pub code: String,
    pub scale: u32,
    pub timestamp_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewAccount {
    pub id: AccountId,
    pub asset: String,
    /// Account type chosen by the application. Not zero.
    pub code: u32,
    pub debits_must_not_exceed_credits: bool,
    pub credits_must_not_exceed_debits: bool,
    /// Only with `debits_must_not_exceed_credits`: how far debits may exceed credits.
    pub overdraft_limit: Option<Amount>,
    pub metadata: BTreeMap<String, String>,
    pub external_ref: Option<String>,
}

impl NewAccount {
    /// A plain account with no balance constraints; set the other fields with struct update.
    pub fn new(id: AccountId, asset: impl Into<String>, code: u32) -> NewAccount {
        NewAccount {
            id,
            asset: asset.into(),
            code,
            ..NewAccount::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    Active,
    /// No debits; credits are accepted.
    Frozen,
    /// Nothing; only allowed when every balance is zero. Final.
    Closed,
}

impl AccountStatus {
    pub fn name(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Frozen => "frozen",
            AccountStatus::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balances {
    pub debits_posted: Amount,
    pub credits_posted: Amount,
    pub debits_pending: Amount,
    pub credits_pending: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub account: NewAccount,
    pub status: AccountStatus,
    pub balances: Balances,
    pub timestamp_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leg {
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: Amount,
}

impl Leg {
    pub fn new(debit: AccountId, credit: AccountId, amount: Amount) -> Leg {
        Leg {
            debit,
            credit,
            amount,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TransferKind {
    /// Moves money at once.
    #[default]
    Posted,
    /// Holds money in the pending balances until posted, voided or expired.
    Pending,
    /// Posts a pending transfer (all of it, or `post_amounts`).
    PostPending,
    /// Releases a pending transfer.
    VoidPending,
}

impl TransferKind {
    pub fn name(self) -> &'static str {
        match self {
            TransferKind::Posted => "posted",
            TransferKind::Pending => "pending",
            TransferKind::PostPending => "post_pending",
            TransferKind::VoidPending => "void_pending",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewTransfer {
    pub id: TransferId,
    /// A retry with the same key and content returns the first result and moves nothing.
    pub idempotency_key: String,
    /// Required for POSTED and PENDING; may be empty for POST/VOID.
    pub asset: String,
    /// 1..=64 legs, all applied or none. Empty for POST_PENDING / VOID_PENDING.
    pub legs: Vec<Leg>,
    pub kind: TransferKind,
    pub pending_id: Option<TransferId>,
    /// PENDING only; 0 means no timeout.
    pub timeout_ms: u64,
    /// POST_PENDING only: one amount per leg of the pending transfer; empty posts everything.
    pub post_amounts: Vec<Amount>,
    /// Free for the application (transfer type).
    pub code: u32,
    /// Refunds this earlier posted transfer (POSTED only; legs reverse the original's accounts;
    /// all refunds of it never exceed it).
    pub refund_of: Option<TransferId>,
    /// The caller's reference (e.g. the merchant's order number): at most 64 bytes, not unique.
    pub reference: String,
    /// At most 16 pairs; keys 1..=64 bytes, values at most 256.
    pub metadata: std::collections::BTreeMap<String, String>,
    /// Linked with the next transfer of the same request: the chain commits all or none.
    /// Only through `create_transfers` (a batcher refuses it: its neighbours are other callers').
    pub linked: bool,
}

impl NewTransfer {
    pub fn posted(
        id: TransferId,
        idempotency_key: impl Into<String>,
        asset: impl Into<String>,
        legs: Vec<Leg>,
    ) -> NewTransfer {
        NewTransfer {
            id,
            idempotency_key: idempotency_key.into(),
            asset: asset.into(),
            legs,
            kind: TransferKind::Posted,
            ..NewTransfer::default()
        }
    }

    pub fn pending(
        id: TransferId,
        idempotency_key: impl Into<String>,
        asset: impl Into<String>,
        legs: Vec<Leg>,
        timeout_ms: u64,
    ) -> NewTransfer {
        NewTransfer {
            kind: TransferKind::Pending,
            timeout_ms,
            ..NewTransfer::posted(id, idempotency_key, asset, legs)
        }
    }

    /// Posts `pending_id`: all of it when `post_amounts` is empty, else one amount per leg.
    pub fn post(
        id: TransferId,
        idempotency_key: impl Into<String>,
        pending_id: TransferId,
        post_amounts: Vec<Amount>,
    ) -> NewTransfer {
        NewTransfer {
            id,
            idempotency_key: idempotency_key.into(),
            kind: TransferKind::PostPending,
            pending_id: Some(pending_id),
            post_amounts,
            ..NewTransfer::default()
        }
    }

    pub fn void(id: TransferId, idempotency_key: impl Into<String>, pending_id: TransferId) -> NewTransfer {
        NewTransfer {
            id,
            idempotency_key: idempotency_key.into(),
            kind: TransferKind::VoidPending,
            pending_id: Some(pending_id),
            ..NewTransfer::default()
        }
    }

    pub fn with_code(mut self, code: u32) -> NewTransfer {
        self.code = code;
        self
    }

    /// This transfer refunds `original` (an earlier posted transfer).
    pub fn refunding(mut self, original: TransferId) -> NewTransfer {
        self.refund_of = Some(original);
        self
    }

    pub fn with_reference(mut self, reference: impl Into<String>) -> NewTransfer {
        self.reference = reference.into();
        self
    }

    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> NewTransfer {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Links this transfer to the next one of the request (all or none).
    pub fn linked(mut self) -> NewTransfer {
        self.linked = true;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PendingState {
    None,
    Pending,
    Posted,
    Voided,
    Expired,
}

impl PendingState {
    pub fn name(self) -> &'static str {
        match self {
            PendingState::None => "none",
            PendingState::Pending => "pending",
            PendingState::Posted => "posted",
            PendingState::Voided => "voided",
            PendingState::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    pub transfer: NewTransfer,
    pub timestamp_ns: u64,
    /// For PENDING transfers: where the hold is now.
    pub pending_state: PendingState,
    /// For PENDING transfers with a timeout; 0 otherwise.
    pub expires_at_ns: u64,
    /// For POST_PENDING: the legs as posted (amounts actually moved).
    pub posted_legs: Vec<Leg>,
    /// The principal that created it; empty for the ledger's own transfers and without
    /// authentication. A `payments` principal only ever sees its own.
    pub owner: String,
    /// For posted money (POSTED, POST_PENDING): what its refunds took, and what they may still
    /// take. `None` for other kinds.
    pub refunded: Option<Amount>,
    pub refundable: Option<Amount>,
}

/// What an idempotency key is bound to (`get_transfer_by_idempotency_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The result first recorded for the key (a failed transfer keeps its failure).
    pub code: ResultCode,
    pub transfer_id: TransferId,
    pub timestamp_ns: u64,
    /// Present when `code` is OK.
    pub transfer: Option<TransferRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    Posted,
    Pending,
    PostPending,
    VoidPending,
    ExpirePending,
}

impl EntryKind {
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Posted => "posted",
            EntryKind::Pending => "pending",
            EntryKind::PostPending => "post_pending",
            EntryKind::VoidPending => "void_pending",
            EntryKind::ExpirePending => "expire_pending",
        }
    }
}

/// One change to one account's balances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEntry {
    pub account_id: AccountId,
    pub timestamp_ns: u64,
    pub transfer_id: TransferId,
    pub leg_index: u32,
    pub kind: EntryKind,
    /// True when the account is the leg's debit side.
    pub is_debit: bool,
    pub amount: Amount,
    pub balances_after: Balances,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntriesPage {
    pub entries: Vec<AccountEntry>,
    /// Pass as `cursor_timestamp_ns` for the next page; `None` when there is none.
    pub next_cursor_timestamp_ns: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceAt {
    pub balances: Balances,
    /// Timestamp of the last entry at or before the asked time; `None` when there is none.
    pub as_of_timestamp_ns: Option<u64>,
}

/// The outcome of one item of a batch write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteResult {
    /// Position of the item in the request (for the batcher: always 0, the caller's own item).
    pub index: u32,
    pub code: ResultCode,
    /// Timestamp of the created object (also on EXISTS and replays: the original one).
    pub timestamp_ns: u64,
    /// Transfers: the leg that broke a rule, when a leg did.
    pub leg_index: Option<u32>,
    /// Transfers: recorded earlier for the same key and content; nothing moved now.
    pub replay: bool,
    /// Transfers: the id the idempotency key is bound to; 0 when the server sent none
    /// (asset results, older servers).
    pub id: u128,
}

impl WriteResult {
    /// OK or EXISTS (a replay carries the first result's code, so a replayed OK is a success).
    pub fn is_success(&self) -> bool {
        self.code.is_success()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub node_id: u64,
    pub address: String,
    /// "leader", "follower", "candidate", "learner", "shutdown".
    pub role: String,
    pub voter: bool,
    /// Where peers reach the node (`address` is where clients do).
    pub peer_address: String,
    /// Known only from the leader: the last log index the leader knows the node holds, and how
    /// many entries that is behind the leader's log.
    pub matched_index: Option<u64>,
    pub lag_entries: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    pub node_id: u64,
    pub role: String,
    pub term: u64,
    pub leader_id: Option<u64>,
    pub leader_address: String,
    pub last_log_index: u64,
    pub committed_index: u64,
    pub applied_index: u64,
    pub snapshot_index: u64,
    pub nodes: Vec<NodeStatus>,
    /// Log entries up to this index are deleted (covered by the snapshot).
    pub purged_index: u64,
    /// Set when the node's Raft stopped (e.g. corrupted storage): it serves nothing else.
    pub error: Option<String>,
    /// Ids the node saw as members that are members no more: never to be reused.
    pub retired_node_ids: Vec<u64>,
}

/// The outcome of a membership change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipChange {
    /// False when the cluster already was as asked (e.g. a retry of a change that succeeded).
    pub changed: bool,
    /// The membership afterwards.
    pub nodes: Vec<NodeStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupTaken {
    /// Where the node wrote it (on the node's filesystem).
    pub dir: String,
    pub applied_index: u64,
    /// What `GetStateHash` answers on a node restored from it.
    pub state_hash: String,
    pub files: u64,
    pub bytes: u64,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotTaken {
    pub snapshot_index: u64,
    /// 0: nothing purged.
    pub purged_index: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateHash {
    pub applied_index: u64,
    /// Hex SHA-256 over every key and value of the replicated state, in key order.
    pub state_hash: String,
}
