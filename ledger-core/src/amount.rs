//! Exact decimal amounts. Strings cross the API; inside, u128 minor units with checked arithmetic.
//!
//! Hand-written rather than rust_decimal: balances are u128 minor units, and rust_decimal's
//! 96-bit mantissa cannot hold them; the grammar accepted here is deliberately tiny.

use serde::{Deserialize, Serialize};

use super::limits::AMOUNT_DIGITS_MAX;
use super::result::ResultCode;

/// A non-negative decimal as parsed from the wire: `digits / 10^scale`. The asset's scale is
/// applied by the state machine, which knows the asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecimalInput {
    pub digits: u128,
    pub scale: u8,
}

impl DecimalInput {
    pub const ZERO: DecimalInput = DecimalInput { digits: 0, scale: 0 };

    /// Parses `(0|[1-9][0-9]*)(\.[0-9]+)?`: no leading zeros ("007" is `AmountInvalid`: one
    /// spelling per number, and never an octal-looking one). Trailing fractional zeros carry no
    /// value ("2.500" is 2.5, for the scale check and the idempotency fingerprint alike). A
    /// leading '-' is `AmountNegative`; more than 38 digits once trailing fractional zeros are
    /// dropped is `AmountOverflow`, even when the value would fit 128 bits (one bound a client
    /// can check without knowing the asset); anything else malformed is `AmountInvalid`.
    pub fn parse(text: &str) -> Result<DecimalInput, ResultCode> {
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int_part, frac_part) = match body.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        let digits_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits_ok(int_part) || frac_part.is_some_and(|f| !digits_ok(f)) {
            return Err(ResultCode::AmountInvalid);
        }
        if int_part.len() > 1 && int_part.starts_with('0') {
            return Err(ResultCode::AmountInvalid);
        }
        // Trailing fractional zeros carry no value: "1.50" is 1.5.
        let frac = frac_part.unwrap_or("").trim_end_matches('0');
        let int = int_part.trim_start_matches('0');
        if int.len() + frac.len() > AMOUNT_DIGITS_MAX {
            return Err(ResultCode::AmountOverflow);
        }
        let mut digits: u128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            digits = digits
                .checked_mul(10)
                .and_then(|d| d.checked_add(u128::from(b - b'0')))
                .ok_or(ResultCode::AmountOverflow)?;
        }
        if negative && digits != 0 {
            return Err(ResultCode::AmountNegative);
        }
        // frac.len() <= 38 here, so it fits a u8.
        Ok(DecimalInput { digits, scale: frac.len() as u8 })
    }

    /// Minor units of an asset with `asset_scale` decimal places.
    pub fn to_minor(self, asset_scale: u8) -> Result<u128, ResultCode> {
        if self.scale > asset_scale {
            return Err(ResultCode::AmountScaleExceeded);
        }
        let factor = 10u128
            .checked_pow(u32::from(asset_scale - self.scale))
            .ok_or(ResultCode::AmountOverflow)?;
        self.digits.checked_mul(factor).ok_or(ResultCode::AmountOverflow)
    }
}

/// Formats minor units as a decimal string with exactly `scale` fractional digits.
pub fn format_minor(amount_minor: u128, scale: u8) -> String {
    let text = amount_minor.to_string();
    let scale = usize::from(scale);
    if scale == 0 {
        return text;
    }
    let padded = if text.len() <= scale { format!("{}{}", "0".repeat(scale + 1 - text.len()), text) } else { text };
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{int}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_decimals() {
        assert_eq!(DecimalInput::parse("12.50"), Ok(DecimalInput { digits: 125, scale: 1 }));
        assert_eq!(DecimalInput::parse("007"), Err(ResultCode::AmountInvalid), "no leading zeros");
        assert_eq!(DecimalInput::parse("007.5"), Err(ResultCode::AmountInvalid));
        assert_eq!(DecimalInput::parse("00"), Err(ResultCode::AmountInvalid));
        assert_eq!(DecimalInput::parse("0.07"), Ok(DecimalInput { digits: 7, scale: 2 }));
        assert_eq!(DecimalInput::parse("2.500"), Ok(DecimalInput { digits: 25, scale: 1 }), "trailing zeros carry no value");
        assert_eq!(DecimalInput::parse("0.000"), Ok(DecimalInput { digits: 0, scale: 0 }));
        assert_eq!(DecimalInput::parse("-0"), Ok(DecimalInput::ZERO));
    }

    #[test]
    fn refuses_bad_amounts_with_their_own_codes() {
        for bad in ["", ".", "1.", ".5", "1e3", "+1", " 1", "1,5", "0x10", "--1", "1.2.3"] {
            assert_eq!(DecimalInput::parse(bad), Err(ResultCode::AmountInvalid), "{bad:?}");
        }
        assert_eq!(DecimalInput::parse("-1.5"), Err(ResultCode::AmountNegative));
        assert_eq!(DecimalInput::parse(&"9".repeat(39)), Err(ResultCode::AmountOverflow));
        assert_eq!(DecimalInput::parse(&"9".repeat(38)).map(|d| d.scale), Ok(0));
        // 39 digits are refused even where the value fits u128 (10^38 < u128::MAX).
        assert_eq!(DecimalInput::parse(&format!("1{}", "0".repeat(38))), Err(ResultCode::AmountOverflow));
        assert_eq!(DecimalInput::parse(&format!("1.{}", "0".repeat(60))), Ok(DecimalInput { digits: 1, scale: 0 }));
    }

    #[test]
    fn converts_to_minor_units_with_scale_checks() {
        let d = DecimalInput::parse("12.5").unwrap();
        assert_eq!(d.to_minor(2), Ok(1250));
        assert_eq!(d.to_minor(1), Ok(125));
        assert_eq!(d.to_minor(0), Err(ResultCode::AmountScaleExceeded));
        let big = DecimalInput::parse(&"9".repeat(38)).unwrap();
        assert_eq!(big.to_minor(18), Err(ResultCode::AmountOverflow));
    }

    #[test]
    fn formats_minor_units() {
        assert_eq!(format_minor(0, 2), "0.00");
        assert_eq!(format_minor(5, 2), "0.05");
        assert_eq!(format_minor(12345, 2), "123.45");
        assert_eq!(format_minor(7, 0), "7");
        assert_eq!(format_minor(u128::MAX, 18), "340282366920938463463.374607431768211455");
    }
}
