//! Issuing, re-issuing, revoking and releasing tokens, and the holds behind them.

use std::io;

use sha2::{Digest, Sha256};

use super::types::*;
use crate::amount::DecimalInput;
use crate::clock::Clock;
use crate::limits::{
    WALLET_DEVICE_ID_BYTES_MAX, WALLET_OFFLINE_COUNT_MAX, WALLET_RELEASE_GRACE_MS, WALLET_RELEASES_PER_COMMAND_MAX,
    WALLET_VALIDITY_MS_DEFAULT, WALLET_VALIDITY_MS_MAX,
};
use crate::result::{ItemResult, ResultCode};
use crate::store::{self, Store, Table};
use crate::transfer;
use crate::types::*;

const MS: u64 = 1_000_000;

/// Ids of the transfers the wallet makes itself: SHA-256 of a tag, the token and a number.
/// Deterministic, so every replica makes the same ids; a clash with a client id is refused.
pub fn derived_id(tag: &str, token_id: TokenId, n: u64) -> u128 {
    let mut h = Sha256::new();
    h.update(b"ledger.wallet.");
    h.update(tag.as_bytes());
    h.update(token_id.to_be_bytes());
    h.update(n.to_be_bytes());
    let digest = h.finalize();
    u128::from_be_bytes(digest[..16].try_into().expect("16 bytes")).max(1)
}

pub fn get_token(store: &impl store::ReadStore, token_id: TokenId) -> io::Result<Option<Token>> {
    store::get_typed(store, Table::WalletTokens, &store::id_key(token_id))
}

pub fn put_token(store: &mut impl Store, token: &Token) {
    store.put(Table::WalletTokens, &store::id_key(token.id), store::encode(token));
}

fn release_key(token: &Token) -> [u8; 24] {
    store::expiry_key(token.release_at_ns, token.id)
}

/// What the wallet can still spend online: for an account whose debits must not exceed its
/// credits, credits + overdraft − debits − holds; otherwise unbounded.
pub fn available_minor(account: &Account) -> u128 {
    if !account.debits_must_not_exceed_credits {
        return u128::MAX;
    }
    let b = &account.balances;
    b.credits_posted
        .saturating_add(account.overdraft_limit_minor)
        .saturating_sub(b.debits_posted.saturating_add(b.debits_pending))
}

/// The checks of an issue that need no state, in the order `issue` runs them (the API runs them
/// too, to refuse before proposing).
pub fn check_issue(input: &IssueTokenInput) -> Result<(), ResultCode> {
    if input.token_id == 0 || input.account_id == 0 || input.clearing_account_id == 0 {
        return Err(ResultCode::IdMustNotBeZero);
    }
    if input.account_id == input.clearing_account_id {
        return Err(ResultCode::AccountsMustBeDifferent);
    }
    if input.device_id.is_empty() || input.device_id.len() > WALLET_DEVICE_ID_BYTES_MAX {
        return Err(ResultCode::DeviceIdInvalid);
    }
    if input.max_offline_count == 0 || input.max_offline_count > WALLET_OFFLINE_COUNT_MAX {
        return Err(ResultCode::OfflineCountExceeded);
    }
    if input.validity_ms > WALLET_VALIDITY_MS_MAX {
        return Err(ResultCode::TimeoutTooLarge);
    }
    Ok(())
}

