//! Properties of refunds and linked chains over random commands (`CreateTransfersWith`):
//! payments in two assets, refunds of earlier transfers (reversed or not, any amount), some of
//! them linked into chains, and plain commands in between. After every command: money is
//! conserved per asset and no account breaks its flags; refunds never exceed their originals
//! (per leg, and the refunds recorded add up to the refund transfers stored); a chain is all or
//! none (every item succeeded, or none of its transfers exists). At the end the same log,
//! replayed into a fresh store, gives the same state hash. Plus: a transfer created without
//! extras reads and journals exactly as before format 4.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::fixtures::*;
use super::properties::check_money;
use crate::apply::apply;
use crate::result::ResultCode;
use crate::store::{self, MemStore, ReadStore, Table};
use crate::types::*;

/// CNY accounts 1..=4 (1: bank; 2, 3: debits within credits), USD 5..=6.
fn setup() -> Vec<Operation> {
    let cny = |id| account(id, "CNY");
    vec![
        assets(vec![asset("CNY", 2), asset("USD", 2)]),
        accounts(vec![cny(1), limited(2, "CNY", 0), limited(3, "CNY", 0), cny(4), account(5, "USD"), limited(6, "USD", 0)]),
        transfers(vec![posted(1, &[(1, 2, 50_000), (1, 3, 50_000)]), TransferInput { asset: "USD".into(), ..posted(2, &[(5, 6, 10_000)]) }]),
    ]
}

#[derive(Debug, Clone)]
enum Pick {
    /// From, to (indexes into the asset's accounts), cents, USD.
    Pay { from: u8, to: u8, cents: u128, usd: bool },
    /// Refund of the n-th transfer made so far: reversed (or not), this share of it in percent.
    Refund { of: usize, reversed: bool, percent: u8 },
}

fn pick() -> impl Strategy<Value = (Pick, bool)> {
    let pay = (0u8..4, 0u8..4, 1u128..30_000, any::<bool>()).prop_map(|(from, to, cents, usd)| Pick::Pay { from, to, cents, usd });
    let refund = (any::<usize>(), prop::bool::weighted(0.9), 1u8..=120).prop_map(|(of, reversed, percent)| Pick::Refund { of, reversed, percent });
    (prop_oneof![pay, refund], prop::bool::weighted(0.3))
}

fn build(pick: &Pick, id: u128, made: &[TransferInput]) -> TransferInput {
    match *pick {
        Pick::Pay { from, to, cents, usd } => {
            let ids: &[u128] = if usd { &[5, 6, 5, 6] } else { &[1, 2, 3, 4] };
            let (debit, credit) = (ids[from as usize], ids[to as usize]);
            let credit = if debit == credit { ids[(to as usize + 1) % 4] } else { credit };
            let credit = if debit == credit { ids[(to as usize + 2) % 4] } else { credit };
            TransferInput { asset: if usd { "USD" } else { "CNY" }.into(), ..posted(id, &[(debit, credit, cents)]) }
        }
        Pick::Refund { of, reversed, percent } => {
            let original = &made[of % made.len()];
            let legs: Vec<_> = original
                .legs
                .iter()
                .map(|l| {
                    let cents = (l.amount.digits * u128::from(percent) / 100).max(1);
                    if reversed { (l.credit_account_id, l.debit_account_id, cents) } else { (l.debit_account_id, l.credit_account_id, cents) }
                })
                .collect();
            TransferInput { asset: original.asset.clone(), ..posted(id, &legs) }
        }
    }
}

