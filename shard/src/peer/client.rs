//! The calling side of a peer port: open an authenticated connection to
//! shard *i* of another node and send it one request frame at a time.
//! Raft's network, chunk replication, joins and handovers all call through
//! here.

use glommio::net::TcpStream;
use shoal_proto::peer::PeerFrame;

use super::frame::{read_frame, write_frame};
use super::{handshake, shard_addr, ClusterSecret, PeerError};
use crate::ids::{NodeId, ShardIndex};
use crate::limits::PEER_CONNECT_TIMEOUT;

/// Opens an authenticated connection to shard `shard` of the node whose
/// peer address is `base`.
pub async fn connect(
    base: &str,
    shard: ShardIndex,
    secret: &ClusterSecret,
    node_id: NodeId,
) -> Result<TcpStream, PeerError> {
    let addr = shard_addr(base, shard)?;
    let open = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(std::io::Error::from)?;
        stream.set_nodelay(true).map_err(std::io::Error::from)?;
        handshake::connect(&mut stream, secret, shard, node_id).await?;
        Ok::<_, PeerError>(stream)
    };
    glommio::timer::timeout(PEER_CONNECT_TIMEOUT, async { Ok(open.await) })
        .await
        .map_err(|_| {
            PeerError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("connecting to {addr}"),
            ))
        })?
}

/// Sends one request on `stream` and returns the response payload.
pub async fn request(
    stream: &mut TcpStream,
    request_id: u64,
    header: PeerFrame,
    payload: &[u8],
) -> Result<(PeerFrame, Vec<u8>), PeerError> {
    let header = PeerFrame {
        request_id,
        ..header
    };
    write_frame(stream, header, payload).await?;
    let (response, payload) = read_frame(stream).await?;
    if response.request_id != request_id {
        return Err(PeerError::Malformed(format!(
            "response to request {} while waiting for {request_id}",
            response.request_id
        )));
    }
    if !response.error.is_empty() {
        return Err(match response.not_leader {
            true => PeerError::NotLeader(response.error),
            false => PeerError::Remote(response.error),
        });
    }
    Ok((response, payload))
}
