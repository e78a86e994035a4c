// The writer schemas the `confluent_frame` target decodes with: a frame's
// schema id picks one (the id modulo their number). Included by the target
// and by `host/avro/examples/fuzz_seeds.rs`, which writes the seed corpus.

/// A linked list (recursive through a union).
pub const LIST: &str = r#"{"type":"record","name":"Node","fields":[
    {"name":"value","type":"int"},{"name":"next","type":["null","Node"]}]}"#;

/// A tree recursive through an array of maps.
pub const TREE: &str = r#"{"type":"record","name":"Tree","fields":[
    {"name":"label","type":"string"},
    {"name":"children","type":{"type":"array","items":{"type":"map","values":"Tree"}}}]}"#;

/// Every kind of value, logical types included.
pub const EVERY_KIND: &str = r#"{"type":"record","name":"All","namespace":"k","fields":[
    {"name":"b","type":"boolean"},{"name":"i","type":"int"},{"name":"l","type":"long"},
    {"name":"f","type":"float"},{"name":"d","type":"double"},{"name":"by","type":"bytes"},
    {"name":"s","type":"string"},{"name":"fx","type":{"type":"fixed","name":"F4","size":4}},
    {"name":"e","type":{"type":"enum","name":"E","symbols":["x","y","z"]}},
    {"name":"a","type":{"type":"array","items":"long"}},
    {"name":"m","type":{"type":"map","values":["null","double"]}},
    {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
    {"name":"decf","type":{"type":"fixed","name":"D8","size":8,"logicalType":"decimal","precision":10,"scale":2}},
    {"name":"u","type":{"type":"string","logicalType":"uuid"}},
    {"name":"date","type":{"type":"int","logicalType":"date"}},
    {"name":"tm","type":{"type":"int","logicalType":"time-millis"}},
    {"name":"tu","type":{"type":"long","logicalType":"time-micros"}},
    {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
    {"name":"tsn","type":{"type":"long","logicalType":"timestamp-nanos"}},
    {"name":"lts","type":{"type":"long","logicalType":"local-timestamp-micros"}},
    {"name":"dur","type":{"type":"fixed","name":"Dur","size":12,"logicalType":"duration"}},
    {"name":"bd","type":{"type":"bytes","logicalType":"big-decimal"}},
    {"name":"again","type":["null","F4","E","k.All"]}]}"#;

/// Named types in two namespaces, referred to by full and short names.
pub const NAMESPACED: &str = r#"{"type":"record","name":"Outer","namespace":"b","fields":[
    {"name":"first","type":{"type":"record","name":"Inner","namespace":"a","fields":[
        {"name":"more","type":["null","Inner"]}]}},
    {"name":"second","type":"a.Inner"},
    {"name":"outer","type":["null","Outer"]}]}"#;

/// Items that take no bytes.
pub const NULLS: &str = r#"{"type":"array","items":"null"}"#;

/// A record that contains itself with no union to end it: every datum is
/// infinite.
pub const LOOP: &str =
    r#"{"type":"record","name":"Loop","fields":[{"name":"again","type":"Loop"}]}"#;

pub const SCHEMAS: [&str; 6] = [LIST, TREE, EVERY_KIND, NAMESPACED, NULLS, LOOP];

/// The schemas apache-avro can decode any bytes with without allocating
/// more than the bytes hold (no arrays, maps, strings or bytes).
pub const WITHOUT_LENGTHS: [&str; 2] = [LIST, NAMESPACED];
