//! Parsers for command-line values. Each returns a typed error that names the bad input.

use crate::amount::parse_amount;
use crate::error::ParseError;
use crate::ids::parse_id;
use crate::types::Leg;
use crate::wallet::OfflineRecord;
use crate::wallet::mac::{MAC_BYTES, decode_hex};
use crate::amount::Amount;

pub fn parse_id_arg(input: &str) -> Result<u128, ParseError> {
    parse_id(input)
}

pub fn parse_amount_arg(input: &str) -> Result<Amount, ParseError> {
    parse_amount(input)
}

/// `DEBIT_ID:CREDIT_ID:AMOUNT`, e.g. `1001:2002:12.50` or `0x3e9:0x7d2:1`.
pub fn parse_leg_arg(input: &str) -> Result<Leg, ParseError> {
    let mut parts = input.split(':');
    let (Some(debit), Some(credit), Some(amount), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::LegSyntax {
            input: input.to_string(),
        });
    };
    Ok(Leg {
        debit: parse_id(debit)?,
        credit: parse_id(credit)?,
        amount: parse_amount(amount)?,
    })
}

/// `SEQ:AMOUNT:MERCHANT_ID:DEVICE_TIME_MS:MAC_HEX`, e.g. `1:30.00:3:1001:3a66...`: an offline
/// record for `wallet sync --record`.
pub fn parse_record_arg(input: &str) -> Result<OfflineRecord, String> {
    let syntax = || format!("invalid record {input:?}: expected SEQ:AMOUNT:MERCHANT_ID:DEVICE_TIME_MS:MAC_HEX");
    let parts: Vec<&str> = input.split(':').collect();
    let [sequence, amount, merchant, device_time_ms, mac] = parts[..] else {
        return Err(syntax());
    };
    let number = |text: &str| text.parse::<u64>().map_err(|_| syntax());
    Ok(OfflineRecord {
        sequence: number(sequence)?,
        amount: parse_amount(amount).map_err(|e| e.to_string())?,
        merchant_account_id: parse_id(merchant).map_err(|e| e.to_string())?,
        device_time_ms: number(device_time_ms)?,
        mac: decode_hex::<MAC_BYTES>(mac, "record MAC").map_err(|e| e.to_string())?,
    })
}

/// `KEY=VALUE`; the value may contain '=' and may be empty, the key may not.
pub fn parse_meta_arg(input: &str) -> Result<(String, String), ParseError> {
    match input.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(ParseError::MetadataSyntax {
            input: input.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legs() {
        let leg = parse_leg_arg("1001:2002:12.50").unwrap();
        assert_eq!((leg.debit, leg.credit), (1001, 2002));
        assert_eq!(leg.amount.to_string(), "12.50");
        let leg = parse_leg_arg("0x10:0xff:1").unwrap();
        assert_eq!((leg.debit, leg.credit), (16, 255));
        for bad in [
            "", "1:2", "1:2:3:4", "1::3", ":2:3", "1:2:", "a:2:3", "1:2:x", "1:2:1e3", "1:2:-",
        ] {
            assert!(parse_leg_arg(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(matches!(
            parse_leg_arg("1:2"),
            Err(ParseError::LegSyntax { .. })
        ));
        assert!(matches!(
            parse_leg_arg("x:2:1"),
            Err(ParseError::IdSyntax { .. })
        ));
        assert!(matches!(
            parse_leg_arg("1:2:1.2.3"),
            Err(ParseError::AmountSyntax { .. })
        ));
    }

    #[test]
    fn records() {
        let mac = "ab".repeat(32);
        let record = parse_record_arg(&format!("2:25.00:0x3:1002:{mac}")).unwrap();
        assert_eq!((record.sequence, record.merchant_account_id, record.device_time_ms), (2, 3, 1002));
        assert_eq!((record.amount.to_string().as_str(), record.mac), ("25.00", [0xab; 32]));
        for bad in [
            String::new(),
            format!("2:25.00:3:{mac}"),
            format!("x:25.00:3:1:{mac}"),
            format!("2:1e3:3:1:{mac}"),
            format!("2:1:-3:1:{mac}"),
            "2:1:3:1:abcd".to_string(),
            format!("2:1:3:1:{mac}:9"),
        ] {
            assert!(parse_record_arg(&bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn metadata() {
        assert_eq!(
            parse_meta_arg("phone=+86 138").unwrap(),
            ("phone".into(), "+86 138".into())
        );
        assert_eq!(parse_meta_arg("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(
            parse_meta_arg("empty=").unwrap(),
            ("empty".into(), String::new())
        );
        assert!(parse_meta_arg("=v").is_err());
        assert!(parse_meta_arg("novalue").is_err());
    }
}

/// `ID=PEER_URL`, e.g. `2=http://127.0.0.1:7071`: a cluster member for `cluster init`.
pub fn parse_member_arg(input: &str) -> Result<(u64, String), String> {
    let (id, url) = input
        .split_once('=')
        .ok_or_else(|| format!("invalid member {input:?}: expected ID=PEER_URL"))?;
    let id: u64 = id
        .trim()
        .parse()
        .map_err(|_| format!("invalid member {input:?}: the id is not a number"))?;
    if id == 0 || url.trim().is_empty() {
        return Err(format!(
            "invalid member {input:?}: ids start at 1 and the URL is required"
        ));
    }
    Ok((id, crate::retry::normalize_endpoint(url)))
}
