//! Incremental decoder for `aws-chunked` request bodies, the framing S3
//! clients use for streaming uploads:
//!
//! ```text
//! <hex size>[;chunk-signature=<64 hex>]\r\n<data>\r\n     (repeated)
//! 0[;chunk-signature=<64 hex>]\r\n
//! [<trailer name>:<value>\r\n ... [x-amz-trailer-signature:<64 hex>\r\n]]
//! \r\n
//! ```
//!
//! The decoder owns the framing, the chunk-signature chain
//! ([`ChunkSigner`], seeded by [`crate::s3::auth`]) and the trailing
//! checksum. It is a pure state machine: the caller feeds raw body bytes in
//! pieces of any size and receives decoded payload bytes through a callback,
//! so memory stays constant whatever the chunk size. Only header and trailer
//! lines are buffered, each capped ([`CHUNK_LINE_BYTES_MAX`],
//! [`TRAILER_LINE_BYTES_MAX`], [`TRAILER_LINES_MAX`]).
//!
//! Bytes reach the callback before the end of their chunk, so before its
//! signature is checked: the caller must not make the object visible until
//! [`ChunkedDecoder::finish`] returns `Ok`.
//!
//! Leniency, where real clients differ: the empty line that ends the body may
//! be missing at end of input, chunk extensions are ignored in unsigned mode,
//! and unknown trailer lines are ignored (but still covered by the trailer
//! signature). Every other line must end in CRLF.

use sha2::{Digest, Sha256};

use crate::limits::CHUNK_LINE_BYTES_MAX;
use crate::limits::TRAILER_LINES_MAX;
use crate::limits::TRAILER_LINE_BYTES_MAX;
use crate::s3::auth::sigv4::{self, Signature};
use crate::s3::auth::{ChunkSigner, PayloadMode};
use crate::s3::checksum::{ChecksumAlgorithm, Checksummer};

/// A chunk size must fit in a u64.
const CHUNK_SIZE_HEX_DIGITS_MAX: usize = 16;
const SIGNATURE_EXTENSION: &[u8] = b"chunk-signature=";
const TRAILER_SIGNATURE_NAME: &str = "x-amz-trailer-signature";

const _: () = assert!(CHUNK_LINE_BYTES_MAX >= CHUNK_SIZE_HEX_DIGITS_MAX + 1 + 16 + 64);
const _: () = assert!(TRAILER_LINE_BYTES_MAX >= TRAILER_SIGNATURE_NAME.len() + 1 + 64);

/// How the body is framed, from `x-amz-content-sha256`.
#[derive(Clone, Debug)]
pub enum ChunkedMode {
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: every chunk signed, no trailer.
    Signed(ChunkSigner),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: signed chunks and trailer.
    SignedTrailer(ChunkSigner),
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: no signatures, trailer allowed.
    UnsignedTrailer,
}

impl ChunkedMode {
    /// The framing of a body sent in `payload` mode; `None` for a plain
    /// body.
    pub fn of(payload: PayloadMode) -> Option<ChunkedMode> {
        match payload {
            PayloadMode::Sha256(_) | PayloadMode::Unsigned => None,
            PayloadMode::StreamingSigned { seed } => Some(ChunkedMode::Signed(seed)),
            PayloadMode::StreamingSignedTrailer { seed } => Some(ChunkedMode::SignedTrailer(seed)),
            PayloadMode::StreamingUnsignedTrailer => Some(ChunkedMode::UnsignedTrailer),
        }
    }
}

/// What the trailer carried once the body is complete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trailer {
    /// The checksum trailer, verified against the decoded body: its
    /// algorithm and base64 value as sent (e.g. `sOO8/Q==`).
    pub checksum: Option<(ChecksumAlgorithm, String)>,
}

/// Why an aws-chunked body was refused. Offsets count raw body bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    #[error("body ended inside the aws-chunked framing after {raw_bytes} bytes")]
    Incomplete { raw_bytes: u64 },
    #[error("signature of chunk {chunk_index} does not match")]
    SignatureMismatch { chunk_index: u64 },
    #[error("trailer signature does not match")]
    TrailerSignatureMismatch,
    #[error("{algorithm} in the trailer does not match the body")]
    BadDigest { algorithm: ChecksumAlgorithm },
    #[error("line at byte {offset_bytes} is longer than {line_bytes_max} bytes")]
    LineTooLong {
        offset_bytes: u64,
        line_bytes_max: usize,
    },
    #[error("invalid chunk size at byte {offset_bytes}")]
    BadChunkSize { offset_bytes: u64 },
    #[error("malformed aws-chunked body at byte {offset_bytes}: {reason}")]
    Malformed {
        offset_bytes: u64,
        reason: &'static str,
    },
    #[error("malformed trailer at byte {offset_bytes}: {reason}")]
    MalformedTrailer {
        offset_bytes: u64,
        reason: &'static str,
    },
    #[error("declared {algorithm} trailer is missing")]
    MissingTrailer { algorithm: ChecksumAlgorithm },
    #[error("decoded body has {decoded_bytes} bytes, x-amz-decoded-content-length says {expected_bytes}")]
    DecodedLengthMismatch {
        decoded_bytes: u64,
        expected_bytes: u64,
    },
}

impl ChunkedError {
    /// The AWS error code for the XML reply.
    pub fn s3_code(&self) -> &'static str {
        match self {
            Self::Incomplete { .. } => "IncompleteBody",
            Self::SignatureMismatch { .. } | Self::TrailerSignatureMismatch => {
                "SignatureDoesNotMatch"
            }
            Self::BadDigest { .. } => "BadDigest",
            Self::BadChunkSize { .. } => "InvalidChunkSizeError",
            Self::LineTooLong { .. } | Self::Malformed { .. } => "InvalidRequest",
            Self::MalformedTrailer { .. } | Self::MissingTrailer { .. } => "MalformedTrailerError",
            Self::DecodedLengthMismatch {
                decoded_bytes,
                expected_bytes,
            } => {
                if decoded_bytes < expected_bytes {
                    "IncompleteBody"
                } else {
                    "InvalidRequest"
                }
            }
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Self::SignatureMismatch { .. } | Self::TrailerSignatureMismatch => 403,
            _ => 400,
        }
    }
}

