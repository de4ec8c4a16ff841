//! A raft snapshot as openraft moves it: a file on disk, read and written
//! in pieces of at most [`SNAPSHOT_CHUNK_BYTES`] (openraft's chunk size),
//! so neither the sender nor the receiver ever holds a whole snapshot in
//! memory.
//!
//! openraft drives it through tokio's `AsyncRead`, `AsyncWrite` and
//! `AsyncSeek`. Every read, write and sync runs on the executor's
//! blocking pool (positioned `pread`/`pwrite` on a shared handle), never
//! on the executor thread; the poll methods only start that job and
//! collect its result. One job is in flight at a time: tokio's traits
//! call the same method again with the same arguments until it is ready.

use std::fs::File;
use std::future::Future;
use std::io::{self, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

use crate::limits::SNAPSHOT_CHUNK_BYTES;

type Job<T> = Pin<Box<dyn Future<Output = io::Result<T>>>>;

/// The one blocking job a [`SnapshotFile`] waits for.
enum InFlight {
    Read(Job<Vec<u8>>),
    Write(Job<usize>),
    Sync(Job<()>),
}

/// One open snapshot file with its own position.
pub struct SnapshotFile {
    file: Arc<File>,
    path: PathBuf,
    position: u64,
    /// Bytes in the file: known when opened, grown by writes.
    len: u64,
    in_flight: Option<InFlight>,
}

impl std::fmt::Debug for SnapshotFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotFile")
            .field("path", &self.path)
            .field("position", &self.position)
            .field("len", &self.len)
            .finish()
    }
}

/// Runs `job` on the executor's blocking pool.
fn blocking<T: Send + 'static>(job: impl FnOnce() -> io::Result<T> + Send + 'static) -> Job<T> {
    Box::pin(glommio::executor().spawn_blocking(job))
}

impl SnapshotFile {
    /// Opens an existing snapshot to read (on the blocking pool).
    pub async fn open(path: &Path) -> io::Result<SnapshotFile> {
        let owned = path.to_path_buf();
        let (file, len) = blocking(move || {
            let file = File::open(&owned)?;
            let len = file.metadata()?.len();
            Ok((file, len))
        })
        .await?;
        Ok(SnapshotFile::new(file, path, len))
    }

    /// Creates an empty file to receive a snapshot into (on the blocking
    /// pool); an older file at `path` is replaced.
    pub async fn create(path: &Path) -> io::Result<SnapshotFile> {
        let owned = path.to_path_buf();
        let file = blocking(move || {
            File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&owned)
        })
        .await?;
        Ok(SnapshotFile::new(file, path, 0))
    }

    fn new(file: File, path: &Path, len: u64) -> SnapshotFile {
        SnapshotFile {
            file: Arc::new(file),
            path: path.to_path_buf(),
            position: 0,
            len,
            in_flight: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl AsyncRead for SnapshotFile {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.in_flight.is_none() {
            let (file, at) = (Arc::clone(&this.file), this.position);
            let want = buf.remaining().min(SNAPSHOT_CHUNK_BYTES);
            this.in_flight = Some(InFlight::Read(blocking(move || {
                let mut bytes = vec![0; want];
                let n = file.read_at(&mut bytes, at)?;
                bytes.truncate(n);
                Ok(bytes)
            })));
        }
        let Some(InFlight::Read(job)) = &mut this.in_flight else {
            return Poll::Ready(Err(busy("read")));
        };
        let outcome = ready!(job.as_mut().poll(cx));
        this.in_flight = None;
        let bytes = outcome?;
        // The caller may pass a smaller buffer than it did when the job
        // started: keep only what fits and read the rest again later.
        let n = bytes.len().min(buf.remaining());
        buf.put_slice(&bytes[..n]);
        this.position += n as u64;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for SnapshotFile {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.in_flight.is_none() {
            let (file, at) = (Arc::clone(&this.file), this.position);
            let bytes = buf[..buf.len().min(SNAPSHOT_CHUNK_BYTES)].to_vec();
            this.in_flight = Some(InFlight::Write(blocking(move || {
                file.write_all_at(&bytes, at)?;
                Ok(bytes.len())
            })));
        }
        let Some(InFlight::Write(job)) = &mut this.in_flight else {
            return Poll::Ready(Err(busy("write")));
        };
        let outcome = ready!(job.as_mut().poll(cx));
        this.in_flight = None;
        let n = outcome?;
        this.position += n as u64;
        this.len = this.len.max(this.position);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing is buffered here: every write went to the file.
        Poll::Ready(Ok(()))
    }

    /// Makes what was written durable: openraft shuts the file down once
    /// the last chunk arrived, before it asks to install it.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.in_flight.is_none() {
            let file = Arc::clone(&this.file);
            this.in_flight = Some(InFlight::Sync(blocking(move || file.sync_data())));
        }
        let Some(InFlight::Sync(job)) = &mut this.in_flight else {
            return Poll::Ready(Err(busy("sync")));
        };
        let outcome = ready!(job.as_mut().poll(cx));
        this.in_flight = None;
        Poll::Ready(outcome)
    }
}

impl AsyncSeek for SnapshotFile {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        if this.in_flight.is_some() {
            return Err(busy("seek"));
        }
        let target = match position {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => this.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => this.position.checked_add_signed(delta),
        };
        this.position = target.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "seek before the file's start")
        })?;
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.position))
    }
}

/// A call that came while a different kind of job was in flight: the
/// traits' callers never do that, so it is a bug in the caller.
fn busy(what: &str) -> io::Error {
    io::Error::other(format!(
        "snapshot file: {what} while another operation is in flight"
    ))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

    use super::*;
    use crate::test_util::run_local;

    #[test]
    fn pieces_written_at_offsets_read_back_as_openraft_moves_them() {
        run_local(|| async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.snap");
            let mut file = SnapshotFile::create(&path).await.unwrap();
            // A receiver gets pieces in order but may be told to seek back
            // to an offset it already wrote (a resent chunk).
            file.write_all(b"hello ").await.unwrap();
            file.write_all(b"wurld").await.unwrap();
            file.seek(SeekFrom::Start(7)).await.unwrap();
            file.write_all(b"o").await.unwrap();
            file.seek(SeekFrom::End(0)).await.unwrap();
            file.write_all(&vec![7u8; SNAPSHOT_CHUNK_BYTES + 3])
                .await
                .unwrap();
            file.shutdown().await.unwrap();
            assert_eq!(file.len(), 11 + SNAPSHOT_CHUNK_BYTES as u64 + 3);

            // A sender asks for the end, then reads from each offset.
            let mut file = SnapshotFile::open(&path).await.unwrap();
            let end = file.seek(SeekFrom::End(0)).await.unwrap();
            assert_eq!(end, file.len());
            file.seek(SeekFrom::Start(6)).await.unwrap();
            let mut word = [0u8; 5];
            file.read_exact(&mut word).await.unwrap();
            assert_eq!(&word, b"world");
            let mut rest = Vec::new();
            file.read_to_end(&mut rest).await.unwrap();
            assert_eq!(rest.len(), SNAPSHOT_CHUNK_BYTES + 3);
            assert!(rest.iter().all(|&b| b == 7));
            assert!(file
                .seek(SeekFrom::Current(-(end as i64) - 1))
                .await
                .is_err());
        });
    }
}
