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
use super::delta::DeltaTable;
use super::error::ExportError;
use super::layout::FileNames;
use super::partition_file::{PartitionFile, WrittenFile};
use super::resume::PartitionPlan;
use super::stored::StoredPartition;
use super::topic::ExportOptions;
use super::upload::{ToStore, store_all};
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

    /// Keeps the open files within the memory budget (row groups written
    /// out) and, where the staging folder is not the storage itself,
    /// within the staging budget (the largest file finished early).
    fn keep_within_budgets(&mut self) -> Result<(), ExportError> {
        self.keep_within_memory()?;
        let staged = self.staged_bytes();
        self.staged_peak = self.staged_peak.max(staged);
        if !self.storage.stages_elsewhere() || staged <= self.options.staging_budget {
            return Ok(());
        }
        // Finish the largest files, down to half the budget, so this does
        // not run again after the next batch.
        let mut by_size: Vec<(u64, i32)> = self
            .open
            .iter()
            .map(|(partition, file)| (file.staged_bytes(), *partition))
            .collect();
        by_size.sort_unstable_by(|a, b| b.cmp(a));
        let mut total = staged;
        let mut finish = Vec::new();
        for (size, partition) in by_size {
            if total <= self.options.staging_budget / 2 {
                break;
            }
            if let Some(file) = self.open.get(&partition) {
                finish.push((partition, file.last()));
                total = total.saturating_sub(size);
            }
        }
        tracing::info!(
            topic = self.topic,
            staged_bytes = staged,
            budget = self.options.staging_budget,
            files = finish.len(),
            "staging past its budget: storing the largest files early"
        );
        self.finish_and_store(&finish)
    }

    /// Writes out the largest open row groups while together they hold
    /// more than the budget, down to half of it (so this does not run after
    /// every batch once the budget is reached).
    fn keep_within_memory(&mut self) -> Result<(), ExportError> {
        let budget = self.options.memory_budget.max(1);
        let mut total: usize = self.open.values().map(PartitionFile::buffered).sum();
        if total <= budget {
            return Ok(());
        }
        let mut by_size: Vec<(usize, i32)> = self
            .open
            .iter()
            .map(|(partition, file)| (file.buffered(), *partition))
            .collect();
        by_size.sort_unstable_by(|a, b| b.cmp(a));
        for (size, partition) in by_size {
            if total <= budget / 2 {
                break;
            }
            if let Some(file) = self.open.get_mut(&partition) {
                file.flush_row_group()?;
                total = total.saturating_sub(size);
            }
        }
        Ok(())
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
