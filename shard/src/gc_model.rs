//! A seeded, deterministic model of chunk garbage collection, with no
//! I/O: a group of three members (member 0 leads) goes through thousands
//! of random events (uploads that store new or already present chunks,
//! copies, overwrites, deletes, multipart parts, completes and aborts,
//! collects, sweeps, reclaims, catch-up, outages, crashes, clock jumps)
//! and makes the production decisions over in-memory tables:
//!
//! - counts and collects: `raft::refs::{settle, collect}` (a [`CountTable`]);
//! - pins and claims: [`Pins`];
//! - when the sweeper forgets: [`SweepCandidates`], then [`may_forget`];
//! - whether a commit may refer to a chunk: [`may_refer`].
//!
//! The glue is the shard's (`shard/write.rs`, `shard/space.rs`): an upload
//! claims, appends and indexes each chunk and pushes it to the members
//! that are up; its commit pins every chunk it names, checks each, and
//! proposes; the reclaimer drops records the index no longer points at. A
//! crash loses pins, sweeper memory and uploads in flight, never the
//! stores. One property of the real system is an assumption here: an
//! entry applies on the leader within the grace period of its proposal or
//! of the leader's restart (proposals have deadlines far below it).
//!
//! After every event: no ref the leader has applied names a chunk it does
//! not hold (its index points at a record of that chunk); on every member
//! each index entry points at a record of its chunk, and the counts equal
//! a recount of the refs. At the end, with every member back: every
//! unreferenced chunk was collected, forgotten and its records reclaimed
//! on every member, and every member holds every referenced chunk.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_proto::meta::{BlobLocation, ChunkRef, ChunkRefCount, CollectChunk};

use crate::chunk_hash::ChunkHash;
use crate::meta::{may_forget, may_refer, MetaError};
use crate::pins::{PinGuard, Pins};
use crate::raft::refs::{self, CountTable, EntryStamp, RefDeltas};
use crate::sweep::SweepCandidates;

const MEMBERS: usize = 3;
const LEADER: usize = 0;
const GRACE_MS: u64 = 1_000;
const GRACE: Duration = Duration::from_millis(GRACE_MS);
/// Few distinct chunks, so uploads keep storing bytes that are present.
const CHUNK_POOL: u8 = 24;
const KEYS: u8 = 10;
const UPLOAD_IDS: u8 = 3;
const COLLECT_BATCH: usize = 8;

#[derive(Clone, Debug)]
enum Op {
    Put {
        key: u8,
        chunks: Vec<ChunkHash>,
    },
    Delete {
        key: u8,
    },
    Part {
        upload: u8,
        number: u8,
        chunks: Vec<ChunkHash>,
    },
    Complete {
        upload: u8,
        key: u8,
    },
    Abort {
        upload: u8,
    },
    Collect(Vec<CollectChunk>),
}

struct Entry {
    op: Op,
    /// The leader's stamp.
    unix_ms: u64,
}

/// What a member keeps across crashes: its applied state (counts, zero
/// list, manifests, parts), its blob index and collected marks, its log.
#[derive(Default)]
struct Store {
    counts: BTreeMap<ChunkHash, ChunkRefCount>,
    zero: BTreeMap<(u64, ChunkHash), u64>,
    collected: BTreeSet<ChunkHash>,
    index: BTreeMap<ChunkHash, BlobLocation>,
    /// The blob log: record offset → the chunk whose bytes it holds.
    records: BTreeMap<u64, ChunkHash>,
    next_offset: u64,
    objects: BTreeMap<u8, Vec<ChunkHash>>,
    parts: BTreeMap<(u8, u8), Vec<ChunkHash>>,
    applied: usize,
    /// A chunk collected before its grace had passed (a bug).
    early_collect: Option<ChunkHash>,
}

