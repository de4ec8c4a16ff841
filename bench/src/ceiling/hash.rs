//! The hash probe: SHA-256 and MD5 (what a signed or checksummed PUT costs
//! a server) over a 1 MiB buffer, for `CPU_PROBE_TIME` on one core, then on
//! every allowed core at once, one thread per core, each pinned.

use std::sync::{Arc, Barrier};
use std::time::Instant;

use md5::Md5;
use sha2::{Digest, Sha256};

use super::cores;
use super::HashCeiling;
use crate::limits::{CPU_PROBE_TIME, HASH_BLOCK_BYTES};
use crate::stats::summary::per_second;

#[derive(Debug, Clone, Copy)]
pub enum Algorithm {
    Sha256,
    Md5,
}

pub fn probe(algorithm: Algorithm) -> HashCeiling {
    let cpus = cores::allowed();
    let (per_core, pinned_one) = run(algorithm, &cpus[..1]);
    let (all_cores, pinned_all) = run(algorithm, &cpus);
    HashCeiling {
        per_core_bytes_per_s: per_core,
        all_cores_bytes_per_s: all_cores,
        cores: cpus.len(),
        pinned: pinned_one && pinned_all,
    }
}

/// Hashes on one thread per CPU in `cpus`, all started together; returns
/// the summed rate and whether every thread was pinned.
fn run(algorithm: Algorithm, cpus: &[usize]) -> (f64, bool) {
    let barrier = Arc::new(Barrier::new(cpus.len()));
    let threads: Vec<_> = cpus
        .iter()
        .map(|&cpu| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let pinned = cores::pin(cpu);
                let block = vec![0x5au8; HASH_BLOCK_BYTES];
                barrier.wait();
                let (bytes, seconds) = hash_for_a_while(algorithm, &block);
                (per_second(bytes, seconds), pinned)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("hash threads do not panic"))
        .fold((0.0, true), |(sum, all), (rate, pinned)| {
            (sum + rate, all && pinned)
        })
}

fn hash_for_a_while(algorithm: Algorithm, block: &[u8]) -> (u64, f64) {
    let started = Instant::now();
    let mut bytes = 0u64;
    let mut sha256 = Sha256::new();
    let mut md5 = Md5::new();
    while started.elapsed() < CPU_PROBE_TIME {
        match algorithm {
            Algorithm::Sha256 => sha256.update(block),
            Algorithm::Md5 => md5.update(block),
        }
        bytes += block.len() as u64;
    }
    std::hint::black_box((sha256.finalize(), md5.finalize()));
    (bytes, started.elapsed().as_secs_f64())
}
