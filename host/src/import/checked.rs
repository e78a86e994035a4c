//! A file read through once before any of it is produced, so that a
//! corrupt file is found before its first row reaches the topic. The rows
//! that pass are kept, within a budget, so that producing them does not
//! decode the file a second time: for Avro, decoding is most of what an
//! import costs. A file whose rows need more than the budget is read again
//! from disk to produce them instead. Either way memory holds at most the
//! budget of rows and the readers' buffers, whatever the file's size.

use std::fs::File;

use bytes::Bytes;

use super::format::{Format, ReadError, Rows};

/// Bytes of checked rows kept between the check and the produce, at most
/// (256 MiB); past it a file is read twice.
pub const DEFAULT_KEEP_BUDGET: usize = 256 << 20;

/// What a kept row costs beyond its text: its handle in the list.
const ROW_OVERHEAD: usize = size_of::<Bytes>();

/// A file whose every row was read without error.
pub struct CheckedFile {
    format: Format,
    file: File,
    rows: u64,
    /// Every row, when they fitted the budget.
    kept: Option<Vec<Bytes>>,
}

impl CheckedFile {
    /// Reads every row of `file`; the first bad one fails the whole file.
    pub fn check(format: Format, file: File, keep_budget: usize) -> Result<Self, ReadError> {
        let mut kept = Some(Vec::new());
        let mut held = 0usize;
        let mut rows = 0u64;
        for row in format.rows(&file)? {
            let row = row?;
            rows += 1;
            if let Some(list) = &mut kept {
                held = held.saturating_add(row.len() + ROW_OVERHEAD);
                if held > keep_budget {
                    kept = None;
                } else {
                    list.push(row);
                }
            }
        }
        Ok(CheckedFile {
            format,
            file,
            rows,
            kept,
        })
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Whether the rows were kept (they will not be decoded again).
    pub fn kept(&self) -> bool {
        self.kept.is_some()
    }

    /// The rows from `start` on, as [`Format::rows`] gives them; no more
    /// than were checked, should the file have grown since (a local file
    /// is read in place, twice when past the budget).
    pub fn rows_from(self, start: u64) -> Result<Rows, ReadError> {
        let skip = usize::try_from(start).unwrap_or(usize::MAX);
        match self.kept {
            Some(kept) => Ok(Box::new(kept.into_iter().skip(skip).map(Ok))),
            None => {
                let left = usize::try_from(self.rows.saturating_sub(start)).unwrap_or(usize::MAX);
                Ok(Box::new(
                    self.format.rows(&self.file)?.skip(skip).take(left),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const LINES: &str = "{\"id\":1}\n{\"id\":2,\"a\":\"x\"}\n\n{\"id\":3}\n";

    fn all(rows: Rows) -> Vec<Bytes> {
        rows.map(|r| r.unwrap()).collect()
    }

    fn file(text: &str) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    fn expected() -> Vec<Bytes> {
        all(Format::JsonLines.rows(&file(LINES)).unwrap())
    }

    #[test]
    fn rows_within_the_budget_are_kept_and_given_as_read() {
        let checked = CheckedFile::check(Format::JsonLines, file(LINES), 1 << 20).unwrap();
        assert_eq!(checked.rows(), 3);
        assert!(checked.kept());
        assert_eq!(all(checked.rows_from(0).unwrap()), expected());
    }

    #[test]
    fn rows_past_the_budget_are_read_again_the_same() {
        let checked = CheckedFile::check(Format::JsonLines, file(LINES), 1).unwrap();
        assert_eq!(checked.rows(), 3);
        assert!(!checked.kept());
        assert_eq!(all(checked.rows_from(0).unwrap()), expected());
    }

    #[test]
    fn a_resumed_file_starts_at_its_first_row_not_imported() {
        for budget in [1, 1 << 20] {
            let checked = CheckedFile::check(Format::JsonLines, file(LINES), budget).unwrap();
            assert_eq!(all(checked.rows_from(2).unwrap()), expected()[2..]);
            let checked = CheckedFile::check(Format::JsonLines, file(LINES), budget).unwrap();
            assert!(all(checked.rows_from(5).unwrap()).is_empty());
        }
    }

    #[test]
    fn rows_read_again_stop_at_those_checked() {
        let mut grown = file(LINES);
        let checked = CheckedFile::check(Format::JsonLines, grown.try_clone().unwrap(), 1).unwrap();
        grown.write_all(b"{\"id\":4}\n").unwrap();
        assert_eq!(all(checked.rows_from(1).unwrap()), expected()[1..]);
    }

    #[test]
    fn a_bad_row_fails_the_file_and_names_its_line() {
        let bytes = file("{\"id\":1}\nnot json\n{\"id\":3}\n");
        let error = CheckedFile::check(Format::JsonLines, bytes, 1 << 20)
            .err()
            .expect("a bad line fails the check")
            .to_string();
        assert!(error.contains("line 2"), "{error}");
    }
}
