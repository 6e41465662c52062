//! Wire types to ledger inputs, ledger records to wire types.

use ledger_proto::api as pb;

use ledger_core::amount::{DecimalInput, format_minor};
use ledger_core::result::{ItemResult, ResultCode};
use ledger_core::types::*;

/// 16 big-endian bytes, or empty for zero. Anything else is ID_INVALID.
pub fn id(bytes: &[u8]) -> Result<u128, ResultCode> {
    match bytes.len() {
        0 => Ok(0),
        16 => Ok(u128::from_be_bytes(bytes.try_into().expect("16 bytes"))),
        _ => Err(ResultCode::IdInvalid),
    }
}

pub fn id_bytes(id: u128) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

pub fn asset_input(a: &pb::Asset) -> AssetInput {
    AssetInput { code: a.code.clone(), scale: a.scale }
}

pub fn account_input(a: &pb::Account) -> Result<AccountInput, ResultCode> {
    let overdraft_limit = match a.overdraft_limit.as_str() {
        "" => None,
        text => Some(DecimalInput::parse(text).map_err(|_| ResultCode::OverdraftLimitInvalid)?),
    };
    Ok(AccountInput {
        id: id(&a.id)?,
        asset: a.asset.clone(),
        code: a.code,
        debits_must_not_exceed_credits: a.debits_must_not_exceed_credits,
        credits_must_not_exceed_debits: a.credits_must_not_exceed_debits,
        overdraft_limit,
        metadata: a.metadata.clone(),
        external_ref: if a.external_ref.is_empty() { None } else { Some(a.external_ref.clone()) },
    })
}

/// An unset kind (`TRANSFER_KIND_UNSPECIFIED`, 0) is refused like an unknown one: a forgotten
/// field must not post.
pub fn transfer_kind(kind: i32) -> Result<TransferKind, ResultCode> {
    match pb::TransferKind::try_from(kind).map_err(|_| ResultCode::KindInvalid)? {
        pb::TransferKind::Unspecified => Err(ResultCode::KindInvalid),
        pb::TransferKind::Posted => Ok(TransferKind::Posted),
        pb::TransferKind::Pending => Ok(TransferKind::Pending),
        pb::TransferKind::PostPending => Ok(TransferKind::PostPending),
        pb::TransferKind::VoidPending => Ok(TransferKind::VoidPending),
    }
}

/// The id of a transfer sent without one (empty bytes): the first 16 bytes (big-endian) of
/// SHA-256("ledger.transfer-id.v1\0" ‖ idempotency key), never zero. The same derivation as the
/// CLI's (`ledger_client::transfer_id_from_key`): every retry with the key gets the same id, so
/// it replays instead of conflicting (the id is part of the idempotency fingerprint).
pub fn transfer_id_from_key(idempotency_key: &str) -> u128 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update(b"ledger.transfer-id.v1\0").chain_update(idempotency_key.as_bytes()).finalize();
    let first: [u8; 16] = digest[..16].try_into().expect("SHA-256 has 32 bytes");
    u128::from_be_bytes(first).max(1)
}

/// A transfer's id as sent (16 bytes), or derived from its idempotency key when empty.
pub fn transfer_id(t: &pb::Transfer) -> Result<u128, ResultCode> {
    if t.id.is_empty() { Ok(transfer_id_from_key(&t.idempotency_key)) } else { id(&t.id) }
}

pub fn transfer_input(t: &pb::Transfer) -> Result<TransferInput, ItemResult> {
    let plain = |code| ItemResult::new(code);
    let mut legs = Vec::with_capacity(t.legs.len());
    for (index, leg) in t.legs.iter().enumerate() {
        let at = |code| ItemResult::at_leg(code, index.min(ledger_core::limits::TRANSFER_LEGS_MAX - 1));
        legs.push(LegInput {
            debit_account_id: id(&leg.debit_account_id).map_err(at)?,
            credit_account_id: id(&leg.credit_account_id).map_err(at)?,
            amount: DecimalInput::parse(&leg.amount).map_err(at)?,
        });
    }
    let mut post_amounts = Vec::with_capacity(t.post_amounts.len());
    for (index, amount) in t.post_amounts.iter().enumerate() {
        let at = |code| ItemResult::at_leg(code, index.min(ledger_core::limits::TRANSFER_LEGS_MAX - 1));
        post_amounts.push(DecimalInput::parse(amount).map_err(at)?);
    }
    Ok(TransferInput {
        id: transfer_id(t).map_err(plain)?,
        idempotency_key: t.idempotency_key.clone(),
        asset: t.asset.clone(),
        kind: transfer_kind(t.kind).map_err(plain)?,
        legs,
        pending_id: id(&t.pending_id).map_err(plain)?,
        timeout_ms: t.timeout_ms,
        post_amounts,
        code: t.code,
        // Set by the handler from the authenticated principal, never from the request.
        owner: String::new(),
    })
}

