//! One segment file of the blob log, plus the pure rules for naming segment
//! files and placing records in them.
//!
//! A [`Segment`] wraps one `DmaFile` (O_DIRECT, io_uring) and is used only on
//! the shard's core; every call is an io_uring operation, none blocks the
//! thread. [`Tail`] decides where the next record goes and when the log rolls
//! to a new segment; it is synchronous so that offsets are handed out in one
//! step on the core and concurrent appends never overlap.
//!
//! Files are named `segment-<16-digit zero-padded number>.blob`.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{DmaBuffer, DmaFile, OpenOptions, ReadResult};

use crate::limits::{align_up, CHUNK_BUF_BYTES, IO_ALIGN_BYTES};

use super::error::{BlobLogError, RecordError};
use super::record::{self, ScanStop, SeekStop};

const FILE_PREFIX: &str = "segment-";
const FILE_SUFFIX: &str = ".blob";
const FILE_DIGITS: usize = 16;

/// Name of the file that primes glommio's poll-support probe (see [`prime_iopoll_probe`]).
pub const PROBE_FILE: &str = ".iopoll-probe";

/// Size of the probe file: one aligned block.
const PROBE_BYTES: usize = IO_ALIGN_BYTES;

/// Bytes recovery reads at once: one largest record, so every read makes progress.
const RECOVERY_WINDOW_BYTES: usize = CHUNK_BUF_BYTES;

/// File name of segment `number`.
pub fn file_name(number: u64) -> String {
    format!(
        "{FILE_PREFIX}{number:0width$}{FILE_SUFFIX}",
        width = FILE_DIGITS
    )
}

/// The segment number in a file name, or `None` if it is not a segment file.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(FILE_PREFIX)?.strip_suffix(FILE_SUFFIX)?;
    if digits.len() != FILE_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Makes glommio's iopoll probe give the true answer for `dir`'s device on
/// this thread; call before opening any segment.
///
/// glommio 0.9 decides once per thread and device whether O_DIRECT reads and
/// writes go to its polled ring, by reading the first block of the first
/// `DmaFile` opened there. When that file is empty the read ends at EOF
/// without reaching the device, the probe wrongly concludes that polling
/// works, and on devices without poll queues (this machine's virtio disk)
/// every later read fails with EOPNOTSUPP (glommio issues #605 and #670). So
/// the log first opens a one-block file that holds real data. If another
/// empty `DmaFile` on this device was opened on this thread earlier, the
/// wrong answer is already cached; the check read below turns that into an
/// error at open instead of at the first GET.
pub async fn prime_iopoll_probe(dir: &Path) -> Result<(), BlobLogError> {
    let path = dir.join(PROBE_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .buffered_open(&path)
        .await
        .map_err(|e| io_error("open iopoll probe", &path, e))?;
    let size_bytes = file
        .file_size()
        .await
        .map_err(|e| io_error("stat iopoll probe", &path, e))?;
    if size_bytes < PROBE_BYTES as u64 {
        file.write_at(vec![0x5a; PROBE_BYTES], 0)
            .await
            .map_err(|e| io_error("write iopoll probe", &path, e))?;
        file.fdatasync()
            .await
            .map_err(|e| io_error("sync iopoll probe", &path, e))?;
    }
    file.close()
        .await
        .map_err(|e| io_error("close iopoll probe", &path, e))?;

    let file = DmaFile::open(&path)
        .await
        .map_err(|e| io_error("open iopoll probe", &path, e))?;
    let read = file.read_at_aligned(0, PROBE_BYTES).await.map_err(|e| {
        io_error(
            "read iopoll probe (glommio chose polled I/O this device lacks)",
            &path,
            e,
        )
    });
    let closed = file
        .close()
        .await
        .map_err(|e| io_error("close iopoll probe", &path, e));
    let read = read?;
    closed?;
    if read.len() != PROBE_BYTES {
        return Err(io_error(
            "read iopoll probe",
            &path,
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{} of {PROBE_BYTES} bytes", read.len()),
            ),
        ));
    }
    Ok(())
}

