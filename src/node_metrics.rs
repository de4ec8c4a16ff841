//! Gauges about the node itself, read when `/metrics` is scraped: what
//! binary runs, how full its data directory's filesystem is, what each
//! bucket holds, and the process's CPU time, memory and open files.
//!
//! [`gather`] reads them (`statvfs`, small `/proc` files; it runs on a
//! blocking thread, since `statvfs` of a hung filesystem can wait);
//! [`write`] renders them with the per-bucket figures from the shards (see
//! `shoal_shard::usage`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use shoal_shard::meta::BucketUsage;

/// What [`gather`] read; `None` where a read failed.
#[derive(Clone, Debug, Default)]
pub struct NodeGauges {
    /// Each data directory with `(capacity, available)` bytes of its
    /// filesystem, where `statvfs` answered.
    pub data_dir_bytes: Vec<(PathBuf, u64, u64)>,
    /// `(virtual, resident)` bytes of this process.
    pub memory_bytes: Option<(u64, u64)>,
    /// The most this process has had resident since it started.
    pub resident_max_bytes: Option<u64>,
    /// User plus system CPU seconds this process has used.
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

/// Reads the node's gauges. Blocking: call it off the executor.
pub fn gather(data_dirs: &[PathBuf]) -> NodeGauges {
    NodeGauges {
        data_dir_bytes: data_dirs
            .iter()
            .filter_map(|dir| {
                let (capacity, free) = crate::disk_space::filesystem_bytes(dir)?;
                Some((dir.clone(), capacity, free))
            })
            .collect(),
        memory_bytes: memory_bytes(),
        resident_max_bytes: resident_max_bytes(),
        cpu_seconds: cpu_seconds(),
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64),
        max_fds: open_files_limit(),
    }
}

/// Appends the node's gauges to a Prometheus exposition.
pub fn write(out: &mut String, gauges: &NodeGauges, buckets: &BTreeMap<String, BucketUsage>) {
    // Writing to a String cannot fail.
    let _ = write_all(out, gauges, buckets);
}

fn write_all(
    out: &mut String,
    gauges: &NodeGauges,
    buckets: &BTreeMap<String, BucketUsage>,
) -> std::fmt::Result {
    gauge(
        out,
        "shoal_build_info",
        "The running binary: version and commit.",
    )?;
    writeln!(
        out,
        "shoal_build_info{{version=\"{}\",commit=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        env!("SHOAL_COMMIT")
    )?;

    let dirs: Vec<(String, u64, u64)> = gauges
        .data_dir_bytes
        .iter()
        .map(|(dir, capacity, free)| (label_value(&dir.display().to_string()), *capacity, *free))
        .collect();
    gauge(
        out,
        "shoal_data_dir_capacity_bytes",
        "Size of the filesystem holding each data directory.",
    )?;
    for (dir, capacity, _) in &dirs {
        writeln!(
            out,
            "shoal_data_dir_capacity_bytes{{dir=\"{dir}\"}} {capacity}"
        )?;
    }
    gauge(
        out,
        "shoal_data_dir_free_bytes",
        "Bytes still available to the node on each data directory's filesystem.",
    )?;
    for (dir, _, free) in &dirs {
        writeln!(out, "shoal_data_dir_free_bytes{{dir=\"{dir}\"}} {free}")?;
    }

    gauge(
        out,
        "shoal_bucket_objects",
        "Objects in each bucket (approximate: counted by a scan up to a minute old).",
    )?;
    for (bucket, usage) in buckets {
        let bucket = label_value(bucket);
        writeln!(
            out,
            "shoal_bucket_objects{{bucket=\"{bucket}\"}} {}",
            usage.objects
        )?;
    }
    gauge(
        out,
        "shoal_bucket_bytes",
        "Bytes of the objects in each bucket (approximate, as the objects).",
    )?;
    for (bucket, usage) in buckets {
        let bucket = label_value(bucket);
        writeln!(
            out,
            "shoal_bucket_bytes{{bucket=\"{bucket}\"}} {}",
            usage.bytes
        )?;
    }

    if let Some((virtual_bytes, resident_bytes)) = gauges.memory_bytes {
        gauge(
            out,
            "process_resident_memory_bytes",
            "Resident memory of the process.",
        )?;
        writeln!(out, "process_resident_memory_bytes {resident_bytes}")?;
        gauge(
            out,
            "process_virtual_memory_bytes",
            "Virtual memory of the process.",
        )?;
        writeln!(out, "process_virtual_memory_bytes {virtual_bytes}")?;
    }
    if let Some(peak) = gauges.resident_max_bytes {
        gauge(
            out,
            "process_resident_memory_max_bytes",
            "The most resident memory the process has had since it started.",
        )?;
        writeln!(out, "process_resident_memory_max_bytes {peak}")?;
    }
    if let Some(seconds) = gauges.cpu_seconds {
        writeln!(
            out,
            "# HELP process_cpu_seconds_total User and system CPU time the process has used."
        )?;
        writeln!(out, "# TYPE process_cpu_seconds_total counter")?;
        writeln!(out, "process_cpu_seconds_total {seconds:.2}")?;
    }
    if let Some(open) = gauges.open_fds {
        gauge(
            out,
            "process_open_fds",
            "File descriptors the process has open.",
        )?;
        writeln!(out, "process_open_fds {open}")?;
    }
    if let Some(limit) = gauges.max_fds {
        gauge(
            out,
            "process_max_fds",
            "Most file descriptors the process may open.",
        )?;
        writeln!(out, "process_max_fds {limit}")?;
    }
    Ok(())
}

