//! The check that makes decoding safe: a datum walked against its schema
//! exactly as apache-avro's decoder reads it (the same bytes, named types
//! resolved in the same namespaces), building nothing, with an explicit
//! depth counter. apache-avro recurses once per nested value with no
//! limit, so a recursive schema and a datum nested deep enough would
//! overflow the stack and abort the process; this walk refuses the datum
//! past [`MAX_DEPTH`] first. It also refuses what would make apache-avro
//! allocate far beyond the datum's size (a length past the end, array items
//! that take no bytes by the billion, a record type that contains itself
//! with no union to end it) and a datum that ends early, which apache-avro
//! would read as nulls where a string, a boolean or a union was cut off.
//!
//! Hand-written because apache-avro has no hook between reading a length
//! and recursing; the walk follows `decode_internal` of apache-avro 0.21
//! case by case, and the fuzz targets (`host/fuzz/`) check that both read
//! the same bytes.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{DecimalSchema, Name, RecordSchema};

use crate::{DatumError, MAX_DEPTH, MAX_EMPTY_ITEMS};

/// The length of the datum at the start of `bytes`, once it is known to
/// stay within the limits; `names` are the schema's named types by full
/// name.
pub(crate) fn datum_len(
    schema: &Schema,
    names: &HashMap<Name, Schema>,
    bytes: &[u8],
) -> Result<usize, DatumError> {
    let mut scan = Scan {
        bytes: Cursor::new(bytes),
        names,
        empty_items: 0,
    };
    scan.value(schema, None, 0)?;
    Ok(scan.bytes.at)
}

struct Scan<'a> {
    bytes: Cursor<'a>,
    names: &'a HashMap<Name, Schema>,
    empty_items: usize,
}

impl Scan<'_> {
    /// One value of `schema`, `depth` containers deep, in `namespace` (the
    /// enclosing record's, which qualifies the names of named types).
    fn value(
        &mut self,
        schema: &Schema,
        namespace: Option<&str>,
        depth: usize,
    ) -> Result<(), DatumError> {
        match schema {
            Schema::Null => Ok(()),
            Schema::Boolean => self.skip(1, "a boolean"),
            Schema::Int
            | Schema::Long
            | Schema::Date
            | Schema::TimeMillis
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => self.bytes.long("a number").map(drop),
            Schema::Enum(_) => self.bytes.long("an enum's index").map(drop),
            Schema::Float => self.skip(4, "a float"),
            Schema::Double => self.skip(8, "a double"),
            Schema::Duration => self.skip(12, "a duration"),
            Schema::Bytes | Schema::BigDecimal | Schema::Uuid => self.length_prefixed("bytes"),
            Schema::String => self.length_prefixed("a string"),
            Schema::Fixed(fixed) => self.skip(fixed.size, "a fixed"),
            Schema::Decimal(DecimalSchema { inner, .. }) => match inner.as_ref() {
                Schema::Fixed(fixed) => self.skip(fixed.size, "a decimal"),
                Schema::Bytes => self.length_prefixed("a decimal"),
                other => Err(DatumError::DecimalOf(other_kind(other))),
            },
            Schema::Array(array) => {
                let depth = enter(depth)?;
                while let Some(count) = self.block_count("an array")? {
                    for _ in 0..count {
                        let before = self.bytes.at;
                        self.value(&array.items, namespace, depth)?;
                        if self.bytes.at == before {
                            self.empty_items += 1;
                            if self.empty_items > MAX_EMPTY_ITEMS {
                                return Err(DatumError::TooManyEmptyItems {
                                    limit: MAX_EMPTY_ITEMS,
                                });
                            }
                        }
                    }
                }
                Ok(())
            }
            Schema::Map(map) => {
                let depth = enter(depth)?;
                // A key takes at least its length's byte: no empty items.
                while let Some(count) = self.block_count("a map")? {
                    for _ in 0..count {
                        self.length_prefixed("a map key")?;
                        self.value(&map.types, namespace, depth)?;
                    }
                }
                Ok(())
            }
            Schema::Union(union) => {
                let depth = enter(depth)?;
                let index = self.bytes.long("a union's branch")?;
                let variants = union.variants();
                let variant = usize::try_from(index)
                    .ok()
                    .and_then(|i| variants.get(i))
                    .ok_or(DatumError::UnionBranch {
                        index,
                        variants: variants.len(),
                    })?;
                self.value(variant, namespace, depth)
            }
            Schema::Record(RecordSchema { name, fields, .. }) => {
                // A record with a field of its own type and no union to end
                // the chain takes no bytes per level: only depth stops it.
                let depth = enter(depth)?;
                let namespace = qualified(name, namespace);
                for field in fields {
                    self.value(&field.schema, namespace, depth)?;
                }
                Ok(())
            }
            Schema::Ref { name } => {
                let namespace = qualified(name, namespace);
                let names = self.names;
                let resolved = if name.namespace.as_deref() == namespace {
                    names.get(name)
                } else {
                    names.get(&Name {
                        name: name.name.clone(),
                        namespace: namespace.map(str::to_owned),
                    })
                };
                let resolved = resolved.ok_or_else(|| DatumError::UnknownName(name.to_string()))?;
                // The named type counts its own level if it is a record.
                self.value(resolved, namespace, depth)
            }
        }
    }

    /// The next block's item count of an array or a map; `None` at the
    /// block of 0 that ends it. A negative count is followed by the
    /// block's size in bytes, which apache-avro reads and ignores.
    fn block_count(&mut self, what: &'static str) -> Result<Option<u64>, DatumError> {
        let count = self.bytes.long(what)?;
        if count == 0 {
            return Ok(None);
        }
        if count < 0 {
            self.bytes.long(what)?;
        }
        Ok(Some(count.unsigned_abs()))
    }

    fn length_prefixed(&mut self, what: &'static str) -> Result<(), DatumError> {
        self.bytes.length_prefixed(what).map(drop)
    }

    fn skip(&mut self, count: usize, what: &'static str) -> Result<(), DatumError> {
        self.bytes.take(count, what).map(drop)
    }
}