#[derive(Clone, Debug)]
enum State {
    /// Collecting a chunk-size line.
    SizeLine,
    /// Passing chunk data through; this many bytes of the chunk are left.
    Data {
        remaining_bytes: u64,
    },
    /// Expecting the CRLF that closes chunk data.
    DataEnd {
        cr_seen: bool,
    },
    /// After the zero-size chunk: trailer lines, then the empty line.
    TrailerLine,
    Done,
    Failed(ChunkedError),
}

/// Streaming aws-chunked decoder; see the module docs.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// `None` in unsigned mode.
    signer: Option<ChunkSigner>,
    trailer_allowed: bool,
    declared_trailer: Option<ChecksumAlgorithm>,
    expected_decoded_bytes: Option<u64>,
    /// Collects the line in progress, CR included; capacity is reused.
    line: Vec<u8>,
    /// Hash of the current chunk's data, for its signature.
    chunk_hasher: Sha256,
    chunk_signature: Option<Signature>,
    chunk_index: u64,
    checksummer: Option<Checksummer>,
    /// Hash of the trailer lines as `name:value\n`, for the trailer signature.
    trailer_hasher: Sha256,
    trailer_lines: usize,
    trailer_signed: bool,
    trailer: Trailer,
    raw_bytes: u64,
    decoded_bytes: u64,
}

impl ChunkedDecoder {
    /// `declared_trailer` is the checksum named by `x-amz-trailer`; its
    /// value must then arrive in the trailer and match the decoded body.
    pub fn new(mode: ChunkedMode, declared_trailer: Option<ChecksumAlgorithm>) -> Self {
        let (signer, trailer_allowed) = match mode {
            ChunkedMode::Signed(signer) => (Some(signer), false),
            ChunkedMode::SignedTrailer(signer) => (Some(signer), true),
            ChunkedMode::UnsignedTrailer => (None, true),
        };
        // A trailer checksum cannot arrive in a mode without a trailer, so
        // it is not computed; `x-amz-trailer` is meaningless there.
        let declared_trailer = declared_trailer.filter(|_| trailer_allowed);
        Self {
            state: State::SizeLine,
            signer,
            trailer_allowed,
            declared_trailer,
            expected_decoded_bytes: None,
            line: Vec::new(),
            chunk_hasher: Sha256::new(),
            chunk_signature: None,
            chunk_index: 0,
            checksummer: declared_trailer.map(Checksummer::new),
            trailer_hasher: Sha256::new(),
            trailer_lines: 0,
            trailer_signed: false,
            trailer: Trailer::default(),
            raw_bytes: 0,
            decoded_bytes: 0,
        }
    }

    /// The trailer checksum this body promises (`x-amz-trailer`), if its
    /// mode carries trailers.
    pub fn declared_trailer(&self) -> Option<ChecksumAlgorithm> {
        self.declared_trailer
    }

    /// Requires exactly `expected_bytes` of payload (`x-amz-decoded-content-length`);
    /// more is refused as soon as a chunk header announces it.
    pub fn with_decoded_length(mut self, expected_bytes: u64) -> Self {
        self.expected_decoded_bytes = Some(expected_bytes);
        self
    }

