//! The listening side of shard *i*'s peer port: prove the cluster secret,
//! then answer raft RPCs, chunk pushes and fetches, joins and overviews,
//! one frame at a time per connection.

use std::rc::Rc;
use std::time::Duration;

use glommio::net::{TcpListener, TcpStream};
use shoal_proto::peer::{ClusterOverview, Kind, Member, PeerFrame};

use super::frame::{read_frame, write_frame};
use super::{handshake, ClusterSecret};
use crate::chunk::ChunkBuf;
use crate::limits::CHUNK_BYTES;
use crate::raft::{RaftError, ShardRaft};
use crate::shard::Shard;
use prost::Message;
use shoal_proto::meta::MetaCommand;

/// Longest a new connection may take to prove the secret.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Prefix of the error a non-leader answers a join with, followed by the
/// leader's peer address when known.
pub const NOT_LEADER: &str = "not-leader";

/// What a shard's peer port serves from.
#[derive(Clone)]
pub struct PeerService {
    pub shard_ref: Rc<Shard>,
    pub raft: Rc<ShardRaft>,
    pub secret: ClusterSecret,
    pub shard: u16,
    pub shard_count: u16,
    pub node_id: u64,
}

/// Accepts peer connections forever.
pub async fn serve(listener: TcpListener, service: PeerService) {
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(shard = service.shard, error = %e, "peer accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let service = service.clone();
        glommio::spawn_local(connection(stream, service)).detach();
    }
}

async fn connection(mut stream: TcpStream, service: PeerService) {
    let _ = stream.set_nodelay(true);
    let remote = stream.peer_addr().ok();
    let proved = glommio::timer::timeout(HANDSHAKE_TIMEOUT, async {
        Ok(handshake::accept(&mut stream, &service.secret, service.shard, service.node_id).await)
    })
    .await;
    let peer = match proved {
        Ok(Ok(peer)) => peer,
        Ok(Err(e)) => {
            tracing::warn!(shard = service.shard, ?remote, error = %e, "peer connection refused");
            return;
        }
        Err(_) => {
            tracing::warn!(shard = service.shard, ?remote, "peer handshake timed out");
            return;
        }
    };
    tracing::debug!(shard = service.shard, peer, "peer connected");
    loop {
        let (header, payload) = match read_frame(&mut stream).await {
            Ok(frame) => frame,
            Err(_) => return, // closed or broken: the client reconnects
        };
        service.raft.heard_from(peer);
        let (response, body) = answer(&service, header, &payload).await;
        if write_frame(&mut stream, response, &body).await.is_err() {
            return;
        }
    }
}

async fn answer(service: &PeerService, header: PeerFrame, payload: &[u8]) -> (PeerFrame, Vec<u8>) {
    let mut response = PeerFrame {
        request_id: header.request_id,
        kind: header.kind,
        ..Default::default()
    };
    let kind = Kind::try_from(header.kind).unwrap_or(Kind::Unspecified);
    let result: Result<Vec<u8>, String> = match kind {
        Kind::RaftAppend | Kind::RaftVote | Kind::RaftSnapshot => {
            service.raft.serve_rpc(kind, payload).await
        }
        Kind::Join => match header.join {
            None => Err("join without a JoinRequest".into()),
            Some(join) if join.shard_count != u32::from(service.shard_count) => Err(format!(
                "the cluster has {} shards; the joining node has {}",
                service.shard_count, join.shard_count
            )),
            Some(join) => match service.raft.add_member(join.node_id, &join.peer_addr).await {
                Ok(()) => {
                    tracing::info!(
                        shard = service.shard,
                        node = join.node_id,
                        addr = %join.peer_addr,
                        "node joined the shard's group"
                    );
                    Ok(Vec::new())
                }
                Err(RaftError::NotLeader { leader }) => {
                    let addr = leader
                        .and_then(|id| service.raft.member_addr(id))
                        .unwrap_or_default();
                    Err(format!("{NOT_LEADER} {addr}"))
                }
                Err(e) => Err(e.to_string()),
            },
        },
        Kind::PushChunkBlob | Kind::FetchChunkBlob => {
            match <[u8; 32]>::try_from(header.sha256.as_slice()) {
                Err(_) => Err("a chunk request needs a 32-byte sha256".into()),
                Ok(sha256) if kind == Kind::PushChunkBlob => service
                    .shard_ref
                    .store_chunk(sha256, payload)
                    .await
                    .map(|()| Vec::new())
                    .map_err(|e| e.to_string()),
                Ok(sha256) => service
                    .shard_ref
                    .read_local_chunk(sha256)
                    .await
                    .map(|bytes| bytes.to_vec())
                    .map_err(|e| e.to_string()),
            }
        }
        Kind::Propose => match MetaCommand::decode(payload) {
            Err(e) => Err(format!("undecodable command: {e}")),
            Ok(command) => match service.shard_ref.propose_as_leader(command).await {
                Ok((outcome, index)) => {
                    response.log_index = index;
                    bincode::serialize(&outcome).map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            },
        },
        Kind::AppendChunk => match <[u8; 32]>::try_from(header.sha256.as_slice()) {
            Err(_) => Err("a chunk request needs a 32-byte sha256".into()),
            Ok(_) if payload.len() > CHUNK_BYTES => Err("chunk too large".into()),
            Ok(sha256) => {
                let mut buf = ChunkBuf::new();
                buf.fill_from(payload);
                match service.shard_ref.append_replicated(buf, sha256).await {
                    Ok((at, _)) => Ok(shoal_proto::meta::BlobLocation::from(at).encode_to_vec()),
                    Err(e) => Err(e.to_string()),
                }
            }
        },
        Kind::ReadIndex => match service.raft.read_index().await {
            Ok(index) => {
                response.log_index = index;
                Ok(Vec::new())
            }
            Err(e) => Err(e.to_string()),
        },
        Kind::StandForLeader => {
            tracing::info!(
                shard = service.shard,
                "the leader hands this shard's group over: standing for election"
            );
            service
                .raft
                .stand_for_leader()
                .await
                .map(|()| Vec::new())
                .map_err(|e| e.to_string())
        }
        Kind::ClusterOverview => {
            response.overview = Some(overview(service));
            Ok(Vec::new())
        }
        Kind::Unspecified => Err(format!("unknown request kind {}", header.kind)),
    };
    match result {
        Ok(body) => (response, body),
        Err(message) => {
            response.error = message;
            (response, Vec::new())
        }
    }
}

/// This shard's view of the cluster.
pub fn overview(service: &PeerService) -> ClusterOverview {
    ClusterOverview {
        shard_count: u32::from(service.shard_count),
        members: service
            .raft
            .membership()
            .into_iter()
            .map(|(node_id, peer_addr, voter)| Member {
                node_id,
                peer_addr,
                voter,
            })
            .collect(),
        shard_leaders: vec![service.raft.leader().unwrap_or(0)],
        capabilities: service.shard_ref.capabilities(),
    }
}
