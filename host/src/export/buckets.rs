//! Time buckets: the hour or day (UTC) a record's time falls in, the
//! folder that names it (`dt=2026-12-05/hour=14`, the Hive convention query
//! engines read as partition columns), and where a record of a bucket goes
//! once the bucket is complete. Pure arithmetic, tested on its own.

use crate::config::{LateData, PartitionBy};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The earliest and latest times a folder can name with a four-digit year
/// (0001-01-01 and the last millisecond of 9999-12-31).
const FIRST_MS: i64 = -62_135_596_800_000;
const LAST_MS: i64 = 253_402_300_799_999;

/// One bucket: the hour or day starting at `start` (ms since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bucket {
    pub start: i64,
}

impl PartitionBy {
    fn millis(self) -> i64 {
        match self {
            PartitionBy::Hour => HOUR_MS,
            PartitionBy::Day => DAY_MS,
        }
    }

    /// The bucket `time` falls in; none for a time no folder can name.
    pub fn bucket(self, time: i64) -> Option<Bucket> {
        (FIRST_MS..=LAST_MS).contains(&time).then(|| Bucket {
            start: time - time.rem_euclid(self.millis()),
        })
    }

    /// The end of `bucket` (exclusive): the start of the next one.
    pub fn end(self, bucket: Bucket) -> i64 {
        bucket.start.saturating_add(self.millis())
    }

    /// `dt=2026-12-05/hour=14` (hours two digits, so folders sort as
    /// times), or `dt=2026-12-05`.
    pub fn path(self, bucket: Bucket) -> String {
        let Some(at) = chrono::DateTime::from_timestamp_millis(bucket.start) else {
            return format!("dt=invalid-{}", bucket.start); // never: buckets are in range
        };
        match self {
            PartitionBy::Hour => at.format("dt=%Y-%m-%d/hour=%H").to_string(),
            PartitionBy::Day => at.format("dt=%Y-%m-%d").to_string(),
        }
    }

    /// The bucket a [`Self::path`] names.
    pub fn parse(self, path: &str) -> Option<Bucket> {
        let (day, hour) = match self {
            PartitionBy::Hour => {
                let (day, hour) = path.split_once("/hour=")?;
                (day, Some(hour))
            }
            PartitionBy::Day => (path, None),
        };
        let date = chrono::NaiveDate::parse_from_str(day.strip_prefix("dt=")?, "%Y-%m-%d").ok()?;
        let hour: u32 = match hour {
            Some(text) if text.len() == 2 => text.parse().ok().filter(|h| *h < 24)?,
            Some(_) => return None,
            None => 0,
        };
        let at = date.and_hms_opt(hour, 0, 0)?.and_utc().timestamp_millis();
        let bucket = self.bucket(at)?;
        (self.path(bucket) == path).then_some(bucket)
    }

    /// The buckets from the one holding `from` up to the last one that
    /// ends at or before `through`.
    pub fn ending_by(self, from: i64, through: i64) -> impl Iterator<Item = Bucket> {
        let first = self.bucket(from).map_or(i64::MAX, |b| b.start);
        let step = self.millis();
        (0..)
            .map(move |i: i64| first.saturating_add(i.saturating_mul(step)))
            .take_while(move |start| start.saturating_add(step) <= through && *start < LAST_MS)
            .map(|start| Bucket { start })
    }
}

/// Where one of a unit's files goes: a bucket's folder, or the same bucket
/// under `_late/` (the late-data policy `late`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub bucket: Bucket,
    pub late: bool,
}

/// The bucket a record goes to, given the bucket of its own time, the
/// completeness of the output when the run started (buckets ending at or
/// before `complete_through` are complete) and the newest bucket its
/// partition is writing in this run (`current`).
pub fn place(
    by: PartitionBy,
    policy: LateData,
    own: Bucket,
    complete_through: Option<i64>,
    current: Option<Bucket>,
) -> (Location, bool) {
    let closed = complete_through.is_some_and(|through| by.end(own) <= through);
    if !closed {
        return (
            Location {
                bucket: own,
                late: false,
            },
            false,
        );
    }
    let location = match policy {
        LateData::Strict => Location {
            bucket: own,
            late: false,
        },
        LateData::Late => Location {
            bucket: own,
            late: true,
        },
        LateData::Current => {
            // The newest bucket the partition writes, else the first one
            // still open: the one the completeness has reached.
            let open = complete_through
                .and_then(|through| by.bucket(through))
                .unwrap_or(own);
            Location {
                bucket: current.filter(|c| *c > open).unwrap_or(open),
                late: false,
            }
        }
    };
    (location, true)
}

