//! Blob-log tests on a real file system: O_DIRECT needs a disk, not tmpfs,
//! so the files go under `SHOAL_TEST_DIR` (default `/var/tmp`).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use futures::FutureExt;

use super::*;
use crate::chunk::ChunkPool;
use crate::chunk_hash::ChunkHash;

use crate::test_util::run_local as run;

fn scratch_dir() -> tempfile::TempDir {
    let base = std::env::var_os("SHOAL_TEST_DIR").unwrap_or_else(|| "/var/tmp".into());
    tempfile::Builder::new()
        .prefix("shoal-blob-log-")
        .tempdir_in(base)
        .expect("scratch directory")
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32) as u8
                ^ seed
        })
        .collect()
}

fn sha(bytes: &[u8]) -> ChunkHash {
    ChunkHash::of(bytes)
}

/// A chunk buffer holding `len` bytes of seeded data, with their hash.
fn chunk(pool: &ChunkPool, len: usize, seed: u8) -> (ChunkBuf, ChunkHash, Vec<u8>) {
    let data = payload(len, seed);
    let mut buf = pool.take();
    assert_eq!(buf.fill_from(&data), len);
    (buf, sha(&data), data)
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(segment::file_name(number))
}

const ONE_SEGMENT: u64 = crate::limits::SEGMENT_BYTES_MAX;

#[test]
fn full_and_short_chunks_round_trip() {
    let dir = scratch_dir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, report) = BlobLog::open(&path, ONE_SEGMENT).await.unwrap();
        assert_eq!(
            report,
            RecoveryReport {
                segments: 1,
                records: 0,
                truncated_bytes: 0,
                damaged: vec![],
                tail: BlobLocation {
                    segment: 0,
                    offset_bytes: 0,
                    size_bytes: 0
                },
            }
        );
        let pool = ChunkPool::new();
        // Full chunk, the sizes either side of the copy threshold, short, empty.
        let sizes = [CHUNK_BYTES, CHUNK_BYTES - 63, CHUNK_BYTES - 64, 5000, 0];
        let mut expected_offset = 0;
        let mut written = Vec::new();
        for (i, &len) in sizes.iter().enumerate() {
            let (buf, hash, data) = chunk(&pool, len, i as u8);
            let allocation = buf.as_dma().as_ptr();
            let (loc, back) = log.append(buf, hash).await.unwrap();
            assert_eq!(
                loc,
                BlobLocation {
                    segment: 0,
                    offset_bytes: expected_offset,
                    size_bytes: len as u32
                }
            );
            assert_eq!(
                back.as_dma().as_ptr(),
                allocation,
                "the same buffer comes back"
            );
            assert_eq!(back.payload(), &data[..], "the payload is untouched");
            pool.give(back);
            expected_offset += record::record_bytes(len) as u64;
            written.push((loc, hash, data));
        }
        for (loc, hash, data) in &written {
            let read = log.read(*loc, hash).await.unwrap();
            assert_eq!(&read[..], &data[..]);
        }
        let stats = log.stats();
        assert_eq!(stats.appends, sizes.len() as u64);
        assert_eq!(stats.bytes_written, expected_offset);
        assert!(
            stats.fsyncs >= sizes.len() as u64,
            "sequential appends each sync"
        );
    });
}

#[test]
fn concurrent_appends_share_fdatasyncs() {
    const APPENDS: usize = 32;
    let dir = scratch_dir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = BlobLog::open(&path, ONE_SEGMENT).await.unwrap();
        let log = Rc::new(log);
        let pool = ChunkPool::new();
        let mut tasks = Vec::new();
        for i in 0..APPENDS {
            let len = if i % 4 == 0 { 70_000 + i } else { CHUNK_BYTES };
            let (buf, hash, data) = chunk(&pool, len, i as u8);
            let log = log.clone();
            tasks.push(glommio::spawn_local(async move {
                let (loc, _) = log.append(buf, hash).await.unwrap();
                (loc, hash, data)
            }));
        }
        let mut written = Vec::new();
        for task in tasks {
            written.push(task.await);
        }
        let stats = log.stats();
        assert_eq!(stats.appends, APPENDS as u64);
        assert!(
            stats.fsyncs < APPENDS as u64,
            "{} fdatasyncs for {APPENDS} appends",
            stats.fsyncs
        );
        assert!(stats.group_commit_batch_max > 1, "{stats:?}");

        written.sort_by_key(|(loc, _, _)| loc.offset_bytes);
        let mut next = 0;
        for (loc, hash, data) in &written {
            assert_eq!(
                loc.offset_bytes, next,
                "records are adjacent and never overlap"
            );
            next += record::record_bytes(loc.size_bytes as usize) as u64;
            assert_eq!(&log.read(*loc, hash).await.unwrap()[..], &data[..]);
        }
    });
}

