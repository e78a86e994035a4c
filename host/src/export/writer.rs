//! The open files of one topic's run: each partition's records written to
//! the files of its open unit (one file, or one per time folder its
//! records go to, all covering the same offsets), finished and stored
//! when a block of offsets ends, when the partition moves on to a newer
//! time bucket, when a file reaches its target size, age or idleness, when
//! the staging disk needs room, and at the end of the run.
//!
//! A file is named by the offsets its part of the read covers, not by the
//! records it happened to see: the first file of a partition starts where
//! the read starts, the last ends where the read ends. Offsets can have
//! gaps (compaction, retention, transaction markers); named by its first
//! and last record instead, a re-export whose first records are gone would
//! name its file differently from the file it replaces, and leave both.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use arrow_schema::SchemaRef;

use super::buckets::{Bucket, Location, place, record_time};
use super::decode::{Refusal, decode};
use super::delta::{DeltaReport, DeltaTable};
use super::error::ExportError;
use super::layout::FileNames;
use super::options::ExportOptions;
use super::partition_file::PartitionFile;
use super::ranges::{Journal, RangeFile, RangeRecord, StoredRanges, Unit};
use super::resume::PartitionPlan;
use super::stored::StoredPartition;
use super::upload::{ToStore, store_all};
use super::written::WrittenFile;
use crate::kafka::ReadPlan;
use crate::record::KafkaRecord;
use crate::storage::Storage;
use crate::table::{Cell, ValueField, kafka_batch, with_value_columns};

/// Where a run's files go: files that are themselves the record of what
/// was exported, files in time folders recorded by range records, or a
/// Delta table whose log is the record.
pub(super) enum Sink {
    Files(BTreeMap<i32, StoredPartition>),
    Ranges(Box<RangeSink>),
    Delta(Box<DeltaTable>),
}

/// The range records of a time-partitioned Parquet run (see `ranges.rs`).
pub(super) struct RangeSink {
    pub held: BTreeMap<i32, StoredRanges>,
    pub journal: Journal,
    /// A run from the group's offsets only adds ranges after the stored
    /// ones: each batch of units is recorded as soon as its files are
    /// stored. A re-export records its units at the end, with what they
    /// replace, in one decision.
    pub appends: bool,
    /// Units stored, waiting for that decision.
    pub waiting: Vec<Unit>,
    /// Units this run recorded.
    pub recorded: Vec<Unit>,
}

impl Sink {
    /// Makes what a run stored the record of what is exported, once every
    /// range it read (`done`: `(partition, end)`) is in `written`: files
    /// of earlier runs that this run's files replaced are removed, or the
    /// table's commit adds the rest and removes those. Returns how many
    /// were replaced, and what the table did.
    pub fn settle(
        &mut self,
        storage: &Storage,
        written: &BTreeMap<i32, Vec<WrittenFile>>,
        done: &[(i32, i64)],
    ) -> Result<(usize, Option<DeltaReport>), ExportError> {
        match self {
            Sink::Files(stored) => {
                let mut superseded = 0;
                for (partition, files) in written {
                    let (Some(first), Some(last)) = (files.first(), files.last()) else {
                        continue;
                    };
                    if let Some(held) = stored.get(partition) {
                        let keys: Vec<String> = files.iter().map(|f| f.key.clone()).collect();
                        superseded +=
                            held.remove_superseded(storage, first.first, last.last, &keys)?;
                    }
                }
                Ok((superseded, None))
            }
            Sink::Ranges(sink) => {
                if sink.appends || sink.waiting.is_empty() {
                    return Ok((0, None));
                }
                let mut replaces = Vec::new();
                for (partition, files) in written {
                    let (Some(first), Some(last)) = (files.first(), files.last()) else {
                        continue;
                    };
                    if let Some(held) = sink.held.get(partition) {
                        replaces.extend(held.within(storage, first.first, last.last)?);
                    }
                }
                let superseded = replaces.len();
                let units = std::mem::take(&mut sink.waiting);
                sink.journal.decide(storage, units.clone(), replaces)?;
                sink.recorded.extend(units);
                Ok((superseded, None))
            }
            Sink::Delta(table) => {
                table.commit_all(storage, done)?;
                let delta = table.report();
                Ok((delta.removed, Some(delta)))
            }
        }
    }
}

