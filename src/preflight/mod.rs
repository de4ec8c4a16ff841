//! `shoal preflight`: before a node is deployed, whether this host and its
//! data directories are set up as Shoal needs them, one line per check
//! with a verdict (`ok`, `warn`, `FAIL`) and what to do about it.
//!
//! It checks what the node relies on (a filesystem that takes O_DIRECT,
//! io_uring allowed, enough locked memory and open files, free space above
//! the reserve) and what makes it fast (XFS or ext4 on a local device,
//! the `none` I/O scheduler for NVMe, the `performance` CPU governor), and
//! measures each data directory's disk as a PUT uses it: 4 MiB O_DIRECT
//! writes each followed by `fdatasync`, 4 MiB O_DIRECT reads, and the
//! latency of a 4 KiB write plus `fdatasync` (what every raft append and
//! small PUT waits for), with the probe `shoal-bench ceiling` runs
//! (`shoal-disk-probe`). It reads the directories' layout files as a start
//! would (a device not mounted, or mounted in another's place, fails) and,
//! given `--config`, the whole file as `shoal serve` would. Nothing is
//! created or left behind: a directory not made yet is measured in its
//! parent.
//!
//! The exit status is 1 when any check failed, else 0: a provisioning
//! script can stop on it.

mod disk;
mod host;

use std::fmt::Write;
use std::path::PathBuf;

use crate::flags::PreflightFlags;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    /// What was found, and for anything but `ok`, what to do.
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, verdict: Verdict, detail: impl Into<String>) -> Check {
        Check {
            name,
            verdict,
            detail: detail.into(),
        }
    }
}

/// Runs every check; returns the report and whether any failed.
pub fn run(flags: &PreflightFlags) -> (String, bool) {
    let dirs: Vec<PathBuf> = flags
        .data_dir
        .iter()
        .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone()))
        .collect();
    let mut checks = host::checks(dirs.len());
    if let Some(path) = &flags.config {
        checks.push(config_file(path));
    }
    checks.push(match crate::layout::inspect(&dirs) {
        Ok(found) => Check::new("layout", Verdict::Ok, found),
        Err(e) => Check::new("layout", Verdict::Fail, e.to_string()),
    });
    for dir in &dirs {
        checks.extend(disk::checks(dir, flags.probe_size, flags.reserve_bytes()));
    }
    checks.extend(disk::shared_devices(&dirs));
    let failed = checks.iter().any(|c| c.verdict == Verdict::Fail);
    (render(&checks), failed)
}

/// Whether `shoal serve` would take the config file: every key a flag,
/// every value one the flag takes.
fn config_file(path: &std::path::Path) -> Check {
    let args = ["shoal", "serve", "--config"]
        .into_iter()
        .map(std::ffi::OsString::from)
        .chain([path.as_os_str().to_os_string()])
        .collect();
    let parsed = crate::config_file::parse(args).map(|cli| match cli.command {
        crate::flags::Command::Serve(flags) => flags.validate().map_err(|e| e.to_string()),
        crate::flags::Command::Preflight(_) => unreachable!("parsed a serve command"),
    });
    match parsed {
        Ok(Ok(_)) => Check::new(
            "config",
            Verdict::Ok,
            format!("{}: `shoal serve` takes it", path.display()),
        ),
        Ok(Err(e)) => Check::new("config", Verdict::Fail, format!("{}: {e}", path.display())),
        Err(e) => {
            let first = e.to_string();
            let first = first.lines().next().unwrap_or_default().to_string();
            Check::new("config", Verdict::Fail, first)
        }
    }
}

fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for check in checks {
        let _ = writeln!(
            out,
            "{:<5} {:<width$}  {}",
            check.verdict.label(),
            check.name,
            check.detail
        );
    }
    let count = |v: Verdict| checks.iter().filter(|c| c.verdict == v).count();
    let _ = writeln!(
        out,
        "\n{} checks: {} ok, {} warnings, {} failed",
        checks.len(),
        count(Verdict::Ok),
        count(Verdict::Warn),
        count(Verdict::Fail)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_each_check_and_counts_verdicts() {
        let checks = vec![
            Check::new("filesystem", Verdict::Ok, "/d: xfs"),
            Check::new("cpu governor", Verdict::Warn, "powersave: set performance"),
            Check::new("io_uring", Verdict::Fail, "refused"),
        ];
        let out = render(&checks);
        assert!(out.contains("ok    filesystem    /d: xfs"), "{out}");
        assert!(out.contains("FAIL  io_uring"), "{out}");
        assert!(
            out.ends_with("3 checks: 1 ok, 1 warnings, 1 failed\n"),
            "{out}"
        );
    }
}
