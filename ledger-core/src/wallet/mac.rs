//! Keys and MACs of offline records. Used by the service layer only (the leader holding the
//! master key); the state machine never calls this with a key.
//!
//! device key = HMAC-SHA-256(master, "ledger.wallet.device" ‖ device id)
//! token key  = HMAC-SHA-256(device key, "ledger.wallet.token" ‖ token id (16 B BE))
//! record MAC = HMAC-SHA-256(token key, token id ‖ sequence ‖ amount minor ‖ merchant ‖ device time)
//! (all integers big-endian). One key per device, a fresh key per token.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::types::TokenId;

/// HMAC-SHA-256 (RFC 2104) from the `hmac` crate: one reviewed implementation rather than a
/// hand-written one per side (the known-answer tests below pin it to RFC 4231).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length (a long one is hashed first): this cannot fail.
    let mut mac = <Hmac<Sha256>>::new_from_slice(key).expect("HMAC accepts a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

pub fn device_key(master_key: &[u8], device_id: &str) -> [u8; 32] {
    let mut message = b"ledger.wallet.device".to_vec();
    message.extend_from_slice(device_id.as_bytes());
    hmac_sha256(master_key, &message)
}

pub fn token_key(master_key: &[u8], device_id: &str, token_id: TokenId) -> [u8; 32] {
    let mut message = b"ledger.wallet.token".to_vec();
    message.extend_from_slice(&token_id.to_be_bytes());
    hmac_sha256(&device_key(master_key, device_id), &message)
}

/// A check value of the master key, safe to store in replicated state: a node configured with
/// another master key sees a different value and refuses to verify instead of disagreeing.
pub fn key_check_value(master_key: &[u8]) -> [u8; 32] {
    hmac_sha256(master_key, b"ledger.wallet.key-check")
}

pub fn record_mac(
    token_key: &[u8; 32],
    token_id: TokenId,
    sequence: u64,
    amount_minor: u128,
    merchant_account_id: u128,
    device_time_ms: u64,
) -> [u8; 32] {
    let mut message = Vec::with_capacity(16 + 8 + 16 + 16 + 8);
    message.extend_from_slice(&token_id.to_be_bytes());
    message.extend_from_slice(&sequence.to_be_bytes());
    message.extend_from_slice(&amount_minor.to_be_bytes());
    message.extend_from_slice(&merchant_account_id.to_be_bytes());
    message.extend_from_slice(&device_time_ms.to_be_bytes());
    hmac_sha256(token_key, &message)
}

/// Constant-time comparison, so a forger learns nothing from timing.
pub fn mac_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2.
    #[test]
    fn hmac_matches_rfc_4231() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    /// Shared with ledger-client's `wallet::mac::tests::shared_test_vector` (which reimplements
    /// the record MAC for wallet developers): both assert this value, so a change of the MAC
    /// layout on either side fails a test.
    #[test]
    fn shared_test_vector() {
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let mac = record_mac(&key, 0x0102030405060708090a0b0c0d0e0f10, 7, 2_500, 3, 1_700_000_000_000);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "3a666d262ddf7b00df1680e71eb0a0c592304e4ae6be4d417fc9ecb1a815a169");
    }

    #[test]
    fn keys_differ_per_device_and_token() {
        let m = b"master";
        assert_ne!(token_key(m, "d1", 1), token_key(m, "d2", 1));
        assert_ne!(token_key(m, "d1", 1), token_key(m, "d1", 2));
        assert_ne!(key_check_value(m), key_check_value(b"other"));
        let k = token_key(m, "d1", 1);
        assert!(mac_equal(&record_mac(&k, 1, 1, 100, 3, 5), &record_mac(&k, 1, 1, 100, 3, 5)));
        assert!(!mac_equal(&record_mac(&k, 1, 1, 100, 3, 5), &record_mac(&k, 1, 1, 101, 3, 5)));
    }
}
