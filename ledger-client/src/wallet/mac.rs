//! Record MACs, computed exactly as the node verifies them (ledger-node
//! `ledger/wallet/mac.rs`), so a wallet or terminal written against this crate signs records
//! the node accepts:
//!
//! record MAC = HMAC-SHA-256(token key, token id ‖ sequence ‖ amount minor ‖ merchant ‖ device time)
//!
//! with the ids and the amount as 16 big-endian bytes and the sequence and device time as 8.
//! The amount is in minor units of the token's asset (12.50 CNY, scale 2 -> 1250). The test
//! vector below is asserted on both sides (client and node).

use crate::error::ParseError;
use crate::amount::Amount;
use std::fmt;

pub const KEY_BYTES: usize = 32;
pub const MAC_BYTES: usize = 32;

/// A per-token MAC key, as returned once by `issue_token`. `Debug` does not print it, so a
/// logged response does not leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenKey(pub [u8; KEY_BYTES]);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

impl TokenKey {
    pub fn from_hex(input: &str) -> Result<TokenKey, ParseError> {
        decode_hex::<KEY_BYTES>(input, "token key").map(TokenKey)
    }

    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }
}

/// HMAC-SHA-256 (RFC 2104): the node's own (ledger-core), so the two cannot drift apart.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    ledger_core::wallet::mac::hmac_sha256(key, message)
}

/// The MAC over the record's fields, the amount already in minor units: the node's layout
/// (ledger-core `wallet::mac::record_mac`), not a second copy of it.
pub fn record_mac_minor(
    key: &TokenKey,
    token_id: u128,
    sequence: u64,
    amount_minor: u128,
    merchant_account_id: u128,
    device_time_ms: u64,
) -> [u8; MAC_BYTES] {
    ledger_core::wallet::mac::record_mac(&key.0, token_id, sequence, amount_minor, merchant_account_id, device_time_ms)
}

/// The MAC of a record with a decimal amount of an asset of `asset_scale` decimal places.
pub fn record_mac(
    key: &TokenKey,
    token_id: u128,
    sequence: u64,
    amount: Amount,
    asset_scale: u32,
    merchant_account_id: u128,
    device_time_ms: u64,
) -> Result<[u8; MAC_BYTES], ParseError> {
    let amount_minor = amount_to_minor(amount, asset_scale)?;
    Ok(record_mac_minor(
        key,
        token_id,
        sequence,
        amount_minor,
        merchant_account_id,
        device_time_ms,
    ))
}

/// Minor units of `amount` for an asset of `asset_scale` places, as the node converts it:
/// trailing zeros do not count ("25.000" is 2500 at scale 2), any other extra place, or a
/// negative amount, is an error rather than a rounding.
pub fn amount_to_minor(amount: Amount, asset_scale: u32) -> Result<u128, ParseError> {
    let refused = || ParseError::AmountNotMinorUnits {
        input: crate::amount::format_amount(amount),
        scale: asset_scale,
    };
    let asset_scale = u8::try_from(asset_scale).map_err(|_| refused())?;
    amount.to_minor(asset_scale).map_err(|_| refused())
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Exactly `N` bytes as 2·N hex digits (either case).
pub fn decode_hex<const N: usize>(input: &str, what: &'static str) -> Result<[u8; N], ParseError> {
    let error = || ParseError::HexSyntax { what, len_bytes: N };
    let text = input.trim();
    if text.len() != N * 2 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(error());
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| error())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// Shared with ledger-node's `ledger::wallet::mac::tests::shared_test_vector` (and an
    /// independent HMAC implementation, Python's `hmac`): if either side changes the MAC layout,
    /// one of the two tests fails.
    pub const VECTOR_MAC_HEX: &str =
        "3a666d262ddf7b00df1680e71eb0a0c592304e4ae6be4d417fc9ecb1a815a169";

    fn vector_key() -> TokenKey {
        TokenKey(std::array::from_fn(|i| i as u8))
    }

    #[test]
    fn shared_test_vector() {
        let token_id = 0x0102030405060708090a0b0c0d0e0f10;
        let mac = record_mac_minor(&vector_key(), token_id, 7, 2_500, 3, 1_700_000_000_000);
        assert_eq!(to_hex(&mac), VECTOR_MAC_HEX);
        let amount = Amount::from_str("25.00").unwrap();
        assert_eq!(
            record_mac(&vector_key(), token_id, 7, amount, 2, 3, 1_700_000_000_000).unwrap(),
            mac
        );
    }

    /// RFC 4231 test case 2, as the node's test.
    #[test]
    fn hmac_matches_rfc_4231() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            to_hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than the block is hashed first (RFC 4231 test case 6).
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            to_hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn amounts_convert_like_the_node() {
        let d = |s| Amount::from_str(s).unwrap();
        assert_eq!(amount_to_minor(d("25.00"), 2).unwrap(), 2_500);
        assert_eq!(
            amount_to_minor(d("25.000"), 2).unwrap(),
            2_500,
            "trailing zeros do not count"
        );
        assert_eq!(amount_to_minor(d("25"), 2).unwrap(), 2_500);
        assert_eq!(amount_to_minor(d("0.5"), 0).ok(), None);
        assert_eq!(amount_to_minor(d("1.005"), 2).ok(), None);
        assert_eq!(amount_to_minor(d("-1"), 2).ok(), None);
        assert_eq!(amount_to_minor(d("7"), 0).unwrap(), 7);
        // 28 digits at scale 18 still fits u128 (the node's limit is u128 overflow).
        assert_eq!(
            amount_to_minor(d("9999999999999999999999999999"), 10).unwrap(),
            9_999_999_999_999_999_999_999_999_999u128 * 10u128.pow(10)
        );
        assert!(amount_to_minor(d("9999999999999999999999999999"), 18).is_err());
    }

    #[test]
    fn every_field_changes_the_mac() {
        let k = vector_key();
        let base = record_mac_minor(&k, 1, 1, 100, 3, 5);
        for other in [
            record_mac_minor(&k, 2, 1, 100, 3, 5),
            record_mac_minor(&k, 1, 2, 100, 3, 5),
            record_mac_minor(&k, 1, 1, 101, 3, 5),
            record_mac_minor(&k, 1, 1, 100, 4, 5),
            record_mac_minor(&k, 1, 1, 100, 3, 6),
            record_mac_minor(&TokenKey([9; 32]), 1, 1, 100, 3, 5),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn keys_parse_as_hex_and_never_print() {
        let key = vector_key();
        assert_eq!(TokenKey::from_hex(&key.to_hex()).unwrap(), key);
        assert_eq!(
            TokenKey::from_hex(&key.to_hex().to_uppercase()).unwrap(),
            key
        );
        assert!(TokenKey::from_hex("00").is_err());
        assert!(TokenKey::from_hex(&"zz".repeat(32)).is_err());
        assert_eq!(format!("{key:?}"), "TokenKey(<redacted>)");
        let error = TokenKey::from_hex(&"ab".repeat(31))
            .unwrap_err()
            .to_string();
        assert!(
            !error.contains("abab"),
            "the error does not echo the key: {error}"
        );
    }
}