/// Bytes read from the front, as Avro encodes numbers and lengths.
pub(crate) struct Cursor<'a> {
    input: &'a [u8],
    /// How many bytes were read.
    pub(crate) at: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Cursor { input, at: 0 }
    }

    /// The next `count` bytes.
    pub(crate) fn take(
        &mut self,
        count: usize,
        what: &'static str,
    ) -> Result<&'a [u8], DatumError> {
        let taken = self
            .at
            .checked_add(count)
            .and_then(|end| self.input.get(self.at..end))
            .ok_or(DatumError::EndsEarly { what })?;
        self.at += count;
        Ok(taken)
    }

    /// A length and that many bytes.
    pub(crate) fn length_prefixed(&mut self, what: &'static str) -> Result<&'a [u8], DatumError> {
        let length = self.long(what)?;
        let length =
            usize::try_from(length).map_err(|_| DatumError::NegativeLength { what, length })?;
        self.take(length, what)
    }

    /// A zigzag variable-length long, as apache-avro reads one: at most
    /// ten bytes.
    pub(crate) fn long(&mut self, what: &'static str) -> Result<i64, DatumError> {
        let mut z: u64 = 0;
        for shift in (0..70).step_by(7) {
            let [byte] = self.take(1, what)? else {
                return Err(DatumError::EndsEarly { what });
            };
            z |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        Err(DatumError::LongVarint)
    }
}

/// One level deeper, or the refusal past [`MAX_DEPTH`].
fn enter(depth: usize) -> Result<usize, DatumError> {
    if depth >= MAX_DEPTH {
        return Err(DatumError::TooDeep { limit: MAX_DEPTH });
    }
    Ok(depth + 1)
}

/// The namespace a named type's contents are read in: its own, or the
/// enclosing one (apache-avro's `Name::fully_qualified_name`).
fn qualified<'a>(name: &'a Name, enclosing: Option<&'a str>) -> Option<&'a str> {
    name.namespace
        .as_deref()
        .or(enclosing.filter(|namespace| !namespace.is_empty()))
}

/// A schema's kind, for a message (its Debug form can be the whole tree).
fn other_kind(schema: &Schema) -> String {
    format!("{:?}", apache_avro::schema::SchemaKind::from(schema))
}
