//! A misbehaving guest costs one record, never the host: traps, endless
//! loops and runaway allocations are reported with the transform and record,
//! and the same transformer goes on working. The tests of a guest's
//! misbehaviour run once with the Rust misbehave guest, once with the same
//! code built against `sluice:transform@0.1.0` and once with its Python
//! port (the modules at the end).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_host::record::{KafkaRecord, Outcome};
use sluice_host::runtime::{Budget, CacheOutcome, GuestFailure, Limits, Runtime, RuntimeConfig};
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

/// A looping call on a thread of its own, with `deadline`: how long it ran
/// and how it failed, or `None` if it was still running after 30 s.
fn loop_on_a_thread(
    deadline: Duration,
) -> std::sync::mpsc::Receiver<(Duration, Option<GuestFailure>)> {
    let limits = Limits {
        deadline,
        ..Limits::default()
    };
    let mut transformer = transform("misbehave")
        .transformer(limits, Arc::default())
        .unwrap();
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let started = Instant::now();
        let results = transformer.process(&asks(&[r#"{"do":"loop"}"#]));
        let failure = results[0].as_ref().map_err(|e| e.failure.clone()).err();
        let _ = done.send((started.elapsed(), failure));
    });
    result
}

/// The epoch advances only when a call is due (`runtime/engine.rs`), and
/// the ticker remembers only the earliest deadline it was told: guests
/// running at once, each told while another's earlier or later deadline
/// was pending, are each stopped at their own deadline, no sooner and not
/// at another's.
#[test]
fn guests_looping_at_once_are_each_stopped_at_their_own_deadline() {
    // Told in this order: the long one first, then the short one (the new
    // earliest), then the middle one (later than the short one's: not
    // remembered, told again when the short one's advance stops it).
    let deadlines = [6_000, 300, 2_500].map(Duration::from_millis);
    let running: Vec<_> = deadlines
        .iter()
        .map(|deadline| {
            let running = loop_on_a_thread(*deadline);
            std::thread::sleep(Duration::from_millis(50));
            running
        })
        .collect();
    for (deadline, running) in deadlines.iter().zip(running) {
        let (elapsed, failure) = running
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the {deadline:?} loop was never interrupted"));
        assert_eq!(failure, Some(GuestFailure::Deadline(*deadline)));
        assert!(
            elapsed >= *deadline,
            "{deadline:?}: stopped after {elapsed:?}"
        );
        // Not left to run until a later deadline.
        if let Some(later) = deadlines.iter().filter(|d| *d > deadline).min() {
            assert!(elapsed < *later, "{deadline:?}: stopped after {elapsed:?}");
        }
    }
}

/// Calls that end long before their deadlines leave it pending at the
/// ticker, which then advances the epoch for nobody; a loop armed right
/// then (as the ticker goes back to sleep) must still be stopped.
#[test]
fn a_loop_armed_as_the_ticker_goes_idle_is_stopped() {
    let mut quick = transform("misbehave")
        .transformer(
            Limits {
                deadline: Duration::from_millis(20),
                ..Limits::default()
            },
            Arc::default(),
        )
        .unwrap();
    for round in 0..15u64 {
        // Deadlines from 20 to 90 ms, a short call's pending one falling
        // before, at and after the loop's start.
        let results = quick.process(&asks(&[r#"{"n":1}"#]));
        assert!(echoed(&results[0]), "{results:?}");
        std::thread::sleep(Duration::from_millis(round * 3));
        let deadline = Duration::from_millis(20 + round * 5);
        let (elapsed, failure) = loop_on_a_thread(deadline)
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("round {round}: the loop was never interrupted"));
        assert_eq!(
            failure,
            Some(GuestFailure::Deadline(deadline)),
            "round {round}"
        );
        assert!(
            elapsed >= deadline,
            "round {round}: stopped after {elapsed:?}"
        );
    }
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

/// Ten looping records among twenty, a 200 ms deadline and a 700 ms budget:
/// run one by one with the full deadline each, they would take 2.2 s. Within
/// the budget the run ends after the budget and one deadline at most, every
/// record it judged is judged on the full deadline (a loop is never blamed
/// on a shortened one), and the records after them are left untried.
fn looping_records_are_judged_within_the_budget_on_their_full_deadline(guest: &str) {
    let deadline = Duration::from_millis(200);
    let budget = Duration::from_millis(700);
    let limits = Limits {
        deadline,
        ..Limits::default()
    };
    let mut transformer = transform(guest)
        .transformer(limits, Arc::default())
        .unwrap();
    let requests: Vec<&str> = (0..20)
        .map(|i| {
            if i % 2 == 1 {
                r#"{"do":"loop"}"#
            } else {
                r#"{"n":1}"#
            }
        })
        .collect();
    let batch = asks(&requests);
    let started = Instant::now();
    let results = transformer.process_within(&batch, &mut Budget::new(budget));
    let elapsed = started.elapsed();
    assert!(
        elapsed < budget + deadline * 2,
        "within the budget and one deadline (and a deadline's slack for a busy machine): \
         {elapsed:?}"
    );
    assert!(
        (2..batch.len()).contains(&results.len()),
        "some records judged, the rest left untried: {} of {}",
        results.len(),
        batch.len()
    );
    for (i, result) in results.iter().enumerate() {
        if i % 2 == 1 {
            let error = result.as_ref().unwrap_err();
            assert_eq!(
                error.failure,
                GuestFailure::Deadline(deadline),
                "record {i}"
            );
            assert_eq!(error.record.as_ref().unwrap().offset, 100 + i as i64);
        } else {
            assert!(echoed(result), "record {i}: {result:?}");
        }
    }
}

/// A budget already spent by the batch call still judges one record, on
/// its full deadline: every run makes progress, and the next run (the
/// worker's next step) goes on from there.
fn a_spent_budget_still_judges_one_record_on_its_full_deadline(guest: &str) {
    let deadline = Duration::from_millis(200);
    let limits = Limits {
        deadline,
        ..Limits::default()
    };
    let mut transformer = transform(guest)
        .transformer(limits, Arc::default())
        .unwrap();
    let batch = asks(&[r#"{"do":"loop"}"#, r#"{"do":"loop"}"#, r#"{"n":3}"#]);
    let mut rest = &batch[..];
    let mut judged = Vec::new();
    while !rest.is_empty() {
        let results = transformer.process_within(rest, &mut Budget::new(deadline));
        assert!(!results.is_empty(), "every run judges a record");
        rest = &rest[results.len()..];
        judged.extend(results);
    }
    assert_eq!(
        judged[..2]
            .iter()
            .map(|r| r.as_ref().unwrap_err().failure.clone())
            .collect::<Vec<_>>(),
        [
            GuestFailure::Deadline(deadline),
            GuestFailure::Deadline(deadline)
        ]
    );
    assert!(echoed(&judged[2]), "{:?}", judged[2]);
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
            fn looping_records_are_judged_within_the_budget_on_their_full_deadline() {
                super::looping_records_are_judged_within_the_budget_on_their_full_deadline(
                    $misbehave,
                )
            }
            #[test]
            fn a_spent_budget_still_judges_one_record_on_its_full_deadline() {
                super::a_spent_budget_still_judges_one_record_on_its_full_deadline($misbehave)
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
    // The same misbehaviour built against sluice:transform@0.1.0.
    rust_v01: "misbehave-v01", "stay-category";
    python: "misbehave-py", "stay-category-py";
}
