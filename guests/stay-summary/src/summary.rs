//! The window's running counts, independent of the component wrapper.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde_json::value::RawValue;

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CategoryCount {
    pub stay_category: String,
    pub count_all: u64,
    pub count_distinct: u64,
}

#[derive(Default)]
pub struct Summary {
    /// Category → (bookings, distinct hotel ids as their JSON text).
    categories: BTreeMap<String, (u64, HashSet<String>)>,
}

#[derive(Deserialize)]
struct Booking<'a> {
    #[serde(default)]
    stay_category: Option<String>,
    #[serde(borrow, default)]
    hotel_id: Option<&'a RawValue>,
}

impl Summary {
    /// Counts one booking; an error names what is wrong with the value.
    pub fn add(&mut self, value: &[u8]) -> Result<(), String> {
        let booking: Booking<'_> = serde_json::from_slice(value)
            .map_err(|e| format!("value is not a JSON booking record: {e}"))?;
        let category = match booking.stay_category {
            Some(category) => category,
            None => stay_rules::categorise(value)
                .map_err(|e| e.to_string())?
                .0
                .to_owned(),
        };
        let (count, hotels) = self.categories.entry(category).or_default();
        *count += 1;
        if let Some(hotel) = booking.hotel_id.filter(|h| h.get() != "null") {
            hotels.insert(hotel.get().to_owned());
        }
        Ok(())
    }

    /// The rows in the original table's category order; unknown categories after.
    pub fn rows(&self) -> Vec<CategoryCount> {
        let rank = |name: &str| {
            stay_rules::CATEGORIES
                .iter()
                .position(|c| *c == name)
                .unwrap_or(usize::MAX)
        };
        let mut rows: Vec<CategoryCount> = self
            .categories
            .iter()
            .map(|(name, (count, hotels))| CategoryCount {
                stay_category: name.clone(),
                count_all: *count,
                count_distinct: hotels.len() as u64,
            })
            .collect();
        rows.sort_by_key(|row| rank(&row.stay_category));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bookings_and_distinct_hotels_per_category() {
        let mut summary = Summary::default();
        for value in [
            r#"{"hotel_id": 1, "stay_category": "Short stay"}"#,
            r#"{"hotel_id": 1, "stay_category": "Short stay"}"#,
            r#"{"hotel_id": 2, "stay_category": "Short stay"}"#,
            r#"{"hotel_id": 1, "srch_ci": "2017-08-01", "srch_co": "2017-08-31"}"#,
            r#"{"hotel_id": null, "stay_category": "Erroneous data"}"#,
        ] {
            summary.add(value.as_bytes()).unwrap();
        }
        assert_eq!(
            summary.rows(),
            vec![
                CategoryCount {
                    stay_category: "Erroneous data".into(),
                    count_all: 1,
                    count_distinct: 0
                },
                CategoryCount {
                    stay_category: "Short stay".into(),
                    count_all: 3,
                    count_distinct: 2
                },
                CategoryCount {
                    stay_category: "Long stay".into(),
                    count_all: 1,
                    count_distinct: 1
                },
            ]
        );
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let mut summary = Summary::default();
        let error = summary.add(b"[1]").unwrap_err();
        assert!(error.contains("not a JSON booking"), "{error}");
        assert!(summary.rows().is_empty());
    }
}
