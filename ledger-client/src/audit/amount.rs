//! Exact amounts in export files: decimal strings with exactly the asset's scale, carried as u128
//! minor units (balances can pass rust_decimal's 96 bits, so the verifier does not use it).

/// `"123.45"` → (12345, 2). Only what the ledger writes: digits, one optional point.
pub fn parse(text: &str) -> Option<(u128, u8)> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.contains('.') && frac.is_empty() {
        return None;
    }
    let scale = u8::try_from(frac.len()).ok()?;
    let digits: u128 = format!("{int}{frac}").parse().ok()?;
    Some((digits, scale))
}

/// (12345, 2) → `"123.45"`, the ledger's own rendering.
pub fn format(minor: u128, scale: u8) -> String {
    let text = minor.to_string();
    let scale = usize::from(scale);
    if scale == 0 {
        return text;
    }
    let padded = if text.len() <= scale { format!("{}{}", "0".repeat(scale + 1 - text.len()), text) } else { text };
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{int}.{frac}")
}

/// The four balances of an account, in minor units of its asset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balances {
    pub debits_posted: u128,
    pub credits_posted: u128,
    pub debits_pending: u128,
    pub credits_pending: u128,
}

impl Balances {
    pub fn columns(&self, scale: u8) -> [String; 4] {
        [self.debits_posted, self.credits_posted, self.debits_pending, self.credits_pending].map(|v| format(v, scale))
    }
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
