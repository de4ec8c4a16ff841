//! The request body type every operation sends: empty, one reused `Bytes`
//! buffer, or that buffer framed as aws-chunked with each 64 KiB chunk
//! signed as it is polled. Any of them may be gated: with
//! `Expect: 100-continue` the first poll waits for the server's
//! `100 Continue` (or `EXPECT_CONTINUE_WAIT`) before any byte is sent.
//!
//! Data frames are slices of the shared payload (no copy); a chunk header
//! is ~90 bytes written into a `BytesMut` reused across chunks.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

use crate::limits::CHUNK_PAYLOAD_BYTES;
use crate::sigv4::chunk::{self, ChunkSigner};

/// Resolves when the body may be sent.
pub type Gate = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct RequestBody {
    kind: Kind,
    gate: Option<Gate>,
    length: u64,
}

enum Kind {
    Empty,
    Full(Option<Bytes>),
    Chunked(Box<Chunked>),
}

struct Chunked {
    data: Bytes,
    chunk_sha256: Arc<[[u8; 32]]>,
    signer: ChunkSigner,
    next_chunk: usize,
    pending_data: Option<Bytes>,
    done: bool,
    scratch: BytesMut,
}

/// Header bytes the scratch buffer holds before it is replaced.
const SCRATCH_BYTES: usize = 4 << 10;

impl RequestBody {
    pub fn empty() -> RequestBody {
        RequestBody {
            kind: Kind::Empty,
            gate: None,
            length: 0,
        }
    }

    pub fn full(data: Bytes) -> RequestBody {
        RequestBody {
            length: data.len() as u64,
            kind: Kind::Full(Some(data)),
            gate: None,
        }
    }

    /// `data` as aws-chunked; `chunk_sha256` holds the SHA-256 of each
    /// `CHUNK_PAYLOAD_BYTES` slice and then of the empty final chunk.
    pub fn chunked(data: Bytes, chunk_sha256: Arc<[[u8; 32]]>, signer: ChunkSigner) -> RequestBody {
        assert_eq!(
            chunk_sha256.len(),
            data.len().div_ceil(CHUNK_PAYLOAD_BYTES) + 1,
            "one hash per chunk plus the final one"
        );
        RequestBody {
            length: chunk::encoded_length(data.len() as u64, CHUNK_PAYLOAD_BYTES),
            kind: Kind::Chunked(Box::new(Chunked {
                data,
                chunk_sha256,
                signer,
                next_chunk: 0,
                pending_data: None,
                done: false,
                scratch: BytesMut::with_capacity(SCRATCH_BYTES),
            })),
            gate: None,
        }
    }

    /// Holds every byte back until `gate` resolves.
    pub fn gated(mut self, gate: Gate) -> RequestBody {
        self.gate = Some(gate);
        self
    }

    /// Bytes on the wire: the `Content-Length`.
    pub fn wire_length(&self) -> u64 {
        self.length
    }
}

