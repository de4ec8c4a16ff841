//! Pooled, DMA-aligned chunk buffers that move between cores uncopied.
//!
//! The ingress core copies request body frames into a [`ChunkBuf`] (after
//! the record header space) and hashes them there; the buffer then hops to
//! the owner shard's core, whose blob log writes it with O_DIRECT as is, and
//! finally goes back to the pool of the core that took it.

use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use glommio::io::DmaBuffer;

use crate::limits::{CHUNK_BUF_BYTES, CHUNK_BYTES, CHUNK_POOL_BUFFERS_MAX, RECORD_HEADER_BYTES};

/// One chunk's worth of payload with room for the record header in front.
///
/// Layout: `[header: RECORD_HEADER_BYTES][payload: len][spare]`; the whole
/// allocation is `CHUNK_BUF_BYTES`, 4 KiB aligned.
pub struct ChunkBuf {
    dma: DmaBuffer,
    len: usize,
}

// SAFETY: `DmaBuffer` is `!Send` only because one of its storage kinds
// borrows from an executor's registered io_uring memory. Every `ChunkBuf` is
// made by `allocate_dma_buffer_global`, which always takes a plain aligned
// heap allocation that any thread may use and free.
unsafe impl Send for ChunkBuf {}

impl ChunkBuf {
    /// A fresh, empty buffer (prefer [`ChunkPool::take`]).
    pub fn new() -> Self {
        let dma = glommio::allocate_dma_buffer_global(CHUNK_BUF_BYTES);
        assert_eq!(dma.len(), CHUNK_BUF_BYTES);
        ChunkBuf { dma, len: 0 }
    }

    /// Payload bytes filled so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes that can still be appended before the chunk is full.
    pub fn remaining(&self) -> usize {
        CHUNK_BYTES - self.len
    }

    pub fn is_full(&self) -> bool {
        self.len == CHUNK_BYTES
    }

    /// Appends as much of `src` as fits and returns how many bytes it took.
    pub fn fill_from(&mut self, src: &[u8]) -> usize {
        let take = src.len().min(self.remaining());
        let start = RECORD_HEADER_BYTES + self.len;
        self.dma.as_bytes_mut()[start..start + take].copy_from_slice(&src[..take]);
        self.len += take;
        take
    }

    /// The filled payload.
    pub fn payload(&self) -> &[u8] {
        &self.dma.as_bytes()[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + self.len]
    }

    /// The filled payload, to be changed in place (encrypted) before the
    /// chunk is stored.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.dma.as_bytes_mut()[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + self.len]
    }

    /// The header space and the filled payload, for the record writer.
    pub fn header_and_payload_mut(&mut self) -> (&mut [u8], &[u8]) {
        let (header, rest) = self.dma.as_bytes_mut().split_at_mut(RECORD_HEADER_BYTES);
        (header, &rest[..self.len])
    }

    /// The whole aligned allocation (header, payload and spare).
    pub fn as_dma(&self) -> &DmaBuffer {
        &self.dma
    }

    /// Gives up the DMA buffer (for a write that consumes it).
    pub fn into_dma(self) -> (DmaBuffer, usize) {
        (self.dma, self.len)
    }

    /// Rebuilds a buffer from one returned by [`ChunkBuf::into_dma`].
    ///
    /// # Panics
    /// If `dma` is not a full-size chunk allocation or `len` is too large.
    pub fn from_dma(dma: DmaBuffer, len: usize) -> Self {
        assert_eq!(dma.len(), CHUNK_BUF_BYTES);
        assert!(len <= CHUNK_BYTES);
        ChunkBuf { dma, len }
    }

    fn clear(&mut self) {
        self.len = 0;
    }
}

impl Default for ChunkBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ChunkBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkBuf").field("len", &self.len).finish()
    }
}

/// A lock-free pool of chunk buffers, one per core. Any core may return a
/// buffer to it, so buffers that hopped to an owner core come home.
#[derive(Clone)]
pub struct ChunkPool {
    free: Arc<ArrayQueue<ChunkBuf>>,
}

impl ChunkPool {
    pub fn new() -> Self {
        ChunkPool {
            free: Arc::new(ArrayQueue::new(CHUNK_POOL_BUFFERS_MAX)),
        }
    }

    /// An empty buffer: a recycled one when available, else a new one.
    pub fn take(&self) -> ChunkBuf {
        self.free.pop().unwrap_or_default()
    }

    /// Returns a buffer for reuse; it is freed when the pool is full.
    pub fn give(&self, mut buf: ChunkBuf) {
        buf.clear();
        let _ = self.free.push(buf);
    }

    /// Buffers waiting for reuse.
    pub fn idle(&self) -> usize {
        self.free.len()
    }
}

impl Default for ChunkPool {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_stops_at_chunk_size_and_reports_what_it_took() {
        let mut buf = ChunkBuf::new();
        let data = vec![7u8; CHUNK_BYTES + 10];
        assert_eq!(buf.fill_from(&data[..100]), 100);
        assert_eq!(buf.fill_from(&data), CHUNK_BYTES - 100);
        assert!(buf.is_full());
        assert_eq!(buf.fill_from(&data), 0);
        assert_eq!(buf.payload().len(), CHUNK_BYTES);
        assert!(buf.payload().iter().all(|&b| b == 7));
    }

    #[test]
    fn pool_recycles_cleared_buffers_across_threads() {
        let pool = ChunkPool::new();
        let mut buf = pool.take();
        buf.fill_from(b"abc");
        let remote = pool.clone();
        std::thread::spawn(move || remote.give(buf)).join().unwrap();
        assert_eq!(pool.idle(), 1);
        let again = pool.take();
        assert!(again.is_empty());
        assert_eq!(pool.idle(), 0);
    }
}
