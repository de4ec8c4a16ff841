//! One node per address: every port a node listens on must be free when
//! it starts.
//!
//! glommio listeners set SO_REUSEPORT (one listener per core), which would
//! let a second node on this host bind the same port without an error and
//! silently receive half of the first node's connections. Binding a probe
//! socket would also trip over this node's own connections from before a
//! restart, still closing on the old port; so the check connects instead:
//! if anything answers, something listens there.
//!
//! A listener that answers may also be a dying one: after `kill -9`, the
//! kernel tears a process's io_uring rings down in the background, and an
//! accept still queued on a ring keeps the old listening socket alive (and
//! answering) for a few milliseconds after the process is gone. So an
//! address counts as taken only if it keeps answering for
//! [`LISTEN_TAKEN_AFTER`].
//!
//! Runs on the main thread at start, before any executor binds.

use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use crate::limits::{LISTEN_PROBE_TIMEOUT, LISTEN_TAKEN_AFTER};

/// A port another process already listens on.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} address {addr} is in use: another process (another shoal node?) listens there; \
     stop it or choose another {flag}"
)]
pub struct AddressInUse {
    pub what: String,
    pub addr: SocketAddr,
    pub flag: &'static str,
}

/// Fails on the first of `endpoints` (what, address, flag) that keeps
/// answering connections.
pub fn ensure_free(endpoints: &[(String, SocketAddr, &'static str)]) -> Result<(), AddressInUse> {
    for (what, addr, flag) in endpoints {
        let target = probe_target(*addr);
        let answers = || TcpStream::connect_timeout(&target, LISTEN_PROBE_TIMEOUT).is_ok();
        let first_answer = Instant::now();
        while answers() {
            if first_answer.elapsed() >= LISTEN_TAKEN_AFTER {
                return Err(AddressInUse {
                    what: what.clone(),
                    addr: *addr,
                    flag,
                });
            }
            std::thread::sleep(LISTEN_PROBE_TIMEOUT / 4);
        }
    }
    Ok(())
}

/// Where to connect to reach a listener bound to `addr`: the unspecified
/// address (`0.0.0.0`, `::`) is reached through loopback.
fn probe_target(addr: SocketAddr) -> SocketAddr {
    if !addr.ip().is_unspecified() {
        return addr;
    }
    let loopback = match addr {
        SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    SocketAddr::new(loopback, addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listened_port_is_named() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let error = ensure_free(&[("S3".into(), addr, "--s3-addr")]).unwrap_err();
        assert_eq!(error.addr, addr);
        assert!(error.to_string().contains(&addr.to_string()), "{error}");
        let wildcard = SocketAddr::new([0, 0, 0, 0].into(), addr.port());
        assert!(ensure_free(&[("S3".into(), wildcard, "--s3-addr")]).is_err());
        drop(taken);
        assert!(ensure_free(&[("S3".into(), addr, "--s3-addr")]).is_ok());
    }
}
