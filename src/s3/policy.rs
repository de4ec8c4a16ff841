//! Bucket policies: the IAM policy language as S3 buckets use it, read
//! (and refused with the reason when S3 would refuse it) and evaluated.
//! Pure code: `access.rs` builds the request's side ([`PolicyRequest`])
//! and combines the verdict with owners and ACLs, AWS's way: an explicit
//! deny wins, then an allow from the policy or the ACLs.

use std::net::IpAddr;

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What a policy says of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A statement denies it: nothing else can allow it.
    Deny,
    /// A statement allows it (and none denies it).
    Allow,
    /// No statement applies: owners and ACLs decide.
    Silent,
}

/// One request as a policy sees it.
pub struct PolicyRequest<'a> {
    /// The caller's user id and name; `None` for an anonymous request.
    pub user: Option<(&'a str, &'a str)>,
    /// `s3:GetObject`, ...
    pub action: &'a str,
    /// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
    pub resource: &'a str,
    /// A condition key's values for this request (`aws:SourceIp`,
    /// `s3:prefix`, ...); `None` when the request has no such key.
    pub context: &'a dyn Fn(&str) -> Option<Vec<String>>,
}

#[derive(Debug)]
enum Effect {
    Allow,
    Deny,
}

/// A list of patterns, or everything but them (`NotAction`, ...).
#[derive(Debug)]
struct Matcher {
    patterns: Vec<String>,
    negated: bool,
}

impl Matcher {
    fn matches(&self, text: &str, case_insensitive: bool) -> bool {
        let any = self.patterns.iter().any(|p| match case_insensitive {
            true => glob(&p.to_ascii_lowercase(), &text.to_ascii_lowercase()),
            false => glob(p, text),
        });
        any != self.negated
    }
}

#[derive(Debug)]
struct Condition {
    operator: String,
    key: String,
    values: Vec<String>,
}

#[derive(Debug)]
struct Statement {
    effect: Effect,
    /// `None`: `"*"` (everyone, anonymous callers included).
    principals: Option<Vec<String>>,
    principal_negated: bool,
    actions: Matcher,
    resources: Matcher,
    conditions: Vec<Condition>,
}

/// A bucket policy, checked and ready to evaluate.
#[derive(Debug)]
pub struct BucketPolicy {
    statements: Vec<Statement>,
}

/// Condition operators understood, without `IfExists`.
const OPERATORS: [&str; 22] = [
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "IpAddress",
    "NotIpAddress",
    "Null",
];

/// Condition keys Shoal judges (lower-case): `policy_check.rs` gives each
/// its value for a request. A policy naming another is refused: a
/// condition that can never be judged would silently not apply.
pub const CONDITION_KEYS: [&str; 22] = [
    "aws:sourceip",
    "aws:securetransport",
    "aws:currenttime",
    "aws:epochtime",
    "aws:useragent",
    "aws:referer",
    "aws:username",
    "aws:userid",
    "s3:prefix",
    "s3:delimiter",
    "s3:max-keys",
    "s3:versionid",
    "s3:x-amz-acl",
    "s3:x-amz-copy-source",
    "s3:x-amz-metadata-directive",
    "s3:x-amz-storage-class",
    "s3:x-amz-server-side-encryption",
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "s3:x-amz-server-side-encryption-customer-algorithm",
    "s3:x-amz-content-sha256",
    "s3:signatureversion",
    "s3:authtype",
];

/// `*` any run of characters, `?` any one, everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut resume) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            resume = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            resume += 1;
            ti = resume;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A string or a list of strings, as the policy language allows.
fn strings(value: &Value, what: &str) -> Result<Vec<String>, String> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Bool(b) => Ok(b.to_string()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(format!("{what} must be strings")),
            })
            .collect(),
        Value::Bool(b) => Ok(vec![b.to_string()]),
        Value::Number(n) => Ok(vec![n.to_string()]),
        _ => Err(format!("{what} must be a string or a list of strings")),
    }
}

