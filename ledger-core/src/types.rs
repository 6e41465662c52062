//! The ledger's records (what is stored) and command inputs (what is proposed through Raft).
//! Both are serialized with postcard: field order is the format, so append fields only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::amount::DecimalInput;

pub type AccountId = u128;
pub type TransferId = u128;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    pub code: String,
    pub scale: u8,
    pub timestamp_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountStatus {
    Active,
    /// No debits; credits are still accepted.
    Frozen,
    /// Nothing at all. Final.
    Closed,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    pub debits_posted: u128,
    pub credits_posted: u128,
    pub debits_pending: u128,
    pub credits_pending: u128,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub asset: String,
    pub code: u32,
    pub debits_must_not_exceed_credits: bool,
    pub credits_must_not_exceed_debits: bool,
    pub overdraft_limit_minor: u128,
    pub metadata: BTreeMap<String, String>,
    pub external_ref: Option<String>,
    pub status: AccountStatus,
    pub status_reason: String,
    pub balances: Balances,
    pub timestamp_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferKind {
    Posted,
    Pending,
    PostPending,
    VoidPending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingState {
    /// Not a two-phase transfer.
    None,
    Pending,
    Posted,
    Voided,
    Expired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    pub debit_account_id: AccountId,
    pub credit_account_id: AccountId,
    pub amount_minor: u128,
}

/// A stored transfer. For POST/VOID the legs are the legs as posted (void: amounts zero).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub id: TransferId,
    pub idempotency_key: String,
    pub asset: String,
    pub kind: TransferKind,
    pub legs: Vec<Leg>,
    pub pending_id: TransferId,
    pub timeout_ms: u64,
    pub code: u32,
    pub timestamp_ns: u64,
    pub pending_state: PendingState,
    /// 0 when there is no timeout.
    pub expires_at_ns: u64,
    /// The principal that created it (`TransferInput::owner`); empty for the ledger's own
    /// transfers (wallet holds, offline spends) and when authentication is off.
    pub owner: String,
}

/// What an idempotency key is bound to: the content it was first used with and the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// SHA-256 of the canonical encoding of the transfer input.
    pub fingerprint: [u8; 32],
    pub transfer_id: TransferId,
    pub code: super::result::ResultCode,
    pub leg_index: Option<u8>,
    pub timestamp_ns: u64,
    /// The principal that used the key first (`TransferInput::owner`).
    pub owner: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    Posted,
    Pending,
    PostPending,
    VoidPending,
    ExpirePending,
}

/// One change to one account's balances. Keyed by (account, timestamp, leg, side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEntry {
    pub account_id: AccountId,
    pub timestamp_ns: u64,
    pub transfer_id: TransferId,
    pub leg_index: u8,
    pub kind: EntryKind,
    pub is_debit: bool,
    pub amount_minor: u128,
    pub balances_after: Balances,
}

// ---- Command inputs: decoded from the API, proposed through Raft, validated again on apply. ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetInput {
    pub code: String,
    pub scale: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInput {
    pub id: AccountId,
    pub asset: String,
    pub code: u32,
    pub debits_must_not_exceed_credits: bool,
    pub credits_must_not_exceed_debits: bool,
    pub overdraft_limit: Option<DecimalInput>,
    pub metadata: BTreeMap<String, String>,
    pub external_ref: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegInput {
    pub debit_account_id: AccountId,
    pub credit_account_id: AccountId,
    pub amount: DecimalInput,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferInput {
    pub id: TransferId,
    pub idempotency_key: String,
    /// Empty for POST/VOID when not checked.
    pub asset: String,
    pub kind: TransferKind,
    pub legs: Vec<LegInput>,
    pub pending_id: TransferId,
    pub timeout_ms: u64,
    pub post_amounts: Vec<DecimalInput>,
    pub code: u32,
    /// Who creates it: the authenticated principal's name, set by the API, never by the caller
    /// (empty when authentication is off). Part of the idempotency fingerprint, so a key is
    /// bound to its principal: another principal reusing it gets IDEMPOTENCY_KEY_CONFLICT and
    /// never the first result. A `payments` principal reads only the transfers it owns.
    pub owner: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChangeInput {
    pub account_id: AccountId,
    pub status: AccountStatus,
    pub reason: String,
    /// Who asked: the authenticated principal as the API saw it (`name (role)`), or empty when
    /// authentication is off. Recorded in the audit journal.
    pub actor: String,
}

/// A call refused by authentication or authorization, for the audit journal. Proposed by the
/// node that refused it (its leader); nothing but the journal changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessDeniedInput {
    /// Empty: no token or an unknown one.
    pub principal: String,
    pub role: String,
    /// The gRPC method path, e.g. `/ledger.v1.Ledger/CreateTransfers`.
    pub method: String,
    pub reason: String,
}

/// The operation of one replicated command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    CreateAssets(Vec<AssetInput>),
    CreateAccounts(Vec<AccountInput>),
    CreateTransfers(Vec<TransferInput>),
    SetAccountStatus(Vec<StatusChangeInput>),
    /// Drives expiry of pending transfers when no other write comes.
    Tick,
    /// Offline wallets (ledger::wallet).
    IssueTokens(Vec<super::wallet::IssueTokenInput>),
    SyncOfflineRecords(Vec<super::wallet::SyncInput>),
    RevokeTokens(Vec<super::wallet::RevokeTokenInput>),
    /// Refused calls, journaled (appended: postcard enum tags of the variants above stay).
    RecordAccessDenied(Vec<AccessDeniedInput>),
    /// Account risk limits (ledger::risk).
    SetLimits(Vec<super::risk::LimitInput>),
    /// The token and device blocklist (ledger::wallet::blocklist).
    SetBlocklist(Vec<super::wallet::blocklist::BlockInput>),
    /// Account settings after creation: metadata, overdraft limit, code (ledger::account::update).
    UpdateAccounts(Vec<super::account::update::AccountUpdateInput>),
    /// Moving or releasing external references (ledger::account::rebind).
    RebindExternalRefs(Vec<super::account::rebind::RebindInput>),
    /// Risk rules on credits, balances, windows and transfer codes (ledger::risk::rules).
    SetRiskRules(Vec<super::risk::rules::RuleInput>),
    /// Transfers with options `TransferInput` has no field for (refunds, references, metadata,
    /// linked groups): `extras[i]` belongs to `items[i]` (a missing one is empty). The API sends
    /// it only when a request carries an option, so plain transfers keep `CreateTransfers`.
    CreateTransfersWith { items: Vec<TransferInput>, extras: Vec<TransferExtras> },
}

/// One replicated command: the unit the state machine applies atomically per item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Wall-clock time read by the leader when it proposed. The state machine makes timestamps
    /// strictly increasing from it, so apply never reads a clock.
    pub proposed_at_ns: u64,
    pub operation: Operation,
}

