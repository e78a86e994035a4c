//! One import of a folder into a topic at a time: two would each rewrite
//! the progress file from what they read, and one would undo the other's
//! record (and repeat its rows). The importer holds a lease, the file
//! `_sluice_import/<topic>.lock` in the imported folder: who holds it and
//! until when (wall-clock time).
//!
//! - Taken with a compare-and-swap ([`Storage::swap`](crate::storage::Storage::swap)): created where there
//!   is none, or written over a released or expired one only if it is
//!   still the version read. Of two importers starting at once exactly one
//!   gets it; the other sees it held.
//! - A lease held by another import is watched until it expires: renewed
//!   meanwhile means that import is alive (refused, [`ImportError::Busy`]);
//!   expired unrenewed means it died (taken over). So after a crash, even
//!   SIGKILL, the next run takes over within one lease length (30 s by
//!   default) instead of being refused.
//! - Renewed by a thread of its own every third of its length, whatever the
//!   import is doing (a long file check included), with a swap on the
//!   version it last wrote. A renewal that finds another version means the
//!   lease was taken over: the import is told by [`ImportLease::held`],
//!   which it asks before producing a chunk and before recording progress.
//!   So does a lease left unrenewed for its length (the store did not
//!   answer), as a taker's clock would see it expired by then.
//! - Released by a swap on its own version (never a delete): a lease
//!   another import took over is left alone.
//!
//! Clocks: the holder counts its lease from when it sent the renewal
//! (monotonic); a taker compares the expiry written in the file with its
//! own wall clock. Machines whose clocks disagree by more than a fraction
//! of the lease length (NTP keeps them within milliseconds) could take
//! over early; the progress file's own swap (`ledger.rs`) still keeps a
//! late writer from undoing the other's record.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::error::ImportError;
use super::ledger::PROGRESS_DIR;
use super::source::Source;
use crate::storage::AzureCredentials;
use crate::storage::Version;

/// How long a lease lasts unrenewed (and so how long an import that died
/// keeps the next one waiting, at most).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// The shortest lease taken: renewals are a third of it apart.
const SHORTEST_LEASE: Duration = Duration::from_millis(300);

/// The lease of `topic`'s import of a folder, relative to the import URL.
pub fn lease_key(topic: &str) -> String {
    format!("{PROGRESS_DIR}/{topic}.lock")
}

/// The lease file's content.
#[derive(Debug, Serialize, Deserialize)]
struct LeaseRecord {
    /// The import holding it; none once released.
    owner: Option<String>,
    /// Milliseconds since the Unix epoch after which another import may
    /// take it over.
    expires_at_ms: u64,
}

impl LeaseRecord {
    fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    fn held_by(owner: &str, length: Duration) -> Bytes {
        let length_ms = u64::try_from(length.as_millis()).unwrap_or(u64::MAX);
        Self::bytes(&LeaseRecord {
            owner: Some(owner.to_owned()),
            expires_at_ms: now_ms().saturating_add(length_ms),
        })
    }

    fn released() -> Bytes {
        Self::bytes(&LeaseRecord {
            owner: None,
            expires_at_ms: 0,
        })
    }

    fn bytes(&self) -> Bytes {
        // A struct of an optional string and a number always serializes.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Held by someone, and not expired at `now_ms`.
    fn live(&self, now_ms: u64) -> bool {
        self.owner.is_some() && self.expires_at_ms > now_ms
    }
}

/// This import's lease; renewed until released or dropped.
pub struct ImportLease {
    held: Arc<Held>,
    /// Dropping it stops the renewals.
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

/// What the import and its renewing thread share.
struct Held {
    source: Source,
    key: String,
    owner: String,
    length: Duration,
    state: Mutex<State>,
}

struct State {
    /// The lease file as this import last wrote it.
    version: Version,
    /// This import may act as the holder until then: when its last
    /// successful renewal was sent, plus the length.
    valid_until: Instant,
    /// Why the lease is no longer this import's.
    lost: Option<String>,
}

impl ImportLease {
    /// Takes the lease of importing the folder `url` into `topic`, for
    /// `length` at a time (renewed every third of it until released).
    /// Waits while a lease held by another import may still expire
    /// unrenewed (at most `length` and a third): a taker after a crash
    /// does not fail.
    pub fn take(
        url: &str,
        azure: &AzureCredentials,
        topic: &str,
        length: Duration,
    ) -> Result<Self, ImportError> {
        Self::take_on(&Source::open(url, azure)?, topic, length)
    }