#[test]
fn segments_roll_when_full_and_survive_reopen() {
    let dir = scratch_dir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let segment_bytes_max = 2 * CHUNK_BUF_BYTES as u64;
        let (log, _) = BlobLog::open(&path, segment_bytes_max).await.unwrap();
        let log = Rc::new(log);
        let pool = ChunkPool::new();
        let mut written = Vec::new();
        for i in 0..5 {
            let (buf, hash, data) = chunk(&pool, CHUNK_BYTES, i);
            let (loc, back) = log.append(buf, hash).await.unwrap();
            pool.give(back);
            written.push((loc, hash, data));
        }
        let places: Vec<_> = written
            .iter()
            .map(|(loc, _, _)| (loc.segment, loc.offset_bytes))
            .collect();
        let full = CHUNK_BUF_BYTES as u64;
        assert_eq!(places, vec![(0, 0), (0, full), (1, 0), (1, full), (2, 0)]);

        // Many concurrent short records across several rolls.
        let mut tasks = Vec::new();
        for i in 0..24u8 {
            let (buf, hash, data) = chunk(&pool, 200_000, 100 + i);
            let log = log.clone();
            tasks.push(glommio::spawn_local(async move {
                let (loc, _) = log.append(buf, hash).await.unwrap();
                (loc, hash, data)
            }));
        }
        for task in tasks {
            written.push(task.await);
        }
        let newest = written.iter().map(|(loc, _, _)| loc.segment).max().unwrap();
        assert!(newest >= 4, "rolled to segment {newest}");
        for (loc, hash, data) in &written {
            assert!(
                loc.offset_bytes + record::record_bytes(data.len()) as u64 <= segment_bytes_max
            );
            assert_eq!(&log.read(*loc, hash).await.unwrap()[..], &data[..]);
        }
        let in_newest = written
            .iter()
            .filter(|(loc, _, _)| loc.segment == newest)
            .count();
        drop(log);

        let (log, report) = BlobLog::open(&path, segment_bytes_max).await.unwrap();
        assert_eq!(report.segments as u64, newest + 1);
        assert_eq!(report.records, in_newest as u64);
        assert_eq!(report.truncated_bytes, 0);
        for (loc, hash, data) in &written {
            assert_eq!(&log.read(*loc, hash).await.unwrap()[..], &data[..]);
        }
    });
}

#[test]
fn every_concurrent_append_in_its_own_segment() {
    let dir = scratch_dir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = BlobLog::open(&path, CHUNK_BUF_BYTES as u64).await.unwrap();
        let log = Rc::new(log);
        let pool = ChunkPool::new();
        let mut tasks = Vec::new();
        for i in 0..12u8 {
            let (buf, hash, data) = chunk(&pool, CHUNK_BYTES, i);
            let log = log.clone();
            tasks.push(glommio::spawn_local(async move {
                let (loc, _) = log.append(buf, hash).await.unwrap();
                (loc, hash, data)
            }));
        }
        let mut segments = Vec::new();
        for task in tasks {
            let (loc, hash, data) = task.await;
            assert_eq!(loc.offset_bytes, 0);
            assert_eq!(&log.read(loc, &hash).await.unwrap()[..], &data[..]);
            segments.push(loc.segment);
        }
        segments.sort_unstable();
        assert_eq!(segments, (0..12).collect::<Vec<u64>>());
    });
}

/// Appends `count` short records and closes the log; returns what was written.
async fn fill(path: &Path, count: u8) -> Vec<(BlobLocation, ChunkHash, Vec<u8>)> {
    let (log, _) = BlobLog::open(path, ONE_SEGMENT).await.unwrap();
    let pool = ChunkPool::new();
    let mut written = Vec::new();
    for i in 0..count {
        let (buf, hash, data) = chunk(&pool, 3000 + 1000 * i as usize, i);
        let (loc, back) = log.append(buf, hash).await.unwrap();
        pool.give(back);
        written.push((loc, hash, data));
    }
    written
}

fn append_to_file(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
    file.sync_all().unwrap();
}