impl CountTable for Store {
    fn count(&self, hash: &ChunkHash) -> Result<Option<ChunkRefCount>, MetaError> {
        Ok(self.counts.get(hash).copied())
    }
    fn set_count(&mut self, hash: &ChunkHash, count: ChunkRefCount) {
        self.counts.insert(*hash, count);
    }
    fn drop_count(&mut self, hash: &ChunkHash) {
        self.counts.remove(hash);
    }
    fn list_zero(&mut self, hash: &ChunkHash, unix_ms: u64, index: u64) {
        self.zero.insert((unix_ms, *hash), index);
    }
    fn unlist_zero(&mut self, hash: &ChunkHash, unix_ms: u64) {
        self.zero.remove(&(unix_ms, *hash));
    }
    fn mark_collected(&mut self, hash: &ChunkHash) -> Result<(), MetaError> {
        if self.index.contains_key(hash) {
            self.collected.insert(*hash);
        }
        Ok(())
    }
}

fn chunk_refs(chunks: &[ChunkHash]) -> Vec<ChunkRef> {
    chunks
        .iter()
        .map(|h| ChunkRef {
            sha256: h.to_vec(),
            size_bytes: 1,
            source_node: 1,
            iv: Vec::new(),
        })
        .collect()
}

impl Store {
    /// Appends a record of `hash` and indexes it.
    fn append(&mut self, hash: ChunkHash) {
        let offset = self.next_offset;
        self.next_offset += 1;
        self.records.insert(offset, hash);
        let at = BlobLocation {
            segment: 1,
            offset_bytes: offset,
            size_bytes: 1,
        };
        self.index.insert(hash, at);
    }

    fn holds(&self, hash: &ChunkHash) -> bool {
        self.index
            .get(hash)
            .is_some_and(|at| self.records.get(&at.offset_bytes) == Some(hash))
    }

    /// Applies entry `index` (1-based) as `raft::apply` does.
    fn apply(&mut self, index: u64, entry: &Entry) {
        let mut deltas = RefDeltas::default();
        match &entry.op {
            Op::Put { key, chunks } => {
                if let Some(old) = self.objects.insert(*key, chunks.clone()) {
                    deltas.remove(&chunk_refs(&old));
                }
                deltas.add(&chunk_refs(chunks));
            }
            Op::Delete { key } => {
                if let Some(old) = self.objects.remove(key) {
                    deltas.remove(&chunk_refs(&old));
                }
            }
            Op::Part {
                upload,
                number,
                chunks,
            } => {
                if let Some(old) = self.parts.insert((*upload, *number), chunks.clone()) {
                    deltas.remove(&chunk_refs(&old));
                }
                deltas.add(&chunk_refs(chunks));
            }
            Op::Complete { upload, key } => {
                let parts = self.take_parts(*upload);
                if !parts.is_empty() {
                    let chunks: Vec<ChunkHash> = parts.concat();
                    for part in &parts {
                        deltas.remove(&chunk_refs(part));
                    }
                    deltas.add(&chunk_refs(&chunks));
                    if let Some(old) = self.objects.insert(*key, chunks) {
                        deltas.remove(&chunk_refs(&old));
                    }
                }
            }
            Op::Abort { upload } => {
                for part in self.take_parts(*upload) {
                    deltas.remove(&chunk_refs(&part));
                }
            }
            Op::Collect(chunks) => {
                let before = self.counts.clone();
                for hash in refs::collect(self, chunks).expect("in memory") {
                    // Its grace passed since it last dropped to zero.
                    let zero_ms = before[&hash].zero_unix_ms;
                    if zero_ms + GRACE_MS > entry.unix_ms {
                        self.early_collect = Some(hash);
                    }
                }
            }
        }
        let at = EntryStamp {
            index,
            unix_ms: entry.unix_ms,
        };
        refs::settle(self, deltas, at).expect("in memory");
    }

    fn take_parts(&mut self, upload: u8) -> Vec<Vec<ChunkHash>> {
        let numbers: Vec<(u8, u8)> = self
            .parts
            .range((upload, 0)..=(upload, u8::MAX))
            .map(|(k, _)| *k)
            .collect();
        numbers
            .iter()
            .filter_map(|k| self.parts.remove(k))
            .collect()
    }

