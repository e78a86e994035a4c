//! The cluster's topics as a picker shows them: each name with its
//! partitions' first and next offsets, in name order, a page at a time.
//! One metadata request for the names, then the watermarks of the page's
//! partitions in two ListOffsets requests for them all, so a page costs
//! the same three round trips whatever the number of topics on it.

use std::collections::BTreeMap;

use rdkafka::consumer::Consumer;
use serde::Serialize;

use super::error::KafkaError;
use super::metadata::watermarks_of;
use super::pool::ReaderPool;

/// Topics one answer holds at most, whatever the request asks: each costs
/// its partitions' watermarks, and a cluster may have thousands.
pub const MAX_TOPICS: usize = 500;

/// Which topics, and how many.
#[derive(Debug, Clone, Default)]
pub struct TopicsQuery {
    /// Names containing this text (case-insensitive); every name when empty.
    pub contains: String,
    /// Names after this one only: the `next_after` of an earlier answer.
    pub after: Option<String>,
    /// Topics on this page, at most (capped at [`MAX_TOPICS`]).
    pub limit: usize,
    /// Include the cluster's own topics (names starting with `__`).
    pub internal: bool,
}

/// One partition's offsets: `low` is the first still stored, `high` the
/// next to be written, so `high - low` records are there (fewer after
/// compaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PartitionOffsets {
    pub partition: i32,
    pub low: i64,
    pub high: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicSummary {
    pub name: String,
    /// By partition id.
    pub partitions: Vec<PartitionOffsets>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicList {
    pub topics: Vec<TopicSummary>,
    /// Topics matching the query, this page's and the rest.
    pub matching: usize,
    /// The limit applied (the request's, or [`MAX_TOPICS`] when it asked
    /// for more).
    pub limit: usize,
    /// When more match: pass it as `after` for the next page.
    pub next_after: Option<String>,
}

/// The topics `query` asks for, through a pooled consumer of `readers`.
pub fn list_topics(readers: &ReaderPool, query: &TopicsQuery) -> Result<TopicList, KafkaError> {
    let config = readers.config();
    let limit = query.limit.min(MAX_TOPICS);
    let contains = query.contains.to_lowercase();
    readers.ask(|consumer| {
        let metadata = consumer
            .fetch_metadata(None, config.request_timeout)
            .map_err(|source| KafkaError::Client {
                brokers: config.bootstrap_servers.clone(),
                source,
            })?;
        let mut matching: BTreeMap<&str, Vec<i32>> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .filter(|t| query.internal || !t.name().starts_with("__"))
            .filter(|t| t.name().to_lowercase().contains(&contains))
            .map(|t| {
                let mut partitions: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
                partitions.sort_unstable();
                (t.name(), partitions)
            })
            .collect();
        let count = matching.len();
        if let Some(after) = &query.after {
            matching.retain(|name, _| *name > after.as_str());
        }
        let more = matching.len() > limit;
        let page: Vec<(&str, Vec<i32>)> = matching.into_iter().take(limit).collect();
        let wanted: Vec<(&str, i32)> = page
            .iter()
            .flat_map(|(name, partitions)| partitions.iter().map(|p| (*name, *p)))
            .collect();
        let marks = watermarks_of(consumer, config.request_timeout, &wanted)?;
        let next_after = more
            .then(|| page.last().map(|(name, _)| (*name).to_owned()))
            .flatten();
        let topics = page
            .into_iter()
            .map(|(name, partitions)| TopicSummary {
                name: name.to_owned(),
                partitions: partitions
                    .into_iter()
                    .filter_map(|partition| {
                        let (low, high) = *marks.get(&(name.to_owned(), partition))?;
                        Some(PartitionOffsets {
                            partition,
                            low,
                            high,
                        })
                    })
                    .collect(),
            })
            .collect();
        Ok(TopicList {
            topics,
            matching: count,
            limit,
            next_after,
        })
    })
}
