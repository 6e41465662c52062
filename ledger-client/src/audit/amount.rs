//! Exact amounts in export files: decimal strings with exactly the asset's scale, carried as u128
//! minor units (balances can pass rust_decimal's 96 bits). The grammar and the rendering are
//! ledger-core's, the node's own (`Amount::parse_balance`, `format_minor`): one parse, one
//! format; what the verifier re-derives independently is the hashes, not the number syntax.

pub use ledger_core::amount::format_minor as format;
use ledger_core::amount::Amount;

/// `"123.45"` → (12345, 2). Only what the ledger writes: a non-negative decimal, the scale as
/// written (an export line's scale is its asset's), any u128 of minor units.
pub fn parse(text: &str) -> Option<(u128, u8)> {
    let amount = Amount::parse_balance(text).ok()?;
    if amount.is_negative() || text.starts_with('-') {
        return None;
    }
    Some((amount.minor(), amount.scale()))
}

/// The four balances of an account, in minor units of its asset: ledger-core's row type.
pub use ledger_core::types::Balances;

/// The balances as four decimal columns of the asset's scale.
pub fn columns(b: &Balances, scale: u8) -> [String; 4] {
    [b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending].map(|v| format(v, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_the_ledgers_decimals() {
        assert_eq!(parse("123.45"), Some((12_345, 2)));
        assert_eq!(parse("0.05"), Some((5, 2)));
        assert_eq!(parse("7"), Some((7, 0)));
        for bad in ["", "1.", ".5", "-1", "1e3", "1.2.3", " 1"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(format(5, 2), "0.05");
        assert_eq!(format(u128::MAX, 18), "340282366920938463463.374607431768211455");
        assert_eq!(parse(&format(u128::MAX, 18)), Some((u128::MAX, 18)));
    }
}
