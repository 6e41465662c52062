//! Amounts are `rust_decimal::Decimal` in Rust and plain decimal strings on the wire, never floats.

use crate::error::ParseError;
use rust_decimal::Decimal;

/// Parses the wire grammar `-?(0|[1-9][0-9]*)(.[0-9]+)?` exactly (no leading zeros). Stricter
/// than `Decimal::from_str` (which accepts `_`, `+`, `1.`, `.5`, `007`): what the client
/// accepts must be what the server accepts.
/// The scale is kept ("12.50" stays 2 places), and more than 28 significant digits is an error,
/// never a silent rounding.
pub fn parse_amount(input: &str) -> Result<Decimal, ParseError> {
    let syntax = || ParseError::AmountSyntax {
        input: input.to_string(),
    };
    let unsigned = input.strip_prefix('-').unwrap_or(input);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !fraction.is_none_or(digits) {
        return Err(syntax());
    }
    // The node refuses leading zeros (AMOUNT_INVALID): "007" is not an amount.
    if whole.len() > 1 && whole.starts_with('0') {
        return Err(syntax());
    }
    let mut value = Decimal::from_str_exact(input).map_err(|_| ParseError::AmountOverflow {
        input: input.to_string(),
    })?;
    // "-0" is zero: keep one spelling of zero so formatting never prints "-0".
    if value.is_zero() {
        value.set_sign_positive(true);
    }
    Ok(value)
}

/// Formats as the wire grammar: no exponent, no '+', scale kept, zero never negative.
pub fn format_amount(amount: Decimal) -> String {
    let mut amount = amount;
    if amount.is_zero() {
        amount.set_sign_positive(true);
    }
    amount.to_string()
}

/// Balances are always present in valid responses; an empty string is read as zero so an older
/// server that omits a field does not break every lookup.
pub(crate) fn parse_balance(input: &str) -> Result<Decimal, ParseError> {
    if input.is_empty() {
        Ok(Decimal::ZERO)
    } else {
        parse_amount(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_decimals_keeping_scale() {
        assert_eq!(format_amount(parse_amount("12.50").unwrap()), "12.50");
        assert_eq!(format_amount(parse_amount("0").unwrap()), "0");
        assert_eq!(format_amount(parse_amount("-3.000").unwrap()), "-3.000");
        assert_eq!(format_amount(parse_amount("0.07").unwrap()), "0.07");
        assert_eq!(parse_amount("1.5").unwrap(), Decimal::new(15, 1));
        assert_eq!(format_amount(parse_amount("-0.00").unwrap()), "0.00");
        let max = "9999999999999999999999999999";
        assert_eq!(format_amount(parse_amount(max).unwrap()), max);
        assert_eq!(
            format_amount(parse_amount("0.000000000000000001").unwrap()),
            "0.000000000000000001"
        );
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "", "-", ".5", "5.", "+5", "1e3", "1_000", " 1", "1 ", "1,5", "--1", "0x10", "NaN",
            "1.2.3", "007", "00", "01.5", "-007",
        ] {
            assert!(
                matches!(parse_amount(bad), Err(ParseError::AmountSyntax { .. })),
                "{bad:?} should be a syntax error"
            );
        }
    }

    #[test]
    fn overflow_is_an_error_not_rounding() {
        assert!(matches!(
            parse_amount("99999999999999999999999999999"),
            Err(ParseError::AmountOverflow { .. })
        ));
        assert!(parse_amount("1.00000000000000000000000000001").is_err());
    }

    #[test]
    fn balance_empty_is_zero() {
        assert_eq!(parse_balance("").unwrap(), Decimal::ZERO);
        assert!(parse_balance("x").is_err());
    }
}
