//! The search's filter: a small expression over a record's decoded value,
//! key and headers, parsed from the request and never run as code.
//!
//! ```text
//! value.customer.country == "NO" and (value.total > 100 or headers.source contains "web")
//! ```
//!
//! Paths start at `value`, `key`, `headers.<name>` (the first header of that
//! name), `offset`, `partition` or `timestamp`, and go into JSON objects
//! (and arrays, by index) with `.name` or `["any name"]`. Comparisons are
//! `==`, `!=`, `<`, `<=`, `>`, `>=` and `contains` (a substring of a text,
//! an element of an array); they join with `and` and `or` (`and` binds
//! tighter) and group with parentheses. Literals are JSON's: strings (in
//! double quotes, or single quotes without escapes), numbers, `true`,
//! `false`, `null`.
//!
//! A value that is not JSON is matched as text by `contains` only; a key
//! or header is text, compared with a string, or with a number when the
//! text is one. A path that leads nowhere matches nothing but `!=`.
//!
//! Hand-written rather than through a parser crate: the grammar is five
//! rules, and a hand-written scanner names the position and the token of
//! every error directly, which is most of what the request's author needs.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use crate::record::KafkaRecord;

/// Longest filter accepted, in bytes: a filter is typed by a person.
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of parentheses accepted: the parser recurses per level.
const MAX_DEPTH: usize = 32;

/// A filter that does not parse: where, what was found there, and what was
/// expected instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the filter at position {position} (`{found}`): expected {expected}")]
pub struct FilterError {
    /// 1-based, in characters.
    pub position: usize,
    /// The token found there, or "end of filter".
    pub found: String,
    pub expected: String,
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Compare { path: Path, op: Op, literal: Value },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
}

/// Where in a record a comparison looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub root: Root,
    /// Names (or array indexes) into the JSON below the root.
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    Value,
    Key,
    Header(String),
    Offset,
    Partition,
    Timestamp,
}

impl std::str::FromStr for Filter {
    type Err = FilterError;

    fn from_str(text: &str) -> Result<Self, FilterError> {
        if text.len() > MAX_FILTER_LEN {
            return Err(FilterError {
                position: 1,
                found: format!("{} bytes", text.len()),
                expected: format!("a filter of at most {MAX_FILTER_LEN} bytes"),
            });
        }
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            tokens,
            next: 0,
            end: text.chars().count() + 1,
        };
        let filter = parser.or(0)?;
        match parser.peek() {
            None => Ok(filter),
            Some(_) => Err(parser.error("`and`, `or` or the end of the filter")),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A bare word: a path's segment or a keyword.
    Word(String),
    /// `["name"]`: a path segment of any name.
    Quoted(String),
    Dot,
    Open,
    Close,
    Op(Op),
    Literal(Value),
}

/// A token and where it starts (1-based, in characters).
#[derive(Debug, Clone)]
struct Spanned {
    token: Token,
    position: usize,
    text: String,
}

fn tokenize(text: &str) -> Result<Vec<Spanned>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let error = |at: usize, found: String, expected: &str| FilterError {
        position: at + 1,
        found,
        expected: expected.to_owned(),
    };
    while let Some(&c) = chars.get(i) {
        let start = i;
        let token = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => {
                i += 1;
                Token::Open
            }
            ')' => {
                i += 1;
                Token::Close
            }
            '.' => {
                i += 1;
                Token::Dot
            }
            '[' => {
                // `["name"]`
                let Some(end) = string_end(&chars, i + 1) else {
                    return Err(error(i, "[".into(), "`[\"a name\"]`"));
                };
                let name = string_literal(&chars, i + 1, end)
                    .map_err(|found| error(i + 1, found, "a string in double quotes"))?;
                if chars.get(end + 1) != Some(&']') {
                    return Err(error(end + 1, rest(&chars, end + 1), "`]`"));
                }
                i = end + 2;
                match name {
                    Value::String(name) => Token::Quoted(name),
                    _ => return Err(error(start + 1, rest(&chars, start + 1), "a name")),
                }
            }
            '=' | '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('=', Some('=')) => (Op::Eq, 2),
                    ('!', Some('=')) => (Op::Ne, 2),
                    ('<', Some('=')) => (Op::Le, 2),
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('<', _) => (Op::Lt, 1),
                    ('>', _) => (Op::Gt, 1),
                    _ => {
                        return Err(error(
                            i,
                            c.to_string(),
                            "a comparison: ==, !=, <, <=, >, >= or contains",
                        ));
                    }
                };
                i += len;
                Token::Op(op)
            }
            '"' | '\'' => {
                let Some(end) = string_end(&chars, i) else {
                    return Err(error(i, rest(&chars, i), "a closing quote"));
                };
                let literal = string_literal(&chars, i, end)
                    .map_err(|found| error(i, found, "a valid string"))?;
                i = end + 1;
                Token::Literal(literal)
            }
            c if c == '-' || c.is_ascii_digit() => {
                let end = (i + 1..chars.len())
                    .find(|&j| {
                        chars
                            .get(j)
                            .is_none_or(|c| !(c.is_ascii_alphanumeric() || "+-.".contains(*c)))
                    })
                    .unwrap_or(chars.len());
                let text: String = chars.get(i..end).unwrap_or_default().iter().collect();
                let number = serde_json::from_str::<Number>(&text)
                    .map_err(|_| error(i, text.clone(), "a number"))?;
                i = end;
                Token::Literal(Value::Number(number))
            }
            c if is_word(c) => {
                let end = (i..chars.len())
                    .find(|&j| chars.get(j).is_none_or(|c| !is_word(*c)))
                    .unwrap_or(chars.len());
                let word: String = chars.get(i..end).unwrap_or_default().iter().collect();
                i = end;
                match word.as_str() {
                    "true" => Token::Literal(Value::Bool(true)),
                    "false" => Token::Literal(Value::Bool(false)),
                    "null" => Token::Literal(Value::Null),
                    "contains" => Token::Op(Op::Contains),
                    _ => Token::Word(word),
                }
            }
            other => {
                return Err(error(
                    i,
                    other.to_string(),
                    "a path, a comparison, a literal, `(` or `)`",
                ));
            }
        };
        tokens.push(Spanned {
            token,
            position: start + 1,
            text: chars.get(start..i).unwrap_or_default().iter().collect(),
        });
    }
    Ok(tokens)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// What is left of the filter from `at`, shortened: the token of an error.
