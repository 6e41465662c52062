//! The audit journal: every committed state change as one line of canonical JSON, numbered
//! without gaps and hash-chained, `hash_n = SHA-256(hash_{n-1} ‖ line_n)` from 32 zero bytes.
//!
//! Written in the same write batch as the change it describes, from the same deterministic
//! inputs, so the chain is identical on every replica and survives snapshots. The line bytes are
//! what an auditor hashes: export writes them verbatim, so a verifier in any language needs
//! only SHA-256 and the exact line, never this crate's encoding. Lines are never deleted.

use std::collections::BTreeMap;
use std::io;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::amount::format_minor;
use super::store::{self, Store, Table};
use super::types::*;
use super::wallet::{Token, TokenStatus};

pub type Hash = [u8; 32];
/// The hash before the first line.
pub const GENESIS_HASH: Hash = [0; 32];

/// The newest line: the number an auditor pins together with its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: Hash,
    pub timestamp_ns: u64,
}

impl Head {
    pub const EMPTY: Head = Head { seq: 0, hash: GENESIS_HASH, timestamp_ns: 0 };
}

/// One stored line and the chain hash after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub hash: Hash,
    /// The line's own `timestamp_ns`, kept beside it so range lookups need not parse JSON.
    pub timestamp_ns: u64,
    pub line: String,
}

const META_HEAD: &[u8] = b"journal_head";

pub fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub fn head(store: &impl store::ReadStore) -> io::Result<Head> {
    Ok(store::get_typed(store, Table::Meta, META_HEAD)?.unwrap_or(Head::EMPTY))
}

pub fn get_row(store: &impl store::ReadStore, seq: u64) -> io::Result<Option<Row>> {
    store::get_typed(store, Table::Journal, &seq_key(seq))
}

/// The next link of the chain.
pub fn chain(previous: &Hash, line: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(line);
    hasher.finalize().into()
}

// ---- the events (the JSON schema of a line; documented in the README "Audit and export") ----

/// A line: `{"seq":…,"timestamp_ns":…,"event":{"type":…,…}}`. Ids and amounts are strings
/// (u128 and exact decimals do not fit a JSON number everywhere).
#[derive(Debug, Serialize, Deserialize)]
pub struct Line {
    pub seq: u64,
    pub timestamp_ns: u64,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    AssetCreated {
        asset: String,
        scale: u8,
    },
    AccountCreated {
        account_id: String,
        asset: String,
        code: u32,
        debits_must_not_exceed_credits: bool,
        credits_must_not_exceed_debits: bool,
        overdraft_limit: String,
        external_ref: Option<String>,
        metadata: BTreeMap<String, String>,
    },
    AccountStatusChanged {
        account_id: String,
        status: String,
        reason: String,
        /// Who did it (empty when authentication is off).
        actor: String,
    },
    /// A risk rule set (`limits` absent: removed). `scope` is `account:<id>` or `code:<asset>:<code>`.
    LimitChanged {
        scope: String,
        max_single_debit: Option<String>,
        daily_debit_amount: Option<String>,
        daily_debit_count: Option<u32>,
        utc_offset_minutes: i32,
    },
    /// `target` is `token:<id>` or `device:<id>`.
    BlocklistChanged {
        target: String,
        blocked: bool,
        reason: String,
    },
    /// Money moving: a transfer, a hold, its post, void or expiry, an offline spend.
    Movement {
        transfer_id: String,
        idempotency_key: String,
        asset: String,
        code: u32,
        pending_id: Option<String>,
        /// The principal that created the transfer; empty for an expiry and the ledger's own.
        owner: String,
        legs: Vec<MovementLeg>,
        /// The transfer this one refunds (format 4; absent on every other movement).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refund_of: Option<String>,
        /// The transfer's reference and metadata, when it has them (format 4).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<BTreeMap<String, String>>,
    },
    WalletToken {
        change: String,
        token_id: String,
        account_id: String,
        clearing_account_id: String,
        device_id: String,
        status: String,
        offline_limit: String,
        max_offline_count: u32,
        generation: u32,
        hold_id: Option<String>,
        hold_remaining: String,
        expires_at_ns: u64,
    },
    WalletException {
        token_id: String,
        sequence: u64,
        amount: String,
        merchant_account_id: String,
        device_time_ms: u64,
        /// The result code's wire number and name.
        reason_code: u32,
        reason: String,
    },
    AccessDenied {
        principal: String,
        role: String,
        method: String,
        reason: String,
    },
    MembershipChanged {
        log_index: u64,
        voters: Vec<u64>,
        learners: Vec<u64>,
    },
    /// An account's settings changed (`UpdateAccounts`): all three settings before and after.
    AccountUpdated {
        account_id: String,
        before: AccountSettingsLine,
        after: AccountSettingsLine,
        reason: String,
        /// Who did it (empty when authentication is off).
        actor: String,
    },
    /// An external reference moved (`RebindExternalRefs`): from an account (absent: it was
    /// unbound) to another (absent: released).
    ExternalRefRebound {
        external_ref: String,
        from_account_id: Option<String>,
        to_account_id: Option<String>,
        reason: String,
        actor: String,
    },
    /// A risk rule of `risk::rules` set (`rule` absent: removed). `rule` is its scope and limit as
    /// the ledger's debug form, e.g. `Amount { side: Credit, max: 100000, window: Day }` (amounts in
    /// minor units).
    RiskRuleChanged {
        rule_id: u64,
        scope: Option<String>,
        rule: Option<String>,
        utc_offset_minutes: i32,
    },
}

