//! 128-bit ids: 16 big-endian bytes on the wire, decimal or `0x` hex on the command line.

use crate::error::ParseError;
use sha2::{Digest, Sha256};

pub const ID_LEN_BYTES: usize = 16;

pub fn encode_id(id: u128) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

/// Decodes exactly 16 big-endian bytes. Any other length is an error, not a zero-padded id:
/// silently padding would make two different byte strings name the same account.
pub fn decode_id(bytes: &[u8]) -> Result<u128, ParseError> {
    let array: [u8; ID_LEN_BYTES] = bytes.try_into().map_err(|_| ParseError::IdLength {
        len_bytes: bytes.len(),
    })?;
    Ok(u128::from_be_bytes(array))
}

/// For optional id fields (`pending_id`): empty bytes mean "none".
pub fn decode_optional_id(bytes: &[u8]) -> Result<Option<u128>, ParseError> {
    if bytes.is_empty() {
        Ok(None)
    } else {
        decode_id(bytes).map(Some)
    }
}

/// Parses a command-line id: decimal `u128`, or hex with a `0x`/`0X` prefix.
pub fn parse_id(input: &str) -> Result<u128, ParseError> {
    let error = || ParseError::IdSyntax {
        input: input.to_string(),
    };
    let parsed = if let Some(hex) = input
        .strip_prefix("0x")
        .or_else(|| input.strip_prefix("0X"))
    {
        // from_str_radix accepts a leading '+': refuse it so only plain digits pass.
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(error());
        }
        u128::from_str_radix(hex, 16)
    } else {
        if input.is_empty() || !input.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error());
        }
        input.parse::<u128>()
    };
    parsed.map_err(|_| error())
}

/// The transfer id the CLI uses when `--id` is omitted: the first 16 bytes (big-endian) of
/// SHA-256("ledger.transfer-id.v1\0" ++ idempotency_key). Deterministic, so re-running the same
/// command after a lost reply reuses the id and the server replays the first result instead of
/// answering ID_ALREADY_USED / IDEMPOTENCY_KEY_CONFLICT. Never zero (zero is an invalid id).
pub fn transfer_id_from_key(idempotency_key: &str) -> u128 {
    let mut hasher = Sha256::new();
    hasher.update(b"ledger.transfer-id.v1\0");
    hasher.update(idempotency_key.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; ID_LEN_BYTES];
    first.copy_from_slice(&digest[..ID_LEN_BYTES]);
    u128::from_be_bytes(first).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node derives the same id for a transfer sent without one (ledger-node
    /// api::convert::transfer_id_from_key pins the same value).
    #[test]
    fn the_derived_id_is_pinned() {
        assert_eq!(transfer_id_from_key("k"), 0x825f_cb7b_7a98_b570_3fa3_a18c_e166_4e16);
    }

    #[test]
    fn encode_is_16_bytes_big_endian() {
        let bytes = encode_id(0x0102);
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[..14], &[0u8; 14]);
        assert_eq!(&bytes[14..], &[1, 2]);
        assert_eq!(encode_id(u128::MAX), vec![0xff; 16]);
    }

    #[test]
    fn decode_round_trips() {
        for id in [0u128, 1, 42, u64::MAX as u128 + 7, u128::MAX] {
            assert_eq!(decode_id(&encode_id(id)).unwrap(), id);
        }
    }

    #[test]
    fn decode_rejects_other_lengths() {
        for len in [0usize, 1, 8, 15, 17, 32] {
            assert_eq!(
                decode_id(&vec![0u8; len]),
                Err(ParseError::IdLength { len_bytes: len })
            );
        }
        assert_eq!(decode_optional_id(&[]).unwrap(), None);
        assert_eq!(decode_optional_id(&encode_id(9)).unwrap(), Some(9));
        assert!(decode_optional_id(&[1, 2]).is_err());
    }

    #[test]
    fn parse_decimal_and_hex() {
        assert_eq!(parse_id("0").unwrap(), 0);
        assert_eq!(parse_id("1001").unwrap(), 1001);
        assert_eq!(parse_id("0x3e9").unwrap(), 1001);
        assert_eq!(parse_id("0XFF").unwrap(), 255);
        assert_eq!(parse_id(&u128::MAX.to_string()).unwrap(), u128::MAX);
        assert_eq!(
            parse_id(&format!("0x{}", "f".repeat(32))).unwrap(),
            u128::MAX
        );
        for bad in [
            "",
            "0x",
            "-1",
            "+1",
            "0x+1",
            "1.0",
            " 1",
            "abc",
            "0xg",
            "340282366920938463463374607431768211456",
        ] {
            assert!(parse_id(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(
            parse_id(&format!("0x1{}", "0".repeat(32))).is_err(),
            "33 hex digits overflow"
        );
    }

    #[test]
    fn transfer_id_from_key_is_deterministic() {
        let a = transfer_id_from_key("order-1");
        assert_eq!(a, transfer_id_from_key("order-1"));
        assert_ne!(a, transfer_id_from_key("order-2"));
        assert_ne!(a, 0);
    }
}
