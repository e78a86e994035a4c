//! `sluice`: the command line. Each subcommand is a thin adapter over
//! `sluice-host`; the serverless entry points reuse the same calls.

mod cli;
mod fetch;
mod handler;
mod logging;
mod transforms;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Args::parse();
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
