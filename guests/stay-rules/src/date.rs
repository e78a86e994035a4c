//! Calendar dates in the data set's `YYYY-MM-DD` form, without a date library:
//! the guest stays small and the rules stay visible.

/// Days since 1970-01-01 for a strict `YYYY-MM-DD` date, or `None` when the
/// text is not one (wrong shape, month 13, 30 February...).
pub fn parse_date(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year = digits(&bytes[0..4])?;
    let month = digits(&bytes[5..7])?;
    let day = digits(&bytes[8..10])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// Check-out minus check-in in days, when both are valid dates.
pub fn days_between(check_in: &str, check_out: &str) -> Option<i64> {
    Some(parse_date(check_out)? - parse_date(check_in)?)
}

fn digits(bytes: &[u8]) -> Option<i64> {
    bytes.iter().try_fold(0i64, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's `days_from_civil`: proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2000-03-01"), Some(11_017));
        assert_eq!(parse_date("2017-08-13"), Some(17_391));
    }

    #[test]
    fn days_across_months_and_leap_years() {
        assert_eq!(days_between("2016-02-28", "2016-03-01"), Some(2));
        assert_eq!(days_between("2017-02-28", "2017-03-01"), Some(1));
        assert_eq!(days_between("2016-12-30", "2017-01-04"), Some(5));
        assert_eq!(days_between("2017-08-20", "2017-08-13"), Some(-7));
    }

    #[test]
    fn rejects_what_is_not_a_date() {
        for bad in [
            "",
            "2017-8-13",
            "2017/08/13",
            "2017-13-01",
            "2017-00-10",
            "2017-02-29",
            "2017-04-31",
            "20170813",
            "2017-08-13T00:00",
            "abcd-ef-gh",
            "+017-08-13",
        ] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
        assert_eq!(parse_date("2016-02-29"), Some(16_860));
    }
}
