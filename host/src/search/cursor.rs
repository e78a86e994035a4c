//! Where a search goes on: what is left of each partition it did not
//! finish, as text a caller hands back (`oldest:0=120-500,3=45-90`). It
//! holds offsets, not a position in the answer, so it stays right however
//! long the caller waits: records appended since are not in it (the same
//! set as one unbounded search), and records deleted since are skipped.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Which way each partition is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Ascending offsets from the start.
    #[default]
    OldestFirst,
    /// Descending offsets from the end: read backwards in windows.
    NewestFirst,
}

impl Order {
    fn name(self) -> &'static str {
        match self {
            Order::OldestFirst => "oldest",
            Order::NewestFirst => "newest",
        }
    }
}

/// What is left to search: per partition, offsets `from..to` (`to`
/// exclusive), read in `order`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub order: Order,
    pub left: BTreeMap<i32, (i64, i64)>,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.order.name())?;
        for (i, (partition, (from, to))) in self.left.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            write!(f, "{comma}{partition}={from}-{to}")?;
        }
        Ok(())
    }
}

/// A cursor that is not one a search gave.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a search cursor: pass back the `cursor` of an answer as it was")]
pub struct BadCursor(pub String);

impl FromStr for Cursor {
    type Err = BadCursor;

    fn from_str(text: &str) -> Result<Self, BadCursor> {
        let bad = || BadCursor(text.chars().take(80).collect());
        let (order, ranges) = text.trim().split_once(':').ok_or_else(bad)?;
        let order = match order {
            "oldest" => Order::OldestFirst,
            "newest" => Order::NewestFirst,
            _ => return Err(bad()),
        };
        let mut left = BTreeMap::new();
        for range in ranges.split(',').filter(|r| !r.is_empty()) {
            let (partition, offsets) = range.split_once('=').ok_or_else(bad)?;
            let (from, to) = offsets.split_once('-').ok_or_else(bad)?;
            let partition: i32 = partition.parse().map_err(|_| bad())?;
            let (from, to): (i64, i64) = (
                from.parse().map_err(|_| bad())?,
                to.parse().map_err(|_| bad())?,
            );
            if partition < 0
                || from < 0
                || to < from
                || left.insert(partition, (from, to)).is_some()
            {
                return Err(bad());
            }
        }
        Ok(Cursor { order, left })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_written() {
        let cursor = Cursor {
            order: Order::NewestFirst,
            left: BTreeMap::from([(0, (0, 120)), (31, (7, 9))]),
        };
        assert_eq!(cursor.to_string(), "newest:0=0-120,31=7-9");
        assert_eq!(cursor.to_string().parse::<Cursor>(), Ok(cursor));
        assert_eq!(
            "oldest:".parse::<Cursor>().map(|c| c.left.len()),
            Ok(0),
            "nothing left"
        );
    }

    #[test]
    fn a_cursor_not_written_by_a_search_is_refused() {
        for bad in [
            "",
            "sideways:0=1-2",
            "oldest:0=5-1",
            "oldest:0=-1-2",
            "oldest:x=1-2",
            "oldest:0=1-2,0=3-4",
            "oldest:0=1",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }
}