fn gauge(out: &mut String, name: &str, help: &str) -> std::fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} gauge")
}

/// A label value as the exposition format wants it escaped.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `(virtual, resident)` bytes of this process, from `/proc/self/statm`.
fn memory_bytes() -> Option<(u64, u64)> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let mut pages = statm.split_whitespace().map(|v| v.parse::<u64>().ok());
    // SAFETY: sysconf has no preconditions.
    let page_bytes = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
    let virtual_pages = pages.next()??;
    let resident_pages = pages.next()??;
    Some((virtual_pages * page_bytes, resident_pages * page_bytes))
}

/// Peak resident bytes of this process (`VmHWM` in `/proc/self/status`).
fn resident_max_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User plus system CPU seconds of this process, from `/proc/self/stat`
/// (fields 14 and 15, in clock ticks).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Field 2, the command name, is in parentheses and may hold spaces:
    // count from after it, where field 3 comes first.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let user_ticks: u64 = fields.nth(14 - 3)?.parse().ok()?;
    let system_ticks: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_s = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|&t| t > 0)?;
    Some((user_ticks + system_ticks) as f64 / ticks_per_s as f64)
}

#[allow(clippy::unnecessary_cast)]
fn open_files_limit() -> Option<u64> {
    // SAFETY: `limit` is a plain struct getrlimit fills in.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        (libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0).then_some(limit.rlim_cur as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_for_this_process_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let dirs = vec![dir.path().to_path_buf(), other.path().to_path_buf()];
        let buckets = BTreeMap::from([(
            "photos".to_string(),
            BucketUsage {
                objects: 3,
                bytes: 300,
            },
        )]);
        let mut out = String::new();
        write(&mut out, &gather(&dirs), &buckets);
        assert!(out.contains(&format!("commit=\"{}\"", env!("SHOAL_COMMIT"))));
        assert!(
            out.contains("shoal_bucket_objects{bucket=\"photos\"} 3"),
            "{out}"
        );
        assert!(out.contains("shoal_bucket_bytes{bucket=\"photos\"} 300"));
        let free_lines: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("shoal_data_dir_free_bytes"))
            .collect();
        assert_eq!(free_lines.len(), 2, "one per data directory: {out}");
        for (line, dir) in free_lines.iter().zip(&dirs) {
            assert!(line.contains(&dir.display().to_string()), "{line}");
            let free: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            assert!(free > 0);
        }
        assert!(out.contains("process_resident_memory_bytes "));
        assert!(out.contains("process_open_fds "));
        let value = |name: &str| -> f64 {
            let line = out.lines().find(|l| l.starts_with(name)).expect(name);
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        // This test process has run (and allocated) for a while already.
        assert!(
            value("process_resident_memory_max_bytes ") >= value("process_resident_memory_bytes ")
        );
        let burned = std::time::Instant::now();
        let mut x = 0u64;
        while burned.elapsed() < std::time::Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let later = gather(&dirs).cpu_seconds.unwrap();
        assert!(
            later >= value("process_cpu_seconds_total ") + 0.02,
            "{later}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