    pub(crate) fn take_on(
        source: &Source,
        topic: &str,
        length: Duration,
    ) -> Result<Self, ImportError> {
        let length = length.max(SHORTEST_LEASE);
        let key = lease_key(topic);
        let location = || source.describe(&key);
        let owner = format!(
            "{}-{}",
            std::process::id(),
            crate::export::new_run_id().trim_start_matches("run-")
        );
        // A lease seen by a taker with the holder's settings expires within
        // `length`, and is renewed within a third of it if its holder lives:
        // wait that long for one or the other.
        let give_up = Instant::now() + length + length / 3;
        // The version of a live lease seen earlier: changed means renewed.
        let mut watched: Option<Version> = None;
        loop {
            let (bytes, version) = source.storage.get_versioned(&key)?;
            let record = bytes
                .map(|bytes| LeaseRecord::parse(&bytes))
                .transpose()
                .map_err(|e| ImportError::BadLease {
                    location: location(),
                    reason: e.to_string(),
                })?;
            let now = now_ms();
            if let Some(held) = record.as_ref().filter(|r| r.live(now)) {
                let holder = held.owner.clone().unwrap_or_default();
                let expires_in = Duration::from_millis(held.expires_at_ms.saturating_sub(now));
                let left = give_up.saturating_duration_since(Instant::now());
                if watched.as_ref().is_some_and(|seen| *seen != version) || left.is_zero() {
                    return Err(ImportError::Busy {
                        location: location(),
                        owner: holder,
                        expires_in_secs: expires_in.as_secs(),
                    });
                }
                if watched.is_none() {
                    info!(lease = %location(), owner = %holder, expires_in_s = expires_in.as_secs(),
                        "another import holds the lease: waiting to see it renewed (refused) or expire (taken over)");
                }
                watched = Some(version);
                // Just past the expiry, or a renewal's interval, whichever
                // comes first: a poll bounded by `give_up`, not a retry.
                let margin = Duration::from_millis(10);
                std::thread::sleep((expires_in + margin).min(length / 3).min(left));
                continue;
            }
            // No lease, a released one, or one that expired unrenewed.
            let sent = Instant::now();
            let Some(version) =
                source
                    .storage
                    .swap(&key, &version, LeaseRecord::held_by(&owner, length))?
            else {
                continue; // another import took it first: look again
            };
            if let Some(LeaseRecord {
                owner: Some(previous),
                expires_at_ms,
            }) = record
            {
                let expired_s = now.saturating_sub(expires_at_ms) as f64 / 1000.0;
                warn!(lease = %location(), %previous, expired_s,
                    "took over the lease of an import that stopped without releasing it");
            }
            return Self::start(source, key, owner, length, version, sent);
        }
    }

    fn start(
        source: &Source,
        key: String,
        owner: String,
        length: Duration,
        version: Version,
        sent: Instant,
    ) -> Result<Self, ImportError> {
        let held = Arc::new(Held {
            source: source.clone(),
            key,
            owner,
            length,
            state: Mutex::new(State {
                version,
                valid_until: sent + length,
                lost: None,
            }),
        });
        let (stop, stopped) = mpsc::channel();
        let renewing = held.clone();
        let renewer = std::thread::Builder::new()
            .name("sluice-import-lease".into())
            .spawn(move || renewing.renew_until(&stopped));
        match renewer {
            Ok(renewer) => Ok(ImportLease {
                held,
                stop: Some(stop),
                renewer: Some(renewer),
            }),
            Err(e) => {
                let _ = held.release();
                Err(ImportError::Store {
                    location: held.source.describe(&held.key),
                    reason: format!("could not start the thread renewing the lease: {e}"),
                })
            }
        }
    }