/// Where the next record goes: the newest segment and its first free byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    pub segment: u64,
    pub offset_bytes: u64,
}

/// A place handed out by [`Tail::place`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub segment: u64,
    pub offset_bytes: u64,
    /// This record is the first in a new segment, which the caller must create.
    pub rolled: bool,
}

impl Tail {
    /// Reserves `record_bytes` at the tail, moving to a new segment when the
    /// record would end past `segment_bytes_max`.
    ///
    /// # Panics
    /// If the record is unaligned or larger than a whole segment (the log
    /// checks `segment_bytes_max` when it opens).
    pub fn place(&mut self, record_bytes: u64, segment_bytes_max: u64) -> Placement {
        assert_eq!(record_bytes % IO_ALIGN_BYTES as u64, 0);
        assert!(record_bytes > 0 && record_bytes <= segment_bytes_max);
        let rolled = self.offset_bytes + record_bytes > segment_bytes_max;
        if rolled {
            self.segment += 1;
            self.offset_bytes = 0;
        }
        let placement = Placement {
            segment: self.segment,
            offset_bytes: self.offset_bytes,
            rolled,
        };
        self.offset_bytes += record_bytes;
        placement
    }
}

/// A buffer to write: a chunk buffer lent for the write, or a copy the
/// write may consume.
pub enum WriteBuf {
    Lent(Rc<DmaBuffer>),
    Owned(DmaBuffer),
}

impl WriteBuf {
    fn len(&self) -> usize {
        match self {
            WriteBuf::Lent(buf) => buf.len(),
            WriteBuf::Owned(buf) => buf.len(),
        }
    }
}

/// What recovery found in a segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    pub records: u64,
    /// Where the valid records end (the new tail).
    pub end_offset_bytes: u64,
    pub truncated_bytes: u64,
    /// Damaged byte ranges that valid records follow, kept in place.
    pub damaged: Vec<Range<u64>>,
}

/// One open segment file.
#[derive(Debug)]
pub struct Segment {
    number: u64,
    path: PathBuf,
    file: DmaFile,
}

impl Segment {
    /// Creates segment `number` in `dir`; fails if the file exists.
    pub async fn create(dir: &Path, number: u64) -> Result<Segment, BlobLogError> {
        let path = dir.join(file_name(number));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .dma_open(&path)
            .await
            .map_err(|e| io_error("create segment", &path, e))?;
        Self::checked(number, path, file)
    }

    /// Opens an existing segment; `writable` for the one the log appends to.
    pub async fn open(dir: &Path, number: u64, writable: bool) -> Result<Segment, BlobLogError> {
        let path = dir.join(file_name(number));
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .dma_open(&path)
            .await
            .map_err(|e| io_error("open segment", &path, e))?;
        Self::checked(number, path, file)
    }

    fn checked(number: u64, path: PathBuf, file: DmaFile) -> Result<Segment, BlobLogError> {
        let device_align_bytes = file.alignment();
        if device_align_bytes == 0 || !(IO_ALIGN_BYTES as u64).is_multiple_of(device_align_bytes) {
            return Err(BlobLogError::Alignment {
                path,
                device_align_bytes,
                io_align_bytes: IO_ALIGN_BYTES as u64,
            });
        }
        Ok(Segment { number, path, file })
    }

