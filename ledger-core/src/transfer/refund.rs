//! Linked refunds: a posted transfer that names an earlier posted one (`refund_of`), reverses
//! its legs' accounts and never gives back more than it moved. Refunds accumulate per leg of
//! the original in `Table::Refunds` (a leg's amount is its cap), so partial refunds add up and
//! the remaining refundable amount is known when the original is read.

use std::io;

use crate::result::{ItemResult, ResultCode};
use crate::store::{self, ReadStore, Store, Table};
use crate::types::*;

use super::Refusal;

/// The original's refund state after this refund (to write with it), or the rule it breaks.
/// `legs` are the refund's legs as executed (amounts in minor units).
pub fn check(store: &impl ReadStore, input: &TransferInput, original_id: TransferId, legs: &[Leg]) -> io::Result<Result<Refunded, Refusal>> {
    let refuse = |code| Ok(Err(ItemResult::new(code)));
    let Some(original) = store::get_transfer(store, original_id)? else {
        return refuse(ResultCode::RefundOriginalNotFound);
    };
    // Like a hold (`pending::hold`): another principal's transfer reads as absent, its
    // existence not revealed. An input without an owner is the ledger's or auth is off.
    if !input.owner.is_empty() && input.owner != original.owner {
        return refuse(ResultCode::RefundOriginalNotFound);
    }
    if !posted(&original) {
        return refuse(ResultCode::RefundOriginalNotPosted);
    }
    if input.asset != original.asset {
        return refuse(ResultCode::RefundAssetMismatch);
    }
    let mut refunded = store::get_refunded(store, original_id)?.unwrap_or_default();
    refunded.legs_minor.resize(original.legs.len(), 0);
    if let Err(refusal) = allocate(&original.legs, &mut refunded.legs_minor, legs) {
        return Ok(Err(refusal));
    }
    refunded.count = refunded.count.saturating_add(1);
    Ok(Ok(refunded))
}

pub fn record(store: &mut impl Store, original_id: TransferId, refunded: &Refunded) {
    store.put(Table::Refunds, &store::id_key(original_id), store::encode(refunded));
}

/// Money a transfer moved for good: a posted transfer, or the post of a hold (its legs are the
/// amounts posted). A hold itself, a void and an expiry moved nothing to refund.
pub fn posted(transfer: &Transfer) -> bool {
    matches!(transfer.kind, TransferKind::Posted | TransferKind::PostPending)
}

/// What refunds may still take from `original` (`None`: not a refundable transfer).
pub fn refundable(original: &Transfer, refunded: Option<&Refunded>) -> Option<u128> {
    if !posted(original) {
        return None;
    }
    let moved = original.legs.iter().map(|leg| leg.amount_minor).sum::<u128>();
    let taken = refunded.map_or(0, |r| r.legs_minor.iter().sum::<u128>());
    assert!(taken <= moved, "refunds of transfer {} exceed it", original.id);
    Some(moved - taken)
}

/// Each refund leg goes back along original legs with the reversed accounts (debit ↔ credit),
/// filling them in order up to what each has left; `taken` is per original leg.
fn allocate(original: &[Leg], taken: &mut [u128], refund: &[Leg]) -> Result<(), Refusal> {
    assert_eq!(original.len(), taken.len(), "one refunded amount per original leg");
    for (index, leg) in refund.iter().enumerate() {
        let (mut left, mut matched) = (leg.amount_minor, false);
        for (cap, room) in original.iter().zip(taken.iter_mut()) {
            if cap.debit_account_id != leg.credit_account_id || cap.credit_account_id != leg.debit_account_id {
                continue;
            }
            matched = true;
            let take = (cap.amount_minor - *room).min(left);
            *room += take;
            left -= take;
            if left == 0 {
                break;
            }
        }
        if !matched {
            return Err(ItemResult::at_leg(ResultCode::RefundAccountsMismatch, index));
        }
        if left > 0 {
            return Err(ItemResult::at_leg(ResultCode::RefundExceedsRefundable, index));
        }
    }
    assert!(original.iter().zip(taken.iter()).all(|(cap, taken)| *taken <= cap.amount_minor), "a refund passes its cap");
    Ok(())
}
