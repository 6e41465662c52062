//! Creating assets (the ledgers: a currency code and its scale).

use std::io;

use super::clock::Clock;
use super::result::{ItemResult, ResultCode};
use super::store::{self, Store, Table};
use super::types::{Asset, AssetInput};
use super::validate;

/// The result, and the asset when this item created it (for its journal line).
pub fn create(store: &mut impl Store, input: &AssetInput, clock: &mut Clock) -> io::Result<(ItemResult, Option<Asset>)> {
    if let Err(code) = validate::asset(input) {
        return Ok((ItemResult::new(code), None));
    }
    // validate::asset bounds the scale to 0..=18.
    let scale = input.scale as u8;
    if let Some(existing) = store::get_asset(store, &input.code)? {
        let code = if existing.scale == scale { ResultCode::Exists } else { ResultCode::ExistsWithDifferentFields };
        return Ok((ItemResult { timestamp_ns: existing.timestamp_ns, ..ItemResult::new(code) }, None));
    }
    let asset = Asset { code: input.code.clone(), scale, timestamp_ns: clock.tick() };
    store.put(Table::Assets, asset.code.as_bytes(), store::encode(&asset));
    Ok((ItemResult { timestamp_ns: asset.timestamp_ns, ..ItemResult::new(ResultCode::Ok) }, Some(asset)))
}