    /// How many applied refs name each chunk.
    fn recount(&self) -> BTreeMap<ChunkHash, u64> {
        let mut counts = BTreeMap::new();
        for chunks in self.objects.values().chain(self.parts.values()) {
            for hash in chunks {
                *counts.entry(*hash).or_default() += 1;
            }
        }
        counts
    }

    /// The zero list's chunks at zero since `before_ms` or earlier, as
    /// `refs::zero_before` reads them.
    fn zero_before(&self, before_ms: u64, max: usize) -> Vec<CollectChunk> {
        self.zero
            .iter()
            .take_while(|((unix_ms, _), _)| *unix_ms <= before_ms)
            .take(max)
            .map(|((_, hash), index)| CollectChunk {
                sha256: hash.to_vec(),
                zero_index: *index,
            })
            .collect()
    }

    /// The invariants every member keeps at every step.
    fn check(&self, member: usize) -> Result<(), String> {
        if let Some(hash) = self.early_collect {
            return Err(format!("member {member} collected {hash} within its grace"));
        }
        for (hash, at) in &self.index {
            if self.records.get(&at.offset_bytes) != Some(hash) {
                return Err(format!(
                    "member {member}: {hash} is indexed at a released record"
                ));
            }
        }
        let recount = self.recount();
        for (hash, count) in &self.counts {
            let refs = recount.get(hash).copied().unwrap_or(0);
            if count.count != refs {
                return Err(format!(
                    "member {member}: {hash} counted {} but named {refs} times",
                    count.count
                ));
            }
            let listed = self.zero.get(&(count.zero_unix_ms, *hash));
            if (refs == 0) != (listed == Some(&count.zero_index)) {
                return Err(format!(
                    "member {member}: {hash} at {refs} refs, zero list says {listed:?}"
                ));
            }
        }
        match recount.keys().find(|h| !self.counts.contains_key(*h)) {
            Some(hash) => Err(format!("member {member}: {hash} is named but not counted")),
            None => Ok(()),
        }
    }
}

/// What a member loses in a crash.
struct Member {
    store: Store,
    pins: Rc<Pins>,
    sweep: SweepCandidates,
    up: bool,
    /// When it last restarted (the leader applies its log within the grace
    /// after that).
    restarted_ms: u64,
}

impl Member {
    fn new() -> Member {
        Member {
            store: Store::default(),
            pins: Rc::new(Pins::default()),
            sweep: SweepCandidates::default(),
            up: true,
            restarted_ms: 0,
        }
    }
}

/// An upload the leader is taking: its chunks, how many are stored.
struct Upload {
    target: Target,
    chunks: Vec<ChunkHash>,
    stored: usize,
    /// When its first chunk was stored.
    first_stored_ms: Option<u64>,
}

#[derive(Clone, Copy)]
enum Target {
    Object(u8),
    Part(u8, u8),
}

/// The kinds of event, each drawn with a weight the seed picks (swarm
/// testing: one seed crashes a lot, another almost never sweeps, which
/// reaches interleavings a single fixed mix makes rare).
#[derive(Clone, Copy, Debug)]
enum Event {
    StartUpload,
    StoreChunk,
    Commit,
    Copy,
    DeleteCompleteOrAbort,
    Collect,
    Apply,
    Sweep,
    Reclaim,
    CatchUp,
    Outage,
    Crash,
    TimePasses,
}

impl Event {
    const ALL: [Event; 13] = [
        Event::StartUpload,
        Event::StoreChunk,
        Event::Commit,
        Event::Copy,
        Event::DeleteCompleteOrAbort,
        Event::Collect,
        Event::Apply,
        Event::Sweep,
        Event::Reclaim,
        Event::CatchUp,
        Event::Outage,
        Event::Crash,
        Event::TimePasses,
    ];

