//! `shoal`: parse flags, start the node, map failure to an exit code.

use clap::Parser;
use shoal::alloc::ShoalAlloc;
use shoal::flags::{Cli, Command};

#[global_allocator]
static ALLOCATOR: ShoalAlloc = ShoalAlloc;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHOAL_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    // Reads FAILPOINTS when built with `--features failpoints`; else a no-op.
    let _faults = fail::FailScenario::setup();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(flags) => {
            let explicit_shards = flags.shards.is_some();
            match flags.validate() {
                Ok(config) => shoal::node::run(config, explicit_shards).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("shoal: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
