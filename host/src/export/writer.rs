//! The open files of one topic's run: each partition's records written to
//! the file of their block of offsets, files finished and stored when a
//! block ends, when the staging disk needs room, and at the end of the run.
//!
//! A file is named by the offsets its part of the read covers, not by the
//! records it happened to see: the first file of a partition starts where
//! the read starts, the last ends where the read ends. Offsets can have
//! gaps (compaction, retention, transaction markers); named by its first
//! and last record instead, a re-export whose first records are gone would
//! name its file differently from the file it replaces, and leave both.

use std::collections::BTreeMap;
use std::path::PathBuf;

use arrow_schema::SchemaRef;

use super::decode::{Refusal, decode};
use super::delta::{DeltaReport, DeltaTable};
use super::error::ExportError;
use super::layout::FileNames;
use super::options::ExportOptions;
use super::partition_file::PartitionFile;
use super::resume::PartitionPlan;
use super::stored::StoredPartition;
use super::upload::{ToStore, store_all};
use super::written::WrittenFile;
use crate::kafka::ReadPlan;
use crate::record::KafkaRecord;
use crate::storage::Storage;
use crate::table::{Cell, ValueField, kafka_batch, with_value_columns};

/// Where a run's files go: files that are themselves the record of what
/// was exported, or a Delta table whose log is.
pub(super) enum Sink {
    Files(BTreeMap<i32, StoredPartition>),
    Delta(Box<DeltaTable>),
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
    cursors: BTreeMap<i32, Cursor>,
    open: BTreeMap<i32, PartitionFile>,
    /// Stored files, by partition, in offset order.
    pub written: BTreeMap<i32, Vec<WrittenFile>>,
    /// Most bytes the open files held on the staging disk at once.
    pub staged_peak: u64,
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
            cursors,
            open: BTreeMap::new(),
            written: BTreeMap::new(),
            staged_peak: 0,
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
            if let Some(open) = self.open.get(&partition).map(PartitionFile::block)
                && open != block
            {
                // A record of a later block: every offset of the open
                // file's block has been read.
                let last = self.last_of_block(partition, open);
                self.finish_and_store(&[(partition, last)])?;
            }
            if !self.open.contains_key(&partition) {
                let (block_start, _) = self.block_bounds(block);
                let file_first = block_start.max(self.cursor(partition, first.offset).next_first);
                let file = PartitionFile::create(
                    &self.staging,
                    self.topic,
                    partition,
                    block,
                    file_first.min(first.offset),
                    self.schema.clone(),
                )?;
                self.open.insert(partition, file);
            }
            let kept = self.write_chunk(partition, chunk)?;
            kept_all.extend(kept);
            self.keep_within_budgets()?;
        }
        Ok(Written {
            kept: kept_all,
            records: written,
        })
    }

    /// Writes records of the partition's open file's block.
    fn write_chunk(
        &mut self,
        partition: i32,
        chunk: &[KafkaRecord],
    ) -> Result<Vec<KafkaRecord>, ExportError> {
        let options = self.options;
        let typed = &self.typed;
        let Some(file) = self.open.get_mut(&partition) else {
            return Ok(Vec::new());
        };
        let mut kept = Vec::with_capacity(chunk.len());
        let mut cells: Vec<Vec<Cell>> = Vec::new();
        for record in chunk {
            match decode(record, options, typed) {
                Ok((record, row)) => {
                    kept.push(record);
                    cells.extend(row);
                }
                Err(Refusal::DeadLetter(reason)) => file.dead_letter(record, &reason)?,
                Err(Refusal::Unavailable(error)) => {
                    return Err(ExportError::SchemaRegistry(error));
                }
            }
        }
        let staging = &self.staging;
        let parquet_error = |e: arrow_schema::ArrowError| ExportError::Parquet {
            path: staging.clone(),
            reason: e.to_string(),
        };
        let plan = self.plan;
        let rows = kafka_batch(&kept, options.value, options.timestamps(), |p, o| {
            plan.adjusted_offset(p, o)
        })
        .map_err(parquet_error)?;
        let rows = if typed.is_empty() {
            rows
        } else {
            with_value_columns(&rows, typed, &cells).map_err(parquet_error)?
        };
        let last = chunk.last().map_or(file.last(), |r| r.offset);
        file.write(&rows, last)?;
        Ok(kept)
    }

    /// The last offset the file of `block` covers: its block's, or the
    /// read's when the read ends inside the block.
    fn last_of_block(&self, partition: i32, block: i64) -> i64 {
        let (_, block_end) = self.block_bounds(block);
        let read_end = self.cursors.get(&partition).map_or(i64::MAX, |c| c.end);
        block_end.min(read_end).saturating_sub(1)
    }

    /// Keeps the open files within the memory budget and, where the
    /// staging folder is not the storage itself, within the staging
    /// budget. Past the memory budget the largest open row groups are
    /// written out to their files, down to half of it (so this does not run
    /// after every batch once the budget is reached); a row group that
    /// would take the staging disk past its budget finishes its file
    /// instead, which is then stored. Past the staging budget, the largest
    /// files are finished and stored early, down to half of it.
    fn keep_within_budgets(&mut self) -> Result<(), ExportError> {
        let staging_budget = if self.storage.stages_elsewhere() {
            self.options.staging_budget
        } else {
            u64::MAX
        };
        let memory_budget = self.options.memory_budget.max(1);
        let mut in_memory: usize = self.open.values().map(PartitionFile::buffered).sum();
        let mut finish = Vec::new();
        if in_memory > memory_budget {
            let mut by_size: Vec<(usize, i32)> = self
                .open
                .iter()
                .map(|(partition, file)| (file.buffered(), *partition))
                .collect();
            by_size.sort_unstable_by(|a, b| b.cmp(a));
            let mut staged = self.staged_bytes();
            for (size, partition) in by_size {
                if in_memory <= memory_budget / 2 {
                    break;
                }
                let Some(file) = self.open.get_mut(&partition) else {
                    continue;
                };
                if staged.saturating_add(size as u64) > staging_budget {
                    finish.push((partition, file.last()));
                } else {
                    let before = file.staged_bytes();
                    file.flush_row_group()?;
                    staged += file.staged_bytes().saturating_sub(before);
                }
                in_memory = in_memory.saturating_sub(size);
            }
        }
        let staged = self.staged_bytes();
        self.staged_peak = self.staged_peak.max(staged);
        if staged > staging_budget {
            // Row groups the writer itself wrote out (every 64k rows) can
            // still take it past: the largest files go, down to half.
            let mut by_size: Vec<(u64, i32)> = self
                .open
                .iter()
                .filter(|(partition, _)| !finish.iter().any(|(p, _)| p == *partition))
                .map(|(partition, file)| (file.staged_bytes(), *partition))
                .collect();
            by_size.sort_unstable_by(|a, b| b.cmp(a));
            let mut total = staged;
            for (size, partition) in by_size {
                if total <= staging_budget / 2 {
                    break;
                }
                if let Some(file) = self.open.get(&partition) {
                    finish.push((partition, file.last()));
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
        self.open.values().map(PartitionFile::staged_bytes).sum()
    }

    /// Closes the given partitions' open files, each covering up to its
    /// given last offset, then stores them together (up to the run's
    /// upload concurrency at once).
    fn finish_and_store(&mut self, files: &[(i32, i64)]) -> Result<(), ExportError> {
        let mut finished = Vec::with_capacity(files.len());
        for (partition, last) in files {
            if let Some(file) = self.open.remove(partition) {
                let written = file.finish(&self.names, *last)?;
                if let Some(cursor) = self.cursors.get_mut(partition) {
                    cursor.next_first = written.last.saturating_add(1);
                }
                finished.push(written);
            }
        }
        if finished.is_empty() {
            return Ok(());
        }
        let to_store: Vec<ToStore<'_>> = finished
            .iter()
            .map(|file| ToStore {
                file,
                // A Delta table's log says which files hold a range; old
                // dead letters are not looked up there.
                had_dead_letters: match &*self.sink {
                    Sink::Files(stored) => stored
                        .get(&file.partition)
                        .is_some_and(|s| s.has_dead_letters(file.first, file.last)),
                    Sink::Delta(_) => false,
                },
            })
            .collect();
        store_all(
            self.storage,
            self.topic,
            &to_store,
            self.options.upload_concurrency,
        )?;
        for written in finished {
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

    /// Finishes every open file at the end of the read: each covers up to
    /// the end of its block or of the read, whichever comes first.
    pub fn finish_all(&mut self) -> Result<(), ExportError> {
        let files: Vec<(i32, i64)> = self
            .open
            .iter()
            .map(|(partition, file)| (*partition, self.last_of_block(*partition, file.block())))
            .collect();
        self.finish_and_store(&files)
    }
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