/// Where a partition's files start and end.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// The first offset of the partition's next file.
    next_first: i64,
    /// The end of the read (exclusive).
    end: i64,
    /// Records below this offset are already stored: not written again.
    write_from: i64,
    /// The newest bucket the partition has written in this run.
    newest: Option<Bucket>,
}

/// A partition's open unit: its files (one per time folder, or the one
/// file of a flat export), all covering the unit's offsets.
struct OpenUnit {
    block: i64,
    first: i64,
    files: BTreeMap<Option<Location>, PartitionFile>,
    /// The newest bucket of the records kept in the unit, by their own time.
    newest: Option<Bucket>,
    /// The time of the last record kept.
    last_time: Option<i64>,
    /// The offset of the last record handled, kept or dead-lettered.
    handled: i64,
    opened: Instant,
    touched: Instant,
}

impl OpenUnit {
    fn new(block: i64, first: i64) -> Self {
        let now = Instant::now();
        OpenUnit {
            block,
            first,
            files: BTreeMap::new(),
            newest: None,
            last_time: None,
            handled: first,
            opened: now,
            touched: now,
        }
    }

    fn buffered(&self) -> usize {
        self.files.values().map(PartitionFile::buffered).sum()
    }

    fn staged_bytes(&self) -> u64 {
        self.files.values().map(PartitionFile::staged_bytes).sum()
    }

    /// The largest file's bytes, staged and in memory.
    fn largest_file(&self) -> u64 {
        self.files
            .values()
            .map(|f| f.staged_bytes() + f.buffered() as u64)
            .max()
            .unwrap_or(0)
    }

    /// The offset of the last record handled.
    fn last(&self) -> i64 {
        self.files
            .values()
            .map(PartitionFile::last)
            .fold(self.handled, i64::max)
    }

    fn flush_row_groups(&mut self) -> Result<(), ExportError> {
        self.files
            .values_mut()
            .try_for_each(PartitionFile::flush_row_group)
    }
}

/// Where one record goes, as its topic's time layout says.
struct Placement {
    location: Option<Location>,
    late: bool,
    /// The bucket of the record's own time, and that time.
    own: Option<(Bucket, i64)>,
}

pub(super) struct TopicWriter<'a> {
    pub topic: &'a str,
    pub plan: &'a ReadPlan,
    pub storage: &'a Storage,
    pub options: &'a ExportOptions,
    pub schema: SchemaRef,
    pub typed: Vec<ValueField>,
    pub staging: PathBuf,
    pub names: FileNames,
    pub sink: &'a mut Sink,
    /// Buckets ending at or before this were complete when the run started.
    pub complete_through: Option<i64>,
    cursors: BTreeMap<i32, Cursor>,
    open: BTreeMap<i32, OpenUnit>,
    /// Stored files, by partition, in offset order.
    pub written: BTreeMap<i32, Vec<WrittenFile>>,
    /// Most bytes the open files held on the staging disk at once.
    pub staged_peak: u64,
    /// Files finished by a roll (size, age or idleness).
    pub rolled: usize,
}

/// What writing a partition's records gave.
pub(super) struct Written {
    /// The records the files keep (or already kept), values decoded: what
    /// an aggregator is given.
    pub kept: Vec<KafkaRecord>,
    /// Records written, to the files or their dead letters (the ones read
    /// again for an aggregator only are not).
    pub records: u64,
}

