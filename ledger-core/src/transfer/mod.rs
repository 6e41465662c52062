//! Creating transfers, in two phases after TigerBeetle's `state_machine.zig`: *prefetch* every
//! account and asset a command's transfers name into a working set (`working.rs`), then per
//! item: validate, idempotency, *execute* in memory with no I/O (`execute.rs`; posts and voids in
//! `pending/`), write its rows and build its journal line from the values in hand. Accounts are
//! written back once, at the end of the command.

mod execute;
mod linked;
pub mod overlay;
pub mod refund;
pub mod working;

use std::io;

use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::journal;
use crate::pending;
use crate::result::{ItemResult, ResultCode};
use crate::risk;
use crate::store::{self, Store, Table};
use crate::types::*;
use crate::validate;

pub use execute::{Staged, assert_double_entry, assert_entries_match};
pub use working::WorkingSet;

/// A rule broken by one item: its code and, when a leg broke it, the leg.
pub type Refusal = ItemResult;

/// What a transfer that moved money wrote, for its journal line: the transfer row, and the legs
/// of the hold a post released (empty otherwise).
pub struct Written {
    pub transfer: Transfer,
    pub held: Vec<Leg>,
}

/// The transfers of one command (`Operation::CreateTransfers`, or `CreateTransfersWith` with
/// `extras[i]` for `items[i]`; plain transfers have none): a result per item, the balance
/// entries and a journal line per transfer that moved money. Linked chains run in `linked`.
pub fn create_all(
    store: &mut impl Store,
    items: &[TransferInput],
    extras: &[TransferExtras],
    clock: &mut Clock,
    entries: &mut Vec<AccountEntry>,
    results: &mut Vec<ItemResult>,
    events: &mut journal::Pending,
) -> io::Result<()> {
    // Risk rules change only by their own commands: one seek says whether to look them up.
    let check_limits = risk::any_rule(store)?;
    let mut working = WorkingSet::new();
    for item in items {
        working.prefetch(store, item)?;
    }
    let mut batch = Batch { working, clock, entries, results, events, check_limits };
    let mut start = 0;
    while start < items.len() {
        let end = linked::chain_end(extras, start, items.len());
        // A lone linked item is a chain left open: refused by `create_chain`.
        if end - start == 1 && !extras_of(extras, start).linked {
            batch.item(store, &items[start], extras_of(extras, start))?;
        } else {
            linked::create_chain(store, &mut batch, &items[start..end], extras, start)?;
        }
        start = end;
    }
    batch.working.flush(store);
    Ok(())
}

/// No options: what every plain transfer has.
static NO_EXTRAS: std::sync::LazyLock<TransferExtras> = std::sync::LazyLock::new(TransferExtras::default);

/// The extras of item `index` (a plain command has none).
pub(crate) fn extras_of(extras: &[TransferExtras], index: usize) -> &TransferExtras {
    extras.get(index).unwrap_or(&NO_EXTRAS)
}

/// One command's transfers in progress: the working set and what the items produce.
pub(crate) struct Batch<'c> {
    working: WorkingSet,
    clock: &'c mut Clock,
    entries: &'c mut Vec<AccountEntry>,
    results: &'c mut Vec<ItemResult>,
    events: &'c mut journal::Pending,
    check_limits: bool,
}

impl Batch<'_> {
    /// One item: created (or refused), its journal line gathered, its result pushed.
    fn item(&mut self, store: &mut impl Store, input: &TransferInput, extras: &TransferExtras) -> io::Result<ItemResult> {
        let mark = self.entries.len();
        let (result, written) =
            create_one(store, &mut self.working, input, extras, self.clock, self.entries, self.check_limits)?;
        if let Some(written) = written {
            let line = movement(&self.working, &written, &self.entries[mark..], &extras.details)?;
            self.events.push_json(result.timestamp_ns, line);
        }
        self.results.push(result);
        Ok(result)
    }
}

