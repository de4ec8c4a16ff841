//! The node-wide view of what the metadata shard (shard 0) owns: buckets
//! and users with their access keys.
//!
//! The records live in shard 0's rocksdb and change only through its raft
//! group. The state machine publishes each change here right after it
//! writes the batch that holds it (and reloads everything after installing
//! a snapshot), so every core of the node (and, with replication, every
//! node that applies the entry) sees a bucket or a disabled key at once,
//! before the proposer even gets its answer. Reads are lock-free
//! (`ArcSwap::load`) and never hop; writes are rare and copy the map.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rocksdb::DB;
use shoal_proto::meta::{BucketRecord, User};

use crate::meta::keys::Cf;
use crate::meta::{cf, decode, MetaError};

/// The node's bootstrap user (the `--access-key` pair's). Buckets made
/// before users existed (an empty `owner_id`) belong to it.
pub const BOOTSTRAP_USER: &str = "admin";

/// One applied change to the directory's records.
#[derive(Clone, Debug)]
pub(crate) enum Change {
    BucketPut(BucketRecord),
    BucketDeleted(String),
    UserPut(User),
    UserDeleted(String),
}

/// What an access key stands for, as authentication needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyOwner {
    pub secret_key: String,
    pub user_id: String,
    pub user_name: String,
    /// False when the key or its user is disabled.
    pub enabled: bool,
}

#[derive(Clone, Default)]
struct Users {
    by_name: BTreeMap<String, User>,
    /// Access key → user name.
    by_access_key: HashMap<String, String>,
}

impl Users {
    fn put(&mut self, user: User) {
        self.remove(&user.name.clone());
        for key in &user.keys {
            self.by_access_key
                .insert(key.access_key.clone(), user.name.clone());
        }
        self.by_name.insert(user.name.clone(), user);
    }

    fn remove(&mut self, name: &str) {
        if let Some(old) = self.by_name.remove(name) {
            for key in &old.keys {
                self.by_access_key.remove(&key.access_key);
            }
        }
    }
}

#[derive(Default)]
pub struct Directory {
    buckets: ArcSwap<BTreeMap<String, BucketRecord>>,
    users: ArcSwap<Users>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print users: their secrets are in there.
        f.debug_struct("Directory")
            .field("buckets", &self.buckets.load().len())
            .field("users", &self.users.load().by_name.len())
            .finish()
    }
}

impl Directory {
    pub fn new() -> Arc<Directory> {
        Arc::new(Directory::default())
    }

    pub fn bucket(&self, name: &str) -> Option<BucketRecord> {
        self.buckets.load().get(name).cloned()
    }

    /// What `read` takes from the bucket's record, without copying the
    /// record (its ACL, tags and lifecycle rules): for what every write
    /// asks of its bucket.
    pub fn read_bucket<T>(&self, name: &str, read: impl FnOnce(&BucketRecord) -> T) -> Option<T> {
        self.buckets.load().get(name).map(read)
    }

    pub fn contains_bucket(&self, name: &str) -> bool {
        self.buckets.load().contains_key(name)
    }

    /// Every bucket, in name order.
    pub fn buckets(&self) -> Vec<BucketRecord> {
        self.buckets.load().values().cloned().collect()
    }

    pub fn user(&self, name: &str) -> Option<User> {
        self.users.load().by_name.get(name).cloned()
    }

    /// Every user, in name order (secrets included: callers must not show
    /// them).
    pub fn users(&self) -> Vec<User> {
        self.users.load().by_name.values().cloned().collect()
    }

    /// Who an access key belongs to, if anyone.
    pub fn key_owner(&self, access_key: &str) -> Option<KeyOwner> {
        let users = self.users.load();
        let name = users.by_access_key.get(access_key)?;
        let user = users.by_name.get(name)?;
        let key = user.keys.iter().find(|k| k.access_key == access_key)?;
        Some(KeyOwner {
            secret_key: key.secret_key.clone(),
            user_id: user.id.clone(),
            user_name: user.name.clone(),
            enabled: !user.disabled && !key.disabled,
        })
    }

