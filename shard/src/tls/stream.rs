//! A connection's byte stream: plain TCP, or TLS over it (a peer link
//! under the cluster's CA, or an S3 connection on a TLS port). Whatever
//! reads and writes it (peer frames, hyper) does not know which.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

pub enum TcpOrTls {
    Plain(TcpStream),
    /// Boxed: a TLS session's state is tens of KiB, kept off the stack of
    /// whatever holds a connection.
    Tls(Box<futures_rustls::TlsStream<TcpStream>>),
}

impl TcpOrTls {
    /// The TCP connection underneath, for a close that needs the socket
    /// itself (a half-close, then draining what the client still sends).
    pub fn into_tcp(self) -> TcpStream {
        match self {
            TcpOrTls::Plain(stream) => stream,
            TcpOrTls::Tls(stream) => match *stream {
                futures_rustls::TlsStream::Client(session) => session.into_inner().0,
                futures_rustls::TlsStream::Server(session) => session.into_inner().0,
            },
        }
    }
}

impl AsyncRead for TcpOrTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            TcpOrTls::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            TcpOrTls::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for TcpOrTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            TcpOrTls::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            TcpOrTls::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            TcpOrTls::Plain(stream) => Pin::new(stream).poll_flush(cx),
            TcpOrTls::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            TcpOrTls::Plain(stream) => Pin::new(stream).poll_close(cx),
            TcpOrTls::Tls(stream) => Pin::new(stream.as_mut()).poll_close(cx),
        }
    }
}
