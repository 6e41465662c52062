//! Amounts are `ledger_core::Amount` (u128 minor units with a scale, 38 digits; the node's own
//! type, grammar and rendering) in Rust and plain decimal strings on the wire, never floats.
//! This module only maps the shared parse's refusals to the client's `ParseError`.

use crate::error::ParseError;
use ledger_core::ResultCode;
pub use ledger_core::amount::Amount;

/// Parses the wire grammar `-?(0|[1-9][0-9]*)(.[0-9]+)?` exactly (no leading zeros): the node's
/// own parse (`ledger_core::Amount::parse`), so what the client accepts is what the server
/// accepts. The scale is kept ("12.50" stays 2 places), and more than 38 significant digits is
/// an error, never a silent rounding.
pub fn parse_amount(input: &str) -> Result<Amount, ParseError> {
    Amount::parse(input).map_err(|code| refusal(input, code))
}

/// Formats as the wire grammar: no exponent, no '+', scale kept, zero never negative.
pub fn format_amount(amount: Amount) -> String {
    amount.to_string()
}

/// A value the ledger wrote (an answer's amount or balance): any u128 of minor units at the
/// asset's scale (39 digits), where an input has at most 38 significant digits.
pub(crate) fn parse_written(input: &str) -> Result<Amount, ParseError> {
    Amount::parse_balance(input).map_err(|code| refusal(input, code))
}

/// Balances are always present in valid responses; an empty string is read as zero so an older
/// server that omits a field does not break every lookup.
pub(crate) fn parse_balance(input: &str) -> Result<Amount, ParseError> {
    if input.is_empty() {
        Ok(Amount::ZERO)
    } else {
        parse_written(input)
    }
}

fn refusal(input: &str, code: ResultCode) -> ParseError {
    let input = input.to_string();
    match code {
        ResultCode::AmountOverflow => ParseError::AmountOverflow { input },
        _ => ParseError::AmountSyntax { input },
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
        assert_eq!(parse_amount("1.5").unwrap(), Amount::new(15, 1));
        assert_eq!(format_amount(parse_amount("-0.00").unwrap()), "0.00");
        let max = "9999999999999999999999999999";
        assert_eq!(format_amount(parse_amount(max).unwrap()), max);
        assert_eq!(
            format_amount(parse_amount("0.000000000000000001").unwrap()),
            "0.000000000000000001"
        );
    }

    /// The node holds 38-digit amounts (u128 minor units); rust_decimal stopped at 28.
    #[test]
    fn thirty_eight_digits_round_trip() {
        for text in ["99999999999999999999999999999999999999", "99999999999999999999.999999999999999999", "-1234567890123456789012345678901234567.8"] {
            assert_eq!(format_amount(parse_amount(text).unwrap()), text);
        }
        let top = ledger_core::amount::format_minor(u128::MAX, 18);
        assert_eq!(format_amount(parse_balance(&top).unwrap()), top, "every balance the node can hold reads back");
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
        // 39 digits: past the 38 the node accepts (it was 29 on rust_decimal's 28).
        assert!(matches!(
            parse_amount("999999999999999999999999999999999999999"),
            Err(ParseError::AmountOverflow { .. })
        ));
        assert!(parse_amount("1.00000000000000000000000000000000000000001").is_err());
    }

    #[test]
    fn balance_empty_is_zero() {
        assert_eq!(parse_balance("").unwrap(), Amount::ZERO);
        assert!(parse_balance("x").is_err());
    }
}
