//! Domain types <-> proto messages. Encoding cannot fail (domain types are already valid Rust
//! values); decoding checks every id length, decimal string and enum value, because a response
//! that breaks the contract must surface as an error rather than as a wrong balance.

use crate::amount::{format_amount, parse_balance, parse_written};
use crate::error::ParseError;
use crate::ids::{decode_id, decode_optional_id, encode_id};
use crate::types::*;
use ledger_proto::api;

pub(crate) fn asset_to_proto(asset: &NewAsset) -> api::Asset {
    api::Asset {
        code: asset.code.clone(),
        scale: asset.scale,
    }
}

pub(crate) fn asset_record_from_proto(record: api::AssetRecord) -> Result<AssetRecord, ParseError> {
    let asset = record.asset.ok_or(ParseError::MissingField {
        field: "AssetRecord.asset",
    })?;
    Ok(AssetRecord {
        code: asset.code,
        scale: asset.scale,
        timestamp_ns: record.timestamp_ns,
    })
}

pub(crate) fn account_to_proto(account: &NewAccount) -> api::Account {
    api::Account {
        id: encode_id(account.id),
        asset: account.asset.clone(),
        code: account.code,
        debits_must_not_exceed_credits: account.debits_must_not_exceed_credits,
        credits_must_not_exceed_debits: account.credits_must_not_exceed_debits,
        // The proto says empty means zero; None is sent as empty.
        overdraft_limit: account
            .overdraft_limit
            .map(format_amount)
            .unwrap_or_default(),
        metadata: account.metadata.clone(),
        external_ref: account.external_ref.clone().unwrap_or_default(),
    }
}

fn account_from_proto(account: api::Account) -> Result<NewAccount, ParseError> {
    Ok(NewAccount {
        id: decode_id(&account.id)?,
        asset: account.asset,
        code: account.code,
        debits_must_not_exceed_credits: account.debits_must_not_exceed_credits,
        credits_must_not_exceed_debits: account.credits_must_not_exceed_debits,
        overdraft_limit: if account.overdraft_limit.is_empty() {
            None
        } else {
            Some(parse_written(&account.overdraft_limit)?)
        },
        metadata: account.metadata,
        external_ref: if account.external_ref.is_empty() {
            None
        } else {
            Some(account.external_ref)
        },
    })
}

pub(crate) fn account_status_to_proto(status: AccountStatus) -> i32 {
    match status {
        AccountStatus::Active => api::AccountStatus::Active as i32,
        AccountStatus::Frozen => api::AccountStatus::Frozen as i32,
        AccountStatus::Closed => api::AccountStatus::Closed as i32,
    }
}

fn account_status_from_proto(value: i32) -> Result<AccountStatus, ParseError> {
    match api::AccountStatus::try_from(value) {
        Ok(api::AccountStatus::Active) => Ok(AccountStatus::Active),
        Ok(api::AccountStatus::Frozen) => Ok(AccountStatus::Frozen),
        Ok(api::AccountStatus::Closed) => Ok(AccountStatus::Closed),
        // A stored account always has a status; UNSPECIFIED here is a server bug.
        Ok(api::AccountStatus::Unspecified) | Err(_) => Err(ParseError::EnumValue {
            field: "AccountRecord.status",
            value,
        }),
    }
}

pub(crate) fn balances_from_proto(balances: Option<api::Balances>) -> Result<Balances, ParseError> {
    let balances = balances.ok_or(ParseError::MissingField { field: "Balances" })?;
    Ok(Balances {
        debits_posted: parse_balance(&balances.debits_posted)?,
        credits_posted: parse_balance(&balances.credits_posted)?,
        debits_pending: parse_balance(&balances.debits_pending)?,
        credits_pending: parse_balance(&balances.credits_pending)?,
    })
}

pub(crate) fn account_record_from_proto(
    record: api::AccountRecord,
) -> Result<AccountRecord, ParseError> {
    let account = record.account.ok_or(ParseError::MissingField {
        field: "AccountRecord.account",
    })?;
    Ok(AccountRecord {
        account: account_from_proto(account)?,
        status: account_status_from_proto(record.status)?,
        balances: balances_from_proto(record.balances)?,
        timestamp_ns: record.timestamp_ns,
    })
}

fn leg_to_proto(leg: &Leg) -> api::Leg {
    api::Leg {
        debit_account_id: encode_id(leg.debit),
        credit_account_id: encode_id(leg.credit),
        amount: format_amount(leg.amount),
    }
}

