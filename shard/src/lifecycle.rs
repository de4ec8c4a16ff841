//! Lifecycle rules: which versions a rule applies to, and when what it
//! says becomes due. Pure code: the worker that looks for due versions and
//! the state machine that removes them ask the same questions, the second
//! with the entry's proposal time as "now", so every member decides alike
//! and a rule changed since the worker looked decides instead.

use shoal_proto::meta::{LifecycleRule, MultipartUpload, ObjectManifest};

/// One lifecycle day in ms.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Whether `rule` applies to a version of `key` of `size_bytes` with
/// `tags`: enabled, and every filter it sets holds.
pub fn applies(
    rule: &LifecycleRule,
    key: &str,
    size_bytes: u64,
    tags: &std::collections::BTreeMap<String, String>,
) -> bool {
    rule.enabled
        && key.starts_with(&rule.prefix)
        && rule.tags.iter().all(|(k, v)| tags.get(k) == Some(v))
        && (rule.size_greater_than == 0 || size_bytes > rule.size_greater_than)
        && (rule.size_less_than == 0 || size_bytes < rule.size_less_than)
}

/// Whether the rule's Expiration makes the current version `current` due
/// at `now_ms`.
pub fn current_due(
    rule: &LifecycleRule,
    current: &ObjectManifest,
    now_ms: u64,
    day_ms: u64,
) -> bool {
    if !applies(rule, &current.key, current.size_bytes, &current.tags) {
        return false;
    }
    let by_age = rule.expiration_days > 0
        && age_reached(
            current.last_modified_unix_ms,
            rule.expiration_days,
            now_ms,
            day_ms,
        );
    let by_date = rule.expiration_date_unix_ms > 0 && rule.expiration_date_unix_ms <= now_ms;
    by_age || by_date
}

/// Whether the rule's NoncurrentVersionExpiration makes `version` due at
/// `now_ms`: it became noncurrent (its successor was written) at
/// `noncurrent_since_ms`, and `newer_noncurrent` noncurrent versions of
/// its key are newer than it.
pub fn noncurrent_due(
    rule: &LifecycleRule,
    version: &ObjectManifest,
    noncurrent_since_ms: u64,
    newer_noncurrent: usize,
    now_ms: u64,
    day_ms: u64,
) -> bool {
    rule.noncurrent_days > 0
        && applies(rule, &version.key, version.size_bytes, &version.tags)
        && newer_noncurrent >= rule.newer_noncurrent_versions as usize
        && age_reached(noncurrent_since_ms, rule.noncurrent_days, now_ms, day_ms)
}

/// Whether the rule's ExpiredObjectDeleteMarker removes a delete marker
/// of `key` that is the key's only version.
pub fn lone_marker_due(rule: &LifecycleRule, key: &str) -> bool {
    // Tag and size filters cannot match a marker, which has neither; S3
    // applies this action under a prefix filter only.
    rule.expired_object_delete_marker
        && rule.enabled
        && key.starts_with(&rule.prefix)
        && rule.tags.is_empty()
        && rule.size_greater_than == 0
        && rule.size_less_than == 0
}

/// Whether the rule's AbortIncompleteMultipartUpload makes `upload` due.
pub fn upload_due(
    rule: &LifecycleRule,
    upload: &MultipartUpload,
    now_ms: u64,
    day_ms: u64,
) -> bool {
    rule.abort_incomplete_days > 0
        && rule.enabled
        && upload.key.starts_with(&rule.prefix)
        && rule.tags.is_empty()
        && age_reached(
            upload.initiated_unix_ms,
            rule.abort_incomplete_days,
            now_ms,
            day_ms,
        )
}

fn age_reached(since_ms: u64, days: u32, now_ms: u64, day_ms: u64) -> bool {
    since_ms.saturating_add(u64::from(days).saturating_mul(day_ms)) <= now_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> LifecycleRule {
        LifecycleRule {
            enabled: true,
            prefix: "logs/".into(),
            expiration_days: 2,
            ..Default::default()
        }
    }

    fn version(key: &str, size_bytes: u64, written_ms: u64) -> ObjectManifest {
        ObjectManifest {
            key: key.into(),
            size_bytes,
            last_modified_unix_ms: written_ms,
            ..Default::default()
        }
    }

    #[test]
    fn filters_all_hold_or_the_rule_does_not_apply() {
        let mut r = rule();
        let tags = [("team".to_string(), "a".to_string())]
            .into_iter()
            .collect();
        assert!(applies(&r, "logs/x", 10, &tags));
        assert!(!applies(&r, "data/x", 10, &tags));
        r.tags.insert("team".into(), "b".into());
        assert!(!applies(&r, "logs/x", 10, &tags));
        r.tags.insert("team".into(), "a".into());
        r.size_greater_than = 10;
        assert!(!applies(&r, "logs/x", 10, &tags));
        assert!(applies(&r, "logs/x", 11, &tags));
        r.size_less_than = 11;
        assert!(!applies(&r, "logs/x", 11, &tags));
        r.enabled = false;
        r.size_less_than = 0;
        assert!(!applies(&r, "logs/x", 11, &tags));
    }

    #[test]
    fn ages_count_in_days_of_the_given_length() {
        let r = rule();
        let v = version("logs/x", 1, 1_000);
        assert!(!current_due(&r, &v, 1_000 + 2 * DAY_MS - 1, DAY_MS));
        assert!(current_due(&r, &v, 1_000 + 2 * DAY_MS, DAY_MS));
        // A test day of one second.
        assert!(current_due(&r, &v, 3_000, 1_000));
        let dated = LifecycleRule {
            expiration_days: 0,
            expiration_date_unix_ms: 5_000,
            ..rule()
        };
        assert!(!current_due(&dated, &v, 4_999, DAY_MS));
        assert!(current_due(&dated, &v, 5_000, DAY_MS));
    }

    #[test]
    fn noncurrent_versions_keep_the_newest_asked_for() {
        let r = LifecycleRule {
            expiration_days: 0,
            noncurrent_days: 1,
            newer_noncurrent_versions: 2,
            ..rule()
        };
        let v = version("logs/x", 1, 0);
        assert!(
            !noncurrent_due(&r, &v, 1_000, 1, 10_000, 1_000),
            "one of the 2 kept"
        );
        assert!(noncurrent_due(&r, &v, 1_000, 2, 10_000, 1_000));
        assert!(
            !noncurrent_due(&r, &v, 9_500, 2, 10_000, 1_000),
            "noncurrent too briefly"
        );
    }

    #[test]
    fn markers_and_uploads() {
        let mut r = rule();
        assert!(!lone_marker_due(&r, "logs/x"));
        r.expired_object_delete_marker = true;
        assert!(lone_marker_due(&r, "logs/x"));
        assert!(!lone_marker_due(&r, "data/x"));
        r.abort_incomplete_days = 1;
        let upload = MultipartUpload {
            key: "logs/big".into(),
            initiated_unix_ms: 0,
            ..Default::default()
        };
        assert!(upload_due(&r, &upload, DAY_MS, DAY_MS));
        assert!(!upload_due(&r, &upload, DAY_MS - 1, DAY_MS));
    }
}
