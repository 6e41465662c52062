//! Sync of offline records from the phone, the terminal, or both, in any order, any number of
//! times: each (token, sequence) posts at most once; everything else becomes an exception.

use std::io;

use super::types::*;
use super::{spend, token};
use crate::clock::Clock;
use crate::result::{ItemResult, ResultCode};
use crate::store::{self, Store, Table};
use crate::types::AccountEntry;

pub fn record_key(token_id: TokenId, sequence: u64) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(&token_id.to_be_bytes());
    key[16..].copy_from_slice(&sequence.to_be_bytes());
    key
}

pub fn get_record(store: &impl store::ReadStore, token_id: TokenId, sequence: u64) -> io::Result<Option<PostedRecord>> {
    store::get_typed(store, Table::WalletRecords, &record_key(token_id, sequence))
}

/// Exceptions of a token, in arrival order (key token ‖ timestamp).
pub fn exceptions(store: &impl store::ReadStore, token_id: TokenId, limit: usize) -> io::Result<Vec<WalletException>> {
    let start = record_key(token_id, 0);
    let end = match token_id.checked_add(1) {
        Some(next) => record_key(next, 0).to_vec(),
        None => vec![0xff; 25],
    };
    store
        .scan(Table::WalletExceptions, &start, &end, limit, false)?
        .iter()
        .map(|(_, v)| store::decode(Table::WalletExceptions, v))
        .collect()
}

/// One result per record, then one for the re-issue (Ok, or why not).
pub fn sync(
    store: &mut impl Store,
    input: &SyncInput,
    clock: &mut Clock,
    entries: &mut Vec<AccountEntry>,
    results: &mut Vec<ItemResult>,
) -> io::Result<()> {
    let mut token = token::get_token(store, input.token_id)?;
    for record in &input.records {
        let timestamp_ns = clock.tick();
        let outcome = match token.as_mut() {
            None => Err(ResultCode::TokenNotFound),
            Some(token) => one(store, token, record, timestamp_ns, entries)?,
        };
        let result = match outcome {
            Ok(replay) => ItemResult { timestamp_ns, replay, id: input.token_id, ..ItemResult::new(ResultCode::Ok) },
            Err(reason) => {
                let result = ItemResult { timestamp_ns, id: input.token_id, ..ItemResult::new(reason) };
                let exception = exception(input.token_id, record, &result);
                store.put(Table::WalletExceptions, &record_key(input.token_id, timestamp_ns), store::encode(&exception));
                result
            }
        };
        results.push(result);
    }
    let reissue = match token.as_mut() {
        None => ItemResult::new(ResultCode::TokenNotFound),
        Some(_) if input.reissue_through_sequence == 0 => ItemResult::new(ResultCode::Ok),
        Some(token) => {
            let code = reissue_if_complete(store, token, input.reissue_through_sequence, clock, entries)?;
            ItemResult { id: token.id, timestamp_ns: clock.peek() - 1, ..ItemResult::new(code) }
        }
    };
    results.push(reissue);
    if let Some(token) = &token {
        token::put_token(store, token);
    }
    Ok(())
}

/// The exception a refused record becomes.
pub fn exception(token_id: TokenId, record: &OfflineRecordInput, result: &ItemResult) -> WalletException {
    WalletException {
        token_id,
        sequence: record.sequence,
        amount: record.amount,
        merchant_account_id: record.merchant_account_id,
        device_time_ms: record.device_time_ms,
        reason: result.code,
        timestamp_ns: result.timestamp_ns,
    }
}

/// Ok(true): a duplicate of a posted record (nothing moves). Ok(false): posted now.
fn one(
    store: &mut impl Store,
    token: &mut Token,
    record: &OfflineRecordInput,
    timestamp_ns: u64,
    entries: &mut Vec<AccountEntry>,
) -> io::Result<Result<bool, ResultCode>> {
    if !record.mac_valid {
        return Ok(Err(ResultCode::MacInvalid));
    }
    // A blocked token or device posts nothing new (a duplicate of a posted record is still a
    // replay: it changes nothing).
    if super::blocklist::is_blocked(store, token.id, &token.device_id)? && get_record(store, token.id, record.sequence)?.is_none() {
        return Ok(Err(ResultCode::Blocked));
    }
    let Some(asset) = store::get_asset(store, &token.asset)? else {
        return Err(store::corruption(Table::WalletTokens, "a token names a missing asset"));
    };
    let amount_minor = match record.amount.to_minor(asset.scale) {
        Ok(0) => return Ok(Err(ResultCode::AmountZero)),
        Ok(minor) => minor,
        Err(code) => return Ok(Err(code)),
    };
    if let Some(posted) = get_record(store, token.id, record.sequence)? {
        let same = posted.amount_minor == amount_minor
            && posted.merchant_account_id == record.merchant_account_id
            && posted.device_time_ms == record.device_time_ms
            && posted.mac == record.mac;
        if same {
            return Ok(Ok(true));
        }
        // Two different valid records under one sequence: the token's key is in two devices.
        token::mark_revoked(token, "clone: a sequence was reused with other content");
        return Ok(Err(ResultCode::SequenceReused));
    }
    if token.status == TokenStatus::Released {
        return Ok(Err(ResultCode::TokenNotActive));
    }
    if record.sequence <= token.seq_base {
        // Below the window and never posted: the phone declared its window complete without it.
        return Ok(Err(ResultCode::SequenceReused));
    }
    if record.sequence > token.seq_base + u64::from(token.max_offline_count) {
        return Ok(Err(ResultCode::OfflineCountExceeded));
    }
    let transfer_id = token::derived_id("spend", token.id, record.sequence);
    if let Err(code) =
        spend::spend(store, token, amount_minor, record.merchant_account_id, transfer_id, timestamp_ns, entries)?
    {
        return Ok(Err(code));
    }
    token.window_count += 1;
    token.seq_high = token.seq_high.max(record.sequence);
    let posted = PostedRecord {
        token_id: token.id,
        sequence: record.sequence,
        amount_minor,
        merchant_account_id: record.merchant_account_id,
        device_time_ms: record.device_time_ms,
        mac: record.mac,
        transfer_id,
        timestamp_ns,
    };
    store.put(Table::WalletRecords, &record_key(token.id, record.sequence), store::encode(&posted));
    Ok(Ok(false))
}

/// Re-issues when every sequence of the window up to `through` is posted and the token is
/// active; otherwise the allowance is not reset (a failed or partial sync leaves it as it was).
fn reissue_if_complete(
    store: &mut impl Store,
    token: &mut Token,
    through: u64,
    clock: &mut Clock,
    entries: &mut Vec<AccountEntry>,
) -> io::Result<ResultCode> {
    if token.status != TokenStatus::Active {
        return Ok(ResultCode::TokenNotActive);
    }
    if through < token.seq_base || through > token.seq_base + u64::from(token.max_offline_count) {
        return Ok(ResultCode::SyncIncomplete);
    }
    for sequence in token.seq_base + 1..=through {
        if get_record(store, token.id, sequence)?.is_none() {
            return Ok(ResultCode::SyncIncomplete);
        }
    }
    if token.seq_high > through {
        return Ok(ResultCode::SyncIncomplete);
    }
    Ok(match token::reissue(store, token, clock, entries)? {
        Ok(()) => ResultCode::Ok,
        Err(code) => code,
    })
}
