//! The Shoal node: flags, the S3 front end, routing to shards, and the
//! wiring that starts one executor per core.
//!
//! Data flows one way: HTTP ([`http_io`]) → S3 parse and auth ([`s3`]) →
//! route to the owner shard ([`route`]) → the shard (`shoal_shard`: blob
//! log, metadata, raft) → response. Nothing below reaches back up.

pub mod addresses;
pub mod admin;
pub mod alloc;
pub mod config_file;
pub mod connections;
pub mod credentials;
pub mod data_dir;
pub mod disk_space;
pub mod flags;
pub mod http_io;
pub mod layout;
pub mod lifecycle;
pub mod limits;
pub mod logging;
pub mod master_key;
pub mod metrics;
pub mod node;
pub mod node_metrics;
pub mod preflight;
pub mod route;
pub mod s3;
pub mod service_manager;
pub mod shutdown;
pub mod tls;
pub mod users;
