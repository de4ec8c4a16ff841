//! Telling a service manager how the node stands, by the `sd_notify`
//! protocol: systemd (`Type=notify`) starts the units that need the node
//! only once it sends `READY=1`, which it does after every listener (S3 on
//! every core, admin, each shard's peer port) is bound, and learns from
//! `STOPPING=1` that a stop is in order, not a crash.
//!
//! The protocol is one datagram per message to the unix socket named by
//! `NOTIFY_SOCKET` (a leading `@` names an abstract socket); without the
//! variable every call does nothing, so a node started by hand is not
//! affected. A message that cannot be sent is logged, never fatal.

use std::os::unix::net::UnixDatagram;

const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Every listener is bound and every core serves.
pub fn ready(status: &str) {
    send(&format!(
        "READY=1\nMAINPID={}\nSTATUS={status}",
        std::process::id()
    ));
}

/// A stop in order has begun.
pub fn stopping() {
    send("STOPPING=1\nSTATUS=stopping: draining requests in progress");
}

fn send(message: &str) {
    let Some(path) = std::env::var_os(NOTIFY_SOCKET) else {
        return;
    };
    if let Err(e) = send_to(&path, message) {
        tracing::warn!(socket = ?path, error = %e, "could not notify the service manager");
    }
}

fn send_to(path: &std::ffi::OsStr, message: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    let socket = UnixDatagram::unbound()?;
    // Sent from an executor thread: never wait on a manager that does not
    // read (a full queue fails the send, which is logged).
    socket.set_nonblocking(true)?;
    let bytes = path.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => std::os::unix::net::SocketAddr::from_abstract_name(name)?,
        None => std::os::unix::net::SocketAddr::from_pathname(path)?,
    };
    socket.send_to_addr(message.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_a_path_socket_and_an_abstract_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        send_to(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("shoal-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&addr).unwrap();
        send_to(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}
