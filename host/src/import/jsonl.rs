//! JSON lines: one JSON value per line; blank lines are ignored. A line
//! that is not JSON makes the file unreadable (reported with its line
//! number) rather than being dropped, so an import never silently loses
//! rows.

use bytes::Bytes;
use serde_json::Value;

use super::format::ReadError;

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
    type Item = Result<Value, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed && self.pos < self.bytes.len() {
            let rest = &self.bytes[self.pos..];
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let line = &rest[..end];
            self.pos += end + 1;
            self.line += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let row = serde_json::from_slice(line).map_err(|e| ReadError::Row {
                unit: "line",
                number: self.line,
                reason: e.to_string(),
            });
            self.failed = row.is_err();
            return Some(row);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lines_blank_lines_bom_and_crlf() {
        let bytes = Bytes::from_static(b"\xEF\xBB\xBF{\"a\":1}\r\n\n  \n[2]\n\"x\"");
        let rows: Vec<Value> = rows(bytes).collect::<Result<_, _>>().unwrap();
        assert_eq!(rows, vec![json!({"a": 1}), json!([2]), json!("x")]);
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