fn leg_from_proto(leg: api::Leg) -> Result<Leg, ParseError> {
    Ok(Leg {
        debit: decode_id(&leg.debit_account_id)?,
        credit: decode_id(&leg.credit_account_id)?,
        amount: parse_written(&leg.amount)?,
    })
}

fn transfer_kind_to_proto(kind: TransferKind) -> i32 {
    match kind {
        TransferKind::Posted => api::TransferKind::Posted as i32,
        TransferKind::Pending => api::TransferKind::Pending as i32,
        TransferKind::PostPending => api::TransferKind::PostPending as i32,
        TransferKind::VoidPending => api::TransferKind::VoidPending as i32,
    }
}

fn transfer_kind_from_proto(value: i32) -> Result<TransferKind, ParseError> {
    match api::TransferKind::try_from(value) {
        Ok(api::TransferKind::Posted) => Ok(TransferKind::Posted),
        Ok(api::TransferKind::Pending) => Ok(TransferKind::Pending),
        Ok(api::TransferKind::PostPending) => Ok(TransferKind::PostPending),
        Ok(api::TransferKind::VoidPending) => Ok(TransferKind::VoidPending),
        // The node never sends UNSPECIFIED: a server bug, not a kind.
        Ok(api::TransferKind::Unspecified) | Err(_) => Err(ParseError::EnumValue {
            field: "Transfer.kind",
            value,
        }),
    }
}

pub(crate) fn transfer_to_proto(transfer: &NewTransfer) -> api::Transfer {
    api::Transfer {
        id: encode_id(transfer.id),
        idempotency_key: transfer.idempotency_key.clone(),
        asset: transfer.asset.clone(),
        legs: transfer.legs.iter().map(leg_to_proto).collect(),
        kind: transfer_kind_to_proto(transfer.kind),
        pending_id: transfer.pending_id.map(encode_id).unwrap_or_default(),
        timeout_ms: transfer.timeout_ms,
        post_amounts: transfer
            .post_amounts
            .iter()
            .copied()
            .map(format_amount)
            .collect(),
        code: transfer.code,
        refund_of: transfer.refund_of.map(encode_id).unwrap_or_default(),
        reference: transfer.reference.clone(),
        metadata: transfer.metadata.clone(),
        linked: transfer.linked,
    }
}

fn transfer_from_proto(transfer: api::Transfer) -> Result<NewTransfer, ParseError> {
    Ok(NewTransfer {
        id: decode_id(&transfer.id)?,
        idempotency_key: transfer.idempotency_key,
        asset: transfer.asset,
        legs: transfer
            .legs
            .into_iter()
            .map(leg_from_proto)
            .collect::<Result<_, _>>()?,
        kind: transfer_kind_from_proto(transfer.kind)?,
        pending_id: decode_optional_id(&transfer.pending_id)?,
        timeout_ms: transfer.timeout_ms,
        post_amounts: transfer
            .post_amounts
            .iter()
            .map(|a| parse_written(a))
            .collect::<Result<_, _>>()?,
        code: transfer.code,
        refund_of: decode_optional_id(&transfer.refund_of)?,
        reference: transfer.reference,
        metadata: transfer.metadata,
        linked: transfer.linked,
    })
}

fn pending_state_from_proto(value: i32) -> Result<PendingState, ParseError> {
    match api::PendingState::try_from(value) {
        Ok(api::PendingState::None) => Ok(PendingState::None),
        Ok(api::PendingState::Pending) => Ok(PendingState::Pending),
        Ok(api::PendingState::Posted) => Ok(PendingState::Posted),
        Ok(api::PendingState::Voided) => Ok(PendingState::Voided),
        Ok(api::PendingState::Expired) => Ok(PendingState::Expired),
        Ok(api::PendingState::Unspecified) | Err(_) => Err(ParseError::EnumValue {
            field: "TransferRecord.pending_state",
            value,
        }),
    }
}

pub(crate) fn transfer_record_from_proto(
    record: api::TransferRecord,
) -> Result<TransferRecord, ParseError> {
    let transfer = record.transfer.ok_or(ParseError::MissingField {
        field: "TransferRecord.transfer",
    })?;
    Ok(TransferRecord {
        transfer: transfer_from_proto(transfer)?,
        timestamp_ns: record.timestamp_ns,
        pending_state: pending_state_from_proto(record.pending_state)?,
        expires_at_ns: record.expires_at_ns,
        posted_legs: record
            .posted_legs
            .into_iter()
            .map(leg_from_proto)
            .collect::<Result<_, _>>()?,
        owner: record.owner,
        refunded: optional_amount(&record.refunded)?,
        refundable: optional_amount(&record.refundable)?,
    })
}

