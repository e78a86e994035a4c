//! Everything a Sluice transform needs: the record types and host functions
//! of `wit/` (`sluice:transform@0.2.0`), the traits to implement, and the
//! macros that export them.
//!
//! Two ways to write a transform, both built against the same contract:
//!
//! - [`Transform`] / [`Aggregate`]: each batch as owned [`KafkaRecord`]s,
//!   each answer as [`Outcome`]s ([`export_transformer!`],
//!   [`export_aggregator!`]). The SDK converts; simplest to write.
//! - [`TransformViews`] / [`AggregateViews`]: each record a [`Record`] view
//!   borrowed from the batch's buffers, answers written into a [`Results`]
//!   or [`Outputs`] ([`export_transformer_views!`],
//!   [`export_aggregator_views!`]). No allocation per record or field:
//!   for transforms where every microsecond per record counts.
//!
//! ```ignore
//! struct Upper;
//! impl sluice_guest::TransformViews for Upper {
//!     fn process(batch: &Records<'_>, results: &mut Results) {
//!         for record in batch {
//!             match record.value() {
//!                 Some(value) => results.emit(&record, &value.to_ascii_uppercase()),
//!                 None => results.fail("no value"),
//!             }
//!         }
//!     }
//! }
//! sluice_guest::export_transformer_views!(Upper);
//! ```
//! Build with `cargo build --release --target wasm32-wasip2`.

pub mod transformer {
    wit_bindgen::generate!({
        world: "transformer",
        path: "../../wit/sluice.wit",
        pub_export_macro: true,
        export_macro_name: "__export_transformer_world",
        default_bindings_module: "sluice_guest::transformer",
    });
}

pub mod aggregator {
    wit_bindgen::generate!({
        world: "aggregator",
        path: "../../wit/sluice.wit",
        pub_export_macro: true,
        export_macro_name: "__export_aggregator_world",
        default_bindings_module: "sluice_guest::aggregator",
        with: {
            "sluice:transform/types@0.2.0": crate::transformer::sluice::transform::types,
            "sluice:transform/host@0.2.0": crate::transformer::sluice::transform::host,
        },
    });
}

#[doc(hidden)]
pub use aggregator::__export_aggregator_world;
#[doc(hidden)]
pub use transformer::__export_transformer_world;

mod owned;
mod views;
mod writer;

/// The contract's buffers as wit-bindgen generates them, for a guest that
/// writes them itself.
pub use transformer::sluice::transform::types as raw;

pub use owned::{Header, KafkaRecord, Outcome, OutputRecord};
pub use transformer::sluice::transform::host::{Level, log, metadata};
pub use views::{Headers, Record, Records};
pub use writer::{Outputs, Results};

/// A stateless transform over owned records: one outcome per input record,
/// in input order.
pub trait Transform {
    fn process(batch: Vec<KafkaRecord>) -> Vec<Outcome>;
}

/// A stateful transform over owned records: `add` any number of times,
/// then `finish` once, on a fresh instance per window.
pub trait Aggregate {
    fn add(batch: Vec<KafkaRecord>);
    fn finish() -> Vec<OutputRecord>;
}