    /// Payload bytes handed to the callback so far.
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded_bytes
    }

    /// Consumes `input`, split anywhere, and calls `out` with decoded
    /// payload bytes in order. After an error every later call returns it again.
    pub fn feed(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8])) -> Result<(), ChunkedError> {
        if let State::Failed(err) = &self.state {
            return Err(err.clone());
        }
        let result = self.feed_inner(input, out);
        if let Err(err) = &result {
            self.state = State::Failed(err.clone());
        }
        result
    }

    /// Call at the end of the raw body. Fails with `Incomplete` unless the
    /// final chunk, and the trailer when one was declared, have arrived.
    pub fn finish(&mut self) -> Result<Trailer, ChunkedError> {
        let result = match &self.state {
            State::Failed(err) => return Err(err.clone()),
            State::Done => Ok(()),
            // Only the closing empty line is missing.
            State::TrailerLine if self.line.is_empty() => self.end_of_trailer(),
            _ => Err(ChunkedError::Incomplete {
                raw_bytes: self.raw_bytes,
            }),
        };
        match result {
            Ok(()) => {
                self.state = State::Done;
                Ok(self.trailer.clone())
            }
            Err(err) => {
                self.state = State::Failed(err.clone());
                Err(err)
            }
        }
    }

    fn feed_inner(
        &mut self,
        mut input: &[u8],
        out: &mut dyn FnMut(&[u8]),
    ) -> Result<(), ChunkedError> {
        while !input.is_empty() {
            match self.state {
                State::SizeLine => {
                    if let Some(line) = self.take_line(&mut input, CHUNK_LINE_BYTES_MAX)? {
                        let result = self.on_size_line(&line);
                        self.restore_line(line);
                        result?;
                    }
                }
                State::Data { remaining_bytes } => {
                    // Bounded by input.len(), so the cast back to usize is lossless.
                    let take = remaining_bytes.min(input.len() as u64) as usize;
                    let (data, rest) = input.split_at(take);
                    input = rest;
                    self.raw_bytes += take as u64;
                    self.on_data(data, out);
                    let remaining_bytes = remaining_bytes - take as u64;
                    self.state = State::Data { remaining_bytes };
                    if remaining_bytes == 0 {
                        self.end_of_chunk()?;
                        self.state = State::DataEnd { cr_seen: false };
                    }
                }
                State::DataEnd { cr_seen } => {
                    let expected = if cr_seen { b'\n' } else { b'\r' };
                    if input[0] != expected {
                        return Err(self.malformed("chunk data is not followed by CRLF"));
                    }
                    input = &input[1..];
                    self.raw_bytes += 1;
                    self.state = if cr_seen {
                        State::SizeLine
                    } else {
                        State::DataEnd { cr_seen: true }
                    };
                }
                State::TrailerLine => {
                    if let Some(line) = self.take_line(&mut input, TRAILER_LINE_BYTES_MAX)? {
                        let result = self.on_trailer_line(&line);
                        self.restore_line(line);
                        result?;
                    }
                }
                State::Done => return Err(self.malformed("bytes after the end of the body")),
                State::Failed(ref err) => return Err(err.clone()),
            }
        }
        Ok(())
    }

    fn malformed(&self, reason: &'static str) -> ChunkedError {
        ChunkedError::Malformed {
            offset_bytes: self.raw_bytes,
            reason,
        }
    }

    fn malformed_trailer(&self, reason: &'static str) -> ChunkedError {
        ChunkedError::MalformedTrailer {
            offset_bytes: self.raw_bytes,
            reason,
        }
    }

    /// Moves input into the line buffer up to LF. Returns the finished line
    /// without CRLF (the buffer, taken out; the caller puts it back).
    fn take_line(
        &mut self,
        input: &mut &[u8],
        line_bytes_max: usize,
    ) -> Result<Option<Vec<u8>>, ChunkedError> {
        let newline = input.iter().position(|&b| b == b'\n');
        let piece_bytes = newline.unwrap_or(input.len());
        // +1: the buffer also holds the CR.
        if self.line.len() + piece_bytes > line_bytes_max + 1 {
            return Err(ChunkedError::LineTooLong {
                offset_bytes: self.raw_bytes,
                line_bytes_max,
            });
        }
        self.line.extend_from_slice(&input[..piece_bytes]);
        self.raw_bytes += piece_bytes as u64;
        *input = &input[piece_bytes..];
        if newline.is_none() {
            return Ok(None);
        }
        *input = &input[1..];
        self.raw_bytes += 1;
        let mut line = std::mem::take(&mut self.line);
        if line.pop() != Some(b'\r') {
            return Err(self.malformed("line is not ended by CRLF"));
        }
        Ok(Some(line))
    }

    /// Hands the line buffer back, empty, keeping its capacity.
    fn restore_line(&mut self, mut line: Vec<u8>) {
        line.clear();
        self.line = line;
    }

    fn on_size_line(&mut self, line: &[u8]) -> Result<(), ChunkedError> {
        // Offsets point at the start of the line: it is the size that is bad.
        let line_offset_bytes = self.raw_bytes.saturating_sub(line.len() as u64 + 2);
        let (size_text, extension) = match line.iter().position(|&b| b == b';') {
            Some(at) => (&line[..at], Some(&line[at + 1..])),
            None => (line, None),
        };
        let size_bytes = parse_hex_size(size_text).ok_or(ChunkedError::BadChunkSize {
            offset_bytes: line_offset_bytes,
        })?;
        self.chunk_signature = None;
        if self.signer.is_some() {
            let signature = extension
                .and_then(|ext| ext.strip_prefix(SIGNATURE_EXTENSION))
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(sigv4::parse_signature)
                .ok_or(ChunkedError::Malformed {
                    offset_bytes: line_offset_bytes,
                    reason: "signed chunk lacks chunk-signature=<64 hex>",
                })?;
            self.chunk_signature = Some(signature);
        }
        if let Some(expected_bytes) = self.expected_decoded_bytes {
            let decoded_bytes = self.decoded_bytes.saturating_add(size_bytes);
            if decoded_bytes > expected_bytes
                || (size_bytes == 0 && decoded_bytes != expected_bytes)
            {
                return Err(ChunkedError::DecodedLengthMismatch {
                    decoded_bytes,
                    expected_bytes,
                });
            }
        }
        if size_bytes == 0 {
            self.end_of_chunk()?;
            self.state = State::TrailerLine;
        } else {
            self.state = State::Data {
                remaining_bytes: size_bytes,
            };
        }
        Ok(())
    }

    fn on_data(&mut self, data: &[u8], out: &mut dyn FnMut(&[u8])) {
        if self.signer.is_some() {
            self.chunk_hasher.update(data);
        }
        if let Some(summer) = &mut self.checksummer {
            summer.update(data);
        }
        self.decoded_bytes += data.len() as u64;
        out(data);
    }

    /// Checks the signature of the chunk that just ended and advances the chain.
    fn end_of_chunk(&mut self) -> Result<(), ChunkedError> {
        let chunk_index = self.chunk_index;
        self.chunk_index += 1;
        let Some(signer) = &mut self.signer else {
            return Ok(());
        };
        let digest: [u8; 32] = self.chunk_hasher.finalize_reset().into();
        // on_size_line refuses a signed chunk without a signature.
        let provided = self.chunk_signature.take();
        if provided.is_some_and(|provided| signer.verify_chunk(&digest, &provided)) {
            Ok(())
        } else {
            Err(ChunkedError::SignatureMismatch { chunk_index })
        }
    }

    fn on_trailer_line(&mut self, line: &[u8]) -> Result<(), ChunkedError> {
        if line.is_empty() {
            self.end_of_trailer()?;
            self.state = State::Done;
            return Ok(());
        }
        if !self.trailer_allowed {
            return Err(self.malformed("data after the final chunk"));
        }
        if self.trailer_signed {
            return Err(self.malformed_trailer("trailer line after x-amz-trailer-signature"));
        }
        self.trailer_lines += 1;
        if self.trailer_lines > TRAILER_LINES_MAX {
            return Err(self.malformed_trailer("too many trailer lines"));
        }
        let text = std::str::from_utf8(line)
            .ok()
            .filter(|text| {
                text.bytes()
                    .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
            })
            .ok_or(self.malformed_trailer("trailer line is not visible ASCII"))?;
        let (name, value) = text
            .split_once(':')
            .ok_or(self.malformed_trailer("trailer line lacks ':'"))?;
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            return Err(self.malformed_trailer("trailer line has an empty name"));
        }
        if name.eq_ignore_ascii_case(TRAILER_SIGNATURE_NAME) {
            return self.on_trailer_signature(value);
        }
        // The signer hashed each line as sent, with LF in place of CRLF.
        self.trailer_hasher.update(line);
        self.trailer_hasher.update(b"\n");
        let Some(algorithm) = ChecksumAlgorithm::from_header_name(name) else {
            return Ok(());
        };
        if self.declared_trailer != Some(algorithm) {
            return Err(self.malformed_trailer("checksum trailer not declared in x-amz-trailer"));
        }
        if self.trailer.checksum.is_some() {
            return Err(self.malformed_trailer("repeated checksum trailer"));
        }
        self.trailer.checksum = Some((algorithm, value.to_owned()));
        Ok(())
    }

    fn on_trailer_signature(&mut self, value: &str) -> Result<(), ChunkedError> {
        let Some(signer) = &mut self.signer else {
            return Err(self.malformed_trailer("trailer signature in an unsigned body"));
        };
        let provided = sigv4::parse_signature(value).ok_or(ChunkedError::MalformedTrailer {
            offset_bytes: self.raw_bytes,
            reason: "x-amz-trailer-signature must be 64 hex digits",
        })?;
        let digest: [u8; 32] = self.trailer_hasher.finalize_reset().into();
        if !signer.verify_trailer(&digest, &provided) {
            return Err(ChunkedError::TrailerSignatureMismatch);
        }
        self.trailer_signed = true;
        Ok(())
    }

    /// The trailer is complete: check it is signed when it must be, and that
    /// the declared checksum arrived and matches the body.
    fn end_of_trailer(&mut self) -> Result<(), ChunkedError> {
        let must_sign =
            self.signer.is_some() && (self.trailer_lines > 0 || self.declared_trailer.is_some());
        if self.trailer_allowed && must_sign && !self.trailer_signed {
            return Err(self.malformed_trailer("missing x-amz-trailer-signature"));
        }
        let Some(summer) = self.checksummer.take() else {
            return Ok(());
        };
        let algorithm = summer.algorithm();
        let Some((_, sent_base64)) = &self.trailer.checksum else {
            return Err(ChunkedError::MissingTrailer { algorithm });
        };
        if summer.finish_base64() != *sent_base64 {
            return Err(ChunkedError::BadDigest { algorithm });
        }
        Ok(())
    }
}