pub fn issue(
    store: &mut impl Store,
    input: &IssueTokenInput,
    clock: &mut Clock,
    entries: &mut Vec<AccountEntry>,
) -> io::Result<ItemResult> {
    let refuse = |code| Ok(ItemResult { id: input.token_id, ..ItemResult::new(code) });
    if let Err(code) = check_issue(input) {
        return refuse(code);
    }
    if super::blocklist::is_blocked(store, input.token_id, &input.device_id)? {
        return refuse(ResultCode::Blocked);
    }
    if let Some(existing) = get_token(store, input.token_id)? {
        let same = existing.account_id == input.account_id && existing.device_id == input.device_id;
        let code = if same { ResultCode::Exists } else { ResultCode::ExistsWithDifferentFields };
        return Ok(ItemResult { timestamp_ns: existing.issued_at_ns, id: input.token_id, ..ItemResult::new(code) });
    }
    let Some(account) = store::get_account(store, input.account_id)? else {
        return refuse(ResultCode::AccountNotFound);
    };
    let Some(clearing) = store::get_account(store, input.clearing_account_id)? else {
        return refuse(ResultCode::AccountNotFound);
    };
    if clearing.asset != account.asset {
        return refuse(ResultCode::AssetMismatch);
    }
    let Some(asset) = store::get_asset(store, &account.asset)? else {
        return Err(store::corruption(Table::Accounts, "an account names a missing asset"));
    };
    let limit_minor = match input.offline_limit.to_minor(asset.scale) {
        Ok(0) => return refuse(ResultCode::AmountZero),
        Ok(minor) => minor,
        Err(code) => return refuse(code),
    };
    if let Err(code) = crate::account::check_debit(&account) {
        return refuse(code);
    }
    let validity_ms = if input.validity_ms == 0 { WALLET_VALIDITY_MS_DEFAULT } else { input.validity_ms };
    // A hold the ledger refuses (a closed or credit-capped clearing account) refuses the issue,
    // and a refused issue writes nothing: not the hold's idempotency record, not a timestamp.
    let checkpoint = clock.checkpoint();
    let hold_recorded = store::get_idempotency(store, &hold_key(input.token_id, 0))?.is_some();
    let issued_at_ns = clock.tick();
    let expires_at_ns = issued_at_ns.saturating_add(validity_ms.saturating_mul(MS));
    let mut token = Token {
        id: input.token_id,
        account_id: input.account_id,
        clearing_account_id: input.clearing_account_id,
        device_id: input.device_id.clone(),
        asset: asset.code.clone(),
        offline_limit_minor: limit_minor,
        max_offline_count: input.max_offline_count,
        issued_at_ns,
        expires_at_ns,
        release_at_ns: expires_at_ns.saturating_add(WALLET_RELEASE_GRACE_MS.saturating_mul(MS)),
        status: TokenStatus::Active,
        revoke_reason: String::new(),
        hold_id: 0,
        hold_remaining_minor: 0,
        hold_placed_minor: 0,
        generation: 0,
        seq_base: 0,
        seq_high: 0,
        window_count: 0,
        posted_total_minor: 0,
        validity_ms,
    };
    if let Err(code) = place_hold(store, &mut token, asset.scale, clock, entries)? {
        if !hold_recorded {
            store.delete(Table::Idempotency, hold_key(token.id, 0).as_bytes());
        }
        clock.rewind(checkpoint);
        return refuse(code);
    }
    store.put(Table::WalletReleases, &release_key(&token), store::encode(&()));
    put_token(store, &token);
    Ok(ItemResult { timestamp_ns: issued_at_ns, id: token.id, ..ItemResult::new(ResultCode::Ok) })
}

/// The idempotency key of a token's hold of window `generation`.
fn hold_key(token_id: TokenId, generation: u32) -> String {
    format!("wallet:{token_id}:hold:{generation}")
}

/// Places the hold of a new window: the limit, capped by what the wallet can spend.
fn place_hold(
    store: &mut impl Store,
    token: &mut Token,
    scale: u8,
    clock: &mut Clock,
    entries: &mut Vec<AccountEntry>,
) -> io::Result<Result<(), ResultCode>> {
    let Some(account) = store::get_account(store, token.account_id)? else {
        return Err(store::corruption(Table::WalletTokens, "a token names a missing account"));
    };
    let hold_minor = token.offline_limit_minor.min(available_minor(&account));
    token.hold_placed_minor = hold_minor;
    token.hold_remaining_minor = hold_minor;
    token.hold_id = 0;
    if hold_minor == 0 {
        return Ok(Ok(()));
    }
    let hold_id = derived_id("hold", token.id, u64::from(token.generation));
    let input = TransferInput {
        id: hold_id,
        idempotency_key: hold_key(token.id, token.generation),
        asset: token.asset.clone(),
        kind: TransferKind::Pending,
        legs: vec![LegInput {
            debit_account_id: token.account_id,
            credit_account_id: token.clearing_account_id,
            amount: DecimalInput { digits: hold_minor, scale },
        }],
        pending_id: 0,
        timeout_ms: 0,
        post_amounts: Vec::new(),
        code: 0,
        owner: String::new(),
    };
    let result = transfer::create_internal(store, &input, clock, entries)?;
    if result.code != ResultCode::Ok {
        return Ok(Err(result.code));
    }
    token.hold_id = hold_id;
    Ok(Ok(()))
}

