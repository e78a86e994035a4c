//! JSON lines: one JSON value per line; blank lines are ignored. A line
//! that is not JSON (or not UTF-8) makes the file unreadable (reported with
//! its line number) rather than being dropped, so an import never silently
//! loses rows. A good line is produced as written, less the whitespace
//! around it: key order, number spelling and escapes are the file's.

use std::io::BufRead;

use bytes::Bytes;

use super::format::ReadError;
use crate::record::json_row;

/// The rows of `input`, read a line at a time: what is held is the
/// longest line, whatever the file's size.
pub fn rows<R: BufRead>(input: R) -> Lines<R> {
    Lines {
        input,
        line_buffer: Vec::new(),
        line: 0,
        failed: false,
    }
}

pub struct Lines<R> {
    input: R,
    line_buffer: Vec<u8>,
    line: u64,
    failed: bool,
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = Result<Bytes, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed {
            self.line_buffer.clear();
            let row_error = |number, reason| ReadError::Row {
                unit: "line",
                number,
                reason,
            };
            match self.input.read_until(b'\n', &mut self.line_buffer) {
                Ok(0) => return None,
                Ok(_) => self.line += 1,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(row_error(self.line + 1, format!("reading: {e}"))));
                }
            }
            let mut line = self.line_buffer.as_slice();
            // A byte-order mark some Windows tools write is not part of the JSON.
            if self.line == 1 {
                line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
            }
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
                .map(|()| Bytes::copy_from_slice(text))
                .map_err(|reason| row_error(self.line, reason));
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
    use crate::import::format::Endless;

    fn values(rows: Lines<&[u8]>) -> Vec<Value> {
        rows.map(|row| serde_json::from_slice(&row.unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn lines_blank_lines_bom_and_crlf() {
        let bytes: &[u8] = b"\xEF\xBB\xBF{\"a\":1}\r\n\n  \n[2]\n\"x\"";
        assert_eq!(
            values(rows(bytes)),
            vec![json!({"a": 1}), json!([2]), json!("x")]
        );
    }

    #[test]
    fn a_line_is_produced_as_written() {
        let bytes: &[u8] = b" {\"z\": 1.50, \"a\":\"\\u00e9\"}\t\r\n";
        let all: Vec<Bytes> = rows(bytes).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            all,
            vec![Bytes::from_static(b"{\"z\": 1.50, \"a\":\"\\u00e9\"}")]
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_named_not_blanked() {
        let bytes: &[u8] = b"{\"a\":\"ok\"}\n{\"a\":\"\xff\"}\n";
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

    /// Rows come as the input is read, not after it is all in memory: an
    /// endless input gives its first rows.
    #[test]
    fn rows_are_read_as_the_input_is() {
        let endless = std::io::BufReader::new(std::io::Read::chain(
            b"{\"first\":true}\n".as_slice(),
            Endless(b"{\"a\":1}\n".to_vec()),
        ));
        let first: Vec<Bytes> = rows(endless).take(3).map(Result::unwrap).collect();
        assert_eq!(first, ["{\"first\":true}", "{\"a\":1}", "{\"a\":1}"]);
    }

    #[test]
    fn a_bad_line_is_named_and_ends_the_rows() {
        let bytes: &[u8] = b"{\"a\":1}\n\n{oops\n{\"a\":2}\n";
        let all: Vec<_> = rows(bytes).collect();
        assert_eq!(all.len(), 2);
        match &all[1] {
            Err(ReadError::Row { unit, number, .. }) => assert_eq!((*unit, *number), ("line", 3)),
            other => panic!("expected a line error, got {other:?}"),
        }
    }
}