    pub fn number(&self) -> u64 {
        self.number
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Length and allocated bytes of the file.
    pub async fn stat(&self) -> Result<glommio::io::Stat, BlobLogError> {
        self.file
            .stat()
            .await
            .map_err(|e| io_error("stat segment", &self.path, e))
    }

    /// Deletes the file (open handles keep working until they close).
    pub async fn unlink(&self) -> Result<(), BlobLogError> {
        glommio::io::remove(&self.path)
            .await
            .map_err(|e| io_error("remove segment", &self.path, e))
    }

    /// Writes a whole record at `offset_bytes`. Gives back a lent buffer.
    pub async fn write(
        &self,
        buf: WriteBuf,
        offset_bytes: u64,
    ) -> (Result<(), BlobLogError>, Option<DmaBuffer>) {
        let expected_bytes = buf.len();
        assert_eq!(expected_bytes % IO_ALIGN_BYTES, 0);
        assert_eq!(offset_bytes % IO_ALIGN_BYTES as u64, 0);
        let (written, lent) = match buf {
            WriteBuf::Lent(buf) => {
                let written = self.file.write_rc_at(buf.clone(), offset_bytes).await;
                // The write future dropped its reference when it completed.
                let buf = Rc::try_unwrap(buf).expect("the write still holds the chunk buffer");
                (written, Some(buf))
            }
            WriteBuf::Owned(buf) => (self.file.write_at(buf, offset_bytes).await, None),
        };
        let result = match written {
            Ok(n) if n == expected_bytes => Ok(()),
            Ok(n) => Err(BlobLogError::ShortWrite {
                segment: self.number,
                offset_bytes,
                written_bytes: n as u64,
                expected_bytes: expected_bytes as u64,
            }),
            Err(e) => Err(io_error("write segment", &self.path, e)),
        };
        (result, lent)
    }

    /// Reads `len_bytes` (aligned) from `offset_bytes`; shorter at the end of the file.
    pub async fn read(
        &self,
        offset_bytes: u64,
        len_bytes: usize,
    ) -> Result<ReadResult, BlobLogError> {
        self.file
            .read_at_aligned(offset_bytes, len_bytes)
            .await
            .map_err(|e| io_error("read segment", &self.path, e))
    }

    pub async fn fdatasync(&self) -> Result<(), BlobLogError> {
        fail::fail_point!("blob_log::fdatasync", |_| Err(io_error(
            "fdatasync segment",
            &self.path,
            std::io::Error::other("fault injected at blob_log::fdatasync")
        )));
        self.file
            .fdatasync()
            .await
            .map_err(|e| io_error("fdatasync segment", &self.path, e))
    }

    pub async fn size_bytes(&self) -> Result<u64, BlobLogError> {
        self.file
            .file_size()
            .await
            .map_err(|e| io_error("stat segment", &self.path, e))
    }

    /// Scans the segment from its start, keeps every valid record, and
    /// truncates it after the last one, then syncs it, so that what recovery
    /// reports as present is durable before new appends build on it.
    ///
    /// Bytes that are not a valid record but have valid records after them
    /// are damage (a flipped bit, a bad sector), not a torn tail: they are
    /// kept, skipped and reported in [`Recovered::damaged`], because cutting
    /// there would destroy the acknowledged records that follow. Only bytes
    /// after the last valid record are cut. Records after a torn write were
    /// never acknowledged (group commit acknowledges an append only once
    /// every earlier one is durable), so keeping them is harmless.
    pub async fn recover(&self) -> Result<Recovered, BlobLogError> {
        let file_bytes = self.size_bytes().await?;
        let mut found = Recovered::default();
        let mut at = 0u64;
        // Where the damage being skipped starts, and what was wrong there.
        let mut damage: Option<(u64, RecordError)> = None;
        loop {
            let read = self.recovery_window(at, file_bytes).await?;
            let window: &[u8] = read.as_deref().unwrap_or_default();
            let window_at = at;
            match damage {
                None => {
                    let scan = record::scan(window, at, file_bytes);
                    found.records += scan.records;
                    at = scan.next_offset_bytes;
                    match scan.stop {
                        ScanStop::EndOfFile => break,
                        ScanStop::WindowEnd => {}
                        ScanStop::Invalid(reason) => {
                            damage = Some((at, reason));
                            let bad = &window[(at - window_at) as usize..];
                            at += record::skip_bytes(bad, at, file_bytes - at);
                            continue;
                        }
                    }
                }
                Some((from, reason)) => {
                    let seek = record::seek(window, at, file_bytes);
                    at = seek.next_offset_bytes;
                    match seek.stop {
                        SeekStop::WindowEnd => {}
                        SeekStop::Found => {
                            tracing::warn!(
                                segment = self.number,
                                offset_bytes = from,
                                damaged_bytes = at - from,
                                %reason,
                                "blob log recovery: skipping damaged bytes; the valid records after them are kept"
                            );
                            found.damaged.push(from..at);
                            damage = None;
                            continue;
                        }
                        SeekStop::EndOfFile => {
                            at = from;
                            self.truncate_after_bad_record(at, file_bytes - at, reason)
                                .await?;
                            break;
                        }
                    }
                }
            }
            assert!(
                at > window_at,
                "recovery window at {window_at} made no progress"
            );
        }
        found.end_offset_bytes = at;
        found.truncated_bytes = file_bytes - at;
        self.fdatasync().await?;
        Ok(found)
    }

    /// Up to [`RECOVERY_WINDOW_BYTES`] of the segment from `at`, exactly
    /// as far as the file goes (none at or past its end).
    async fn recovery_window(
        &self,
        at: u64,
        file_bytes: u64,
    ) -> Result<Option<ReadResult>, BlobLogError> {
        let want_bytes = file_bytes
            .saturating_sub(at)
            .min(RECOVERY_WINDOW_BYTES as u64);
        if want_bytes == 0 {
            return Ok(None);
        }
        let read_bytes = align_up(want_bytes as usize, IO_ALIGN_BYTES);
        let window = self.read(at, read_bytes).await?;
        if (window.len() as u64) < want_bytes {
            return Err(io_error(
                "read segment",
                &self.path,
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{} of {want_bytes} bytes at offset {at}", window.len()),
                ),
            ));
        }
        Ok(Some(
            ReadResult::slice(&window, 0, want_bytes as usize).expect("within the read"),
        ))
    }

