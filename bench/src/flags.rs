//! The command line, raw (clap derive, with `SHOAL_*` environment
//! fallbacks), and its validation into what the commands run: a
//! [`crate::run::Invocation`], a [`CeilingConfig`] or a [`SinkConfig`].
//! Errors name the flag and its value.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::ceiling::CeilingConfig;
use crate::error::BenchError;
use crate::limits::{BUCKETS_MAX, DISK_PROBE_BYTES_DEFAULT};
use crate::output::result::ScenarioInfo;
use crate::output::Outputs;
use crate::run::Invocation;
use crate::s3::{Endpoint, PayloadMode};
use crate::scenario;
use crate::server_usage::ServerProbe;
use crate::sigv4::Credentials;
use crate::sink::SinkConfig;
use crate::units::{parse_duration, ByteSize, HumanDuration};
use crate::workload::mix::Mix;
use crate::workload::runner::Target;
use crate::workload::spec::{Concurrency, StepParams, WorkloadKind};

#[derive(Debug, Parser)]
#[command(
    name = "shoal-bench",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("SHOAL_COMMIT"), ")"),
    about = "S3 load generator and machine-ceiling probe",
    long_about = "S3 load generator (SigV4, keep-alive HTTP/1.1) and machine-ceiling probe.\n\
                  Examples:\n  shoal-bench ceiling --dir /var/tmp\n  \
                  shoal-bench put --size 64MiB --count 32 --concurrency 4\n  \
                  shoal-bench run --scenario bench/scenarios/large-put.toml --report out/"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// PUT objects.
    Put(LoadArgs),
    /// GET objects (written first unless --no-prepare).
    Get(LoadArgs),
    /// GET, STAT, PUT and DELETE over one set of objects (--mix).
    Mixed(LoadArgs),
    /// ListObjectsV2 over prepared objects.
    List(LoadArgs),
    /// DELETE prepared objects.
    Delete(LoadArgs),
    /// Run every step of a scenario file into one result.
    Run(RunArgs),
    /// Measure this machine's ceilings: disk, hashing, loopback TCP.
    Ceiling(CeilingArgs),
    /// Serve 200 to everything, draining bodies: the client's own ceiling.
    Sink(SinkArgs),
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// S3 endpoint, `http://` or `https://` (with `--ca-file`), path-style.
    #[arg(long, env = "SHOAL_ENDPOINT", default_value = "http://127.0.0.1:9000")]
    pub endpoint: String,
    /// PEM file of the CA that signed an `https://` endpoint's certificate.
    #[arg(long, env = "SHOAL_BENCH_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Access key; else SHOAL_ACCESS_KEY, else AWS_ACCESS_KEY_ID.
    #[arg(long, env = "SHOAL_ACCESS_KEY", hide_env_values = true)]
    pub access_key: Option<String>,
    /// Secret key; else SHOAL_SECRET_KEY, else AWS_SECRET_ACCESS_KEY.
    #[arg(long, env = "SHOAL_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Bucket, created if missing (a scenario may name its own).
    #[arg(long)]
    pub bucket: Option<String>,
    /// Spread keys round-robin over N buckets, <bucket>-0 .. <bucket>-<N-1>,
    /// all created first [default: 1, the bucket itself].
    #[arg(long)]
    pub buckets: Option<u32>,
    /// The server's Prometheus endpoint (e.g. http://127.0.0.1:9001/metrics):
    /// each step then reports the server's CPU seconds (per GB and per
    /// 1,000 operations) and peak resident memory, from its
    /// `process_cpu_seconds_total` and `process_resident_memory_max_bytes`.
    #[arg(long, env = "SHOAL_SERVER_METRICS", conflicts_with = "server_pid")]
    pub server_metrics: Option<String>,
    /// The server's process id, for a server on this host without those
    /// metrics (a peer store): the same figures, read from /proc/<pid>.
    #[arg(long, env = "SHOAL_SERVER_PID")]
    pub server_pid: Option<u32>,
}

