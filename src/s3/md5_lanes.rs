//! One MD5 engine per core that lets concurrent uploads share SIMD lanes.
//!
//! The S3 ETag is the MD5 of the body, and one MD5 stream cannot go faster
//! than one 64-byte block after another (about 0.6 GB/s on this class of
//! CPU: the most expensive step of a PUT). Independent streams can, though,
//! run side by side in SIMD lanes (8 with AVX2, 16 with AVX-512, several
//! GB/s in all). So each upload hands its sealed 1 MiB chunks, with its MD5
//! state, to this core's [`Md5Lanes`]; the engine hashes every chunk that is
//! waiting in one `update_many` call and hands state and buffer back.
//!
//! Gathering policy: a submitted chunk waits while its upload keeps
//! reading. A batch runs when every upload active on this core (one that
//! has submitted a chunk and not yet ended) has a chunk waiting (or
//! [`LANES_MAX`] are waiting), or as soon as any upload insists
//! on its answer (it ran too far ahead, or its body ended) — whichever
//! comes first. So a lone upload never waits for company that is not
//! coming, and busy uploads fill the lanes without a timer. Runs on the
//! ingress core only; nothing here is shared between cores.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use futures::channel::oneshot;
use md5_many::{Md5Many, Md5State};
use shoal_shard::chunk::ChunkBuf;

use crate::metrics::CoreMetrics;

/// Most chunks hashed in one batch: the widest SIMD kernel's lane count
/// (AVX-512).
pub const LANES_MAX: usize = 16;

/// The narrower full-width kernel (AVX2). Measured on this class of CPU
/// with 1 MiB inputs: 1 stream 0.6 GB/s, 2 lanes 0.8, 4 lanes 1.2, 8 lanes
/// 5.0, 16 lanes 7.5 (all lanes together).
const LANES_NARROW: usize = 8;

struct Job {
    state: Md5State,
    buf: ChunkBuf,
    done: oneshot::Sender<(Md5State, ChunkBuf)>,
}

pub struct Md5Lanes {
    engine: Md5Many,
    pending: RefCell<Vec<Job>>,
    active_uploads: Cell<usize>,
    metrics: Arc<CoreMetrics>,
}

/// Counts an upload as active on this core for as long as it lives.
pub struct ActiveUpload {
    lanes: Rc<Md5Lanes>,
}

impl Drop for ActiveUpload {
    fn drop(&mut self) {
        let active = &self.lanes.active_uploads;
        active.set(active.get() - 1);
        // One fewer upload to wait for: the waiting ones may now be all.
        if self.lanes.batch_is_full() {
            self.lanes.flush();
        }
    }
}

impl Md5Lanes {
    pub fn new(metrics: Arc<CoreMetrics>) -> Rc<Self> {
        Rc::new(Md5Lanes {
            engine: Md5Many::new(),
            pending: RefCell::new(Vec::with_capacity(LANES_MAX)),
            active_uploads: Cell::new(0),
            metrics,
        })
    }

    /// Registers an upload whose chunks may join batches.
    pub fn register(self: &Rc<Self>) -> ActiveUpload {
        self.active_uploads.set(self.active_uploads.get() + 1);
        ActiveUpload {
            lanes: Rc::clone(self),
        }
    }

    /// Queues `buf`'s payload to be appended to the MD5 stream `state`;
    /// the answer carries both back once a batch has run. The caller need
    /// not wait right away: an upload keeps reading its next chunk while
    /// this one waits for company.
    pub fn submit(self: &Rc<Self>, state: Md5State, buf: ChunkBuf) -> Md5Answer {
        let (done, answer) = oneshot::channel();
        self.pending.borrow_mut().push(Job { state, buf, done });
        if self.batch_is_full() {
            self.flush();
        }
        Md5Answer {
            answer,
            ready: None,
            lanes: Rc::clone(self),
        }
    }

    fn batch_is_full(&self) -> bool {
        let waiting = self.pending.borrow().len();
        waiting > 0 && waiting >= self.active_uploads.get().clamp(1, LANES_MAX)
    }