/// Whether a transfer carries an option of format 4 (refund, reference, metadata, link): such a
/// request goes as `Operation::CreateTransfersWith`, every other as `CreateTransfers`.
pub fn has_extras(t: &pb::Transfer) -> bool {
    !t.refund_of.is_empty() || !t.reference.is_empty() || !t.metadata.is_empty() || t.linked
}

/// A transfer's options (empty `refund_of`: not a refund).
pub fn transfer_extras(t: &pb::Transfer) -> Result<TransferExtras, ItemResult> {
    let details = TransferDetails {
        refund_of: id(&t.refund_of).map_err(ItemResult::new)?,
        reference: t.reference.clone(),
        metadata: t.metadata.clone(),
    };
    Ok(TransferExtras { details, linked: t.linked })
}

/// `prepare_transfer` with the transfer's options, checked as the state machine checks them.
pub fn prepare_transfer_with(t: &pb::Transfer) -> Result<(TransferInput, TransferExtras), ItemResult> {
    let input = prepare_transfer(t)?;
    let extras = transfer_extras(t)?;
    ledger_core::validate::transfer_extras(&input, &extras)?;
    Ok((input, extras))
}

/// `actor`: who asked (see `api::auth::actor`).
pub fn status_change_input(c: &pb::AccountStatusChange, actor: &str) -> Result<StatusChangeInput, ResultCode> {
    let status = match pb::AccountStatus::try_from(c.status) {
        Ok(pb::AccountStatus::Active) => AccountStatus::Active,
        Ok(pb::AccountStatus::Frozen) => AccountStatus::Frozen,
        Ok(pb::AccountStatus::Closed) => AccountStatus::Closed,
        Ok(pb::AccountStatus::Unspecified) | Err(_) => return Err(ResultCode::AccountStatusInvalid),
    };
    Ok(StatusChangeInput { account_id: id(&c.account_id)?, status, reason: c.reason.clone(), actor: actor.to_string() })
}

/// What the API checks of one item before proposing it: decoding, then the same stateless
/// checks the state machine runs (`ledger::validate`). A refusal is the item's result.
pub fn prepare_asset(a: &pb::Asset) -> Result<AssetInput, ItemResult> {
    let input = asset_input(a);
    ledger_core::validate::asset(&input).map_err(ItemResult::new)?;
    Ok(input)
}

pub fn prepare_account(a: &pb::Account) -> Result<AccountInput, ItemResult> {
    let input = account_input(a).map_err(ItemResult::new)?;
    ledger_core::validate::account(&input).map_err(ItemResult::new)?;
    Ok(input)
}

/// A refused transfer's result names its id (`LedgerService::write` adds it when the id decodes).
pub fn prepare_transfer(t: &pb::Transfer) -> Result<TransferInput, ItemResult> {
    let input = transfer_input(t)?;
    ledger_core::validate::transfer(&input)?;
    Ok(input)
}

pub fn prepare_status_change(c: &pb::AccountStatusChange, actor: &str) -> Result<StatusChangeInput, ItemResult> {
    let input = status_change_input(c, actor).map_err(ItemResult::new)?;
    ledger_core::validate::status_change(&input).map_err(ItemResult::new)?;
    Ok(input)
}

/// The wire number of a result code: the one mapping, shared with the client
/// (`ledger_proto::convert`, where its round-trip tests are).
pub fn result_code(code: ResultCode) -> i32 {
    ledger_proto::convert::result_code_to_wire(code)
}

pub fn write_result(index: usize, r: &ItemResult) -> pb::WriteResult {
    pb::WriteResult {
        index: index as u32,
        code: result_code(r.code),
        timestamp_ns: r.timestamp_ns,
        leg_index: r.leg_index.map(u32::from),
        replay: r.replay,
        id: if r.id == 0 { Vec::new() } else { id_bytes(r.id) },
    }
}

pub fn balances(b: &Balances, scale: u8) -> pb::Balances {
    pb::Balances {
        debits_posted: format_minor(b.debits_posted, scale),
        credits_posted: format_minor(b.credits_posted, scale),
        debits_pending: format_minor(b.debits_pending, scale),
        credits_pending: format_minor(b.credits_pending, scale),
    }
}