impl BucketPolicy {
    /// Reads a policy for `bucket`, or says why S3 would refuse it.
    pub fn parse(text: &str, bucket: &str) -> Result<BucketPolicy, String> {
        let document: Value =
            serde_json::from_str(text).map_err(|e| format!("Policies must be valid JSON: {e}"))?;
        let Value::Object(document) = document else {
            return Err("Policies must be JSON objects".into());
        };
        if let Some(version) = document.get("Version") {
            if !matches!(version.as_str(), Some("2012-10-17" | "2008-10-17")) {
                return Err("The policy's Version must be 2012-10-17 or 2008-10-17".into());
            }
        }
        let statements = match document.get("Statement") {
            Some(Value::Array(list)) if !list.is_empty() => list.clone(),
            Some(object @ Value::Object(_)) => vec![object.clone()],
            _ => return Err("Missing required field Statement".into()),
        };
        let statements = statements
            .iter()
            .map(|s| statement(s, bucket))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BucketPolicy { statements })
    }

    /// What the policy says of `request`.
    pub fn evaluate(&self, request: &PolicyRequest<'_>) -> Verdict {
        let mut allowed = false;
        for statement in &self.statements {
            if !statement.applies(request) {
                continue;
            }
            match statement.effect {
                Effect::Deny => return Verdict::Deny,
                Effect::Allow => allowed = true,
            }
        }
        match allowed {
            true => Verdict::Allow,
            false => Verdict::Silent,
        }
    }

    /// Whether the policy lets anyone at all in (an Allow for every
    /// principal that no condition narrows): GetBucketPolicyStatus.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            matches!(s.effect, Effect::Allow)
                && s.principals.is_none()
                && !s.principal_negated
                && s.conditions.is_empty()
        })
    }
}

fn statement(value: &Value, bucket: &str) -> Result<Statement, String> {
    let Value::Object(fields) = value else {
        return Err("Each Statement must be an object".into());
    };
    let effect = match fields.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err("Invalid effect: a Statement's Effect is Allow or Deny".into()),
    };
    let (principal, principal_negated) = match (fields.get("Principal"), fields.get("NotPrincipal"))
    {
        (Some(p), None) => (p, false),
        (None, Some(p)) => (p, true),
        _ => return Err("Each Statement needs one of Principal or NotPrincipal".into()),
    };
    let principals = principals(principal)?;
    let actions = matcher(fields, "Action", "NotAction")?;
    for action in &actions.patterns {
        if action != "*" && !action.to_ascii_lowercase().starts_with("s3:") {
            return Err(format!("Policy has invalid action: {action}"));
        }
    }
    let resources = matcher(fields, "Resource", "NotResource")?;
    let own = format!("arn:aws:s3:::{bucket}");
    for resource in &resources.patterns {
        let of_bucket = resource == &own
            || resource.starts_with(&format!("{own}/"))
            || glob(resource, &own)
            || resource == "*";
        if !of_bucket {
            return Err(format!(
                "Policy has invalid resource: {resource} (it must name this bucket or its objects)"
            ));
        }
    }
    let conditions = match fields.get("Condition") {
        None => Vec::new(),
        Some(value) => conditions(value)?,
    };
    Ok(Statement {
        effect,
        principals,
        principal_negated,
        actions,
        resources,
        conditions,
    })
}

/// `"*"`, `{"AWS": "*"}` (`None`: everyone), or the listed principals.
fn principals(value: &Value) -> Result<Option<Vec<String>>, String> {
    let listed = match value {
        Value::String(s) if s == "*" => return Ok(None),
        Value::Object(kinds) => {
            let mut listed = Vec::new();
            for (kind, names) in kinds {
                if kind != "AWS" && kind != "CanonicalUser" {
                    return Err(format!(
                        "Invalid principal in policy: {kind} principals are not supported"
                    ));
                }
                listed.extend(strings(names, "Principals")?);
            }
            listed
        }
        _ => return Err("Invalid principal in policy".into()),
    };
    if listed.iter().any(|p| p == "*") {
        return Ok(None);
    }
    Ok(Some(listed))
}

