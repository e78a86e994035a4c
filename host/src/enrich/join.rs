//! Joining records from several topics by an id in their JSON values, the
//! way the Python workers Sluice replaces do: once a record with the same
//! id has arrived from every input, their top-level fields are merged (and
//! their `content` objects merged field by field) into one record for the
//! transform. Waiting ids are bounded in number, in bytes and in time, and
//! a record's fields in number (the merge is linear in them, but runs on
//! the host, outside the guest's deadline).
//!
//! Time is event time, as in Kafka Streams: the records' timestamps, not
//! when they arrived. Each input's time is the latest timestamp it sent,
//! and the stream's time is the earliest of them (a watermark), so an input
//! read behind the others (a backlog read topic by topic) holds the join
//! back instead of timing its partners out. An id is given up once the
//! stream's time passes its first record's timestamp plus the timeout and
//! the grace, and a record further than the timeout from the first one of
//! its id does not join it. So replaying a backlog joins as the live run
//! did. An input that sends nothing for longer than the grace has its time
//! moved on by the wall clock, so a quiet stream still gives its waiting
//! ids up; an input that has sent nothing at all holds the others for the
//! grace after the first record, then no more.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::definition::JoinSpec;
use super::raw_object::{Merged, RawObject};
use crate::kafka::Forgotten;
use crate::record::{Header, KafkaRecord, RecordRef};

/// Header on a joined record: `topic/partition/offset` of every member.
pub const MEMBERS_HEADER: &str = "sluice.join.members";
/// Header on a partial record (timeout with `emit_partial`): the inputs that
/// never arrived.
pub const MISSING_HEADER: &str = "sluice.join.missing";
/// `sluice.error.kind` of a record refused for a join limit
/// (`join.max_fields`, `join.max_pending_bytes`).
pub const LIMIT_KIND: &str = "join-limit";

/// The field merged field by field rather than replaced, as the Python
/// ETL workers merge it.
const MERGED_FIELD: &str = "content";

/// Records with one id from every input, merged.
#[derive(Debug)]
pub struct Joined {
    pub record: KafkaRecord,
    /// Every input record this one stands for, superseded duplicates included.
    pub members: Vec<RecordRef>,
}

/// An id that stopped waiting before every input arrived.
#[derive(Debug)]
pub struct Incomplete {
    pub id: String,
    pub arrived: Vec<KafkaRecord>,
    pub missing: Vec<String>,
    /// Earlier records of the same id and topic that a later one replaced.
    pub superseded: Vec<RecordRef>,
    pub cause: IncompleteCause,
    /// The partial merge of what arrived, with the missing inputs named in a
    /// header.
    pub partial: KafkaRecord,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncompleteCause {
    TimedOut(Duration),
    /// `max_pending` ids were waiting and this one had waited longest.
    Evicted {
        max_pending: usize,
    },
    /// The waiting records held `max_pending_bytes` and this id had waited
    /// longest.
    OverBudget {
        max_pending_bytes: usize,
    },
}

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let missing = self.missing.join(", ");
        match self.cause {
            IncompleteCause::TimedOut(timeout) => write!(
                f,
                "id `{}`: nothing arrived from {missing} within {} ms",
                self.id,
                timeout.as_millis()
            ),
            IncompleteCause::Evicted { max_pending } => write!(
                f,
                "id `{}`: evicted before {missing} arrived, because {max_pending} ids \
                 were already waiting (join.max_pending)",
                self.id
            ),
            IncompleteCause::OverBudget { max_pending_bytes } => write!(
                f,
                "id `{}`: evicted before {missing} arrived, because the waiting records \
                 held {max_pending_bytes} bytes (join.max_pending_bytes)",
                self.id
            ),
        }
    }
}

/// What adding one record did.
#[derive(Debug)]
pub enum Added {
    /// Waiting for the other inputs; or, when the byte budget gave up its
    /// id as the one that waited longest, among the ids given up.
    Waiting,
    Complete(Joined),
}

/// A record that cannot take part in the join; the reason names the field
/// or the limit.
#[derive(Debug)]
pub struct Rejected {
    pub record: KafkaRecord,
    /// `decode` (no usable id) or [`LIMIT_KIND`].
    pub kind: &'static str,
    pub reason: String,
}

impl Rejected {
    fn decode(record: KafkaRecord, reason: String) -> Box<Self> {
        Box::new(Rejected {
            record,
            kind: "decode",
            reason,
        })
    }
}

struct Part {
    record: KafkaRecord,
    /// The fields of the record's value (checked to be a JSON object).
    object: RawObject,
}

impl Part {
    /// What it holds of `max_pending_bytes`: worked out again when it
    /// leaves rather than kept, so a waiting part is no larger than before.
    fn bytes(&self) -> usize {
        held_bytes(&self.record, &self.object)
    }
}

