//! The PUT body pipeline on the ingress core.
//!
//! Decoded body bytes are copied once, into pooled 1 MiB [`ChunkBuf`]s, and
//! hashed while they are hot in cache: SHA-256 per chunk (the chunk's
//! address) and whatever checksum the client asked for. MD5 over the body
//! (the ETag) is the costliest hash and cannot be split, so each sealed
//! chunk goes to the core's [`Md5Lanes`], which hashes the chunks of all
//! concurrent uploads side by side in SIMD lanes while this upload reads
//! its next chunk. Then the chunk hops to the owner shard's core to be
//! appended and made durable; up to [`PUT_CHUNKS_INFLIGHT_MAX`] appends per
//! upload run at once, so network, hashing and disk overlap.
//!
//! An encrypted upload ([`Ingest::encrypt_with`]) encrypts each chunk after
//! the MD5 lanes gave it back and before it leaves for the owner: every
//! digest the client sees (ETag, checksums, the signed payload hash) is of
//! the plaintext, the chunk's address is of the ciphertext.
//!
//! Nothing here makes an object visible: that is the manifest commit, which
//! the handler proposes only after every append has come back durable and
//! every checksum matched. A failed upload leaves only unreferenced chunks.

use std::collections::VecDeque;
use std::rc::Rc;

use md5_many::Md5State;
use sha2::{Digest, Sha256};
use shoal_shard::admission::{AdmissionError, Charge, Protocol, Stage};
use shoal_shard::chunk::ChunkBuf;
use shoal_shard::chunk_hash::ChunkHash;
use shoal_shard::error::ShardError;
use shoal_shard::limits::{MD5_QUEUE_CHUNKS_MAX, PUT_CHUNKS_INFLIGHT_MAX};
use shoal_shard::ops::{ChunkPlacement, ShardRequest};

use super::checksum::Checksummer;
use super::error::S3Error;
use super::md5_lanes::{ActiveUpload, Md5Answer};
use super::sse::cipher::{self, IV_BYTES};
use super::sse::keys::DataKey;
use super::S3Context;
use shoal_shard::ids::ShardIndex;

/// One durable chunk of the upload, in body order.
#[derive(Clone, Debug)]
pub struct StoredChunk {
    pub sha256: ChunkHash,
    pub size_bytes: u32,
    /// Where it was made durable first, and by which node.
    pub placement: ChunkPlacement,
    /// The counter block it was encrypted from; `None`: plaintext.
    pub iv: Option<[u8; IV_BYTES]>,
}

/// What the body turned out to be, once every chunk is durable.
pub struct Ingested {
    /// Empty for an embedded body.
    pub chunks: Vec<StoredChunk>,
    /// The whole body when it was small enough to embed in the manifest
    /// ([`Ingest::embed_up_to`]); it is stored nowhere yet: the manifest
    /// commit makes it durable.
    pub embedded: Vec<u8>,
    /// The counter block an encrypted embedded body was encrypted from.
    pub embedded_iv: Option<[u8; IV_BYTES]>,
    pub size_bytes: u64,
    pub md5: [u8; 16],
    /// SHA-256 of the whole body, when the request signed it.
    pub body_sha256: Option<[u8; 32]>,
    /// The requested checksum's value (base64), when one was asked for.
    pub checksum: Option<String>,
    /// What the upload still holds of the owner shard's admission budget
    /// (one idle unit): drop it once the manifest commit is final.
    pub charge: Charge,
}

type AppendTask = glommio::Task<Result<StoredChunk, ShardError>>;