fn matcher(
    fields: &serde_json::Map<String, Value>,
    name: &str,
    negated_name: &str,
) -> Result<Matcher, String> {
    match (fields.get(name), fields.get(negated_name)) {
        (Some(v), None) => Ok(Matcher {
            patterns: strings(v, name)?,
            negated: false,
        }),
        (None, Some(v)) => Ok(Matcher {
            patterns: strings(v, negated_name)?,
            negated: true,
        }),
        _ => Err(format!(
            "Each Statement needs one of {name} or {negated_name}"
        )),
    }
}

fn conditions(value: &Value) -> Result<Vec<Condition>, String> {
    let Value::Object(operators) = value else {
        return Err("A Condition must be an object".into());
    };
    let mut out = Vec::new();
    for (operator, keys) in operators {
        let base = operator.strip_suffix("IfExists").unwrap_or(operator);
        let base = base
            .strip_prefix("ForAnyValue:")
            .or_else(|| base.strip_prefix("ForAllValues:"))
            .unwrap_or(base);
        if !OPERATORS.contains(&base) {
            return Err(format!("Invalid Condition type: {operator}"));
        }
        let Value::Object(keys) = keys else {
            return Err(format!("The {operator} condition must map keys to values"));
        };
        for (key, values) in keys {
            if !CONDITION_KEYS.contains(&key.to_ascii_lowercase().as_str()) {
                return Err(format!(
                    "Policy has an invalid condition key: {key} (not one this server can judge)"
                ));
            }
            out.push(Condition {
                operator: operator.clone(),
                key: key.to_ascii_lowercase(),
                values: strings(values, "Condition values")?,
            });
        }
    }
    Ok(out)
}

impl Statement {
    fn applies(&self, request: &PolicyRequest<'_>) -> bool {
        let principal = self.principal_matches(request.user) != self.principal_negated;
        principal
            && self.actions.matches(request.action, true)
            && self.resources.matches(request.resource, false)
            && self.conditions.iter().all(|c| c.holds(request.context))
    }

    fn principal_matches(&self, user: Option<(&str, &str)>) -> bool {
        let Some(listed) = &self.principals else {
            return true;
        };
        let Some((id, name)) = user else {
            return false;
        };
        listed.iter().any(|p| {
            p == id
                || p.strip_prefix("arn:aws:iam::").is_some_and(|rest| {
                    // `arn:aws:iam::<account>:user/<name>` or `...:root` of
                    // the user's own id as the account.
                    let (account, what) = rest.split_once(':').unwrap_or((rest, ""));
                    what.strip_prefix("user/")
                        .is_some_and(|n| n == name || n == id)
                        || (what == "root" && account == id)
                })
        })
    }
}

impl Condition {
    fn holds(&self, context: &dyn Fn(&str) -> Option<Vec<String>>) -> bool {
        let if_exists = self.operator.ends_with("IfExists");
        let all_values = self.operator.starts_with("ForAllValues:");
        let base = self.operator.trim_end_matches("IfExists");
        let base = base
            .strip_prefix("ForAnyValue:")
            .or_else(|| base.strip_prefix("ForAllValues:"))
            .unwrap_or(base);
        let present = context(&self.key);
        if base == "Null" {
            let wants_missing = self.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            return present.is_none() == wants_missing;
        }
        let negated = base.contains("Not");
        let Some(actual) = present else {
            // A missing key: a negated operator holds, others do not,
            // unless `IfExists` asks to skip the condition.
            return if_exists || negated || all_values;
        };
        let one = |value: &str| {
            self.values
                .iter()
                .any(|wanted| compare(base, wanted, value))
        };
        match (negated, all_values) {
            // A negated operator holds when no value matches the negated
            // comparison's positive form.
            (true, _) => actual.iter().all(|v| !one_positive(base, &self.values, v)),
            (false, true) => actual.iter().all(|v| one(v)),
            (false, false) => actual.iter().any(|v| one(v)),
        }
    }
}