    fn name(self) -> &'static str {
        match self {
            Event::StartUpload => "start an upload",
            Event::StoreChunk => "store a chunk",
            Event::Commit => "commit an upload",
            Event::Copy => "copy",
            Event::DeleteCompleteOrAbort => "delete, complete or abort",
            Event::Collect => "collect",
            Event::Apply => "apply",
            Event::Sweep => "sweep",
            Event::Reclaim => "reclaim",
            Event::CatchUp => "catch up",
            Event::Outage => "a follower goes down or comes back",
            Event::Crash => "crash",
            Event::TimePasses => "time passes",
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    committed: u64,
    refused: u64,
    collected_entries: u64,
    forgotten: u64,
    crashes: u64,
}

struct Model {
    rng: StdRng,
    base: Instant,
    now_ms: u64,
    log: Vec<Entry>,
    members: Vec<Member>,
    uploads: Vec<Upload>,
    /// This seed's weight for each of [`Event::ALL`].
    weights: [u32; 13],
    /// An upload that committed within the grace was refused (a bug:
    /// its claims should have kept its chunks).
    refused_prompt_upload: bool,
    /// This seed's share of proposals whose outcome the proposer does not
    /// learn (its pins linger; the entry applies later).
    unknown_outcomes: f64,
    tally: Tally,
}

/// A pin or claim never waits here: forgetting is done within one event.
fn at_once<T>(future: impl std::future::Future<Output = T>) -> T {
    future
        .now_or_never()
        .expect("no chunk is being forgotten between events")
}

impl Model {
    fn new(seed: u64) -> Model {
        let mut rng = StdRng::seed_from_u64(seed);
        let weights = std::array::from_fn(|_| rng.gen_range(1..=12));
        let unknown_outcomes = rng.gen_range(0.0..0.6);
        Model {
            rng,
            weights,
            refused_prompt_upload: false,
            unknown_outcomes,
            base: Instant::now(),
            now_ms: 0,
            log: Vec::new(),
            members: (0..MEMBERS).map(|_| Member::new()).collect(),
            uploads: Vec::new(),
            tally: Tally::default(),
        }
    }

    fn now(&self) -> Instant {
        self.base + Duration::from_millis(self.now_ms)
    }

    fn random_chunks(&mut self) -> Vec<ChunkHash> {
        let n = self.rng.gen_range(1..=3);
        (0..n)
            .map(|_| ChunkHash::from([self.rng.gen_range(0..CHUNK_POOL); 32]))
            .collect()
    }

    /// Stores the next chunk of an upload: claimed and appended on the
    /// leader, pushed to the followers that are up (each claims on
    /// accept; a push may also fail).
    fn store_next(&mut self, i: usize) {
        let hash = self.uploads[i].chunks[self.uploads[i].stored];
        let until = self.now() + GRACE;
        for m in 0..MEMBERS {
            let pushed = m == LEADER || self.rng.gen_bool(0.85);
            let member = &mut self.members[m];
            if member.up && pushed {
                at_once(member.pins.claim(hash, until));
                member.store.append(hash);
            }
        }
        self.uploads[i].stored += 1;
        self.uploads[i].first_stored_ms.get_or_insert(self.now_ms);
    }

    /// Commits `op` naming `chunks` as `Shard::commit_with_chunks` does:
    /// pins, checks, proposes; applied now, or (outcome unknown) later with
    /// the pins lingering. Returns whether it was proposed.
    fn commit(&mut self, op: Op, chunks: &[ChunkHash], claimed: bool) -> bool {
        let leader = &self.members[LEADER];
        let pins: Vec<PinGuard> = chunks
            .iter()
            .map(|h| at_once(leader.pins.pin(*h)))
            .collect();
        let refusable = chunks.iter().any(|h| {
            let count = leader.store.counts.get(h);
            !may_refer(leader.store.index.contains_key(h), count)
        });
        if refusable {
            self.tally.refused += 1;
            return false;
        }
        self.propose(op);
        self.tally.committed += 1;
        if !self.rng.gen_bool(self.unknown_outcomes) {
            self.apply(LEADER, self.log.len());
            drop(pins);
            if claimed {
                self.members[LEADER]
                    .pins
                    .release_claims(chunks.iter().copied());
            }
        } else {
            let until = self.now() + GRACE;
            for pin in pins {
                pin.linger(until);
            }
        }
        true
    }

    fn propose(&mut self, op: Op) {
        let unix_ms = self.now_ms;
        self.log.push(Entry { op, unix_ms });
    }

