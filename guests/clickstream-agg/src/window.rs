//! The running aggregate of one window.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupRow {
    pub url: String,
    pub country: String,
    pub clicks: u64,
    pub unique_users: u64,
    pub avg_time_spent: String,
}

#[derive(Default)]
struct Group {
    clicks: u64,
    users: HashSet<String>,
    earliest: i64,
    latest: i64,
}

#[derive(Default)]
pub struct Window {
    groups: BTreeMap<(String, String), Group>,
}

#[derive(Deserialize)]
struct Click {
    user_id: serde_json::Value,
    timestamp: i64,
    url: String,
    country: String,
}

impl Window {
    /// Counts one click event; an error names what is wrong with it.
    pub fn add(&mut self, value: &[u8]) -> Result<(), String> {
        let click: Click =
            serde_json::from_slice(value).map_err(|e| format!("not a click event: {e}"))?;
        let user = match click.user_id {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        let group = self
            .groups
            .entry((click.url, click.country))
            .or_insert_with(|| Group {
                earliest: click.timestamp,
                latest: click.timestamp,
                ..Group::default()
            });
        group.clicks += 1;
        group.users.insert(user);
        group.earliest = group.earliest.min(click.timestamp);
        group.latest = group.latest.max(click.timestamp);
        Ok(())
    }

    pub fn rows(&self) -> Vec<GroupRow> {
        self.groups
            .iter()
            .map(|((url, country), g)| GroupRow {
                url: url.clone(),
                country: country.clone(),
                clicks: g.clicks,
                unique_users: g.users.len() as u64,
                avg_time_spent: hh_mm_ss((g.latest - g.earliest) / g.users.len().max(1) as i64),
            })
            .collect()
    }
}

/// Whole seconds as `HH:MM:SS` (hours may exceed 24).
pub fn hh_mm_ss(seconds: i64) -> String {
    let s = seconds.max(0);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_durations() {
        assert_eq!(hh_mm_ss(0), "00:00:00");
        assert_eq!(hh_mm_ss(3_725), "01:02:05");
        assert_eq!(hh_mm_ss(90_000), "25:00:00");
    }

    #[test]
    fn groups_by_url_and_country() {
        let mut window = Window::default();
        for (user, ts, url, country) in [
            ("a", 100, "/x", "DE"),
            ("b", 400, "/x", "DE"),
            ("a", 700, "/x", "DE"),
            ("a", 50, "/x", "FR"),
        ] {
            let event = serde_json::json!({"user_id": user, "timestamp": ts, "url": url, "country": country});
            window.add(event.to_string().as_bytes()).unwrap();
        }
        assert!(window.add(b"{}").is_err());
        let rows = window.rows();
        assert_eq!(
            rows[0],
            GroupRow {
                url: "/x".into(),
                country: "DE".into(),
                clicks: 3,
                unique_users: 2,
                avg_time_spent: "00:05:00".into()
            }
        );
        assert_eq!(rows[1].avg_time_spent, "00:00:00");
    }
}
