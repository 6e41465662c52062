//! Nanosecond timestamps rendered as RFC 3339 UTC, without a date crate: the conversion is a few
//! lines of integer arithmetic (Howard Hinnant's `civil_from_days`).

/// A fixed offset from UTC (`+08:00`, `-05:30`, `Z`), for local times in exports. Fixed on
/// purpose: no time-zone database, so an export's local times never change with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UtcOffset {
    pub minutes: i32,
}

impl UtcOffset {
    pub fn parse(text: &str) -> Result<UtcOffset, String> {
        if text == "Z" || text == "+00:00" || text == "UTC" {
            return Ok(UtcOffset { minutes: 0 });
        }
        let bad = || format!("{text:?} is not a UTC offset like +08:00 or -05:30");
        let (sign, rest) = match text.as_bytes().first() {
            Some(b'+') => (1, &text[1..]),
            Some(b'-') => (-1, &text[1..]),
            _ => return Err(bad()),
        };
        let (hours, minutes) = rest.split_once(':').ok_or_else(bad)?;
        let (hours, minutes): (i32, i32) = (hours.parse().map_err(|_| bad())?, minutes.parse().map_err(|_| bad())?);
        if hours.abs() > 14 || !(0..60).contains(&minutes) || rest.len() != 5 {
            return Err(bad());
        }
        Ok(UtcOffset { minutes: sign * (hours * 60 + minutes) })
    }

    /// `+08:00`; `Z` for UTC.
    pub fn suffix(self) -> String {
        if self.minutes == 0 {
            return "Z".into();
        }
        let sign = if self.minutes < 0 { '-' } else { '+' };
        let m = self.minutes.abs();
        format!("{sign}{:02}:{:02}", m / 60, m % 60)
    }
}

/// RFC 3339 in the given fixed offset: `2026-11-23T16:00:00.000000000+08:00`.
pub fn rfc3339_with_offset(timestamp_ns: u64, offset: UtcOffset) -> String {
    const NS_PER_S: i128 = 1_000_000_000;
    let local_ns = i128::from(timestamp_ns) + i128::from(offset.minutes) * 60 * NS_PER_S;
    let seconds = local_ns.div_euclid(NS_PER_S);
    let nanos = local_ns.rem_euclid(NS_PER_S);
    let days = seconds.div_euclid(86_400) as i64;
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}{}",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60,
        offset.suffix()
    )
}

/// Parses a time given on the command line: nanoseconds since the epoch, or RFC 3339 with `Z` or
/// an offset (`2026-11-23T00:00:00Z`, `2026-11-23T08:00:00+08:00`, fraction optional), or a date
/// (`2026-11-23`, midnight UTC).
pub fn parse_time_ns(text: &str) -> Result<u64, String> {
    if let Ok(ns) = text.parse::<u64>() {
        return Ok(ns);
    }
    let bad = || format!("{text:?} is not a time (nanoseconds, 2026-11-23 or 2026-11-23T08:00:00+08:00)");
    let (date, rest) = text.split_at(text.len().min(10));
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?, parts.next().ok_or_else(bad)?);
    let (year, month, day): (i64, u32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || date.len() != 10 {
        return Err(bad());
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    let mut nanos: i64 = 0;
    if !rest.is_empty() {
        let rest = rest.strip_prefix('T').ok_or_else(bad)?;
        let time = rest.get(..8).ok_or_else(bad)?;
        let fields: Vec<i64> = time.split(':').map(|f| f.parse().map_err(|_| bad())).collect::<Result<_, _>>()?;
        if fields.len() != 3 || fields[0] > 23 || fields[1] > 59 || fields[2] > 60 {
            return Err(bad());
        }
        seconds += fields[0] * 3600 + fields[1] * 60 + fields[2];
        let mut tail = &rest[8..];
        if let Some(fraction) = tail.strip_prefix('.') {
            let digits = fraction.find(|c: char| !c.is_ascii_digit()).unwrap_or(fraction.len());
            if digits == 0 || digits > 9 {
                return Err(bad());
            }
            nanos = fraction[..digits].parse::<i64>().map_err(|_| bad())? * 10i64.pow(9 - digits as u32);
            tail = &fraction[digits..];
        }
        seconds -= i64::from(UtcOffset::parse(tail)?.minutes) * 60;
    }
    let ns = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
    u64::try_from(ns).map_err(|_| format!("{text:?} is before 1970 or after 2554"))
}

/// (year, month, day) to days since 1970-01-01 (the inverse of `civil_from_days`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

pub fn rfc3339_from_ns(timestamp_ns: u64) -> String {
    const NS_PER_S: u64 = 1_000_000_000;
    let seconds = timestamp_ns / NS_PER_S;
    let nanos = timestamp_ns % NS_PER_S;
    let days = (seconds / 86_400) as i64;
    let second_of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_from_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_from_ns(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(
            rfc3339_from_ns(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(rfc3339_from_ns(u64::MAX), "2554-07-21T23:34:33.709551615Z");
    }

    #[test]
    fn offsets_and_parsing_round_trip() {
        let beijing = UtcOffset::parse("+08:00").unwrap();
        assert_eq!(rfc3339_with_offset(1_700_000_000_123_456_789, beijing), "2023-11-15T06:13:20.123456789+08:00");
        assert_eq!(rfc3339_with_offset(0, UtcOffset::parse("-05:30").unwrap()), "1969-12-31T18:30:00.000000000-05:30");
        assert_eq!(rfc3339_with_offset(5, UtcOffset::default()), rfc3339_from_ns(5));
        for bad in ["8", "+8:00", "+15:00", "+08:60", "08:00"] {
            assert!(UtcOffset::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_time_ns("2023-11-14T22:13:20.123456789Z"), Ok(1_700_000_000_123_456_789));
        assert_eq!(parse_time_ns("2023-11-15T06:13:20.123456789+08:00"), Ok(1_700_000_000_123_456_789));
        assert_eq!(parse_time_ns("2000-02-29"), Ok(951_782_400_000_000_000));
        assert_eq!(parse_time_ns("42"), Ok(42));
        for bad in ["2023-13-01", "2023-11-14T25:00:00Z", "2023-11-14T22:13:20", "yesterday", "1969-12-31"] {
            assert!(parse_time_ns(bad).is_err(), "{bad}");
        }
    }
}