    /// Applies member `m`'s log up to entry `through` (a count).
    fn apply(&mut self, m: usize, through: usize) {
        let store = &mut self.members[m].store;
        while store.applied < through.min(self.log.len()) {
            let index = store.applied;
            store.apply(index as u64 + 1, &self.log[index]);
            store.applied += 1;
        }
    }

    /// One pass of member `m`'s sweeper, as `Shard::sweep` makes it.
    fn sweep(&mut self, m: usize) {
        let now = self.now();
        let member = &mut self.members[m];
        let store = &mut member.store;
        member.sweep.begin_pass(now);
        let unreferenced: Vec<(ChunkHash, BlobLocation)> = store
            .index
            .iter()
            .filter(|(h, _)| !store.counts.contains_key(*h))
            .map(|(h, at)| (*h, *at))
            .collect();
        for (hash, at) in unreferenced {
            let collected = store.collected.contains(&hash);
            if !member.sweep.due(hash, at, collected, now, GRACE) {
                continue;
            }
            let Some(_forgetting) = member.pins.begin_forget(hash, now) else {
                continue;
            };
            let counted = store.counts.contains_key(&hash);
            if may_forget(store.index.get(&hash), &at, counted) {
                store.index.remove(&hash);
                store.collected.remove(&hash);
                self.tally.forgotten += 1;
            }
            member.sweep.settled(&hash);
        }
        member.sweep.end_pass();
    }

    /// The reclaimer: a record is live while the index points at it.
    fn reclaim(&mut self, m: usize) {
        let store = &mut self.members[m].store;
        let live: BTreeSet<u64> = store.index.values().map(|at| at.offset_bytes).collect();
        store.records.retain(|offset, _| live.contains(offset));
    }

    /// Catch-up on a follower: fetches from the leader each chunk its
    /// applied refs name that it lacks (counted, so not collected), and
    /// stores it as a push would.
    fn catch_up(&mut self, m: usize) {
        let until = self.now() + GRACE;
        let missing: Vec<ChunkHash> = {
            let store = &self.members[m].store;
            store
                .recount()
                .into_keys()
                .filter(|h| !store.holds(h))
                .collect()
        };
        for hash in missing {
            if self.members[LEADER].store.holds(&hash) {
                let member = &mut self.members[m];
                at_once(member.pins.claim(hash, until));
                member.store.append(hash);
            }
        }
    }

    fn crash(&mut self, m: usize) {
        let member = &mut self.members[m];
        member.pins = Rc::new(Pins::default());
        member.sweep = SweepCandidates::default();
        member.restarted_ms = self.now_ms;
        if m == LEADER {
            self.uploads.clear();
        }
        self.tally.crashes += 1;
    }

    /// Moves the clock on by `ms`, applying on the leader first every
    /// entry that would otherwise stay unapplied past its grace (the
    /// model's one assumption; see the module docs).
    fn advance(&mut self, ms: u64) {
        let target = self.now_ms + ms;
        let restarted = self.members[LEADER].restarted_ms;
        let due = self
            .log
            .iter()
            .rposition(|e| e.unix_ms.max(restarted) + GRACE_MS <= target);
        if let Some(last) = due {
            self.apply(LEADER, last + 1);
        }
        self.now_ms = target;
    }

    fn collect(&mut self) {
        let Some(before) = self.now_ms.checked_sub(GRACE_MS) else {
            return;
        };
        let due = self.members[LEADER]
            .store
            .zero_before(before, COLLECT_BATCH);
        if !due.is_empty() {
            self.propose(Op::Collect(due));
            self.tally.collected_entries += 1;
        }
    }