impl<'a> TopicWriter<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        topic: &'a str,
        plan: &'a ReadPlan,
        storage: &'a Storage,
        options: &'a ExportOptions,
        (typed, schema): (Vec<ValueField>, SchemaRef),
        staging: PathBuf,
        names: FileNames,
        sink: &'a mut Sink,
        partitions: &[PartitionPlan],
    ) -> Self {
        let cursors = partitions
            .iter()
            .map(|p| {
                let cursor = Cursor {
                    next_first: p.write_from.max(p.read.start),
                    end: p.read.end,
                    write_from: p.write_from,
                    newest: None,
                };
                (p.read.partition, cursor)
            })
            .collect();
        TopicWriter {
            topic,
            plan,
            storage,
            options,
            schema,
            typed,
            staging,
            names,
            sink,
            complete_through: None,
            cursors,
            open: BTreeMap::new(),
            written: BTreeMap::new(),
            staged_peak: 0,
            rolled: 0,
        }
    }

    fn block_size(&self) -> i64 {
        i64::try_from(self.options.max_rows_per_file.max(1)).unwrap_or(i64::MAX)
    }

    /// The offsets of block `block`: `[start, end)`.
    fn block_bounds(&self, block: i64) -> (i64, i64) {
        let size = self.block_size();
        let start = block.saturating_mul(size);
        (start, start.saturating_add(size))
    }

    /// The cursor of `partition`; a partition the plan did not name (it
    /// cannot happen with a reader of the plan's ranges) starts at its
    /// first record.
    fn cursor(&mut self, partition: i32, first: i64) -> &mut Cursor {
        self.cursors.entry(partition).or_insert(Cursor {
            next_first: first,
            end: i64::MAX,
            write_from: i64::MIN,
            newest: None,
        })
    }

    /// Writes one partition's records (in offset order).
    pub fn write(
        &mut self,
        partition: i32,
        records: Vec<KafkaRecord>,
    ) -> Result<Written, ExportError> {
        let block_size = self.block_size();
        let mut kept_all = Vec::with_capacity(records.len());
        let Some(first) = records.first() else {
            return Ok(Written {
                kept: kept_all,
                records: 0,
            });
        };
        let write_from = self.cursor(partition, first.offset).write_from;
        let stored_already = records.partition_point(|r| r.offset < write_from);
        let (already, mut rest) = records.split_at(stored_already);
        let written = rest.len() as u64;
        // Stored by a run that failed before its aggregate was: decoded
        // for the aggregator as the files keep them, not written again.
        for record in already {
            match decode(record, self.options, &self.typed) {
                Ok((decoded, _)) => kept_all.push(decoded),
                Err(Refusal::DeadLetter(_)) => {} // in that file's dead letters
                Err(Refusal::Unavailable(error)) => {
                    return Err(ExportError::SchemaRegistry(error));
                }
            }
        }
        while let Some(first) = rest.first() {
            let block = first.offset.div_euclid(block_size);
            let split = rest
                .iter()
                .position(|r| r.offset.div_euclid(block_size) != block)
                .unwrap_or(rest.len());
            let (chunk, after) = rest.split_at(split);
            rest = after;
            if let Some(open) = self.open.get(&partition).map(|u| u.block)
                && open != block
            {
                // A record of a later block: every offset of the open
                // unit's block has been read.
                let last = self.last_of_block(partition, open);
                self.finish_and_store(&[(partition, last)])?;
            }
            self.open_unit(partition, block, first.offset);
            let kept = self.write_chunk(partition, block, chunk)?;
            kept_all.extend(kept);
            self.keep_within_budgets()?;
        }
        Ok(Written {
            kept: kept_all,
            records: written,
        })
    }

    /// Opens the partition's unit of `block`, unless one is open, starting
    /// where the partition's files go on (or at `offset`, its next record).
    fn open_unit(&mut self, partition: i32, block: i64, offset: i64) {
        if self.open.contains_key(&partition) {
            return;
        }
        let (block_start, _) = self.block_bounds(block);
        let first = block_start
            .max(self.cursor(partition, offset).next_first)
            .min(offset);
        self.open.insert(partition, OpenUnit::new(block, first));
    }

    /// Where `record` goes: no folder for a flat export; else the folder of
    /// its time's bucket, or where the late-data policy puts a record of a
    /// bucket already complete. A record whose time cannot be read is the
    /// record's fault: the reason makes it a dead letter.
    fn place(&self, partition: i32, record: &KafkaRecord) -> Result<Placement, String> {
        let Some(layout) = &self.options.time else {
            return Ok(Placement {
                location: None,
                late: false,
                own: None,
            });
        };
        let time = record_time(
            record.timestamp,
            record.value.as_deref(),
            layout.field.as_deref(),
        )?;
        let own = layout
            .by
            .bucket(time)
            .ok_or_else(|| format!("its time ({time} ms) is outside the years 0001 to 9999"))?;
        let current = self.cursors.get(&partition).and_then(|c| c.newest);
        let (location, late) = place(layout.by, layout.late, own, self.complete_through, current);
        Ok(Placement {
            location: Some(location),
            late,
            own: Some((own, time)),
        })
    }

    /// Where a dead letter goes: the folder of its Kafka timestamp (its
    /// value may be what could not be read).
    fn dead_letter_location(&self, record: &KafkaRecord) -> Option<Location> {
        let layout = self.options.time.as_ref()?;
        let bucket = layout
            .by
            .bucket(record.timestamp.unwrap_or(0))
            .or_else(|| layout.by.bucket(0))?;
        Some(Location {
            bucket,
            late: false,
        })
    }

    /// The open file of the partition's unit for `location`, created when
    /// the unit has none there yet.
    fn file(
        &mut self,
        partition: i32,
        location: Option<Location>,
    ) -> Result<&mut PartitionFile, ExportError> {
        let unit = self
            .open
            .get_mut(&partition)
            .ok_or_else(|| ExportError::Parquet {
                path: self.staging.clone(),
                reason: format!("partition {partition} has no open unit (a bug)"),
            })?;
        if !unit.files.contains_key(&location) {
            let mut file = PartitionFile::create_at(
                &self.staging,
                self.topic,
                partition,
                (unit.block, unit.first),
                self.schema.clone(),
                location,
            )?;
            if let (Some(layout), Some(at)) = (&self.options.time, location) {
                file.note("sluice.partition_by", layout.by.name());
                file.note("sluice.bucket", layout.by.path(at.bucket));
                file.note("sluice.late_data", layout.late.name());
            }
            unit.files.insert(location, file);
        }
        unit.files
            .get_mut(&location)
            .ok_or_else(|| ExportError::Parquet {
                path: self.staging.clone(),
                reason: "a file just opened is gone (a bug)".into(),
            })
    }

    /// Writes records of the partition's open unit's block. A kept record
    /// whose own bucket is newer than every one the unit holds ends the
    /// unit before it: in time order, a unit then holds one bucket, and
    /// the units of a bucket are merged into one file once it is complete.
    fn write_chunk(
        &mut self,
        partition: i32,
        block: i64,
        chunk: &[KafkaRecord],
    ) -> Result<Vec<KafkaRecord>, ExportError> {
        // Kept records, and for each its location and whether it was placed
        // late, and its typed cells; those from `written` on are not in a
        // file yet.
        let mut kept: Vec<KafkaRecord> = Vec::with_capacity(chunk.len());
        let mut places: Vec<(Option<Location>, bool)> = Vec::with_capacity(chunk.len());
        let mut cells: Vec<Vec<Cell>> = Vec::new();
        let mut written = 0;
        for record in chunk {
            let refused = match decode(record, self.options, &self.typed) {
                Ok((decoded, row)) => match self.place(partition, &decoded) {
                    Ok(placement) => {
                        if let Some((own, time)) = placement.own {
                            let newest = self.open.get(&partition).and_then(|u| u.newest);
                            if newest.is_some_and(|n| own > n) {
                                let typed = if cells.is_empty() {
                                    &[][..]
                                } else {
                                    &cells[written..]
                                };
                                self.write_rows(
                                    partition,
                                    &kept[written..],
                                    &places[written..],
                                    typed,
                                )?;
                                written = kept.len();
                                self.finish_and_store(&[(partition, record.offset - 1)])?;
                                self.open_unit(partition, block, record.offset);
                            }
                            if let Some(unit) = self.open.get_mut(&partition) {
                                unit.newest = unit.newest.max(Some(own));
                                unit.last_time = Some(time);
                            }
                            if let Some(cursor) = self.cursors.get_mut(&partition) {
                                cursor.newest = cursor.newest.max(Some(own));
                            }
                        }
                        cells.extend(row);
                        places.push((placement.location, placement.late));
                        kept.push(decoded);
                        None
                    }
                    Err(reason) => Some(reason),
                },
                Err(Refusal::DeadLetter(reason)) => Some(reason),
                Err(Refusal::Unavailable(error)) => {
                    return Err(ExportError::SchemaRegistry(error));
                }
            };
            if let Some(reason) = refused {
                let location = self.dead_letter_location(record);
                self.file(partition, location)?
                    .dead_letter(record, &reason)?;
            }
        }
        let typed = if cells.is_empty() {
            &[][..]
        } else {
            &cells[written..]
        };
        self.write_rows(partition, &kept[written..], &places[written..], typed)?;
        if let (Some(unit), Some(last)) = (self.open.get_mut(&partition), chunk.last()) {
            unit.touched = Instant::now();
            // Every record of the chunk was handled, kept or not.
            unit.handled = unit.handled.max(last.offset);
        }
        Ok(kept)
    }

    /// Writes kept records (with their places and typed cells) to the
    /// files of their locations: as they are when they share one (a flat
    /// export, or records in time order), else grouped by location.
    fn write_rows(
        &mut self,
        partition: i32,
        records: &[KafkaRecord],
        places: &[(Option<Location>, bool)],
        cells: &[Vec<Cell>],
    ) -> Result<(), ExportError> {
        let (Some((first, _)), Some(last)) = (places.first(), records.last()) else {
            return Ok(());
        };
        if places.iter().all(|(l, _)| l == first) {
            let late = places.iter().filter(|(_, late)| *late).count() as u64;
            return self.write_batch(partition, *first, records, cells, (late, last.offset));
        }
        let mut by_location: BTreeMap<Option<Location>, Vec<usize>> = BTreeMap::new();
        for (index, (location, _)) in places.iter().enumerate() {
            by_location.entry(*location).or_default().push(index);
        }
        for (location, indices) in by_location {
            let group: Vec<KafkaRecord> = indices.iter().map(|i| records[*i].clone()).collect();
            let typed: Vec<Vec<Cell>> = if cells.is_empty() {
                Vec::new()
            } else {
                indices.iter().map(|i| cells[*i].clone()).collect()
            };
            let late = indices.iter().filter(|i| places[**i].1).count() as u64;
            let last = group.last().map_or(last.offset, |r| r.offset);
            self.write_batch(partition, location, &group, &typed, (late, last))?;
        }
        Ok(())
    }

    /// Writes records of one location as a batch of rows to its file;
    /// `late` of them were placed late, `last` is the last one's offset.
    fn write_batch(
        &mut self,
        partition: i32,
        location: Option<Location>,
        records: &[KafkaRecord],
        cells: &[Vec<Cell>],
        (late, last): (u64, i64),
    ) -> Result<(), ExportError> {
        let staging = self.staging.clone();
        let parquet_error = |e: arrow_schema::ArrowError| ExportError::Parquet {
            path: staging.clone(),
            reason: e.to_string(),
        };
        let plan = self.plan;
        let rows = kafka_batch(
            records,
            self.options.value,
            self.options.timestamps(),
            |p, o| plan.adjusted_offset(p, o),
        )
        .map_err(parquet_error)?;
        let rows = if self.typed.is_empty() {
            rows
        } else {
            with_value_columns(&rows, &self.typed, cells).map_err(parquet_error)?
        };
        let file = self.file(partition, location)?;
        file.write(&rows, last)?;
        file.add_late(late);
        Ok(())
    }

    /// The last offset the unit of `block` covers: its block's, or the
    /// read's when the read ends inside the block.
    fn last_of_block(&self, partition: i32, block: i64) -> i64 {
        let (_, block_end) = self.block_bounds(block);
        let read_end = self.cursors.get(&partition).map_or(i64::MAX, |c| c.end);
        block_end.min(read_end).saturating_sub(1)
    }

    /// Finishes and stores the units whose largest file reached the target
    /// size, that have been open for the longest age allowed, or that no
    /// record reached for the idle time: each covers up to the last record
    /// it handled, and the partition's next unit starts after it.
    pub fn roll_due(&mut self) -> Result<(), ExportError> {
        let options = self.options;
        let due: Vec<(i32, i64)> = self
            .open
            .iter()
            .filter(|(_, unit)| {
                unit.largest_file() >= options.target_file_bytes
                    || unit.opened.elapsed() >= options.max_file_age
                    || unit.touched.elapsed() >= options.max_file_idle
            })
            .map(|(partition, unit)| (*partition, unit.last()))
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        tracing::debug!(topic = self.topic, units = due.len(), "rolling files");
        self.rolled += due.len();
        self.finish_and_store(&due)
    }

    /// Keeps the open files within the memory budget and, where the
    /// staging folder is not the storage itself, within the staging
    /// budget. Past the memory budget the largest open row groups are
    /// written out to their files, down to half of it (so this does not run
    /// after every batch once the budget is reached); a row group that
    /// would take the staging disk past its budget finishes its unit
    /// instead, which is then stored. Past the staging budget, the largest
    /// units are finished and stored early, down to half of it.
    fn keep_within_budgets(&mut self) -> Result<(), ExportError> {
        let staging_budget = if self.storage.stages_elsewhere() {
            self.options.staging_budget
        } else {
            u64::MAX
        };
        let memory_budget = self.options.memory_budget.max(1);
        let mut in_memory: usize = self.open.values().map(OpenUnit::buffered).sum();
        let mut finish = Vec::new();
        if in_memory > memory_budget {
            let mut by_size: Vec<(usize, i32)> = self
                .open
                .iter()
                .map(|(partition, unit)| (unit.buffered(), *partition))
                .collect();
            by_size.sort_unstable_by(|a, b| b.cmp(a));
            let mut staged = self.staged_bytes();
            for (size, partition) in by_size {
                if in_memory <= memory_budget / 2 {
                    break;
                }
                let Some(unit) = self.open.get_mut(&partition) else {
                    continue;
                };
                if staged.saturating_add(size as u64) > staging_budget {
                    finish.push((partition, unit.last()));
                } else {
                    let before = unit.staged_bytes();
                    unit.flush_row_groups()?;
                    staged += unit.staged_bytes().saturating_sub(before);
                }
                in_memory = in_memory.saturating_sub(size);
            }
        }
        let staged = self.staged_bytes();
        self.staged_peak = self.staged_peak.max(staged);
        if staged > staging_budget {
            // Row groups the writer itself wrote out (every 64k rows) can
            // still take it past: the largest units go, down to half.
            let mut by_size: Vec<(u64, i32)> = self
                .open
                .iter()
                .filter(|(partition, _)| !finish.iter().any(|(p, _)| p == *partition))
                .map(|(partition, unit)| (unit.staged_bytes(), *partition))
                .collect();
            by_size.sort_unstable_by(|a, b| b.cmp(a));
            let mut total = staged;
            for (size, partition) in by_size {
                if total <= staging_budget / 2 {
                    break;
                }
                if let Some(unit) = self.open.get(&partition) {
                    finish.push((partition, unit.last()));
                    total = total.saturating_sub(size);
                }
            }
        }
        if finish.is_empty() {
            return Ok(());
        }
        tracing::info!(
            topic = self.topic,
            staged_bytes = staged,
            budget = staging_budget,
            files = finish.len(),
            "staging disk at its budget: storing the largest files early"
        );
        self.finish_and_store(&finish)
    }

    /// Bytes the open files hold on the staging disk.
    fn staged_bytes(&self) -> u64 {
        self.open.values().map(OpenUnit::staged_bytes).sum()
    }

    /// Closes the given partitions' open units, each covering up to its
    /// given last offset, then stores their files together (up to the
    /// run's upload concurrency at once). A time-partitioned run names them
    /// in its journal first and records their ranges once they are stored.
    fn finish_and_store(&mut self, units: &[(i32, i64)]) -> Result<(), ExportError> {
        let mut finished: Vec<Vec<WrittenFile>> = Vec::with_capacity(units.len());
        for (partition, last) in units {
            let Some(unit) = self.open.remove(partition) else {
                continue;
            };
            let mut files = Vec::with_capacity(unit.files.len());
            for (_, file) in unit.files {
                let mut written = file.finish(&self.names, *last)?;
                written.last_time = unit.last_time;
                files.push(written);
            }
            let covered = files.iter().map(|f| f.last).max().unwrap_or(*last);
            if let Some(cursor) = self.cursors.get_mut(partition) {
                cursor.next_first = covered.saturating_add(1);
            }
            finished.push(files);
        }
        if finished.iter().all(Vec::is_empty) {
            return Ok(());
        }
        let units: Vec<Unit> = match &*self.sink {
            Sink::Ranges(sink) => finished
                .iter()
                .filter_map(|files| unit_of(files, sink.journal.run(), &self.names))
                .collect(),
            _ => Vec::new(),
        };
        let entry = match &mut *self.sink {
            Sink::Ranges(sink) => Some(sink.journal.storing(self.storage, &units)?),
            _ => None,
        };
        let to_store: Vec<ToStore<'_>> = finished
            .iter()
            .flatten()
            .map(|file| ToStore {
                file,
                // A Delta table's log says which files hold a range, and a
                // time-partitioned run's names are its own; only a flat
                // export's dead letters can be left by an earlier one.
                had_dead_letters: match &*self.sink {
                    Sink::Files(stored) => stored
                        .get(&file.partition)
                        .is_some_and(|s| s.has_dead_letters(file.first, file.last)),
                    Sink::Ranges(_) | Sink::Delta(_) => false,
                },
            })
            .collect();
        store_all(
            self.storage,
            self.topic,
            &to_store,
            self.options.upload_concurrency,
        )?;
        crate::crash_point!("export::after-store");
        if let (Sink::Ranges(sink), Some(entry)) = (&mut *self.sink, entry) {
            if sink.appends {
                sink.journal.recorded(self.storage, &entry, &units)?;
                sink.recorded.extend(units);
            } else {
                sink.waiting.extend(units);
            }
        }
        for written in finished.into_iter().flatten() {
            if let Sink::Delta(table) = &mut *self.sink {
                table.stored(&written);
            }
            self.written
                .entry(written.partition)
                .or_default()
                .push(written);
        }
        Ok(())
    }

    /// Commits to the Delta table the files finished so far (a block of
    /// offsets filled mid-run), so that a run cut short keeps them.
    pub fn commit_ready(&mut self) -> Result<(), ExportError> {
        if let Sink::Delta(table) = &mut *self.sink {
            table.commit_ready(self.storage)?;
        }
        Ok(())
    }

    /// Finishes every open unit at the end of the read: each covers up to
    /// the end of its block or of the read, whichever comes first.
    pub fn finish_all(&mut self) -> Result<(), ExportError> {
        let units: Vec<(i32, i64)> = self
            .open
            .iter()
            .map(|(partition, unit)| (*partition, self.last_of_block(*partition, unit.block)))
            .collect();
        self.finish_and_store(&units)
    }
}