/// Bucket when neither the flag nor the scenario names one.
pub const BUCKET_DEFAULT: &str = "shoal-bench";

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Write the JSON result here (`-` for stdout; the summary then goes
    /// to stderr).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write report.md and PNG plots into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Measure the machine ceiling first and report PUT/GET throughput as
    /// a fraction of it.
    #[arg(long)]
    pub with_ceiling: bool,
    /// Directory for the ceiling's disk probe (not a tmpfs).
    #[arg(long, default_value = ".")]
    pub ceiling_dir: PathBuf,
    /// Bytes the ceiling's disk probe writes and reads.
    #[arg(long, default_value_t = ByteSize(DISK_PROBE_BYTES_DEFAULT))]
    pub ceiling_size: ByteSize,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Step name (default: workload and size).
    #[arg(long)]
    pub name: Option<String>,
    /// Object size, e.g. 4KiB, 64MiB [default: 1MiB].
    #[arg(long)]
    pub size: Option<ByteSize>,
    /// Operations to run [default: 64 unless --duration].
    #[arg(long)]
    pub count: Option<u64>,
    /// Run for this long instead (or as well: whichever ends first).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Concurrent connections; a comma list sweeps, e.g. 1,4,16,64 [default: 8].
    #[arg(long, value_delimiter = ',')]
    pub concurrency: Vec<usize>,
    /// Objects to read, list or delete (written first); for put, cycle
    /// through this many keys.
    #[arg(long)]
    pub objects: Option<u64>,
    /// Key prefix; each step writes below `<prefix><step>/`.
    #[arg(long)]
    pub prefix: Option<String>,
    /// How PUT bodies are signed [default: unsigned].
    #[arg(long, value_enum)]
    pub payload: Option<PayloadMode>,
    /// Send `Expect: 100-continue` and wait for it before PUT bodies.
    #[arg(long)]
    pub expect_continue: bool,
    /// Retry transport failures, 5xx and 429 up to N times [default: 0].
    #[arg(long)]
    pub retries: Option<u32>,
    /// Check every GET body against what was written.
    #[arg(long)]
    pub verify: bool,
    /// Write the objects a read step needs first (the default).
    #[arg(long, overrides_with = "no_prepare")]
    pub prepare: bool,
    /// Do not write them: they exist from an earlier run with the same
    /// prefix, name and size.
    #[arg(long)]
    pub no_prepare: bool,
    /// Operation shares of a mixed step, whole-number weights, e.g.
    /// get=45,stat=30,put=15,delete=10 (the default); a kind left out
    /// weighs 0.
    #[arg(long, value_parser = Mix::from_str)]
    pub mix: Option<Mix>,
    /// Older form of --mix: share of GETs in a mixed step, 0..=1, the rest
    /// PUTs (get=F,put=1-F).
    #[arg(long, conflicts_with = "mix")]
    pub read_fraction: Option<f64>,
    /// Constant rate: start an operation every 1/RATE s, each timed from
    /// when it was meant to start (free of coordinated omission), with at
    /// most --concurrency in flight [default: closed loop].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Width of the intervals whose slowest, median and fastest throughput
    /// each step reports, at least 100ms [default: 1s].
    #[arg(long, value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// Limit on one request, connect to last body byte [default: 120s].
    #[arg(long, value_parser = parse_duration)]
    pub request_timeout: Option<Duration>,
    /// Multiply object sizes by this (e.g. 0.25 on a small machine).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (TOML), e.g. bench/scenarios/large-put.toml.
    #[arg(long)]
    pub scenario: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Multiply every object size by this (e.g. 0.25 on a small machine).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
}

#[derive(Debug, Args)]
pub struct CeilingArgs {
    /// Directory for the disk probe's scratch file (not a tmpfs).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Bytes the disk probe writes, then reads.
    #[arg(long, default_value_t = ByteSize(DISK_PROBE_BYTES_DEFAULT))]
    pub size: ByteSize,
    /// Write the JSON result here (`-` for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SinkArgs {
    #[arg(long, default_value = "127.0.0.1:9900")]
    pub addr: String,
    /// Bytes in each GET-object reply.
    #[arg(long, default_value_t = ByteSize(0))]
    pub object_size: ByteSize,
    /// Exit after this long [default: run until killed].
    #[arg(long, value_parser = parse_duration)]
    pub run_for: Option<Duration>,
}