    /// Publishes changes that were just written.
    pub(crate) fn publish(&self, changes: &[Change]) {
        if changes
            .iter()
            .any(|c| matches!(c, Change::BucketPut(_) | Change::BucketDeleted(_)))
        {
            self.buckets.rcu(|current| {
                let mut next = BTreeMap::clone(current);
                for change in changes {
                    match change {
                        Change::BucketPut(record) => {
                            next.insert(record.name.clone(), record.clone());
                        }
                        Change::BucketDeleted(name) => {
                            next.remove(name);
                        }
                        _ => {}
                    }
                }
                next
            });
        }
        if changes
            .iter()
            .any(|c| matches!(c, Change::UserPut(_) | Change::UserDeleted(_)))
        {
            self.users.rcu(|current| {
                let mut next = Users::clone(current);
                for change in changes {
                    match change {
                        Change::UserPut(user) => next.put(user.clone()),
                        Change::UserDeleted(name) => next.remove(name),
                        _ => {}
                    }
                }
                next
            });
        }
    }

    /// Replaces everything with the store's applied state (at start and
    /// after a snapshot install). Blocking: call it on a blocking thread.
    pub(crate) fn load(&self, db: &DB) -> Result<(), MetaError> {
        let mut buckets = BTreeMap::new();
        let mut iter = db.raw_iterator_cf(cf(db, Cf::Buckets));
        iter.seek_to_first();
        while let Some((key, value)) = iter.item() {
            let record: BucketRecord = decode(Cf::Buckets, key, value)?;
            buckets.insert(record.name.clone(), record);
            iter.next();
        }
        iter.status().map_err(MetaError::rocks("load_directory"))?;
        let mut users = Users::default();
        let mut iter = db.raw_iterator_cf(cf(db, Cf::Users));
        iter.seek_to_first();
        while let Some((key, value)) = iter.item() {
            users.put(decode(Cf::Users, key, value)?);
            iter.next();
        }
        iter.status().map_err(MetaError::rocks("load_directory"))?;
        self.buckets.store(Arc::new(buckets));
        self.users.store(Arc::new(users));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_proto::meta::AccessKey;

    fn user(name: &str, keys: &[(&str, bool)], disabled: bool) -> User {
        User {
            name: name.into(),
            id: format!("id-{name}"),
            keys: keys
                .iter()
                .map(|(ak, key_disabled)| AccessKey {
                    access_key: (*ak).into(),
                    secret_key: format!("secret-{ak}"),
                    disabled: *key_disabled,
                    created_unix_ms: 1,
                })
                .collect(),
            disabled,
            created_unix_ms: 1,
        }
    }

    #[test]
    fn keys_follow_their_users() {
        let directory = Directory::new();
        directory.publish(&[
            Change::UserPut(user("a", &[("AK1", false), ("AK2", true)], false)),
            Change::UserPut(user("b", &[("AK3", false)], true)),
        ]);
        let owner = directory.key_owner("AK1").unwrap();
        assert_eq!((owner.user_name.as_str(), owner.enabled), ("a", true));
        assert_eq!(owner.secret_key, "secret-AK1");
        assert!(!directory.key_owner("AK2").unwrap().enabled);
        assert!(!directory.key_owner("AK3").unwrap().enabled);
        // Replacing a user drops keys it no longer has.
        directory.publish(&[Change::UserPut(user("a", &[("AK2", false)], false))]);
        assert!(directory.key_owner("AK1").is_none());
        assert!(directory.key_owner("AK2").unwrap().enabled);
        directory.publish(&[Change::UserDeleted("a".into())]);
        assert!(directory.key_owner("AK2").is_none());
        assert_eq!(directory.users().len(), 1);
    }
}