/// A transfer the ledger makes itself (wallet holds and their voids): no risk limits, which
/// govern what customers spend, not how the ledger reserves or releases it. Its journal line
/// comes from the caller's `journal::movements`.
pub fn create_internal(
    store: &mut impl Store,
    input: &TransferInput,
    clock: &mut Clock,
    entries: &mut Vec<AccountEntry>,
) -> io::Result<ItemResult> {
    let mut working = WorkingSet::new();
    working.prefetch(store, input)?;
    let (result, _) = create_one(store, &mut working, input, &NO_EXTRAS, clock, entries, false)?;
    working.flush(store);
    Ok(result)
}

fn create_one(
    store: &mut impl Store,
    working: &mut WorkingSet,
    input: &TransferInput,
    extras: &TransferExtras,
    clock: &mut Clock,
    entries: &mut Vec<AccountEntry>,
    check_limits: bool,
) -> io::Result<(ItemResult, Option<Written>)> {
    // Malformed input is refused without being recorded: it fails the same way every time.
    if let Err(refusal) = validate::transfer(input).and_then(|()| validate::transfer_extras(input, extras)) {
        return Ok((ItemResult { id: input.id, ..refusal }, None));
    }
    let details = &extras.details;
    let fingerprint = fingerprint_with(input, details);
    if let Some(record) = store::get_idempotency(store, &input.idempotency_key)? {
        return Ok((replay(input, &record, &fingerprint), None));
    }
    let timestamp_ns = clock.tick();
    let outcome = if store::get_transfer(store, input.id)?.is_some() {
        Err(ItemResult::new(ResultCode::IdAlreadyUsed))
    } else {
        match input.kind {
            TransferKind::Posted | TransferKind::Pending => {
                create_new(store, working, input, details, timestamp_ns, entries, check_limits)?
            }
            TransferKind::PostPending | TransferKind::VoidPending => {
                pending::resolve(store, working, input, timestamp_ns, entries)?
            }
        }
    };
    let (code, leg_index, written) = match outcome {
        Ok(written) => (ResultCode::Ok, None, Some(written)),
        Err(refusal) => (refusal.code, refusal.leg_index, None),
    };
    if written.is_some() && !details.is_empty() {
        store.put(Table::TransferDetails, &store::id_key(input.id), store::encode(details));
    }
    // Every outcome from here on is recorded, so a retry returns it and never moves money twice.
    let record =
        IdempotencyRecord { fingerprint, transfer_id: input.id, code, leg_index, timestamp_ns, owner: input.owner.clone() };
    store.put(Table::Idempotency, input.idempotency_key.as_bytes(), store::encode(&record));
    Ok((ItemResult { code, leg_index, timestamp_ns, replay: false, id: input.id }, written))
}

/// A key used before: its first result again, or a conflict if the content differs.
fn replay(input: &TransferInput, record: &IdempotencyRecord, fingerprint: &[u8; 32]) -> ItemResult {
    if record.fingerprint != *fingerprint {
        // Another principal's key: refused without naming its transfer (nothing leaks).
        let id = if record.owner == input.owner { record.transfer_id } else { input.id };
        return ItemResult { id, ..ItemResult::new(ResultCode::IdempotencyKeyConflict) };
    }
    ItemResult {
        code: record.code,
        leg_index: record.leg_index,
        timestamp_ns: record.timestamp_ns,
        replay: true,
        id: record.transfer_id,
    }
}

/// SHA-256 of the input's canonical encoding: what "the same content" means for a retry.
pub fn fingerprint(input: &TransferInput) -> [u8; 32] {
    // The same bytes as `postcard::to_allocvec`, into a buffer that need not grow.
    let mut bytes = Vec::with_capacity(FINGERPRINT_CAPACITY);
    postcard::to_io(input, &mut bytes).expect("postcard encode into Vec");
    Sha256::digest(&bytes).into()
}

const FINGERPRINT_CAPACITY: usize = 256;

