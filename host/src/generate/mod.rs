//! Deterministic test and demo data: the same seed always gives the same
//! records, on every machine and every version of Sluice.

mod clickstream;
mod expedia;
mod produce;
mod rng;

pub use clickstream::ClickstreamGenerator;
pub use expedia::{ExpediaGenerator, StayMix};
pub use produce::{GenerateError, Generator, Pacing, due, produce_generated};
pub use rng::SplitMix64;
