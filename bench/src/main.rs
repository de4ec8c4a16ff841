//! `shoal-bench`: a small load generator for S3 PUTs and a probe of the
//! disk's durable O_DIRECT write rate, so a PUT figure can be stated as a
//! fraction of what the machine can do.
//!
//! The client keeps one HTTP/1.1 keep-alive connection per worker thread,
//! signs with SigV4 and `UNSIGNED-PAYLOAD`, and sends one reused payload
//! buffer, so it spends its time in `write(2)`, not in hashing or copying.
//! (The bench issue grows this into the full tool: more workloads,
//! reports, plots.)

mod disk;
mod s3client;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;

#[derive(Parser)]
#[command(
    name = "shoal-bench",
    about = "S3 load generator and machine-ceiling probe"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// PUT `count` objects of `size` bytes with `concurrency` workers.
    Put {
        #[arg(long, default_value = "http://127.0.0.1:9000")]
        endpoint: String,
        #[arg(long, default_value = "bench")]
        bucket: String,
        /// Object size, e.g. 64MiB.
        #[arg(long, default_value = "64MiB", value_parser = parse_size)]
        size: u64,
        #[arg(long, default_value_t = 64)]
        count: u64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, env = "SHOAL_ACCESS_KEY")]
        access_key: String,
        #[arg(long, env = "SHOAL_SECRET_KEY")]
        secret_key: String,
        #[arg(long, default_value = "us-east-1")]
        region: String,
    },
    /// Durable O_DIRECT sequential write rate (4 MiB writes, fdatasync at
    /// the end) into a scratch file in `dir`.
    Disk {
        #[arg(long, default_value = ".")]
        dir: std::path::PathBuf,
        #[arg(long, default_value = "4GiB", value_parser = parse_size)]
        size: u64,
    },
}

fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("bad size {text:?}"))?;
    let multiplier = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(format!("unknown unit {unit:?} (use B, KiB, MiB, GiB)")),
    };
    Ok(number * multiplier)
}

fn main() {
    match Cli::parse().command {
        Command::Put {
            endpoint,
            bucket,
            size,
            count,
            concurrency,
            access_key,
            secret_key,
            region,
        } => {
            let target = s3client::Target::new(&endpoint, access_key, secret_key, region)
                .unwrap_or_else(|e| {
                    eprintln!("shoal-bench: {e}");
                    std::process::exit(2)
                });
            run_put(target, &bucket, size, count, concurrency);
        }
        Command::Disk { dir, size } => match disk::durable_write_rate(&dir, size) {
            Ok(rate) => println!("disk: O_DIRECT write + fdatasync {:.0} MB/s", rate / 1e6),
            Err(e) => {
                eprintln!("shoal-bench: {e}");
                std::process::exit(1)
            }
        },
    }
}

fn run_put(target: s3client::Target, bucket: &str, size: u64, count: u64, concurrency: usize) {
    let target = Arc::new(target);
    if let Err(e) = target
        .connect()
        .and_then(|mut c| c.request("PUT", &format!("/{bucket}"), &[]))
    {
        eprintln!("shoal-bench: creating bucket: {e}");
    }
    let payload: Arc<Vec<u8>> = Arc::new((0..size).map(|i| (i * 31 % 251) as u8).collect());
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new(3).expect("valid sigfig")));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (target, payload, next, errors, latencies) = (
                target.clone(),
                payload.clone(),
                next.clone(),
                errors.clone(),
                latencies.clone(),
            );
            let bucket = bucket.to_string();
            std::thread::spawn(move || {
                let mut local = Histogram::<u64>::new(3).expect("valid sigfig");
                let mut conn = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let begun = Instant::now();
                    let result =
                        conn.take()
                            .map_or_else(|| target.connect(), Ok)
                            .and_then(|mut c| {
                                c.request("PUT", &format!("/{bucket}/w{worker}/o{i}"), &payload)
                                    .map(|s| (c, s))
                            });
                    match result {
                        Ok((c, 200)) => {
                            let _ = local.record(begun.elapsed().as_micros() as u64);
                            conn = Some(c);
                        }
                        Ok((c, status)) => {
                            eprintln!("PUT o{i}: HTTP {status}");
                            errors.fetch_add(1, Ordering::Relaxed);
                            conn = Some(c);
                        }
                        Err(e) => {
                            eprintln!("PUT o{i}: {e}");
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies
                    .lock()
                    .expect("no worker panics")
                    .add(&local)
                    .expect("same histogram bounds");
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let elapsed = started.elapsed();
    let h = latencies.lock().expect("workers done");
    let ok = h.len();
    let bytes = ok * size;
    let ms = |us: u64| Duration::from_micros(us).as_secs_f64() * 1e3;
    println!(
        "put: {ok} ok, {} errors, {:.0} MB/s, {:.1} objects/s over {:.2}s (size {size} B, concurrency {concurrency})",
        errors.load(Ordering::Relaxed),
        bytes as f64 / elapsed.as_secs_f64() / 1e6,
        ok as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "latency ms: p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.9)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max())
    );
}