/// An account's changeable settings in a journal line (the overdraft limit as a decimal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSettingsLine {
    pub code: u32,
    pub overdraft_limit: String,
    pub metadata: BTreeMap<String, String>,
}

/// One leg's effect. On the debit account `debits_posted += posted` and
/// `debits_pending += pending_added - pending_released`; the same on the credit side. These three
/// amounts are all a verifier needs to carry balances from opening to closing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovementLeg {
    pub leg: u8,
    pub kind: String,
    pub debit_account_id: String,
    pub debit_account_code: u32,
    pub credit_account_id: String,
    pub credit_account_code: u32,
    pub posted: String,
    pub pending_added: String,
    pub pending_released: String,
}

/// Events of one command, gathered during apply and written at its end. Each is kept as its
/// JSON (`{"type":…,…}`), rendered when pushed from the values in hand: the line adds only its
/// number and time around it (`Line`, the same bytes as serializing the whole line at once).
#[derive(Debug, Default)]
pub struct Pending {
    events: Vec<(u64, String)>,
}

impl Pending {
    pub fn push(&mut self, timestamp_ns: u64, event: Event) {
        let mut json = Vec::with_capacity(EVENT_CAPACITY);
        // Our own plain data types into a Vec: cannot fail.
        serde_json::to_writer(&mut json, &event).expect("an event serializes");
        self.push_json(timestamp_ns, String::from_utf8(json).expect("serde_json writes UTF-8"));
    }

    /// An event already rendered as JSON (`movement_json`).
    pub fn push_json(&mut self, timestamp_ns: u64, json: String) {
        assert!(json.starts_with("{\"type\":") && json.ends_with('}'), "an event is a tagged JSON object");
        self.events.push((timestamp_ns, json));
    }

    /// Events gathered so far (a mark for `truncate`).
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Forgets the events after a mark: those of a linked chain that failed.
    pub fn truncate(&mut self, mark: usize) {
        self.events.truncate(mark);
    }

    /// Appends the events to the chain in time order (stable: equal times keep their order).
    pub fn write(mut self, store: &mut impl Store) -> io::Result<Option<Head>> {
        if self.events.is_empty() {
            return Ok(None);
        }
        self.events.sort_by_key(|(timestamp_ns, _)| *timestamp_ns);
        let mut head = head(store)?;
        for (timestamp_ns, event) in self.events {
            // Monotonic even for events stamped with the command's last time (membership).
            let timestamp_ns = timestamp_ns.max(head.timestamp_ns);
            let seq = head.seq + 1;
            let line = to_line(seq, timestamp_ns, &event);
            let hash = chain(&head.hash, line.as_bytes());
            // The line, its length, the hash and the time: the line's size plus a little.
            let capacity = line.len() + ROW_OVERHEAD_MAX;
            store.put(Table::Journal, &seq_key(seq), crate::codec::encode_sized(&Row { hash, timestamp_ns, line }, capacity));
            head = Head { seq, hash, timestamp_ns };
        }
        store.put(Table::Meta, META_HEAD, store::encode(&head));
        Ok(Some(head))
    }
}

/// A line around its rendered event: exactly what `serde_json::to_string(&Line { .. })` writes
/// (compact: no spaces; integers in decimal; fields in declaration order).
fn to_line(seq: u64, timestamp_ns: u64, event: &str) -> String {
    use std::fmt::Write;
    let mut line = String::with_capacity(event.len() + LINE_OVERHEAD_MAX);
    write!(line, "{{\"seq\":{seq},\"timestamp_ns\":{timestamp_ns},\"event\":{event}}}").expect("write to a String");
    line
}