fn rest(chars: &[char], at: usize) -> String {
    let rest: String = chars
        .get(at..)
        .unwrap_or_default()
        .iter()
        .take(20)
        .collect();
    if rest.is_empty() {
        "end of filter".to_owned()
    } else {
        rest
    }
}

/// The index of the quote closing the string that opens at `open`.
fn string_end(chars: &[char], open: usize) -> Option<usize> {
    let quote = *chars.get(open)?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let mut j = open + 1;
    while let Some(&c) = chars.get(j) {
        if c == quote {
            return Some(j);
        }
        // Double-quoted strings are JSON's, with its escapes.
        j += if c == '\\' && quote == '"' { 2 } else { 1 };
    }
    None
}

/// The string from `open` to `end` (its quotes): JSON's rules in double
/// quotes, the characters as they are in single quotes.
fn string_literal(chars: &[char], open: usize, end: usize) -> Result<Value, String> {
    let text: String = chars.get(open..=end).unwrap_or_default().iter().collect();
    if chars.get(open) == Some(&'\'') {
        let inner: String = chars
            .get(open + 1..end)
            .unwrap_or_default()
            .iter()
            .collect();
        return Ok(Value::String(inner));
    }
    serde_json::from_str::<String>(&text)
        .map(Value::String)
        .map_err(|_| text)
}