/// What a waiting record holds in memory: its key, value and headers, its
/// topic, and the index of its fields.
fn held_bytes(record: &KafkaRecord, object: &RawObject) -> usize {
    record.payload_len() + record.topic.len() + object.index_bytes()
}

struct Pending {
    generation: u64,
    /// Event time of the id's first record, in ms since the Unix epoch.
    opened_at: i64,
    parts: Vec<Option<Part>>,
    superseded: Vec<RecordRef>,
}

impl Pending {
    fn bytes(&self) -> usize {
        self.parts.iter().flatten().map(Part::bytes).sum()
    }
}

pub struct JoinBuffer {
    spec: JoinSpec,
    inputs: Vec<String>,
    pending: HashMap<String, Pending>,
    /// Ids in arrival order; an entry whose generation no longer matches the
    /// pending one is stale (that id completed) and is skipped.
    arrivals: VecDeque<(String, u64)>,
    generation: u64,
    /// Per input: the latest timestamp it sent (ms) and when that record
    /// arrived, the base from which a quiet input's time moves on.
    input_times: Vec<Option<(i64, Instant)>>,
    /// When the first record arrived (since the last `clear`).
    started: Option<Instant>,
    /// What the waiting records hold (see [`held_bytes`]).
    pending_bytes: usize,
}

impl JoinBuffer {
    pub fn new(spec: JoinSpec, inputs: Vec<String>) -> Self {
        let inputs_len = inputs.len();
        JoinBuffer {
            spec,
            inputs,
            pending: HashMap::new(),
            arrivals: VecDeque::new(),
            generation: 0,
            input_times: vec![None; inputs_len],
            started: None,
            pending_bytes: 0,
        }
    }

    fn timeout_ms(&self) -> i64 {
        i64::try_from(self.spec.timeout_ms).unwrap_or(i64::MAX)
    }

    fn grace_ms(&self) -> i64 {
        i64::try_from(self.spec.grace_ms).unwrap_or(i64::MAX)
    }

    /// The stream's time at `now`: the earliest of the inputs' times, each
    /// moved on by the wall clock once that input has been quiet for longer
    /// than the grace. An input that sent nothing yet holds the stream for
    /// the grace after the first record arrived, then no longer counts.
    fn stream_time_at(&self, now: Instant) -> i64 {
        let waiting_for_an_input = self.input_times.iter().any(Option::is_none)
            && self
                .started
                .is_some_and(|s| now.saturating_duration_since(s) <= self.spec.grace());
        if waiting_for_an_input {
            return i64::MIN;
        }
        self.input_times
            .iter()
            .flatten()
            .map(|(latest, arrived)| {
                let quiet = now.saturating_duration_since(*arrived);
                if quiet > self.spec.grace() {
                    let moved = i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
                    latest.saturating_add(moved)
                } else {
                    *latest
                }
            })
            .min()
            .unwrap_or(i64::MIN)
    }

    /// The deadline, in stream time, of an id opened at `opened_at`.
    fn deadline_of(&self, opened_at: i64) -> i64 {
        opened_at
            .saturating_add(self.timeout_ms())
            .saturating_add(self.grace_ms())
    }