/// An amount the node may leave empty (not applicable).
fn optional_amount(text: &str) -> Result<Option<ledger_core::Amount>, ParseError> {
    if text.is_empty() { Ok(None) } else { parse_written(text).map(Some) }
}

pub(crate) fn idempotency_record_from_proto(
    response: api::GetTransferByIdempotencyKeyResponse,
) -> Result<Option<IdempotencyRecord>, ParseError> {
    if !response.found {
        return Ok(None);
    }
    Ok(Some(IdempotencyRecord {
        code: ledger_proto::convert::result_code_from_wire(response.code),
        transfer_id: decode_id(&response.transfer_id)?,
        timestamp_ns: response.timestamp_ns,
        transfer: response
            .transfer
            .map(transfer_record_from_proto)
            .transpose()?,
    }))
}

fn entry_kind_from_proto(value: i32) -> Result<EntryKind, ParseError> {
    match api::EntryKind::try_from(value) {
        Ok(api::EntryKind::Posted) => Ok(EntryKind::Posted),
        Ok(api::EntryKind::Pending) => Ok(EntryKind::Pending),
        Ok(api::EntryKind::PostPending) => Ok(EntryKind::PostPending),
        Ok(api::EntryKind::VoidPending) => Ok(EntryKind::VoidPending),
        Ok(api::EntryKind::ExpirePending) => Ok(EntryKind::ExpirePending),
        Ok(api::EntryKind::Unspecified) | Err(_) => Err(ParseError::EnumValue {
            field: "AccountEntry.kind",
            value,
        }),
    }
}

pub(crate) fn entry_from_proto(entry: api::AccountEntry) -> Result<AccountEntry, ParseError> {
    Ok(AccountEntry {
        account_id: decode_id(&entry.account_id)?,
        timestamp_ns: entry.timestamp_ns,
        transfer_id: decode_id(&entry.transfer_id)?,
        leg_index: entry.leg_index,
        kind: entry_kind_from_proto(entry.kind)?,
        is_debit: entry.is_debit,
        amount: parse_written(&entry.amount)?,
        balances_after: balances_from_proto(entry.balances_after)?,
    })
}

pub(crate) fn entries_page_from_proto(
    response: api::ListAccountEntriesResponse,
) -> Result<EntriesPage, ParseError> {
    Ok(EntriesPage {
        entries: response
            .entries
            .into_iter()
            .map(entry_from_proto)
            .collect::<Result<_, _>>()?,
        next_cursor_timestamp_ns: nonzero(response.next_cursor_timestamp_ns),
    })
}

pub(crate) fn balance_at_from_proto(
    response: api::GetBalanceAtResponse,
) -> Result<BalanceAt, ParseError> {
    Ok(BalanceAt {
        balances: balances_from_proto(response.balances)?,
        as_of_timestamp_ns: nonzero(response.as_of_timestamp_ns),
    })
}

/// Results of a batch write: exactly one per item, indexes in range. Anything else is a protocol
/// violation, because the caller would attribute a result to the wrong item.
pub(crate) fn write_results_from_proto(
    results: Vec<api::WriteResult>,
    items_count: usize,
) -> Result<Vec<WriteResult>, String> {
    if results.len() != items_count {
        return Err(format!("{} results for {items_count} items", results.len()));
    }
    let mut seen = vec![false; items_count];
    let mut decoded = Vec::with_capacity(items_count);
    for result in results {
        let index = result.index as usize;
        if index >= items_count || std::mem::replace(&mut seen[index], true) {
            return Err(format!("result index {index} out of range or repeated"));
        }
        decoded.push(write_result_from_proto(result)?);
    }
    decoded.sort_by_key(|r| r.index);
    Ok(decoded)
}

/// One result, its index as sent (the caller checks it against its items).
pub(crate) fn write_result_from_proto(result: api::WriteResult) -> Result<WriteResult, String> {
    let id = match decode_optional_id(&result.id) {
        Ok(id) => id.unwrap_or(0),
        Err(error) => return Err(format!("result {}: {error}", result.index)),
    };
    Ok(WriteResult {
        index: result.index,
        code: ledger_proto::convert::result_code_from_wire(result.code),
        timestamp_ns: result.timestamp_ns,
        leg_index: result.leg_index,
        replay: result.replay,
        id,
    })
}

