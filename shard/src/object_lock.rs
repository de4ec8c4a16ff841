//! Object Lock rules: whether a version may go, and how its retention may
//! change. Pure code: the state machine calls it with the applying entry's
//! proposal time as "now", so every member decides alike and no replica's
//! clock is ever read.

use shoal_proto::meta::{DefaultRetention, LockMode, ObjectManifest};

/// One day, in ms; S3 counts a year of default retention as 365 days.
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Whether `version` may not be deleted (or replaced in place) at `now_ms`:
/// it is under a legal hold, or under retention that has not ended, unless
/// that retention is governance and the caller may bypass it.
pub fn is_locked(version: &ObjectManifest, now_ms: u64, bypass_governance: bool) -> bool {
    if version.legal_hold {
        return true;
    }
    let retained = version.retain_until_unix_ms > now_ms;
    match version.retention_mode() {
        LockMode::None => false,
        LockMode::Compliance => retained,
        LockMode::Governance => retained && !bypass_governance,
    }
}

/// The retention a version written at `written_ms` gets from the bucket's
/// default: its mode and end. `None` for a rule without a mode or period.
pub fn default_retention(rule: &DefaultRetention, written_ms: u64) -> Option<(LockMode, u64)> {
    let mode = rule.mode();
    let days = match (rule.days, rule.years) {
        (0, 0) => return None,
        (days, 0) => u64::from(days),
        (_, years) => u64::from(years) * 365,
    };
    if mode == LockMode::None {
        return None;
    }
    Some((mode, written_ms.saturating_add(days.saturating_mul(DAY_MS))))
}

/// Whether `version`'s retention may become `mode` until `until_ms` at
/// `now_ms`. Retention that has ended is no retention. Compliance may only
/// be extended; governance may be extended or made compliance by anyone,
/// and shortened or removed only by a caller who may bypass it.
pub fn retention_change_allowed(
    version: &ObjectManifest,
    mode: LockMode,
    until_ms: u64,
    now_ms: u64,
    bypass_governance: bool,
) -> bool {
    let current_until = version.retain_until_unix_ms;
    if current_until <= now_ms {
        return true;
    }
    let keeps_or_extends = until_ms >= current_until;
    match version.retention_mode() {
        LockMode::None => true,
        LockMode::Compliance => mode == LockMode::Compliance && keeps_or_extends,
        LockMode::Governance => bypass_governance || (mode != LockMode::None && keeps_or_extends),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retained(mode: LockMode, until: u64, legal_hold: bool) -> ObjectManifest {
        ObjectManifest {
            retention_mode: mode.into(),
            retain_until_unix_ms: until,
            legal_hold,
            ..Default::default()
        }
    }

    #[test]
    fn retention_locks_until_it_ends_and_holds_lock_always() {
        let compliance = retained(LockMode::Compliance, 2_000, false);
        assert!(
            is_locked(&compliance, 1_999, true),
            "nobody bypasses compliance"
        );
        assert!(!is_locked(&compliance, 2_000, false), "ended at its date");
        let governance = retained(LockMode::Governance, 2_000, false);
        assert!(is_locked(&governance, 1_000, false));
        assert!(!is_locked(&governance, 1_000, true));
        let held = retained(LockMode::None, 0, true);
        assert!(is_locked(&held, u64::MAX, true), "a legal hold has no end");
        assert!(!is_locked(&ObjectManifest::default(), 0, false));
    }

    #[test]
    fn defaults_count_days_or_years_from_the_write() {
        let rule = |mode: LockMode, days, years| DefaultRetention {
            mode: mode.into(),
            days,
            years,
        };
        assert_eq!(
            default_retention(&rule(LockMode::Governance, 2, 0), 1_000),
            Some((LockMode::Governance, 1_000 + 2 * DAY_MS))
        );
        assert_eq!(
            default_retention(&rule(LockMode::Compliance, 0, 1), 0),
            Some((LockMode::Compliance, 365 * DAY_MS))
        );
        assert_eq!(default_retention(&rule(LockMode::None, 1, 0), 0), None);
        assert_eq!(
            default_retention(&rule(LockMode::Governance, 0, 0), 0),
            None
        );
    }

    #[test]
    fn compliance_only_extends_and_governance_yields_to_bypass() {
        let now = 1_000;
        let compliance = retained(LockMode::Compliance, 5_000, false);
        assert!(retention_change_allowed(
            &compliance,
            LockMode::Compliance,
            6_000,
            now,
            false
        ));
        assert!(!retention_change_allowed(
            &compliance,
            LockMode::Compliance,
            4_000,
            now,
            true
        ));
        assert!(!retention_change_allowed(
            &compliance,
            LockMode::Governance,
            9_000,
            now,
            true
        ));
        assert!(!retention_change_allowed(
            &compliance,
            LockMode::None,
            0,
            now,
            true
        ));
        let governance = retained(LockMode::Governance, 5_000, false);
        assert!(retention_change_allowed(
            &governance,
            LockMode::Compliance,
            5_000,
            now,
            false
        ));
        assert!(!retention_change_allowed(
            &governance,
            LockMode::Governance,
            4_000,
            now,
            false
        ));
        assert!(retention_change_allowed(
            &governance,
            LockMode::Governance,
            4_000,
            now,
            true
        ));
        assert!(!retention_change_allowed(
            &governance,
            LockMode::None,
            0,
            now,
            false
        ));
        assert!(retention_change_allowed(
            &governance,
            LockMode::None,
            0,
            now,
            true
        ));
        // Retention that ended is no retention.
        assert!(retention_change_allowed(
            &compliance,
            LockMode::None,
            0,
            5_000,
            false
        ));
    }
}