impl TargetArgs {
    fn validate(
        self,
        bucket_from_scenario: Option<String>,
        buckets_from_scenario: Option<u32>,
    ) -> Result<Target, BenchError> {
        let endpoint = Endpoint::parse(&self.endpoint)?.trust(self.ca_file.as_deref())?;
        let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let access_key = self
            .access_key
            .filter(|k| !k.is_empty())
            .or_else(|| from_env("AWS_ACCESS_KEY_ID"));
        let secret_key = self
            .secret_key
            .filter(|k| !k.is_empty())
            .or_else(|| from_env("AWS_SECRET_ACCESS_KEY"));
        let (Some(access_key), Some(secret_key)) = (access_key, secret_key) else {
            return Err(BenchError::MissingCredentials);
        };
        let bucket = self
            .bucket
            .or(bucket_from_scenario)
            .unwrap_or_else(|| BUCKET_DEFAULT.to_string());
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(BenchError::invalid(
                "--bucket",
                &bucket,
                "3 to 63 of a-z, 0-9, '-', '.'",
            ));
        }
        let count = self.buckets.or(buckets_from_scenario).unwrap_or(1);
        if !(1..=BUCKETS_MAX).contains(&count) {
            return Err(BenchError::invalid(
                "--buckets",
                count,
                format!("must be within 1..={BUCKETS_MAX}"),
            ));
        }
        let buckets = match count {
            1 => vec![bucket.clone()],
            n => (0..n).map(|i| format!("{bucket}-{i}")).collect(),
        };
        if let Some(long) = buckets.iter().find(|b| b.len() > 63) {
            return Err(BenchError::invalid(
                "--buckets",
                count,
                format!("bucket {long} is over 63 characters; shorten --bucket"),
            ));
        }
        Ok(Target {
            endpoint,
            credentials: Credentials {
                access_key,
                secret_key,
            },
            region: self.region,
            bucket,
            buckets,
            server: match (
                self.server_metrics.filter(|u| !u.is_empty()),
                self.server_pid,
            ) {
                (Some(url), _) => Some(ServerProbe::Metrics(url)),
                (None, Some(pid)) => Some(ServerProbe::Pid(pid)),
                (None, None) => None,
            },
        })
    }
}

impl OutputArgs {
    fn validate(self) -> (Outputs, Option<CeilingConfig>) {
        let ceiling = self.with_ceiling.then(|| CeilingConfig {
            dir: self.ceiling_dir,
            disk_bytes: self.ceiling_size.bytes(),
        });
        (
            Outputs {
                json: self.json,
                report: self.report,
            },
            ceiling,
        )
    }
}

impl LoadArgs {
    pub fn validate(self, kind: WorkloadKind) -> Result<Invocation, BenchError> {
        let params = StepParams {
            name: self.name,
            workload: Some(kind),
            size: self.size,
            count: self.count,
            duration: self.duration.map(HumanDuration),
            concurrency: match self.concurrency.len() {
                0 => None,
                1 => Some(Concurrency::One(self.concurrency[0])),
                _ => Some(Concurrency::Sweep(self.concurrency)),
            },
            objects: self.objects,
            prefix: self.prefix,
            payload: self.payload,
            expect_continue: Some(self.expect_continue),
            retries: self.retries,
            verify: Some(self.verify),
            prepare: Some(!self.no_prepare),
            read_fraction: self.read_fraction,
            mix: self.mix,
            interval: self.interval.map(HumanDuration),
            rate: self.rate,
            request_timeout: self.request_timeout.map(HumanDuration),
        };
        let steps = params.resolve(kind.name(), self.scale)?;
        let (outputs, ceiling) = self.output.validate();
        Ok(Invocation {
            command: kind.name().to_string(),
            target: self.target.validate(None, None)?,
            steps,
            scenario: None,
            ceiling,
            outputs,
        })
    }
}

impl RunArgs {
    pub fn validate(self) -> Result<Invocation, BenchError> {
        let scenario = scenario::load(&self.scenario, self.scale)?;
        let (outputs, ceiling) = self.output.validate();
        Ok(Invocation {
            command: "run".into(),
            target: self
                .target
                .validate(scenario.bucket.clone(), scenario.buckets)?,
            steps: scenario.steps,
            scenario: Some(ScenarioInfo {
                name: scenario.name,
                description: scenario.description,
                file: scenario.file.display().to_string(),
                scale: self.scale,
            }),
            ceiling,
            outputs,
        })
    }
}

impl CeilingArgs {
    pub fn validate(self) -> (CeilingConfig, Option<PathBuf>) {
        (
            CeilingConfig {
                dir: self.dir,
                disk_bytes: self.size.bytes(),
            },
            self.json,
        )
    }
}

