//! The table's schema in Delta's JSON form (`PROTOCOL.md`, "Schema
//! Serialization Format"), made from the Arrow schema of the data files,
//! and how an export's columns meet an existing table's: the table's
//! columns keep their types (a value one cannot hold exactly is then a dead
//! letter, never changed), and columns new to the export, such as a field a
//! new Avro version added, are appended as nullable columns by a metadata
//! update.

use arrow_schema::{DataType, Field, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::table::{ValueField, schema_with};

/// One column of a Delta schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeltaField {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: Value,
    pub nullable: bool,
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StructType {
    #[serde(rename = "type")]
    kind: String,
    fields: Vec<DeltaField>,
}

/// The Delta type of an Arrow type the export writes.
fn delta_type(data_type: &DataType) -> Result<Value, String> {
    Ok(match data_type {
        DataType::Utf8 => json!("string"),
        DataType::Binary => json!("binary"),
        DataType::Boolean => json!("boolean"),
        DataType::Int32 => json!("integer"),
        DataType::Int64 => json!("long"),
        DataType::Float32 => json!("float"),
        DataType::Float64 => json!("double"),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => json!("timestamp"),
        DataType::Map(entries, _) => {
            let DataType::Struct(parts) = entries.data_type() else {
                return Err(format!("map entries of type {}", entries.data_type()));
            };
            let (Some(key), Some(value)) = (parts.first(), parts.get(1)) else {
                return Err("map entries without a key and a value".into());
            };
            json!({
                "type": "map",
                "keyType": delta_type(key.data_type())?,
                "valueType": delta_type(value.data_type())?,
                "valueContainsNull": value.is_nullable(),
            })
        }
        other => return Err(format!("Arrow type {other} has no Delta type here")),
    })
}

/// The Arrow type of a primitive Delta type, for the typed value columns
/// of an existing table.
fn arrow_type(data_type: &Value) -> Option<DataType> {
    Some(match data_type.as_str()? {
        "string" => DataType::Utf8,
        "binary" => DataType::Binary,
        "boolean" => DataType::Boolean,
        "integer" => DataType::Int32,
        "long" => DataType::Int64,
        "float" => DataType::Float32,
        "double" => DataType::Float64,
        _ => return None,
    })
}

fn to_delta(field: &Field) -> Result<DeltaField, String> {
    Ok(DeltaField {
        name: field.name().clone(),
        data_type: delta_type(field.data_type())
            .map_err(|e| format!("column `{}`: {e}", field.name()))?,
        nullable: field.is_nullable(),
        metadata: Map::new(),
    })
}

/// `{"type":"struct","fields":[...]}`.
pub fn schema_string(fields: &[DeltaField]) -> String {
    json!({"type": "struct", "fields": fields}).to_string()
}

/// The columns of a `schemaString`.
pub fn parse(schema_string: &str) -> Result<Vec<DeltaField>, String> {
    let parsed: StructType = serde_json::from_str(schema_string).map_err(|e| e.to_string())?;
    if parsed.kind != "struct" {
        return Err(format!("a schema of type `{}`, not a struct", parsed.kind));
    }
    Ok(parsed.fields)
}

/// What a run writes to the table.
#[derive(Debug, Clone)]
pub struct Columns {
    /// The typed value columns of the data files, with the table's types.
    pub typed: Vec<ValueField>,
    /// The data files' schema: the metadata columns, then `typed`.
    pub schema: SchemaRef,
    /// The table's schema once this run commits.
    pub fields: Vec<DeltaField>,
    /// Whether that differs from the table's (a new table, or new columns).
    pub changed: bool,
}

/// The columns to write given the table's (`None`: no table yet), the
/// metadata columns `base` and the typed columns the export would make.
pub fn reconcile(
    table: Option<&[DeltaField]>,
    base: &SchemaRef,
    wanted: &[ValueField],
) -> Result<Columns, String> {
    let Some(table) = table else {
        let schema = schema_with(base, wanted);
        let fields = schema
            .fields()
            .iter()
            .map(|f| to_delta(f))
            .collect::<Result<Vec<_>, _>>()?;
        unique(&fields)?;
        return Ok(Columns {
            typed: wanted.to_vec(),
            schema,
            fields,
            changed: true,
        });
    };
    if let Some(field) = table
        .iter()
        .find(|f| f.metadata.contains_key("delta.invariants"))
    {
        // Writer version 2 must enforce invariants, which are SQL.
        return Err(format!(
            "column `{}` has an invariant (delta.invariants), which Sluice cannot check",
            field.name
        ));
    }
    let find = |name: &str| table.iter().find(|f| f.name.eq_ignore_ascii_case(name));
    for field in base.fields() {
        let ours = to_delta(field)?;
        match find(field.name()) {
            Some(theirs)
                if theirs.name == ours.name
                    && theirs.data_type == ours.data_type
                    && (theirs.nullable || !ours.nullable) => {}
            Some(theirs) => {
                return Err(format!(
                    "column `{}` is {}{} in the table and {}{} in this export (did value_format change?)",
                    ours.name,
                    theirs.data_type,
                    if theirs.nullable { "" } else { " not null" },
                    ours.data_type,
                    if ours.nullable { "" } else { " not null" },
                ));
            }
            None => return Err(format!("the table has no column `{}`", ours.name)),
        }
    }
    let mut fields = table.to_vec();
    let mut typed = Vec::with_capacity(wanted.len());
    let mut changed = false;
    for want in wanted {
        let name = want.field.name();
        match find(name) {
            Some(theirs) if theirs.name != *name => {
                return Err(format!(
                    "column `{name}` differs only in case from the table's `{}`",
                    theirs.name
                ));
            }
            Some(theirs) => {
                let data_type = arrow_type(&theirs.data_type).ok_or_else(|| {
                    format!(
                        "column `{name}` is {} in the table, which Sluice does not write",
                        theirs.data_type
                    )
                })?;
                typed.push(ValueField {
                    source: want.source.clone(),
                    field: Field::new(name, data_type, true),
                });
            }
            None => {
                fields.push(to_delta(&want.field.clone().with_nullable(true))?);
                typed.push(want.clone());
                changed = true;
            }
        }
    }
    // Table columns this export does not make (a field no version of the
    // subject has any more, a column another engine added) are left out of
    // the data files: readers fill them with nulls.
    Ok(Columns {
        schema: schema_with(base, &typed),
        typed,
        fields,
        changed,
    })
}

/// Delta column names are unique regardless of case.
fn unique(fields: &[DeltaField]) -> Result<(), String> {
    for (index, field) in fields.iter().enumerate() {
        if let Some(other) = fields
            .iter()
            .skip(index + 1)
            .find(|f| f.name.eq_ignore_ascii_case(&field.name))
        {
            return Err(format!(
                "columns `{}` and `{}` differ only in case",
                field.name, other.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Timestamps, ValueColumn, kafka_schema};

    fn typed(name: &str, data_type: DataType) -> ValueField {
        ValueField {
            source: name.into(),
            field: Field::new(name, data_type, true),
        }
    }

    #[test]
    fn a_new_table_has_the_metadata_columns_then_the_typed_ones() {
        let base = kafka_schema(ValueColumn::Json, Timestamps::Micros);
        let columns = reconcile(None, &base, &[typed("id", DataType::Int64)]).unwrap();
        assert!(columns.changed);
        let text = schema_string(&columns.fields);
        let fields = parse(&text).unwrap();
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "topic",
                "partition",
                "offset",
                "kafka_offset",
                "timestamp",
                "key",
                "headers",
                "value",
                "id"
            ]
        );
        assert_eq!(fields[4].data_type, json!("timestamp"));
        assert_eq!(
            fields[6].data_type,
            json!({"type": "map", "keyType": "string", "valueType": "binary", "valueContainsNull": true})
        );
        assert_eq!(
            (fields[1].data_type.clone(), fields[1].nullable),
            (json!("integer"), false)
        );
        assert_eq!(fields[8].data_type, json!("long"));
        // Millisecond timestamps have no Delta type: Delta's are micros.
        let millis = kafka_schema(ValueColumn::Json, Timestamps::Millis);
        assert!(reconcile(None, &millis, &[]).is_err());
    }

    #[test]
    fn the_tables_types_win_new_columns_are_added_and_conflicts_are_refused() {
        let base = kafka_schema(ValueColumn::Json, Timestamps::Micros);
        let first = reconcile(
            None,
            &base,
            &[typed("n", DataType::Int64), typed("old", DataType::Utf8)],
        )
        .unwrap();
        // A later subject made `n` a string in some version (merged as
        // text), dropped `old` and added `email`.
        let later = reconcile(
            Some(&first.fields),
            &base,
            &[typed("n", DataType::Utf8), typed("email", DataType::Utf8)],
        )
        .unwrap();
        assert!(later.changed);
        let types: Vec<(String, DataType)> = later
            .typed
            .iter()
            .map(|f| (f.field.name().clone(), f.field.data_type().clone()))
            .collect();
        assert_eq!(
            types,
            [
                ("n".into(), DataType::Int64),
                ("email".into(), DataType::Utf8)
            ]
        );
        let names: Vec<&str> = later.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names.last(), Some(&"email"));
        assert!(names.contains(&"old"), "a column is never dropped");
        assert!(later.fields.last().is_some_and(|f| f.nullable));
        let same = reconcile(
            Some(&later.fields),
            &base,
            &[typed("email", DataType::Utf8)],
        )
        .unwrap();
        assert!(!same.changed);

        let raw = kafka_schema(ValueColumn::Raw, Timestamps::Micros);
        let error = reconcile(Some(&first.fields), &raw, &[]).unwrap_err();
        assert!(
            error.contains("column `value`") && error.contains("value_format"),
            "{error}"
        );
        let error =
            reconcile(Some(&first.fields), &base, &[typed("N", DataType::Int64)]).unwrap_err();
        assert!(error.contains("only in case"), "{error}");
        let error = reconcile(None, &base, &[typed("Offset", DataType::Int64)]).unwrap_err();
        assert!(error.contains("only in case"), "{error}");
        let mut guarded = first.fields.clone();
        guarded[8]
            .metadata
            .insert("delta.invariants".into(), json!("{}"));
        assert!(
            reconcile(Some(&guarded), &base, &[])
                .unwrap_err()
                .contains("invariant")
        );
    }
}
