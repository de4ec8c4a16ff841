//! The runner against the in-process sink: real hyper connections, real
//! bodies in every payload mode, counted end to end. (Signatures are
//! checked by the end-to-end tests against a Shoal node.)

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;

use super::runner::{ensure_buckets, run_step, Target};
use super::spec::{StepParams, StepSpec, WorkloadKind};
use crate::limits::EXPECT_CONTINUE_WAIT;
use crate::payload::PayloadPool;
use crate::s3::{Endpoint, PayloadMode};
use crate::sigv4::Credentials;
use crate::sink::serve_on;
use crate::units::ByteSize;
use crate::workload::progress::Progress;

const SINK_OBJECT_BYTES: usize = 3000;

async fn sink_target() -> Arc<Target> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_on(
        listener,
        Bytes::from(vec![1u8; SINK_OBJECT_BYTES]),
    ));
    Arc::new(Target {
        endpoint: Endpoint::parse(&format!("http://{addr}")).unwrap(),
        credentials: Credentials {
            access_key: "AK".into(),
            secret_key: "SK".into(),
        },
        region: "us-east-1".into(),
        bucket: "bench".into(),
        buckets: vec!["bench".into()],
        server: None,
    })
}

fn step(kind: WorkloadKind, edit: impl FnOnce(&mut StepParams)) -> StepSpec {
    let mut params = StepParams {
        workload: Some(kind),
        size: Some(ByteSize(150_000)),
        count: Some(24),
        ..StepParams::default()
    };
    edit(&mut params);
    params.resolve("t", 1.0).unwrap().remove(0)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn puts_in_every_payload_mode_reach_the_sink() {
    runtime().block_on(async {
        let target = sink_target().await;
        assert!(ensure_buckets(&target, Duration::from_secs(5))
            .await
            .usable());
        let mut payloads = PayloadPool::default();
        for mode in [
            PayloadMode::Signed,
            PayloadMode::Unsigned,
            PayloadMode::Chunked,
        ] {
            for expect in [false, true] {
                let spec = step(WorkloadKind::Put, |p| {
                    p.payload = Some(mode);
                    p.expect_continue = Some(expect);
                    p.concurrency = Some(super::spec::Concurrency::One(4));
                });
                let run = run_step(&target, &spec, &mut payloads, &Progress::disabled(), 1).await;
                let r = &run.measured.recorder;
                assert_eq!(r.requests, 24, "{mode:?} expect={expect}");
                assert_eq!(
                    r.status_counts.get(&200),
                    Some(&24),
                    "{mode:?}: {:?}",
                    r.error_samples
                );
                assert_eq!(r.ok_totals(), (24, 24 * 150_000));
                let put = &r.per_op[&crate::stats::OpKind::Put];
                // The sink answers 100 Continue: no PUT sat out the wait.
                assert!(
                    put.ok_latency_us.max() < EXPECT_CONTINUE_WAIT.as_micros() as u64 / 2,
                    "{mode:?} expect={expect}: max {} us",
                    put.ok_latency_us.max()
                );
            }
        }
    });
}

#[test]
fn gets_prepare_then_read_and_duration_bounds_a_step() {
    runtime().block_on(async {
        let target = sink_target().await;
        let mut payloads = PayloadPool::default();
        let spec = step(WorkloadKind::Get, |p| {
            p.count = None;
            p.duration = Some(crate::units::HumanDuration(Duration::from_millis(300)));
            p.objects = Some(5);
        });
        let run = run_step(&target, &spec, &mut payloads, &Progress::disabled(), 2).await;
        let prepare = run.prepare.expect("a get step prepares");
        assert_eq!(prepare.recorder.ok_totals().0, 5);
        let r = &run.measured.recorder;
        assert!(r.requests > 0);
        assert_eq!(r.status_counts.get(&200), Some(&r.requests));
        let (ok, bytes) = r.ok_totals();
        assert_eq!(bytes, ok * SINK_OBJECT_BYTES as u64);
        assert!(run.measured.elapsed < Duration::from_secs(5));
        // Every GET has a first byte, no later than its last.
        let get = &r.per_op[&crate::stats::OpKind::Get];
        assert_eq!(get.ttfb_us.len(), get.ok);
        assert!(get.ttfb_us.max() <= get.ok_latency_us.max());
    });
}

#[test]
fn a_dead_endpoint_counts_connect_failures() {
    runtime().block_on(async {
        // Bind then drop: the port refuses connections.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let target = Arc::new(Target {
            endpoint: Endpoint::parse(&format!("http://{addr}")).unwrap(),
            credentials: Credentials {
                access_key: "AK".into(),
                secret_key: "SK".into(),
            },
            region: "us-east-1".into(),
            bucket: "bench".into(),
            buckets: vec!["bench".into()],
            server: None,
        });
        let spec = step(WorkloadKind::Put, |p| {
            p.count = Some(6);
            p.retries = Some(1);
        });
        let run = run_step(
            &target,
            &spec,
            &mut PayloadPool::default(),
            &Progress::disabled(),
            3,
        )
        .await;
        let r = &run.measured.recorder;
        assert_eq!(r.transport.connect, 12, "6 operations, each retried once");
        assert_eq!((r.requests, r.operations, r.retries), (12, 6, 6));
        assert!(r.status_counts.is_empty());
        assert!(!r.error_samples.is_empty());
    });
}

