//! Which keys of a mixed step exist, so that a DELETE never turns later
//! GETs into errors. Every key is in one of three places: `present` (it
//! exists, nobody is using it), `absent` (deleted, nobody is using it), or
//! checked out by the one operation running on it. An operation checks a
//! key out, so no two overlap on one key (a GET racing a DELETE of the same
//! key would 404 through no fault of the server), and checks it back in
//! with what it learnt.
//!
//! GET, STAT and DELETE take a present key; PUT takes an absent key when
//! there is one (re-creating what a DELETE removed), else overwrites a
//! present one. When no present key is free, the operation becomes a PUT,
//! so the step keeps going; the per-operation counts then show the mix
//! that really ran. A step has at least as many keys as workers (checked
//! when it is resolved), so a free key always exists.
//!
//! Pure: the caller passes the random generator and holds the lock.

use rand::Rng;

use super::mix::MixOp;

#[derive(Debug)]
pub struct KeyPool {
    present: Vec<u64>,
    absent: Vec<u64>,
}

/// A key taken by one operation, and what it held before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkout {
    pub key: u64,
    pub op: MixOp,
    was_present: bool,
}

/// How the operation on a checked-out key ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// 2xx.
    Ok,
    /// 404: the key does not exist.
    NotFound,
    /// Any other status, or no complete response.
    Failed,
}

impl KeyPool {
    /// Keys `0..count`, all written by the prepare phase (or an earlier run).
    pub fn all_present(count: u64) -> KeyPool {
        KeyPool {
            present: (0..count).rev().collect(),
            absent: Vec::new(),
        }
    }

    /// Takes a key for `want`; the operation to run may be a PUT instead
    /// (see the module comment). `None` only when every key is checked out.
    pub fn checkout(&mut self, want: MixOp, rng: &mut impl Rng) -> Option<Checkout> {
        let op = match want {
            MixOp::Put => MixOp::Put,
            _ if self.present.is_empty() => MixOp::Put,
            other => other,
        };
        let from_present = op != MixOp::Put || self.absent.is_empty();
        let pool = if from_present {
            &mut self.present
        } else {
            &mut self.absent
        };
        if pool.is_empty() {
            return None;
        }
        let key = pool.swap_remove(rng.gen_range(0..pool.len()));
        Some(Checkout {
            key,
            op,
            was_present: from_present,
        })
    }

    /// Returns a key with what its operation learnt. A failed DELETE may
    /// or may not have deleted it: it counts as absent, since a PUT of an
    /// object that still exists is harmless and a GET of one that does
    /// not is an error. A failed PUT leaves what was there before.
    pub fn checkin(&mut self, taken: Checkout, ended: Ended) {
        let present = match (taken.op, ended) {
            (_, Ended::NotFound) => false,
            (MixOp::Delete, _) => false,
            (MixOp::Put, Ended::Ok) => true,
            (MixOp::Put, Ended::Failed) => taken.was_present,
            (MixOp::Get | MixOp::Stat, _) => true,
        };
        if present {
            self.present.push(taken.key);
        } else {
            self.absent.push(taken.key);
        }
    }

    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        (self.present.len(), self.absent.len())
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(5)
    }

    #[test]
    fn a_deleted_key_is_not_read_until_a_put_writes_it_again() {
        let mut rng = rng();
        let mut pool = KeyPool::all_present(1);
        let delete = pool.checkout(MixOp::Delete, &mut rng).unwrap();
        assert_eq!((delete.key, delete.op), (0, MixOp::Delete));
        pool.checkin(delete, Ended::Ok);
        assert_eq!(pool.counts(), (0, 1));
        // No key exists: the GET becomes a PUT of the deleted key.
        let get = pool.checkout(MixOp::Get, &mut rng).unwrap();
        assert_eq!((get.key, get.op), (0, MixOp::Put));
        pool.checkin(get, Ended::Ok);
        let get = pool.checkout(MixOp::Get, &mut rng).unwrap();
        assert_eq!(get.op, MixOp::Get);
    }

    #[test]
    fn checked_out_keys_are_not_handed_out_twice() {
        let mut rng = rng();
        let mut pool = KeyPool::all_present(3);
        let taken: Vec<_> = (0..3)
            .map(|_| pool.checkout(MixOp::Get, &mut rng).unwrap().key)
            .collect();
        let mut sorted = taken.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2]);
        assert_eq!(pool.checkout(MixOp::Put, &mut rng), None);
    }

    #[test]
    fn puts_refill_deleted_keys_first() {
        let mut rng = rng();
        let mut pool = KeyPool::all_present(4);
        let delete = pool.checkout(MixOp::Delete, &mut rng).unwrap();
        pool.checkin(delete, Ended::Ok);
        let put = pool.checkout(MixOp::Put, &mut rng).unwrap();
        assert_eq!(put.key, delete.key);
        pool.checkin(put, Ended::Ok);
        assert_eq!(pool.counts(), (4, 0));
    }

    #[test]
    fn failures_leave_the_safe_state() {
        let mut rng = rng();
        let mut pool = KeyPool::all_present(2);
        // A failed DELETE may have deleted: absent.
        let delete = pool.checkout(MixOp::Delete, &mut rng).unwrap();
        pool.checkin(delete, Ended::Failed);
        assert_eq!(pool.counts(), (1, 1));
        // A failed PUT of an absent key: still absent.
        let put = pool.checkout(MixOp::Put, &mut rng).unwrap();
        pool.checkin(put, Ended::Failed);
        assert_eq!(pool.counts(), (1, 1));
        // A GET that finds nothing: absent.
        let get = pool.checkout(MixOp::Get, &mut rng).unwrap();
        pool.checkin(get, Ended::NotFound);
        assert_eq!(pool.counts(), (0, 2));
        // A GET shed with a 503 leaves the object where it was.
        let mut pool = KeyPool::all_present(1);
        let get = pool.checkout(MixOp::Stat, &mut rng).unwrap();
        pool.checkin(get, Ended::Failed);
        assert_eq!(pool.counts(), (1, 0));
    }
}
