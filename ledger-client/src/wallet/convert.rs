//! Wallet domain types <-> `ledger.v1.Wallet` messages. Decoding checks every id, decimal, key
//! length and status name, as `crate::convert` does for the ledger messages.

use super::mac::{KEY_BYTES, TokenKey};
use super::types::*;
use crate::amount::{format_amount, parse_balance, parse_written};
use crate::error::ParseError;
use crate::ids::{decode_id, encode_id};
use ledger_proto::api;

pub(crate) fn new_token_to_proto(token: &NewToken) -> api::IssueTokenRequest {
    api::IssueTokenRequest {
        token_id: encode_id(token.token_id),
        account_id: encode_id(token.account_id),
        clearing_account_id: encode_id(token.clearing_account_id),
        device_id: token.device_id.clone(),
        offline_limit: format_amount(token.offline_limit),
        max_offline_count: token.max_offline_count,
        validity_ms: token.validity_ms,
    }
}

pub(crate) fn token_from_proto(token: api::Token) -> Result<Token, ParseError> {
    Ok(Token {
        token_id: decode_id(&token.token_id)?,
        account_id: decode_id(&token.account_id)?,
        clearing_account_id: decode_id(&token.clearing_account_id)?,
        device_id: token.device_id,
        asset: token.asset,
        offline_limit: parse_written(&token.offline_limit)?,
        max_offline_count: token.max_offline_count,
        issued_at_ns: token.issued_at_ns,
        expires_at_ns: token.expires_at_ns,
        release_at_ns: token.release_at_ns,
        status: TokenStatus::from_name(&token.status).ok_or(ParseError::EnumName {
            field: "Token.status",
            value: token.status.clone(),
        })?,
        revoke_reason: token.revoke_reason,
        hold_placed: parse_balance(&token.hold_placed)?,
        hold_remaining: parse_balance(&token.hold_remaining)?,
        hold_capped: token.hold_capped,
        generation: token.generation,
        seq_base: token.seq_base,
        seq_high: token.seq_high,
    })
}

/// The key of an issued token: exactly 32 bytes, or absent (reads never carry it).
pub(crate) fn token_key_from_proto(bytes: &[u8]) -> Result<Option<TokenKey>, ParseError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let key: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| ParseError::HexSyntax {
        what: "Token.mac_key",
        len_bytes: KEY_BYTES,
    })?;
    Ok(Some(TokenKey(key)))
}

pub(crate) fn record_to_proto(record: &OfflineRecord) -> api::OfflineRecord {
    api::OfflineRecord {
        sequence: record.sequence,
        amount: format_amount(record.amount),
        merchant_account_id: encode_id(record.merchant_account_id),
        device_time_ms: record.device_time_ms,
        mac: record.mac.to_vec(),
    }
}

pub(crate) fn exception_from_proto(
    exception: api::OfflineException,
) -> Result<OfflineException, ParseError> {
    Ok(OfflineException {
        sequence: exception.sequence,
        amount: parse_written(&exception.amount)?,
        merchant_account_id: decode_id(&exception.merchant_account_id)?,
        device_time_ms: exception.device_time_ms,
        reason: ledger_proto::convert::result_code_from_wire(exception.reason),
        timestamp_ns: exception.timestamp_ns,
    })
}

pub(crate) fn reconciliation_from_proto(
    response: api::ReconcileResponse,
) -> Result<Reconciliation, ParseError> {
    Ok(Reconciliation {
        token: token_from_proto(response.token.ok_or(ParseError::MissingField {
            field: "ReconcileResponse.token",
        })?)?,
        account: crate::convert::account_record_from_proto(response.account.ok_or(
            ParseError::MissingField {
                field: "ReconcileResponse.account",
            },
        )?)?,
        ledger_balance: parse_written(&response.ledger_balance)?,
        difference: parse_written(&response.difference)?,
        ledger_last_sequence: response.ledger_last_sequence,
        missing_sequences: response.missing_sequences,
        device_sequence_out_of_window: response.device_sequence_out_of_window,
    })
}

pub(crate) fn wallet_update_from_proto(update: api::WalletUpdate) -> Result<WalletUpdate, ParseError> {
    Ok(WalletUpdate {
        token: token_from_proto(update.token.ok_or(ParseError::MissingField { field: "WalletUpdate.token" })?)?,
        account: crate::convert::account_record_from_proto(
            update.account.ok_or(ParseError::MissingField { field: "WalletUpdate.account" })?,
        )?,
        // May be negative for an account without a balance constraint.
        available_online: match update.available_online.strip_prefix('-') {
            Some(magnitude) => -parse_written(magnitude)?,
            None => parse_written(&update.available_online)?,
        },
        offline_allowance: parse_written(&update.offline_allowance)?,
        timestamp_ns: update.timestamp_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;

    fn wire_token(status: &str) -> api::Token {
        api::Token {
            token_id: encode_id(77),
            account_id: encode_id(2),
            clearing_account_id: encode_id(4),
            device_id: "phone-1".into(),
            asset: "CNY".into(),
            offline_limit: "100.00".into(),
            max_offline_count: 10,
            status: status.into(),
            hold_placed: "100.00".into(),
            hold_remaining: "80.00".into(),
            seq_base: 3,
            ..Default::default()
        }
    }

    #[test]
    fn token_decodes_and_checks_its_fields() {
        let token = token_from_proto(wire_token("revoked")).unwrap();
        assert_eq!((token.token_id, token.status), (77, TokenStatus::Revoked));
        assert_eq!(token.hold_remaining, Amount::new(8000, 2));
        assert_eq!(token.window(), 4..=13);
        assert!(matches!(
            token_from_proto(wire_token("paused")),
            Err(ParseError::EnumName { .. })
        ));
        let short_id = api::Token {
            token_id: vec![1, 2],
            ..wire_token("active")
        };
        assert!(matches!(
            token_from_proto(short_id),
            Err(ParseError::IdLength { len_bytes: 2 })
        ));
    }

    #[test]
    fn reconciliation_needs_token_and_account() {
        let response = api::ReconcileResponse {
            token: Some(wire_token("active")),
            ledger_balance: "120.00".into(),
            difference: "-25.00".into(),
            ..Default::default()
        };
        assert!(matches!(
            reconciliation_from_proto(response),
            Err(ParseError::MissingField {
                field: "ReconcileResponse.account"
            })
        ));
    }

    #[test]
    fn key_is_32_bytes_or_absent() {
        assert_eq!(token_key_from_proto(&[]).unwrap(), None);
        assert_eq!(
            token_key_from_proto(&[7; 32]).unwrap(),
            Some(TokenKey([7; 32]))
        );
        assert!(token_key_from_proto(&[7; 31]).is_err());
    }

    #[test]
    fn record_encodes_amount_and_ids() {
        let record = OfflineRecord {
            sequence: 3,
            amount: Amount::new(2500, 2),
            merchant_account_id: 3,
            device_time_ms: 9,
            mac: [1; 32],
        };
        let wire = record_to_proto(&record);
        assert_eq!(
            (
                wire.amount.as_str(),
                wire.merchant_account_id.len(),
                wire.mac.len()
            ),
            ("25.00", 16, 32)
        );
    }
}
