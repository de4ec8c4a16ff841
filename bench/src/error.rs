//! The crate's errors: [`ParseError`] for text a person typed (sizes,
//! durations) and [`BenchError`] for everything that stops a command. Each
//! variant names the flag, file or address involved, with its value, so the
//! one line `main` prints is enough to act on. Failed requests during a run
//! are not errors here: they are counted in the results.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("bad size {text:?} (use a byte count or a unit: B, KiB, MiB, GiB, KB, MB, GB)")]
    Size { text: String },
    #[error("bad duration {text:?} (use e.g. 10s, 500ms, 2m)")]
    Duration { text: String },
}

#[derive(Debug, Error)]
pub enum BenchError {
    /// A flag or scenario field out of range or inconsistent with another.
    #[error("{what} = {value}: {reason}")]
    Invalid {
        what: String,
        value: String,
        reason: String,
    },
    #[error("endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error(
        "no credentials: pass --access-key and --secret-key, or set SHOAL_ACCESS_KEY and \
         SHOAL_SECRET_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    )]
    MissingCredentials,
    #[error("scenario {path}: {source}")]
    ScenarioRead { path: PathBuf, source: io::Error },
    #[error("scenario {path}: {message}")]
    ScenarioParse { path: PathBuf, message: String },
    #[error("{dir}: is a tmpfs; the disk probe needs the disk under test (pass --dir)")]
    TmpfsDir { dir: PathBuf },
    #[error("disk probe in {dir}: {source}")]
    Disk { dir: PathBuf, source: io::Error },
    #[error("loopback probe: {0}")]
    Loopback(io::Error),
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("drawing {path}: {message}")]
    Plot { path: PathBuf, message: String },
    #[error("starting the async runtime: {0}")]
    Runtime(io::Error),
    #[error("sink on {addr}: {source}")]
    Sink { addr: String, source: io::Error },
}

impl BenchError {
    pub fn invalid(
        what: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        BenchError::Invalid {
            what: what.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Exit status: 2 for a bad command line or scenario, 1 for the rest.
    pub fn exit_code(&self) -> i32 {
        match self {
            BenchError::Invalid { .. }
            | BenchError::Endpoint { .. }
            | BenchError::MissingCredentials
            | BenchError::ScenarioRead { .. }
            | BenchError::ScenarioParse { .. } => 2,
            _ => 1,
        }
    }
}