async fn check_recovered_then_append(
    path: &Path,
    written: &[(BlobLocation, ChunkHash, Vec<u8>)],
    garbage_bytes: u64,
) {
    let tail = written
        .iter()
        .map(|(loc, _, _)| loc.offset_bytes + record::record_bytes(loc.size_bytes as usize) as u64)
        .max()
        .unwrap();
    let (log, report) = BlobLog::open(path, ONE_SEGMENT).await.unwrap();
    assert_eq!(
        report,
        RecoveryReport {
            segments: 1,
            records: written.len() as u64,
            truncated_bytes: garbage_bytes,
            damaged: vec![],
            tail: BlobLocation {
                segment: 0,
                offset_bytes: tail,
                size_bytes: 0
            },
        }
    );
    assert_eq!(
        std::fs::metadata(segment_path(path, 0)).unwrap().len(),
        tail
    );
    for (loc, hash, data) in written {
        assert_eq!(&log.read(*loc, hash).await.unwrap()[..], &data[..]);
    }
    let pool = ChunkPool::new();
    let (buf, hash, data) = chunk(&pool, 12_345, 77);
    let (loc, _) = log.append(buf, hash).await.unwrap();
    assert_eq!(
        (loc.segment, loc.offset_bytes),
        (0, tail),
        "the tail continues at the cut"
    );
    assert_eq!(&log.read(loc, &hash).await.unwrap()[..], &data[..]);
    drop(log);

    let (_, report) = BlobLog::open(path, ONE_SEGMENT).await.unwrap();
    assert_eq!(report.records, written.len() as u64 + 1);
    assert_eq!(report.truncated_bytes, 0);
}

#[test]
fn recovery_cuts_a_half_written_record() {
    let dir = scratch_dir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let written = fill(&path, 3).await;
        let file = segment_path(&path, 0);
        let tail = std::fs::metadata(&file).unwrap().len();
        // A well-formed header for a 9000-byte record at the tail, then only
        // part of its payload, as a crash in the middle of the write leaves it.
        let data = payload(9000, 9);
        let mut torn = vec![0u8; record::record_bytes(data.len())];
        torn[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + data.len()].copy_from_slice(&data);
        let (header, _) = torn.split_at_mut(RECORD_HEADER_BYTES);
        record::encode_header(header, &data, &sha(&data), tail);
        torn.truncate(RECORD_HEADER_BYTES + 4000);
        append_to_file(&file, &torn);
        check_recovered_then_append(&path, &written, torn.len() as u64).await;
    });
}

#[test]
fn recovery_cuts_garbage_and_a_record_with_a_bad_payload() {
    let dir = scratch_dir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let written = fill(&path, 4).await;
        let file = segment_path(&path, 0);
        let tail = std::fs::metadata(&file).unwrap().len();
        // A complete, aligned record whose payload was damaged, then garbage.
        let data = payload(5000, 3);
        let mut bad = vec![0u8; record::record_bytes(data.len())];
        bad[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + data.len()].copy_from_slice(&data);
        let (header, _) = bad.split_at_mut(RECORD_HEADER_BYTES);
        record::encode_header(header, &data, &sha(&data), tail);
        bad[RECORD_HEADER_BYTES + 17] ^= 0x20;
        bad.extend_from_slice(&[0x5a; 10_000]);
        append_to_file(&file, &bad);
        check_recovered_then_append(&path, &written, bad.len() as u64).await;
    });
}

/// Flips one byte of segment 0 at `at`, behind the log's back.
fn flip_byte(dir: &Path, at: u64) {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(segment_path(dir, 0))
        .unwrap();
    let mut byte = [0u8; 1];
    file.seek(SeekFrom::Start(at)).unwrap();
    file.read_exact(&mut byte).unwrap();
    file.seek(SeekFrom::Start(at)).unwrap();
    file.write_all(&[byte[0] ^ 0x10]).unwrap();
    file.sync_all().unwrap();
}

