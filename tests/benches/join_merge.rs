//! The join's merge by the number of fields: two records of one id, each
//! with N top-level fields (half of the second's replacing the first's) and
//! a `content` of N/10 merged field by field, parsed, merged and written
//! out as the join does when an id completes. Beside it the same merge on
//! `serde_json` trees (maps with a hash index, so linear too): the peer
//! that shows what a linear merge costs. Time per merge for 100, 1,000 and
//! 10,000 fields; a linear merge takes about 10 times as long for 10 times
//! the fields, a quadratic one about 100 times.
//!
//! `cargo bench -p sluice-tests --bench join_merge` (about 2 million fields
//! merged per size and variant; 20,000 under `cargo test --all-targets`).

use serde_json::{Map, Value, json};
use sluice_host::enrich::{Merged, RawObject};
use sluice_tests::bench::{self, Child, Measured, Stopwatch, run_variant};

const SIZES: [usize; 3] = [100, 1_000, 10_000];
const MERGED_FIELD: &str = "content";

fn main() {
    if let Some(child) = Child::from_args() {
        return variant(&child);
    }
    let fields_per_size = bench::count(2_000_000, 20_000);
    for fields in SIZES {
        let (first, second) = parts(fields);
        let spans = merge_spans(&first, &second);
        let trees = merge_trees(&first, &second);
        assert!(
            bench::same_json(&spans, &trees)
                && serde_json::from_str::<Value>(&spans)
                    .map(|v| v.to_string())
                    .ok()
                    == Some(trees.clone()),
            "{fields} fields: the merges disagree"
        );
    }
    let mut rows = Vec::new();
    for fields in SIZES {
        let merges = (fields_per_size / fields).max(3);
        let args = [
            ("fields", fields.to_string()),
            ("merges", merges.to_string()),
        ];
        rows.push((
            fields,
            run_variant("spans", &args),
            run_variant("trees", &args),
        ));
    }
    print(&rows);
}

/// Time per merge, in microseconds of CPU.
fn micros(m: &Measured) -> f64 {
    m.cpu_seconds * 1e6 / m.records.max(1) as f64
}

fn print(rows: &[(usize, Measured, Measured)]) {
    println!(
        "\njoin merge: two records of one id, N top-level fields each and N/10 in `content`, \
         parsed, merged and written (CPU time, one process per variant and size)\n"
    );
    println!(
        "{:>7} {:>8} {:>16} {:>12} {:>16} {:>12} {:>10}",
        "fields",
        "merges",
        "spans us/merge",
        "ns/field",
        "trees us/merge",
        "ns/field",
        "spans/trees"
    );
    for (fields, spans, trees) in rows {
        let per_field = |m: &Measured| micros(m) * 1e3 / (2 * fields) as f64;
        println!(
            "{fields:>7} {:>8} {:>16.2} {:>12.1} {:>16.2} {:>12.1} {:>9.2}x",
            spans.records,
            micros(spans),
            per_field(spans),
            micros(trees),
            per_field(trees),
            micros(spans) / micros(trees).max(1e-9),
        );
    }
    let growth = |from: usize, to: usize, pick: fn(&(usize, Measured, Measured)) -> &Measured| {
        let at = |n| rows.iter().find(|r| r.0 == n).map(|r| micros(pick(r)));
        match (at(from), at(to)) {
            (Some(a), Some(b)) => b / a.max(1e-9),
            _ => f64::NAN,
        }
    };
    println!();
    for (from, to) in [(100, 1_000), (1_000, 10_000)] {
        println!(
            "time per merge, {to} fields over {from}: spans {:.1}x, trees {:.1}x \
             (linear: 10x; quadratic: 100x)",
            growth(from, to, |r| &r.1),
            growth(from, to, |r| &r.2),
        );
    }
    let linear = growth(1_000, 10_000, |r| &r.1);
    println!(
        "\ntarget: spans' time per merge, 10,000 fields over 1,000, <= 20x (linear): {linear:.1}x: {}",
        if linear <= 20.0 { "met" } else { "NOT met" }
    );
}

/// The two members: `{"id", "f0".., "content": {..}}` and one whose first
/// half of names are the first's (so they replace) and the rest new.
fn parts(fields: usize) -> (String, String) {
    let nested = (fields / 10).max(1);
    let object = |names: &dyn Fn(usize) -> String, top: usize, prefix: &str| {
        let mut map = Map::new();
        map.insert("id".into(), json!(7));
        for i in 0..top {
            map.insert(names(i), json!(format!("{prefix} {i}")));
        }
        let content: Map<String, Value> = (0..nested).map(|i| (names(i), json!(i * 3))).collect();
        map.insert(MERGED_FIELD.into(), Value::Object(content));
        Value::Object(map).to_string()
    };
    let top = fields.saturating_sub(2);
    let first = object(&|i| format!("field_{i}"), top, "first");
    let second = object(
        &|i| {
            if i % 2 == 0 {
                format!("field_{i}")
            } else {
                format!("other_{i}")
            }
        },
        top,
        "second",
    );
    (first, second)
}

/// The join's merge: fields as spans of the records' text.
fn merge_spans(first: &str, second: &str) -> String {
    let parsed = [first, second].map(|text| RawObject::parse(text.as_bytes()).expect("an object"));
    let mut merged = Merged::new();
    for (index, (text, object)) in parsed.iter().enumerate() {
        merged.add(object, text, (index > 0).then_some(MERGED_FIELD));
    }
    let mut out = Vec::with_capacity(first.len() + second.len());
    merged.write(&mut out);
    String::from_utf8(out).expect("UTF-8")
}

/// The same merge on `serde_json` maps (insertion-ordered, hash-indexed).
fn merge_trees(first: &str, second: &str) -> String {
    let object = |text: &str| match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => panic!("not an object"),
    };
    let mut merged = object(first);
    for (field, value) in object(second) {
        match (merged.get_mut(&field), value) {
            (Some(Value::Object(content)), Value::Object(more)) if field == MERGED_FIELD => {
                content.extend(more)
            }
            (_, value) => {
                merged.insert(field, value);
            }
        }
    }
    Value::Object(merged).to_string()
}

fn variant(child: &Child) {
    let fields = child.number("fields");
    let merges = child.number("merges");
    let (first, second) = parts(fields);
    let merge: fn(&str, &str) -> String = match child.variant.as_str() {
        "spans" => merge_spans,
        "trees" => merge_trees,
        other => panic!("no variant {other}"),
    };
    let mut watch = Stopwatch::default();
    let bytes = watch.time(|| {
        (0..merges)
            .map(|_| merge(&first, &second).len() as u64)
            .sum()
    });
    child.report(merges as u64, bytes, merges as u64, &watch);
}