struct Parser {
    tokens: Vec<Spanned>,
    next: usize,
    /// The position just past the filter: where "end of filter" is.
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|t| &t.token)
    }

    fn error(&self, expected: &str) -> FilterError {
        match self.tokens.get(self.next) {
            Some(t) => FilterError {
                position: t.position,
                found: t.text.clone(),
                expected: expected.to_owned(),
            },
            None => FilterError {
                position: self.end,
                found: "end of filter".to_owned(),
                expected: expected.to_owned(),
            },
        }
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w == word) {
            self.next += 1;
            return true;
        }
        false
    }

    fn or(&mut self, depth: usize) -> Result<Filter, FilterError> {
        let mut left = self.and(depth)?;
        while self.keyword("or") {
            left = Filter::Or(Box::new(left), Box::new(self.and(depth)?));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Filter, FilterError> {
        let mut left = self.comparison(depth)?;
        while self.keyword("and") {
            left = Filter::And(Box::new(left), Box::new(self.comparison(depth)?));
        }
        Ok(left)
    }

    fn comparison(&mut self, depth: usize) -> Result<Filter, FilterError> {
        if matches!(self.peek(), Some(Token::Open)) {
            if depth >= MAX_DEPTH {
                return Err(self.error(&format!("at most {MAX_DEPTH} nested parentheses")));
            }
            self.next += 1;
            let inner = self.or(depth + 1)?;
            if !matches!(self.peek(), Some(Token::Close)) {
                return Err(self.error("`)`, `and` or `or`"));
            }
            self.next += 1;
            return Ok(inner);
        }
        let path = self.path()?;
        let op = match self.peek() {
            Some(Token::Op(op)) => *op,
            _ => return Err(self.error("a comparison: ==, !=, <, <=, >, >= or contains")),
        };
        self.next += 1;
        let literal = match self.peek() {
            Some(Token::Literal(value)) => value.clone(),
            _ => return Err(self.error("a string, a number, true, false or null")),
        };
        self.next += 1;
        Ok(Filter::Compare { path, op, literal })
    }

    fn path(&mut self) -> Result<Path, FilterError> {
        const ROOTS: &str = "a path: value, key, headers.<name>, offset, partition or timestamp";
        let root = match self.peek() {
            Some(Token::Word(word)) => word.clone(),
            _ => return Err(self.error(ROOTS)),
        };
        let root = match root.as_str() {
            "value" => Root::Value,
            "key" => Root::Key,
            "offset" => Root::Offset,
            "partition" => Root::Partition,
            "timestamp" => Root::Timestamp,
            "headers" => {
                // Past `headers`, onto the name (the step below passes it).
                self.next += 1;
                Root::Header(self.step()?)
            }
            _ => return Err(self.error(ROOTS)),
        };
        self.next += 1;
        let mut steps = Vec::new();
        while matches!(self.peek(), Some(Token::Dot | Token::Quoted(_))) {
            steps.push(self.step()?);
            self.next += 1;
        }
        Ok(Path { root, steps })
    }

    /// `.name` or `["name"]`, leaving `next` on the name.
    fn step(&mut self) -> Result<String, FilterError> {
        if let Some(Token::Quoted(name)) = self.peek() {
            return Ok(name.clone());
        }
        if !matches!(self.peek(), Some(Token::Dot)) {
            return Err(self.error("`.name` or `[\"name\"]`"));
        }
        self.next += 1;
        match self.peek() {
            Some(Token::Word(name)) => Ok(name.clone()),
            Some(Token::Literal(Value::Number(n))) => Ok(n.to_string()),
            _ => Err(self.error("a name after `.`")),
        }
    }
}

/// What a path found in a record.
enum Found<'a> {
    Json(&'a Value),
    Owned(Value),
    /// Text that is not JSON (a key, a header, a value that does not parse).
    Text(&'a str),
    /// A value that is neither JSON nor UTF-8: `contains` looks at its bytes.
    Bytes(&'a [u8]),
    Missing,
}

/// A record as the filter sees it: its value parsed once, whatever the
/// number of comparisons.
pub struct Subject<'a> {
    record: &'a KafkaRecord,
    value: Option<Value>,
}

impl<'a> Subject<'a> {
    pub fn new(record: &'a KafkaRecord) -> Self {
        let value = match record.value.as_deref() {
            None => Some(Value::Null),
            Some(bytes) => serde_json::from_slice(bytes).ok(),
        };
        Subject { record, value }
    }

    fn find(&self, path: &Path) -> Found<'_> {
        let number = |n: i64| Found::Owned(Value::from(n));
        let text = match &path.root {
            Root::Offset => return number(self.record.offset),
            Root::Partition => return number(i64::from(self.record.partition)),
            Root::Timestamp => return self.record.timestamp.map_or(Found::Missing, number),
            Root::Value => {
                return match (&self.value, self.record.value.as_deref()) {
                    (Some(value), _) => walk(value, &path.steps),
                    // Not JSON: the whole value, for `contains` only.
                    (None, Some(bytes)) if path.steps.is_empty() => Found::Bytes(bytes),
                    (None, _) => Found::Missing,
                };
            }
            Root::Key => self.record.key.as_deref(),
            Root::Header(name) => match self.record.headers.iter().find(|h| &h.key == name) {
                Some(header) => header.value.as_deref(),
                None => return Found::Missing,
            },
        };
        let Some(bytes) = text else {
            return Found::Owned(Value::Null);
        };
        if path.steps.is_empty() {
            return match std::str::from_utf8(bytes) {
                Ok(text) => Found::Text(text),
                Err(_) => Found::Bytes(bytes),
            };
        }
        // A path into a key or header: its text read as JSON.
        match serde_json::from_slice::<Value>(bytes) {
            Ok(value) => match walk(&value, &path.steps) {
                Found::Json(found) => Found::Owned(found.clone()),
                _ => Found::Missing,
            },
            Err(_) => Found::Missing,
        }
    }
}

fn walk<'v>(mut value: &'v Value, steps: &[String]) -> Found<'v> {
    for step in steps {
        let next = match value {
            Value::Object(map) => map.get(step),
            Value::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(next) => value = next,
            None => return Found::Missing,
        }
    }
    Found::Json(value)
}

