//! JSON lines: one JSON value per line; blank lines are ignored. A line
//! that is not JSON (or not UTF-8) makes the file unreadable (reported with
//! its line number) rather than being dropped, so an import never silently
//! loses rows. A good line is produced as written, less the whitespace
//! around it: key order, number spelling and escapes are the file's.

use bytes::Bytes;

use super::format::ReadError;
use super::json_row;

pub fn rows(bytes: Bytes) -> Lines {
    // A byte-order mark some Windows tools write is not part of the JSON.
    let pos = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    Lines {
        bytes,
        pos,
        line: 0,
        failed: false,
    }
}

pub struct Lines {
    bytes: Bytes,
    pos: usize,
    line: u64,
    failed: bool,
}

impl Iterator for Lines {
    type Item = Result<Bytes, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed && self.pos < self.bytes.len() {
            let start = self.pos;
            let rest = self.bytes.get(start..).unwrap_or_default();
            let length = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            self.pos = start + length + 1;
            self.line += 1;
            let line = rest.get(..length).unwrap_or_default();
            let Some(first) = line.iter().position(|b| !b.is_ascii_whitespace()) else {
                continue;
            };
            let last = line
                .iter()
                .rposition(|b| !b.is_ascii_whitespace())
                .unwrap_or(first);
            let text = line.get(first..=last).unwrap_or_default();
            let row = std::str::from_utf8(text)
                .map_err(|e| format!("not UTF-8: {e}"))
                .and_then(|text| json_row::check(text).map_err(|e| e.to_string()))
                .map(|()| self.bytes.slice(start + first..=start + last))
                .map_err(|reason| ReadError::Row {
                    unit: "line",
                    number: self.line,
                    reason,
                });
            self.failed = row.is_err();
            return Some(row);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn values(rows: Lines) -> Vec<Value> {
        rows.map(|row| serde_json::from_slice(&row.unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn lines_blank_lines_bom_and_crlf() {
        let bytes = Bytes::from_static(b"\xEF\xBB\xBF{\"a\":1}\r\n\n  \n[2]\n\"x\"");
        assert_eq!(
            values(rows(bytes)),
            vec![json!({"a": 1}), json!([2]), json!("x")]
        );
    }

    #[test]
    fn a_line_is_produced_as_written() {
        let bytes = Bytes::from_static(b" {\"z\": 1.50, \"a\":\"\\u00e9\"}\t\r\n");
        let all: Vec<Bytes> = rows(bytes).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            all,
            vec![Bytes::from_static(b"{\"z\": 1.50, \"a\":\"\\u00e9\"}")]
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_named_not_blanked() {
        let bytes = Bytes::from_static(b"{\"a\":\"ok\"}\n{\"a\":\"\xff\"}\n");
        let all: Vec<_> = rows(bytes).collect();
        match all.as_slice() {
            [
                Ok(_),
                Err(ReadError::Row {
                    number: 2, reason, ..
                }),
            ] => {
                assert!(reason.contains("UTF-8"), "{reason}")
            }
            other => panic!("expected line 2 refused, got {other:?}"),
        }
    }

    #[test]
    fn a_bad_line_is_named_and_ends_the_rows() {
        let bytes = Bytes::from_static(b"{\"a\":1}\n\n{oops\n{\"a\":2}\n");
        let all: Vec<_> = rows(bytes).collect();
        assert_eq!(all.len(), 2);
        match &all[1] {
            Err(ReadError::Row { unit, number, .. }) => assert_eq!((*unit, *number), ("line", 3)),
            other => panic!("expected a line error, got {other:?}"),
        }
    }
}
