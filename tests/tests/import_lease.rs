//! The import's lease (one import of a folder into a topic at a time), on a
//! local folder (a swap under an OS file lock) and on Azurite (a swap on
//! the blob's ETag): exactly one of two takers wins, a lease is taken over
//! only once it expired unrenewed, it is renewed while held, a lost lease
//! is noticed, and only its holder releases it.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sluice_host::import::{ImportError, ImportLease, lease_key};
use sluice_host::storage::{AzureCredentials, Storage};
use sluice_tests::{azurite, azurite_url, fresh_topic};

/// Short enough for tests: renewed every third of a second.
const LEASE: Duration = Duration::from_secs(1);

/// A folder to import from, local or on Azurite, and a way to read and
/// replace the lease file in it as another process would.
struct Folder {
    url: String,
    credentials: AzureCredentials,
    storage: Storage,
    local: Option<tempfile::TempDir>,
}

impl Folder {
    fn local() -> Folder {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().to_str().unwrap().to_owned();
        Folder {
            storage: Storage::open(&url, &AzureCredentials::default()).unwrap(),
            url,
            credentials: AzureCredentials::default(),
            local: Some(dir),
        }
    }

    fn azurite() -> Folder {
        let url = azurite_url("lease", "landing");
        let credentials = azurite::credentials();
        Folder {
            storage: Storage::open(&url, &credentials).unwrap(),
            url,
            credentials,
            local: None,
        }
    }

    fn both() -> [Folder; 2] {
        [Folder::local(), Folder::azurite()]
    }

    fn take(&self, topic: &str) -> Result<ImportLease, ImportError> {
        ImportLease::take(&self.url, &self.credentials, topic, LEASE)
    }

    fn lease(&self, topic: &str) -> Value {
        serde_json::from_slice(&self.storage.get(&lease_key(topic)).unwrap()).unwrap()
    }

    /// Replaces the lease file whole, as another import's write would.
    fn write_lease(&self, topic: &str, owner: &str, expires_at_ms: u64) {
        let lease = json!({"owner": owner, "expires_at_ms": expires_at_ms});
        // A local upload is a rename: staged in the same folder.
        let staged = match &self.local {
            Some(dir) => dir.path().join("staged"),
            None => std::env::temp_dir().join(fresh_topic("lease-staged")),
        };
        std::fs::write(&staged, lease.to_string()).unwrap();
        self.storage.upload(&staged, &lease_key(topic)).unwrap();
    }

