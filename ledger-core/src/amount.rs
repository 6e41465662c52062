//! Exact decimal amounts. Strings cross the API; inside, u128 minor units with checked arithmetic.
//! One grammar (`Amount::parse`) and one rendering (`format_minor`, `Amount`'s `Display`), used
//! by the node (`DecimalInput`, balances in answers) and the client (`Amount`) alike.
//!
//! Hand-written rather than rust_decimal: balances are u128 minor units, and rust_decimal's
//! 96-bit mantissa cannot hold them; the grammar accepted here is deliberately tiny.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Mul, Neg, Sub, SubAssign};
use std::str::FromStr;

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

    /// Parses `(0|[1-9][0-9]*)(\.[0-9]+)?` (the grammar of `Amount::parse`): no leading zeros
    /// ("007" is `AmountInvalid`: one spelling per number, and never an octal-looking one).
    /// Trailing fractional zeros carry no value ("2.500" is 2.5, for the scale check and the
    /// idempotency fingerprint alike). A leading '-' is `AmountNegative`; more than 38 digits
    /// once trailing fractional zeros are dropped is `AmountOverflow`, even when the value would
    /// fit 128 bits (one bound a client can check without knowing the asset); anything else
    /// malformed is `AmountInvalid`.
    pub fn parse(text: &str) -> Result<DecimalInput, ResultCode> {
        let amount = Amount::parse(text)?;
        if amount.is_negative() {
            return Err(ResultCode::AmountNegative);
        }
        let normal = amount.normalized();
        Ok(DecimalInput { digits: normal.minor, scale: normal.scale })
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

/// An exact signed decimal, `±minor / 10^scale`, as the client builds and reads amounts and
/// balances: u128 minor units (38 digits and more, where rust_decimal holds 28), the scale as
/// written ("12.50" stays two places), never a float. Equality, order and hashing are by value
/// (1.5 == 1.50). Arithmetic is exact and panics on overflow, like integer arithmetic in the
/// release profile (overflow-checks on).
#[derive(Clone, Copy, Default)]
pub struct Amount {
    minor: u128,
    scale: u8,
    negative: bool,
}

/// The most fractional digits an `Amount` carries (10^38 still fits a u128).
pub const AMOUNT_SCALE_MAX: u8 = 38;

/// Digits of the largest u128: what a balance may have (`Amount::parse_balance`).
const U128_DIGITS: usize = 39;

impl Amount {
    pub const ZERO: Amount = Amount { minor: 0, scale: 0, negative: false };

    /// `mantissa / 10^scale`, as `rust_decimal::Decimal::new`: `Amount::new(1250, 2)` is 12.50.
    /// Panics when `scale` > 38.
    pub fn new(mantissa: impl Into<i128>, scale: u8) -> Amount {
        let mantissa: i128 = mantissa.into();
        Amount::signed(mantissa < 0, mantissa.unsigned_abs(), scale)
    }

    /// `minor / 10^scale`, non-negative: an amount of an asset of `scale` decimal places.
    /// Panics when `scale` > 38.
    pub fn from_minor(minor: u128, scale: u8) -> Amount {
        Amount::signed(false, minor, scale)
    }

    fn signed(negative: bool, minor: u128, scale: u8) -> Amount {
        assert!(scale <= AMOUNT_SCALE_MAX, "amount scale {scale} > {AMOUNT_SCALE_MAX}");
        // Zero is never negative: one spelling, "-0" is never printed.
        Amount { minor, scale, negative: negative && minor != 0 }
    }

    /// The magnitude in units of `10^-scale`.
    pub fn minor(self) -> u128 {
        self.minor
    }

    pub fn scale(self) -> u8 {
        self.scale
    }

    pub fn is_negative(self) -> bool {
        self.negative
    }

    pub fn is_zero(self) -> bool {
        self.minor == 0
    }

    pub fn abs(self) -> Amount {
        Amount { negative: false, ..self }
    }

    /// The one grammar of amounts, `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, for what a caller writes:
    /// at most 38 significant digits (`AmountOverflow`, never a rounding), anything else
    /// malformed `AmountInvalid`. The scale is kept ("12.50" is two places) unless trailing
    /// zeros would pass 38 digits, then only as many as fit are kept (the value is exact).
    /// "-0" is zero. The node's input parse (`DecimalInput::parse`) is this one.
    pub fn parse(text: &str) -> Result<Amount, ResultCode> {
        parse_bounded(text, AMOUNT_DIGITS_MAX)
    }

    /// The same grammar for what the ledger writes: a balance may hold any u128 of minor units
    /// (39 digits; `format_minor` of `u128::MAX` reads back).
    pub fn parse_balance(text: &str) -> Result<Amount, ResultCode> {
        parse_bounded(text, U128_DIGITS)
    }

    /// Minor units of an asset with `asset_scale` decimal places: negative is `AmountNegative`,
    /// finer than the asset `AmountScaleExceeded` (trailing zeros carry no value: 25.000 is
    /// 2500 at scale 2), too large `AmountOverflow`. Exactly the node's check of an input.
    pub fn to_minor(self, asset_scale: u8) -> Result<u128, ResultCode> {
        if self.negative {
            return Err(ResultCode::AmountNegative);
        }
        let normal = self.normalized();
        DecimalInput { digits: normal.minor, scale: normal.scale }.to_minor(asset_scale)
    }

    /// The same value with no trailing fractional zeros (zero is scale 0).
    pub fn normalized(self) -> Amount {
        let mut out = self;
        while out.scale > 0 && out.minor % 10 == 0 {
            out.minor /= 10;
            out.scale -= 1;
        }
        out
    }

    /// The magnitude at `scale` (>= self.scale); `None` when it does not fit.
    fn minor_at(self, scale: u8) -> Option<u128> {
        10u128.checked_pow(u32::from(scale - self.scale)).and_then(|f| self.minor.checked_mul(f))
    }

    fn checked_add(self, other: Amount) -> Option<Amount> {
        let scale = self.scale.max(other.scale);
        let (a, b) = (self.minor_at(scale)?, other.minor_at(scale)?);
        Some(if self.negative == other.negative {
            Amount::signed(self.negative, a.checked_add(b)?, scale)
        } else if a >= b {
            Amount::signed(self.negative, a - b, scale)
        } else {
            Amount::signed(other.negative, b - a, scale)
        })
    }

    fn checked_mul(self, other: Amount) -> Option<Amount> {
        let scale = self.scale.checked_add(other.scale).filter(|s| *s <= AMOUNT_SCALE_MAX)?;
        Some(Amount::signed(self.negative != other.negative, self.minor.checked_mul(other.minor)?, scale))
    }

    /// Compares magnitudes exactly: integer parts, then fractions at the larger scale.
    fn cmp_magnitude(self, other: Amount) -> std::cmp::Ordering {
        let split = |a: Amount| {
            let unit = 10u128.pow(u32::from(a.scale));
            (a.minor / unit, a.minor % unit)
        };
        let ((ai, af), (bi, bf)) = (split(self), split(other));
        let scale = self.scale.max(other.scale);
        // Fractions are below 10^scale <= 10^38 at the larger scale: no overflow.
        let widen = |f: u128, s: u8| f * 10u128.pow(u32::from(scale - s));
        ai.cmp(&bi).then(widen(af, self.scale).cmp(&widen(bf, other.scale)))
    }
}

fn parse_bounded(text: &str, max_digits: usize) -> Result<Amount, ResultCode> {
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
    let int = int_part.trim_start_matches('0');
    let frac = frac_part.unwrap_or("");
    // Trailing fractional zeros carry no value ("1.50" is 1.5): they do not count against the
    // bound, and are kept only as far as they fit it.
    let significant = frac.trim_end_matches('0');
    if int.len() + significant.len() > max_digits {
        return Err(ResultCode::AmountOverflow);
    }
    let keep = frac.len().min(max_digits - int.len()).min(usize::from(AMOUNT_SCALE_MAX)).max(significant.len());
    if significant.len() > usize::from(AMOUNT_SCALE_MAX) {
        return Err(ResultCode::AmountOverflow);
    }
    let frac = &frac[..keep];
    let mut minor: u128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        minor = minor
            .checked_mul(10)
            .and_then(|d| d.checked_add(u128::from(b - b'0')))
            .ok_or(ResultCode::AmountOverflow)?;
    }
    // keep <= 38 here, so it fits a u8.
    Ok(Amount::signed(negative, minor, keep as u8))
}

