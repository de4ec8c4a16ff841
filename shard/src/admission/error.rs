//! Why an admission check or charge did not grant a unit.

/// Every variant but [`AdmissionError::MustDrain`] is a refusal the front
/// end answers with `503 SlowDown` (plus `Retry-After`, and
/// `Connection: close` once the body has started); each is already counted
/// in the rejection metric where it arose. `MustDrain` is flow control for
/// the caller, never shown to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// Entry peek: neither the shard's slice nor the shared pool has a free
    /// unit. Nothing was charged.
    #[error(
        "no admission headroom: need {needed_bytes} bytes, {headroom_bytes} free \
         ({inflight_bytes} of {capacity_bytes} in flight)"
    )]
    NoHeadroom {
        needed_bytes: u64,
        headroom_bytes: u64,
        inflight_bytes: u64,
        capacity_bytes: u64,
    },

    /// No unit came free within the admission timeout. `inflight_bytes`
    /// counts the shard's charges (its slice and what it borrowed),
    /// `capacity_bytes` is its slice, `borrowed_bytes` what it holds of
    /// the shared pool.
    #[error(
        "admission wait timed out after {waited_ms} ms: need {needed_bytes} bytes, \
         {inflight_bytes} in flight, capacity {capacity_bytes}, {borrowed_bytes} borrowed"
    )]
    Timeout {
        waited_ms: u64,
        needed_bytes: u64,
        inflight_bytes: u64,
        capacity_bytes: u64,
        borrowed_bytes: u64,
    },

    /// The charge could never be granted, however long it waited: the
    /// shard's slice plus the shared pool is smaller than what the request
    /// would hold (in practice: both are zero, or were retuned to zero).
    #[error(
        "admission charge of {needed_bytes} bytes on top of {held_bytes} held \
         exceeds the whole capacity of {capacity_bytes} bytes"
    )]
    ExceedsCapacity {
        needed_bytes: u64,
        held_bytes: u64,
        capacity_bytes: u64,
    },

    /// Too many acquires already wait on this shard from this core; refused
    /// at once instead of queued.
    #[error("admission queue full: {waiters} acquires already waiting")]
    QueueFull { waiters: usize },

    /// No unit is free and the charge still holds units whose chunks are
    /// not yet durable. Waiting while holding them could deadlock requests
    /// on each other's held units, so the acquire returns at once: the
    /// caller waits for its oldest chunk to become durable, calls
    /// `Charge::release_durable`, and acquires again. Not a rejection.
    #[error(
        "admission must drain first: {busy_bytes} bytes still in flight for this request, \
         {needed_bytes} more needed"
    )]
    MustDrain { busy_bytes: u64, needed_bytes: u64 },
}

impl AdmissionError {
    /// Whether the client gets `503 SlowDown` for it (all but `MustDrain`).
    pub fn is_rejection(&self) -> bool {
        !matches!(self, AdmissionError::MustDrain { .. })
    }
}
