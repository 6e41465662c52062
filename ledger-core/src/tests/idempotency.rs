//! Idempotency keys: a retry with the same key and content returns the first result, marked as
//! a replay, and moves nothing, whatever happened since.

use super::fixtures::*;
use crate::result::ResultCode as R;
use crate::store;
use crate::types::*;

#[test]
fn a_replay_returns_the_first_result_and_moves_nothing() {
    let mut l = Ledger::world();
    let first = l.ok(transfer(posted(30, &[(BANK, SHOP, 100)])));
    l.ok(transfer(posted(31, &[(BANK, SHOP, 5)])));
    let again = l.changes_nothing(transfer(posted(30, &[(BANK, SHOP, 100)])));
    assert_eq!(again, crate::ItemResult { replay: true, ..first });
    assert_eq!(l.b(SHOP).1, 100 + 105, "moved once");
}

#[test]
fn a_replay_of_a_failed_first_attempt_returns_the_failure_even_once_it_would_succeed() {
    let mut l = Ledger::world();
    let first = l.one(transfer(posted(30, &[(WALLET, SHOP, 10_000)])));
    assert_eq!((first.code, first.leg_index), (R::ExceedsCredits, Some(0)));
    // WALLET now has enough; the retry still answers what happened the first time.
    l.ok(transfer(posted(31, &[(BANK, WALLET, 10_000)])));
    let again = l.changes_nothing(transfer(posted(30, &[(WALLET, SHOP, 10_000)])));
    assert_eq!(again, crate::ItemResult { replay: true, ..first });
    assert!(l.find_transfer(30).is_none());
}

#[test]
fn a_replay_within_the_same_batch_moves_once() {
    let mut l = Ledger::world();
    let t = posted(30, &[(BANK, SHOP, 100)]);
    let results = l.apply(transfers(vec![t.clone(), t])).results;
    assert_eq!((results[0].code, results[0].replay), (R::Ok, false));
    assert_eq!(results[1], crate::ItemResult { replay: true, ..results[0] });
    assert_eq!(l.b(SHOP).1, 200);
}

#[test]
fn a_replayed_post_does_not_post_twice() {
    let mut l = Ledger::world();
    l.ok(transfer(pending(30, &[(BANK, SHOP, 1_000)], 0)));
    let first = l.ok(transfer(post(31, 30, &[400])));
    let again = l.changes_nothing(transfer(post(31, 30, &[400])));
    assert_eq!((again.code, again.replay, again.timestamp_ns), (R::Ok, true, first.timestamp_ns));
    assert_eq!(l.b(BANK), (10_100 + 400, 0, 0, 0));
}

#[test]
fn a_conflicting_retry_keeps_the_first_binding() {
    let mut l = Ledger::world();
    let first = l.ok(transfer(posted(30, &[(BANK, SHOP, 100)])));
    l.refuses(transfer(TransferInput { code: 7, ..posted(30, &[(BANK, SHOP, 100)]) }), R::IdempotencyKeyConflict, None);
    let record = store::get_idempotency(&l.store, "key-30").unwrap().unwrap();
    assert_eq!((record.transfer_id, record.code, record.timestamp_ns), (30, R::Ok, first.timestamp_ns));
    assert!(l.changes_nothing(transfer(posted(30, &[(BANK, SHOP, 100)]))).replay);
}

#[test]
fn a_malformed_transfer_does_not_bind_its_key() {
    // Refused before it is recorded: the corrected request may reuse the key.
    let mut l = Ledger::world();
    l.refuses(transfer(posted(30, &[])), R::LegsEmpty, None);
    assert!(store::get_idempotency(&l.store, "key-30").unwrap().is_none());
    let r = l.ok(transfer(posted(30, &[(BANK, SHOP, 100)])));
    assert!(!r.replay);
}

#[test]
fn a_failure_after_validation_binds_its_key_and_takes_a_timestamp() {
    let mut l = Ledger::world();
    let before = l.last_timestamp();
    let r = l.one(transfer(post(30, 99, &[])));
    assert_eq!(r.code, R::PendingTransferNotFound);
    assert!(r.timestamp_ns > before);
    let record = store::get_idempotency(&l.store, "key-30").unwrap().unwrap();
    assert_eq!((record.code, record.timestamp_ns, record.transfer_id), (r.code, r.timestamp_ns, 30));
}

#[test]
fn a_key_is_bound_to_its_principal_and_never_answers_another() {
    let mut l = Ledger::world();
    let as_checkout = |t: TransferInput| TransferInput { owner: "checkout".into(), ..t };
    let as_refunds = |t: TransferInput| TransferInput { owner: "refunds".into(), ..t };
    l.ok(transfer(as_checkout(posted(30, &[(BANK, SHOP, 100)]))));
    assert_eq!(l.transfer(30).owner, "checkout");
    assert_eq!(store::get_idempotency(&l.store, "key-30").unwrap().unwrap().owner, "checkout");
    // The same key and content from another principal: a conflict that does not name the
    // first transfer (its id stays the caller's own), and nothing moves.
    let other = as_refunds(TransferInput { id: 99, ..posted(30, &[(BANK, SHOP, 100)]) });
    let refused = l.refuses(transfer(other), R::IdempotencyKeyConflict, None);
    assert_eq!(refused.id, 99, "another principal's transfer id is not revealed");
    // The owner's own conflicting retry is told which transfer holds the key.
    let mine = l.refuses(transfer(as_checkout(TransferInput { id: 31, code: 7, ..posted(30, &[(BANK, SHOP, 100)]) })), R::IdempotencyKeyConflict, None);
    assert_eq!(mine.id, 30);
    assert!(l.changes_nothing(transfer(as_checkout(posted(30, &[(BANK, SHOP, 100)])))).replay);
}

/// Issue 18 item 8: only the principal that placed a hold posts or voids it; to any other it
/// is not found (its existence is not revealed), and the ledger's own holds (owner "") are no
/// principal's. The post is owned by who posts it.
#[test]
fn a_hold_is_posted_or_voided_only_by_its_owner() {
    let mut l = Ledger::world();
    l.ok(transfer(TransferInput { owner: "checkout".into(), ..pending(30, &[(BANK, SHOP, 1_000)], 0) }));
    let as_settlement = |t: TransferInput| TransferInput { owner: "settlement".into(), ..t };
    l.refuses(transfer(as_settlement(post(31, 30, &[]))), R::PendingTransferNotFound, None);
    l.refuses(transfer(as_settlement(void(32, 30))), R::PendingTransferNotFound, None);
    l.refuses(transfer(as_settlement(post(33, HOLD, &[]))), R::PendingTransferNotFound, None);
    assert_eq!(l.transfer(30).pending_state, PendingState::Pending, "untouched");
    l.ok(transfer(TransferInput { owner: "checkout".into(), ..post(34, 30, &[]) }));
    assert_eq!((l.transfer(30).owner.as_str(), l.transfer(34).owner.as_str()), ("checkout", "checkout"));
    // Without an owner (authentication off, or the ledger itself) every hold resolves as before.
    l.ok(transfer(void(35, HOLD)));
}