/// Voids what is left of the current hold (nothing when it is spent or was never placed).
fn release_hold(
    store: &mut impl Store,
    token: &mut Token,
    clock: &mut Clock,
    entries: &mut Vec<AccountEntry>,
) -> io::Result<()> {
    if token.hold_id != 0 && token.hold_remaining_minor > 0 {
        let input = TransferInput {
            id: derived_id("void", token.id, u64::from(token.generation)),
            idempotency_key: format!("wallet:{}:void:{}", token.id, token.generation),
            asset: String::new(),
            kind: TransferKind::VoidPending,
            legs: Vec::new(),
            pending_id: token.hold_id,
            timeout_ms: 0,
            post_amounts: Vec::new(),
            code: 0,
            owner: String::new(),
        };
        let result = transfer::create_internal(store, &input, clock, entries)?;
        if result.code != ResultCode::Ok {
            return Err(store::corruption(Table::WalletTokens, "a token's hold could not be voided"));
        }
    }
    token.hold_remaining_minor = 0;
    Ok(())
}

/// Re-issue after a complete sync: void the rest of the hold, open a new window with a hold of
/// the limit (capped by the balance), valid for another validity period.
pub fn reissue(
    store: &mut impl Store,
    token: &mut Token,
    clock: &mut Clock,
    entries: &mut Vec<AccountEntry>,
) -> io::Result<Result<(), ResultCode>> {
    let Some(asset) = store::get_asset(store, &token.asset)? else {
        return Err(store::corruption(Table::WalletTokens, "a token names a missing asset"));
    };
    release_hold(store, token, clock, entries)?;
    store.delete(Table::WalletReleases, &release_key(token));
    token.generation += 1;
    token.seq_base = token.seq_high;
    token.window_count = 0;
    let now_ns = clock.tick();
    token.expires_at_ns = now_ns.saturating_add(token.validity_ms.saturating_mul(MS));
    token.release_at_ns = token.expires_at_ns.saturating_add(WALLET_RELEASE_GRACE_MS.saturating_mul(MS));
    let placed = place_hold(store, token, asset.scale, clock, entries)?;
    store.put(Table::WalletReleases, &release_key(token), store::encode(&()));
    Ok(placed)
}

pub fn revoke(store: &mut impl Store, input: &RevokeTokenInput, clock: &mut Clock) -> io::Result<ItemResult> {
    if input.reason.len() > crate::limits::REASON_BYTES_MAX {
        return Ok(ItemResult::new(ResultCode::ReasonInvalid));
    }
    let Some(mut token) = get_token(store, input.token_id)? else {
        return Ok(ItemResult { id: input.token_id, ..ItemResult::new(ResultCode::TokenNotFound) });
    };
    let timestamp_ns = clock.tick();
    mark_revoked(&mut token, &input.reason);
    put_token(store, &token);
    Ok(ItemResult { timestamp_ns, id: token.id, ..ItemResult::new(ResultCode::Ok) })
}

/// Revoked: no re-issue; the hold stays until expiry + grace so records made before the
/// revocation can still be posted, then it is released.
pub fn mark_revoked(token: &mut Token, reason: &str) {
    if token.status == TokenStatus::Active {
        token.status = TokenStatus::Revoked;
        token.revoke_reason = reason.to_string();
    }
}

/// Releases the holds of tokens past expiry + grace. Driven by Raft-entry time, like
/// `pending::expire_due`; bounded per command.
/// Returns the tokens released (for the journal).
pub fn release_due(store: &mut impl Store, clock: &mut Clock, entries: &mut Vec<AccountEntry>) -> io::Result<Vec<Token>> {
    let now_ns = clock.peek();
    let end = store::expiry_key(now_ns.saturating_add(1), 0);
    let due = store.scan(Table::WalletReleases, &[], &end, WALLET_RELEASES_PER_COMMAND_MAX, false)?;
    let mut released = Vec::with_capacity(due.len());
    for (key, _) in &due {
        store.delete(Table::WalletReleases, key);
        let (_, token_id) =
            store::expiry_key_parts(key).ok_or_else(|| store::corruption(Table::WalletReleases, "short key"))?;
        let Some(mut token) = get_token(store, token_id)? else {
            return Err(store::corruption(Table::WalletTokens, "a release names a missing token"));
        };
        release_hold(store, &mut token, clock, entries)?;
        token.status = TokenStatus::Released;
        put_token(store, &token);
        released.push(token);
    }
    Ok(released)
}