    async fn truncate_after_bad_record(
        &self,
        at: u64,
        truncated_bytes: u64,
        reason: RecordError,
    ) -> Result<(), BlobLogError> {
        tracing::warn!(
            segment = self.number,
            offset_bytes = at,
            truncated_bytes,
            %reason,
            "blob log recovery: truncating segment at its first invalid record"
        );
        self.file
            .truncate(at)
            .await
            .map_err(|e| io_error("truncate segment", &self.path, e))
    }
}

pub(super) fn io_error(
    op: &'static str,
    path: &Path,
    source: impl Into<std::io::Error>,
) -> BlobLogError {
    BlobLogError::Io {
        op,
        path: path.to_path_buf(),
        source: source.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_sort_by_number() {
        assert_eq!(file_name(7), "segment-0000000000000007.blob");
        assert_eq!(parse_file_name(&file_name(7)), Some(7));
        assert_eq!(
            parse_file_name(&file_name(u64::MAX / 10_000)),
            Some(u64::MAX / 10_000)
        );
        assert!(file_name(9) < file_name(10));
        for bad in [
            "segment-7.blob",
            "segment-000000000000000a.blob",
            "segment-0000000000000007.blob.tmp",
            "other-0000000000000007.blob",
            "segment-+000000000000007.blob",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn tail_hands_out_adjacent_places_then_rolls() {
        let mut tail = Tail {
            segment: 3,
            offset_bytes: 0,
        };
        let max = 3 * 4096;
        let a = tail.place(4096, max);
        let b = tail.place(8192, max);
        let c = tail.place(4096, max);
        assert_eq!(
            (a, b),
            (
                Placement {
                    segment: 3,
                    offset_bytes: 0,
                    rolled: false
                },
                Placement {
                    segment: 3,
                    offset_bytes: 4096,
                    rolled: false
                }
            )
        );
        assert_eq!(
            c,
            Placement {
                segment: 4,
                offset_bytes: 0,
                rolled: true
            }
        );
        assert_eq!(
            tail,
            Tail {
                segment: 4,
                offset_bytes: 4096
            }
        );
    }

    #[test]
    fn tail_past_a_smaller_limit_rolls_at_once() {
        // A log reopened with a smaller segment_bytes_max.
        let mut tail = Tail {
            segment: 0,
            offset_bytes: 10 * 4096,
        };
        let place = tail.place(4096, 4 * 4096);
        assert!(place.rolled);
        assert_eq!(place.segment, 1);
    }
}