impl SinkArgs {
    pub fn validate(self) -> SinkConfig {
        SinkConfig {
            addr: self.addr,
            object_bytes: self.object_size.bytes(),
            run_for: self.run_for,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("shoal-bench").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn load_flags_become_one_step_or_a_sweep() {
        let Command::Put(args) = parse(&[
            "put",
            "--access-key",
            "a",
            "--secret-key",
            "s",
            "--size",
            "4KiB",
            "--count",
            "10",
            "--concurrency",
            "1,4",
            "--payload",
            "chunked",
            "--expect-continue",
            "--retries",
            "2",
        ])
        .command
        else {
            panic!("put expected")
        };
        let inv = args.validate(WorkloadKind::Put).unwrap();
        assert_eq!(inv.steps.len(), 2);
        assert_eq!(inv.steps[1].concurrency, 4);
        assert_eq!(inv.steps[0].object_bytes, 4096);
        assert_eq!(inv.steps[0].payload, PayloadMode::Chunked);
        assert!(inv.steps[0].expect_continue);
        assert_eq!(inv.steps[0].retries, 2);
        assert_eq!(inv.target.bucket, BUCKET_DEFAULT);
        assert_eq!(inv.target.buckets, [BUCKET_DEFAULT]);
        assert_eq!(inv.target.endpoint.authority, "127.0.0.1:9000");
    }

    #[test]
    fn buckets_are_numbered_from_the_bucket_name() {
        let Command::Put(args) = parse(&[
            "put",
            "--access-key",
            "a",
            "--secret-key",
            "s",
            "--bucket",
            "load",
            "--buckets",
            "3",
        ])
        .command
        else {
            panic!("put expected")
        };
        let target = args.validate(WorkloadKind::Put).unwrap().target;
        assert_eq!(target.buckets, ["load-0", "load-1", "load-2"]);
        for (count, needle) in [("0", "1..="), ("5000", "1..="), ("2", "63 characters")] {
            let long = "b".repeat(62);
            let Command::Put(args) = parse(&[
                "put",
                "--access-key",
                "a",
                "--secret-key",
                "s",
                "--bucket",
                &long,
                "--buckets",
                count,
            ])
            .command
            else {
                panic!("put expected")
            };
            let err = args.validate(WorkloadKind::Put).unwrap_err().to_string();
            assert!(err.contains("--buckets") && err.contains(needle), "{err}");
        }
    }

    #[test]
    fn no_prepare_turns_preparation_off() {
        let Command::Get(args) = parse(&[
            "get",
            "--access-key",
            "a",
            "--secret-key",
            "s",
            "--no-prepare",
        ])
        .command
        else {
            panic!("get expected")
        };
        assert!(!args.validate(WorkloadKind::Get).unwrap().steps[0].prepare);
    }

    #[test]
    fn bad_buckets_and_endpoints_are_refused() {
        let Command::Put(args) = parse(&[
            "put",
            "--access-key",
            "a",
            "--secret-key",
            "s",
            "--bucket",
            "A_b",
        ])
        .command
        else {
            panic!()
        };
        assert!(args
            .validate(WorkloadKind::Put)
            .unwrap_err()
            .to_string()
            .contains("--bucket"));
        let Command::Put(args) = parse(&[
            "put",
            "--access-key",
            "a",
            "--secret-key",
            "s",
            "--endpoint",
            "https://x",
        ])
        .command
        else {
            panic!()
        };
        assert_eq!(args.validate(WorkloadKind::Put).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn mixes_parse_and_bad_ones_name_the_flag() {
        let Command::Mixed(args) = parse(&[
            "mixed",
            "--access-key",
            "a",
            "--secret-key",
            "s",
            "--mix",
            "get=3,delete=1",
        ])
        .command
        else {
            panic!("mixed expected")
        };
        let mix = args.validate(WorkloadKind::Mixed).unwrap().steps[0].mix;
        assert_eq!((mix.get, mix.stat, mix.put, mix.delete), (3, 0, 0, 1));
        let err = Cli::try_parse_from(["shoal-bench", "mixed", "--mix", "get=3,head=1"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--mix") && err.contains("get=3,head=1"),
            "{err}"
        );
        let both = [
            "shoal-bench",
            "mixed",
            "--mix",
            "get=1",
            "--read-fraction",
            "0.5",
        ];
        assert!(Cli::try_parse_from(both).is_err());
    }

    #[test]
    fn sizes_and_durations_parse_on_the_command_line() {
        let Command::Sink(args) =
            parse(&["sink", "--object-size", "1MiB", "--run-for", "2s"]).command
        else {
            panic!()
        };
        let config = args.validate();
        assert_eq!(config.object_bytes, 1 << 20);
        assert_eq!(config.run_for, Some(Duration::from_secs(2)));
        assert!(Cli::try_parse_from(["shoal-bench", "put", "--size", "huge"]).is_err());
    }
}