/// The unit (and its range record) of one partition's finished files.
fn unit_of(files: &[WrittenFile], run: &str, names: &FileNames) -> Option<Unit> {
    let first = files.first()?;
    let by = names.partition_by()?;
    Some(Unit {
        partition: first.partition,
        first: first.first,
        last: files.iter().map(|f| f.last).max().unwrap_or(first.last),
        record: RangeRecord {
            run: run.to_owned(),
            files: files.iter().map(|f| RangeFile::of(f, by)).collect(),
            last_time: first.last_time,
            compacted: false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ExportFormat;
    use crate::export::delta::Snapshot;
    use crate::export::layout;
    use crate::kafka::{PartitionRange, Start};
    use crate::table::kafka_schema;

    /// One run over partition 0 of topic `t`: `offsets` read of the range
    /// `start..end` (a plan from the earliest offsets, a re-export), each
    /// file `block` offsets at most; what it stored, settled as
    /// `export_topic` settles it.
    fn run(
        storage: &Storage,
        format: ExportFormat,
        (start, end): (i64, i64),
        offsets: impl Iterator<Item = i64>,
        run_id: &str,
    ) -> Vec<WrittenFile> {
        let plan = ReadPlan::earliest("t");
        let mut options = ExportOptions::new(run_id);
        options.format = format;
        options.max_rows_per_file = 1_000;
        let staging = storage.staging_dir(run_id).join("t");
        let base = kafka_schema(options.value, options.timestamps());
        let (mut sink, names, columns) = match format {
            ExportFormat::Parquet => (
                Sink::Files(BTreeMap::from([(
                    0,
                    StoredPartition::load(storage, "t", 0).unwrap(),
                )])),
                FileNames::Ranges,
                (Vec::new(), base),
            ),
            ExportFormat::Delta => {
                let mut table = DeltaTable::open(storage, &plan, run_id, &staging, 10).unwrap();
                let columns = table.columns(&base, &[]).unwrap();
                let names = FileNames::Delta {
                    run_id: run_id.into(),
                };
                (Sink::Delta(Box::new(table)), names, columns)
            }
        };
        let range = PartitionRange {
            partition: 0,
            start,
            end,
            low: 0,
            high: end,
        };
        let partitions = [PartitionPlan {
            read: range,
            write_from: start,
        }];
        let mut writer = TopicWriter::new(
            "t",
            &plan,
            storage,
            &options,
            columns,
            staging,
            names,
            &mut sink,
            &partitions,
        );
        let records: Vec<KafkaRecord> = offsets
            .map(|o| KafkaRecord::from_value("t", o, format!("{{\"o\":{o}}}").into_bytes()))
            .collect();
        writer.write(0, records).unwrap();
        writer.finish_all().unwrap();
        let written = std::mem::take(&mut writer.written);
        drop(writer);
        sink.settle(storage, &written, &[(0, end)]).unwrap();
        assert!(matches!(plan.start, Start::Earliest));
        written.into_values().flatten().collect()
    }

    fn ranges(files: &[WrittenFile]) -> Vec<(i64, i64)> {
        files.iter().map(|f| (f.first, f.last)).collect()
    }

    /// A re-export whose first records are gone (compaction, or retention
    /// between the plan and the read) names its file from where the read
    /// starts, so it replaces the file it re-exports instead of lying
    /// beside it, and the offsets in neither file are stored twice.
    #[test]
    fn a_re_export_whose_first_and_last_records_are_gone_replaces_the_old_file() {
        let root = tempfile::tempdir().unwrap();
        let storage = Storage::open(root.path().to_str().unwrap(), &Default::default()).unwrap();
        let first = run(&storage, ExportFormat::Parquet, (0, 100), 0..100, "run-1");
        assert_eq!(ranges(&first), [(0, 99)]);
        // Offsets 0-9 and 95-99 are gone now.
        let again = run(&storage, ExportFormat::Parquet, (0, 100), 10..95, "run-2");
        assert_eq!(ranges(&again), [(0, 99)], "named by the range read");
        assert_eq!(
            storage.list(&layout::data_dir("t", 0)).unwrap(),
            [layout::data_key("t", 0, 0, 99)],
            "one file: the old one replaced"
        );
    }

    #[test]
    fn a_delta_re_export_whose_first_records_are_gone_removes_the_old_file_in_its_commit() {
        let root = tempfile::tempdir().unwrap();
        let storage = Storage::open(root.path().to_str().unwrap(), &Default::default()).unwrap();
        run(&storage, ExportFormat::Delta, (0, 100), 0..100, "run-1");
        let again = run(&storage, ExportFormat::Delta, (0, 100), 10..100, "run-2");
        assert_eq!(ranges(&again), [(0, 99)]);
        let staging = root.path().join("snapshot");
        let snapshot = Snapshot::load(&storage, "t", &staging).unwrap();
        let live: Vec<(i64, i64, String)> = snapshot
            .files_of(0)
            .into_iter()
            .map(|f| (f.first, f.last, f.key))
            .collect();
        assert_eq!(live.len(), 1, "{live:?}");
        assert!(live[0].2.contains("run-2"), "{live:?}");
    }

    /// Files of one partition cover its read without gaps or overlaps,
    /// blocks of offsets with no records included, whatever records the
    /// partition still has.
    #[test]
    fn files_cover_the_read_from_block_to_block() {
        let root = tempfile::tempdir().unwrap();
        let storage = Storage::open(root.path().to_str().unwrap(), &Default::default()).unwrap();
        // Blocks of 1,000: records in blocks 0 (from 500), 2 and 3 (to
        // 3,199); none in block 1; the read is 500..3,500.
        let offsets = (500..900).chain(2_100..2_200).chain(3_000..3_200);
        let files = run(
            &storage,
            ExportFormat::Parquet,
            (500, 3_500),
            offsets,
            "run-1",
        );
        assert_eq!(ranges(&files), [(500, 999), (2_000, 2_999), (3_000, 3_499)]);
    }
}