impl Filter {
    /// Whether `subject` matches.
    pub fn matches(&self, subject: &Subject<'_>) -> bool {
        match self {
            Filter::And(a, b) => a.matches(subject) && b.matches(subject),
            Filter::Or(a, b) => a.matches(subject) || b.matches(subject),
            Filter::Compare { path, op, literal } => compare(&subject.find(path), *op, literal),
        }
    }
}

fn compare(found: &Found<'_>, op: Op, literal: &Value) -> bool {
    let value = match found {
        Found::Json(value) => *value,
        Found::Owned(value) => value,
        Found::Missing => return op == Op::Ne,
        Found::Bytes(bytes) => {
            return op == Op::Contains
                && literal.as_str().is_some_and(|needle| {
                    memchr::memmem::find(bytes, needle.as_bytes()).is_some()
                });
        }
        Found::Text(text) => return compare_text(text, op, literal),
    };
    if op == Op::Contains {
        return match (value, literal) {
            (Value::String(text), Value::String(needle)) => text.contains(needle.as_str()),
            (Value::Array(items), literal) => items.iter().any(|item| equal(item, literal)),
            _ => false,
        };
    }
    match op {
        Op::Eq => equal(value, literal),
        Op::Ne => !equal(value, literal),
        _ => order(value, literal).is_some_and(|o| ordered(o, op)),
    }
}

/// Text (a key, a header) against a literal: as text, or as a number when
/// the literal is one and the text reads as one.
fn compare_text(text: &str, op: Op, literal: &Value) -> bool {
    match literal {
        Value::String(other) => match op {
            Op::Contains => text.contains(other.as_str()),
            Op::Eq => text == other,
            Op::Ne => text != other,
            _ => ordered(text.cmp(other.as_str()), op),
        },
        Value::Number(_) => match serde_json::from_str::<Number>(text.trim()) {
            Ok(number) => compare(&Found::Owned(Value::Number(number)), op, literal),
            Err(_) => op == Op::Ne,
        },
        _ => op == Op::Ne,
    }
}

fn ordered(ordering: Ordering, op: Op) -> bool {
    match op {
        Op::Lt => ordering.is_lt(),
        Op::Le => ordering.is_le(),
        Op::Gt => ordering.is_gt(),
        Op::Ge => ordering.is_ge(),
        Op::Eq => ordering.is_eq(),
        Op::Ne => ordering.is_ne(),
        Op::Contains => false,
    }
}

/// Equality as JSON means it, numbers by value (`1 == 1.0`).
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => order(a, b) == Some(Ordering::Equal),
        _ => a == b,
    }
}