impl Chunked {
    fn next_frame(&mut self) -> Option<Bytes> {
        if let Some(data) = self.pending_data.take() {
            return Some(data);
        }
        if self.done {
            return None;
        }
        let index = self.next_chunk;
        let offset = index * CHUNK_PAYLOAD_BYTES;
        let len = self
            .data
            .len()
            .saturating_sub(offset)
            .min(CHUNK_PAYLOAD_BYTES);
        let signature = self.signer.sign(&self.chunk_sha256[index]);
        if self.scratch.capacity() < chunk::header_bytes(len) + 4 {
            self.scratch = BytesMut::with_capacity(SCRATCH_BYTES);
        }
        if index > 0 {
            // Ends the previous chunk's data.
            self.scratch.put_slice(b"\r\n");
        }
        chunk::write_header(&mut self.scratch, len, &signature);
        if len == 0 {
            self.scratch.put_slice(b"\r\n");
            self.done = true;
        } else {
            self.pending_data = Some(self.data.slice(offset..offset + len));
            self.next_chunk += 1;
        }
        Some(self.scratch.split().freeze())
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(gate) = self.gate.as_mut() {
            if gate.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.gate = None;
        }
        let frame = match &mut self.kind {
            Kind::Empty => None,
            Kind::Full(data) => data.take(),
            Kind::Chunked(chunked) => chunked.next_frame(),
        };
        Poll::Ready(frame.map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(data) => data.is_none(),
            Kind::Chunked(chunked) => chunked.done && chunked.pending_data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.length)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use sha2::{Digest, Sha256};

    use super::*;

    fn collect(body: RequestBody) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async { body.collect().await.unwrap().to_bytes().to_vec() })
    }

    /// Parses aws-chunked framing back into (data, signature) pairs.
    fn decode(mut wire: &[u8]) -> Vec<(Vec<u8>, String)> {
        let mut chunks = Vec::new();
        loop {
            let line_end = wire
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("header line");
            let line = std::str::from_utf8(&wire[..line_end]).unwrap();
            let (size, signature) = line
                .split_once(";chunk-signature=")
                .expect("signature field");
            let size = usize::from_str_radix(size, 16).unwrap();
            wire = &wire[line_end + 2..];
            chunks.push((wire[..size].to_vec(), signature.to_string()));
            assert_eq!(&wire[size..size + 2], b"\r\n");
            wire = &wire[size + 2..];
            if size == 0 {
                assert!(wire.is_empty(), "bytes after the final chunk");
                return chunks;
            }
        }
    }

    #[test]
    fn chunked_body_frames_and_signs_every_chunk() {
        let data = Bytes::from((0..150_000u32).map(|i| i as u8).collect::<Vec<_>>());
        let hashes: Arc<[[u8; 32]]> = data
            .chunks(CHUNK_PAYLOAD_BYTES)
            .map(|c| Sha256::digest(c).into())
            .chain(std::iter::once(Sha256::digest(b"").into()))
            .collect();
        let key = [7u8; 32];
        let seed = [9u8; 32];
        let scope = "20250101/us-east-1/s3/aws4_request";
        let body = RequestBody::chunked(
            data.clone(),
            hashes.clone(),
            ChunkSigner::new(key, "20250101T000000Z", scope, &seed),
        );
        let expected_len = body.wire_length();
        let wire = collect(body);
        assert_eq!(wire.len() as u64, expected_len);

        let chunks = decode(&wire);
        assert_eq!(chunks.len(), 4);
        let mut reference = ChunkSigner::new(key, "20250101T000000Z", scope, &seed);
        let mut joined = Vec::new();
        for ((chunk, signature), hash) in chunks.iter().zip(hashes.iter()) {
            assert_eq!(signature.as_bytes(), reference.sign(hash));
            joined.extend_from_slice(chunk);
        }
        assert_eq!(joined, data);
    }

    #[test]
    fn empty_chunked_body_is_one_final_chunk() {
        let hashes: Arc<[[u8; 32]]> = Arc::new([Sha256::digest(b"").into()]);
        let body = RequestBody::chunked(
            Bytes::new(),
            hashes,
            ChunkSigner::new([1; 32], "20250101T000000Z", "s", &[2; 32]),
        );
        let chunks = decode(&collect(body));
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].0.is_empty());
    }

    #[test]
    fn gate_holds_the_body_until_it_opens() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let mut body = RequestBody::full(Bytes::from_static(b"hello")).gated(Box::pin(async {
                let _ = rx.await;
            }));
            let waker = std::task::Waker::noop();
            let mut cx = Context::from_waker(waker);
            assert!(Pin::new(&mut body).poll_frame(&mut cx).is_pending());
            tx.send(()).unwrap();
            let data = body.collect().await.unwrap().to_bytes();
            assert_eq!(&data[..], b"hello");
        });
    }
}