/// `{"seq":,"timestamp_ns":,"event":}` and two u64s of at most 20 digits.
const LINE_OVERHEAD_MAX: usize = 34 + 2 * 20;
/// A movement's JSON mostly fits.
const EVENT_CAPACITY: usize = 640;

/// A row's bytes beyond its line: checksum 4, hash 32, time and length varints at most 10 each.
const ROW_OVERHEAD_MAX: usize = 4 + 32 + 10 + 10;

// ---- building events from what apply did ----

fn id(value: u128) -> String {
    value.to_string()
}

pub fn status_name(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Active => "active",
        AccountStatus::Frozen => "frozen",
        AccountStatus::Closed => "closed",
    }
}

fn entry_kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Posted => "posted",
        EntryKind::Pending => "pending",
        EntryKind::PostPending => "post_pending",
        EntryKind::VoidPending => "void_pending",
        EntryKind::ExpirePending => "expire_pending",
    }
}

pub fn asset_created(asset: &Asset) -> Event {
    Event::AssetCreated { asset: asset.code.clone(), scale: asset.scale }
}

/// An account's creation, with the scale of its asset (for the overdraft limit) in hand.
pub fn account_opened(account: &Account, scale: u8) -> Event {
    Event::AccountCreated {
        account_id: id(account.id),
        asset: account.asset.clone(),
        code: account.code,
        debits_must_not_exceed_credits: account.debits_must_not_exceed_credits,
        credits_must_not_exceed_debits: account.credits_must_not_exceed_debits,
        overdraft_limit: format_minor(account.overdraft_limit_minor, scale),
        external_ref: account.external_ref.clone(),
        metadata: account.metadata.clone(),
    }
}

pub fn status_changed(account: &Account, actor: &str) -> Event {
    Event::AccountStatusChanged {
        account_id: id(account.id),
        status: status_name(account.status).to_string(),
        reason: account.status_reason.clone(),
        actor: actor.to_string(),
    }
}

/// A settings change, with the scale of the account's asset in hand.
pub fn account_updated(change: &super::account::history::AccountChange, scale: u8) -> Event {
    use super::account::history::{AccountSettings, ChangeKind};
    let line = |s: &AccountSettings| AccountSettingsLine {
        code: s.code,
        overdraft_limit: format_minor(s.overdraft_limit_minor, scale),
        metadata: s.metadata.clone(),
    };
    let ChangeKind::Settings { before, after } = &change.kind else {
        panic!("account_updated takes a settings change");
    };
    Event::AccountUpdated {
        account_id: id(change.account_id),
        before: line(before),
        after: line(after),
        reason: change.reason.clone(),
        actor: change.actor.clone(),
    }
}

pub fn risk_rule_changed(rule_id: u64, rule: Option<&super::risk::rules::Rule>) -> Event {
    Event::RiskRuleChanged {
        rule_id,
        scope: rule.map(|r| format!("{:?}", r.scope)),
        rule: rule.map(|r| format!("{:?}", r.limit)),
        utc_offset_minutes: rule.map_or(0, |r| r.utc_offset_minutes),
    }
}

pub fn external_ref_rebound(rebound: &super::account::rebind::Rebound, input: &super::account::rebind::RebindInput) -> Event {
    Event::ExternalRefRebound {
        external_ref: rebound.external_ref.clone(),
        from_account_id: (rebound.from_account_id != 0).then(|| id(rebound.from_account_id)),
        to_account_id: (rebound.to_account_id != 0).then(|| id(rebound.to_account_id)),
        reason: input.reason.clone(),
        actor: input.actor.clone(),
    }
}

/// A risk rule set or removed, with the scale of the rule's asset in hand.
pub fn limit_set(input: &super::risk::LimitInput, scale: u8) -> Event {
    use super::risk::LimitScope;
    let scope = match &input.scope {
        LimitScope::Account(account_id) => format!("account:{account_id}"),
        LimitScope::Code { asset, code } => format!("code:{asset}:{code}"),
    };
    let amount = |a: Option<super::amount::DecimalInput>| a.and_then(|a| a.to_minor(scale).ok()).map(|m| format_minor(m, scale));
    Event::LimitChanged {
        scope,
        max_single_debit: amount(input.max_single_debit),
        daily_debit_amount: amount(input.daily_debit_amount),
        daily_debit_count: input.daily_debit_count,
        utc_offset_minutes: input.utc_offset_minutes,
    }
}

