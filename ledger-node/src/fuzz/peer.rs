//! Target `peer`: bytes from another node or from the node's own disk. The first byte picks the
//! decoder: the CRC-32 ‖ postcard codec of every persisted or shipped value (Raft log entries,
//! votes, log ids, memberships, snapshot metas, peer RPCs and replies, ledger rows), the
//! `RaftPeer` protobuf envelopes (`RaftMessage`, `SnapshotChunk`) and the snapshot file reader.
//! Must not panic; a decoded value must re-encode to the same bytes (so a corrupted value can
//! never decode to a different one: the CRC guards the bytes, and the bytes are canonical).

use std::io;

use ledger_proto::raft::{RaftMessage, SnapshotChunk};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest, VoteResponse};
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;

use ledger_core::codec;
use ledger_core::types::{Account, AccountEntry, Asset, Command, IdempotencyRecord, Transfer};
use ledger_core::wallet::{PostedRecord, Token, WalletException};
use crate::raft::network::open_message;
use crate::raft::{CommandResponse, Entry, LogId, SnapshotMeta, StoredMembership, TypeConfig, Vote};

/// Decoders, by the first byte (mod the count).
pub const DECODERS: u8 = 20;

pub fn run(bytes: &[u8]) {
    let Some((tag, body)) = bytes.split_first() else { return };
    let _ = decode(tag % DECODERS, body);
}

/// Decodes `body` with decoder `tag`: Ok(true) if it decoded, Ok(false) if it was refused,
/// Err only for IO of the snapshot reader's scratch file.
pub fn decode(tag: u8, body: &[u8]) -> io::Result<bool> {
    Ok(match tag {
        0 => framed::<Entry>(body),
        1 => framed::<AppendEntriesRequest<TypeConfig>>(body),
        2 => framed::<AppendEntriesResponse<TypeConfig>>(body),
        3 => framed::<VoteRequest<TypeConfig>>(body),
        4 => framed::<VoteResponse<TypeConfig>>(body),
        5 => framed::<Vote>(body),
        6 => framed::<Option<LogId>>(body),
        7 => framed::<StoredMembership>(body),
        8 => framed::<SnapshotMeta>(body),
        9 => framed::<CommandResponse>(body),
        10 => framed::<Command>(body),
        11 => framed::<Account>(body),
        12 => framed::<Transfer>(body),
        13 => framed::<IdempotencyRecord>(body),
        14 => framed::<AccountEntry>(body) | framed::<Asset>(body),
        15 => framed::<Token>(body) | framed::<PostedRecord>(body) | framed::<WalletException>(body),
        16 => raft_message(body),
        17 => snapshot_chunk(body),
        18 => return snapshot_file(body),
        _ => framed::<ledger_core::journal::Row>(body),
    })
}

/// The codec: refuses, or decodes to a value that encodes back to exactly these bytes.
fn framed<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> bool {
    match codec::decode::<T>(&"fuzzed value", bytes) {
        Err(e) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
            assert!(e.to_string().contains("corrupted fuzzed value"), "{e}");
            false
        }
        Ok(value) => {
            let again = codec::encode(&value);
            // postcard ignores trailing bytes after a complete value; everything else is canonical
            // except varints with redundant continuation bytes, which postcard refuses.
            assert!(bytes[4..].starts_with(&again[4..]), "a decoded value re-encodes differently");
            true
        }
    }
}

/// A peer RPC envelope (as `PeerService` opens it): prost, then the payload CRC, then the codec.
fn raft_message(bytes: &[u8]) -> bool {
    let Ok(message) = RaftMessage::decode(bytes) else { return false };
    let appended = open_message::<AppendEntriesRequest<TypeConfig>>("append_entries", &message).is_ok();
    let voted = open_message::<VoteRequest<TypeConfig>>("vote", &message).is_ok();
    let snapshot_header = open_message::<(Vote, SnapshotMeta)>("snapshot header", &message).is_ok();
    if appended || voted || snapshot_header {
        assert_eq!(crc32fast::hash(&message.payload), message.crc32, "opened a message whose checksum does not match");
    }
    appended || voted || snapshot_header
}

/// A snapshot stream chunk: prost, the chunk CRC, and its header envelope.
fn snapshot_chunk(bytes: &[u8]) -> bool {
    let Ok(chunk) = SnapshotChunk::decode(bytes) else { return false };
    if let Some(header) = &chunk.header {
        let _ = open_message::<(Vote, SnapshotMeta)>("snapshot header", header);
    }
    crc32fast::hash(&chunk.data) == chunk.crc32
}

/// The snapshot file reader (what a received snapshot goes through before Raft sees it).
fn snapshot_file(bytes: &[u8]) -> io::Result<bool> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!("ledger-fuzz-snapshot-{}-{}.bin", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, bytes)?;
    let verified = crate::raft::snapshot::verify(&path);
    let _ = std::fs::remove_file(&path);
    Ok(match verified {
        Ok(_) => true,
        Err(e) => {
            assert!(matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof), "{e}");
            false
        }
    })
}
