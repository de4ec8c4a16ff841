//! Who is who: a node's id and a shard's index, each its own type so that
//! one is never passed where the other belongs.
//!
//! Both print as their bare number (logs, errors and `shoal-ctl` show
//! `3`, not `NodeId(3)`) and serialize as it (`serde(transparent)`), so
//! raft votes, logs and snapshots keep their stored form.

use serde::{Deserialize, Serialize};

/// `Display` and `Debug` of a one-number type: the bare number.
macro_rules! prints_as_its_number {
    ($name:ident) => {
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

/// A node's id, set by `--node-id`: the same in every shard's group, and
/// raft's node id there. Never 0 in a cluster.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u64);

impl NodeId {
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for NodeId {
    fn from(id: u64) -> NodeId {
        NodeId(id)
    }
}

prints_as_its_number!(NodeId);

/// A shard's index within its node, `0..shards`: which core owns it, which
/// blob log and store are its, and which raft group (shard *i* of every
/// node) it belongs to. Shard 0 also holds buckets and users.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShardIndex(pub u16);

impl ShardIndex {
    pub const fn get(self) -> u16 {
        self.0
    }

    /// For indexing per-shard tables.
    pub const fn as_usize(self) -> usize {
        self.0 as usize
    }
}

impl From<u16> for ShardIndex {
    fn from(index: u16) -> ShardIndex {
        ShardIndex(index)
    }
}

prints_as_its_number!(ShardIndex);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_serialize_as_their_bare_numbers() {
        // Raft votes and logs stored before the types existed decode as is.
        assert_eq!(
            bincode::serialize(&NodeId(7)).unwrap(),
            bincode::serialize(&7u64).unwrap()
        );
        assert_eq!(
            bincode::deserialize::<NodeId>(&bincode::serialize(&7u64).unwrap()).unwrap(),
            NodeId(7)
        );
        assert_eq!(
            bincode::serialize(&ShardIndex(3)).unwrap(),
            bincode::serialize(&3u16).unwrap()
        );
        assert_eq!(format!("{} {:?}", NodeId(7), Some(NodeId(7))), "7 Some(7)");
        assert_eq!(format!("{} {:?}", ShardIndex(3), ShardIndex(3)), "3 3");
    }
}