/// `fingerprint`, with the transfer's details when it has any (a transfer without them keeps
/// the fingerprint it always had, so keys recorded before format 4 replay as before).
pub fn fingerprint_with(input: &TransferInput, details: &TransferDetails) -> [u8; 32] {
    if details.is_empty() {
        return fingerprint(input);
    }
    let mut bytes = Vec::with_capacity(FINGERPRINT_CAPACITY);
    postcard::to_io(input, &mut bytes).expect("postcard encode into Vec");
    postcard::to_io(details, &mut bytes).expect("postcard encode into Vec");
    Sha256::digest(&bytes).into()
}

/// A posted or pending transfer: risk limits, the legs in memory, then its rows.
fn create_new(
    store: &mut impl Store,
    working: &mut WorkingSet,
    input: &TransferInput,
    details: &TransferDetails,
    timestamp_ns: u64,
    entries: &mut Vec<AccountEntry>,
    check_limits: bool,
) -> io::Result<Result<Written, Refusal>> {
    // Each amount converted once, for the limits and the legs alike.
    let amounts: Vec<Result<u128, ResultCode>> = match working.asset(&input.asset) {
        Some(asset) => input.legs.iter().map(|leg| leg.amount.to_minor(asset.scale)).collect(),
        None => Vec::new(),
    };
    let debits = if check_limits {
        match risk::check(store, working, input, &amounts, timestamp_ns)? {
            Ok(debits) => Some(debits),
            Err(refusal) => return Ok(Err(refusal)),
        }
    } else {
        None
    };
    let Some(asset) = working.asset(&input.asset) else {
        return Ok(Err(ItemResult::new(ResultCode::AssetNotFound)));
    };
    let executed = match execute::legs(working, input, asset, &amounts, timestamp_ns) {
        Ok(executed) => executed,
        Err(refusal) => return Ok(Err(refusal)),
    };
    // A refund is checked against its original with the amounts its legs actually take.
    if details.refund_of != 0 {
        match refund::check(store, input, details.refund_of, &executed.legs)? {
            Ok(refunded) => refund::record(store, details.refund_of, &refunded),
            Err(refusal) => return Ok(Err(refusal)),
        }
    }
    if let Some(debits) = debits {
        risk::record(store, debits, timestamp_ns);
    }
    executed.staged.commit(working);
    for entry in &executed.entries {
        store::put_entry(store, entry);
    }
    entries.extend(executed.entries);
    let is_pending = input.kind == TransferKind::Pending;
    let expires_at_ns = if is_pending && input.timeout_ms > 0 {
        timestamp_ns.saturating_add(input.timeout_ms.saturating_mul(1_000_000))
    } else {
        0
    };
    if expires_at_ns != 0 {
        store.put(Table::PendingExpiry, &store::expiry_key(expires_at_ns, input.id), store::encode(&()));
    }
    let transfer = Transfer {
        id: input.id,
        idempotency_key: input.idempotency_key.clone(),
        asset: input.asset.clone(),
        kind: input.kind,
        legs: executed.legs,
        pending_id: 0,
        timeout_ms: input.timeout_ms,
        code: input.code,
        timestamp_ns,
        pending_state: if is_pending { PendingState::Pending } else { PendingState::None },
        expires_at_ns,
        owner: input.owner.clone(),
    };
    store::put_transfer(store, &transfer);
    Ok(Ok(Written { transfer, held: Vec::new() }))
}

/// The journal line of a transfer that moved money, from the rows in hand.
fn movement(working: &WorkingSet, written: &Written, pairs: &[AccountEntry], details: &TransferDetails) -> io::Result<String> {
    let Some(asset) = working.asset(&written.transfer.asset) else {
        return Err(store::corruption(Table::Assets, "a journal event names a missing asset"));
    };
    let code_of = |id: AccountId| match working.account(id) {
        Some(account) => Ok(account.code),
        None => Err(store::corruption(Table::Accounts, "a balance entry names a missing account")),
    };
    let details = (!details.is_empty()).then_some(details);
    journal::movement_json(&written.transfer, &written.held, pairs, asset.scale, code_of, details)
}