/// Refunds stay within their originals, and what `Refunds` records is what the refunds moved.
fn check_refunds(store: &MemStore) -> Result<(), TestCaseError> {
    let mut moved: BTreeMap<u128, u128> = BTreeMap::new();
    for (key, value) in store.scan(Table::TransferDetails, &[], &[0xff; 17], usize::MAX, false).unwrap() {
        let details: TransferDetails = store::decode(Table::TransferDetails, &value).unwrap();
        let id = u128::from_be_bytes(key[..16].try_into().unwrap());
        if details.refund_of != 0 {
            let refund = store::get_transfer(store, id).unwrap().expect("a detailed transfer exists");
            *moved.entry(details.refund_of).or_default() += refund.legs.iter().map(|l| l.amount_minor).sum::<u128>();
        }
    }
    let rows = store.scan(Table::Refunds, &[], &[0xff; 17], usize::MAX, false).unwrap();
    prop_assert_eq!(rows.len(), moved.len());
    for (key, value) in rows {
        let refunded: Refunded = store::decode(Table::Refunds, &value).unwrap();
        let original = store::get_transfer(store, u128::from_be_bytes(key[..16].try_into().unwrap())).unwrap().unwrap();
        for (taken, leg) in refunded.legs_minor.iter().zip(&original.legs) {
            prop_assert!(*taken <= leg.amount_minor, "refunds of {} pass a leg", original.id);
        }
        prop_assert_eq!(Some(&refunded.legs_minor.iter().sum::<u128>()), moved.get(&original.id));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn refunds_and_linked_chains_keep_every_invariant(commands in prop::collection::vec(prop::collection::vec(pick(), 1..8), 1..12)) {
        let mut log: Vec<Command> = setup().into_iter().enumerate().map(|(i, operation)| Command { proposed_at_ns: T0 + i as u64 * MS, operation }).collect();
        let mut store = MemStore::default();
        for command in &log {
            apply(&mut store, command).unwrap();
        }
        let mut made = vec![posted(1, &[(1, 2, 50_000), (1, 3, 50_000)])];
        let mut next_id = 100u128;
        for (n, picks) in commands.iter().enumerate() {
            let mut items = Vec::new();
            let mut extras = Vec::new();
            for (pick, link) in picks {
                next_id += 1;
                items.push(build(pick, next_id, &made));
                let refund_of = match pick { Pick::Refund { of, .. } => made[of % made.len()].id, Pick::Pay { .. } => 0 };
                extras.push(TransferExtras { details: TransferDetails { refund_of, ..TransferDetails::default() }, linked: *link });
            }
            let command = Command { proposed_at_ns: T0 + (10 + n as u64) * MS, operation: Operation::CreateTransfersWith { items: items.clone(), extras: extras.clone() } };
            let results = apply(&mut store, &command).unwrap().results;
            log.push(command);
            check_money(&store)?;
            check_refunds(&store)?;
            // Chains: all or none.
            let mut start = 0;
            while start < items.len() {
                let mut end = start;
                while extras[end].linked && end + 1 < items.len() {
                    end += 1;
                }
                let chain = start..=end;
                let ok = results[chain.clone()].iter().filter(|r| r.code == ResultCode::Ok).count();
                let chained = end > start || extras[end].linked;
                if chained {
                    prop_assert!(ok == 0 || ok == end - start + 1, "chain {:?}: {:?}", chain, &results[chain.clone()]);
                }
                for i in chain {
                    let stored = store::get_transfer(&store, items[i].id).unwrap().is_some();
                    prop_assert_eq!(stored, results[i].code == ResultCode::Ok, "item {}: {:?}", i, results[i]);
                    if stored {
                        made.push(items[i].clone());
                    }
                }
                start = end + 1;
            }
        }
        let mut replayed = MemStore::default();
        for command in &log {
            apply(&mut replayed, command).unwrap();
        }
        prop_assert_eq!(replayed.state_hash(), store.state_hash());
    }
}

/// A transfer without extras writes no details row, keeps its old fingerprint and journals the
/// same line as before (no new keys), whether sent plain or in `CreateTransfersWith`.
#[test]
fn a_transfer_without_extras_reads_and_journals_as_before() {
    let (mut plain, mut with_empty) = (Ledger::world(), Ledger::world());
    let t = posted(990, &[(BANK, SHOP, 123)]);
    plain.ok(transfer(t.clone()));
    with_empty.ok(with(vec![(t.clone(), TransferExtras::default())]));
    assert!(same_rows(&plain.store, &with_empty.store), "the same bytes either way");
    assert_eq!(plain.store.state_hash(), with_empty.store.state_hash());
    assert!(store::get_transfer_details(&plain.store, 990).unwrap().is_none());
    let record = store::get_idempotency(&plain.store, "key-990").unwrap().unwrap();
    assert_eq!(record.fingerprint, crate::transfer::fingerprint(&t));
    let head = crate::journal::head(&plain.store).unwrap();
    let line = crate::journal::get_row(&plain.store, head.seq).unwrap().unwrap().line;
    assert!(!line.contains("refund_of") && !line.contains("reference") && !line.contains("metadata"), "{line}");
    // A refund's line links it to its original; the reference and metadata are journaled.
    let extras = TransferExtras {
        details: TransferDetails { refund_of: 990, reference: "ORDER-9".into(), metadata: BTreeMap::from([("k".into(), "v".into())]) },
        linked: false,
    };
    plain.ok(with(vec![(posted(991, &[(SHOP, BANK, 23)]), extras)]));
    let head = crate::journal::head(&plain.store).unwrap();
    let line = crate::journal::get_row(&plain.store, head.seq).unwrap().unwrap().line;
    assert!(line.ends_with(r#""refund_of":"990","reference":"ORDER-9","metadata":{"k":"v"}}}"#), "{line}");
    let parsed: crate::journal::Line = serde_json::from_str(&line).unwrap();
    let crate::journal::Event::Movement { refund_of, .. } = parsed.event else { panic!("a movement") };
    assert_eq!(refund_of.as_deref(), Some("990"));
}
