//! Crash points: the durability edges where the fault suite stops the
//! process exactly as `kill -9` (or a power cut, for what reached the
//! disk) would, to check that what was acknowledged survives and what was
//! not leaves nothing half-done behind.
//!
//! Each is a `fail` point named `crash::<edge>`; only builds with the
//! `failpoints` feature have them, set by `FAILPOINTS` at start, e.g.
//! `FAILPOINTS='crash::committed=40*off->return'` dies on the 41st apply.

/// Kills this process with SIGKILL when the fail point `name` fires: no
/// destructor, flush or shutdown step runs.
#[inline]
pub fn crash_point(name: &'static str) {
    #[cfg(feature = "failpoints")]
    if fail::eval(name, |_| ()).is_some() {
        // Straight to stderr: a log line may still sit in a buffer.
        eprintln!("crash point {name} reached: killing this process");
        // SAFETY: raise(3) with a valid signal number has no preconditions.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}
