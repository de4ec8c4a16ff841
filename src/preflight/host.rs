//! Host-wide checks: kernel and io_uring, locked memory, open files, CPUs
//! and their frequency governor.

use super::{Check, Verdict};
use crate::limits::IO_MEMORY_BYTES;

/// Open files a node may want: per shard a metadata store's files and blob
/// segments, plus one per connection.
const OPEN_FILES_ADVISED: u64 = 65_536;
/// glommio registers each executor's I/O memory with three rings.
const RINGS_PER_CORE: u64 = 3;

pub fn checks(data_dirs: usize) -> Vec<Check> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    vec![
        Check::new(
            "cpus",
            Verdict::Ok,
            format!(
                "{cpus} usable: one executor each by default; {data_dirs} data director{}",
                if data_dirs == 1 { "y" } else { "ies" }
            ),
        ),
        io_uring(),
        memlock(cpus as u64),
        open_files(),
        governor(),
    ]
}

fn io_uring() -> Check {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    // io_uring_params is 120 bytes; the kernel fills in what it set up.
    let mut params = [0u64; 15];
    // SAFETY: io_uring_setup reads and writes `params`, a zeroed buffer of
    // the struct's size; the returned descriptor is closed below.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_io_uring_setup,
            4u32,
            params.as_mut_ptr().cast::<libc::c_void>(),
        )
    };
    if fd < 0 {
        let error = std::io::Error::last_os_error();
        let hint = match error.raw_os_error() {
            Some(libc::ENOSYS) => "this kernel has no io_uring; Shoal needs Linux 5.8 or later",
            Some(libc::EPERM) => {
                "refused: check sysctl kernel.io_uring_disabled (0 allows it) and any seccomp filter of the service"
            }
            _ => "Shoal's executors cannot start without it",
        };
        return Check::new(
            "io_uring",
            Verdict::Fail,
            format!("kernel {kernel}: io_uring_setup failed ({error}): {hint}"),
        );
    }
    // SAFETY: a descriptor this function owns.
    unsafe { libc::close(fd as libc::c_int) };
    Check::new("io_uring", Verdict::Ok, format!("kernel {kernel}: works"))
}

fn memlock(cpus: u64) -> Check {
    let need = RINGS_PER_CORE * IO_MEMORY_BYTES as u64 * cpus;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return Check::new("memlock", Verdict::Ok, "root: not limited");
    }
    match soft_limit(libc::RLIMIT_MEMLOCK) {
        None => Check::new("memlock", Verdict::Ok, "unlimited"),
        Some(limit) if limit >= need => Check::new(
            "memlock",
            Verdict::Ok,
            format!("{} MiB (needs {} MiB)", limit >> 20, need >> 20),
        ),
        Some(limit) => Check::new(
            "memlock",
            Verdict::Warn,
            format!(
                "{} KiB, below the {} MiB the io_uring buffers of {cpus} cores take: they run \
                 unregistered (more CPU per I/O); set LimitMEMLOCK=infinity in the unit \
                 (contrib/systemd/shoal.service) or `ulimit -l unlimited`",
                limit >> 10,
                need >> 20
            ),
        ),
    }
}

fn open_files() -> Check {
    match soft_limit(libc::RLIMIT_NOFILE) {
        None => Check::new("open files", Verdict::Ok, "unlimited"),
        Some(limit) if limit >= OPEN_FILES_ADVISED => {
            Check::new("open files", Verdict::Ok, format!("{limit}"))
        }
        Some(limit) => Check::new(
            "open files",
            Verdict::Warn,
            format!(
                "{limit}: each shard keeps its metadata and blob files open and each client a \
                 socket; set LimitNOFILE=1048576 in the unit or `ulimit -n` to at least \
                 {OPEN_FILES_ADVISED}"
            ),
        ),
    }
}

/// `None` when unlimited.
fn soft_limit(resource: libc::__rlimit_resource_t) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `limit`.
    if unsafe { libc::getrlimit(resource, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    Some(limit.rlim_cur)
}

fn governor() -> Check {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    let cpus = std::fs::read_dir("/sys/devices/system/cpu")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("cpu")
                && name[3..].chars().all(|c| c.is_ascii_digit())
                && name.len() > 3
        });
    for cpu in cpus {
        if let Ok(text) = std::fs::read_to_string(cpu.path().join("cpufreq/scaling_governor")) {
            *counts.entry(text.trim().to_string()).or_default() += 1;
        }
    }
    if counts.is_empty() {
        return Check::new(
            "cpu governor",
            Verdict::Ok,
            "no cpufreq here (a virtual machine, or the firmware sets the clock)",
        );
    }
    let found = counts
        .iter()
        .map(|(g, n)| format!("{g} on {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    if counts.keys().all(|g| g == "performance") {
        Check::new("cpu governor", Verdict::Ok, found)
    } else {
        Check::new(
            "cpu governor",
            Verdict::Warn,
            format!(
                "{found}: a core that clocks down between requests adds latency; set \
                 `performance` (cpupower frequency-set -g performance)"
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_host_check_gives_a_line() {
        let checks = checks(1);
        let names: Vec<_> = checks.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            ["cpus", "io_uring", "memlock", "open files", "cpu governor"]
        );
        // This machine runs the node's own tests on io_uring.
        assert_eq!(checks[1].verdict, Verdict::Ok, "{:?}", checks[1]);
    }
}