impl fmt::Display for Amount {
    /// The one rendering: `-?` then `format_minor` (no exponent, no '+', the scale kept).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.negative { "-" } else { "" };
        write!(f, "{sign}{}", format_minor(self.minor, self.scale))
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({self})")
    }
}

impl FromStr for Amount {
    type Err = ResultCode;
    fn from_str(text: &str) -> Result<Amount, ResultCode> {
        Amount::parse(text)
    }
}

impl PartialEq for Amount {
    fn eq(&self, other: &Amount) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Amount {}

impl Ord for Amount {
    fn cmp(&self, other: &Amount) -> std::cmp::Ordering {
        match (self.negative, other.negative) {
            (false, true) => std::cmp::Ordering::Greater,
            (true, false) => std::cmp::Ordering::Less,
            (false, false) => self.cmp_magnitude(*other),
            (true, true) => other.cmp_magnitude(*self),
        }
    }
}

impl PartialOrd for Amount {
    fn partial_cmp(&self, other: &Amount) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash for Amount {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let n = self.normalized();
        (n.negative, n.minor, n.scale).hash(state);
    }
}

macro_rules! amount_from_integer {
    ($($t:ty),*) => {$(
        impl From<$t> for Amount {
            fn from(value: $t) -> Amount {
                Amount::new(value, 0)
            }
        }
    )*};
}
amount_from_integer!(i8, i16, i32, i64, u8, u16, u32, u64);

impl From<u128> for Amount {
    fn from(value: u128) -> Amount {
        Amount::from_minor(value, 0)
    }
}

impl Add for Amount {
    type Output = Amount;
    fn add(self, other: Amount) -> Amount {
        self.checked_add(other).expect("amount addition overflowed")
    }
}

impl Sub for Amount {
    type Output = Amount;
    fn sub(self, other: Amount) -> Amount {
        self.checked_add(-other).expect("amount subtraction overflowed")
    }
}

impl Mul for Amount {
    type Output = Amount;
    fn mul(self, other: Amount) -> Amount {
        self.checked_mul(other).expect("amount multiplication overflowed")
    }
}

impl Neg for Amount {
    type Output = Amount;
    fn neg(self) -> Amount {
        Amount::signed(!self.negative, self.minor, self.scale)
    }
}

impl AddAssign for Amount {
    fn add_assign(&mut self, other: Amount) {
        *self = *self + other;
    }
}

impl SubAssign for Amount {
    fn sub_assign(&mut self, other: Amount) {
        *self = *self - other;
    }
}

impl Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Amount {
        iter.fold(Amount::ZERO, |a, b| a + b)
    }
}