pub fn asset_record(a: &Asset) -> pb::AssetRecord {
    pb::AssetRecord { asset: Some(pb::Asset { code: a.code.clone(), scale: u32::from(a.scale) }), timestamp_ns: a.timestamp_ns }
}

pub fn account_record(a: &Account, scale: u8) -> pb::AccountRecord {
    let status = match a.status {
        AccountStatus::Active => pb::AccountStatus::Active,
        AccountStatus::Frozen => pb::AccountStatus::Frozen,
        AccountStatus::Closed => pb::AccountStatus::Closed,
    };
    pb::AccountRecord {
        account: Some(pb::Account {
            id: id_bytes(a.id),
            asset: a.asset.clone(),
            code: a.code,
            debits_must_not_exceed_credits: a.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits: a.credits_must_not_exceed_debits,
            overdraft_limit: if a.overdraft_limit_minor == 0 { String::new() } else { format_minor(a.overdraft_limit_minor, scale) },
            metadata: a.metadata.clone(),
            external_ref: a.external_ref.clone().unwrap_or_default(),
        }),
        status: status as i32,
        balances: Some(balances(&a.balances, scale)),
        timestamp_ns: a.timestamp_ns,
    }
}

fn leg(l: &Leg, scale: u8) -> pb::Leg {
    pb::Leg {
        debit_account_id: id_bytes(l.debit_account_id),
        credit_account_id: id_bytes(l.credit_account_id),
        amount: format_minor(l.amount_minor, scale),
    }
}

pub fn transfer_record(t: &Transfer, scale: u8) -> pb::TransferRecord {
    let kind = match t.kind {
        TransferKind::Posted => pb::TransferKind::Posted,
        TransferKind::Pending => pb::TransferKind::Pending,
        TransferKind::PostPending => pb::TransferKind::PostPending,
        TransferKind::VoidPending => pb::TransferKind::VoidPending,
    };
    let pending_state = match t.pending_state {
        PendingState::None => pb::PendingState::None,
        PendingState::Pending => pb::PendingState::Pending,
        PendingState::Posted => pb::PendingState::Posted,
        PendingState::Voided => pb::PendingState::Voided,
        PendingState::Expired => pb::PendingState::Expired,
    };
    let resolves = matches!(t.kind, TransferKind::PostPending | TransferKind::VoidPending);
    let legs: Vec<pb::Leg> = t.legs.iter().map(|l| leg(l, scale)).collect();
    pb::TransferRecord {
        transfer: Some(pb::Transfer {
            id: id_bytes(t.id),
            idempotency_key: t.idempotency_key.clone(),
            asset: t.asset.clone(),
            legs: if resolves { Vec::new() } else { legs.clone() },
            kind: kind as i32,
            pending_id: if t.pending_id == 0 { Vec::new() } else { id_bytes(t.pending_id) },
            timeout_ms: t.timeout_ms,
            post_amounts: Vec::new(),
            code: t.code,
            ..Default::default()
        }),
        timestamp_ns: t.timestamp_ns,
        pending_state: pending_state as i32,
        expires_at_ns: t.expires_at_ns,
        posted_legs: if resolves { legs } else { Vec::new() },
        owner: t.owner.clone(),
        ..Default::default()
    }
}

/// A transfer's record with what is kept beside its row: its details (refund link, reference,
/// metadata; absent for a transfer created without them) and, for posted money, its refunds.
pub fn transfer_record_with(t: &Transfer, scale: u8, details: Option<&TransferDetails>, refunded: Option<&Refunded>) -> pb::TransferRecord {
    let mut record = transfer_record(t, scale);
    if let (Some(details), Some(transfer)) = (details, record.transfer.as_mut()) {
        transfer.refund_of = if details.refund_of == 0 { Vec::new() } else { id_bytes(details.refund_of) };
        transfer.reference = details.reference.clone();
        transfer.metadata = details.metadata.clone();
    }
    if let Some(refundable) = ledger_core::transfer::refund::refundable(t, refunded) {
        let taken = refunded.map_or(0, |r| r.legs_minor.iter().sum::<u128>());
        record.refunded = format_minor(taken, scale);
        record.refundable = format_minor(refundable, scale);
    }
    record
}

