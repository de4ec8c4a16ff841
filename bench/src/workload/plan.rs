//! Which operation a worker runs next, and on which key: pure, so tests can
//! check a step's key pattern and read/write mix without a server.

use rand::Rng;

use super::mix::{Mix, MixOp};
use super::spec::{StepSpec, WorkloadKind};

/// One planned operation, by key index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Put(u64),
    Get(u64),
    Stat(u64),
    List,
    Delete(u64),
    /// A mixed step's next kind; its key comes from the step's
    /// [`super::keys::KeyPool`], which knows which keys exist.
    Mixed(MixOp),
}

#[derive(Debug, Clone)]
pub struct Plan {
    kind: WorkloadKind,
    /// Keys the step reads, deletes or (for PUT, when set) cycles through.
    objects: Option<u64>,
    mix: Mix,
    count: Option<u64>,
}

impl Plan {
    pub fn of(spec: &StepSpec) -> Plan {
        Plan {
            kind: spec.kind,
            objects: spec.objects,
            mix: spec.mix,
            count: spec.count,
        }
    }

    /// Operations the step runs at most; `None`: until the deadline.
    pub fn total(&self) -> Option<u64> {
        match (self.kind, self.count) {
            // Each delete removes a prepared object: no more than exist.
            (WorkloadKind::Delete, count) => Some(count.unwrap_or(u64::MAX).min(self.keyspace())),
            (_, count) => count,
        }
    }

    fn keyspace(&self) -> u64 {
        self.objects.unwrap_or(u64::MAX).max(1)
    }

    /// The operation numbered `index` (from 0); `rng` decides the mix.
    pub fn next(&self, index: u64, rng: &mut impl Rng) -> Next {
        let key = index % self.keyspace();
        match self.kind {
            WorkloadKind::Put => Next::Put(key),
            WorkloadKind::Get => Next::Get(key),
            WorkloadKind::List => Next::List,
            WorkloadKind::Delete => Next::Delete(key),
            WorkloadKind::Mixed => Next::Mixed(self.mix.pick(rng)),
        }
    }
}

/// The object key of index `index` under a step's prefix.
pub fn key(prefix: &str, index: u64) -> String {
    format!("{prefix}{index:08}")
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::workload::spec::tests::spec_of;

    #[test]
    fn puts_use_fresh_keys_unless_objects_is_set() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let plan = Plan::of(&spec_of(WorkloadKind::Put, |_| {}));
        assert_eq!(plan.next(5, &mut rng), Next::Put(5));
        let plan = Plan::of(&spec_of(WorkloadKind::Put, |s| s.objects = Some(4)));
        assert_eq!(plan.next(5, &mut rng), Next::Put(1));
    }

    #[test]
    fn gets_cycle_through_the_prepared_objects() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let plan = Plan::of(&spec_of(WorkloadKind::Get, |s| s.objects = Some(3)));
        let keys: Vec<_> = (0..5).map(|i| plan.next(i, &mut rng)).collect();
        assert_eq!(
            keys,
            [
                Next::Get(0),
                Next::Get(1),
                Next::Get(2),
                Next::Get(0),
                Next::Get(1)
            ]
        );
    }

    #[test]
    fn deletes_stop_when_the_objects_run_out() {
        let plan = Plan::of(&spec_of(WorkloadKind::Delete, |s| {
            s.objects = Some(10);
            s.count = Some(50);
        }));
        assert_eq!(plan.total(), Some(10));
    }

    #[test]
    fn mixed_follows_the_mix() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let plan = Plan::of(&spec_of(WorkloadKind::Mixed, |s| {
            s.mix = Mix::from_read_fraction(0.7);
        }));
        let n = 20_000;
        let reads = (0..n)
            .filter(|&i| plan.next(i, &mut rng) == Next::Mixed(MixOp::Get))
            .count();
        let fraction = reads as f64 / n as f64;
        assert!((fraction - 0.7).abs() < 0.02, "{fraction}");
        let plan = Plan::of(&spec_of(WorkloadKind::Mixed, |_| {}));
        let deletes = (0..n)
            .filter(|&i| plan.next(i, &mut rng) == Next::Mixed(MixOp::Delete))
            .count();
        let fraction = deletes as f64 / n as f64;
        assert!((fraction - 0.1).abs() < 0.02, "{fraction}");
    }

    #[test]
    fn keys_sort_in_index_order() {
        assert_eq!(key("p/", 42), "p/00000042");
        assert!(key("p/", 9) < key("p/", 10));
    }
}
