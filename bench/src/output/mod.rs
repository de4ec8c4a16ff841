//! What a run leaves behind: the versioned JSON result ([`result`], schema
//! in `bench/schema/result-v1.json`) and the human summary ([`human`]).
//! The live progress bar is `workload::progress`; the Markdown and PNG
//! report lives in `report/`.

pub mod human;
pub mod result;
#[cfg(test)]
mod result_test;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::BenchError;

/// Writes the JSON result to `path`, or to stdout for `-`.
pub fn write_json(result: &result::RunResult, path: &Path) -> Result<(), BenchError> {
    let text = serde_json::to_string_pretty(result).expect("results serialise");
    let fail = |source| BenchError::Write {
        path: path.to_path_buf(),
        source,
    };
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}").map_err(fail)
    } else {
        std::fs::write(path, text + "\n").map_err(fail)
    }
}

/// Where the JSON result and report go.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub report: Option<PathBuf>,
}

impl Outputs {
    /// The human summary goes to stderr when the JSON takes stdout.
    pub fn json_on_stdout(&self) -> bool {
        self.json.as_deref() == Some(Path::new("-"))
    }
}
