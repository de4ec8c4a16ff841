//! `shoal-bench`: an S3 load generator and a probe of the machine's own
//! limits, so that a Shoal figure can be stated as a fraction of what the
//! hardware allows.
//!
//! - `put`, `get`, `mixed`, `list`, `delete`: one workload (or a
//!   concurrency sweep) against any S3 endpoint, SigV4-signed, over
//!   keep-alive hyper connections ([`workload`], [`s3`], [`sigv4`]).
//! - `run --scenario FILE`: every step of a TOML scenario ([`scenario`]).
//! - `ceiling`: disk, hashing and loopback limits ([`ceiling`]).
//! - `sink`: a do-nothing server to measure the client itself ([`sink`]).
//!
//! Results: a summary on stdout, `--json` (schema
//! `shoal-bench/result/v1`, [`output::result`]) and `--report DIR`
//! (Markdown and PNG plots, [`report`]). `main` parses, dispatches and maps
//! failure to an exit status; nothing more.

mod ceiling;
mod error;
mod flags;
mod limits;
mod output;
mod payload;
mod report;
mod run;
mod s3;
mod scenario;
mod server_usage;
mod sigv4;
mod sink;
mod stats;
mod units;
mod workload;

use clap::Parser;

use crate::error::BenchError;
use crate::flags::{Cli, Command};
use crate::workload::spec::WorkloadKind;

fn main() {
    if let Err(e) = dispatch(Cli::parse().command) {
        eprintln!("shoal-bench: {e}");
        std::process::exit(e.exit_code());
    }
}

fn dispatch(command: Command) -> Result<(), BenchError> {
    let load = |args: flags::LoadArgs, kind| args.validate(kind).and_then(run::execute).map(drop);
    match command {
        Command::Put(args) => load(args, WorkloadKind::Put),
        Command::Get(args) => load(args, WorkloadKind::Get),
        Command::Mixed(args) => load(args, WorkloadKind::Mixed),
        Command::List(args) => load(args, WorkloadKind::List),
        Command::Delete(args) => load(args, WorkloadKind::Delete),
        Command::Run(args) => args.validate().and_then(run::execute).map(drop),
        Command::Ceiling(args) => {
            let (config, json) = args.validate();
            run::execute_ceiling(&config, json.as_deref()).map(drop)
        }
        Command::Sink(args) => sink::serve(args.validate()),
    }
}