impl<'a> Sum<&'a Amount> for Amount {
    fn sum<I: Iterator<Item = &'a Amount>>(iter: I) -> Amount {
        iter.copied().sum()
    }
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

    #[test]
    fn amounts_keep_their_scale_and_read_back() {
        for text in ["12.50", "0", "-3.000", "0.07", "1.5", "0.000000000000000001", "9999999999999999999999999999"] {
            assert_eq!(Amount::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Amount::parse("-0.00").unwrap().to_string(), "0.00", "zero is never negative");
        let max38 = "9".repeat(38);
        assert_eq!(Amount::parse(&max38).unwrap().to_string(), max38);
        let frac38 = format!("0.{}", "1".repeat(38));
        assert_eq!(Amount::parse(&frac38).unwrap().to_string(), frac38);
        assert_eq!(Amount::parse(&"9".repeat(39)), Err(ResultCode::AmountOverflow));
        assert_eq!(Amount::parse(&format!("1.{}", "0".repeat(60))).unwrap(), Amount::from(1u8));
        let top = format_minor(u128::MAX, 18);
        assert_eq!(Amount::parse(&top), Err(ResultCode::AmountOverflow), "39 digits: not an input");
        assert_eq!(Amount::parse_balance(&top).unwrap().to_string(), top, "but a balance");
        assert_eq!(Amount::parse_balance(&top).unwrap().minor(), u128::MAX);
        assert_eq!(Amount::parse_balance(&format!("{top}1")), Err(ResultCode::AmountOverflow));
        assert_eq!(Amount::parse_balance("340282366920938463463374607431768211456"), Err(ResultCode::AmountOverflow));
        for bad in ["", "-", ".", "1.", ".5", "+5", "1e3", "1_000", " 1", "1 ", "1,5", "--1", "0x10", "NaN", "007", "-007"] {
            assert_eq!(Amount::parse(bad), Err(ResultCode::AmountInvalid), "{bad:?}");
        }
    }

    #[test]
    fn amounts_compare_and_add_by_value() {
        let a = |t: &str| Amount::parse(t).unwrap();
        assert_eq!(a("1.5"), a("1.50"));
        assert_eq!(a("-2"), Amount::new(-200, 2));
        assert!(a("-2") < a("1") && a("1.05") > a("1.049") && a("-1.05") < a("-1.049"));
        assert_eq!((a("1.25") + a("0.5")).to_string(), "1.75");
        assert_eq!((a("1") - a("2.50")).to_string(), "-1.50");
        assert_eq!((a("1.25") * Amount::from(3u8)).to_string(), "3.75");
        assert_eq!([a("1"), a("-0.25")].iter().sum::<Amount>(), a("0.75"));
        assert_eq!((-a("0.00")).to_string(), "0.00");
        assert_eq!(a("12.5").to_minor(2), Ok(1250));
        assert_eq!(a("25.000").to_minor(2), Ok(2500));
        assert_eq!(a("1.005").to_minor(2), Err(ResultCode::AmountScaleExceeded));
        assert_eq!(a("-1").to_minor(2), Err(ResultCode::AmountNegative));
        let big = Amount::from_minor(10u128.pow(38) - 1, 0);
        assert_eq!(big.to_string().len(), 38);
        assert_eq!(Amount::parse(&big.to_string()), Ok(big));
        let set: std::collections::HashSet<Amount> = [a("1.5"), a("1.50"), a("-0")].into_iter().collect();
        assert_eq!(set.len(), 2);
    }
}
