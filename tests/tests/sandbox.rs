//! A misbehaving guest costs one record, never the host: traps, endless
//! loops and runaway allocations are reported with the transform and record,
//! and the same transformer goes on working. The tests of a guest's
//! misbehaviour run once with the Rust misbehave guest and once with its
//! Python port (the modules at the end).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_host::record::{KafkaRecord, Outcome};
use sluice_host::runtime::{CacheOutcome, GuestFailure, Limits, Runtime, RuntimeConfig};
use sluice_tests::{guest, transform};

fn asks(requests: &[&str]) -> Vec<KafkaRecord> {
    requests
        .iter()
        .enumerate()
        .map(|(i, r)| KafkaRecord::from_value("requests", 100 + i as i64, r.as_bytes().to_vec()))
        .collect()
}

fn echoed(result: &Result<Outcome, sluice_host::runtime::GuestError>) -> bool {
    matches!(result, Ok(Outcome::Emit(records)) if records.len() == 1)
}

fn a_trap_fails_only_its_record_and_the_host_goes_on(guest: &str) {
    let mut transformer = transform(guest)
        .transformer(Limits::default(), Arc::default())
        .unwrap();
    let results = transformer.process(&asks(&[r#"{"n":1}"#, r#"{"do":"trap"}"#, r#"{"n":3}"#]));
    assert!(echoed(&results[0]) && echoed(&results[2]), "{results:?}");
    let error = results[1].as_ref().unwrap_err();
    assert!(matches!(error.failure, GuestFailure::Trap(_)));
    assert_eq!(error.transform, guest);
    assert_eq!(error.record.as_ref().unwrap().offset, 101);
    let message = error.to_string();
    assert!(
        message.contains("asked to trap at offset 101"),
        "panic message kept: {message}"
    );
    assert!(
        message.contains("topic requests partition 0 offset 101"),
        "{message}"
    );

    let next = transformer.process(&asks(&[r#"{"n":4}"#]));
    assert!(echoed(&next[0]), "the next batch works: {next:?}");
}

fn an_endless_loop_is_stopped_at_its_deadline(guest: &str) {
    let deadline = Duration::from_millis(300);
    let limits = Limits {
        deadline,
        ..Limits::default()
    };
    let mut transformer = transform(guest)
        .transformer(limits, Arc::default())
        .unwrap();
    let started = Instant::now();
    let results = transformer.process(&asks(&[r#"{"do":"loop"}"#]));
    let elapsed = started.elapsed();
    let error = results[0].as_ref().unwrap_err();
    assert_eq!(error.failure, GuestFailure::Deadline(deadline));
    assert_eq!(error.record.as_ref().unwrap().offset, 100);
    assert!(
        elapsed >= deadline,
        "interrupted only after the deadline: {elapsed:?}"
    );
    // Generous: the machine is shared; what matters is that it ends.
    assert!(
        elapsed < deadline * 20,
        "interrupted near the deadline: {elapsed:?}"
    );

    let next = transformer.process(&asks(&[r#"{"n":1}"#]));
    assert!(echoed(&next[0]), "{next:?}");
}

/// Regression: a transform outliving the `Runtime` value it came from (the
/// Kafka-trigger route loads one and keeps only the transform) used to lose
/// the epoch thread with it, and a looping guest then ran forever.
#[test]
fn deadlines_fire_after_the_runtime_value_is_dropped() {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: None,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let loaded = runtime.load("misbehave", &guest("misbehave")).unwrap();
    drop(runtime);
    let limits = Limits {
        deadline: Duration::from_millis(200),
        ..Limits::default()
    };
    let mut transformer = loaded.transformer(limits, Arc::default()).unwrap();
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let results = transformer.process(&asks(&[r#"{"do":"loop"}"#]));
        let _ = done.send(results[0].as_ref().map_err(|e| e.failure.clone()).err());
    });
    let failure = result
        .recv_timeout(Duration::from_secs(30))
        .expect("the loop was never interrupted");
    assert_eq!(
        failure,
        Some(GuestFailure::Deadline(Duration::from_millis(200)))
    );
}

fn a_loop_inside_a_batch_is_pinned_to_its_record(guest: &str) {
    let limits = Limits {
        deadline: Duration::from_millis(200),
        ..Limits::default()
    };
    let mut transformer = transform(guest)
        .transformer(limits, Arc::default())
        .unwrap();
    let results = transformer.process(&asks(&[
        r#"{"n":1}"#,
        r#"{"do":"loop"}"#,
        r#"{"do":"drop"}"#,
    ]));
    assert!(echoed(&results[0]));
    assert_eq!(
        results[1]
            .as_ref()
            .unwrap_err()
            .record
            .as_ref()
            .unwrap()
            .offset,
        101
    );
    assert_eq!(results[2], Ok(Outcome::Drop));
}

fn allocating_a_gibibyte_is_refused(guest: &str) {
    let limits = Limits {
        memory_bytes: 64 << 20,
        ..Limits::default()
    };
    let mut transformer = transform(guest)
        .transformer(limits, Arc::default())
        .unwrap();
    let results = transformer.process(&asks(&[
        r#"{"do":"alloc","mb":1024}"#,
        r#"{"do":"alloc","mb":8}"#,
    ]));
    match &results[0].as_ref().unwrap_err().failure {
        GuestFailure::MemoryLimit { cap, desired } => {
            assert_eq!(*cap, 64 << 20);
            assert!(*desired >= 1 << 30, "{desired}");
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
    assert!(
        echoed(&results[1]),
        "a modest allocation still works: {:?}",
        results[1]
    );
}

fn fail_and_drop_outcomes_pass_through(guest: &str) {
    let mut transformer = transform(guest)
        .transformer(Limits::default(), Arc::default())
        .unwrap();
    let results = transformer.process(&asks(&[
        r#"{"do":"fail","reason":"bad id"}"#,
        r#"{"do":"drop"}"#,
    ]));
    assert_eq!(
        results,
        vec![Ok(Outcome::Fail("bad id".into())), Ok(Outcome::Drop)]
    );
}

fn a_second_process_start_loads_the_precompiled_artifact(guest_name: &str) {
    let cache = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig {
        cache_dir: Some(cache.path().to_owned()),
        max_instances: 4,
        ..RuntimeConfig::default()
    };
    let wasm = guest(guest_name);
    let first = Runtime::new(config())
        .unwrap()
        .load(guest_name, &wasm)
        .unwrap();
    assert_eq!(first.cache_outcome(), CacheOutcome::Compiled);
    let artifacts = std::fs::read_dir(cache.path()).unwrap().count();
    assert_eq!(artifacts, 1);

    // A new runtime stands for a new process: same folder, fresh engine.
    let second = Runtime::new(config())
        .unwrap()
        .load(guest_name, &wasm)
        .unwrap();
    assert_eq!(second.cache_outcome(), CacheOutcome::Hit);
    assert_eq!(second.version(), first.version());
    let mut transformer = second
        .transformer(Limits::default(), Arc::default())
        .unwrap();
    let out = transformer.process(&[KafkaRecord::from_value(
        "t",
        0,
        br#"{"srch_ci":"2017-01-01","srch_co":"2017-01-03"}"#.to_vec(),
    )]);
    assert!(
        matches!(&out[0], Ok(Outcome::Emit(_))),
        "the cached artifact runs: {out:?}"
    );
}

macro_rules! per_implementation {
    ($($module:ident: $misbehave:literal, $category:literal;)*) => {$(
        mod $module {
            #[test]
            fn a_trap_fails_only_its_record_and_the_host_goes_on() {
                super::a_trap_fails_only_its_record_and_the_host_goes_on($misbehave)
            }
            #[test]
            fn an_endless_loop_is_stopped_at_its_deadline() {
                super::an_endless_loop_is_stopped_at_its_deadline($misbehave)
            }
            #[test]
            fn a_loop_inside_a_batch_is_pinned_to_its_record() {
                super::a_loop_inside_a_batch_is_pinned_to_its_record($misbehave)
            }
            #[test]
            fn allocating_a_gibibyte_is_refused() {
                super::allocating_a_gibibyte_is_refused($misbehave)
            }
            #[test]
            fn fail_and_drop_outcomes_pass_through() {
                super::fail_and_drop_outcomes_pass_through($misbehave)
            }
            #[test]
            fn a_second_process_start_loads_the_precompiled_artifact() {
                super::a_second_process_start_loads_the_precompiled_artifact($category)
            }
        }
    )*};
}

per_implementation! {
    rust: "misbehave", "stay-category";
    python: "misbehave-py", "stay-category-py";
}