    /// The invariants of every step.
    fn check(&self) -> Result<(), String> {
        if self.refused_prompt_upload {
            return Err("an upload that committed within its grace was refused".into());
        }
        let leader = &self.members[LEADER].store;
        for hash in leader.recount().keys() {
            if !leader.holds(hash) {
                return Err(format!(
                    "the leader committed a ref to {hash}, which it no longer holds"
                ));
            }
        }
        for (m, member) in self.members.iter().enumerate() {
            member.store.check(m)?;
        }
        Ok(())
    }
}

impl Model {
    /// One random event, drawn with this seed's weights; returns its name
    /// for failure messages.
    fn step(&mut self) -> &'static str {
        let total: u32 = self.weights.iter().sum();
        let mut roll = self.rng.gen_range(0..total);
        let event = Event::ALL
            .iter()
            .zip(self.weights)
            .find(|(_, weight)| {
                let hit = roll < *weight;
                roll = roll.saturating_sub(*weight);
                hit
            })
            .map_or(Event::TimePasses, |(event, _)| *event);
        self.run_event(event);
        event.name()
    }

    fn run_event(&mut self, event: Event) {
        let member = self.rng.gen_range(0..MEMBERS);
        let follower = self.rng.gen_range(1..MEMBERS);
        match event {
            Event::StartUpload => self.start_upload(),
            Event::StoreChunk => {
                let open: Vec<usize> = (0..self.uploads.len())
                    .filter(|&i| self.uploads[i].stored < self.uploads[i].chunks.len())
                    .collect();
                if !open.is_empty() {
                    let i = open[self.rng.gen_range(0..open.len())];
                    self.store_next(i);
                }
            }
            Event::Commit => self.commit_upload(),
            Event::Copy => self.copy(),
            Event::DeleteCompleteOrAbort => self.delete_complete_or_abort(),
            Event::Collect => self.collect(),
            Event::Apply if self.members[member].up => {
                let through = self.members[member].store.applied + self.rng.gen_range(1..=6);
                self.apply(member, through);
            }
            Event::Sweep if self.members[member].up => self.sweep(member),
            Event::Reclaim if self.members[member].up => self.reclaim(member),
            Event::CatchUp if self.members[follower].up => self.catch_up(follower),
            Event::Outage => self.members[follower].up = !self.members[follower].up,
            Event::Crash => self.crash(member),
            Event::TimePasses => {
                let ms = match self.rng.gen_bool(0.1) {
                    true => GRACE_MS * 2,
                    false => self.rng.gen_range(1..GRACE_MS / 3),
                };
                self.advance(ms);
            }
            Event::Apply | Event::Sweep | Event::Reclaim | Event::CatchUp => {} // member down
        }
    }

    fn start_upload(&mut self) {
        let chunks = self.random_chunks();
        let target = match self.rng.gen_bool(0.25) {
            true => Target::Part(self.rng.gen_range(0..UPLOAD_IDS), self.rng.gen_range(1..=3)),
            false => Target::Object(self.rng.gen_range(0..KEYS)),
        };
        self.uploads.push(Upload {
            target,
            chunks,
            stored: 0,
            first_stored_ms: None,
        });
    }

    fn commit_upload(&mut self) {
        let Some(i) = self.uploads.iter().position(|u| u.stored == u.chunks.len()) else {
            return;
        };
        let upload = self.uploads.swap_remove(i);
        let chunks = upload.chunks.clone();
        let prompt = upload
            .first_stored_ms
            .is_some_and(|ms| self.now_ms < ms + GRACE_MS);
        let op = match upload.target {
            Target::Object(key) => Op::Put {
                key,
                chunks: upload.chunks,
            },
            Target::Part(upload_id, number) => Op::Part {
                upload: upload_id,
                number,
                chunks: upload.chunks,
            },
        };
        if !self.commit(op, &chunks, true) && prompt {
            // Its claims still hold everything it stored.
            self.refused_prompt_upload = true;
        }
    }

    /// A copy: a new manifest naming the chunks of an object the leader
    /// has applied (no bytes stored).
    fn copy(&mut self) {
        let objects = &self.members[LEADER].store.objects;
        if objects.is_empty() {
            return;
        }
        let source = self.rng.gen_range(0..objects.len());
        let chunks = objects.values().nth(source).expect("in range").clone();
        let key = self.rng.gen_range(0..KEYS);
        let op = Op::Put {
            key,
            chunks: chunks.clone(),
        };
        self.commit(op, &chunks, false);
    }

