//! Linked chains (TigerBeetle's linked events): items marked `linked` and the first unlinked
//! item after them commit all or none, whatever their assets. The chain's store writes go to an
//! `Overlay` and its balance changes to a savepoint of the working set; when an item fails, both
//! are dropped, and so are the chain's entries and journal lines: nothing of it is written, not
//! even idempotency records (a corrected retry of the chain runs anew). The failing item keeps
//! its code and leg; the others get `LINKED_EVENT_FAILED`. A chain still open at the end of the
//! command (its last item linked) fails whole with `LINKED_EVENT_CHAIN_OPEN`.

use std::io;

use crate::result::{ItemResult, ResultCode};
use crate::store::Store;
use crate::types::*;

use super::overlay::Overlay;
use super::{Batch, extras_of};

/// The end (exclusive) of the chain that starts at `start`: one item unless it is linked.
pub fn chain_end(extras: &[TransferExtras], start: usize, len: usize) -> usize {
    assert!(start < len, "a chain starts at an item");
    let mut end = start;
    loop {
        let linked = extras_of(extras, end).linked;
        end += 1;
        if !linked || end == len {
            return end;
        }
    }
}

/// Runs `chain` (items `first..` of the command) all or none.
pub fn create_chain(
    store: &mut impl Store,
    batch: &mut Batch<'_>,
    chain: &[TransferInput],
    extras: &[TransferExtras],
    first: usize,
) -> io::Result<()> {
    assert!(!chain.is_empty(), "a chain has items");
    if extras_of(extras, first + chain.len() - 1).linked {
        let open = |input: &TransferInput| ItemResult { id: input.id, ..ItemResult::new(ResultCode::LinkedEventChainOpen) };
        batch.results.extend(chain.iter().map(open));
        return Ok(());
    }
    let (entries_mark, results_mark, events_mark) = (batch.entries.len(), batch.results.len(), batch.events.len());
    batch.working.savepoint();
    let mut overlay = Overlay::new(store);
    let mut broken = None;
    for (offset, input) in chain.iter().enumerate() {
        let result = batch.item(&mut overlay, input, extras_of(extras, first + offset))?;
        if !result.code.is_success() {
            broken = Some((offset, result));
            break;
        }
    }
    let Some((at, breaker)) = broken else {
        overlay.commit();
        batch.working.release();
        return Ok(());
    };
    drop(overlay);
    batch.working.rollback();
    batch.entries.truncate(entries_mark);
    batch.events.truncate(events_mark);
    batch.results.truncate(results_mark);
    // Nothing of the chain was recorded: the breaker's result names no recorded time.
    let breaker = if breaker.replay { breaker } else { ItemResult { timestamp_ns: 0, ..breaker } };
    for (offset, input) in chain.iter().enumerate() {
        let failed = ItemResult { id: input.id, ..ItemResult::new(ResultCode::LinkedEventFailed) };
        batch.results.push(if offset == at { breaker } else { failed });
    }
    assert_eq!(batch.results.len(), results_mark + chain.len(), "one result per chained item");
    Ok(())
}
