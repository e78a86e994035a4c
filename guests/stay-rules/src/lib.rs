//! The expedia job's stay categorisation: days between check-in (`srch_ci`) and
//! check-out (`srch_co`) put each booking in a category, added to the record
//! as `stay_category`.
//!
//! Plain Rust, shared by the stay-category transformer, the stay-summary
//! aggregator and the benchmark's native baseline. It lives apart from the
//! components because linking a component crate into another would export
//! its world from both.

mod date;
mod enrich;

pub use date::{days_between, parse_date};
pub use enrich::{EnrichError, categorise, enrich, enrich_into};

pub const ERRONEOUS: &str = "Erroneous data";
pub const SHORT: &str = "Short stay";
pub const STANDARD: &str = "Standard stay";
pub const STANDARD_EXTENDED: &str = "Standard extended stay";
pub const LONG: &str = "Long stay";

/// Every category, in the order a summary lists them.
pub const CATEGORIES: [&str; 5] = [ERRONEOUS, SHORT, STANDARD, STANDARD_EXTENDED, LONG];

/// The original job's rules: missing or non-positive stays are erroneous; 1–4 short;
/// 5–10 standard; 11–14 standard extended; longer is long.
pub fn category(days: Option<i64>) -> &'static str {
    match days {
        None => ERRONEOUS,
        Some(d) if d <= 0 => ERRONEOUS,
        Some(1..=4) => SHORT,
        Some(5..=10) => STANDARD,
        Some(11..=14) => STANDARD_EXTENDED,
        Some(_) => LONG,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_follow_the_seed() {
        let cases = [
            (None, ERRONEOUS),
            (Some(-3), ERRONEOUS),
            (Some(0), ERRONEOUS),
            (Some(1), SHORT),
            (Some(4), SHORT),
            (Some(5), STANDARD),
            (Some(10), STANDARD),
            (Some(11), STANDARD_EXTENDED),
            (Some(14), STANDARD_EXTENDED),
            (Some(15), LONG),
            (Some(400), LONG),
        ];
        for (days, expected) in cases {
            assert_eq!(category(days), expected, "{days:?} days");
        }
    }
}