pub fn account_entry(e: &AccountEntry, scale: u8) -> pb::AccountEntry {
    let kind = match e.kind {
        EntryKind::Posted => pb::EntryKind::Posted,
        EntryKind::Pending => pb::EntryKind::Pending,
        EntryKind::PostPending => pb::EntryKind::PostPending,
        EntryKind::VoidPending => pb::EntryKind::VoidPending,
        EntryKind::ExpirePending => pb::EntryKind::ExpirePending,
    };
    pb::AccountEntry {
        account_id: id_bytes(e.account_id),
        timestamp_ns: e.timestamp_ns,
        transfer_id: id_bytes(e.transfer_id),
        leg_index: u32::from(e.leg_index),
        kind: kind as i32,
        is_debit: e.is_debit,
        amount: format_minor(e.amount_minor, scale),
        balances_after: Some(balances(&e.balances_after, scale)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_16_bytes_or_empty() {
        assert_eq!(id(&[]), Ok(0));
        assert_eq!(id(&7u128.to_be_bytes()), Ok(7));
        assert_eq!(id(&[1, 2, 3]), Err(ResultCode::IdInvalid));
        assert_eq!(id(&[0; 17]), Err(ResultCode::IdInvalid));
    }

    #[test]
    fn status_changes_need_a_known_target_status() {
        let change = |status: i32| pb::AccountStatusChange { account_id: 5u128.to_be_bytes().to_vec(), status, reason: String::new() };
        assert_eq!(status_change_input(&change(pb::AccountStatus::Unspecified as i32), ""), Err(ResultCode::AccountStatusInvalid));
        assert_eq!(status_change_input(&change(42), ""), Err(ResultCode::AccountStatusInvalid));
        assert_eq!(status_change_input(&change(pb::AccountStatus::Frozen as i32), "").map(|c| c.status), Ok(AccountStatus::Frozen));
    }

    #[test]
    fn transfers_decode_with_the_failing_leg_named() {
        let leg = |amount: &str| pb::Leg {
            debit_account_id: 1u128.to_be_bytes().to_vec(),
            credit_account_id: 2u128.to_be_bytes().to_vec(),
            amount: amount.into(),
        };
        let transfer = |legs, kind| pb::Transfer { id: 9u128.to_be_bytes().to_vec(), idempotency_key: "k".into(), asset: "CNY".into(), legs, kind, ..Default::default() };
        let refused = transfer_input(&transfer(vec![leg("1.00"), leg("2.x")], 0)).unwrap_err();
        assert_eq!((refused.code, refused.leg_index), (ResultCode::AmountInvalid, Some(1)));
        let refused = transfer_input(&transfer(vec![leg("-2")], 0)).unwrap_err();
        assert_eq!((refused.code, refused.leg_index), (ResultCode::AmountNegative, Some(0)));
        assert_eq!(transfer_input(&transfer(vec![leg("1")], 7)).unwrap_err().code, ResultCode::KindInvalid);
        let ok = transfer_input(&transfer(vec![leg("1.50")], pb::TransferKind::Pending as i32)).unwrap();
        assert_eq!((ok.kind, ok.legs[0].amount), (TransferKind::Pending, DecimalInput { digits: 15, scale: 1 }));
    }

    const DERIVED_ID_OF_K: u128 = 0x825f_cb7b_7a98_b570_3fa3_a18c_e166_4e16;

    #[test]
    fn an_empty_transfer_id_is_derived_from_the_key() {
        // The CLI's derivation (ledger_client::transfer_id_from_key) of "k": pinned in both crates.
        assert_eq!(transfer_id_from_key("k"), DERIVED_ID_OF_K);
        let t = |id: Vec<u8>| pb::Transfer { id, idempotency_key: "k".into(), ..Default::default() };
        assert_eq!(transfer_id(&t(Vec::new())), Ok(DERIVED_ID_OF_K));
        assert_eq!(transfer_id(&t(7u128.to_be_bytes().to_vec())), Ok(7));
        assert_eq!(transfer_id(&t(vec![0; 16])), Ok(0), "16 zero bytes stay zero: ID_MUST_NOT_BE_ZERO");
        assert_ne!(transfer_id_from_key("k"), transfer_id_from_key("k2"));
    }

    #[test]
    fn an_unset_transfer_kind_is_refused() {
        assert_eq!(transfer_kind(pb::TransferKind::Unspecified as i32), Err(ResultCode::KindInvalid));
        assert_eq!(transfer_kind(0), Err(ResultCode::KindInvalid));
        assert_eq!(transfer_kind(pb::TransferKind::Posted as i32), Ok(TransferKind::Posted));
    }

    #[test]
    fn balances_format_with_the_asset_scale() {
        let b = Balances { debits_posted: 12345, credits_posted: 5, debits_pending: 0, credits_pending: 100 };
        let wire = balances(&b, 2);
        assert_eq!((wire.debits_posted.as_str(), wire.credits_posted.as_str(), wire.credits_pending.as_str()), ("123.45", "0.05", "1.00"));
    }
}
