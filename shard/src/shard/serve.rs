//! Which [`ShardRequest`] does what. Each arm calls one method of the
//! shard and sends its answer back; a dropped reply receiver means the
//! client went away, and there is nothing left to do.

use std::sync::Arc;

use shoal_proto::meta::{self, meta_command::Op};

use super::Shard;
use crate::limits::SNAPSHOT_WAIT_MAX;
use crate::ops::ShardRequest;

impl Shard {
    pub(super) async fn serve(&self, request: ShardRequest) {
        match request {
            ShardRequest::Propose { op, reply } => {
                let _ = reply.send(self.propose(op).await);
            }
            ShardRequest::AppendChunk { buf, sha256, reply } => {
                let result = self.append_replicated(buf, sha256).await;
                self.publish_stats();
                let _ = reply.send(result);
            }
            ShardRequest::CommitObject {
                manifest,
                chunks,
                condition,
                versioning,
                default_retention,
                reply,
            } => {
                let plain = condition.is_none()
                    && versioning == meta::Versioning::Unversioned
                    && default_retention.is_none();
                let op = match plain {
                    true => Op::PutObject(manifest),
                    false => Op::PutObjectIf(meta::PutObject {
                        manifest: Some(manifest),
                        condition,
                        versioning: versioning.into(),
                        default_retention,
                    }),
                };
                let _ = reply.send(self.commit_with_chunks(op, chunks).await);
            }
            ShardRequest::PutPart {
                part,
                chunks,
                reply,
            } => {
                let _ = reply.send(self.commit_with_chunks(Op::PutPart(part), chunks).await);
            }
            ShardRequest::ReadChunk {
                sha256,
                source_node,
                reply,
            } => {
                let _ = reply.send(self.read_chunk(sha256, source_node).await);
            }
            request @ (ShardRequest::GetObject { .. }
            | ShardRequest::ListVersions { .. }
            | ShardRequest::ListObjects { .. }
            | ShardRequest::BucketHasObjects { .. }
            | ShardRequest::ListBuckets { .. }
            | ShardRequest::GetUpload { .. }
            | ShardRequest::ListParts { .. }
            | ShardRequest::ListUploads { .. }) => self.serve_read(request).await,
            ShardRequest::BucketUsage {
                bucket,
                freshness,
                reply,
            } => {
                let usage = match bucket {
                    Some(bucket) => self.meta.bucket_usage(Some(&bucket)).await.map(Arc::new),
                    None => self.usage.get(&self.meta, freshness).await,
                };
                let _ = reply.send(usage.map_err(Into::into));
            }
            ShardRequest::ClusterView { reply } => {
                let _ = reply.send(Ok(self.group_view().await));
            }
            ShardRequest::AddMember {
                node_id,
                peer_addr,
                reply,
            } => {
                let added = self.raft.add_member(node_id, &peer_addr).await;
                let _ = reply.send(added.map_err(Into::into));
            }
            ShardRequest::RemoveMember { node_id, reply } => {
                let removed = self.raft.remove_member(node_id).await;
                let _ = reply.send(removed.map_err(Into::into));
            }
            ShardRequest::Snapshot { reply } => {
                let built = self.raft.snapshot_now(SNAPSHOT_WAIT_MAX).await;
                self.publish_stats();
                let _ = reply.send(built.map_err(Into::into));
            }
        }
    }

    /// The requests that read the metadata store, each once this node is
    /// current (see `read_current`).
    async fn serve_read(&self, request: ShardRequest) {
        match request {
            ShardRequest::GetObject {
                bucket,
                key,
                version_id,
                reply,
            } => {
                let found = self.read_current(self.meta.get_version(&bucket, &key, version_id));
                let _ = reply.send(found.await);
            }
            ShardRequest::ListVersions {
                bucket,
                prefix,
                after,
                limit,
                reply,
            } => {
                let listed = self.meta.list_versions(&bucket, &prefix, after, limit);
                let _ = reply.send(self.read_current(listed).await);
            }
            ShardRequest::ListObjects {
                bucket,
                prefix,
                after,
                limit,
                reply,
            } => {
                let listed = self.meta.list_objects(&bucket, &prefix, after, limit);
                let _ = reply.send(self.read_current(listed).await);
            }
            ShardRequest::BucketHasObjects { bucket, reply } => {
                let found = self.read_current(self.meta.bucket_has_objects(&bucket));
                let _ = reply.send(found.await);
            }
            ShardRequest::ListBuckets { reply } => {
                let _ = reply.send(self.read_current(self.meta.list_buckets()).await);
            }
            ShardRequest::GetUpload { upload, reply } => {
                let found = self
                    .meta
                    .get_upload(&upload.bucket, &upload.key, &upload.upload_id);
                let _ = reply.send(self.read_current(found).await);
            }
            ShardRequest::ListParts {
                upload_id,
                after,
                limit,
                reply,
            } => {
                let parts = self.meta.list_parts(&upload_id, after, limit);
                let _ = reply.send(self.read_current(parts).await);
            }
            ShardRequest::ListUploads {
                bucket,
                prefix,
                after,
                limit,
                reply,
            } => {
                let uploads = self.meta.list_uploads(&bucket, &prefix, after, limit);
                let _ = reply.send(self.read_current(uploads).await);
            }
            _ => unreachable!("serve hands only reads to serve_read"),
        }
    }
}