/// Whether `value` matches any of `wanted` under the positive form of a
/// negated operator (`StringNotLike` -> `StringLike`, ...).
fn one_positive(negated: &str, wanted: &[String], value: &str) -> bool {
    let positive = match negated {
        "NotIpAddress" => "IpAddress",
        other => &other.replacen("Not", "", 1),
    };
    wanted.iter().any(|w| compare(positive, w, value))
}

/// One positive comparison: the request's `value` against the policy's
/// `wanted`.
fn compare(operator: &str, wanted: &str, value: &str) -> bool {
    match operator {
        "StringEquals" => wanted == value,
        "StringEqualsIgnoreCase" => wanted.eq_ignore_ascii_case(value),
        "StringLike" => glob(wanted, value),
        "Bool" => wanted.eq_ignore_ascii_case(value),
        "IpAddress" => ip_in(wanted, value),
        op if op.starts_with("Numeric") => match (wanted.parse::<f64>(), value.parse::<f64>()) {
            (Ok(w), Ok(v)) => ordered(&op["Numeric".len()..], v.partial_cmp(&w)),
            _ => false,
        },
        op if op.starts_with("Date") => match (date(wanted), date(value)) {
            (Some(w), Some(v)) => ordered(&op["Date".len()..], v.partial_cmp(&w)),
            _ => false,
        },
        _ => false,
    }
}

fn ordered(relation: &str, order: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    matches!(
        (relation, order),
        ("Equals", Some(Equal))
            | ("LessThan", Some(Less))
            | ("LessThanEquals", Some(Less | Equal))
            | ("GreaterThan", Some(Greater))
            | ("GreaterThanEquals", Some(Greater | Equal))
    )
}

/// A date as ISO 8601 or Unix seconds.
fn date(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds);
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(|d| d.unix_timestamp())
}

