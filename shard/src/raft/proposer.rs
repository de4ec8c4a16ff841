//! Groups a shard's concurrent proposals into shared raft entries.
//!
//! openraft 0.9 writes each client write to the log as its own synced
//! batch and waits for that sync before it takes the next, so a shard that
//! proposed one entry per request would commit at most one request per
//! fsync, however many clients wait. Here a command joins a queue instead;
//! up to [`PROPOSAL_ENTRIES_IN_FLIGHT_MAX`] entries are in openraft at
//! once, and each takes every command that queued while the earlier ones
//! were written (at most [`PROPOSAL_BATCH_COMMANDS_MAX`] commands and
//! [`PROPOSAL_BATCH_BYTES_MAX`] encoded bytes), as one `batch` op. A
//! command that finds nothing ahead of it goes at once, alone, as a plain
//! entry: an idle shard's latency is unchanged.
//!
//! Each entry is proposed by a task of its own, never by a request's
//! future, so a client that goes away cannot take the other commands of
//! its entry down with it; every command's outcome (or the entry's error)
//! reaches its waiter by a oneshot. `store_chunks` entries (inline mode)
//! carry chunk bytes and are already grouped by the shard; they go alone.
//!
//! The queue needs no bound of its own: a command joins it from a request
//! that holds a connection slot and its admission units (or from a
//! background task that proposes one at a time), and leaves it within one
//! entry's commit. A request that goes away leaves its command queued, as
//! it would be inside openraft had it been sent: it is proposed all the
//! same, and its answer dropped.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use futures::channel::oneshot;
use openraft::error::Fatal;
use openraft::Raft;
use prost::Message;
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{MetaBatch, MetaCommand};

use super::types::{ApplyOutcome, RaftCommand, TypeConfig};
use super::{write_error, RaftError};
use crate::limits::{
    PROPOSAL_BATCH_BYTES_MAX, PROPOSAL_BATCH_COMMANDS_MAX, PROPOSAL_ENTRIES_IN_FLIGHT_MAX,
};

/// A command's outcome and the index of the entry that carried it.
pub type Proposed = Result<(ApplyOutcome, u64), RaftError>;

/// One command waiting for an entry.
struct Queued {
    command: MetaCommand,
    encoded_bytes: usize,
    answer: oneshot::Sender<Proposed>,
}

/// Counters of what the proposer sent, for the metrics endpoint.
#[derive(Debug, Default)]
pub struct ProposerStats {
    entries: Cell<u64>,
    commands: Cell<u64>,
}

impl ProposerStats {
    /// Entries proposed (plain and grouped).
    pub fn entries(&self) -> u64 {
        self.entries.get()
    }

    /// Commands those entries carried.
    pub fn commands(&self) -> u64 {
        self.commands.get()
    }
}

/// The queue of one shard's group; see the module docs.
pub(super) struct Proposer {
    raft: Raft<TypeConfig>,
    queue: RefCell<VecDeque<Queued>>,
    entries_in_flight: Cell<usize>,
    commands_in_flight: Cell<usize>,
    stats: Rc<ProposerStats>,
}

impl Proposer {
    pub(super) fn new(raft: Raft<TypeConfig>, stats: Rc<ProposerStats>) -> Rc<Proposer> {
        Rc::new(Proposer {
            raft,
            queue: RefCell::new(VecDeque::new()),
            entries_in_flight: Cell::new(0),
            commands_in_flight: Cell::new(0),
            stats,
        })
    }

    /// Commits `command` in the next entry with room and returns its
    /// outcome and that entry's index.
    pub(super) async fn propose(self: &Rc<Self>, command: MetaCommand) -> Proposed {
        let (answer, answered) = oneshot::channel();
        let encoded_bytes = command.encoded_len();
        self.queue.borrow_mut().push_back(Queued {
            command,
            encoded_bytes,
            answer,
        });
        self.start_entries();
        answered
            .await
            // The task proposing it was dropped: the executor is stopping.
            .unwrap_or_else(|_| Err(Fatal::Stopped.into()))
    }

    /// Commands queued or in an entry that is not answered yet.
    pub(super) fn pending(&self) -> usize {
        self.queue.borrow().len() + self.commands_in_flight.get()
    }

    /// Starts an entry for the front of the queue while there is room.
    fn start_entries(self: &Rc<Self>) {
        while self.entries_in_flight.get() < PROPOSAL_ENTRIES_IN_FLIGHT_MAX {
            let batch = self.take_batch();
            if batch.is_empty() {
                return;
            }
            self.entries_in_flight.set(self.entries_in_flight.get() + 1);
            self.commands_in_flight
                .set(self.commands_in_flight.get() + batch.len());
            let proposer = Rc::clone(self);
            glommio::spawn_local(async move { proposer.propose_entry(batch).await }).detach();
        }
    }

    /// The commands of the next entry, from the front of the queue.
    fn take_batch(&self) -> Vec<Queued> {
        let mut queue = self.queue.borrow_mut();
        let mut batch: Vec<Queued> = Vec::new();
        let mut bytes = 0;
        while let Some(next) = queue.front() {
            let alone = goes_alone(&next.command);
            let full = batch.len() >= PROPOSAL_BATCH_COMMANDS_MAX
                || bytes + next.encoded_bytes > PROPOSAL_BATCH_BYTES_MAX;
            if !batch.is_empty() && (alone || full) {
                break;
            }
            bytes += next.encoded_bytes;
            batch.push(queue.pop_front().expect("the front was just seen"));
            if alone {
                break;
            }
        }
        batch
    }

    /// Proposes one entry holding `batch` and answers each of its commands.
    async fn propose_entry(self: Rc<Self>, batch: Vec<Queued>) {
        let count = batch.len();
        let (commands, answers): (Vec<MetaCommand>, Vec<_>) =
            batch.into_iter().map(|q| (q.command, q.answer)).unzip();
        let entry = match <[MetaCommand; 1]>::try_from(commands) {
            Ok([single]) => single,
            Err(commands) => MetaCommand {
                op: Some(Op::Batch(MetaBatch { commands })),
                proposed_unix_ms: crate::clock::unix_ms_now(),
            },
        };
        let written = self
            .raft
            .client_write(RaftCommand::encode(&entry))
            .await
            .map_err(write_error);
        self.entries_in_flight.set(self.entries_in_flight.get() - 1);
        self.commands_in_flight
            .set(self.commands_in_flight.get() - count);
        self.stats.entries.set(self.stats.entries.get() + 1);
        self.stats
            .commands
            .set(self.stats.commands.get() + count as u64);
        match written {
            Ok(response) => {
                let index = response.log_id.index;
                assert_eq!(
                    response.data.len(),
                    count,
                    "one outcome per command of entry {index}"
                );
                for (answer, outcome) in answers.into_iter().zip(response.data) {
                    // A waiter that went away needs no answer.
                    let _ = answer.send(Ok((outcome, index)));
                }
            }
            Err(e) => {
                for answer in answers {
                    let _ = answer.send(Err(e.for_each_command()));
                }
            }
        }
        self.start_entries();
    }
}

/// Inline chunks are grouped by the shard already (up to three chunks, a
/// few MiB): they get an entry of their own.
fn goes_alone(command: &MetaCommand) -> bool {
    matches!(command.op, Some(Op::StoreChunks(_)))
}