impl Command {
    pub fn item_count(&self) -> usize {
        match &self.operation {
            Operation::CreateAssets(v) => v.len(),
            Operation::CreateAccounts(v) => v.len(),
            Operation::CreateTransfers(v) => v.len(),
            Operation::SetAccountStatus(v) => v.len(),
            Operation::Tick => 0,
            Operation::IssueTokens(v) => v.len(),
            // A result per record and one for the re-issue of each sync.
            Operation::SyncOfflineRecords(v) => v.iter().map(|s| s.records.len() + 1).sum(),
            Operation::RevokeTokens(v) => v.len(),
            Operation::RecordAccessDenied(v) => v.len(),
            Operation::SetLimits(v) => v.len(),
            Operation::SetBlocklist(v) => v.len(),
            Operation::UpdateAccounts(v) => v.len(),
            Operation::RebindExternalRefs(v) => v.len(),
            Operation::SetRiskRules(v) => v.len(),
            Operation::CreateTransfersWith { items, .. } => items.len(),
        }
    }
}

/// How a command shows in logs (openraft's log entries are `Display`).
impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match &self.operation {
            Operation::CreateAssets(_) => "create_assets",
            Operation::CreateAccounts(_) => "create_accounts",
            Operation::CreateTransfers(_) => "create_transfers",
            Operation::SetAccountStatus(_) => "set_account_status",
            Operation::Tick => "tick",
            Operation::IssueTokens(_) => "issue_tokens",
            Operation::SyncOfflineRecords(_) => "sync_offline_records",
            Operation::RevokeTokens(_) => "revoke_tokens",
            Operation::RecordAccessDenied(_) => "record_access_denied",
            Operation::SetLimits(_) => "set_limits",
            Operation::SetBlocklist(_) => "set_blocklist",
            Operation::UpdateAccounts(_) => "update_accounts",
            Operation::RebindExternalRefs(_) => "rebind_external_refs",
            Operation::SetRiskRules(_) => "set_risk_rules",
            Operation::CreateTransfersWith { .. } => "create_transfers_with",
        };
        write!(f, "{name}(items={}, proposed_at_ns={})", self.item_count(), self.proposed_at_ns)
    }
}

// ---- Transfer extras (format 4): beside `TransferInput` and `Transfer`, whose layouts stay. ----

/// What a transfer records beyond its `Transfer` row: stored in `Table::TransferDetails` under
/// its id only when not empty, so a transfer created without extras reads exactly as before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferDetails {
    /// The earlier posted transfer this one refunds (0: not a refund).
    pub refund_of: TransferId,
    /// The caller's reference (e.g. the merchant's order number): at most
    /// `TRANSFER_REFERENCE_BYTES_MAX` bytes, not unique.
    pub reference: String,
    /// At most `METADATA_ENTRIES_MAX` pairs, with the account metadata's key and value bounds.
    pub metadata: BTreeMap<String, String>,
}

impl TransferDetails {
    pub fn is_empty(&self) -> bool {
        self.refund_of == 0 && self.reference.is_empty() && self.metadata.is_empty()
    }
}

/// The options of one item of `Operation::CreateTransfersWith`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferExtras {
    pub details: TransferDetails,
    /// Linked with the next item (TigerBeetle's `flags.linked`): a chain of linked items and the
    /// first unlinked one after them commits all or none.
    pub linked: bool,
}

impl TransferExtras {
    pub fn is_empty(&self) -> bool {
        self.details.is_empty() && !self.linked
    }
}

/// How much of a posted transfer its refunds have taken, per leg of the original (the leg's
/// amount is the cap). Kept in `Table::Refunds` under the original's id from its first refund.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refunded {
    pub legs_minor: Vec<u128>,
    /// Refunds accepted.
    pub count: u32,
}