/// A record's time for its bucket: its Kafka timestamp, or the value's
/// top-level `field` as milliseconds since the epoch or RFC 3339 text.
pub fn record_time(
    timestamp: Option<i64>,
    value: Option<&[u8]>,
    field: Option<&str>,
) -> Result<i64, String> {
    let Some(field) = field else {
        return timestamp.ok_or_else(|| "the record has no timestamp to place it by".to_owned());
    };
    let text = value
        .and_then(|v| crate::record::json_row::key_of(v, field))
        .ok_or_else(|| format!("the value has no time field `{field}`"))?;
    let text =
        std::str::from_utf8(&text).map_err(|_| format!("time field `{field}` is not text"))?;
    if let Ok(millis) = text.parse::<i64>() {
        return Ok(millis);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|at| at.timestamp_millis())
        .map_err(|e| {
            format!(
                "time field `{field}` is neither milliseconds nor RFC 3339 time ({e}): {text:?}"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn buckets_name_their_folders_and_read_back() {
        let by = PartitionBy::Hour;
        let bucket = by.bucket(ms("2026-12-05T14:59:59.999Z")).unwrap();
        assert_eq!(bucket.start, ms("2026-12-05T14:00:00Z"));
        assert_eq!(by.end(bucket), ms("2026-12-05T15:00:00Z"));
        assert_eq!(by.path(bucket), "dt=2026-12-05/hour=14");
        assert_eq!(by.parse("dt=2026-12-05/hour=14"), Some(bucket));
        assert_eq!(
            by.path(by.bucket(ms("2026-12-05T03:00:00Z")).unwrap()),
            "dt=2026-12-05/hour=03"
        );
        let day = PartitionBy::Day;
        assert_eq!(
            day.path(day.bucket(ms("2026-12-05T23:59:59Z")).unwrap()),
            "dt=2026-12-05"
        );
        assert_eq!(
            day.parse("dt=2026-12-05").map(|b| b.start),
            Some(ms("2026-12-05T00:00:00Z"))
        );
        // Before the epoch too, floored.
        assert_eq!(
            by.path(by.bucket(-1).unwrap()),
            "dt=1969-12-31/hour=23",
            "floored, not truncated toward zero"
        );
        for bad in [
            "dt=2026-12-05/hour=24",
            "dt=2026-12-05/hour=4",
            "dt=2026-13-05/hour=04",
            "dt=2026-12-05",
            "x=2026-12-05/hour=04",
            "dt=2026-12-05/hour=04/x",
        ] {
            assert_eq!(by.parse(bad), None, "{bad}");
        }
        assert_eq!(by.bucket(LAST_MS + 1), None, "no five-digit years");
        assert_eq!(by.bucket(FIRST_MS - 1), None);
        assert!(by.bucket(LAST_MS).is_some() && by.bucket(FIRST_MS).is_some());
    }

    #[test]
    fn buckets_ending_by_a_time() {
        let by = PartitionBy::Hour;
        let starts: Vec<String> = by
            .ending_by(ms("2026-12-05T13:20:00Z"), ms("2026-12-05T16:00:00Z"))
            .map(|b| by.path(b))
            .collect();
        assert_eq!(
            starts,
            [
                "dt=2026-12-05/hour=13",
                "dt=2026-12-05/hour=14",
                "dt=2026-12-05/hour=15"
            ]
        );
        assert_eq!(
            by.ending_by(ms("2026-12-05T13:20:00Z"), ms("2026-12-05T13:59:59Z"))
                .count(),
            0
        );
    }

    #[test]
    fn each_late_data_policy_places_a_record_of_a_complete_bucket() {
        let by = PartitionBy::Hour;
        let at = |text: &str| by.bucket(ms(text)).unwrap();
        let (h10, h12, h13) = (
            at("2026-12-05T10:30:00Z"),
            at("2026-12-05T12:10:00Z"),
            at("2026-12-05T13:10:00Z"),
        );
        // Complete through 12:00: hours 10 and 11 are closed.
        let through = Some(ms("2026-12-05T12:00:00Z"));
        let placed = |policy, own, current| place(by, policy, own, through, current);
        let own = Location {
            bucket: h10,
            late: false,
        };
        assert!(!placed(LateData::Strict, h12, None).1, "not late");
        assert_eq!(placed(LateData::Strict, h10, Some(h13)), (own, true));
        assert_eq!(
            placed(LateData::Late, h10, Some(h13)),
            (
                Location {
                    bucket: h10,
                    late: true
                },
                true
            )
        );
        assert_eq!(
            placed(LateData::Current, h10, Some(h13)).0.bucket,
            h13,
            "the bucket its partition writes"
        );
        assert_eq!(
            placed(LateData::Current, h10, None).0.bucket,
            h12,
            "else the first bucket still open"
        );
        // Nothing complete yet: nothing is late.
        assert_eq!(
            place(by, LateData::Late, h10, None, None),
            (own, false),
            "no completeness yet"
        );
    }

    #[test]
    fn a_record_time_comes_from_its_timestamp_or_a_value_field() {
        assert_eq!(record_time(Some(5), Some(b"{}"), None), Ok(5));
        assert!(record_time(None, None, None).is_err());
        let field = Some("at");
        assert_eq!(
            record_time(Some(5), Some(br#"{"at":1700}"#), field),
            Ok(1700)
        );
        assert_eq!(
            record_time(
                Some(5),
                Some(br#"{"at":"2026-12-05T14:00:00+01:00"}"#),
                field
            ),
            Ok(ms("2026-12-05T13:00:00Z"))
        );
        for (value, says) in [
            (&br#"{"other":1}"#[..], "no time field `at`"),
            (br#"{"at":null}"#, "no time field `at`"),
            (
                br#"{"at":"yesterday"}"#,
                "neither milliseconds nor RFC 3339",
            ),
            (br#"{"at":1.5}"#, "neither milliseconds nor RFC 3339"),
            (b"[1]", "no time field"),
        ] {
            let error = record_time(Some(5), Some(value), field).unwrap_err();
            assert!(error.contains(says), "{error}");
        }
    }
}
