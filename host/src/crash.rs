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