/// 1 to 16 hex digits, nothing else.
fn parse_hex_size(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > CHUNK_SIZE_HEX_DIGITS_MAX {
        return None;
    }
    text.iter().try_fold(0u64, |size, &digit| {
        let value = char::from(digit).to_digit(16)?;
        Some((size << 4) | u64::from(value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::auth::sigv4::signing_key;
    use crate::s3::auth::tests as auth_tests;
    use crate::s3::auth::STREAMING_SIGNED;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const SCOPE: &str = "20130524/us-east-1/s3/aws4_request";
    const TIMESTAMP: &str = "20130524T000000Z";
    // From the AWS "Signature calculations for the Authorization header:
    // transferring payload in multiple chunks" example.
    const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    const CHUNK_SIGNATURES: [&str; 3] = [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ];

    fn example_signer() -> ChunkSigner {
        let seed = sigv4::parse_signature(SEED).expect("valid seed");
        ChunkSigner::new(
            signing_key(SECRET, "20130524", "us-east-1", "s3"),
            TIMESTAMP.into(),
            SCOPE.into(),
            seed,
        )
    }

    /// The AWS example body: 65536 and 1024 bytes of 'a', then the final chunk.
    fn example_body() -> Vec<u8> {
        let mut body = Vec::new();
        for (size, signature) in [
            (65536usize, CHUNK_SIGNATURES[0]),
            (1024, CHUNK_SIGNATURES[1]),
        ] {
            body.extend_from_slice(format!("{size:x};chunk-signature={signature}\r\n").as_bytes());
            body.extend(std::iter::repeat_n(b'a', size));
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(
            format!("0;chunk-signature={}\r\n\r\n", CHUNK_SIGNATURES[2]).as_bytes(),
        );
        body
    }

    fn sha256(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    /// Frames `chunks` the way a client would: signed when `signer` is given,
    /// with `trailer` lines (without CRLF) after the final chunk, signed
    /// when there is a signer and `sign_trailer` is set.
    fn frame(
        mut signer: Option<ChunkSigner>,
        chunks: &[&[u8]],
        trailer: &[&str],
        sign_trailer: bool,
    ) -> Vec<u8> {
        let mut body = Vec::new();
        for chunk in chunks.iter().chain(std::iter::once(&&b""[..])) {
            body.extend_from_slice(format!("{:x}", chunk.len()).as_bytes());
            if let Some(signer) = &mut signer {
                let signature = signer.sign_chunk(&sha256(chunk));
                body.extend_from_slice(
                    format!(";chunk-signature={}", hex::encode(signature)).as_bytes(),
                );
            }
            body.extend_from_slice(b"\r\n");
            if !chunk.is_empty() {
                body.extend_from_slice(chunk);
                body.extend_from_slice(b"\r\n");
            }
        }
        let mut canonical = Vec::new();
        for line in trailer {
            body.extend_from_slice(line.as_bytes());
            body.extend_from_slice(b"\r\n");
            canonical.extend_from_slice(line.as_bytes());
            canonical.push(b'\n');
        }
        if let (Some(signer), true) = (&mut signer, sign_trailer) {
            let signature = signer.sign_trailer(&sha256(&canonical));
            body.extend_from_slice(
                format!("x-amz-trailer-signature:{}\r\n", hex::encode(signature)).as_bytes(),
            );
        }
        body.extend_from_slice(b"\r\n");
        body
    }

    fn checksum_of(algorithm: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut summer = Checksummer::new(algorithm);
        summer.update(data);
        summer.finish_base64()
    }

    /// Feeds `body` in pieces of `step` bytes; returns decoded bytes and the result.
    fn decode_in_steps(
        mut decoder: ChunkedDecoder,
        body: &[u8],
        step: usize,
    ) -> (Vec<u8>, Result<Trailer, ChunkedError>) {
        let mut decoded = Vec::new();
        for piece in body.chunks(step.max(1)) {
            if let Err(err) = decoder.feed(piece, &mut |data| decoded.extend_from_slice(data)) {
                return (decoded, Err(err));
            }
        }
        let result = decoder.finish();
        assert_eq!(decoder.decoded_bytes(), decoded.len() as u64);
        (decoded, result)
    }

    fn decode(decoder: ChunkedDecoder, body: &[u8]) -> (Vec<u8>, Result<Trailer, ChunkedError>) {
        decode_in_steps(decoder, body, body.len())
    }

    fn unsigned(declared: Option<ChecksumAlgorithm>) -> ChunkedDecoder {
        ChunkedDecoder::new(ChunkedMode::UnsignedTrailer, declared)
    }

    #[test]
    fn aws_example_chunk_signatures() {
        let mut signer = example_signer();
        let first = vec![b'a'; 65536];
        let second = vec![b'a'; 1024];
        assert_eq!(
            hex::encode(signer.sign_chunk(&sha256(&first))),
            CHUNK_SIGNATURES[0]
        );
        assert_eq!(
            hex::encode(signer.sign_chunk(&sha256(&second))),
            CHUNK_SIGNATURES[1]
        );
        assert_eq!(
            hex::encode(signer.sign_chunk(&sha256(b""))),
            CHUNK_SIGNATURES[2]
        );
    }

    #[test]
    fn aws_example_decodes() {
        let body = example_body();
        // Content-Length of the AWS example.
        assert_eq!(body.len(), 66824);
        let decoder = ChunkedDecoder::new(ChunkedMode::Signed(example_signer()), None)
            .with_decoded_length(66560);
        let (decoded, result) = decode(decoder, &body);
        assert_eq!(result, Ok(Trailer::default()));
        assert_eq!(decoded, vec![b'a'; 66560]);
    }

    #[test]
    fn aws_example_one_byte_at_a_time() {
        let body = example_body();
        let decoder = ChunkedDecoder::new(ChunkedMode::Signed(example_signer()), None);
        let (decoded, result) = decode_in_steps(decoder, &body, 1);
        assert_eq!(result, Ok(Trailer::default()));
        assert_eq!(decoded.len(), 66560);
    }

    #[test]
    fn aws_example_tampering_detected() {
        let body = example_body();
        // Flip one data byte of the second chunk.
        let mut tampered = body.clone();
        let second_data_offset_bytes = 88 + 65536 + 2 + 86;
        tampered[second_data_offset_bytes + 10] = b'b';
        let decoder = ChunkedDecoder::new(ChunkedMode::Signed(example_signer()), None);
        let (_, result) = decode(decoder, &tampered);
        assert_eq!(
            result,
            Err(ChunkedError::SignatureMismatch { chunk_index: 1 })
        );

        // Flip a hex digit of the final chunk's signature.
        let mut tampered = body.clone();
        let at = tampered.len() - 5;
        tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
        let decoder = ChunkedDecoder::new(ChunkedMode::Signed(example_signer()), None);
        let (_, result) = decode(decoder, &tampered);
        assert_eq!(
            result,
            Err(ChunkedError::SignatureMismatch { chunk_index: 2 })
        );

        // Right framing, wrong secret.
        let other = ChunkSigner::new(
            signing_key("not the secret", "20130524", "us-east-1", "s3"),
            TIMESTAMP.into(),
            SCOPE.into(),
            sigv4::parse_signature(SEED).expect("valid seed"),
        );
        let decoder = ChunkedDecoder::new(ChunkedMode::Signed(other), None);
        let (decoded, result) = decode(decoder, &body);
        assert_eq!(
            result,
            Err(ChunkedError::SignatureMismatch { chunk_index: 0 })
        );
        assert_eq!(
            decoded.len(),
            65536,
            "data streams before its signature is checked"
        );
    }

    #[test]
    fn signed_chunk_without_signature_is_malformed() {
        let body = b"3\r\nabc\r\n0\r\n\r\n";
        let decoder = ChunkedDecoder::new(ChunkedMode::Signed(example_signer()), None);
        let (_, result) = decode(decoder, body);
        assert!(
            matches!(
                result,
                Err(ChunkedError::Malformed {
                    offset_bytes: 0,
                    ..
                })
            ),
            "{result:?}"
        );
        let body = format!("3;chunk-signature={}\r\nabc\r\n", "a".repeat(63));
        let decoder = ChunkedDecoder::new(ChunkedMode::Signed(example_signer()), None);
        let (_, result) = decode(decoder, body.as_bytes());
        assert!(
            matches!(result, Err(ChunkedError::Malformed { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn signed_mode_rejects_trailer_lines() {
        let body = frame(
            Some(example_signer()),
            &[b"hello"],
            &["x-amz-checksum-crc32:AAAAAA=="],
            false,
        );
        let decoder = ChunkedDecoder::new(ChunkedMode::Signed(example_signer()), None);
        let (_, result) = decode(decoder, &body);
        assert!(
            matches!(result, Err(ChunkedError::Malformed { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn unsigned_trailer_checksums() {
        let data = b"hello world, in two chunks";
        for algorithm in ChecksumAlgorithm::ALL {
            let good = format!(
                "{}:{}",
                algorithm.header_name(),
                checksum_of(algorithm, data)
            );
            let body = frame(None, &[&data[..5], &data[5..]], &[&good], false);
            for step in [1, 2, 3, 7, body.len()] {
                let (decoded, result) = decode_in_steps(unsigned(Some(algorithm)), &body, step);
                assert_eq!(decoded, data);
                let checksum = (algorithm, checksum_of(algorithm, data));
                assert_eq!(
                    result,
                    Ok(Trailer {
                        checksum: Some(checksum)
                    }),
                    "{algorithm} step {step}"
                );
            }

            let bad = format!(
                "{}:{}",
                algorithm.header_name(),
                checksum_of(algorithm, b"other")
            );
            let body = frame(None, &[data], &[&bad], false);
            let (_, result) = decode(unsigned(Some(algorithm)), &body);
            assert_eq!(result, Err(ChunkedError::BadDigest { algorithm }));
        }
    }

    #[test]
    fn aws_unsigned_trailer_example_shape() {
        // The AWS docs' unsigned-trailer example, shortened: lowercase hex sizes,
        // crc32c trailer, closing empty line.
        let data = vec![b'a'; 0x2000];
        let mut body = b"2000\r\n".to_vec();
        body.extend_from_slice(&data);
        body.extend_from_slice(b"\r\n0\r\n");
        body.extend_from_slice(
            format!(
                "x-amz-checksum-crc32c:{}\r\n\r\n",
                checksum_of(ChecksumAlgorithm::Crc32c, &data)
            )
            .as_bytes(),
        );
        let (decoded, result) = decode(unsigned(Some(ChecksumAlgorithm::Crc32c)), &body);
        assert_eq!(decoded, data);
        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn trailer_presence_rules() {
        let data = b"payload";
        let crc = format!(
            "x-amz-checksum-crc32:{}",
            checksum_of(ChecksumAlgorithm::Crc32, data)
        );
        // Declared but absent.
        let body = frame(None, &[data], &[], false);
        let (_, result) = decode(unsigned(Some(ChecksumAlgorithm::Crc32)), &body);
        assert_eq!(
            result,
            Err(ChunkedError::MissingTrailer {
                algorithm: ChecksumAlgorithm::Crc32
            })
        );
        // Present but not declared, or declared as another algorithm.
        let body = frame(None, &[data], &[&crc], false);
        for declared in [None, Some(ChecksumAlgorithm::Sha256)] {
            let (_, result) = decode(unsigned(declared), &body);
            assert!(
                matches!(result, Err(ChunkedError::MalformedTrailer { .. })),
                "{result:?}"
            );
        }
        // Repeated.
        let body = frame(None, &[data], &[&crc, &crc], false);
        let (_, result) = decode(unsigned(Some(ChecksumAlgorithm::Crc32)), &body);
        assert!(
            matches!(result, Err(ChunkedError::MalformedTrailer { .. })),
            "{result:?}"
        );
        // No trailer and none declared; unknown trailer lines ignored.
        for lines in [&[][..], &["x-amz-meta-note: hi"][..]] {
            let body = frame(None, &[data], lines, false);
            let (decoded, result) = decode(unsigned(None), &body);
            assert_eq!(
                (decoded.as_slice(), result),
                (&data[..], Ok(Trailer::default()))
            );
        }
        // Garbage trailer lines.
        for line in ["no colon", ":empty-name", "x-amz-checksum-crc32:\u{7f}"] {
            let body = frame(None, &[data], &[line], false);
            let (_, result) = decode(unsigned(None), &body);
            assert!(
                matches!(result, Err(ChunkedError::MalformedTrailer { .. })),
                "{line:?}: {result:?}"
            );
        }
        // A trailer signature in an unsigned body.
        let body = frame(
            None,
            &[data],
            &[&crc, &format!("x-amz-trailer-signature:{}", "0".repeat(64))],
            false,
        );
        let (_, result) = decode(unsigned(Some(ChecksumAlgorithm::Crc32)), &body);
        assert!(
            matches!(result, Err(ChunkedError::MalformedTrailer { .. })),
            "{result:?}"
        );
        // Too many lines.
        let many: Vec<String> = (0..=TRAILER_LINES_MAX)
            .map(|i| format!("x-extra-{i}:v"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let body = frame(None, &[data], &many, false);
        let (_, result) = decode(unsigned(None), &body);
        assert!(
            matches!(result, Err(ChunkedError::MalformedTrailer { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn signed_trailer() {
        let data = b"signed trailer payload";
        let crc = format!(
            "x-amz-checksum-crc32c:{}",
            checksum_of(ChecksumAlgorithm::Crc32c, data)
        );
        let mode = || ChunkedMode::SignedTrailer(example_signer());
        let declared = Some(ChecksumAlgorithm::Crc32c);

        let body = frame(
            Some(example_signer()),
            &[&data[..4], &data[4..]],
            &[&crc],
            true,
        );
        for step in [1, 5, body.len()] {
            let (decoded, result) =
                decode_in_steps(ChunkedDecoder::new(mode(), declared), &body, step);
            assert_eq!(decoded, data);
            assert!(result.is_ok(), "step {step}: {result:?}");
        }

        // Missing trailer signature.
        let body = frame(Some(example_signer()), &[data], &[&crc], false);
        let (_, result) = decode(ChunkedDecoder::new(mode(), declared), &body);
        assert!(
            matches!(result, Err(ChunkedError::MalformedTrailer { .. })),
            "{result:?}"
        );

        // Trailer value changed after signing: the signature no longer matches.
        let mut body = frame(Some(example_signer()), &[data], &[&crc], true);
        let text = String::from_utf8(body.clone()).expect("ASCII body");
        let at = text
            .find("x-amz-checksum-crc32c:")
            .expect("trailer present")
            + "x-amz-checksum-crc32c:".len();
        body[at] = if body[at] == b'A' { b'B' } else { b'A' };
        let (_, result) = decode(ChunkedDecoder::new(mode(), declared), &body);
        assert_eq!(result, Err(ChunkedError::TrailerSignatureMismatch));

        // Line after the trailer signature.
        let mut body = frame(Some(example_signer()), &[data], &[&crc], true);
        body.truncate(body.len() - 2);
        body.extend_from_slice(b"x-late:1\r\n\r\n");
        let (_, result) = decode(ChunkedDecoder::new(mode(), declared), &body);
        assert!(
            matches!(result, Err(ChunkedError::MalformedTrailer { .. })),
            "{result:?}"
        );

        // No trailer at all, none declared: nothing to sign.
        let body = frame(Some(example_signer()), &[data], &[], false);
        let (_, result) = decode(ChunkedDecoder::new(mode(), None), &body);
        assert_eq!(result, Ok(Trailer::default()));
    }

    #[test]
    fn final_empty_line_may_be_missing() {
        let data = b"abc";
        let crc = format!(
            "x-amz-checksum-crc32:{}",
            checksum_of(ChecksumAlgorithm::Crc32, data)
        );
        let mut body = frame(None, &[data], &[&crc], false);
        body.truncate(body.len() - 2);
        let (decoded, result) = decode(unsigned(Some(ChecksumAlgorithm::Crc32)), &body);
        assert_eq!(decoded, data);
        assert!(result.is_ok(), "{result:?}");

        let mut body = example_body();
        body.truncate(body.len() - 2);
        let (_, result) = decode(
            ChunkedDecoder::new(ChunkedMode::Signed(example_signer()), None),
            &body,
        );
        assert!(result.is_ok(), "{result:?}");

        // But not half of it.
        let mut body = example_body();
        body.truncate(body.len() - 1);
        let (_, result) = decode(
            ChunkedDecoder::new(ChunkedMode::Signed(example_signer()), None),
            &body,
        );
        assert!(
            matches!(result, Err(ChunkedError::Incomplete { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn every_truncation_is_refused() {
        let data = b"0123456789abcdef";
        let crc = format!(
            "x-amz-checksum-crc32:{}",
            checksum_of(ChecksumAlgorithm::Crc32, data)
        );
        let body = frame(None, &[&data[..10], &data[10..]], &[&crc], false);
        let lenient_bytes = body.len() - 2;
        for cut in 0..body.len() {
            let (_, result) = decode(unsigned(Some(ChecksumAlgorithm::Crc32)), &body[..cut]);
            if cut == lenient_bytes {
                assert!(result.is_ok(), "cut {cut}: {result:?}");
            } else {
                assert!(result.is_err(), "cut {cut} accepted");
            }
        }
        let (_, result) = decode(unsigned(None), b"");
        assert_eq!(result, Err(ChunkedError::Incomplete { raw_bytes: 0 }));
        let (_, result) = decode(unsigned(None), b"5\r\nab");
        assert_eq!(result, Err(ChunkedError::Incomplete { raw_bytes: 5 }));
        assert_eq!(
            result.as_ref().map_err(ChunkedError::s3_code),
            Err("IncompleteBody")
        );
    }

    #[test]
    fn bad_chunk_sizes() {
        for line in ["zz", "", " 5", "5 ", "-1", "0x5", "11111111111111111", "+5"] {
            let body = format!("{line}\r\n");
            let (_, result) = decode(unsigned(None), body.as_bytes());
            assert_eq!(
                result,
                Err(ChunkedError::BadChunkSize { offset_bytes: 0 }),
                "{line:?}"
            );
        }
        // 16 digits is the most, and still parses (then the body is short).
        let (_, result) = decode(unsigned(None), b"ffffffffffffffff\r\nab");
        assert!(
            matches!(result, Err(ChunkedError::Incomplete { .. })),
            "{result:?}"
        );
        // Uppercase hex and unsigned extensions are fine.
        let (decoded, result) = decode(unsigned(None), b"A;ext=1\r\n0123456789\r\n0\r\n\r\n");
        assert_eq!(decoded, b"0123456789");
        assert!(result.is_ok(), "{result:?}");
        // The offset points at the line with the bad size.
        let (_, result) = decode(unsigned(None), b"3\r\nabc\r\nq\r\n");
        assert_eq!(result, Err(ChunkedError::BadChunkSize { offset_bytes: 8 }));
    }

    #[test]
    fn oversize_lines() {
        let long = vec![b'1'; CHUNK_LINE_BYTES_MAX + 10];
        // Without a newline, in pieces: refused once the cap is passed, not at EOF.
        let mut decoder = unsigned(None);
        let mut result = Ok(());
        for piece in long.chunks(100) {
            result = decoder.feed(piece, &mut |_| {});
            if result.is_err() {
                break;
            }
        }
        assert!(
            matches!(result, Err(ChunkedError::LineTooLong { .. })),
            "{result:?}"
        );
        // An extension just fitting is accepted; one byte more is not.
        let fits = format!(
            "1;{}\r\nx\r\n0\r\n\r\n",
            "e".repeat(CHUNK_LINE_BYTES_MAX - 2)
        );
        assert!(decode(unsigned(None), fits.as_bytes()).1.is_ok());
        let over = format!(
            "1;{}\r\nx\r\n0\r\n\r\n",
            "e".repeat(CHUNK_LINE_BYTES_MAX - 1)
        );
        let (_, result) = decode_in_steps(unsigned(None), over.as_bytes(), 1);
        assert!(
            matches!(result, Err(ChunkedError::LineTooLong { .. })),
            "{result:?}"
        );
        // Trailer lines have their own cap.
        let line = format!("x-long:{}", "v".repeat(TRAILER_LINE_BYTES_MAX));
        let body = frame(None, &[b"a"], &[&line], false);
        let (_, result) = decode(unsigned(None), &body);
        assert!(
            matches!(result, Err(ChunkedError::LineTooLong { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn framing_errors() {
        let cases: [&[u8]; 6] = [
            b"3\r\nabcX\r\n0\r\n\r\n",       // data longer than its size
            b"3\r\nab\r\n0\r\n\r\n",         // data shorter than its size
            b"3\r\nabc\n0\r\n\r\n",          // LF without CR after data
            b"3\nabc\r\n0\r\n\r\n",          // LF-only size line
            b"3\r\nabc\r\n0\r\n\n",          // LF-only final line
            b"3\r\nabc\r\n0\r\nbad\r\n\r\n", // not a trailer line
        ];
        for body in cases {
            let (_, result) = decode(unsigned(None), body);
            assert!(
                result.is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn bytes_after_the_end_are_refused() {
        let mut body = frame(None, &[b"abc"], &[], false);
        body.extend_from_slice(b"3\r\nxyz\r\n");
        let (decoded, result) = decode(unsigned(None), &body);
        assert_eq!(decoded, b"abc");
        assert!(
            matches!(result, Err(ChunkedError::Malformed { .. })),
            "{result:?}"
        );
        let mut body = example_body();
        body.push(b'\r');
        let (_, result) = decode(
            ChunkedDecoder::new(ChunkedMode::Signed(example_signer()), None),
            &body,
        );
        assert!(
            matches!(result, Err(ChunkedError::Malformed { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn decoded_length_is_enforced() {
        let body = frame(None, &[b"abc", b"def"], &[], false);
        let (_, result) = decode(unsigned(None).with_decoded_length(6), &body);
        assert!(result.is_ok(), "{result:?}");
        let (decoded, result) = decode(unsigned(None).with_decoded_length(5), &body);
        assert_eq!(
            decoded, b"abc",
            "the chunk that overflows is refused before it streams"
        );
        assert_eq!(
            result,
            Err(ChunkedError::DecodedLengthMismatch {
                decoded_bytes: 6,
                expected_bytes: 5
            })
        );
        let (_, result) = decode(unsigned(None).with_decoded_length(7), &body);
        let err = result.expect_err("short body");
        assert_eq!(
            err,
            ChunkedError::DecodedLengthMismatch {
                decoded_bytes: 6,
                expected_bytes: 7
            }
        );
        assert_eq!(err.s3_code(), "IncompleteBody");
    }

    #[test]
    fn errors_are_sticky() {
        let mut decoder = unsigned(None);
        let err = decoder.feed(b"zz\r\n", &mut |_| {}).expect_err("bad size");
        assert_eq!(decoder.feed(b"0\r\n\r\n", &mut |_| {}), Err(err.clone()));
        assert_eq!(decoder.finish(), Err(err));
    }

    #[test]
    fn finish_is_repeatable() {
        let mut decoder = unsigned(None);
        decoder.feed(b"0\r\n\r\n", &mut |_| {}).expect("valid body");
        assert_eq!(decoder.finish(), Ok(Trailer::default()));
        assert_eq!(decoder.finish(), Ok(Trailer::default()));
        assert!(decoder.feed(b"", &mut |_| {}).is_ok());
    }

    #[test]
    fn random_splits_match_whole_feed() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let crc = format!(
            "x-amz-checksum-sha256:{}",
            checksum_of(ChecksumAlgorithm::Sha256, &data)
        );
        let chunks: Vec<&[u8]> = data.chunks(777).collect();
        let body = frame(Some(example_signer()), &chunks, &[&crc], true);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..50 {
            let mut decoder = ChunkedDecoder::new(
                ChunkedMode::SignedTrailer(example_signer()),
                Some(ChecksumAlgorithm::Sha256),
            );
            let mut decoded = Vec::new();
            let mut rest = &body[..];
            while !rest.is_empty() {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let take = ((seed >> 33) as usize % 300).min(rest.len());
                let (piece, tail) = rest.split_at(take);
                decoder
                    .feed(piece, &mut |d| decoded.extend_from_slice(d))
                    .expect("valid body");
                rest = tail;
            }
            assert!(decoder.finish().is_ok());
            assert_eq!(decoded, data);
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 12345u64;
        let alphabet = b"0123456789abcdefABCDEF;=-:\r\n chunk-signature x-amz-checksum-crc32";
        for round in 0..2000 {
            let mut body = Vec::new();
            for _ in 0..(round % 200) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                body.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            for mode in [
                ChunkedMode::Signed(example_signer()),
                ChunkedMode::UnsignedTrailer,
            ] {
                let _ = decode_in_steps(
                    ChunkedDecoder::new(mode, Some(ChecksumAlgorithm::Crc32)),
                    &body,
                    3,
                );
            }
        }
    }

    #[test]
    fn error_codes() {
        let cases = [
            (
                ChunkedError::Incomplete { raw_bytes: 1 },
                "IncompleteBody",
                400,
            ),
            (
                ChunkedError::SignatureMismatch { chunk_index: 0 },
                "SignatureDoesNotMatch",
                403,
            ),
            (
                ChunkedError::TrailerSignatureMismatch,
                "SignatureDoesNotMatch",
                403,
            ),
            (
                ChunkedError::BadDigest {
                    algorithm: ChecksumAlgorithm::Crc32,
                },
                "BadDigest",
                400,
            ),
            (
                ChunkedError::BadChunkSize { offset_bytes: 0 },
                "InvalidChunkSizeError",
                400,
            ),
            (
                ChunkedError::LineTooLong {
                    offset_bytes: 0,
                    line_bytes_max: 1,
                },
                "InvalidRequest",
                400,
            ),
            (
                ChunkedError::Malformed {
                    offset_bytes: 0,
                    reason: "x",
                },
                "InvalidRequest",
                400,
            ),
            (
                ChunkedError::MalformedTrailer {
                    offset_bytes: 0,
                    reason: "x",
                },
                "MalformedTrailerError",
                400,
            ),
            (
                ChunkedError::MissingTrailer {
                    algorithm: ChecksumAlgorithm::Crc32,
                },
                "MalformedTrailerError",
                400,
            ),
            (
                ChunkedError::DecodedLengthMismatch {
                    decoded_bytes: 2,
                    expected_bytes: 1,
                },
                "InvalidRequest",
                400,
            ),
        ];
        for (err, code, status) in cases {
            assert_eq!((err.s3_code(), err.http_status()), (code, status), "{err}");
        }
    }

    #[test]
    fn aws_example_streaming_put() {
        let signed = "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;\
                      x-amz-decoded-content-length;x-amz-storage-class";
        let map = auth_tests::headers(&[
            ("host", "s3.amazonaws.com"),
            ("x-amz-date", auth_tests::AMZ_DATE),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", STREAMING_SIGNED),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("content-length", "66824"),
            (
                "authorization",
                &auth_tests::auth_header(
                    signed,
                    "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
                ),
            ),
        ]);
        let auth = auth_tests::run(
            "PUT",
            "/examplebucket/chunkObject.txt",
            &map,
            auth_tests::at(0),
        )
        .expect("AWS example verifies");
        let PayloadMode::StreamingSigned { seed } = &auth.payload else {
            panic!("expected streaming, got {:?}", auth.payload);
        };
        assert_eq!(
            hex::encode(seed.previous_signature()),
            "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
        );

        // Hand over to the chunk decoder and decode the AWS example body.
        let mode = ChunkedMode::of(auth.payload.clone()).expect("streaming mode");
        let mut decoder = ChunkedDecoder::new(mode, None).with_decoded_length(66560);
        let mut body = Vec::new();
        for (size, signature) in [
            (
                65536usize,
                "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            ),
            (
                1024,
                "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            ),
        ] {
            body.extend_from_slice(format!("{size:x};chunk-signature={signature}\r\n").as_bytes());
            body.extend(std::iter::repeat_n(b'a', size));
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(
            b"0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n",
        );
        let mut decoded_bytes = 0;
        decoder
            .feed(&body, &mut |data| decoded_bytes += data.len())
            .expect("chunks verify");
        assert_eq!(decoder.finish(), Ok(Trailer::default()));
        assert_eq!(decoded_bytes, 66560);
    }

    #[test]
    fn every_streaming_payload_mode_is_chunked_and_no_other() {
        for (value, streams) in [
            (crate::s3::auth::UNSIGNED_PAYLOAD, false),
            (crate::s3::auth::STREAMING_SIGNED, true),
            (crate::s3::auth::STREAMING_SIGNED_TRAILER, true),
            (crate::s3::auth::STREAMING_UNSIGNED_TRAILER, true),
        ] {
            let map = auth_tests::signed_put("/b/k", "", value);
            let auth = auth_tests::run("PUT", "/b/k", &map, auth_tests::at(0)).expect(value);
            assert_eq!(
                ChunkedMode::of(auth.payload.clone()).is_some(),
                streams,
                "{value}"
            );
        }
    }
}
