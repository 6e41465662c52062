//! CRC-32-framed postcard: the encoding of every value the node persists or ships (ledger rows,
//! Raft log entries and metadata, peer messages). A flipped bit is an error, never a wrong value.

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The version of every encoding this binary persists or ships: ledger rows, Raft log entries,
/// snapshots and peer messages. Postcard is not self-describing, so a binary reads only its own
/// format; what it would make of another's bytes is "undecodable", indistinguishable from
/// corruption. So the version is checked where it can be named instead: a data dir records the
/// format it was created with (`identity.toml`) and a node of another format is refused at start;
/// a peer reports its format (`NodeInfo`) and one of another format is refused as a member.
/// Bump it with any change to a persisted or replicated type, and with any change to what apply
/// does with a command (replicas of two rules would diverge on the same log; docs/operations.md,
/// Upgrades).
///
/// 1: the first release. 2: transfers and idempotency records name their owner; a refused token
/// issue writes nothing; an offline payment keeps the merchant's balance rule. 3: posting or
/// voiding another principal's hold is refused (PENDING_TRANSFER_NOT_FOUND). 4: new operations,
/// result codes, journal events and tables only (appended variants, new column families): every
/// format-3 byte decodes to the same value, and a format-3 command applies as before.
pub const FORMAT_VERSION: u32 = 4;

/// The older formats this binary opens in place: data whose every byte decodes under
/// `FORMAT_VERSION` to what it meant when written, and whose commands apply the same way. A data
/// dir of one of these is marked `FORMAT_VERSION` on first open (one way: the new binary may
/// then write what the old one cannot read). Peers still must match exactly: replicas of two
/// formats would apply new commands differently.
pub const OPENS_IN_PLACE: [u32; 1] = [3];

/// Whether data (a data dir, a backup) of `format` can be opened by this binary.
pub fn opens_format(format: u32) -> bool {
    format == FORMAT_VERSION || OPENS_IN_PLACE.contains(&format)
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    encode_sized(value, ENCODE_CAPACITY)
}

/// `encode` into a buffer of `capacity` bytes to start with: the same bytes. Room for the value
/// up front (growing from 4 bytes would reallocate several times), then trimmed: stores keep the
/// Vec, so its spare capacity would be memory held per row.
pub fn encode_sized<T: Serialize>(value: &T, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(&[0u8; 4]);
    // Our own plain data types into a Vec: cannot fail.
    postcard::to_io(value, &mut out).expect("postcard encode into Vec");
    let crc = crc32fast::hash(&out[4..]);
    out[..4].copy_from_slice(&crc.to_le_bytes());
    out.shrink_to_fit();
    out
}

/// The first allocation of an encoding: a ledger row with its checksum mostly fits.
const ENCODE_CAPACITY: usize = 256;

/// Decodes a framed value; `what` names it in the error ("raft log entry 17", "table accounts").
pub fn decode<T: DeserializeOwned>(what: &dyn std::fmt::Display, bytes: &[u8]) -> io::Result<T> {
    let corrupt = |why: String| io::Error::new(io::ErrorKind::InvalidData, format!("corrupted {what}: {why}"));
    if bytes.len() < 4 {
        return Err(corrupt("shorter than its checksum".into()));
    }
    let (crc, body) = bytes.split_at(4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(corrupt("checksum mismatch".into()));
    }
    postcard::from_bytes(body).map_err(|e| corrupt(format!("undecodable: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_a_flipped_bit() {
        let bytes = encode(&(42u64, "payload".to_string()));
        let back: (u64, String) = decode(&"test value", &bytes).unwrap();
        assert_eq!(back, (42, "payload".to_string()));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            let err = decode::<(u64, String)>(&"test value", &bad).unwrap_err();
            assert!(err.to_string().contains("corrupted test value"), "{err}");
        }
        assert!(decode::<u64>(&"short", &[1, 2]).is_err());
    }
}
