//! The one store behaves the same on a local folder and on Azurite: every
//! case of the table below runs against both, with the same assertions.
//! What differs underneath (a file linked into place or a blob put with
//! `If-None-Match`, bytes compared under a lock or an ETag condition, 409 or
//! 412, a rename or a multipart upload) must not show.

use std::collections::BTreeSet;
use std::sync::Barrier;

use bytes::Bytes;
use sluice_host::storage::{AzureCredentials, Failure, Storage, Version};
use sluice_tests::{azurite, azurite_url};

/// A case: what it checks, and the check, given a store and a folder of
/// its own in it.
type Case = (&'static str, fn(&Storage, &str));

const CASES: &[Case] = &[
    ("get of a missing key", get_of_a_missing_key),
    ("put overwrites, get reads back", put_overwrites),
    ("create-only put twice", create_only_twice),
    ("create-only put raced", create_only_raced),
    ("swap on the version read", swap_on_the_version_read),
    ("swap on a stale version", swap_on_a_stale_version),
    ("swap raced from one version", swap_raced),
    ("list a folder and everything under it", list),
    ("delete, and delete of a missing key", delete),
    ("keys as listed read their objects", listed_keys_read_back),
    ("upload a local file and download it", upload_and_download),
];

/// A local folder (kept alive by the returned directory) and Azurite.
fn stores() -> Vec<(&'static str, Storage, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let local = Storage::open(dir.path().to_str().unwrap(), &AzureCredentials::default()).unwrap();
    let remote = Storage::open(&azurite_url("store", "parity"), &azurite::credentials()).unwrap();
    vec![("local", local, Some(dir)), ("azurite", remote, None)]
}

#[test]
fn every_operation_behaves_the_same_on_a_local_folder_and_on_azurite() {
    for (backend, storage, _dir) in stores() {
        for (i, (case, check)) in CASES.iter().enumerate() {
            eprintln!("{backend}: {case}");
            check(&storage, &format!("case-{i}"));
        }
    }
}

fn get_of_a_missing_key(storage: &Storage, dir: &str) {
    let key = format!("{dir}/missing.json");
    assert_eq!(storage.get_if_exists(&key).unwrap(), None);
    let error = storage.get(&key).unwrap_err();
    assert!(error.is_not_found(), "{error}");
    assert!(error.to_string().contains(&key), "names the key: {error}");
    assert_eq!(
        storage.get_versioned(&key).unwrap(),
        (None, Version::Absent)
    );
}

fn put_overwrites(storage: &Storage, dir: &str) {
    let key = format!("{dir}/a/b.json");
    storage.put(&key, Bytes::from("first")).unwrap();
    storage.put(&key, Bytes::from("second")).unwrap();
    assert_eq!(storage.get(&key).unwrap(), Bytes::from("second"));
    assert_eq!(storage.list(&format!("{dir}/a")).unwrap(), [key]);
}

fn create_only_twice(storage: &Storage, dir: &str) {
    let key = format!("{dir}/00000000000000000000.json");
    assert!(storage.put_if_absent(&key, Bytes::from("first")).unwrap());
    // Azure answers 409 or 412 here; a local folder's link finds the file.
    assert!(!storage.put_if_absent(&key, Bytes::from("second")).unwrap());
    assert_eq!(storage.get(&key).unwrap(), Bytes::from("first"));
    assert_eq!(
        storage.list(dir).unwrap(),
        [key],
        "nothing left beside it (no temporary file)"
    );
}

/// Threads started together, each running `call(i)`; their results.
fn raced<T: Send>(threads: usize, call: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let start = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (start, call) = (&start, &call);
                scope.spawn(move || {
                    start.wait();
                    call(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn create_only_raced(storage: &Storage, dir: &str) {
    let key = format!("{dir}/raced.json");
    let created = raced(8, |i| {
        storage
            .put_if_absent(&key, Bytes::from(format!("writer {i}")))
            .unwrap()
    });
    let winners: Vec<usize> = (0..created.len()).filter(|&i| created[i]).collect();
    let [winner] = winners.as_slice() else {
        panic!("exactly one writer creates the key: {created:?}");
    };
    assert_eq!(
        storage.get(&key).unwrap(),
        Bytes::from(format!("writer {winner}"))
    );
}

fn swap_on_the_version_read(storage: &Storage, dir: &str) {
    let key = format!("{dir}/lease.lock");
    let (bytes, absent) = storage.get_versioned(&key).unwrap();
    assert_eq!((bytes, &absent), (None, &Version::Absent));
    let first = storage
        .swap(&key, &absent, Bytes::from("first"))
        .unwrap()
        .expect("created from absent");
    let (bytes, read) = storage.get_versioned(&key).unwrap();
    assert_eq!(bytes, Some(Bytes::from("first")));
    assert_eq!(read, first, "the version read is the version written");
    let second = storage
        .swap(&key, &read, Bytes::from("second"))
        .unwrap()
        .expect("written over the version read");
    assert_ne!(second, first);
    assert_eq!(storage.get(&key).unwrap(), Bytes::from("second"));
}

fn swap_on_a_stale_version(storage: &Storage, dir: &str) {
    let key = format!("{dir}/progress.json");
    let first = storage
        .swap(&key, &Version::Absent, Bytes::from("first"))
        .unwrap()
        .unwrap();
    // Created already: a create from "absent" loses.
    assert_eq!(
        storage
            .swap(&key, &Version::Absent, Bytes::from("again"))
            .unwrap(),
        None
    );
    let second = storage
        .swap(&key, &first, Bytes::from("second"))
        .unwrap()
        .unwrap();
    // Another writer's version since: the stale one loses, nothing written.
    assert_eq!(
        storage.swap(&key, &first, Bytes::from("late")).unwrap(),
        None
    );
    assert_eq!(storage.get(&key).unwrap(), Bytes::from("second"));
    // Removed since it was read: loses too.
    storage.delete(&key).unwrap();
    assert_eq!(
        storage.swap(&key, &second, Bytes::from("late")).unwrap(),
        None
    );
    assert_eq!(storage.get_if_exists(&key).unwrap(), None);
}

fn swap_raced(storage: &Storage, dir: &str) {
    let key = format!("{dir}/raced.lock");
    let version = storage
        .swap(&key, &Version::Absent, Bytes::from("start"))
        .unwrap()
        .unwrap();
    let swapped = raced(8, |i| {
        storage
            .swap(&key, &version, Bytes::from(format!("writer {i}")))
            .unwrap()
    });
    let winners: Vec<usize> = (0..swapped.len())
        .filter(|&i| swapped[i].is_some())
        .collect();
    let [winner] = winners.as_slice() else {
        panic!("exactly one swap from one version succeeds: {swapped:?}");
    };
    assert_eq!(
        storage.get(&key).unwrap(),
        Bytes::from(format!("writer {winner}"))
    );
}

fn list(storage: &Storage, dir: &str) {
    assert_eq!(
        storage.list(&format!("{dir}/none")).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(storage.list_all(&format!("{dir}/none")).unwrap(), vec![]);
    for (key, text) in [
        ("b.json", "bb"),
        ("a.json", "a"),
        ("sub/c.json", "ccc"),
        ("sub/deeper/d.json", ""),
    ] {
        storage
            .put(&format!("{dir}/{key}"), Bytes::from(text))
            .unwrap();
    }
    let listing = sluice_host::io::block_on(storage.store().list(dir)).unwrap();
    assert_eq!(
        listing.files,
        [format!("{dir}/a.json"), format!("{dir}/b.json")]
    );
    assert_eq!(listing.folders, [format!("{dir}/sub")]);
    assert_eq!(storage.list(dir).unwrap(), listing.files);
    let all: Vec<(String, u64)> = storage
        .list_all(dir)
        .unwrap()
        .into_iter()
        .map(|entry| (entry.key, entry.size))
        .collect();
    assert_eq!(
        all,
        [
            (format!("{dir}/a.json"), 1),
            (format!("{dir}/b.json"), 2),
            (format!("{dir}/sub/c.json"), 3),
            (format!("{dir}/sub/deeper/d.json"), 0),
        ]
    );
    let versions: BTreeSet<_> = storage
        .list_all(dir)
        .unwrap()
        .into_iter()
        .map(|entry| entry.e_tag.expect("each object has an ETag"))
        .collect();
    assert_eq!(versions.len(), 4, "each object's ETag is its own");
}

fn delete(storage: &Storage, dir: &str) {
    let key = format!("{dir}/gone.json");
    storage.delete(&key).unwrap();
    storage.put(&key, Bytes::from("x")).unwrap();
    storage.delete(&key).unwrap();
    assert_eq!(storage.get_if_exists(&key).unwrap(), None);
    storage.delete(&key).unwrap();
    assert_eq!(storage.list(dir).unwrap(), Vec::<String>::new());
}

/// A key with characters object_store would escape in a name it builds
/// (`[`, `%`, a space, `#`): what a listing gives back reads the object,
/// as the import reads the files it lists.
fn listed_keys_read_back(storage: &Storage, dir: &str) {
    let key = format!("{dir}/day=1/b[1] 100% #2.jsonl");
    storage.put(&key, Bytes::from("12")).unwrap();
    let listed: Vec<String> = storage
        .list_all(dir)
        .unwrap()
        .into_iter()
        .map(|entry| entry.key)
        .collect();
    assert_eq!(listed, [key]);
    assert_eq!(storage.get(&listed[0]).unwrap(), Bytes::from("12"));
    let copy = tempfile::NamedTempFile::new().unwrap();
    storage.download(&listed[0], copy.path()).unwrap();
    assert_eq!(std::fs::read(copy.path()).unwrap(), b"12");
}

fn upload_and_download(storage: &Storage, dir: &str) {
    let staging = storage.staging_dir(dir);
    std::fs::create_dir_all(&staging).unwrap();
    let local = staging.join("file.parquet");
    // Past one upload part: a multipart upload on Azure.
    let bytes: Vec<u8> = (0..9 << 20).map(|i: u32| (i % 251) as u8).collect();
    std::fs::write(&local, &bytes).unwrap();
    let key = format!("{dir}/t/p/file.parquet");
    storage.upload(&local, &key).unwrap();
    assert!(!local.exists(), "moved, not copied");
    assert_eq!(storage.get(&key).unwrap(), Bytes::from(bytes.clone()));
    let copy = tempfile::tempdir().unwrap();
    let to = copy.path().join("nested/copy.parquet");
    storage.download(&key, &to).unwrap();
    assert!(std::fs::read(&to).unwrap() == bytes, "downloaded whole");
    let error = storage.upload(&local, &key).unwrap_err();
    assert_eq!(error.failure(), Failure::NotFound, "{error}");
}
