//! Starting a node: one pinned glommio executor per core, each owning its
//! shards and serving S3 on its own SO_REUSEPORT listener.
//!
//! Start-up order: (1) on the main thread, settle the data directory (shard
//! count, credentials) and open every shard's rocksdb (blocking, before any
//! executor exists); (2) each executor recovers its shards' blob logs,
//! starts their raft groups and connects the cross-core hop channels; (3)
//! the core of the metadata shard makes sure the configured users exist;
//! (4) once every core is ready (so buckets and users are loaded), each
//! core starts accepting. A core that fails to start stops the whole
//! process. Before any of it, the data directory is locked for this
//! process and every address the node will listen on is checked to be
//! free ([`crate::data_dir`], [`crate::addresses`]).
//!
//! A node stops in order on SIGTERM or SIGINT; see [`crate::shutdown`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement, PoolPlacement};
use shoal_shard::admission::{AdmissionStats, Gate, NodeBudgets, SliceBudget};
use shoal_shard::chunk::ChunkPool;
use shoal_shard::directory::Directory;
use shoal_shard::limits::HOP_CHANNEL_DEPTH;
use shoal_shard::meta::MetaStore;
use shoal_shard::ops::ShardRequest;
use shoal_shard::peer::join::Joiner;
use shoal_shard::peer::server::PeerPort;
use shoal_shard::peer::{self, PeerAuth};
use shoal_shard::shard::{ClusterOptions, PeerRequests, Shard, ShardOptions, ShardStats};
use shoal_shard::tls::PeerTls;

