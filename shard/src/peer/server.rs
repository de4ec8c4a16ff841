//! The listening side of shard *i*'s peer port: each connection proves the
//! cluster secret, then sends request frames one at a time, which a
//! [`PeerHandler`] (the shard) answers. The transport knows nothing of what
//! the frames mean, so it sits below everything that answers them.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use glommio::net::{TcpListener, TcpStream};
use shoal_proto::peer::PeerFrame;

use super::frame::{read_frame, write_frame};
use super::{handshake, tls_error, PeerAuth};
use crate::ids::{NodeId, ShardIndex};
use crate::limits::{PEER_CONNECTIONS_PER_SHARD_MAX, PEER_HANDSHAKE_TIMEOUT, PEER_IDLE_TIMEOUT};
use crate::tls::TcpOrTls;

/// Prefix of the error a non-leader answers a join with, followed by the
/// leader's peer address when known.
pub const NOT_LEADER: &str = "not-leader";

/// What answers the requests that arrive on a peer port. Everything runs
/// on the port's own core, so nothing here needs to be `Send`.
#[allow(async_fn_in_trait)]
pub trait PeerHandler {
    /// Notes that node `peer` was heard from (a frame arrived from it).
    fn heard_from(&self, peer: NodeId);

    /// The response to one request frame: its header and payload. An
    /// error travels as the header's `error`.
    async fn answer(&self, header: PeerFrame, payload: &[u8]) -> (PeerFrame, Vec<u8>);
}

/// Who a peer port speaks for, as its handshake proves it.
#[derive(Clone, Debug)]
pub struct PeerPort {
    pub secret: PeerAuth,
    pub shard: ShardIndex,
    pub node_id: NodeId,
}

/// Accepts peer connections forever, answering each with `handler`.
/// Connections beyond [`PEER_CONNECTIONS_PER_SHARD_MAX`] are closed at
/// once; a connection that sends nothing for [`PEER_IDLE_TIMEOUT`] (or
/// stops in the middle of a frame that long) is closed.
pub async fn serve<H: PeerHandler + 'static>(
    listener: TcpListener,
    port: PeerPort,
    handler: Rc<H>,
) {
    let open = Rc::new(Cell::new(0usize));
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(shard = port.shard.get(), error = %e, "peer accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if open.get() >= PEER_CONNECTIONS_PER_SHARD_MAX {
            tracing::warn!(
                shard = port.shard.get(),
                remote = ?stream.peer_addr().ok(),
                open = open.get(),
                "peer connection refused: too many open"
            );
            continue;
        }
        open.set(open.get() + 1);
        let (port, handler, open) = (port.clone(), Rc::clone(&handler), Rc::clone(&open));
        glommio::spawn_local(async move {
            connection(stream, port, handler).await;
            open.set(open.get() - 1);
        })
        .detach();
    }
}

async fn connection<H: PeerHandler>(tcp: TcpStream, port: PeerPort, handler: Rc<H>) {
    let _ = tcp.set_nodelay(true);
    let remote = tcp.peer_addr().ok();
    // The TLS session (when on) and the secret's proof share one deadline.
    let proved = glommio::timer::timeout(PEER_HANDSHAKE_TIMEOUT, async {
        let mut stream = match port.secret.tls() {
            None => TcpOrTls::Plain(tcp),
            Some(tls) => {
                let acceptor =
                    futures_rustls::TlsAcceptor::from(std::sync::Arc::clone(&tls.server));
                match acceptor.accept(tcp).await {
                    Ok(session) => {
                        TcpOrTls::Tls(Box::new(futures_rustls::TlsStream::Server(session)))
                    }
                    Err(e) => return Ok(Err(tls_error(e))),
                }
            }
        };
        let peer = handshake::accept(&mut stream, &port.secret, port.shard, port.node_id).await;
        Ok(peer.map(|peer| (stream, peer)))
    })
    .await;
    let (mut stream, peer) = match proved {
        Ok(Ok(proved)) => proved,
        Ok(Err(e)) => {
            tracing::warn!(shard = port.shard.get(), ?remote, error = %e, "peer connection refused");
            return;
        }
        Err(_) => {
            tracing::warn!(
                shard = port.shard.get(),
                ?remote,
                "peer handshake timed out"
            );
            return;
        }
    };
    tracing::debug!(
        shard = port.shard.get(),
        peer = peer.get(),
        "peer connected"
    );
    loop {
        let next = glommio::timer::timeout(PEER_IDLE_TIMEOUT, async {
            Ok(read_frame(&mut stream).await)
        });
        let (header, payload) = match next.await {
            Ok(Ok(frame)) => frame,
            // Closed, broken or idle too long: the client reconnects.
            _ => return,
        };
        handler.heard_from(peer);
        let (response, body) = handler.answer(header, &payload).await;
        if write_frame(&mut stream, response, &body).await.is_err() {
            return;
        }
    }
}
