//! `sluice`: the command line. Each subcommand is a thin adapter over
//! `sluice-host`; the serverless entry points reuse the same calls.

mod app;
mod cli;
mod handler;
mod logging;
mod metrics;
mod render;
mod transforms;

use clap::Parser;

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
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "sluice failed");
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