pub fn blocklist_changed(input: &super::wallet::blocklist::BlockInput) -> Event {
    use super::wallet::blocklist::BlockTarget;
    let target = match &input.target {
        BlockTarget::Token(token_id) => format!("token:{token_id}"),
        BlockTarget::Device(device) => format!("device:{device}"),
    };
    Event::BlocklistChanged { target, blocked: input.blocked, reason: input.reason.clone() }
}

pub fn wallet_token(store: &impl Store, change: &str, token: &Token) -> io::Result<Event> {
    let scale = asset_scale(store, &token.asset)?;
    let status = match token.status {
        TokenStatus::Active => "active",
        TokenStatus::Revoked => "revoked",
        TokenStatus::Released => "released",
    };
    Ok(Event::WalletToken {
        change: change.to_string(),
        token_id: id(token.id),
        account_id: id(token.account_id),
        clearing_account_id: id(token.clearing_account_id),
        device_id: token.device_id.clone(),
        status: status.to_string(),
        offline_limit: format_minor(token.offline_limit_minor, scale),
        max_offline_count: token.max_offline_count,
        generation: token.generation,
        hold_id: (token.hold_id != 0).then(|| id(token.hold_id)),
        hold_remaining: format_minor(token.hold_remaining_minor, scale),
        expires_at_ns: token.expires_at_ns,
    })
}

/// Fields are cut to `ACCESS_DENIED_FIELD_BYTES_MAX` on a char boundary: a refusal is always
/// recorded, never refused for its size.
pub fn access_denied(input: &AccessDeniedInput) -> Event {
    fn cut(text: &str) -> String {
        let mut end = text.len().min(super::limits::ACCESS_DENIED_FIELD_BYTES_MAX);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text[..end].to_string()
    }
    Event::AccessDenied {
        principal: cut(&input.principal),
        role: cut(&input.role),
        method: cut(&input.method),
        reason: cut(&input.reason),
    }
}

pub fn wallet_exception(exception: &super::wallet::WalletException) -> Event {
    Event::WalletException {
        token_id: id(exception.token_id),
        sequence: exception.sequence,
        amount: format_minor(exception.amount.digits, exception.amount.scale),
        merchant_account_id: id(exception.merchant_account_id),
        device_time_ms: exception.device_time_ms,
        reason_code: exception.reason.as_u32(),
        reason: format!("{:?}", exception.reason),
    }
}

pub fn asset_scale(store: &impl Store, code: &str) -> io::Result<u8> {
    match store::get_asset(store, code)? {
        Some(asset) => Ok(asset.scale),
        None => Err(store::corruption(Table::Assets, "a journal event names a missing asset")),
    }
}

fn account_code(store: &impl Store, account_id: AccountId) -> io::Result<u32> {
    match store::get_account(store, account_id)? {
        Some(account) => Ok(account.code),
        None => Err(store::corruption(Table::Accounts, "a balance entry names a missing account")),
    }
}

/// Movements from the balance entries one step wrote, one per (transfer, timestamp), in order.
/// Every balance change in the ledger writes an entry pair (debit, credit) per leg, so deriving
/// the journal from them leaves nothing out.
pub fn movements(store: &impl Store, entries: &[AccountEntry], out: &mut Pending) -> io::Result<()> {
    assert!(entries.len() % 2 == 0, "balance entries come in (debit, credit) pairs");
    let mut start = 0;
    while start < entries.len() {
        let first = &entries[start];
        let mut end = start;
        while end < entries.len()
            && entries[end].transfer_id == first.transfer_id
            && entries[end].timestamp_ns == first.timestamp_ns
        {
            end += 2;
        }
        out.push_json(first.timestamp_ns, movement(store, &entries[start..end])?);
        start = end;
    }
    Ok(())
}

fn movement(store: &impl Store, pairs: &[AccountEntry]) -> io::Result<String> {
    let transfer_id = pairs[0].transfer_id;
    let Some(transfer) = store::get_transfer(store, transfer_id)? else {
        return Err(store::corruption(Table::Transfers, "a balance entry names a missing transfer"));
    };
    let scale = asset_scale(store, &transfer.asset)?;
    // A post releases what the hold carried, which its entries (the posted amounts) do not say.
    let held = match transfer.kind {
        TransferKind::PostPending => match store::get_transfer(store, transfer.pending_id)? {
            Some(pending) => pending.legs,
            None => return Err(store::corruption(Table::Transfers, "a post names a missing hold")),
        },
        _ => Vec::new(),
    };
    movement_json(&transfer, &held, pairs, scale, |account_id| account_code(store, account_id), None)
}