    fn describe(&self) -> &str {
        if self.local.is_some() {
            "local folder"
        } else {
            "Azurite"
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn owner(error: &ImportError) -> &str {
    match error {
        ImportError::Busy { owner, .. } => owner,
        other => panic!("expected Busy, got {other:?}"),
    }
}

/// Of two takers at once, of a lease nobody holds and of one an import
/// that died left expired, exactly one gets it.
#[test]
fn of_two_takers_at_once_exactly_one_wins() {
    for folder in Folder::both() {
        for round in 0..6 {
            let topic = fresh_topic("lease");
            if round % 2 == 1 {
                folder.write_lease(&topic, "dead", now_ms() - 1);
            }
            let start = Arc::new(Barrier::new(2));
            let takers: Vec<_> = (0..2)
                .map(|_| {
                    let (start, url, credentials, topic) = (
                        start.clone(),
                        folder.url.clone(),
                        folder.credentials.clone(),
                        topic.clone(),
                    );
                    std::thread::spawn(move || {
                        start.wait();
                        ImportLease::take(&url, &credentials, &topic, LEASE)
                    })
                })
                .collect();
            let outcomes: Vec<_> = takers.into_iter().map(|t| t.join().unwrap()).collect();
            let (won, lost): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(Result::is_ok);
            assert_eq!(
                (won.len(), lost.len()),
                (1, 1),
                "{}: exactly one taker wins",
                folder.describe()
            );
            // The loser saw the winner renew it, and names it.
            let holder = folder.lease(&topic)["owner"].as_str().unwrap().to_owned();
            let error = lost.into_iter().next().unwrap().err().unwrap();
            assert_eq!(owner(&error), holder, "{error}");
        }
    }
}

#[test]
fn a_lease_is_taken_over_only_after_it_expired_unrenewed() {
    for folder in Folder::both() {
        // An import that died holding it: nobody renews it.
        let topic = fresh_topic("lease");
        let expires_at_ms = now_ms() + 700;
        folder.write_lease(&topic, "dead", expires_at_ms);
        let lease = folder.take(&topic).expect("taken over once expired");
        assert!(
            now_ms() >= expires_at_ms,
            "{}: not taken before it expired",
            folder.describe()
        );
        let holder = folder.lease(&topic);
        assert_ne!(holder["owner"], "dead");
        assert!(holder["expires_at_ms"].as_u64().unwrap() > now_ms());
        drop(lease);

        // One that does not expire within the taker's own lease length is
        // not taken, even unrenewed.
        let topic = fresh_topic("lease");
        folder.write_lease(&topic, "long", now_ms() + 60_000);
        let error = folder.take(&topic).err().expect("refused");
        assert_eq!(owner(&error), "long");
        assert_eq!(folder.lease(&topic)["owner"], "long", "left as it was");
    }
}

#[test]
fn a_held_lease_is_renewed_in_the_background_and_not_taken_over() {
    for folder in Folder::both() {
        let topic = fresh_topic("lease");
        let started = Instant::now();
        let lease = folder.take(&topic).unwrap();
        let first_expiry = folder.lease(&topic)["expires_at_ms"].as_u64().unwrap();
        // Nothing calls the lease meanwhile (as during a long file check).
        let deadline = Instant::now() + 10 * LEASE;
        while folder.lease(&topic)["expires_at_ms"].as_u64().unwrap() < first_expiry + 1000
            || started.elapsed() < 2 * LEASE
        {
            assert!(
                Instant::now() < deadline,
                "{}: not renewed",
                folder.describe()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        lease.held().expect("still held after twice its length");
        let error = folder
            .take(&topic)
            .err()
            .expect("a second taker is refused");
        assert_eq!(
            owner(&error),
            folder.lease(&topic)["owner"].as_str().unwrap()
        );
        lease.held().unwrap();
    }
}

#[test]
fn a_lost_lease_is_noticed_and_left_to_its_new_holder() {
    for folder in Folder::both() {
        let topic = fresh_topic("lease");
        let lease = folder.take(&topic).unwrap();
        lease.held().unwrap();
        // Another import takes it over (this one stalled, say).
        folder.write_lease(&topic, "thief", now_ms() + 60_000);
        let deadline = Instant::now() + 3 * LEASE;
        let error = loop {
            match lease.held() {
                Err(error) => break error,
                Ok(()) => assert!(
                    Instant::now() < deadline,
                    "{}: loss not noticed",
                    folder.describe()
                ),
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let ImportError::LeaseLost { reason, .. } = &error else {
            panic!("expected LeaseLost, got {error:?}");
        };
        assert!(reason.contains("taken over by thief"), "{reason}");
        assert!(!lease.release().unwrap(), "not released: not ours");
        assert_eq!(folder.lease(&topic)["owner"], "thief", "left alone");
    }
}

#[test]
fn only_the_holder_releases_a_lease_and_a_released_one_is_taken_at_once() {
    for folder in Folder::both() {
        let topic = fresh_topic("lease");
        let first = folder.take(&topic).unwrap();
        // Taken over behind its back: its release must not touch it.
        folder.write_lease(&topic, "other", now_ms() + 60_000);
        assert!(!first.release().unwrap());
        assert_eq!(folder.lease(&topic)["owner"], "other");

        let topic = fresh_topic("lease");
        let lease = folder.take(&topic).unwrap();
        assert!(lease.release().unwrap(), "released by its holder");
        assert_eq!(folder.lease(&topic)["owner"], Value::Null);
        let started = Instant::now();
        let again = folder.take(&topic).unwrap();
        assert!(
            started.elapsed() < LEASE / 2,
            "no waiting for a released lease"
        );
        // Dropping releases too.
        drop(again);
        assert_eq!(folder.lease(&topic)["owner"], Value::Null);
    }
}
