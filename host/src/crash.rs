//! Named points where a test build crashes or pauses the process, to show
//! that a crash there loses and repeats nothing. Compiled only with the
//! `failpoints` feature (which the test crate turns on); a release build
//! has none. `FAILPOINTS="export::before-commit=return"` aborts the process
//! at that point, `=sleep(2000)` pauses it (for a test to SIGKILL), and the
//! `fail` crate's other actions work too (`2*off->return`: the third time).

/// Aborts (or pauses) here when `FAILPOINTS` says so.
#[macro_export]
#[doc(hidden)]
macro_rules! crash_point {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        {
            $crate::crash::from_env();
            if fail::eval($name, |_| ()).is_some() {
                tracing::warn!(point = $name, "crashing here, as FAILPOINTS asks");
                std::process::abort();
            }
        }
    };
}

/// Reads `FAILPOINTS` once per process.
#[cfg(feature = "failpoints")]
pub fn from_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // The scenario would undo the configuration when dropped; it lives as
    // long as the process.
    ONCE.call_once(|| std::mem::forget(fail::FailScenario::setup()));
}

/// Partitions whose records below an offset count as deleted, set by
/// [`delete_below`] (or the `kafka::deleted-below` failpoint).
#[cfg(feature = "failpoints")]
static DELETED_BELOW: std::sync::Mutex<std::collections::BTreeMap<(String, i32), i64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Makes `topic` partition `partition` answer `offset` as its earliest
/// offset, as if retention had deleted every record below it: the test
/// broker (tansu) cannot delete records. Every read plan, fetch and search
/// then sees the partition as a real cluster would after retention.
#[cfg(feature = "failpoints")]
pub fn delete_below(topic: &str, partition: i32, offset: i64) {
    if let Ok(mut deleted) = DELETED_BELOW.lock() {
        deleted.insert((topic.to_owned(), partition), offset);
    }
}

/// `(low, high)` as the cluster would answer after [`delete_below`], or,
/// in a process a test starts (the `sluice` binary),
/// `FAILPOINTS="kafka::deleted-below=return(topic/partition@offset)"`.
#[cfg(feature = "failpoints")]
pub fn watermarks_after_deletes(
    topic: &str,
    partition: i32,
    (low, high): (i64, i64),
) -> (i64, i64) {
    from_env();
    let configured = (|| -> Option<String> {
        fail::fail_point!("kafka::deleted-below", |arg| arg);
        None
    })();
    let from_env = configured.and_then(|all| {
        all.split(',').find_map(|one| {
            let (at, offset) = one.split_once('@')?;
            let (named, p) = at.rsplit_once('/')?;
            (named == topic && p.parse::<i32>().ok()? == partition)
                .then(|| offset.parse::<i64>().ok())?
        })
    });
    let set = DELETED_BELOW
        .lock()
        .ok()
        .and_then(|d| d.get(&(topic.to_owned(), partition)).copied());
    match set.or(from_env) {
        Some(below) => (low.max(below.min(high)), high),
        None => (low, high),
    }
}