#[test]
fn recovery_keeps_the_records_after_a_damaged_one() {
    for (what, at_in_record) in [("payload", RECORD_HEADER_BYTES as u64 + 700), ("header", 9)] {
        let dir = scratch_dir();
        let path = dir.path().to_path_buf();
        run(move || async move {
            let written = fill(&path, 6).await;
            let (bad, _, _) = written[2];
            flip_byte(&path, bad.offset_bytes + at_in_record);
            let file_bytes = std::fs::metadata(segment_path(&path, 0)).unwrap().len();

            let (log, report) = BlobLog::open(&path, ONE_SEGMENT).await.unwrap();
            assert_eq!(report.records, 5, "{what}: every other record is kept");
            assert_eq!(report.truncated_bytes, 0, "{what}: nothing is cut");
            let bad_end = bad.offset_bytes + BlobLog::record_span(bad.size_bytes);
            assert_eq!(report.damaged, vec![bad.offset_bytes..bad_end], "{what}");
            assert_eq!(report.tail.offset_bytes, file_bytes);
            assert!(!report.may_hold(bad, |n| n == 0));
            for (i, (at, hash, data)) in written.iter().enumerate() {
                assert_eq!(report.may_hold(*at, |n| n == 0), i != 2);
                match log.read(*at, hash).await {
                    Ok(read) if i != 2 => assert_eq!(&read[..], &data[..]),
                    Err(BlobLogError::Corrupt { .. }) if i == 2 => {}
                    other => panic!("{what}: record {i}: {other:?}"),
                }
            }
            // New appends go after the last record, not into the damage.
            let pool = ChunkPool::new();
            let (buf, hash, data) = chunk(&pool, 7000, 42);
            let (at, _) = log.append(buf, hash).await.unwrap();
            assert_eq!(at.offset_bytes, file_bytes);
            assert_eq!(&log.read(at, &hash).await.unwrap()[..], &data[..]);
        });
    }
}

#[test]
fn recovery_cuts_only_after_the_last_valid_record() {
    let dir = scratch_dir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let written = fill(&path, 4).await;
        // The last record is damaged: nothing valid follows, so it is
        // taken for a torn write and cut (its index entry, if any, is the
        // caller's to drop: `may_hold` says no).
        let (last, _, _) = written[3];
        flip_byte(&path, last.offset_bytes + RECORD_HEADER_BYTES as u64 + 10);
        let (_, report) = BlobLog::open(&path, ONE_SEGMENT).await.unwrap();
        assert_eq!(report.records, 3);
        assert_eq!(report.tail.offset_bytes, last.offset_bytes);
        assert!(report.damaged.is_empty());
        assert!(!report.may_hold(last, |n| n == 0));
        assert!(report.may_hold(written[2].0, |n| n == 0));
        assert!(
            !report.may_hold(written[2].0, |_| false),
            "a missing segment holds nothing"
        );
    });
}

#[test]
fn reopen_keeps_every_record() {
    let dir = scratch_dir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let written = fill(&path, 10).await;
        let (log, report) = BlobLog::open(&path, ONE_SEGMENT).await.unwrap();
        assert_eq!(
            report,
            RecoveryReport {
                segments: 1,
                records: 10,
                truncated_bytes: 0,
                damaged: vec![],
                tail: BlobLocation {
                    segment: 0,
                    offset_bytes: written
                        .iter()
                        .map(|(at, _, _)| at.offset_bytes + BlobLog::record_span(at.size_bytes))
                        .max()
                        .unwrap(),
                    size_bytes: 0
                },
            }
        );
        for (loc, hash, data) in &written {
            assert_eq!(&log.read(*loc, hash).await.unwrap()[..], &data[..]);
        }
        assert_eq!(
            log.stats().fsyncs,
            1,
            "recovery syncs the newest segment once"
        );
    });
}

#[test]
fn damaged_payload_fails_its_crc_on_read() {
    let dir = scratch_dir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = BlobLog::open(&path, ONE_SEGMENT).await.unwrap();
        let pool = ChunkPool::new();
        let (buf, hash, data) = chunk(&pool, 50_000, 1);
        let (first, back) = log.append(buf, hash).await.unwrap();
        pool.give(back);
        let (buf, hash2, data2) = chunk(&pool, CHUNK_BYTES, 2);
        let (second, _) = log.append(buf, hash2).await.unwrap();

        // Flip one payload byte of the first record behind the log's back.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(segment_path(&path, 0))
            .unwrap();
        let at = first.offset_bytes + RECORD_HEADER_BYTES as u64 + 1234;
        let mut byte = [0u8; 1];
        file.seek(SeekFrom::Start(at)).unwrap();
        file.read_exact(&mut byte).unwrap();
        assert_eq!(byte[0], data[1234]);
        file.seek(SeekFrom::Start(at)).unwrap();
        file.write_all(&[byte[0] ^ 0x01]).unwrap();
        file.sync_all().unwrap();

        match log.read(first, &hash).await {
            Err(BlobLogError::Corrupt {
                segment: 0,
                offset_bytes: 0,
                reason: RecordError::PayloadCrc { .. },
            }) => {}
            other => panic!("expected a payload CRC error, got {other:?}"),
        }
        // The neighbour is intact.
        assert_eq!(&log.read(second, &hash2).await.unwrap()[..], &data2[..]);
    });
}