#[test]
fn a_mixed_step_runs_every_kind_of_its_mix() {
    runtime().block_on(async {
        let target = sink_target().await;
        let spec = step(WorkloadKind::Mixed, |p| {
            p.count = Some(400);
            p.size = Some(ByteSize(1000));
            p.concurrency = Some(super::spec::Concurrency::One(4));
        });
        let run = run_step(
            &target,
            &spec,
            &mut PayloadPool::default(),
            &Progress::disabled(),
            4,
        )
        .await;
        let prepare = run.prepare.expect("a mixed step prepares its objects");
        assert_eq!(prepare.recorder.ok_totals().0, spec.objects.unwrap());
        let r = &run.measured.recorder;
        assert_eq!((r.requests, r.operations), (400, 400));
        use crate::stats::OpKind;
        let ok = |op| r.per_op.get(&op).map_or(0, |s| s.ok);
        // 45/30/15/10 of 400, give or take; a GET, STAT or DELETE only
        // becomes a PUT when no object is free, which 16 keys for 4
        // workers with more PUTs than DELETEs do not run into.
        for (op, share) in [
            (OpKind::Get, 0.45),
            (OpKind::Stat, 0.30),
            (OpKind::Put, 0.15),
            (OpKind::Delete, 0.10),
        ] {
            let got = ok(op) as f64 / 400.0;
            assert!((got - share).abs() < 0.08, "{op:?}: {got}");
        }
        assert_eq!(r.per_op[&OpKind::Stat].ok_bytes, 0);
    });
}

#[test]
fn a_constant_rate_spaces_operations_and_times_them_from_their_slot() {
    runtime().block_on(async {
        let target = sink_target().await;
        let spec = step(WorkloadKind::Put, |p| {
            p.count = Some(20);
            p.size = Some(ByteSize(100));
            p.rate = Some(100.0);
            p.concurrency = Some(super::spec::Concurrency::One(4));
        });
        let run = run_step(
            &target,
            &spec,
            &mut PayloadPool::default(),
            &Progress::disabled(),
            5,
        )
        .await;
        let r = &run.measured.recorder;
        assert_eq!((r.requests, r.late.started), (20, 20));
        // 20 operations 10 ms apart: the last starts 190 ms in, not at once.
        assert!(
            run.measured.elapsed >= Duration::from_millis(190),
            "{:?}",
            run.measured.elapsed
        );
        // A sink keeps up with 100/s: hardly any start late.
        assert!(
            r.late.late <= 4,
            "{} late, p50 {} max {}",
            r.late.late,
            r.late.late_us.value_at_quantile(0.5),
            r.late.late_us.max()
        );
    });
}

#[test]
fn a_rate_too_high_for_the_workers_counts_late_starts() {
    runtime().block_on(async {
        // A server that answers after 50 ms: one worker can do 20/s.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if stream.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let target = Arc::new(Target {
            endpoint: Endpoint::parse(&format!("http://{addr}")).unwrap(),
            ..Arc::try_unwrap(sink_target().await).unwrap()
        });
        let spec = step(WorkloadKind::Delete, |p| {
            p.count = Some(10);
            p.rate = Some(100.0);
            p.prepare = Some(false);
            p.concurrency = Some(super::spec::Concurrency::One(1));
        });
        let run = run_step(
            &target,
            &spec,
            &mut PayloadPool::default(),
            &Progress::disabled(),
            6,
        )
        .await;
        let r = &run.measured.recorder;
        assert_eq!((r.ok_totals().0, r.late.started), (10, 10));
        // Every one after the first waits for the one before: the tenth
        // was due at 90 ms and starts near 450 ms.
        assert!(r.late.late >= 8, "{} late", r.late.late);
        assert!(r.late.late_us.max() >= 300_000, "{}", r.late.late_us.max());
        // Its latency counts from its slot, the wait included.
        let delete = &r.per_op[&crate::stats::OpKind::Delete];
        assert!(delete.ok_latency_us.max() >= 350_000);
    });
}