use crate::addresses::{self, AddressInUse};
use crate::connections::{accept_loop, Connections};
use crate::disk_space::Disks;
use crate::flags::NodeConfig;
use crate::layout::{Layout, LayoutError};
use crate::lifecycle;
use crate::limits::{
    BLOCKING_THREADS_PER_CORE, CUT_CONNECTIONS_WAIT_MAX, IO_MEMORY_BYTES, JOIN_WAIT_MAX,
    SHUTDOWN_POLL_INTERVAL,
};
use crate::metrics::{CoreMetrics, Registry};
use crate::route::{Router, METADATA_SHARD};
use crate::s3::sse::keys::MasterKey;
use crate::s3::S3Context;
use crate::shutdown::{Shutdown, StopLatch};
use crate::tls::S3Tls;
use crate::users::SeedUser;
use crate::{admin, credentials, s3, users};
use shoal_shard::ids::ShardIndex;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    AddressInUse(#[from] AddressInUse),
    #[error("handling SIGTERM, SIGINT and SIGHUP: {0}")]
    Signals(std::io::Error),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialsError),
    #[error(transparent)]
    CredentialsFile(#[from] users::CredentialsFileError),
    #[error("opening metadata of shard {shard}: {source}")]
    Meta {
        shard: ShardIndex,
        source: shoal_shard::meta::MetaError,
    },
    #[error("starting executor for CPU {cpu}: {source}")]
    Executor {
        cpu: usize,
        source: glommio::GlommioError<()>,
    },
    #[error("a core stopped: {0}")]
    CoreFailed(String),
    #[error("cluster secret file {path}: {reason}")]
    ClusterSecret { path: PathBuf, reason: String },
    #[error("S3 TLS: {0}")]
    Tls(shoal_shard::tls::TlsError),
    #[error("peer TLS: {0}")]
    PeerTls(shoal_shard::tls::TlsError),
    #[error(transparent)]
    MasterKey(#[from] crate::master_key::MasterKeyError),
}

/// Hop channel ends one core owns, before they are connected.
#[derive(Default)]
struct CoreChannels {
    /// (shard, receiver) for each local shard, one per remote core.
    inbound: Vec<(ShardIndex, SharedReceiver<ShardRequest>)>,
    /// (shard, sender) for every shard on another core.
    outbound: Vec<(ShardIndex, SharedSender<ShardRequest>)>,
}

pub fn run(mut config: NodeConfig, explicit_shards: bool) -> Result<(), NodeError> {
    // Certificates first: one that cannot be used stops the start before
    // anything is created. SIGHUP is handled from here on (its default
    // action would end the process).
    let s3_tls = match &config.tls {
        None => None,
        Some(files) => Some(S3Tls::load(files.clone()).map_err(NodeError::Tls)?),
    };
    crate::tls::reload_on_sighup(s3_tls.clone()).map_err(NodeError::Signals)?;
    let mut peer_tls = match config.cluster.as_ref().and_then(|c| c.tls.as_ref()) {
        None => None,
        Some(files) => {
            Some(PeerTls::load(&files.cert, &files.key, &files.ca).map_err(NodeError::PeerTls)?)
        }
    };
    // Held until `run` returns: the data directories are this process's.
    let layout = Layout::open(
        &config.data_dirs,
        config.init,
        config.shards,
        explicit_shards,
    )?;
    config.shards = layout.shards();
    addresses::ensure_free(&listen_addresses(&config))?;
    if !config.admin_addr.ip().is_loopback() && config.admin_token.is_none() {
        tracing::warn!(
            admin = %config.admin_addr,
            "the admin endpoint listens beyond this host without --admin-token: anyone who reaches it can manage users and buckets"
        );
    }
    let mut seeds = Vec::new();
    // A node that joins a cluster gets its users from the cluster: keys it
    // generated would work nowhere, since only the first node's are seeded.
    let joining = config.cluster.as_ref().is_some_and(|c| c.join.is_some());
    if joining && config.keys.is_none() {
        tracing::info!("joining a cluster: no key pair generated; use the keys of the cluster's first node (or shoal-ctl user add)");
    } else {
        let keys =
            credentials::load_or_create(layout.first_dir(), config.keys.clone(), &config.region)?;
        seeds.push(SeedUser {
            name: users::BOOTSTRAP_USER.to_string(),
            access_key: keys.access_key,
            secret_key: keys.secret_key,
        });
    }
    if let Some(path) = &config.credentials_file {
        seeds.extend(users::read_credentials_file(path)?);
    }
    let config = Arc::new(config);
    let core_count = config.cpus.len();
    let shard_count = config.shards;
    let core_of = |shard: ShardIndex| shard.as_usize() % core_count;

    let mut metas = HashMap::new();
    for shard in (0..shard_count).map(ShardIndex) {
        let dir = layout.shard_dir(shard);
        std::fs::create_dir_all(&dir).map_err(|source| NodeError::DataDir {
            path: dir.clone(),
            source,
        })?;
        let meta = MetaStore::open(&dir.join("meta"))
            .map_err(|source| NodeError::Meta { shard, source })?;
        metas.insert(shard, (meta, dir));
    }

    let mut channels: Vec<CoreChannels> =
        (0..core_count).map(|_| CoreChannels::default()).collect();
    for shard in (0..shard_count).map(ShardIndex) {
        for core in (0..core_count).filter(|&c| c != core_of(shard)) {
            let (sender, receiver) = shared_channel::new_bounded(HOP_CHANNEL_DEPTH);
            channels[core].outbound.push((shard, sender));
            channels[core_of(shard)].inbound.push((shard, receiver));
        }
    }

    let core_metrics: Vec<Arc<CoreMetrics>> = (0..core_count).map(|_| Arc::default()).collect();
    let shard_stats: Vec<Arc<ShardStats>> = (0..shard_count).map(|_| Arc::default()).collect();
    let mut cluster_secret = None;
    let mut cluster = match &config.cluster {
        None => ClusterOptions::single_node(),
        Some(cluster) => {
            let path = &cluster.secret_file;
            let bytes = std::fs::read(path).map_err(|e| NodeError::ClusterSecret {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            cluster_secret = Some(bytes.clone());
            let mut secret = PeerAuth::new(&bytes).map_err(|e| NodeError::ClusterSecret {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            if let Some(tls) = peer_tls.take() {
                secret = secret.with_tls(tls);
            }
            ClusterOptions {
                peer_addr: cluster.peer_addr.to_string(),
                secret: Some(secret),
                bootstrap: cluster.join.is_none(),
                min_blob_replicas: cluster.min_blob_replicas,
                ..ClusterOptions::single_node()
            }
        }
    };
    cluster.blob_offload = config.blob_offload;
    cluster.catchup_bytes_per_s = config.catchup_bytes_per_s;
    cluster.snapshot_logs_since_last = config.snapshot_every;
    cluster.logs_kept_after_snapshot = config.snapshot_logs_kept;
    let master_key = Arc::new(crate::master_key::load(
        config.sse_master_key_file.as_deref(),
        layout.first_dir(),
        cluster_secret.as_deref(),
    )?);
    drop(cluster_secret);
    let directory = Directory::new();
    let mut seeds = Some(seeds);
    let shutdown = Shutdown::new(core_count, config.shutdown_timeout);
    shutdown.handle_signals().map_err(NodeError::Signals)?;
    let ready = Arc::new(AtomicUsize::new(0));
    let budgets = Arc::new(node_budgets(&config));
    // One stats block per (core, shard) gate, so rejections carry a shard.
    let admission_stats: Vec<Vec<Arc<AdmissionStats>>> = (0..core_count)
        .map(|_| (0..shard_count).map(|_| Arc::default()).collect())
        .collect();
    let registry = Registry {
        disks: Disks::watch(
            layout.dirs().map(Path::to_path_buf).collect(),
            config.disk_reserve_bytes,
            (0..shard_count)
                .map(|s| layout.device_of(ShardIndex(s)))
                .collect(),
        ),
        cores: Arc::new(core_metrics.clone()),
        shards: Arc::new(shard_stats.clone()),
        read_compactions: Arc::new(
            (0..shard_count)
                .map(|shard| metas[&ShardIndex(shard)].0.read_compaction_stats())
                .collect(),
        ),
        budgets: Arc::clone(&budgets),
        admission: Arc::new(admission_stats.clone()),
        operation_labels: &crate::s3::op::S3Op::LABELS,
    };

    let mut executors = Vec::with_capacity(core_count);
    for (core, channels) in channels.into_iter().enumerate() {
        let cpu = config.cpus[core];
        let local: Vec<LocalShard> = (0..shard_count)
            .map(ShardIndex)
            .filter(|&s| core_of(s) == core)
            .map(|index| {
                let (meta, dir) = metas.remove(&index).expect("each shard opened once");
                LocalShard {
                    index,
                    meta,
                    dir,
                    stats: Arc::clone(&shard_stats[index.as_usize()]),
                }
            })
            .collect();
        let start = CoreStart {
            core,
            config: Arc::clone(&config),
            seeds: if core_of(METADATA_SHARD) == core {
                seeds.take()
            } else {
                None
            },
            local,
            channels,
            directory: Arc::clone(&directory),
            cluster: cluster.clone(),
            metrics: Arc::clone(&core_metrics[core]),
            admission_stats: admission_stats[core].clone(),
            registry: registry.clone(),
            ready: Arc::clone(&ready),
            shutdown: Arc::clone(&shutdown),
            s3_tls: s3_tls.clone(),
            master_key: Arc::clone(&master_key),
        };
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("shoal-core-{core}"))
            .io_memory(IO_MEMORY_BYTES)
            .blocking_thread_pool_placement(PoolPlacement::Unbound(BLOCKING_THREADS_PER_CORE))
            .spawn(move || async move {
                if let Err(e) = run_core(start).await {
                    crate::shutdown::exit_now(1, &format!("core {core} failed: {e}"));
                }
            })
            .map_err(|source| NodeError::Executor { cpu, source })?;
        executors.push(handle);
    }
    for handle in executors {
        handle
            .join()
            .map_err(|e| NodeError::CoreFailed(e.to_string()))?;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Every address this node will listen on, with the flag that sets it.
fn listen_addresses(config: &NodeConfig) -> Vec<(String, std::net::SocketAddr, &'static str)> {
    let mut addresses = vec![
        ("S3".to_string(), config.s3_addr, "--s3-addr"),
        ("admin".to_string(), config.admin_addr, "--admin-addr"),
    ];
    if let Some(cluster) = &config.cluster {
        for shard in 0..config.shards {
            let mut addr = cluster.peer_addr;
            addr.set_port(cluster.peer_addr.port() + shard);
            addresses.push((format!("shard {shard} peer"), addr, "--peer-addr"));
        }
    }
    addresses
}

/// The admission budgets the flags ask for (`None` slice: unlimited).
fn node_budgets(config: &NodeConfig) -> NodeBudgets {
    let slices = SliceBudget::PerShard {
        bytes: config.admission.shard_budget_bytes.unwrap_or(u64::MAX),
    };
    NodeBudgets::new(config.shards, slices, config.admission.shared_budget_bytes)
}

/// A shard this core owns, opened on the main thread.
struct LocalShard {
    index: ShardIndex,
    meta: MetaStore,
    /// Holds its `blobs/` and `meta/`, on its data directory.
    dir: PathBuf,
    stats: Arc<ShardStats>,
}

/// Everything one executor needs to start, moved into it.
struct CoreStart {
    core: usize,
    config: Arc<NodeConfig>,
    /// Users to make sure of, on the metadata shard's core.
    seeds: Option<Vec<SeedUser>>,
    local: Vec<LocalShard>,
    channels: CoreChannels,
    directory: Arc<Directory>,
    cluster: ClusterOptions,
    metrics: Arc<CoreMetrics>,
    admission_stats: Vec<Arc<AdmissionStats>>,
    registry: Registry,
    ready: Arc<AtomicUsize>,
    shutdown: Arc<Shutdown>,
    /// The S3 port's TLS; `None`: plain HTTP.
    s3_tls: Option<Arc<S3Tls>>,
    /// Seals SSE-S3 data keys.
    master_key: Arc<MasterKey>,
}

async fn run_core(start: CoreStart) -> Result<(), String> {
    let CoreStart {
        core,
        config,
        seeds,
        local,
        channels,
        directory,
        cluster,
        metrics,
        admission_stats,
        registry,
        ready,
        shutdown,
        s3_tls,
        master_key,
    } = start;
    let mut shards = HashMap::new();
    for LocalShard {
        index,
        meta,
        dir,
        stats,
    } in local
    {
        let blob_dir = dir.join("blobs");
        let shard_directory = (index == METADATA_SHARD).then(|| Arc::clone(&directory));
        let options = ShardOptions {
            index,
            node_id: config.node_id,
            blob_dir,
            segment_bytes: config.segment_bytes,
            gc_grace: config.gc_grace,
            scrub_bytes_per_s: config.scrub_bytes_per_shard_s,
            directory: shard_directory,
            cluster: cluster.clone(),
        };
        let shard = Shard::open(options, meta, stats)
            .await
            .map_err(|e| format!("shard {index}: {e}"))?;
        shard.start_background(config.multipart_expiry);
        shards.insert(index, shard);
    }

    // Connect both ends of every hop channel; each connect waits for its peer.
    for (index, receiver) in channels.inbound {
        let shard = Rc::clone(&shards[&index]);
        let stats = Arc::clone(&registry.shards[index.as_usize()]);
        glommio::spawn_local(async move {
            let receiver = receiver.connect().await;
            while let Some(request) = receiver.recv().await {
                stats.hop_queue_depth.fetch_sub(1, Ordering::Relaxed);
                shard.dispatch(request).await;
            }
        })
        .detach();
    }
    let connects = channels
        .outbound
        .into_iter()
        .map(|(index, sender)| async move { (index, sender.connect().await) });
    let remote: HashMap<_, _> = futures::future::join_all(connects)
        .await
        .into_iter()
        .collect();
    let router = Router::new(
        config.shards,
        shards.clone(),
        remote,
        Arc::clone(&registry.shards),
    );

    if let Some(secret) = &cluster.secret {
        join_cluster(&config, &shards, secret).await?;
    }
    // Users are seeded through the metadata group's leader; a node that
    // joined a cluster gets them from it.
    let leads_metadata = shards
        .get(&METADATA_SHARD)
        .is_some_and(|shard| shard.raft().is_leader());
    if let (Some(seeds), true) = (seeds, leads_metadata) {
        for seed in seeds {
            users::ensure(&router, &directory, &seed)
                .await
                .map_err(|e| format!("user {:?}: {e}", seed.name))?;
        }
    }
    ready.fetch_add(1, Ordering::SeqCst);
    while ready.load(Ordering::SeqCst) < config.cpus.len() {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }

    let gates = registry
        .budgets
        .shards()
        .iter()
        .zip(&admission_stats)
        .map(|(budget, stats)| {
            Gate::new(
                Arc::clone(budget),
                Arc::clone(stats),
                config.admission.timeout,
            )
        })
        .collect();
    let ctx = Rc::new(S3Context::new(
        Arc::clone(&config),
        router,
        Arc::clone(&directory),
        ChunkPool::new(),
        metrics,
        gates,
        core,
        Arc::clone(&registry.disks),
        master_key,
    ));
    let lifecycle_shards = shards
        .iter()
        .map(|(index, shard)| lifecycle::LocalShard {
            shard: Rc::clone(shard),
            stats: Arc::clone(&registry.shards[index.as_usize()]),
        })
        .collect();
    let timing = lifecycle::LifecycleTiming {
        interval: config.lifecycle_interval,
        day: config.lifecycle_day,
    };
    glommio::spawn_local(lifecycle::run(Rc::clone(&ctx), lifecycle_shards, timing)).detach();
    if core == 0 {
        let admin = TcpListener::bind(config.admin_addr)
            .map_err(|e| format!("binding admin {}: {e}", config.admin_addr))?;
        let admin_ctx = Rc::new(admin::AdminContext {
            registry: Rc::new(registry),
            ctx: Rc::clone(&ctx),
            shutdown: Arc::clone(&shutdown),
        });
        // The admin endpoint answers (`/healthz` with 503) until the core
        // ends, so it is never drained.
        let serve_admin = move |req| admin::serve(Rc::clone(&admin_ctx), req);
        let admin_loop = accept_loop(
            admin,
            Connections::admin(),
            StopLatch::default(),
            serve_admin,
        );
        glommio::spawn_local(admin_loop).detach();
    }
    let listener = TcpListener::bind(config.s3_addr)
        .map_err(|e| format!("binding S3 {}: {e}", config.s3_addr))?;
    let connections = Connections::new(config.body_idle_timeout, s3_tls.clone());
    let stop = StopLatch::default();
    let serve_s3 = move |req| s3::serve(Rc::clone(&ctx), req);
    let s3_loop = glommio::spawn_local(accept_loop(
        listener,
        connections.clone(),
        stop.clone(),
        serve_s3,
    ));
    // The admin listener (core 0) and the peer ports were bound before.
    if shutdown.core_serves() {
        let data_dirs = config
            .data_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(",");
        tracing::info!(
            version = crate::flags::VERSION,
            s3 = %config.s3_addr,
            admin = %config.admin_addr,
            cores = config.cpus.len(),
            shards = config.shards,
            data_dirs = %data_dirs,
            config = %config
                .config_file
                .as_deref()
                .map_or("none".into(), |p| p.display().to_string()),
            tls = config.tls.is_some(),
            peer = %config
                .cluster
                .as_ref()
                .map_or("none".into(), |c| c.peer_addr.to_string()),
            peer_tls = config.cluster.as_ref().is_some_and(|c| c.tls.is_some()),
            sigv2 = config.sigv2,
            sse_c_over_http = config.sse_c_over_http,
            "shoal serving"
        );
        crate::service_manager::ready(&format!(
            "serving S3 on {} with {} cores and {} shards",
            config.s3_addr,
            config.cpus.len(),
            config.shards
        ));
    }

    shutdown.requested().await;
    let deadline = shutdown.deadline();
    stop.set();
    s3_loop.await;
    while connections.open() > 0 && Instant::now() < deadline {
        glommio::timer::sleep(SHUTDOWN_POLL_INTERVAL).await;
    }
    let left = connections.open();
    if left > 0 {
        tracing::warn!(
            core,
            connections = left,
            "shutdown timeout passed: cutting connections whose requests are still in progress"
        );
        connections.cut_all();
        // Each ends at its next poll, which the cut itself wakes.
        let cut_by = Instant::now() + CUT_CONNECTIONS_WAIT_MAX;
        while connections.open() > 0 && Instant::now() < cut_by {
            glommio::timer::sleep(SHUTDOWN_POLL_INTERVAL).await;
        }
    }
    shutdown.drained(deadline).await;
    futures::future::join_all(shards.values().map(|shard| shard.stop())).await;
    Ok(())
}

/// Opens the peer port of every local shard, then, on a joining node,
/// asks the cluster to add each of them to its group.
async fn join_cluster(
    config: &NodeConfig,
    shards: &HashMap<ShardIndex, Rc<Shard>>,
    secret: &PeerAuth,
) -> Result<(), String> {
    let Some(cluster) = &config.cluster else {
        return Ok(());
    };
    for (&index, shard) in shards {
        let addr =
            peer::shard_addr(&cluster.peer_addr.to_string(), index).map_err(|e| e.to_string())?;
        let listener = TcpListener::bind(addr)
            .map_err(|e| format!("binding the peer port of shard {index} at {addr}: {e}"))?;
        let port = PeerPort {
            secret: secret.clone(),
            shard: index,
            node_id: config.node_id,
        };
        let requests = Rc::new(PeerRequests {
            shard: Rc::clone(shard),
            shard_count: config.shards,
        });
        glommio::spawn_local(peer::server::serve(listener, port, requests)).detach();
    }
    let Some(contact) = &cluster.join else {
        return Ok(());
    };
    let joiner = Joiner {
        node_id: config.node_id,
        peer_addr: cluster.peer_addr.to_string(),
        shard_count: config.shards,
        secret: secret.clone(),
    };
    for &index in shards.keys() {
        peer::join::join(&joiner, contact, index, JOIN_WAIT_MAX)
            .await
            .map_err(|e| format!("joining the cluster through {contact} (shard {index}): {e}"))?;
        tracing::info!(shard = index.get(), contact = %contact, "joined the shard's group");
    }
    Ok(())
}
