//! Click events shaped like the clickstream pipeline's fake producer: fixed pools of 100
//! users, 100 urls and 30 countries, so groups repeat and aggregates mean
//! something.

use serde_json::{Value, json};

use super::rng::SplitMix64;

const COUNTRIES: [(&str, &str); 30] = [
    ("US", "New York"),
    ("DE", "Berlin"),
    ("FR", "Paris"),
    ("GB", "London"),
    ("IN", "Mumbai"),
    ("BR", "São Paulo"),
    ("JP", "Tokyo"),
    ("CN", "Shanghai"),
    ("RU", "Moscow"),
    ("CA", "Toronto"),
    ("AU", "Sydney"),
    ("ES", "Madrid"),
    ("IT", "Rome"),
    ("MX", "Mexico City"),
    ("KR", "Seoul"),
    ("NL", "Amsterdam"),
    ("SE", "Stockholm"),
    ("PL", "Warsaw"),
    ("TR", "Istanbul"),
    ("AR", "Buenos Aires"),
    ("ZA", "Cape Town"),
    ("EG", "Cairo"),
    ("NG", "Lagos"),
    ("ID", "Jakarta"),
    ("TH", "Bangkok"),
    ("VN", "Hanoi"),
    ("PH", "Manila"),
    ("PT", "Lisbon"),
    ("IE", "Dublin"),
    ("RO", "Bucharest"),
];
const BROWSERS: [&str; 5] = ["Chrome", "Firefox", "Safari", "Edge", "Opera"];
const SYSTEMS: [&str; 5] = ["Windows", "macOS", "Linux", "Android", "iOS"];
const DEVICES: [&str; 3] = ["desktop", "mobile", "tablet"];

pub struct ClickstreamGenerator {
    rng: SplitMix64,
    /// Unix seconds of the next event; advances a few seconds per event.
    clock: i64,
}

impl ClickstreamGenerator {
    /// Events start at `start` (Unix seconds).
    pub fn new(seed: u64, start: i64) -> Self {
        ClickstreamGenerator {
            rng: SplitMix64::new(seed),
            clock: start,
        }
    }

    pub fn next_event(&mut self) -> Value {
        let rng = &mut self.rng;
        self.clock += rng.below(5) as i64;
        let (country, city) = COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize];
        json!({
            "user_id": format!("user-{:03}", rng.below(100)),
            "timestamp": self.clock,
            "url": format!("https://shop.example.com/page/{}", rng.below(100)),
            "country": country,
            "city": city,
            "browser": BROWSERS[rng.below(BROWSERS.len() as u64) as usize],
            "os": SYSTEMS[rng.below(SYSTEMS.len() as u64) as usize],
            "device": DEVICES[rng.below(DEVICES.len() as u64) as usize],
        })
    }
}

impl Iterator for ClickstreamGenerator {
    type Item = Value;
    fn next(&mut self) -> Option<Value> {
        Some(self.next_event())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_with_every_field_from_the_pools() {
        let a: Vec<Value> = ClickstreamGenerator::new(1, 1_700_000_000)
            .take(500)
            .collect();
        let b: Vec<Value> = ClickstreamGenerator::new(1, 1_700_000_000)
            .take(500)
            .collect();
        assert_eq!(a, b);
        let users: std::collections::HashSet<&str> =
            a.iter().map(|e| e["user_id"].as_str().unwrap()).collect();
        assert!(users.len() <= 100 && users.len() > 90, "{}", users.len());
        assert!(
            a.windows(2)
                .all(|w| w[0]["timestamp"].as_i64() <= w[1]["timestamp"].as_i64())
        );
        for key in [
            "user_id",
            "timestamp",
            "url",
            "country",
            "city",
            "browser",
            "os",
            "device",
        ] {
            assert!(!a[0][key].is_null(), "{key}");
        }
    }
}
