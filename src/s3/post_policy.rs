//! The policy document of a browser upload (POST Object): when it
//! expires and what the form's fields may hold. The signature covers the
//! document; this decides whether a form keeps to it. Pure code.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::S3Error;
use super::post_form::FormHead;

/// One condition of a policy, field names lower-case without the `$`.
#[derive(Debug, PartialEq, Eq)]
enum Condition {
    Equals { field: String, value: String },
    StartsWith { field: String, prefix: String },
    LengthRange { min: u64, max: u64 },
}

impl std::fmt::Display for Condition {
    /// As the policy language writes it, for error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Condition::Equals { field, value } => write!(f, "[\"eq\", \"${field}\", {value:?}]"),
            Condition::StartsWith { field, prefix } => {
                write!(f, "[\"starts-with\", \"${field}\", {prefix:?}]")
            }
            Condition::LengthRange { min, max } => {
                write!(f, "[\"content-length-range\", {min}, {max}]")
            }
        }
    }
}

/// A decoded policy document.
#[derive(Debug)]
pub struct PostPolicy {
    expiration: OffsetDateTime,
    conditions: Vec<Condition>,
}

/// Fields a form may carry that no condition names: the signature's own,
/// the file, and those S3 lets a form add freely.
fn exempt(field: &str) -> bool {
    matches!(
        field,
        "policy" | "signature" | "x-amz-signature" | "awsaccesskeyid" | "file"
    ) || field.starts_with("x-ignore-")
}

fn invalid(message: impl Into<String>) -> S3Error {
    S3Error::InvalidPolicyDocument {
        message: message.into(),
    }
}

fn refused(message: impl Into<String>) -> S3Error {
    S3Error::AccessDenied {
        message: format!("Invalid according to Policy: {}", message.into()),
    }
}

impl PostPolicy {
    /// Decodes the `policy` field (base64 JSON). Keys are case-sensitive,
    /// as S3 reads them; `expiration` and a non-empty `conditions` list
    /// are required.
    pub fn decode(encoded: &str) -> Result<PostPolicy, S3Error> {
        let json = BASE64
            .decode(encoded.trim())
            .map_err(|_| invalid("The policy is not valid base64."))?;
        let document: Value = serde_json::from_slice(&json)
            .map_err(|_| invalid("The policy is not a JSON document."))?;
        let expiration = document
            .get("expiration")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("The policy must contain an expiration."))?;
        let expiration = OffsetDateTime::parse(expiration, &Rfc3339).map_err(|_| {
            invalid(format!(
                "Invalid Policy: Invalid 'expiration' value: '{expiration}'"
            ))
        })?;
        let list = document
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("The policy must contain a conditions list."))?;
        if list.is_empty() {
            return Err(invalid("The policy's conditions list is empty."));
        }
        let conditions = list
            .iter()
            .map(condition)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        Ok(PostPolicy {
            expiration,
            conditions,
        })
    }

    /// Checks the form against the policy at `now`: not expired, every
    /// condition met (the bucket is `bucket`), and every field but the
    /// exempt ones named by a condition.
    pub fn check(&self, form: &FormHead, bucket: &str, now: OffsetDateTime) -> Result<(), S3Error> {
        if now > self.expiration {
            return Err(refused("Policy expired."));
        }
        // A field the form lacks is empty: `["starts-with", "$f", ""]`
        // allows any value, none included.
        let value_of = |field: &str| match field {
            "bucket" => Some(bucket),
            _ => Some(form.field(field).unwrap_or("")),
        };
        for condition in &self.conditions {
            let met = match condition {
                Condition::Equals { field, value } => value_of(field) == Some(value.as_str()),
                Condition::StartsWith { field, prefix } => {
                    // Content-Type may list several values, each checked.
                    value_of(field).is_some_and(|v| match field.as_str() {
                        "content-type" => {
                            v.split(',').all(|v| v.trim().starts_with(prefix.as_str()))
                        }
                        _ => v.starts_with(prefix.as_str()),
                    })
                }
                Condition::LengthRange { .. } => true,
            };
            if !met {
                return Err(refused(format!("Policy Condition failed: {condition}")));
            }
        }
        for name in form.fields.keys() {
            let name = name.to_ascii_lowercase();
            let named = self.conditions.iter().any(|c| match c {
                Condition::Equals { field, .. } | Condition::StartsWith { field, .. } => {
                    *field == name
                }
                Condition::LengthRange { .. } => false,
            });
            if !named && !exempt(&name) {
                return Err(refused(format!(
                    "Extra input fields: {name} (every field must be named by a condition)"
                )));
            }
        }
        Ok(())
    }

    /// The file sizes `content-length-range` allows, if it is given.
    pub fn length_range(&self) -> Option<(u64, u64)> {
        self.conditions.iter().find_map(|c| match c {
            Condition::LengthRange { min, max } => Some((*min, *max)),
            _ => None,
        })
    }
}

