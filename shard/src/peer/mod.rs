//! The peer transport: how shard *i* of one node reaches shard *i* of
//! another, for raft RPCs and cluster membership.
//!
//! Shard *i* of a node listens on its own port, `peer port + i`, on its own
//! core, so replica traffic never hops between cores. With peer TLS on,
//! every connection is a mutual-TLS session under the cluster's CA
//! (`crate::tls`). Inside it, every connection starts with a
//! mutual proof of the cluster secret ([`handshake`]); after
//! that it carries [`frame`]s, one request and its response at a time.
//! Raft messages travel as the frame's payload (bincode), outside the prost
//! header.

pub mod client;
pub mod frame;
pub mod handshake;
pub mod join;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::ids::ShardIndex;
use crate::tls::PeerTls;

/// The address of shard `shard` of a node whose peer address (its shard 0
/// port) is `base`: the port plus the shard index.
pub fn shard_addr(base: &str, shard: ShardIndex) -> Result<SocketAddr, PeerError> {
    let base: SocketAddr = base
        .parse()
        .map_err(|_| PeerError::Address(base.to_string()))?;
    let port = base
        .port()
        .checked_add(shard.get())
        .ok_or_else(|| PeerError::Address(format!("{base} + shard {shard}")))?;
    Ok(SocketAddr::new(base.ip(), port))
}

/// What every peer connection proves: the cluster secret and, with peer
/// TLS on, a certificate under the cluster's CA.
#[derive(Clone)]
pub struct PeerAuth {
    secret: Arc<Vec<u8>>,
    tls: Option<Arc<PeerTls>>,
}

impl PeerAuth {
    /// The cluster secret: at least 16 bytes; whitespace around it (a
    /// file's newline) is not part of it. Peer links are plain TCP until
    /// [`PeerAuth::with_tls`].
    pub fn new(bytes: &[u8]) -> Result<PeerAuth, PeerError> {
        let trimmed = bytes.trim_ascii();
        if trimmed.len() < 16 {
            return Err(PeerError::WeakSecret);
        }
        Ok(PeerAuth {
            secret: Arc::new(trimmed.to_vec()),
            tls: None,
        })
    }

    /// Runs every peer connection, both ways, under `tls`.
    pub fn with_tls(self, tls: PeerTls) -> PeerAuth {
        PeerAuth {
            tls: Some(Arc::new(tls)),
            ..self
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.secret
    }

    pub(crate) fn tls(&self) -> Option<&PeerTls> {
        self.tls.as_deref()
    }
}

impl std::fmt::Debug for PeerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeerAuth(tls: {})", self.tls.is_some())
    }
}

/// A TLS handshake's error: certificate trouble (a [`rustls::Error`]) is
/// [`PeerError::Tls`], anything else plain I/O.
pub(crate) fn tls_error(error: std::io::Error) -> PeerError {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(tls) => PeerError::Tls(tls.to_string()),
        None => PeerError::Io(error),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("peer I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("peer sent a malformed frame: {0}")]
    Malformed(String),
    #[error("peer frame of {bytes} bytes is over the {max} allowed")]
    TooLarge { bytes: u64, max: u64 },
    #[error("the peer did not prove the cluster secret")]
    BadSecret,
    #[error("peer speaks for shard {got}, expected {expected}")]
    WrongShard { expected: u16, got: u32 },
    /// The TLS handshake failed on a certificate (ours or theirs): a
    /// configuration error that retrying does not mend.
    #[error("peer TLS refused: {0} (are both nodes' peer certificates signed by the CA each names in --peer-tls-ca, and does each name its peer IP?)")]
    Tls(String),
    #[error("the cluster secret must be at least 16 bytes")]
    WeakSecret,
    #[error("not a peer address: {0}")]
    Address(String),
    #[error("peer answered with an error: {0}")]
    Remote(String),
    /// The peer does not lead the shard's group (it said so).
    #[error("peer does not lead the shard's group: {0}")]
    NotLeader(String),
    /// Too many pushes to this peer are in flight; this one was not sent.
    #[error("{inflight} pushes to {addr} are in flight already")]
    Backlog { addr: String, inflight: usize },
    /// The peer did not answer in time: slow, stopped or gone.
    #[error("peer {addr} did not answer a {what} request within {after:?}")]
    TimedOut {
        addr: String,
        what: &'static str,
        after: std::time::Duration,
    },
}
