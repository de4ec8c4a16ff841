//! The disk's durable sequential write ceiling: O_DIRECT writes of 4 MiB
//! from one aligned buffer, then one fdatasync, as a durable PUT needs.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::Instant;

const WRITE_BYTES: usize = 4 << 20;
const ALIGN_BYTES: usize = 4096;

/// Bytes per second written and made durable.
pub fn durable_write_rate(dir: &Path, total_bytes: u64) -> io::Result<f64> {
    let path = dir.join(format!(".shoal-bench-disk-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)?;
    let layout =
        std::alloc::Layout::from_size_align(WRITE_BYTES, ALIGN_BYTES).expect("valid layout");
    // SAFETY: the layout has a non-zero size; the buffer is freed below.
    let buf = unsafe { std::alloc::alloc_zeroed(layout) };
    if buf.is_null() {
        return Err(io::Error::other("out of memory"));
    }
    let result = (|| {
        let started = Instant::now();
        let mut written = 0u64;
        while written < total_bytes {
            // SAFETY: `buf` holds WRITE_BYTES initialised bytes, aligned for O_DIRECT.
            let n = unsafe {
                libc::pwrite(
                    file.as_raw_fd(),
                    buf.cast(),
                    WRITE_BYTES,
                    written as libc::off_t,
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            written += n as u64;
        }
        file.sync_data()?;
        Ok(written as f64 / started.elapsed().as_secs_f64())
    })();
    // SAFETY: allocated above with the same layout.
    unsafe { std::alloc::dealloc(buf, layout) };
    let _ = std::fs::remove_file(&path);
    result
}