    /// Ok while the lease is this import's: not taken over, and renewed
    /// within its length.
    pub fn held(&self) -> Result<(), ImportError> {
        let state = self.held.state();
        let reason = match &state.lost {
            Some(reason) => reason.clone(),
            None if Instant::now() >= state.valid_until => format!(
                "not renewed for {} s (the store did not answer), so another import may have taken it over",
                self.held.length.as_secs_f64()
            ),
            None => return Ok(()),
        };
        Err(ImportError::LeaseLost {
            location: self.held.source.describe(&self.held.key),
            reason,
        })
    }

    /// Stops renewing and releases the lease: true when it was released,
    /// false when it was not this import's any more (left as it is).
    pub fn release(mut self) -> Result<bool, ImportError> {
        self.stop_renewing();
        self.held.release()
    }

    fn stop_renewing(&mut self) {
        drop(self.stop.take());
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
    }
}

impl Drop for ImportLease {
    fn drop(&mut self) {
        if self.renewer.is_none() {
            return; // released already
        }
        self.stop_renewing();
        let lease = self.held.source.describe(&self.held.key);
        match self.held.release() {
            Ok(true) => {}
            Ok(false) => {
                warn!(%lease, "the import's lease was taken over by another import: left as it is")
            }
            Err(error) => warn!(%lease, %error,
                "could not release the import's lease: the next import takes it over when it expires"),
        }
    }
}

impl Held {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned state is still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Renews every third of the length until `stopped` says so (or is
    /// dropped) or the lease is lost.
    fn renew_until(&self, stopped: &mpsc::Receiver<()>) {
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(self.length / 3) {
            if !self.renew() {
                return;
            }
        }
    }

    /// One renewal; false once the lease is lost. A store that does not
    /// answer is tried again at the next renewal: three tries fit in a
    /// lease before [`ImportLease::held`] gives it up.
    fn renew(&self) -> bool {
        let version = self.state().version.clone();
        let sent = Instant::now();
        let renewed = self.source.storage.swap(
            &self.key,
            &version,
            LeaseRecord::held_by(&self.owner, self.length),
        );
        match renewed {
            Ok(Some(version)) => {
                let mut state = self.state();
                state.version = version;
                state.valid_until = sent + self.length;
                true
            }
            Ok(None) => self.after_conflict(),
            Err(error) => {
                warn!(lease = %self.source.describe(&self.key), %error,
                    "could not renew the import's lease; trying again");
                true
            }
        }
    }

    /// A swap found the lease changed. It is still this import's when the
    /// file names it (an earlier renewal whose answer was lost on the
    /// network); otherwise another import took it over.
    fn after_conflict(&self) -> bool {
        let (bytes, version) = match self.source.storage.get_versioned(&self.key) {
            Ok(found) => found,
            Err(error) => {
                warn!(lease = %self.source.describe(&self.key), %error,
                    "could not read the import's lease; trying again");
                return true;
            }
        };
        let record = bytes.and_then(|bytes| LeaseRecord::parse(&bytes).ok());
        let holder = record.and_then(|r| r.owner);
        let mut state = self.state();
        if holder.as_deref() == Some(self.owner.as_str()) {
            state.version = version;
            return true;
        }
        let reason = match holder {
            Some(other) => format!("taken over by {other}"),
            None => "released or removed by someone else".to_owned(),
        };
        warn!(lease = %self.source.describe(&self.key), %reason, "the import's lease is lost");
        state.lost = Some(reason);
        false
    }

    /// Marks the lease released, if it is still this import's.
    fn release(&self) -> Result<bool, ImportError> {
        let version = {
            let state = self.state();
            if state.lost.is_some() {
                return Ok(false);
            }
            state.version.clone()
        };
        if self
            .source
            .storage
            .swap(&self.key, &version, LeaseRecord::released())?
            .is_some()
        {
            return Ok(true);
        }
        // Still ours under another version (a renewal's lost answer)?
        if self.after_conflict() {
            let version = self.state().version.clone();
            return Ok(self
                .source
                .storage
                .swap(&self.key, &version, LeaseRecord::released())?
                .is_some());
        }
        Ok(false)
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