/// The movement of one step from values in hand, rendered as its event's JSON: the transfer the
/// entries name (for an expiry, the hold itself), the legs of the hold a post releases (else
/// empty), the step's entry pairs, the asset's scale, each account's code, and the transfer's
/// details (refund link, reference, metadata) when it has any. The same bytes as
/// `Event::Movement` (same fields, order and tag), from borrowed values: no field is copied.
pub fn movement_json(
    transfer: &Transfer,
    held: &[Leg],
    pairs: &[AccountEntry],
    scale: u8,
    mut code_of: impl FnMut(AccountId) -> io::Result<u32>,
    details: Option<&TransferDetails>,
) -> io::Result<String> {
    assert!(!pairs.is_empty() && pairs.len() % 2 == 0, "a movement has (debit, credit) entry pairs");
    let transfer_id = pairs[0].transfer_id;
    assert_eq!(transfer.id, transfer_id, "a movement names the transfer of its entries");
    let mut legs = Vec::with_capacity(pairs.len() / 2);
    for pair in pairs.chunks_exact(2) {
        let (debit, credit) = (&pair[0], &pair[1]);
        assert!(debit.is_debit && !credit.is_debit, "entry pairs are (debit, credit)");
        assert_eq!((debit.leg_index, debit.kind), (credit.leg_index, credit.kind), "one leg per pair");
        let amount = debit.amount_minor;
        let (posted, added, released) = match debit.kind {
            EntryKind::Posted => (amount, 0, 0),
            EntryKind::Pending => (0, amount, 0),
            EntryKind::VoidPending | EntryKind::ExpirePending => (0, 0, amount),
            EntryKind::PostPending => {
                let Some(hold) = held.get(usize::from(debit.leg_index)) else {
                    return Err(store::corruption(Table::Transfers, "a post has more legs than its hold"));
                };
                (amount, 0, hold.amount_minor)
            }
        };
        legs.push(MovementLegRef {
            leg: debit.leg_index,
            kind: entry_kind_name(debit.kind),
            debit_account_id: Id(debit.account_id),
            debit_account_code: code_of(debit.account_id)?,
            credit_account_id: Id(credit.account_id),
            credit_account_code: code_of(credit.account_id)?,
            posted: format_minor(posted, scale),
            pending_added: format_minor(added, scale),
            pending_released: format_minor(released, scale),
        });
    }
    // An expiry's entries carry the hold's own id; it is not a new transfer.
    let expiry = pairs[0].kind == EntryKind::ExpirePending;
    let event = EventRef::Movement {
        transfer_id: Id(transfer_id),
        idempotency_key: if expiry { "" } else { &transfer.idempotency_key },
        asset: &transfer.asset,
        code: transfer.code,
        pending_id: match (expiry, transfer.pending_id) {
            (true, _) => Some(Id(transfer_id)),
            (false, 0) => None,
            (false, pending) => Some(Id(pending)),
        },
        owner: if expiry { "" } else { &transfer.owner },
        legs,
        refund_of: details.and_then(|d| (d.refund_of != 0).then_some(Id(d.refund_of))),
        reference: details.and_then(|d| (!d.reference.is_empty()).then_some(d.reference.as_str())),
        metadata: details.and_then(|d| (!d.metadata.is_empty()).then_some(&d.metadata)),
    };
    let mut json = Vec::with_capacity(EVENT_CAPACITY);
    serde_json::to_writer(&mut json, &event).map_err(io::Error::other)?;
    String::from_utf8(json).map_err(io::Error::other)
}

/// An id as `id()` spells it (a decimal string), written without a `String` of its own.
struct Id(u128);

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// `Event::Movement` over borrowed values: the same tag, fields and order, so the same JSON.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum EventRef<'a> {
    Movement {
        transfer_id: Id,
        idempotency_key: &'a str,
        asset: &'a str,
        code: u32,
        pending_id: Option<Id>,
        owner: &'a str,
        legs: Vec<MovementLegRef>,
        #[serde(skip_serializing_if = "Option::is_none")]
        refund_of: Option<Id>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        metadata: Option<&'a BTreeMap<String, String>>,
    },
}

/// `MovementLeg` with its ids and kind unallocated.
#[derive(Serialize)]
struct MovementLegRef {
    leg: u8,
    kind: &'static str,
    debit_account_id: Id,
    debit_account_code: u32,
    credit_account_id: Id,
    credit_account_code: u32,
    posted: String,
    pending_added: String,
    pending_released: String,
}