/// Whether `address` lies in `cidr` (`10.0.0.0/8`, `2001:db8::/32`, or one
/// address).
fn ip_in(cidr: &str, address: &str) -> bool {
    let (net, bits) = cidr.split_once('/').unwrap_or((cidr, ""));
    let (Ok(net), Ok(address)) = (net.parse::<IpAddr>(), address.parse::<IpAddr>()) else {
        return false;
    };
    match (net, address) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let bits: u32 = bits.parse().unwrap_or(32).min(32);
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let bits: u32 = bits.parse().unwrap_or(128).min(128);
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(
        policy: &BucketPolicy,
        user: Option<(&str, &str)>,
        action: &str,
        resource: &str,
        ip: &str,
    ) -> Verdict {
        let ip = ip.to_string();
        let context = move |key: &str| match key {
            "aws:sourceip" => Some(vec![ip.clone()]),
            "s3:prefix" => Some(vec!["public/a".to_string()]),
            _ => None,
        };
        policy.evaluate(&PolicyRequest {
            user,
            action,
            resource,
            context: &context,
        })
    }

    #[test]
    fn globs_match_as_iam_does() {
        assert!(glob("arn:aws:s3:::b/public/*", "arn:aws:s3:::b/public/x/y"));
        assert!(!glob("arn:aws:s3:::b/public/*", "arn:aws:s3:::b/private/x"));
        assert!(glob("s3:Get*", "s3:GetObject"));
        assert!(glob("a?c", "abc") && !glob("a?c", "ac"));
        assert!(glob("*", "") && glob("**a", "ba"));
    }

    #[test]
    fn an_explicit_deny_wins_and_silence_leaves_it_to_the_acls() {
        let policy = BucketPolicy::parse(
            r#"{"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": "arn:aws:s3:::b/public/*"},
                {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::acct:user/alice"]},
                 "Action": ["s3:PutObject", "s3:Get*"], "Resource": ["arn:aws:s3:::b/*"],
                 "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
                {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": "arn:aws:s3:::b/public/secret*"}]}"#,
            "b",
        )
        .unwrap();
        let alice = Some(("id-alice", "alice"));
        let read = "s3:GetObject";
        assert_eq!(
            verdict(&policy, None, read, "arn:aws:s3:::b/public/a", "1.2.3.4"),
            Verdict::Allow
        );
        assert_eq!(
            verdict(&policy, None, read, "arn:aws:s3:::b/other", "1.2.3.4"),
            Verdict::Silent
        );
        assert_eq!(
            verdict(
                &policy,
                None,
                read,
                "arn:aws:s3:::b/public/secret1",
                "1.2.3.4"
            ),
            Verdict::Deny
        );
        assert_eq!(
            verdict(
                &policy,
                alice,
                "s3:PutObject",
                "arn:aws:s3:::b/x",
                "10.1.2.3"
            ),
            Verdict::Allow
        );
        assert_eq!(
            verdict(
                &policy,
                alice,
                "s3:PutObject",
                "arn:aws:s3:::b/x",
                "11.1.2.3"
            ),
            Verdict::Silent
        );
        assert_eq!(
            verdict(
                &policy,
                Some(("id-bob", "bob")),
                "s3:PutObject",
                "arn:aws:s3:::b/x",
                "10.1.2.3"
            ),
            Verdict::Silent
        );
        assert!(policy.is_public());
    }

    #[test]
    fn conditions_negations_and_missing_keys() {
        let policy = BucketPolicy::parse(
            r#"{"Statement": {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::b",
                "Condition": {"StringNotLike": {"s3:prefix": ["public/*", "shared/*"]}}}}"#,
            "b",
        )
        .unwrap();
        // The context's prefix is public/a: not denied.
        assert_eq!(
            verdict(&policy, None, "s3:ListBucket", "arn:aws:s3:::b", "1.1.1.1"),
            Verdict::Silent
        );
        assert!(!policy.is_public());
        let missing = BucketPolicy::parse(
            r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::b/*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}"#,
            "b",
        )
        .unwrap();
        assert_eq!(
            verdict(
                &missing,
                None,
                "s3:GetObject",
                "arn:aws:s3:::b/k",
                "1.1.1.1"
            ),
            Verdict::Silent
        );
        assert!(ip_in("2001:db8::/32", "2001:db8::1") && !ip_in("2001:db8::/32", "2001:db9::1"));
        assert!(
            compare("NumericLessThan", "100", "99") && !compare("NumericLessThan", "100", "100")
        );
        assert!(compare(
            "DateLessThan",
            "2030-01-01T00:00:00Z",
            "2026-12-07T00:00:00Z"
        ));
    }

    #[test]
    fn policies_s3_would_refuse_are_refused_with_the_reason() {
        let refused = |text: &str| BucketPolicy::parse(text, "b").unwrap_err();
        assert!(refused("not json").contains("JSON"));
        assert!(refused(r#"{"Statement": []}"#).contains("Statement"));
        let base = |field: &str| {
            format!(
                r#"{{"Statement": [{{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*", {field}}}]}}"#
            )
        };
        assert!(refused(
            &base(r#""Sid": "x", "Effect2": 1"#)
                .replace("\"Effect\": \"Allow\"", "\"Effect\": \"Maybe\"")
        )
        .contains("effect"));
        assert!(refused(&base(
            r#""Condition": {"StringSortOf": {"s3:prefix": "a"}}"#
        ))
        .contains("Condition type"));
        let unknown_key = r#""Condition": {"StringEquals": {"aws:Foo": "a"}}"#;
        assert!(refused(&base(unknown_key)).contains("condition key"));
        let other_bucket = r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::other/*"}]}"#;
        assert!(refused(other_bucket).contains("invalid resource"));
        let iam_action = r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "iam:CreateUser", "Resource": "arn:aws:s3:::b"}]}"#;
        assert!(refused(iam_action).contains("invalid action"));
        let no_principal = r#"{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b"}]}"#;
        assert!(refused(no_principal).contains("Principal"));
    }
}
