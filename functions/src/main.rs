//! `sluice`: the command line. Each subcommand is a thin adapter over
//! `sluice-host`; the serverless entry points reuse the same calls.

mod app;
mod cli;
mod handler;
mod logging;
mod metrics;
mod render;
mod telemetry;
mod transforms;

use clap::Parser;

/// mimalloc, not glibc's malloc: see `Cargo.toml` for the figures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // A Lambda bootstrap is started without arguments: serve its events.
    let lambda =
        std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() && std::env::args().len() == 1;
    let args = if lambda {
        cli::Args::parse_from(["sluice", "serve"])
    } else {
        cli::Args::parse()
    };
    logging::init(args.log_format);
    let _spans = match telemetry::install() {
        Ok(exporting) => Some(exporting),
        Err(error) => {
            tracing::warn!(error = format!("{error:#}"), "spans are not exported");
            None
        }
    };
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "sluice failed");
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