    /// Ids waiting for more inputs.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// What the waiting records hold, at most `join.max_pending_bytes`.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Forgets every waiting id (their records were not committed, so
    /// they will be read again).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.pending_bytes = 0;
        self.arrivals.clear();
        // The records read again are older than the inputs' times now.
        self.input_times.iter_mut().for_each(|t| *t = None);
        self.started = None;
    }

    /// Forgets the records of the `forgotten` partitions after a rebalance
    /// (they were not committed: they are read again, by their next owner
    /// or here after a rewind). An id keeps the parts it has from other
    /// partitions, and is forgotten when none is left; the inputs' times
    /// start again, since the records read again are older.
    pub fn forget(&mut self, forgotten: &Forgotten) {
        match forgotten {
            Forgotten::All => return self.clear(),
            taken if taken.is_empty() => return,
            Forgotten::Partitions(_) => {}
        }
        let taken = |r: &RecordRef| forgotten.contains(&r.topic, r.partition);
        self.pending.retain(|_, pending| {
            for part in &mut pending.parts {
                if part
                    .as_ref()
                    .is_some_and(|p| forgotten.contains(&p.record.topic, p.record.partition))
                {
                    *part = None;
                }
            }
            pending.superseded.retain(|r| !taken(r));
            pending.parts.iter().any(Option::is_some)
        });
        self.input_times.iter_mut().for_each(|t| *t = None);
        self.started = None;
    }

    /// Adds a record that arrived at `now`. Ids given up on the way are
    /// returned in `gone`: those whose time ran out in stream time (checked
    /// before every record, so the outcome does not depend on how records
    /// were batched), this id's earlier record when this one is further than
    /// the timeout from it, and the ids that waited longest when the buffer
    /// is full (in ids or in bytes; this record's own id too, when it is
    /// the oldest). A record with more fields than `max_fields`, or larger
    /// than `max_pending_bytes` alone, is rejected naming the limit.
    pub fn add(
        &mut self,
        record: KafkaRecord,
        now: Instant,
        gone: &mut Vec<Incomplete>,
    ) -> Result<Added, Box<Rejected>> {
        let Some(slot) = self.inputs.iter().position(|t| *t == record.topic) else {
            let reason = format!("topic `{}` is not an input of this join", record.topic);
            return Err(Rejected::decode(record, reason));
        };
        let (id, object, too_many_fields) = match self.id_of(&record) {
            Ok(found) => found,
            Err(reason) => return Err(Rejected::decode(record, reason)),
        };
        let bytes = held_bytes(&record, &object);
        if let Some(reason) = self.past_a_limit(&record, &id, too_many_fields, bytes) {
            return Err(Box::new(Rejected {
                record,
                kind: LIMIT_KIND,
                reason,
            }));
        }
        // A record without a timestamp (Kafka before 0.10) happens now.
        let at = record.timestamp.unwrap_or_else(wall_clock_ms);
        self.started.get_or_insert(now);
        if let Some(time) = self.input_times.get_mut(slot) {
            let latest = time.map_or(at, |(latest, _)| latest.max(at));
            *time = Some((latest, now));
        }
        let stream_time = self.stream_time_at(now);
        gone.extend(self.expire_due(stream_time));
        let outside = self
            .pending
            .get(&id)
            .is_some_and(|p| at.abs_diff(p.opened_at) > self.spec.timeout_ms);
        if outside && let Some(earlier) = self.take(&id) {
            let cause = IncompleteCause::TimedOut(self.spec.timeout());
            gone.push(self.incomplete(id.clone(), earlier, cause));
        }
        if !self.pending.contains_key(&id) {
            while self.pending.len() >= self.spec.max_pending {
                let Some(oldest) = self.pop_oldest() else {
                    break;
                };
                let cause = IncompleteCause::Evicted {
                    max_pending: self.spec.max_pending,
                };
                tracing::error!(
                    id = oldest.0,
                    max_pending = self.spec.max_pending,
                    "join buffer full: giving up the id that waited longest"
                );
                gone.push(self.incomplete(oldest.0, oldest.1, cause));
            }
            self.generation += 1;
            self.arrivals.push_back((id.clone(), self.generation));
            self.pending.insert(
                id.clone(),
                Pending {
                    generation: self.generation,
                    opened_at: at,
                    parts: (0..self.inputs.len()).map(|_| None).collect(),
                    superseded: Vec::new(),
                },
            );
        }
        let Some(entry) = self.pending.get_mut(&id) else {
            // Inserted above; unreachable, but a record is never dropped.
            let reason = "join bookkeeping lost the id (a bug)".to_owned();
            return Err(Rejected::decode(record, reason));
        };
        let Some(place) = entry.parts.get_mut(slot) else {
            let reason = "join bookkeeping has no place for this input (a bug)".to_owned();
            return Err(Rejected::decode(record, reason));
        };
        self.pending_bytes = self.pending_bytes.saturating_add(bytes);
        if let Some(earlier) = place.replace(Part { record, object }) {
            self.pending_bytes = self.pending_bytes.saturating_sub(earlier.bytes());
            tracing::warn!(
                id,
                topic = earlier.record.topic,
                partition = earlier.record.partition,
                offset = earlier.record.offset,
                "a later record with the same id replaced this one in the join"
            );
            entry.superseded.push(earlier.record.locator());
        }
        if entry.parts.iter().all(Option::is_some)
            && let Some(entry) = self.take(&id)
        {
            let mut members = entry.superseded;
            let parts: Vec<Part> = entry.parts.into_iter().flatten().collect();
            members.extend(parts.iter().map(|p| p.record.locator()));
            let record = merge(parts, &[]);
            return Ok(Added::Complete(Joined { record, members }));
        }
        self.keep_within_budget(gone);
        Ok(Added::Waiting)
    }

    /// Why `record` cannot wait in this join, if it cannot: more fields
    /// than the merge may take, or more bytes (`bytes`) than the whole
    /// budget.
    fn past_a_limit(
        &self,
        record: &KafkaRecord,
        id: &str,
        too_many_fields: Option<usize>,
        bytes: usize,
    ) -> Option<String> {
        if let Some(fields) = too_many_fields {
            return Some(format!(
                "{} (id `{id}`): {fields} fields (top-level and in `{MERGED_FIELD}`), more \
                 than join.max_fields ({})",
                record.locator(),
                self.spec.max_fields
            ));
        }
        if bytes > self.spec.max_pending_bytes {
            return Some(format!(
                "{} (id `{id}`): {bytes} bytes (key, value, headers and the index of its \
                 fields), more than join.max_pending_bytes ({}) on its own",
                record.locator(),
                self.spec.max_pending_bytes
            ));
        }
        None
    }

    /// Gives up the ids that waited longest until the waiting records fit
    /// `max_pending_bytes`; they go the way of a timeout (`on_timeout`).
    fn keep_within_budget(&mut self, gone: &mut Vec<Incomplete>) {
        while self.pending_bytes > self.spec.max_pending_bytes {
            let Some((id, pending)) = self.pop_oldest() else {
                break;
            };
            tracing::error!(
                id,
                max_pending_bytes = self.spec.max_pending_bytes,
                "join buffer full: giving up the id that waited longest"
            );
            let cause = IncompleteCause::OverBudget {
                max_pending_bytes: self.spec.max_pending_bytes,
            };
            gone.push(self.incomplete(id, pending, cause));
        }
    }

    /// Removes a waiting id, releasing what its records held.
    fn take(&mut self, id: &str) -> Option<Pending> {
        let pending = self.pending.remove(id)?;
        self.pending_bytes = self.pending_bytes.saturating_sub(pending.bytes());
        Some(pending)
    }

    /// Gives up every id whose time ran out by `now` (the stream's time, as
    /// moved on by the wall clock when the stream is quiet).
    pub fn expire(&mut self, now: Instant) -> Vec<Incomplete> {
        self.expire_due(self.stream_time_at(now))
    }

    /// Gives up the ids whose deadline `stream_time` has reached.
    fn expire_due(&mut self, stream_time: i64) -> Vec<Incomplete> {
        let mut expired = Vec::new();
        while let Some((id, generation)) = self.arrivals.front() {
            match self.pending.get(id) {
                Some(p) if p.generation == *generation => {
                    if stream_time < self.deadline_of(p.opened_at) {
                        break;
                    }
                    let Some((id, pending)) = self.pop_oldest() else {
                        break;
                    };
                    let cause = IncompleteCause::TimedOut(self.spec.timeout());
                    expired.push(self.incomplete(id, pending, cause));
                }
                _ => {
                    self.arrivals.pop_front();
                }
            }
        }
        expired
    }

    /// When the id that waited longest would be given up if nothing else
    /// arrived: the wall-clock moment every quiet input's time reaches its
    /// deadline. Ids open in arrival order, and in a live stream in event
    /// time too, so the first one is the next due.
    pub fn next_deadline(&self) -> Option<Instant> {
        let first = self.arrivals.iter().find_map(|(id, generation)| {
            self.pending.get(id).filter(|p| p.generation == *generation)
        })?;
        let deadline = self.deadline_of(first.opened_at);
        self.input_times
            .iter()
            .flatten()
            .map(|(latest, arrived)| {
                let left = deadline.saturating_sub(*latest).max(0);
                let left = Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX));
                // A quiet input's time starts moving once the grace is over.
                *arrived + left.max(self.spec.grace() + Duration::from_millis(1))
            })
            .max()
    }

    fn pop_oldest(&mut self) -> Option<(String, Pending)> {
        while let Some((id, generation)) = self.arrivals.pop_front() {
            if self
                .pending
                .get(&id)
                .is_some_and(|p| p.generation == generation)
            {
                let pending = self.take(&id)?;
                return Some((id, pending));
            }
        }
        None
    }

    fn incomplete(&self, id: String, pending: Pending, cause: IncompleteCause) -> Incomplete {
        let missing: Vec<String> = pending
            .parts
            .iter()
            .zip(&self.inputs)
            .filter(|(part, _)| part.is_none())
            .map(|(_, topic)| topic.clone())
            .collect();
        let parts: Vec<Part> = pending.parts.into_iter().flatten().collect();
        let arrived = parts.iter().map(|p| p.record.clone()).collect();
        let partial = merge(parts, &missing);
        Incomplete {
            id,
            arrived,
            missing,
            superseded: pending.superseded,
            cause,
            partial,
        }
    }

    /// The id at the join key's path, as text (a number and the same number
    /// written as a string join together), the value's fields, and how many
    /// fields a merge would go through when that is past `max_fields`.
    fn id_of(&self, record: &KafkaRecord) -> Result<(String, RawObject, Option<usize>), String> {
        let bytes = record.value.as_deref().ok_or("record has no value")?;
        let (text, object) = RawObject::parse(bytes).map_err(|e| e.to_string())?;
        let too_many_fields = object.fields_past(text, MERGED_FIELD, self.spec.max_fields);
        // Only the key's field is parsed; checked as JSON above.
        let mut at: Option<Value> = object
            .get(text, self.key_head())
            .and_then(|text| serde_json::from_str(text).ok());
        for part in self.spec.key.split('.').skip(1) {
            at = at.and_then(|mut v| v.get_mut(part).map(Value::take));
        }
        let id = match at {
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Null) | None => {
                return Err(format!("join key `{}` is missing", self.spec.key));
            }
            Some(_) => {
                return Err(format!(
                    "join key `{}` is not a string or a number",
                    self.spec.key
                ));
            }
        };
        Ok((id, object, too_many_fields))
    }

    fn key_head(&self) -> &str {
        self.spec.key.split('.').next().unwrap_or_default()
    }
}

