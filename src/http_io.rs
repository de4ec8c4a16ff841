//! hyper 1.x on glommio sockets.
//!
//! hyper is runtime-agnostic: it needs a byte stream implementing
//! [`hyper::rt::Read`]/[`hyper::rt::Write`] and, for its header-read
//! timeout, a [`hyper::rt::Timer`]. This module adapts glommio's
//! futures-lite streams and timers to those traits. Everything here runs on
//! the executor that accepted the connection; nothing leaves that core.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::io::{AsyncRead, AsyncWrite};
use hyper::rt::{ReadBufCursor, Sleep, Timer};
use shoal_shard::tls::TcpOrTls;

use crate::limits::{HEADER_WAIT_WHEN_SCARCE, RECV_SLICE_MAX, SLOTS_SCARCE_CHECK};

/// Response body of every service (S3 and admin): full buffers for XML, a
/// chunk stream for GET. Not `Send`: a response is produced and written on
/// the core that accepted the connection, and GET streams hold that core's
/// `Rc`s.
pub type Body = Pin<Box<dyn http_body::Body<Data = bytes::Bytes, Error = io::Error>>>;

/// The client address of a request, which the connection puts in its
/// extensions.
#[derive(Clone, Copy, Debug)]
pub struct RemoteAddr(pub std::net::SocketAddr);

/// A glommio TCP stream (or TLS over one) speaking hyper's I/O traits. A write that cannot
/// make progress for `write_idle` (the client stopped reading) fails, so
/// hyper drops the connection and whatever the response still held (a
/// GET's chunks in flight) instead of keeping it forever.
pub struct GlommioIo {
    pub stream: TcpOrTls,
    write_idle: Duration,
    /// Set while writes are blocked: when they give up.
    write_stalled: Option<glommio::timer::Timer>,
}

impl GlommioIo {
    pub fn new(stream: TcpOrTls, write_idle: Duration) -> GlommioIo {
        GlommioIo {
            stream,
            write_idle,
            write_stalled: None,
        }
    }

    /// What a write that could not go ahead now means: wait (`Pending`,
    /// woken by the socket or the stall timer), or give up once it has
    /// waited too long.
    fn stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let idle = self.write_idle;
        let timer = self
            .write_stalled
            .get_or_insert_with(|| glommio::timer::Timer::new(idle));
        match Pin::new(timer).poll(cx) {
            Poll::Ready(_) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {idle:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Read for GlommioIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // hyper hands over uninitialised spare capacity, and a `&mut [u8]`
        // may only cover initialised bytes: zero at most
        // `RECV_SLICE_MAX` of it (cheaper than the receive copy that
        // follows, and a bound on what one read asks the kernel for).
        // SAFETY: we only ever write initialised bytes into the spare
        // capacity, as `ReadBufCursor::as_mut` requires.
        let spare = unsafe { buf.as_mut() };
        let len = spare.len().min(RECV_SLICE_MAX);
        let spare = &mut spare[..len];
        spare.fill(MaybeUninit::new(0));
        // SAFETY: every element of `spare` was initialised just above, and
        // `MaybeUninit<u8>` has the layout of `u8`.
        let slice = unsafe { &mut *(spare as *mut [MaybeUninit<u8>] as *mut [u8]) };
        match Pin::new(&mut self.stream).poll_read(cx, slice) {
            Poll::Ready(Ok(n)) => {
                // SAFETY: the first `n` bytes hold what the socket delivered
                // (all of `slice` was initialised above).
                unsafe { buf.advance(n) };
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Write for GlommioIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write(cx, buf) {
            Poll::Pending => self.stalled(cx),
            done => {
                self.write_stalled = None;
                done
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.stream).poll_flush(cx) {
            Poll::Pending => self.stalled(cx).map_ok(|_| ()),
            done => {
                self.write_stalled = None;
                done
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}

/// hyper's timer, backed by glommio's per-executor timers.
#[derive(Clone, Copy, Debug, Default)]
pub struct GlommioTimer;

/// A glommio timer that hyper may call `Send + Sync`. hyper sleeps only
/// for its header-read timeout: the wait for a request's headers, on an
/// idle keep-alive connection or a half-sent request. Such a wait also
/// ends early, after [`HEADER_WAIT_WHEN_SCARCE`], while the core's
/// connection slots are nearly all taken ([`set_slots_scarce`]), so idle
/// and half-open clients cannot hold the slots new clients need.
///
/// hyper's `Timer` trait requires `Send + Sync` sleeps because it cannot know
/// the runtime is single-threaded. glommio timers are `!Send`. This is sound
/// here because hyper's HTTP/1 connection future runs on the executor that
/// created it (glommio's `LocalExecutor` never moves tasks between threads),
/// so the sleep is only ever polled and dropped on its own thread. Keep this
/// the only place that asserts it.
struct GlommioSleep {
    started: Instant,
    deadline: Instant,
    /// Armed for the deadline or the next look at the slots, whichever is first.
    timer: glommio::timer::Timer,
}

// SAFETY: see the type's documentation: never leaves its executor thread.
unsafe impl Send for GlommioSleep {}
// SAFETY: as above; `&GlommioSleep` is never shared across threads.
unsafe impl Sync for GlommioSleep {}

impl GlommioSleep {
    fn until(deadline: Instant) -> GlommioSleep {
        let now = Instant::now();
        GlommioSleep {
            started: now,
            deadline,
            timer: glommio::timer::Timer::new(Self::next_look(now, deadline)),
        }
    }

    fn next_look(now: Instant, deadline: Instant) -> Duration {
        deadline
            .saturating_duration_since(now)
            .min(SLOTS_SCARCE_CHECK)
    }
}

impl Future for GlommioSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if Pin::new(&mut self.timer).poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            let scarce = SLOTS_SCARCE.with(Cell::get);
            if now >= self.deadline || (scarce && now - self.started >= HEADER_WAIT_WHEN_SCARCE) {
                return Poll::Ready(());
            }
            let next = Self::next_look(now, self.deadline);
            self.timer = glommio::timer::Timer::new(next);
        }
    }
}

impl Sleep for GlommioSleep {}

thread_local! {
    /// Whether this core's S3 connection slots are nearly all taken.
    static SLOTS_SCARCE: Cell<bool> = const { Cell::new(false) };
}

/// Tells this core's header waits whether its connection slots are nearly
/// all taken (the S3 accept loop keeps it current).
pub fn set_slots_scarce(scarce: bool) {
    SLOTS_SCARCE.with(|flag| flag.set(scarce));
}

impl Timer for GlommioTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(GlommioSleep::until(Instant::now() + duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(GlommioSleep::until(deadline))
    }
}
