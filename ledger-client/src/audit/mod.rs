//! Regulator audit: the journal head, range exports written to a directory, the offline
//! verifier, statements and the reconciliation report. File formats: `files.rs` and the README
//! "Audit and export".

pub mod amount;
pub mod export;
pub mod files;
pub mod reconcile;
pub mod statement;
pub mod verify;

use crate::client::{CallKind, LedgerClient};
use crate::error::ClientError;
use ledger_proto::api;

/// The newest journal line: pin `(seq, hash)` and check later exports against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalHead {
    pub seq: u64,
    pub hash: [u8; 32],
    pub timestamp_ns: u64,
}

impl JournalHead {
    /// `seq:hex`, the form `ledger audit verify --pin` takes.
    pub fn pin(&self) -> String {
        format!("{}:{}", self.seq, hex(&self.hash))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

pub(crate) fn hash32(bytes: &[u8], what: &str) -> Result<[u8; 32], ClientError> {
    bytes.try_into().map_err(|_| ClientError::protocol(format!("{what} is {} bytes, not 32", bytes.len())))
}

impl LedgerClient {
    pub async fn journal_head(&self) -> Result<JournalHead, ClientError> {
        let head = self
            .audit_call("GetJournalHead", CallKind::Read, api::GetJournalHeadRequest {}, |mut grpc, request| async move {
                grpc.get_journal_head(request).await
            })
            .await?;
        Ok(JournalHead { seq: head.seq, hash: hash32(&head.hash, "journal head hash")?, timestamp_ns: head.timestamp_ns })
    }
}