/// Numbers by value (exactly for integers), strings by their characters;
/// nothing else is ordered.
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                return Some(x.cmp(&y));
            }
            if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                return Some(x.cmp(&y));
            }
            x.as_f64()?.partial_cmp(&y.as_f64()?)
        }
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Header;

    fn record(key: Option<&str>, value: Option<&[u8]>, headers: &[(&str, &str)]) -> KafkaRecord {
        KafkaRecord {
            topic: "t".into(),
            partition: 3,
            offset: 42,
            timestamp: Some(1_000),
            key: key.map(|k| k.as_bytes().to_vec()),
            value: value.map(<[u8]>::to_vec),
            headers: headers
                .iter()
                .map(|(k, v)| Header {
                    key: (*k).into(),
                    value: Some(v.as_bytes().to_vec()),
                })
                .collect(),
        }
    }

    fn matches(filter: &str, record: &KafkaRecord) -> bool {
        let filter: Filter = filter.parse().unwrap_or_else(|e| panic!("{filter}: {e}"));
        filter.matches(&Subject::new(record))
    }

    #[test]
    fn comparisons_on_the_value_the_key_and_headers() {
        let r = record(
            Some("booking-7"),
            Some(br#"{"a":{"b":5,"s":"Oslo"},"tags":["x","y"],"big":18446744073709551615}"#),
            &[("source", "web-eu"), ("trace.id", "abc"), ("n", "12")],
        );
        for yes in [
            "value.a.b == 5",
            "value.a.b == 5.0",
            "value.a.b >= 5 and value.a.b < 6",
            "value.a.s == \"Oslo\"",
            "value.a.s == 'Oslo'",
            "value.a.s contains \"sl\"",
            "value.tags contains \"y\"",
            "value.tags.1 == \"y\"",
            "value.big == 18446744073709551615",
            "value.missing != 1",
            "key == \"booking-7\"",
            "key contains 'booking'",
            "headers.source contains \"web\"",
            "headers[\"trace.id\"] == \"abc\"",
            "headers.n > 11",
            "offset == 42 and partition == 3 and timestamp < 2000",
            "value.a.b == 1 or (value.a.b == 5 and key != \"x\")",
        ] {
            assert!(matches(yes, &r), "{yes}");
        }
        for no in [
            "value.a.b == 6",
            "value.a.b > 5",
            "value.a.s == \"oslo\"",
            "value.missing == 1",
            "value.a.b contains 5",
            "headers.absent == \"x\"",
            "headers.n > 12",
            "value.a.b == 1 or value.a.b == 2",
            "value.a.b == 5 and key == \"x\"",
            "value.big == 18446744073709551614",
        ] {
            assert!(!matches(no, &r), "{no}");
        }
    }

    #[test]
    fn a_value_that_is_not_json_is_matched_as_text_by_contains_only() {
        let r = record(None, Some(b"plain text, not json"), &[]);
        assert!(matches("value contains \"not json\"", &r));
        assert!(!matches("value == \"plain text, not json\"", &r));
        assert!(!matches("value.a == 1", &r));
        let binary = record(None, Some(&[0xff, 0x00, b'h', b'i']), &[]);
        assert!(matches("value contains 'hi'", &binary));
        let tombstone = record(Some("k"), None, &[]);
        assert!(matches("value == null", &tombstone));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let r = record(None, Some(br#"{"a":1,"b":2}"#), &[]);
        // (a==1) or (a==2 and b==3): true; (a==1 or a==2) and b==3: false.
        assert!(matches("value.a == 1 or value.a == 2 and value.b == 3", &r));
        assert!(!matches(
            "(value.a == 1 or value.a == 2) and value.b == 3",
            &r
        ));
    }

    #[test]
    fn errors_name_the_position_and_the_token() {
        let cases = [
            ("value.a = 1", 9, "=", "a comparison"),
            ("value.a == ", 12, "end of filter", "a string, a number"),
            ("body.a == 1", 1, "body", "a path"),
            ("value.a == 1 and", 17, "end of filter", "a path"),
            ("(value.a == 1", 14, "end of filter", "`)`"),
            ("value.a == 1 xor key == 'k'", 14, "xor", "`and`, `or`"),
            ("value.a == \"open", 12, "\"open", "a closing quote"),
            ("value.a == 1.2.3", 12, "1.2.3", "a number"),
            ("value.a == 1 ; drop", 14, ";", "a path, a comparison"),
            ("headers == 'x'", 9, "==", "`.name`"),
        ];
        for (filter, position, found, expected) in cases {
            let error = filter.parse::<Filter>().unwrap_err();
            assert_eq!(error.position, position, "{filter}: {error}");
            assert_eq!(error.found, found, "{filter}: {error}");
            assert!(error.expected.contains(expected), "{filter}: {error}");
        }
    }

    #[test]
    fn nesting_and_length_are_bounded() {
        let deep = format!("{}value.a == 1{}", "(".repeat(100), ")".repeat(100));
        let error = deep.parse::<Filter>().unwrap_err();
        assert!(error.expected.contains("nested"), "{error}");
        let long = format!("value.a == \"{}\"", "x".repeat(MAX_FILTER_LEN));
        assert!(long.parse::<Filter>().is_err());
        let fine = format!("{}value.a == 1{}", "(".repeat(30), ")".repeat(30));
        assert!(fine.parse::<Filter>().is_ok());
    }
}