#[test]
fn reads_check_hash_size_and_location() {
    let dir = scratch_dir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = BlobLog::open(&path, ONE_SEGMENT).await.unwrap();
        let pool = ChunkPool::new();
        let (buf, hash, _) = chunk(&pool, 10_000, 5);
        let (loc, _) = log.append(buf, hash).await.unwrap();

        let other_hash = sha(b"something else");
        assert!(matches!(
            log.read(loc, &other_hash).await,
            Err(BlobLogError::HashMismatch {
                segment: 0,
                offset_bytes: 0
            })
        ));
        let shorter = BlobLocation {
            size_bytes: 9_000,
            ..loc
        };
        assert!(matches!(
            log.read(shorter, &hash).await,
            Err(BlobLogError::Corrupt {
                reason: RecordError::SizeMismatch {
                    stored_bytes: 10_000,
                    expected_bytes: 9_000
                },
                ..
            })
        ));
        let longer = BlobLocation {
            size_bytes: 100_000,
            ..loc
        };
        assert!(matches!(
            log.read(longer, &hash).await,
            Err(BlobLogError::Corrupt {
                reason: RecordError::Truncated { .. },
                ..
            })
        ));
        // Inside the record's payload: no header there.
        let elsewhere = BlobLocation {
            offset_bytes: 4096,
            size_bytes: 100,
            ..loc
        };
        assert!(matches!(
            log.read(elsewhere, &hash).await,
            Err(BlobLogError::Corrupt {
                reason: RecordError::BadMagic { .. },
                ..
            })
        ));
        let misaligned = BlobLocation {
            offset_bytes: 100,
            ..loc
        };
        assert!(matches!(
            log.read(misaligned, &hash).await,
            Err(BlobLogError::Corrupt {
                reason: RecordError::Misaligned { .. },
                ..
            })
        ));
        let missing = BlobLocation { segment: 7, ..loc };
        assert!(matches!(
            log.read(missing, &hash).await,
            Err(BlobLogError::UnknownSegment { segment: 7 })
        ));
        let huge = BlobLocation {
            size_bytes: CHUNK_BYTES as u32 + 1,
            ..loc
        };
        assert!(matches!(
            log.read(huge, &hash).await,
            Err(BlobLogError::TooLarge { .. })
        ));
    });
}

#[test]
fn a_dropped_append_still_lands_and_blocks_no_one() {
    let dir = scratch_dir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let (log, _) = BlobLog::open(&path, ONE_SEGMENT).await.unwrap();
        let pool = ChunkPool::new();
        let (buf, hash, _) = chunk(&pool, CHUNK_BYTES, 1);
        // Poll once (reserves and starts the write), then give up on it.
        assert!(log.append(buf, hash).now_or_never().is_none());
        let (buf, hash, data) = chunk(&pool, 4000, 2);
        let (loc, _) = log.append(buf, hash).await.unwrap();
        assert_eq!(loc.offset_bytes, CHUNK_BUF_BYTES as u64);
        assert_eq!(&log.read(loc, &hash).await.unwrap()[..], &data[..]);
        drop(log);
        let (_, report) = BlobLog::open(&path, ONE_SEGMENT).await.unwrap();
        assert_eq!(report.records, 2);
    });
}

#[test]
fn segment_size_must_hold_a_full_chunk() {
    let dir = scratch_dir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        for bad in [
            4096,
            CHUNK_BUF_BYTES as u64 - 4096,
            CHUNK_BUF_BYTES as u64 + 1,
        ] {
            assert!(matches!(
                BlobLog::open(&path, bad).await,
                Err(BlobLogError::BadSegmentSize { .. })
            ));
        }
    });
}

#[test]
fn unrelated_files_are_left_alone() {
    let dir = scratch_dir();
    let path = dir.path().to_path_buf();
    std::fs::write(path.join("notes.txt"), b"hello").unwrap();
    run(move || async move {
        let (_, report) = BlobLog::open(&path, ONE_SEGMENT).await.unwrap();
        assert_eq!(report.segments, 1);
        assert_eq!(std::fs::read(path.join("notes.txt")).unwrap(), b"hello");
    });
}
