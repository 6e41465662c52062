//! The blocklist of tokens and devices (a stolen phone, a cloned card). A blocked device gets no
//! new token; a blocked token is revoked. Offline records of a blocked token or device are not
//! posted: they become exceptions (`BLOCKED`) for an operator to review, and the money stays in
//! the hold until it is released. Unblocking stops refusing; it does not un-revoke a token.

use std::io;

use serde::{Deserialize, Serialize};

use super::token::{self, get_token, put_token};
use super::types::TokenId;
use crate::clock::Clock;
use crate::limits::{REASON_BYTES_MAX, WALLET_DEVICE_ID_BYTES_MAX};
use crate::result::{ItemResult, ResultCode};
use crate::store::{self, Store, Table};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockTarget {
    Token(TokenId),
    Device(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockInput {
    pub target: BlockTarget,
    /// false: take it off the list.
    pub blocked: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEntry {
    pub reason: String,
    pub timestamp_ns: u64,
}

pub fn key(target: &BlockTarget) -> Vec<u8> {
    match target {
        BlockTarget::Token(id) => [&[b't'][..], &store::id_key(*id)].concat(),
        BlockTarget::Device(device) => [&[b'd'][..], device.as_bytes()].concat(),
    }
}

pub fn get(store: &impl Store, target: &BlockTarget) -> io::Result<Option<BlockEntry>> {
    store::get_typed(store, Table::Blocklist, &key(target))
}

/// Whether a token (by id) or its device is blocked.
pub fn is_blocked(store: &impl Store, token_id: TokenId, device_id: &str) -> io::Result<bool> {
    Ok(get(store, &BlockTarget::Token(token_id))?.is_some() || get(store, &BlockTarget::Device(device_id.to_string()))?.is_some())
}

/// The checks of a change that need no state (the API runs them too, before proposing).
pub fn check(input: &BlockInput) -> Result<(), ResultCode> {
    match &input.target {
        BlockTarget::Token(0) => return Err(ResultCode::IdMustNotBeZero),
        BlockTarget::Device(d) if d.is_empty() || d.len() > WALLET_DEVICE_ID_BYTES_MAX => {
            return Err(ResultCode::DeviceIdInvalid);
        }
        _ => {}
    }
    if input.reason.len() > REASON_BYTES_MAX {
        return Err(ResultCode::ReasonInvalid);
    }
    Ok(())
}

pub fn set(store: &mut impl Store, input: &BlockInput, clock: &mut Clock) -> io::Result<ItemResult> {
    if let Err(code) = check(input) {
        return Ok(ItemResult::new(code));
    }
    let timestamp_ns = clock.tick();
    let key = key(&input.target);
    if input.blocked {
        store.put(Table::Blocklist, &key, store::encode(&BlockEntry { reason: input.reason.clone(), timestamp_ns }));
        if let BlockTarget::Token(id) = input.target {
            if let Some(mut token) = get_token(store, id)? {
                token::mark_revoked(&mut token, &format!("blocked: {}", input.reason));
                put_token(store, &token);
            }
        }
    } else {
        store.delete(Table::Blocklist, &key);
    }
    Ok(ItemResult { timestamp_ns, ..ItemResult::new(ResultCode::Ok) })
}
