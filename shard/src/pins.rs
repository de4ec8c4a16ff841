//! Pins: which chunks a shard must not forget right now, because a write,
//! a commit or a read is using them.
//!
//! Chunks are content-addressed and shared, so the sweeper may be about to
//! forget a chunk (no count names it) at the moment a PUT stores the same
//! bytes or a copy refers to them. Pins close that race on the shard's
//! core, where the sweeper and every writer run:
//!
//! - **Forgetting takes a marker.** The sweeper forgets a chunk only if it
//!   is not pinned, and marks it while its index entry is removed.
//! - **Pinning waits for the marker.** A pin taken while the chunk is being
//!   forgotten waits until that is done, so whatever the pinner does next
//!   (append and index the chunk again, or check that it is indexed) sees
//!   the index after the removal.
//!
//! Two kinds: a **scoped** pin lasts while its [`PinGuard`] lives (a read,
//! a commit until its entry applies); a **claim** is a PUT's pin on a chunk
//! it stored, released when the PUT's commit has applied or, for a PUT
//! that never commits (the client went away), when it expires.
//!
//! Bounded: at most [`PINS_MAX`] chunks; a claim beyond it is not
//! recorded (the commit re-checks its chunks anyway), a scoped pin always
//! is (there are at most as many as requests in flight).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use futures::channel::oneshot;

use crate::chunk_hash::ChunkHash;
use crate::limits::PINS_MAX;

#[derive(Debug, Default)]
struct Pin {
    scoped: u32,
    claims: u32,
    /// When the claims lapse (the latest claim's deadline).
    claims_until: Option<Instant>,
}

impl Pin {
    fn holds(&self, now: Instant) -> bool {
        self.scoped > 0 || (self.claims > 0 && self.claims_until.is_some_and(|t| t > now))
    }
}

#[derive(Default)]
struct State {
    pins: HashMap<ChunkHash, Pin>,
    /// Chunks being forgotten, with the pinners waiting for each.
    forgetting: HashMap<ChunkHash, Vec<oneshot::Sender<()>>>,
}

/// One shard's pins. Used on the shard's core only.
#[derive(Default)]
pub struct Pins {
    state: RefCell<State>,
}

/// A scoped pin; see the module docs.
#[must_use = "the pin lasts while the guard lives"]
pub struct PinGuard {
    pins: Rc<Pins>,
    hash: ChunkHash,
}

/// Marks a chunk as being forgotten; see the module docs.
#[must_use = "the chunk stays marked while the guard lives"]
pub struct ForgetGuard {
    pins: Rc<Pins>,
    hash: ChunkHash,
}

impl Pins {
    /// Waits until `hash` is not being forgotten.
    async fn settled(&self, hash: &ChunkHash) {
        loop {
            let waiter = {
                let mut state = self.state.borrow_mut();
                match state.forgetting.get_mut(hash) {
                    None => return,
                    Some(waiters) => {
                        let (tx, rx) = oneshot::channel();
                        waiters.push(tx);
                        rx
                    }
                }
            };
            let _ = waiter.await;
        }
    }

    /// A scoped pin on `hash`, once it is not being forgotten.
    pub async fn pin(self: &Rc<Self>, hash: ChunkHash) -> PinGuard {
        self.settled(&hash).await;
        self.state.borrow_mut().pins.entry(hash).or_default().scoped += 1;
        PinGuard {
            pins: Rc::clone(self),
            hash,
        }
    }

    /// Claims `hash` for a PUT until `until` (or its release), once it is
    /// not being forgotten.
    pub async fn claim(&self, hash: ChunkHash, until: Instant) {
        self.settled(&hash).await;
        let mut state = self.state.borrow_mut();
        if state.pins.len() >= PINS_MAX && !state.pins.contains_key(&hash) {
            Self::prune(&mut state, Instant::now());
            if state.pins.len() >= PINS_MAX {
                tracing::debug!(sha256 = %hash, "pin table full: claim not recorded");
                return;
            }
        }
        let pin = state.pins.entry(hash).or_default();
        pin.claims += 1;
        pin.claims_until = Some(pin.claims_until.map_or(until, |t| t.max(until)));
    }

    /// Releases one claim on each of `hashes` (a PUT's commit applied).
    pub fn release_claims(&self, hashes: impl IntoIterator<Item = ChunkHash>) {
        let mut state = self.state.borrow_mut();
        for hash in hashes {
            if let Some(pin) = state.pins.get_mut(&hash) {
                pin.claims = pin.claims.saturating_sub(1);
                if pin.claims == 0 && pin.scoped == 0 {
                    state.pins.remove(&hash);
                }
            }
        }
    }