pub(crate) fn cluster_status_from_proto(response: api::ClusterStatusResponse) -> ClusterStatus {
    ClusterStatus {
        node_id: response.node_id,
        role: response.role,
        term: response.term,
        leader_id: response.leader_id,
        leader_address: response.leader_address,
        last_log_index: response.last_log_index,
        committed_index: response.committed_index,
        applied_index: response.applied_index,
        snapshot_index: response.snapshot_index,
        nodes: response
            .nodes
            .into_iter()
            .map(node_status_from_proto)
            .collect(),
        purged_index: response.purged_index,
        error: (!response.error.is_empty()).then_some(response.error),
        retired_node_ids: response.retired_node_ids,
    }
}

fn node_status_from_proto(n: api::NodeStatus) -> NodeStatus {
    NodeStatus {
        node_id: n.node_id,
        address: n.address,
        role: n.role,
        voter: n.voter,
        peer_address: n.peer_address,
        matched_index: n.matched_index,
        lag_entries: n.lag_entries,
    }
}

pub(crate) fn membership_change_from_proto(response: api::MembershipResponse) -> MembershipChange {
    MembershipChange {
        changed: response.changed,
        nodes: response
            .nodes
            .into_iter()
            .map(node_status_from_proto)
            .collect(),
    }
}

fn nonzero(timestamp_ns: u64) -> Option<u64> {
    if timestamp_ns == 0 {
        None
    } else {
        Some(timestamp_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;

    #[test]
    fn transfer_round_trips() {
        let transfer = NewTransfer::post(7, "k", 5, vec![Amount::new(150, 2)]).with_code(3);
        assert_eq!(
            transfer_from_proto(transfer_to_proto(&transfer)).unwrap(),
            transfer
        );
        let legs = vec![
            Leg::new(1, 2, Amount::new(1, 0)),
            Leg::new(2, 3, Amount::new(25, 1)),
        ];
        let transfer = NewTransfer::pending(9, "k2", "CNY", legs, 1000);
        let proto = transfer_to_proto(&transfer);
        assert!(proto.pending_id.is_empty());
        assert_eq!(proto.legs[1].amount, "2.5");
        assert_eq!(transfer_from_proto(proto).unwrap(), transfer);
    }

    #[test]
    fn write_results_must_match_items() {
        let result = |index| api::WriteResult {
            index,
            ..Default::default()
        };
        assert!(write_results_from_proto(vec![result(1), result(0)], 2).is_ok());
        assert!(write_results_from_proto(vec![result(0)], 2).is_err());
        assert!(write_results_from_proto(vec![result(0), result(0)], 2).is_err());
        assert!(write_results_from_proto(vec![result(2), result(0)], 2).is_err());
        let bad_id = api::WriteResult {
            id: vec![1, 2, 3],
            ..Default::default()
        };
        assert!(write_results_from_proto(vec![bad_id], 1).is_err());
    }

    /// The node holds u128 minor units: 38-digit amounts and every balance up to u128::MAX read
    /// back exactly (rust_decimal, the client's old amount type, stopped at 28 digits).
    #[test]
    fn thirty_eight_digit_amounts_round_trip_through_the_client() {
        let big = crate::parse_amount("99999999999999999999.999999999999999999").unwrap();
        let transfer = NewTransfer::posted(9, "k", "CNY", vec![Leg::new(1, 2, big)]);
        let proto = transfer_to_proto(&transfer);
        assert_eq!(proto.legs[0].amount, "99999999999999999999.999999999999999999");
        assert_eq!(transfer_from_proto(proto).unwrap(), transfer);
        let top = ledger_core::amount::format_minor(u128::MAX, 18);
        let wire = api::Balances { debits_posted: top.clone(), credits_posted: "0.000000000000000001".into(), debits_pending: String::new(), credits_pending: "12.50".into() };
        let balances = balances_from_proto(Some(wire)).unwrap();
        assert_eq!(format_amount(balances.debits_posted), top);
        assert_eq!(balances.debits_posted.minor(), u128::MAX);
        assert_eq!(balances.debits_posted - balances.debits_posted, Amount::ZERO);
        assert_eq!(format_amount(balances.credits_pending), "12.50");
        assert_eq!(balances.debits_pending, Amount::ZERO);
    }
}