    fn flush(&self) {
        let mut jobs = std::mem::take(&mut *self.pending.borrow_mut());
        if jobs.is_empty() {
            return;
        }
        self.metrics.record_md5_batch(jobs.len());
        while !jobs.is_empty() {
            let group: Vec<Job> = jobs.drain(..jobs.len().min(LANES_MAX)).collect();
            let mut states: Vec<Md5State> = group.iter().map(|job| job.state).collect();
            if group.len() == 1 {
                states[0].update(group[0].buf.payload());
            } else {
                let mut inputs: Vec<&[u8]> = group.iter().map(|job| job.buf.payload()).collect();
                // The engine's full-width kernels beat its narrow ones even
                // with idle lanes, so fill the batch up to a full kernel
                // width with scratch copies of the first chunk.
                let width = if inputs.len() <= LANES_NARROW {
                    LANES_NARROW
                } else {
                    LANES_MAX
                };
                let mut scratch = states.clone();
                scratch.resize(width, Md5State::new());
                inputs.resize(width, inputs[0]);
                self.engine.update_many(&mut scratch, &inputs);
                let real = states.len();
                states.copy_from_slice(&scratch[..real]);
            }
            for (job, state) in group.into_iter().zip(states) {
                // A dropped receiver means the upload was abandoned.
                let _ = job.done.send((state, job.buf));
            }
        }
    }
}

/// A queued MD5 job's result: the advanced state and the chunk buffer.
pub struct Md5Answer {
    answer: oneshot::Receiver<(Md5State, ChunkBuf)>,
    ready: Option<(Md5State, ChunkBuf)>,
    lanes: Rc<Md5Lanes>,
}

impl Md5Answer {
    /// Whether a batch has hashed this job already.
    pub fn is_ready(&mut self) -> bool {
        if self.ready.is_none() {
            if let Ok(Some(done)) = self.answer.try_recv() {
                self.ready = Some(done);
            }
        }
        self.ready.is_some()
    }

    /// The result, running the waiting batch now if it has not run yet.
    pub fn take(mut self) -> (Md5State, ChunkBuf) {
        if !self.is_ready() {
            self.lanes.flush();
        }
        match self
            .ready
            .take()
            .or_else(|| self.answer.try_recv().ok().flatten())
        {
            Some(done) => done,
            None => unreachable!("a flush answers every waiting job, this one included"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(1 << 20)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap();
    }

    fn chunk(fill: u8, len: usize) -> ChunkBuf {
        let mut buf = ChunkBuf::new();
        buf.fill_from(&vec![fill; len]);
        buf
    }

    #[test]
    fn batched_streams_match_single_stream_md5() {
        run(|| async {
            let metrics = Arc::new(CoreMetrics::default());
            let lanes = Md5Lanes::new(Arc::clone(&metrics));
            let uploads: Vec<_> = (0..5).map(|_| lanes.register()).collect();
            let mut states = vec![Md5State::new(); 5];
            let mut expected: Vec<Vec<u8>> = vec![Vec::new(); 5];
            for round in 0..3u8 {
                let mut answers = Vec::new();
                for (i, state) in states.iter().enumerate() {
                    let len = 1000 * (i + 1) + usize::from(round) * 77;
                    expected[i].extend(std::iter::repeat_n(round + i as u8, len));
                    answers.push(lanes.submit(*state, chunk(round + i as u8, len)));
                }
                for (i, answer) in answers.into_iter().enumerate() {
                    states[i] = answer.take().0;
                }
            }
            for (state, body) in states.iter().zip(&expected) {
                assert_eq!(state.finalize(), md5_many::md5(body));
            }
            let (batches, chunks) = metrics.md5_batches();
            assert_eq!(chunks, 15);
            // Five active uploads each waiting: every round is one batch.
            assert_eq!(batches, 3);
            drop(uploads);
        });
    }

    #[test]
    fn a_lone_upload_is_not_kept_waiting_for_company() {
        run(|| async {
            let lanes = Md5Lanes::new(Arc::new(CoreMetrics::default()));
            let _first = lanes.register();
            let _idle = lanes.register(); // registered but never sends
            let (state, buf) = lanes.submit(Md5State::new(), chunk(1, 10)).take();
            assert_eq!(buf.len(), 10);
            assert_eq!(state.finalize(), md5_many::md5(&[1u8; 10]));
        });
    }
}