/// Merges parts in input order: later inputs' top-level fields win, and
/// `content` objects are merged field by field, as the Python ETL workers
/// do. Linear in the parts' fields (`raw_object`).
fn merge(parts: Vec<Part>, missing: &[String]) -> KafkaRecord {
    let members = parts
        .iter()
        .map(|p| {
            format!(
                "{}/{}/{}",
                p.record.topic, p.record.partition, p.record.offset
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    // Fields are merged as spans of the parts' own text and written out
    // once: parsing each part into a tree and writing the merged tree was
    // the join's largest cost under `perf`. The first part is the base as
    // it is; `content` is merged field by field from the second part on.
    let mut value = Vec::with_capacity(
        parts
            .iter()
            .map(|p| p.record.value.as_ref().map_or(0, Vec::len))
            .sum::<usize>()
            + 2,
    );
    {
        let mut merged = Merged::new();
        for (index, part) in parts.iter().enumerate() {
            // Checked as UTF-8 JSON when the part was added.
            let bytes = part.record.value.as_deref().unwrap_or_default();
            let text = std::str::from_utf8(bytes).unwrap_or_default();
            merged.add(&part.object, text, (index > 0).then_some(MERGED_FIELD));
        }
        merged.write(&mut value);
    }
    let mut headers = Vec::new();
    let mut key = None;
    let mut timestamp = None;
    let mut last = None;
    for part in parts {
        key = key.or(part.record.key.clone());
        timestamp = timestamp.max(part.record.timestamp);
        headers.extend(part.record.headers.iter().cloned());
        last = Some(part.record);
    }
    headers.push(text_header(MEMBERS_HEADER, members));
    if !missing.is_empty() {
        headers.push(text_header(MISSING_HEADER, missing.join(",")));
    }
    // The record is reported (and dead-lettered) as the member that arrived
    // last in input order; the members header names all of them.
    let last = last.expect("a join entry has at least one part");
    KafkaRecord {
        topic: last.topic,
        partition: last.partition,
        offset: last.offset,
        timestamp,
        key,
        value: Some(value),
        headers,
    }
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn text_header(key: &str, value: String) -> Header {
    Header {
        key: key.to_owned(),
        value: Some(value.into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::definition::OnTimeout;
    use serde_json::json;

    fn spec(timeout_ms: u64, max_pending: usize) -> JoinSpec {
        JoinSpec {
            key: "id".into(),
            timeout_ms,
            grace_ms: 50,
            on_timeout: OnTimeout::Drop,
            max_pending,
            max_pending_bytes: 1 << 20,
            max_fields: 100,
        }
    }

    fn buffer(max_pending: usize) -> JoinBuffer {
        JoinBuffer::new(spec(100, max_pending), vec!["a".into(), "b".into()])
    }

    fn record(topic: &str, offset: i64, value: Value) -> KafkaRecord {
        let mut r = KafkaRecord::from_value(topic, offset, value.to_string().into_bytes());
        r.timestamp = Some(offset);
        r
    }

    fn value_of(r: &KafkaRecord) -> Value {
        serde_json::from_slice(r.value.as_deref().unwrap()).unwrap()
    }

    fn header<'a>(r: &'a KafkaRecord, key: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|h| h.key == key)
            .and_then(|h| std::str::from_utf8(h.value.as_deref()?).ok())
    }

    #[test]
    fn merges_top_level_fields_and_content() {
        let mut join = buffer(10);
        let now = Instant::now();
        let mut evicted = Vec::new();
        let first = json!({"id": 7, "source": "a", "content": {"text": "hi", "x": 1}});
        let second = json!({"id": "7", "lang": "en", "content": {"x": 2, "y": 3}});
        assert!(matches!(
            join.add(record("b", 4, second), now, &mut evicted),
            Ok(Added::Waiting)
        ));
        let Ok(Added::Complete(joined)) = join.add(record("a", 9, first), now, &mut evicted) else {
            panic!("expected the join to complete");
        };
        assert_eq!(
            value_of(&joined.record),
            json!({"id": "7", "source": "a", "lang": "en", "content": {"text": "hi", "x": 2, "y": 3}})
        );
        assert_eq!(header(&joined.record, MEMBERS_HEADER), Some("a/0/9,b/0/4"));
        assert_eq!(joined.members.len(), 2);
        assert_eq!(joined.record.timestamp, Some(9));
        assert_eq!(join.pending(), 0);
        assert!(evicted.is_empty());
    }

    fn at(topic: &str, offset: i64, ts: i64, value: Value) -> KafkaRecord {
        let mut r = record(topic, offset, value);
        r.timestamp = Some(ts);
        r
    }

    #[test]
    fn an_id_times_out_in_event_time_with_the_missing_inputs_named() {
        let mut join = buffer(10);
        let start = Instant::now();
        let mut gone = Vec::new();
        join.add(at("a", 1, 1000, json!({"id": 1})), start, &mut gone)
            .unwrap();
        join.add(at("a", 2, 1060, json!({"id": 2})), start, &mut gone)
            .unwrap();
        // Wall time alone does not time an id out while records flow...
        assert!(join.expire(start + Duration::from_millis(40)).is_empty());
        // ...the stream's time does: id 1's deadline is 1000 + 100 + 50 (and
        // input b, which sent nothing, stops holding the stream after the
        // grace).
        let later = start + Duration::from_millis(60);
        join.add(at("a", 3, 1149, json!({"id": 3})), later, &mut gone)
            .unwrap();
        assert!(gone.is_empty());
        join.add(at("a", 4, 1150, json!({"id": 4})), later, &mut gone)
            .unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].id, "1");
        assert_eq!(gone[0].missing, ["b"]);
        assert_eq!(header(&gone[0].partial, MISSING_HEADER), Some("b"));
        assert!(
            gone[0]
                .to_string()
                .contains("nothing arrived from b within 100 ms")
        );
        assert_eq!(join.pending(), 3);
    }

    #[test]
    fn a_member_further_than_the_timeout_does_not_join() {
        let mut join = buffer(10);
        let start = Instant::now();
        let mut gone = Vec::new();
        join.add(at("a", 1, 1000, json!({"id": 1})), start, &mut gone)
            .unwrap();
        let late = join.add(at("b", 1, 1101, json!({"id": 1})), start, &mut gone);
        assert!(matches!(late, Ok(Added::Waiting)), "{late:?}");
        assert_eq!(gone.len(), 1, "the first record of id 1 is given up");
        assert_eq!(gone[0].missing, ["b"]);
    }

    #[test]
    fn a_quiet_stream_gives_waiting_ids_up_by_the_wall_clock() {
        let mut join = buffer(10);
        let start = Instant::now();
        let mut gone = Vec::new();
        join.add(at("a", 1, 1000, json!({"id": 1})), start, &mut gone)
            .unwrap();
        let due = join.next_deadline().unwrap();
        assert_eq!(due, start + Duration::from_millis(150));
        assert!(join.expire(start + Duration::from_millis(149)).is_empty());
        assert_eq!(join.expire(due).len(), 1);
    }

    /// What a run gave: per id, whether it joined and from which offsets.
    fn outcomes(events: &[(Vec<Added>, Vec<Incomplete>)]) -> Vec<(String, bool, Vec<i64>)> {
        let mut all = Vec::new();
        for (added, gone) in events {
            for a in added {
                if let Added::Complete(joined) = a {
                    let id = value_of(&joined.record)["id"].to_string();
                    let offsets = joined.members.iter().map(|m| m.offset).collect();
                    all.push((id, true, offsets));
                }
            }
            for g in gone {
                let offsets = g.arrived.iter().map(|r| r.offset).collect();
                all.push((format!("\"{}\"", g.id), false, offsets));
            }
        }
        all.sort();
        all
    }

    #[test]
    fn a_replay_of_the_log_joins_exactly_as_the_live_run_did() {
        // 40 ids: the second input's record comes 10 to 400 ms after the
        // first's in event time; the timeout is 100 ms.
        let mut log = Vec::new();
        for id in 0..40i64 {
            let first = id * 37;
            log.push(at("a", id, first, json!({"id": id})));
            log.push(at("b", id, first + (id * 53) % 400 + 10, json!({"id": id})));
        }
        log.sort_by_key(|r| r.timestamp);
        let start = Instant::now();
        let run = |arrival: &dyn Fn(&KafkaRecord) -> Instant| {
            let mut join = buffer(1000);
            let mut events = Vec::new();
            for r in &log {
                let now = arrival(r);
                let mut gone = join.expire(now);
                let added = join.add(r.clone(), now, &mut gone).unwrap();
                events.push((vec![added], gone));
            }
            events.push((Vec::new(), join.expire(start + Duration::from_secs(3600))));
            outcomes(&events)
        };
        let live = run(&|r| start + Duration::from_millis(r.timestamp.unwrap() as u64));
        let replay = run(&|_| start);
        assert_eq!(live, replay);
        let joined = live.iter().filter(|(_, j, _)| *j).count();
        assert!(
            joined > 5 && joined < 35,
            "a mix of joins and timeouts: {joined}"
        );
    }

    #[test]
    fn a_completed_id_does_not_time_out_later() {
        let mut join = buffer(10);
        let start = Instant::now();
        let mut evicted = Vec::new();
        join.add(record("a", 1, json!({"id": 1})), start, &mut evicted)
            .unwrap();
        join.add(record("b", 1, json!({"id": 1})), start, &mut evicted)
            .unwrap();
        assert!(join.expire(start + Duration::from_secs(5)).is_empty());
        assert_eq!(join.next_deadline(), None);
    }

    /// A cooperative revoke of one partition: its members leave the ids
    /// waiting, the other partitions' stay, and the id still joins when the
    /// member comes again.
    #[test]
    fn forgetting_a_partition_keeps_the_members_of_the_others() {
        let inputs = vec!["a".into(), "b".into(), "c".into()];
        let mut join = JoinBuffer::new(spec(100, 10), inputs);
        let now = Instant::now();
        let mut gone = Vec::new();
        let mut add = |join: &mut JoinBuffer, topic: &str, partition: i32, offset: i64, id: i64| {
            let r = KafkaRecord {
                partition,
                ..record(topic, offset, json!({"id": id}))
            };
            join.add(r, now, &mut gone).unwrap()
        };
        add(&mut join, "a", 0, 1, 1);
        add(&mut join, "b", 1, 2, 1);
        add(&mut join, "a", 1, 3, 2);
        join.forget(&Forgotten::partitions([("a", 0)]));
        assert_eq!(join.pending(), 2, "id 1 keeps b's part, id 2 its own");
        add(&mut join, "c", 1, 4, 1);
        let Added::Complete(joined) = add(&mut join, "a", 1, 5, 1) else {
            panic!("id 1 joins once a's member comes again");
        };
        let members: Vec<(String, i32, i64)> = joined
            .members
            .iter()
            .map(|m| (m.topic.clone(), m.partition, m.offset))
            .collect();
        assert_eq!(
            members,
            [("a".into(), 1, 5), ("b".into(), 1, 2), ("c".into(), 1, 4)]
        );
        join.forget(&Forgotten::partitions([("a", 1)]));
        assert_eq!(join.pending(), 0, "id 2 had nothing else left");
        assert!(gone.is_empty(), "nothing given up: {gone:?}");
    }

    #[test]
    fn a_full_buffer_evicts_the_oldest_id() {
        let mut join = buffer(2);
        let now = Instant::now();
        let mut evicted = Vec::new();
        for id in 1..=3 {
            join.add(record("a", id, json!({"id": id})), now, &mut evicted)
                .unwrap();
        }
        assert_eq!(join.pending(), 2);
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].id, "1");
        assert!(matches!(
            evicted[0].cause,
            IncompleteCause::Evicted { max_pending: 2 }
        ));
    }

    #[test]
    fn a_record_with_more_fields_than_max_fields_is_rejected_naming_the_limit_and_the_record() {
        let mut join = buffer(10);
        let now = Instant::now();
        let mut gone = Vec::new();
        // 99 fields and 1 in `content`: at the limit (100), accepted.
        let mut at_limit: serde_json::Map<String, Value> =
            (1..98).map(|i| (format!("f{i}"), json!(i))).collect();
        at_limit.insert("id".into(), json!(1));
        at_limit.insert("content".into(), json!({"x": 1}));
        assert!(matches!(
            join.add(
                record("a", 1, Value::Object(at_limit.clone())),
                now,
                &mut gone
            ),
            Ok(Added::Waiting)
        ));
        // One more, in `content`: refused, the buffer untouched.
        at_limit.insert("content".into(), json!({"x": 1, "y": 2}));
        let rejected = join
            .add(record("a", 2, Value::Object(at_limit)), now, &mut gone)
            .unwrap_err();
        assert_eq!(rejected.kind, LIMIT_KIND);
        assert!(
            rejected
                .reason
                .contains("topic a partition 0 offset 2 (id `1`): 101 fields")
                && rejected.reason.contains("join.max_fields (100)"),
            "{}",
            rejected.reason
        );
        assert_eq!(rejected.record.offset, 2, "the record comes back whole");
        assert_eq!((join.pending(), gone.len()), (1, 0));
    }

    /// Ids 0..20 wait for input b under a budget of about five records:
    /// the oldest are given up as the budget fills, each with every record
    /// it held, and nothing is lost on the way.
    #[test]
    fn a_full_byte_budget_gives_up_the_oldest_ids_and_accounts_for_every_record() {
        let padding = "x".repeat(200);
        let value = |id: i64| json!({"id": id, "pad": padding});
        let one = {
            let r = record("a", 0, value(0));
            let (_, object) = RawObject::parse(r.value.as_deref().unwrap()).unwrap();
            held_bytes(&r, &object)
        };
        let budget = one * 5 + one / 2;
        let mut join = JoinBuffer::new(
            JoinSpec {
                max_pending_bytes: budget,
                ..spec(100_000, 1_000)
            },
            vec!["a".into(), "b".into()],
        );
        let now = Instant::now();
        let mut gone = Vec::new();
        for id in 0..20 {
            let added = join.add(record("a", id, value(id)), now, &mut gone);
            assert!(matches!(added, Ok(Added::Waiting)), "{added:?}");
            assert!(
                join.pending_bytes() <= budget,
                "{} bytes",
                join.pending_bytes()
            );
        }
        assert_eq!(join.pending(), 5);
        let given_up: Vec<i64> = gone.iter().map(|g| g.arrived[0].offset).collect();
        assert_eq!(given_up, (0..15).collect::<Vec<_>>(), "oldest first");
        for g in &gone {
            assert_eq!(
                g.cause,
                IncompleteCause::OverBudget {
                    max_pending_bytes: budget
                }
            );
            assert!(g.to_string().contains("join.max_pending_bytes"), "{g}");
        }
        // The ones still waiting join, and release what they held.
        for id in 15..20 {
            let done = join.add(record("b", id, json!({"id": id})), now, &mut gone);
            assert!(matches!(done, Ok(Added::Complete(_))), "{done:?}");
        }
        assert_eq!(
            (join.pending(), join.pending_bytes(), gone.len()),
            (0, 0, 15)
        );
    }

    #[test]
    fn a_record_larger_than_the_byte_budget_alone_is_rejected() {
        let mut join = JoinBuffer::new(
            JoinSpec {
                max_pending_bytes: 100,
                ..spec(100, 10)
            },
            vec!["a".into(), "b".into()],
        );
        let mut gone = Vec::new();
        let big = record("a", 7, json!({"id": 1, "pad": "x".repeat(100)}));
        let rejected = join.add(big, Instant::now(), &mut gone).unwrap_err();
        assert_eq!(rejected.kind, LIMIT_KIND);
        assert!(
            rejected.reason.contains("offset 7 (id `1`)")
                && rejected.reason.contains("join.max_pending_bytes (100)"),
            "{}",
            rejected.reason
        );
        assert_eq!((join.pending(), join.pending_bytes()), (0, 0));
    }

    #[test]
    fn a_duplicate_replaces_the_earlier_record_but_keeps_it_accounted() {
        let mut join = buffer(10);
        let now = Instant::now();
        let mut evicted = Vec::new();
        join.add(
            record("a", 1, json!({"id": 1, "v": "old"})),
            now,
            &mut evicted,
        )
        .unwrap();
        join.add(
            record("a", 2, json!({"id": 1, "v": "new"})),
            now,
            &mut evicted,
        )
        .unwrap();
        let Ok(Added::Complete(joined)) =
            join.add(record("b", 3, json!({"id": 1})), now, &mut evicted)
        else {
            panic!("expected completion");
        };
        assert_eq!(value_of(&joined.record)["v"], "new");
        let offsets: Vec<i64> = joined.members.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, [1, 2, 3]);
    }

    #[test]
    fn records_without_a_usable_id_are_rejected_with_the_reason() {
        let mut join = buffer(10);
        let now = Instant::now();
        let mut evicted = Vec::new();
        let cases = [
            (
                KafkaRecord::from_value("a", 1, b"not json".to_vec()),
                "not JSON",
            ),
            (record("a", 2, json!([1])), "not a JSON object"),
            (
                record("a", 3, json!({"name": "x"})),
                "join key `id` is missing",
            ),
            (
                record("a", 4, json!({"id": {"x": 1}})),
                "not a string or a number",
            ),
            (record("c", 5, json!({"id": 1})), "not an input"),
        ];
        for (input, expected) in cases {
            let rejected = join.add(input, now, &mut evicted).unwrap_err();
            assert!(rejected.reason.contains(expected), "{}", rejected.reason);
        }
        assert_eq!(join.pending(), 0);
    }

    #[test]
    fn nested_key_paths_are_followed() {
        let mut join = JoinBuffer::new(
            JoinSpec {
                key: "booking.id".into(),
                ..spec(100, 10)
            },
            vec!["a".into(), "b".into()],
        );
        let now = Instant::now();
        let mut evicted = Vec::new();
        join.add(
            record("a", 1, json!({"booking": {"id": "x"}})),
            now,
            &mut evicted,
        )
        .unwrap();
        let done = join.add(
            record("b", 1, json!({"booking": {"id": "x"}})),
            now,
            &mut evicted,
        );
        assert!(matches!(done, Ok(Added::Complete(_))));
    }
}