/// One entry of the conditions list: `{"field": "value"}` (several pairs
/// allowed), `["eq" | "starts-with", "$field", "value"]` or
/// `["content-length-range", min, max]`.
fn condition(entry: &Value) -> Result<Vec<Condition>, S3Error> {
    let field_name = |text: &str| text.strip_prefix('$').unwrap_or(text).to_ascii_lowercase();
    match entry {
        Value::Object(pairs) => pairs
            .iter()
            .map(|(field, value)| {
                let value = value
                    .as_str()
                    .ok_or_else(|| invalid(format!("The condition on {field} is not a string.")))?;
                Ok(Condition::Equals {
                    field: field_name(field),
                    value: value.to_string(),
                })
            })
            .collect(),
        Value::Array(items) => {
            let op = items.first().and_then(Value::as_str).unwrap_or_default();
            match (op.to_ascii_lowercase().as_str(), items.len()) {
                ("content-length-range", 3) => {
                    let bound = |v: &Value| {
                        v.as_u64()
                            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                            .ok_or_else(|| {
                                invalid("content-length-range takes two sizes of 0 or more.")
                            })
                    };
                    let (min, max) = (bound(&items[1])?, bound(&items[2])?);
                    Ok(vec![Condition::LengthRange { min, max }])
                }
                (kind @ ("eq" | "starts-with"), 3) => {
                    let text = |v: &Value| {
                        v.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| invalid(format!("A {kind} condition takes strings.")))
                    };
                    let (field, value) = (field_name(&text(&items[1])?), text(&items[2])?);
                    Ok(vec![match kind {
                        "eq" => Condition::Equals { field, value },
                        _ => Condition::StartsWith {
                            field,
                            prefix: value,
                        },
                    }])
                }
                _ => Err(invalid(format!("Invalid condition: {entry}"))),
            }
        }
        _ => Err(invalid(format!("Invalid condition: {entry}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(json: &str) -> String {
        BASE64.encode(json)
    }

    fn form(fields: &[(&str, &str)]) -> FormHead {
        FormHead {
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    const NOW: OffsetDateTime = time::macros::datetime!(2026-12-07 12:00 UTC);

    #[test]
    fn a_form_that_keeps_to_its_policy_passes() {
        let policy = PostPolicy::decode(&encoded(
            r#"{"expiration": "2026-12-08T00:00:00Z", "conditions": [
                {"bucket": "photos"}, ["starts-with", "$key", "user/"], {"acl": "private"},
                ["starts-with", "$Content-Type", "image/"], ["content-length-range", 1, 1048576]]}"#,
        ))
        .unwrap();
        let ok = form(&[
            ("key", "user/a.png"),
            ("acl", "private"),
            ("Content-Type", "image/png"),
            ("policy", "..."),
            ("AWSAccessKeyId", "AK"),
            ("signature", "sig"),
            ("x-ignore-note", "free"),
        ]);
        assert!(policy.check(&ok, "photos", NOW).is_ok());
        assert_eq!(policy.length_range(), Some((1, 1048576)));

        let code = |fields: &[(&str, &str)], bucket: &str, now| {
            policy.check(&form(fields), bucket, now).unwrap_err().code()
        };
        let fields = [
            ("key", "user/a.png"),
            ("acl", "private"),
            ("Content-Type", "image/png"),
        ];
        assert_eq!(
            code(&fields, "other", NOW),
            "AccessDenied",
            "the wrong bucket"
        );
        let later = time::macros::datetime!(2026-12-09 00:00 UTC);
        assert_eq!(code(&fields, "photos", later), "AccessDenied", "expired");
        let outside = [
            ("key", "other/a.png"),
            ("acl", "private"),
            ("Content-Type", "image/png"),
        ];
        assert_eq!(code(&outside, "photos", NOW), "AccessDenied");
        let extra = [
            ("key", "user/a"),
            ("acl", "private"),
            ("Content-Type", "image/png"),
            ("x-amz-meta-a", "1"),
        ];
        assert_eq!(
            code(&extra, "photos", NOW),
            "AccessDenied",
            "a field no condition names"
        );
        let missing = [("key", "user/a"), ("Content-Type", "image/png")];
        assert_eq!(
            code(&missing, "photos", NOW),
            "AccessDenied",
            "a named field absent"
        );
    }

    #[test]
    fn documents_s3_would_not_read_are_refused() {
        let code = |json: &str| PostPolicy::decode(&encoded(json)).unwrap_err().code();
        assert_eq!(
            code(r#"{"conditions": [{"bucket": "b"}]}"#),
            "InvalidPolicyDocument"
        );
        assert_eq!(
            code(r#"{"EXPIRATION": "2026-12-08T00:00:00Z", "conditions": [{"bucket": "b"}]}"#),
            "InvalidPolicyDocument"
        );
        assert_eq!(
            code(r#"{"expiration": "2026-12-08T00:00:00Z", "CONDITIONS": [{"bucket": "b"}]}"#),
            "InvalidPolicyDocument"
        );
        assert_eq!(
            code(r#"{"expiration": "2026-12-08T00:00:00Z", "conditions": []}"#),
            "InvalidPolicyDocument"
        );
        assert_eq!(
            code(r#"{"expiration": "tomorrow", "conditions": [{"bucket": "b"}]}"#),
            "InvalidPolicyDocument"
        );
        assert_eq!(
            code(
                r#"{"expiration": "2026-12-08T00:00:00Z", "conditions": [["content-length-range", 0]]}"#
            ),
            "InvalidPolicyDocument"
        );
        assert_eq!(
            code(
                r#"{"expiration": "2026-12-08T00:00:00Z", "conditions": [["content-length-range", -1, 5]]}"#
            ),
            "InvalidPolicyDocument"
        );
        assert_eq!(code("not base64 !"), "InvalidPolicyDocument");
    }
}
