//! The listening side of shard *i*'s peer port: each connection proves the
//! cluster secret, then sends request frames one at a time, which a
//! [`PeerHandler`] (the shard) answers. The transport knows nothing of what
//! the frames mean, so it sits below everything that answers them.

use std::rc::Rc;
use std::time::Duration;

use glommio::net::{TcpListener, TcpStream};
use shoal_proto::peer::PeerFrame;

use super::frame::{read_frame, write_frame};
use super::{handshake, ClusterSecret};
use crate::ids::{NodeId, ShardIndex};
use crate::limits::PEER_HANDSHAKE_TIMEOUT;

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
    pub secret: ClusterSecret,
    pub shard: ShardIndex,
    pub node_id: NodeId,
}

/// Accepts peer connections forever, answering each with `handler`.
pub async fn serve<H: PeerHandler + 'static>(
    listener: TcpListener,
    port: PeerPort,
    handler: Rc<H>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(shard = port.shard.get(), error = %e, "peer accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        glommio::spawn_local(connection(stream, port.clone(), Rc::clone(&handler))).detach();
    }
}

async fn connection<H: PeerHandler>(mut stream: TcpStream, port: PeerPort, handler: Rc<H>) {
    let _ = stream.set_nodelay(true);
    let remote = stream.peer_addr().ok();
    let proved = glommio::timer::timeout(PEER_HANDSHAKE_TIMEOUT, async {
        Ok(handshake::accept(&mut stream, &port.secret, port.shard, port.node_id).await)
    })
    .await;
    let peer = match proved {
        Ok(Ok(peer)) => peer,
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
        let (header, payload) = match read_frame(&mut stream).await {
            Ok(frame) => frame,
            Err(_) => return, // closed or broken: the client reconnects
        };
        handler.heard_from(peer);
        let (response, body) = handler.answer(header, &payload).await;
        if write_frame(&mut stream, response, &body).await.is_err() {
            return;
        }
    }
}
