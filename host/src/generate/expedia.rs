//! Booking search records shaped like the expedia data set, with a
//! controllable share of each stay length, bad dates included.

use serde_json::{Value, json};

use super::rng::SplitMix64;

/// Percentages of each kind of stay; the rest are long stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StayMix {
    /// Check-out on or before check-in.
    pub non_positive: u64,
    /// A null check-in or check-out.
    pub null_date: u64,
    /// A date that is not `YYYY-MM-DD`.
    pub bad_date: u64,
    pub short: u64,
    pub standard: u64,
    pub extended: u64,
}

impl Default for StayMix {
    fn default() -> Self {
        StayMix {
            non_positive: 4,
            null_date: 2,
            bad_date: 2,
            short: 45,
            standard: 30,
            extended: 10,
        }
    }
}

pub struct ExpediaGenerator {
    rng: SplitMix64,
    mix: StayMix,
    next_id: u64,
}

/// 2017-01-01 as days since the Unix epoch: the data set's year.
const FIRST_DAY: i64 = 17_167;

impl ExpediaGenerator {
    pub fn new(seed: u64, mix: StayMix) -> Self {
        ExpediaGenerator {
            rng: SplitMix64::new(seed),
            mix,
            next_id: 0,
        }
    }

    pub fn next_record(&mut self) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let rng = &mut self.rng;
        let check_in = FIRST_DAY + rng.between(0, 364);
        let (srch_ci, srch_co) = self.stay_dates(check_in);
        let rng = &mut self.rng;
        let booked = check_in - rng.between(1, 120);
        json!({
            "id": id,
            "date_time": format!("{} {:02}:{:02}:{:02}", civil(booked), rng.below(24), rng.below(60), rng.below(60)),
            "site_name": rng.between(1, 50),
            "posa_container": rng.between(1, 50),
            "user_location_country": rng.between(1, 240),
            "user_location_region": rng.between(1, 1000),
            "user_location_city": rng.between(1, 50_000),
            "orig_destination_distance": (rng.below(1_000_000) as f64) / 100.0,
            "user_id": rng.between(1, 1_200_000),
            "is_mobile": rng.below(2),
            "is_package": rng.below(2),
            "channel": rng.between(0, 10),
            "srch_ci": srch_ci,
            "srch_co": srch_co,
            "srch_adults_cnt": rng.between(1, 4),
            "srch_children_cnt": rng.between(0, 3),
            "srch_rm_cnt": rng.between(1, 3),
            "srch_destination_id": rng.between(1, 65_000),
            "srch_destination_type_id": rng.between(1, 9),
            "hotel_id": rng.between(1, 2_500) * 1_000_000_007 % 3_000_000_000,
        })
    }

    fn stay_dates(&mut self, check_in: i64) -> (Value, Value) {
        let mix = self.mix;
        let rng = &mut self.rng;
        let roll = rng.below(100);
        let mut edge = 0;
        let mut band = |share: u64| {
            edge += share;
            roll < edge
        };
        let nights = if band(mix.non_positive) {
            -rng.between(0, 3)
        } else if band(mix.null_date) {
            return if rng.chance(50) {
                (Value::Null, civil(check_in + 3).into())
            } else {
                (civil(check_in).into(), Value::Null)
            };
        } else if band(mix.bad_date) {
            let bad = ["2017-02-30", "17-08-13", "2017/08/13", "unknown"][rng.below(4) as usize];
            return (civil(check_in).into(), bad.into());
        } else if band(mix.short) {
            rng.between(1, 4)
        } else if band(mix.standard) {
            rng.between(5, 10)
        } else if band(mix.extended) {
            rng.between(11, 14)
        } else {
            rng.between(15, 60)
        };
        (civil(check_in).into(), civil(check_in + nights).into())
    }
}

impl Iterator for ExpediaGenerator {
    type Item = Value;
    fn next(&mut self) -> Option<Value> {
        Some(self.next_record())
    }
}

/// `YYYY-MM-DD` for days since the Unix epoch (Howard Hinnant's algorithm).
fn civil(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), "1970-01-01");
        assert_eq!(civil(FIRST_DAY), "2017-01-01");
        assert_eq!(civil(16_860), "2016-02-29");
    }

    #[test]
    fn same_seed_same_records_and_all_fields_present() {
        let a: Vec<Value> = ExpediaGenerator::new(7, StayMix::default())
            .take(50)
            .collect();
        let b: Vec<Value> = ExpediaGenerator::new(7, StayMix::default())
            .take(50)
            .collect();
        let c: Vec<Value> = ExpediaGenerator::new(8, StayMix::default())
            .take(50)
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a[0].as_object().unwrap().len(), 20);
        assert_eq!(a[3]["id"], 3);
    }
}
