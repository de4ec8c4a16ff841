//! Reads of multipart uploads and their parts. Writes happen only when
//! raft entries are applied (`raft::state_machine`).

use rocksdb::ReadOptions;
use shoal_proto::meta::{MultipartUpload, UploadRef, UploadedPart};

use super::keys::{self, Cf};
use super::{cf, decode, get_decoded, MetaError, MetaStore};

impl MetaStore {
    /// The upload, if it is in progress.
    pub async fn get_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<MultipartUpload>, MetaError> {
        if !keys::is_upload_id(upload_id) {
            return Ok(None);
        }
        let full_key = keys::upload_key(bucket, key.as_bytes(), upload_id);
        self.blocking("get_upload", move |db| {
            get_decoded(db, Cf::Uploads, &full_key)
        })
        .await
    }

    /// Up to `limit` parts of the upload numbered above `after`, in part
    /// number order.
    pub async fn list_parts(
        &self,
        upload_id: &str,
        after: u32,
        limit: usize,
    ) -> Result<Vec<UploadedPart>, MetaError> {
        if !keys::is_upload_id(upload_id) || limit == 0 || after == u32::MAX {
            return Ok(Vec::new());
        }
        let start = keys::part_key(upload_id, after + 1);
        let (_, end) = keys::parts_range(upload_id);
        self.blocking("list_parts", move |db| {
            let mut read_opts = ReadOptions::default();
            read_opts.set_iterate_upper_bound(end);
            let mut iter = db.raw_iterator_cf_opt(cf(db, Cf::Parts), read_opts);
            iter.seek(&start);
            let mut parts = Vec::new();
            while parts.len() < limit {
                let Some((key, value)) = iter.item() else {
                    break;
                };
                parts.push(decode(Cf::Parts, key, value)?);
                iter.next();
            }
            iter.status().map_err(MetaError::rocks("list_parts"))?;
            Ok(parts)
        })
        .await
    }

    /// Up to `limit` uploads of `bucket` whose keys start with `prefix`, in
    /// key then initiation order, after the `(key, upload id)` marker.
    pub async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(String, Option<String>)>,
        limit: usize,
    ) -> Result<Vec<MultipartUpload>, MetaError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let after = after.map(|(key, id)| (key, id.filter(|id| keys::is_upload_id(id))));
        let full_prefix = keys::object_key(bucket, prefix.as_bytes());
        let start = keys::uploads_start(
            bucket,
            prefix.as_bytes(),
            after
                .as_ref()
                .map(|(key, id)| (key.as_bytes(), id.as_deref())),
        );
        let end = keys::bucket_objects_end(bucket);
        self.blocking("list_uploads", move |db| {
            let mut read_opts = ReadOptions::default();
            read_opts.set_iterate_upper_bound(end);
            let mut iter = db.raw_iterator_cf_opt(cf(db, Cf::Uploads), read_opts);
            iter.seek(&start);
            let mut uploads = Vec::new();
            while uploads.len() < limit {
                let Some((key, value)) = iter.item() else {
                    break;
                };
                if !key.starts_with(&full_prefix) {
                    break;
                }
                uploads.push(decode(Cf::Uploads, key, value)?);
                iter.next();
            }
            iter.status().map_err(MetaError::rocks("list_uploads"))?;
            Ok(uploads)
        })
        .await
    }

    /// Up to `limit` uploads, of any bucket, initiated before
    /// `cutoff_unix_ms`: what the reaper aborts.
    pub async fn uploads_initiated_before(
        &self,
        cutoff_unix_ms: u64,
        limit: usize,
    ) -> Result<Vec<UploadRef>, MetaError> {
        self.blocking("uploads_initiated_before", move |db| {
            let mut iter = db.raw_iterator_cf(cf(db, Cf::Uploads));
            iter.seek_to_first();
            let mut expired = Vec::new();
            while expired.len() < limit {
                let Some((key, value)) = iter.item() else {
                    break;
                };
                let upload: MultipartUpload = decode(Cf::Uploads, key, value)?;
                if upload.initiated_unix_ms < cutoff_unix_ms {
                    expired.push(UploadRef {
                        bucket: upload.bucket,
                        key: upload.key,
                        upload_id: upload.upload_id,
                    });
                }
                iter.next();
            }
            iter.status()
                .map_err(MetaError::rocks("uploads_initiated_before"))?;
            Ok(expired)
        })
        .await
    }
}