pub struct Ingest {
    ctx: Rc<S3Context>,
    owner: ShardIndex,
    protocol: Protocol,
    /// Units held of the owner shard's budget: one per chunk buffer in use.
    charge: Charge,
    /// Whether each chunk still in flight (sealed, hashing or appending, in
    /// body order) holds a unit of `charge`; only the first does when
    /// chunked bodies are not charged incrementally.
    charged: VecDeque<bool>,
    current: Option<ChunkBuf>,
    current_charged: bool,
    chunk_sha: Sha256,
    /// The body's MD5 so far; `None` while a chunk is with the MD5 lanes.
    md5: Option<Md5State>,
    /// The chunk the MD5 lanes are hashing, to be appended once they are done.
    md5_waiting: Option<(Md5Answer, ChunkHash)>,
    /// Sealed chunks waiting for their turn with the MD5 lanes.
    md5_queue: VecDeque<(ChunkBuf, ChunkHash)>,
    /// Counts this upload among the core's MD5 lane users from its first
    /// chunk on: a body that never fills or seals one (an embedded or
    /// small object) must not make the lanes wait for it.
    active: Option<ActiveUpload>,
    body_sha: Option<Sha256>,
    checksum: Option<Checksummer>,
    sealed: Vec<(ChunkBuf, ChunkHash)>,
    inflight: VecDeque<AppendTask>,
    chunks: Vec<StoredChunk>,
    size_bytes: u64,
    /// Bodies up to this many bytes are embedded instead of chunked.
    embed_max_bytes: u64,
    /// Encrypts every chunk (and an embedded body) when set.
    cipher: Option<DataKey>,
}

impl Ingest {
    pub fn new(
        ctx: Rc<S3Context>,
        owner: ShardIndex,
        protocol: Protocol,
        hash_body: bool,
        checksum: Option<Checksummer>,
    ) -> Self {
        let charge = ctx.gates[owner.as_usize()].begin();
        Ingest {
            ctx,
            owner,
            protocol,
            charge,
            charged: VecDeque::new(),
            current: None,
            current_charged: false,
            chunk_sha: Sha256::new(),
            md5: Some(Md5State::new()),
            md5_waiting: None,
            md5_queue: VecDeque::with_capacity(MD5_QUEUE_CHUNKS_MAX + 1),
            active: None,
            body_sha: hash_body.then(Sha256::new),
            checksum,
            sealed: Vec::new(),
            inflight: VecDeque::with_capacity(PUT_CHUNKS_INFLIGHT_MAX),
            chunks: Vec::new(),
            size_bytes: 0,
            embed_max_bytes: 0,
            cipher: None,
        }
    }

    /// Encrypts what is stored under `key` (see the module docs).
    pub fn encrypt_with(&mut self, key: Option<DataKey>) {
        self.cipher = key;
    }

