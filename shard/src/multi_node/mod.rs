//! An in-process cluster for tests: several nodes' shard 0 on one glommio
//! executor, each with its own data directory and a real peer port on
//! loopback, reached only through a [`Relay`] that a test can cut, stall
//! or slow, like a network that fails.
//!
//! Nothing is mocked: the shards open real blob logs and rocksdb stores,
//! raft and chunk pushes travel over TCP with the peer handshake.

mod space_tests;
mod tests;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::FutureExt;
use glommio::net::{TcpListener, TcpStream};

use crate::ids::{NodeId, ShardIndex};
use crate::meta::MetaStore;
use crate::peer::server::{serve, PeerPort};
use crate::peer::PeerAuth;
use crate::shard::{ClusterOptions, PeerRequests, Shard, ShardOptions, ShardStats};

/// What a [`Relay`] does to the traffic to its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkState {
    /// Bytes pass as they come.
    Open,
    /// Bytes pass, each read held this long first.
    Delayed(Duration),
    /// Connections stay open but no byte passes until the state changes.
    Stalled,
    /// Connections are closed and new ones refused at once (a node that is
    /// down or unreachable).
    Cut,
}

/// A TCP relay in front of one node's peer port: the address its group
/// knows the node by.
pub(crate) struct Relay {
    pub addr: String,
    state: Rc<Cell<LinkState>>,
}

impl Relay {
    /// Listens on a fresh loopback port and forwards to `target`.
    fn start(target: std::net::SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay binds");
        let addr = listener.local_addr().expect("relay address").to_string();
        let state = Rc::new(Cell::new(LinkState::Open));
        let shared = Rc::clone(&state);
        glommio::spawn_local(async move {
            while let Ok(incoming) = listener.accept().await {
                if shared.get() == LinkState::Cut {
                    continue; // dropped: closed at once
                }
                let Ok(outgoing) = TcpStream::connect(target).await else {
                    continue;
                };
                let (in_read, in_write) = incoming.split();
                let (out_read, out_write) = outgoing.split();
                let there = pump(in_read, out_write, Rc::clone(&shared));
                let back = pump(out_read, in_write, Rc::clone(&shared));
                glommio::spawn_local(async move {
                    // Either direction ending ends the connection.
                    futures::future::select(Box::pin(there), Box::pin(back)).await;
                })
                .detach();
            }
        })
        .detach();
        Relay { addr, state }
    }

    pub fn set(&self, state: LinkState) {
        self.state.set(state);
    }
}

/// Copies bytes from `from` to `to` while the link lets them through.
async fn pump(
    mut from: impl futures::io::AsyncRead + Unpin,
    mut to: impl futures::io::AsyncWrite + Unpin,
    state: Rc<Cell<LinkState>>,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let read = from.read(&mut buf).fuse();
        let Ok(n) = read.await else { return };
        if n == 0 {
            return;
        }
        loop {
            match state.get() {
                LinkState::Open => break,
                LinkState::Delayed(by) => {
                    glommio::timer::sleep(by).await;
                    break;
                }
                LinkState::Stalled => glommio::timer::sleep(Duration::from_millis(10)).await,
                LinkState::Cut => return,
            }
        }
        if to.write_all(&buf[..n]).await.is_err() || to.flush().await.is_err() {
            return;
        }
    }
}

/// One node of a [`TestCluster`]: its shard 0 and the relay in front of
/// its peer port.
pub(crate) struct TestNode {
    pub node_id: NodeId,
    pub shard: Rc<Shard>,
    pub relay: Relay,
    dir: tempfile::TempDir,
}

impl TestNode {
    /// The directory of the node's blob log segments.
    pub fn blob_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("blobs")
    }
}

/// How each node of a [`TestCluster`] is opened.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub segment_bytes: u64,
    pub gc_grace: Duration,
    pub scrub_bytes_per_s: u64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            segment_bytes: crate::limits::SEGMENT_BYTES_MAX,
            gc_grace: crate::limits::GC_GRACE_DEFAULT,
            scrub_bytes_per_s: 0,
        }
    }
}

