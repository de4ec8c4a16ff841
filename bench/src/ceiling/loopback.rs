//! The loopback probe: one thread writes 1 MiB buffers into a TCP socket on
//! 127.0.0.1 for `LOOPBACK_PROBE_TIME`, another reads them; the rate is
//! bytes received over the time until the receiver saw the end.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Instant;

use crate::limits::{LOOPBACK_IO_BYTES, LOOPBACK_PROBE_TIME};
use crate::stats::summary::per_second;

/// Bytes per second over one loopback TCP connection.
pub fn probe() -> io::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let receiver = std::thread::spawn(move || -> io::Result<u64> {
        let (mut stream, _) = listener.accept()?;
        let mut buf = vec![0u8; LOOPBACK_IO_BYTES];
        let mut received = 0u64;
        loop {
            match stream.read(&mut buf)? {
                0 => return Ok(received),
                n => received += n as u64,
            }
        }
    });
    let mut sender = TcpStream::connect(addr)?;
    let buf = vec![0xa5u8; LOOPBACK_IO_BYTES];
    let started = Instant::now();
    while started.elapsed() < LOOPBACK_PROBE_TIME {
        sender.write_all(&buf)?;
    }
    sender.shutdown(Shutdown::Write)?;
    let received = receiver
        .join()
        .map_err(|_| io::Error::other("receiver thread panicked"))??;
    Ok(per_second(received, started.elapsed().as_secs_f64()))
}