    /// Keeps a body of at most `bytes_max` bytes whole for the manifest
    /// instead of storing it as a chunk. Only for a whole object: a part's
    /// bytes must be chunks, which completion assembles.
    pub fn embed_up_to(&mut self, bytes_max: u64) {
        self.embed_max_bytes = bytes_max;
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Makes sure a chunk buffer is ready to fill, first taking a unit of
    /// the owner shard's admission budget for it (waiting at most the
    /// admission timeout), and returns how many bytes it can still take.
    /// Feed [`Ingest::absorb`] at most that many bytes.
    pub async fn ensure_room(&mut self) -> Result<usize, S3Error> {
        if let Some(buf) = &self.current {
            return Ok(buf.remaining());
        }
        let charge_this = match self.protocol {
            Protocol::FixedLength => true,
            Protocol::Chunked => {
                self.ctx.config.admission.chunked_incremental || self.charge.held_units() == 0
            }
        };
        if charge_this {
            self.acquire_unit().await?;
        }
        self.current_charged = charge_this;
        let buf = self.ctx.pool.take();
        let room = buf.remaining();
        self.current = Some(buf);
        Ok(room)
    }

    async fn acquire_unit(&mut self) -> Result<(), S3Error> {
        loop {
            let gate = &self.ctx.gates[self.owner.as_usize()];
            match gate
                .acquire(&mut self.charge, Stage::PerBatch, self.protocol)
                .await
            {
                Ok(()) => return Ok(()),
                // Our own chunks hold units: wait for the oldest to become
                // durable instead of waiting on the budget while holding it.
                Err(AdmissionError::MustDrain { .. }) => self.drain_one().await?,
                Err(reason) => return Err(S3Error::SlowDown { reason }),
            }
        }
    }

    /// Makes the oldest chunk in flight durable (pushing hashed chunks to
    /// the owner first if none is appending yet).
    async fn drain_one(&mut self) -> Result<(), S3Error> {
        if self.inflight.is_empty() {
            self.pump_md5(true).await?;
        }
        assert!(
            !self.inflight.is_empty() || self.charge.busy_units() == 0,
            "units are busy but no chunk is in flight"
        );
        self.complete_oldest().await
    }

    /// Takes decoded body bytes (no more than [`Ingest::ensure_room`]
    /// allowed). Synchronous, so a decoder callback can call it; a chunk it
    /// fills waits in `sealed` until [`Ingest::send_sealed`].
    pub fn absorb(&mut self, mut data: &[u8]) {
        self.size_bytes += data.len() as u64;
        if let Some(sha) = &mut self.body_sha {
            sha.update(data);
        }
        if let Some(checksum) = &mut self.checksum {
            checksum.update(data);
        }
        while !data.is_empty() {
            let buf = self
                .current
                .as_mut()
                .expect("ensure_room readies a buffer before absorb");
            let taken = buf.fill_from(data);
            if self.cipher.is_none() {
                // Hashed while hot; an encrypted chunk's address is of its
                // ciphertext, taken when it is encrypted.
                self.chunk_sha.update(&data[..taken]);
            }
            data = &data[taken..];
            if buf.is_full() {
                self.seal();
            }
        }
    }

    fn seal(&mut self) {
        if let Some(buf) = self.current.take() {
            let sha256 = match self.cipher {
                None => ChunkHash::from(<[u8; 32]>::from(self.chunk_sha.finalize_reset())),
                // Addressed once encrypted, in `append`.
                Some(_) => ChunkHash::default(),
            };
            self.sealed.push((buf, sha256));
            self.charged.push_back(self.current_charged);
        }
    }

    /// Moves sealed chunks on: in order, each goes to the MD5 lanes once
    /// the previous one is back from them, and then to the owner shard.
    pub async fn send_sealed(&mut self) -> Result<(), S3Error> {
        if self.sealed.is_empty() {
            return Ok(());
        }
        self.md5_queue.extend(self.sealed.drain(..));
        self.pump_md5(false).await?;
        // A body whose bytes are already buffered would otherwise be read to
        // the end without a pause. Let the core's other uploads take a turn
        // after each chunk: fair service, and their chunks meet this one's
        // in the MD5 lanes.
        futures_lite::future::yield_now().await;
        Ok(())
    }

    /// Advances the MD5 pipeline. Without `force`, it waits for the lanes
    /// only when [`MD5_QUEUE_CHUNKS_MAX`] chunks queue behind the one they
    /// hold (so other uploads get time to fill the lanes); with `force` it
    /// drains the queue.
    async fn pump_md5(&mut self, force: bool) -> Result<(), S3Error> {
        loop {
            if let Some((answer, _)) = &mut self.md5_waiting {
                if !(force || answer.is_ready() || self.md5_queue.len() >= MD5_QUEUE_CHUNKS_MAX) {
                    return Ok(());
                }
                let (answer, sha256) = self.md5_waiting.take().expect("checked above");
                let (state, buf) = answer.take();
                self.md5 = Some(state);
                self.append(buf, sha256).await?;
            }
            let Some((buf, sha256)) = self.md5_queue.pop_front() else {
                return Ok(());
            };
            let state = self.md5.take().expect("no chunk is with the lanes here");
            let lanes = &self.ctx.md5_lanes;
            self.active.get_or_insert_with(|| lanes.register());
            let answer = lanes.submit(state, buf);
            self.md5_waiting = Some((answer, sha256));
        }
    }

    /// Sends a hashed chunk to the owner shard, first waiting for the
    /// oldest append when the per-upload pipeline is full.
    async fn append(&mut self, buf: ChunkBuf, sha256: ChunkHash) -> Result<(), S3Error> {
        if self.inflight.len() >= PUT_CHUNKS_INFLIGHT_MAX {
            self.complete_oldest().await?;
        }
        let mut buf = buf;
        let (sha256, iv) = match &self.cipher {
            None => (sha256, None),
            Some(key) => {
                let iv = cipher::random_iv();
                cipher::apply_keystream(key, &iv, 0, buf.payload_mut());
                let sha256 = ChunkHash::from(<[u8; 32]>::from(Sha256::digest(buf.payload())));
                (sha256, Some(iv))
            }
        };
        let ctx = Rc::clone(&self.ctx);
        let owner = self.owner;
        ctx.disks.of_shard(owner).consume(buf.len() as u64);
        let task = glommio::spawn_local(async move {
            let size_bytes = buf.len() as u32;
            let (placement, buf) = ctx
                .router
                .call(owner, |reply| ShardRequest::AppendChunk {
                    buf,
                    sha256,
                    reply,
                })
                .await?;
            ctx.pool.give(buf);
            Ok(StoredChunk {
                sha256,
                size_bytes,
                placement,
                iv,
            })
        });
        self.inflight.push_back(task);
        Ok(())
    }

    async fn complete_oldest(&mut self) -> Result<(), S3Error> {
        if let Some(task) = self.inflight.pop_front() {
            self.chunks.push(task.await?);
            // Durable: its buffer is back in the pool, so is its unit.
            if self.charged.pop_front().expect("one flag per sealed chunk") {
                self.charge.release_durable(1);
            }
        }
        Ok(())
    }

    /// Seals the last partial chunk, waits for every append, and reports
    /// the body's hashes.
    pub async fn finish(mut self) -> Result<Ingested, S3Error> {
        if self.embeddable() {
            return Ok(self.embed());
        }
        if self.current.as_ref().is_some_and(|buf| !buf.is_empty()) {
            self.seal();
        } else if let Some(buf) = self.current.take() {
            self.ctx.pool.give(buf);
            if self.current_charged {
                self.charge.release_durable(1);
            }
        }
        self.md5_queue.extend(self.sealed.drain(..));
        self.pump_md5(true).await?;
        let md5 = self.md5.take().expect("the MD5 pipeline is drained");
        while !self.inflight.is_empty() {
            self.complete_oldest().await?;
        }
        assert_eq!(
            self.chunks
                .iter()
                .map(|c| u64::from(c.size_bytes))
                .sum::<u64>(),
            self.size_bytes,
            "stored chunks must add up to the body"
        );
        Ok(Ingested {
            chunks: self.chunks,
            size_bytes: self.size_bytes,
            md5: md5.finalize(),
            body_sha256: self.body_sha.map(|sha| sha.finalize().into()),
            checksum: self.checksum.map(Checksummer::finish_base64),
            charge: self.charge,
            embedded: Vec::new(),
            embedded_iv: None,
        })
    }

    /// Whether the whole body is still in the first buffer (nothing sealed
    /// or sent) and small enough to embed.
    fn embeddable(&self) -> bool {
        self.size_bytes > 0
            && self.size_bytes <= self.embed_max_bytes
            && self.chunks.is_empty()
            && self.sealed.is_empty()
            && self.md5_queue.is_empty()
            && self.md5_waiting.is_none()
            && self.inflight.is_empty()
    }

    /// The body, hashed here (a few KiB gain nothing from the MD5 lanes),
    /// with its buffer and that buffer's budget unit given back.
    fn embed(mut self) -> Ingested {
        let buf = self
            .current
            .take()
            .expect("an embeddable body is in the first buffer");
        let mut body = buf.payload().to_vec();
        assert_eq!(
            body.len() as u64,
            self.size_bytes,
            "an embedded body is the whole body"
        );
        self.ctx.pool.give(buf);
        if self.current_charged {
            self.charge.release_durable(1);
        }
        self.ctx.metrics.add_embedded_object();
        let md5 = md5_many::md5(&body);
        let embedded_iv = self.cipher.as_ref().map(|key| {
            let iv = cipher::random_iv();
            cipher::apply_keystream(key, &iv, 0, &mut body);
            iv
        });
        Ingested {
            chunks: Vec::new(),
            size_bytes: self.size_bytes,
            md5,
            body_sha256: self.body_sha.map(|sha| sha.finalize().into()),
            checksum: self.checksum.map(Checksummer::finish_base64),
            charge: self.charge,
            embedded: body,
            embedded_iv,
        }
    }
}
