//! `shoal`: parse flags (and the config file), then run the node or the
//! preflight checks, and map failure to an exit code.

use shoal::alloc::ShoalAlloc;
use shoal::flags::{Cli, Command};

#[global_allocator]
static ALLOCATOR: ShoalAlloc = ShoalAlloc;

fn main() -> std::process::ExitCode {
    let cli: Cli = match shoal::config_file::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Serve(flags) => {
            let logs = match shoal::logging::init(flags.log_format, &flags.log_level) {
                Ok(guard) => guard,
                Err(message) => {
                    eprintln!("shoal: {message}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            // Reads FAILPOINTS when built with `--features failpoints`; else a no-op.
            let _faults = fail::FailScenario::setup();
            let explicit_shards = flags.shards.is_some();
            let result = match flags.validate() {
                Ok(config) => shoal::node::run(config, explicit_shards).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let code = match result {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(message) => {
                    tracing::error!("shoal cannot run: {message}");
                    std::process::ExitCode::FAILURE
                }
            };
            // Flushes the queued log lines before the process ends.
            drop(logs);
            code
        }
        Command::Preflight(flags) => {
            let (report, failed) = shoal::preflight::run(&flags);
            print!("{report}");
            if failed {
                std::process::ExitCode::FAILURE
            } else {
                std::process::ExitCode::SUCCESS
            }
        }
    }
}