/// A stateless transform over record views: exactly one verdict
/// ([`Results::emit`], [`Results::drop_record`], [`Results::fail`], ...) per input
/// record, in input order.
pub trait TransformViews {
    fn process(batch: &Records<'_>, results: &mut Results);
}

/// A stateful transform over record views: `add` any number of times,
/// then `finish` once, on a fresh instance per window.
pub trait AggregateViews {
    fn add(batch: &Records<'_>);
    fn finish(outputs: &mut Outputs);
}

/// Runs an owned-records [`Transform`] on a batch: what
/// [`export_transformer!`] exports.
#[doc(hidden)]
pub fn __process<T: Transform>(batch: raw::Batch) -> raw::Results {
    let records = Records::new(&batch).to_owned_records();
    drop(batch);
    Results::from_outcomes(T::process(records)).into_raw()
}

#[doc(hidden)]
pub fn __process_views<T: TransformViews>(batch: raw::Batch) -> raw::Results {
    let records = Records::new(&batch);
    let mut results = Results::for_batch(&batch);
    T::process(&records, &mut results);
    results.into_raw()
}

#[doc(hidden)]
pub fn __add<T: Aggregate>(batch: raw::Batch) {
    let records = Records::new(&batch).to_owned_records();
    drop(batch);
    T::add(records);
}

#[doc(hidden)]
pub fn __add_views<T: AggregateViews>(batch: raw::Batch) {
    T::add(&Records::new(&batch));
}

#[doc(hidden)]
pub fn __finish<T: Aggregate>() -> raw::Outputs {
    let mut outputs = Outputs::new();
    for record in T::finish() {
        outputs.push_owned(record);
    }
    outputs.into_raw()
}

#[doc(hidden)]
pub fn __finish_views<T: AggregateViews>() -> raw::Outputs {
    let mut outputs = Outputs::new();
    T::finish(&mut outputs);
    outputs.into_raw()
}

/// Exports a [`Transform`] as the component's `transformer` world.
#[macro_export]
macro_rules! export_transformer {
    ($t:ty) => {
        $crate::__export_transformer_through!($t, __process);
    };
}

/// Exports a [`TransformViews`] as the component's `transformer` world.
#[macro_export]
macro_rules! export_transformer_views {
    ($t:ty) => {
        $crate::__export_transformer_through!($t, __process_views);
    };
}

/// Exports an [`Aggregate`] as the component's `aggregator` world.
#[macro_export]
macro_rules! export_aggregator {
    ($t:ty) => {
        $crate::__export_aggregator_through!($t, __add, __finish);
    };
}

/// Exports an [`AggregateViews`] as the component's `aggregator` world.
#[macro_export]
macro_rules! export_aggregator_views {
    ($t:ty) => {
        $crate::__export_aggregator_through!($t, __add_views, __finish_views);
    };
}

/// The `transformer` world's export calling `$crate::$process::<$t>`: what
/// the owned-record and the view-based exports share.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_transformer_through {
    ($t:ty, $process:ident) => {
        const _: () = {
            struct __SluiceTransformer;
            impl $crate::transformer::exports::sluice::transform::transform::Guest
                for __SluiceTransformer
            {
                fn process(batch: $crate::raw::Batch) -> $crate::raw::Results {
                    $crate::$process::<$t>(batch)
                }
            }
            $crate::__export_transformer_world!(__SluiceTransformer);
        };
    };
}

/// The `aggregator` world's export calling `$crate::$add::<$t>` and
/// `$crate::$finish::<$t>`.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_aggregator_through {
    ($t:ty, $add:ident, $finish:ident) => {
        const _: () = {
            struct __SluiceAggregator;
            impl $crate::aggregator::exports::sluice::transform::aggregate::Guest
                for __SluiceAggregator
            {
                fn add(batch: $crate::raw::Batch) {
                    $crate::$add::<$t>(batch)
                }
                fn finish() -> $crate::raw::Outputs {
                    $crate::$finish::<$t>()
                }
            }
            $crate::__export_aggregator_world!(__SluiceAggregator);
        };
    };
}

/// Hands each record's value to `add`; a record without a value, or one
/// `add` refuses, is logged with where it came from and skipped, since an
/// aggregator has no dead-letter outcome.
pub fn add_values(batch: Vec<KafkaRecord>, mut add: impl FnMut(&[u8]) -> Result<(), String>) {
    for record in batch {
        let result = match &record.value {
            Some(value) => add(value),
            None => Err("record has no value".to_owned()),
        };
        if let Err(reason) = result {
            log(
                Level::Warn,
                &format!(
                    "skipped topic {} partition {} offset {}: {reason}",
                    record.topic, record.partition, record.offset
                ),
            );
        }
    }
}