pub(crate) struct TestCluster {
    pub nodes: Vec<TestNode>,
}

impl TestCluster {
    /// `size` nodes (ids 1..=size) in one group: node 1 starts it and adds
    /// the others as voters.
    pub async fn start(size: u64) -> TestCluster {
        Self::start_with(size, Settings::default()).await
    }

    /// As [`TestCluster::start`], each node opened with `settings`.
    pub async fn start_with(size: u64, settings: Settings) -> TestCluster {
        let secret = PeerAuth::new(b"a test cluster's shared secret").expect("secret");
        let mut nodes = Vec::new();
        for id in 1..=size {
            nodes.push(TestNode::start(NodeId(id), &secret, settings).await);
        }
        let first = &nodes[0].shard;
        for node in &nodes[1..] {
            first
                .raft()
                .add_member(node.node_id, &node.relay.addr)
                .await
                .expect("the first node adds a member");
        }
        TestCluster { nodes }
    }

    pub fn node(&self, node_id: NodeId) -> &TestNode {
        &self.nodes[usize::try_from(node_id.get() - 1).expect("small id")]
    }

    /// The current leader, waiting up to `within` for one every member
    /// agrees on.
    pub async fn leader(&self, within: Duration) -> &TestNode {
        let deadline = Instant::now() + within;
        loop {
            let leaders: Vec<_> = self.nodes.iter().map(|n| n.shard.raft().leader()).collect();
            if let Some(Some(id)) = leaders.first() {
                if leaders.iter().all(|l| *l == Some(*id))
                    && self.node(*id).shard.raft().is_leader()
                {
                    return self.node(*id);
                }
            }
            assert!(Instant::now() < deadline, "no agreed leader: {leaders:?}");
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A member other than `node` (the first by id).
    pub fn other_than(&self, node: NodeId) -> &TestNode {
        self.nodes
            .iter()
            .find(|n| n.node_id != node)
            .expect("a cluster of more than one node")
    }

    /// Stops every node's shard but `gone`'s (already stopped or dead).
    pub async fn stop_all_but(self, gone: NodeId) {
        for node in self.nodes.iter().filter(|n| n.node_id != gone) {
            node.relay.set(LinkState::Cut);
            node.shard.stop().await;
        }
    }

    /// Stops every node's shard.
    pub async fn stop(self) {
        for node in &self.nodes {
            node.relay.set(LinkState::Cut);
        }
        for node in &self.nodes {
            node.shard.stop().await;
        }
    }
}

impl TestNode {
    async fn start(node_id: NodeId, secret: &PeerAuth, settings: Settings) -> TestNode {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = TcpListener::bind("127.0.0.1:0").expect("peer port binds");
        let relay = Relay::start(listener.local_addr().expect("peer address"));
        let meta = MetaStore::open(&dir.path().join("meta")).expect("store opens");
        let options = ShardOptions {
            index: ShardIndex(0),
            node_id,
            blob_dir: dir.path().join("blobs"),
            segment_bytes: settings.segment_bytes,
            gc_grace: settings.gc_grace,
            scrub_bytes_per_s: settings.scrub_bytes_per_s,
            directory: None,
            cluster: ClusterOptions {
                peer_addr: relay.addr.clone(),
                secret: Some(secret.clone()),
                bootstrap: node_id == NodeId(1),
                ..ClusterOptions::single_node()
            },
        };
        let shard = Shard::open(options, meta, Arc::new(ShardStats::default()))
            .await
            .expect("shard opens");
        shard.start_background(Duration::from_secs(3600));
        let port = PeerPort {
            secret: secret.clone(),
            shard: ShardIndex(0),
            node_id,
        };
        let requests = Rc::new(PeerRequests {
            shard: Rc::clone(&shard),
            shard_count: 1,
        });
        glommio::spawn_local(serve(listener, port, requests)).detach();
        TestNode {
            node_id,
            shard,
            relay,
            dir,
        }
    }
}