    /// Marks `hash` as being forgotten, unless a pin holds it (or it is
    /// marked already).
    pub fn begin_forget(self: &Rc<Self>, hash: ChunkHash, now: Instant) -> Option<ForgetGuard> {
        let mut state = self.state.borrow_mut();
        if state.pins.get(&hash).is_some_and(|p| p.holds(now)) {
            return None;
        }
        if state.forgetting.contains_key(&hash) {
            return None;
        }
        state.pins.remove(&hash); // lapsed claims only
        state.forgetting.insert(hash, Vec::new());
        Some(ForgetGuard {
            pins: Rc::clone(self),
            hash,
        })
    }

    /// Whether `hash` is pinned now.
    pub fn is_pinned(&self, hash: &ChunkHash, now: Instant) -> bool {
        self.state
            .borrow()
            .pins
            .get(hash)
            .is_some_and(|p| p.holds(now))
    }

    /// Chunks pinned now; drops lapsed claims on the way.
    pub fn pinned(&self, now: Instant) -> usize {
        let mut state = self.state.borrow_mut();
        Self::prune(&mut state, now);
        state.pins.len()
    }

    fn prune(state: &mut State, now: Instant) {
        state.pins.retain(|_, pin| pin.holds(now));
    }
}

impl PinGuard {
    /// Ends the scoped pin but keeps the chunk claimed until `until`: for a
    /// commit whose outcome is unknown (its entry may still apply).
    pub fn linger(self, until: Instant) {
        {
            let mut state = self.pins.state.borrow_mut();
            if let Some(pin) = state.pins.get_mut(&self.hash) {
                pin.claims += 1;
                pin.claims_until = Some(pin.claims_until.map_or(until, |t| t.max(until)));
            }
        }
        drop(self);
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        let mut state = self.pins.state.borrow_mut();
        let pin = state
            .pins
            .get_mut(&self.hash)
            .expect("a scoped pin's entry stays while it lives");
        pin.scoped -= 1;
        if pin.scoped == 0 && pin.claims == 0 {
            state.pins.remove(&self.hash);
        }
    }
}

impl Drop for ForgetGuard {
    fn drop(&mut self) {
        let waiters = self
            .pins
            .state
            .borrow_mut()
            .forgetting
            .remove(&self.hash)
            .expect("a forget guard's marker stays while it lives");
        for waiter in waiters {
            let _ = waiter.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn hash(n: u8) -> ChunkHash {
        ChunkHash::of(&[n])
    }

    use crate::test_util::run_local as run;

    #[test]
    fn a_pinned_chunk_cannot_be_forgotten_until_its_pins_end() {
        run(|| async {
            let pins = Rc::new(Pins::default());
            let now = Instant::now();
            let guard = pins.pin(hash(1)).await;
            assert!(pins.begin_forget(hash(1), now).is_none());
            assert!(pins.begin_forget(hash(2), now).is_some());
            drop(guard);
            assert!(pins.begin_forget(hash(1), now).is_some());
            assert_eq!(pins.pinned(now), 0);
        });
    }

    #[test]
    fn claims_hold_until_released_or_lapsed() {
        run(|| async {
            let pins = Rc::new(Pins::default());
            let now = Instant::now();
            let until = now + Duration::from_secs(60);
            pins.claim(hash(1), until).await;
            pins.claim(hash(1), until).await;
            assert!(pins.begin_forget(hash(1), now).is_none());
            pins.release_claims([hash(1)]);
            assert!(pins.is_pinned(&hash(1), now), "one claim left");
            // An abandoned claim lapses at its deadline.
            assert!(!pins.is_pinned(&hash(1), until));
            assert!(pins.begin_forget(hash(1), until).is_some());
        });
    }

    #[test]
    fn a_lingering_commit_pin_holds_until_its_deadline() {
        run(|| async {
            let pins = Rc::new(Pins::default());
            let now = Instant::now();
            let until = now + Duration::from_secs(5);
            pins.pin(hash(1)).await.linger(until);
            assert!(pins.is_pinned(&hash(1), now));
            assert!(pins.begin_forget(hash(1), until).is_some());
        });
    }

    #[test]
    fn a_pin_taken_while_forgetting_waits_for_it() {
        run(|| async {
            let pins = Rc::new(Pins::default());
            let forgetting = pins
                .begin_forget(hash(1), Instant::now())
                .expect("unpinned");
            assert!(pins.begin_forget(hash(1), Instant::now()).is_none());
            let order = Rc::new(RefCell::new(Vec::new()));
            let (p, o) = (Rc::clone(&pins), Rc::clone(&order));
            let pinner = glommio::spawn_local(async move {
                let _guard = p.pin(hash(1)).await;
                o.borrow_mut().push("pinned");
            });
            glommio::yield_if_needed().await;
            glommio::timer::sleep(Duration::from_millis(5)).await;
            order.borrow_mut().push("forgotten");
            drop(forgetting);
            pinner.await;
            assert_eq!(*order.borrow(), ["forgotten", "pinned"]);
        });
    }
}
