//! Frames: `u32 big-endian header length | PeerFrame | payload`, the
//! payload's length in the header.

use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use prost::Message;
use shoal_proto::peer::PeerFrame;

use super::PeerError;

/// Largest prost header accepted.
pub const HEADER_BYTES_MAX: u64 = 64 << 10;
/// Largest payload accepted: a raft append of a few hundred manifests, or
/// a snapshot.
pub const PAYLOAD_BYTES_MAX: u64 = 1 << 30;

/// Writes one frame; sets `payload_bytes` from `payload`.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    stream: &mut W,
    mut header: PeerFrame,
    payload: &[u8],
) -> Result<(), PeerError> {
    header.payload_bytes = payload.len() as u64;
    let encoded = header.encode_to_vec();
    let mut head = Vec::with_capacity(4 + encoded.len());
    head.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    head.extend_from_slice(&encoded);
    stream.write_all(&head).await?;
    if !payload.is_empty() {
        stream.write_all(payload).await?;
    }
    stream.flush().await?;
    Ok(())
}

/// Most payload bytes reserved before they arrive (a chunk and its header).
const PAYLOAD_PREALLOC_MAX: u64 = 1 << 21;

/// Reads one frame: its header and payload.
pub async fn read_frame<R: AsyncRead + Unpin>(
    stream: &mut R,
) -> Result<(PeerFrame, Vec<u8>), PeerError> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let header_bytes = u64::from(u32::from_be_bytes(len));
    if header_bytes > HEADER_BYTES_MAX {
        return Err(PeerError::TooLarge {
            bytes: header_bytes,
            max: HEADER_BYTES_MAX,
        });
    }
    let mut header = vec![0u8; header_bytes as usize];
    stream.read_exact(&mut header).await?;
    let header =
        PeerFrame::decode(header.as_slice()).map_err(|e| PeerError::Malformed(e.to_string()))?;
    if header.payload_bytes > PAYLOAD_BYTES_MAX {
        return Err(PeerError::TooLarge {
            bytes: header.payload_bytes,
            max: PAYLOAD_BYTES_MAX,
        });
    }
    // Grown as the bytes arrive, not allocated up front: a frame that only
    // claims a large payload costs nothing until it sends it.
    let mut payload = Vec::with_capacity(header.payload_bytes.min(PAYLOAD_PREALLOC_MAX) as usize);
    (&mut *stream)
        .take(header.payload_bytes)
        .read_to_end(&mut payload)
        .await?;
    if payload.len() as u64 != header.payload_bytes {
        return Err(PeerError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "{} of {} payload bytes",
                payload.len(),
                header.payload_bytes
            ),
        )));
    }
    Ok((header, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;
    use futures_lite::io::Cursor;
    use shoal_proto::peer::Kind;

    #[test]
    fn frames_round_trip_and_refuse_oversized_headers() {
        block_on(async {
            let mut wire = Cursor::new(Vec::new());
            let header = PeerFrame {
                request_id: 7,
                kind: Kind::RaftVote as i32,
                ..Default::default()
            };
            write_frame(&mut wire, header, b"payload").await.unwrap();
            write_frame(&mut wire, PeerFrame::default(), b"")
                .await
                .unwrap();
            let mut wire = Cursor::new(wire.into_inner());
            let (first, payload) = read_frame(&mut wire).await.unwrap();
            assert_eq!((first.request_id, first.payload_bytes), (7, 7));
            assert_eq!(payload, b"payload");
            let (second, payload) = read_frame(&mut wire).await.unwrap();
            assert_eq!(second.request_id, 0);
            assert!(payload.is_empty());
            // End of stream mid-frame is an error, not a hang.
            assert!(read_frame(&mut wire).await.is_err());

            let mut huge = Cursor::new(((HEADER_BYTES_MAX + 1) as u32).to_be_bytes().to_vec());
            assert!(matches!(
                read_frame(&mut huge).await,
                Err(PeerError::TooLarge { .. })
            ));
        });
    }
}