    fn delete_complete_or_abort(&mut self) {
        let op = match self.rng.gen_range(0..9) {
            0..=5 => Op::Delete {
                key: self.rng.gen_range(0..KEYS),
            },
            6..=7 => Op::Complete {
                upload: self.rng.gen_range(0..UPLOAD_IDS),
                key: self.rng.gen_range(0..KEYS),
            },
            _ => Op::Abort {
                upload: self.rng.gen_range(0..UPLOAD_IDS),
            },
        };
        self.propose(op);
        if !self.rng.gen_bool(self.unknown_outcomes) {
            self.apply(LEADER, self.log.len());
        }
    }

    /// Every member back and caught up, clients gone, time enough for
    /// every grace: what must be left is exactly what is referenced.
    fn settle_everything(&mut self) -> Result<(), String> {
        self.uploads.clear();
        for member in &mut self.members {
            member.up = true;
        }
        for _round in 0..4 {
            self.advance(GRACE_MS + 1);
            self.apply_everywhere();
            while self.collect_due() {
                self.apply_everywhere();
            }
            for m in 1..MEMBERS {
                self.catch_up(m);
            }
            for m in 0..MEMBERS {
                self.sweep(m);
                self.reclaim(m);
            }
            self.check()?;
        }
        let leader_counts = &self.members[LEADER].store.counts;
        for (m, member) in self.members.iter().enumerate() {
            let store = &member.store;
            let named: BTreeSet<ChunkHash> = store.recount().into_keys().collect();
            let indexed: BTreeSet<ChunkHash> = store.index.keys().copied().collect();
            if named != indexed || store.records.len() != store.index.len() {
                return Err(format!(
                    "member {m} keeps {} chunks in {} records for {} named",
                    indexed.len(),
                    store.records.len(),
                    named.len()
                ));
            }
            if !store.zero.is_empty() {
                return Err(format!(
                    "member {m}: {} chunks at zero left uncollected",
                    store.zero.len()
                ));
            }
            // A mark on a chunk referred to again stays, unused: the
            // sweeper only looks at chunks without a count.
            if let Some(hash) = store
                .collected
                .iter()
                .find(|h| !store.counts.contains_key(*h))
            {
                return Err(format!("member {m}: {hash} is still marked collected"));
            }
            if &store.counts != leader_counts {
                return Err(format!("member {m}'s counts differ from the leader's"));
            }
        }
        Ok(())
    }

    fn apply_everywhere(&mut self) {
        for m in 0..MEMBERS {
            self.apply(m, self.log.len());
        }
    }

    fn collect_due(&mut self) -> bool {
        let proposed = self.log.len();
        self.collect();
        self.log.len() > proposed
    }
}

/// Runs `steps` random events from `seed`, checking after each, then
/// settles; returns what happened, or what broke and where.
fn run(seed: u64, steps: usize) -> Result<Tally, String> {
    let mut model = Model::new(seed);
    for step in 0..steps {
        let event = model.step();
        model
            .check()
            .map_err(|e| format!("seed {seed}, step {step} ({event}): {e}"))?;
    }
    model
        .settle_everything()
        .map_err(|e| format!("seed {seed}, after settling: {e}"))?;
    Ok(model.tally)
}

#[test]
fn no_committed_ref_loses_its_chunk_and_every_unreferenced_chunk_goes() {
    let seeds: u64 = std::env::var("SHOAL_GC_MODEL_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(128);
    let mut total = Tally::default();
    for seed in 1..=seeds {
        let tally = run(seed, 5_000).unwrap_or_else(|e| panic!("{e}"));
        total.committed += tally.committed;
        total.refused += tally.refused;
        total.collected_entries += tally.collected_entries;
        total.forgotten += tally.forgotten;
        total.crashes += tally.crashes;
    }
    // The runs went where it matters: collects, forgetting, crashes, and
    // commits refused because a slow upload's chunk was forgotten.
    assert!(total.committed > 10_000, "{total:?}");
    assert!(total.collected_entries > 1_000, "{total:?}");
    assert!(total.forgotten > 5_000, "{total:?}");
    assert!(total.crashes > 5_000, "{total:?}");
    assert!(total.refused > 0, "{total:?}");
}
