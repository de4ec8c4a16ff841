//! The opening of every peer connection: a mutual proof of the cluster
//! secret, bound to both sides' fresh nonces and the shard, so a recorded
//! handshake cannot be replayed and a proof for one shard opens no other.
//!
//! server → Challenge{server_nonce}
//! client → Hello{node_id, shard, client_nonce, HMAC(secret, client label, ...)}
//! server → Welcome{node_id, HMAC(secret, server label, ...)}

use futures_lite::io::{AsyncRead, AsyncWrite};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use shoal_proto::peer::{peer_frame::Handshake, Challenge, Hello, PeerFrame, Welcome};

use super::frame::{read_frame, write_frame};
use super::{PeerAuth, PeerError};
use crate::ids::{NodeId, ShardIndex};

const CLIENT_LABEL: &[u8] = b"shoal-peer-client";
const SERVER_LABEL: &[u8] = b"shoal-peer-server";
const NONCE_BYTES: usize = 32;

fn mac(
    secret: &PeerAuth,
    label: &[u8],
    first: &[u8],
    second: &[u8],
    shard: ShardIndex,
) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.bytes()).expect("HMAC takes any key");
    mac.update(label);
    mac.update(first);
    mac.update(second);
    mac.update(&shard.get().to_be_bytes());
    mac
}

fn nonce() -> Vec<u8> {
    (0..NONCE_BYTES).map(|_| rand::random::<u8>()).collect()
}

fn frame(handshake: Handshake) -> PeerFrame {
    PeerFrame {
        handshake: Some(handshake),
        ..Default::default()
    }
}

/// The server's side; returns the client's node id once it proved the
/// secret for this shard.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    secret: &PeerAuth,
    shard: ShardIndex,
    node_id: NodeId,
) -> Result<NodeId, PeerError> {
    let server_nonce = nonce();
    let challenge = Challenge {
        server_nonce: server_nonce.clone(),
    };
    write_frame(stream, frame(Handshake::Challenge(challenge)), &[]).await?;
    let (header, _) = read_frame(stream).await?;
    let Some(Handshake::Hello(hello)) = header.handshake else {
        return Err(PeerError::Malformed("expected Hello".into()));
    };
    if hello.shard != u32::from(shard.get()) {
        return Err(PeerError::WrongShard {
            expected: shard.get(),
            got: hello.shard,
        });
    }
    if let Err(e) = check_client(secret, &server_nonce, &hello, shard) {
        // Say so before closing, so a misconfigured node fails at once
        // instead of retrying; the answer reveals nothing about the secret.
        let refusal = PeerFrame {
            error: e.to_string(),
            ..Default::default()
        };
        let _ = write_frame(stream, refusal, &[]).await;
        return Err(e);
    }
    let proof = mac(
        secret,
        SERVER_LABEL,
        &hello.client_nonce,
        &server_nonce,
        shard,
    )
    .finalize()
    .into_bytes()
    .to_vec();
    let welcome = Welcome {
        node_id: node_id.get(),
        proof,
    };
    write_frame(stream, frame(Handshake::Welcome(welcome)), &[]).await?;
    Ok(NodeId(hello.node_id))
}

fn check_client(
    secret: &PeerAuth,
    server_nonce: &[u8],
    hello: &Hello,
    shard: ShardIndex,
) -> Result<(), PeerError> {
    mac(
        secret,
        CLIENT_LABEL,
        server_nonce,
        &hello.client_nonce,
        shard,
    )
    .verify_slice(&hello.proof)
    .map_err(|_| PeerError::BadSecret)
}

/// The client's side; returns the server's node id once it proved the
/// secret.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    secret: &PeerAuth,
    shard: ShardIndex,
    node_id: NodeId,
) -> Result<NodeId, PeerError> {
    let (header, _) = read_frame(stream).await?;
    let Some(Handshake::Challenge(challenge)) = header.handshake else {
        return Err(PeerError::Malformed("expected Challenge".into()));
    };
    let client_nonce = nonce();
    let proof = mac(
        secret,
        CLIENT_LABEL,
        &challenge.server_nonce,
        &client_nonce,
        shard,
    )
    .finalize()
    .into_bytes()
    .to_vec();
    let hello = Hello {
        node_id: node_id.get(),
        shard: u32::from(shard.get()),
        client_nonce: client_nonce.clone(),
        proof,
    };
    write_frame(stream, frame(Handshake::Hello(hello)), &[]).await?;
    let (header, _) = read_frame(stream).await?;
    let Some(Handshake::Welcome(welcome)) = header.handshake else {
        return Err(PeerError::BadSecret);
    };
    mac(
        secret,
        SERVER_LABEL,
        &client_nonce,
        &challenge.server_nonce,
        shard,
    )
    .verify_slice(&welcome.proof)
    .map_err(|_| PeerError::BadSecret)?;
    Ok(NodeId(welcome.node_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::run_local;
    use glommio::net::{TcpListener, TcpStream};

    async fn pair(
        server_secret: &str,
        client_secret: &str,
        client_shard: u16,
    ) -> (Result<NodeId, PeerError>, Result<NodeId, PeerError>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server_secret = PeerAuth::new(server_secret.as_bytes()).unwrap();
        let client_secret = PeerAuth::new(client_secret.as_bytes()).unwrap();
        let server = glommio::spawn_local(async move {
            let mut stream = listener.accept().await.unwrap();
            accept(&mut stream, &server_secret, ShardIndex(3), NodeId(10)).await
        });
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let client = connect(
            &mut stream,
            &client_secret,
            ShardIndex(client_shard),
            NodeId(20),
        )
        .await;
        drop(stream);
        (server.await, client)
    }

    #[test]
    fn both_sides_prove_the_secret() {
        run_local(|| async {
            let (server, client) = pair("a-cluster-secret-123", "a-cluster-secret-123", 3).await;
            assert_eq!(server.unwrap(), NodeId(20));
            assert_eq!(client.unwrap(), NodeId(10));

            let (server, client) = pair("a-cluster-secret-123", "another-secret-4567", 3).await;
            assert!(matches!(server, Err(PeerError::BadSecret)));
            assert!(matches!(client, Err(PeerError::BadSecret)));

            let (server, client) = pair("a-cluster-secret-123", "a-cluster-secret-123", 4).await;
            assert!(matches!(server, Err(PeerError::WrongShard { .. })));
            assert!(client.is_err());
        });
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(PeerAuth::new(b"short\n").is_err());
        assert!(PeerAuth::new(b"  sixteen-bytes-ok  \n").is_ok());
    }
}
