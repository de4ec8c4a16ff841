//! Who signed a browser upload form (POST Object). The form carries its
//! own signature over the base64 policy document: SigV4 (`x-amz-algorithm`,
//! `x-amz-credential`, `x-amz-date`, `x-amz-signature`), or SigV2
//! (`AWSAccessKeyId`, `signature`: HMAC-SHA1) where the node accepts it.
//! A form with neither is anonymous and may carry no policy.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::sigv4::{self, AmzDate, Credential};
use super::{AuthError, AuthLocation};

/// What the form says, looked up by case-insensitive field name.
pub type Field<'f> = &'f dyn Fn(&str) -> Option<&'f str>;

fn malformed(reason: &'static str) -> AuthError {
    AuthError::Malformed {
        location: AuthLocation::Form,
        reason,
    }
}

/// The access key that signed the form's policy; `None` for an unsigned
/// form. `sigv2`: whether SigV2 forms are accepted.
pub fn authenticate_form(
    field: Field<'_>,
    region: &str,
    sigv2: bool,
    secret_for: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, AuthError> {
    let v4 = field("x-amz-signature").is_some() || field("x-amz-credential").is_some();
    let v2 = field("awsaccesskeyid").is_some() || field("signature").is_some();
    let policy = field("policy");
    match (v4, v2) {
        (true, true) => Err(AuthError::MultipleMechanisms),
        (false, false) if policy.is_some() => Err(malformed("a form with a policy must be signed")),
        (false, false) => Ok(None),
        (true, false) => {
            let policy = policy.ok_or_else(|| malformed("a signed form needs a policy"))?;
            form_v4(field, policy, region, secret_for).map(Some)
        }
        (false, true) if !sigv2 => Err(AuthError::SigV2Refused),
        (false, true) => {
            let policy = policy.ok_or_else(|| malformed("a signed form needs a policy"))?;
            form_v2(field, policy, secret_for).map(Some)
        }
    }
}

fn form_v4(
    field: Field<'_>,
    policy: &str,
    region: &str,
    secret_for: &dyn Fn(&str) -> Option<String>,
) -> Result<String, AuthError> {
    if field("x-amz-algorithm") != Some("AWS4-HMAC-SHA256") {
        return Err(AuthError::UnsupportedAlgorithm {
            location: AuthLocation::Form,
        });
    }
    let credential = field("x-amz-credential").ok_or_else(|| malformed("no x-amz-credential"))?;
    let credential = Credential::parse(credential).map_err(malformed)?;
    let date = field("x-amz-date")
        .and_then(AmzDate::parse)
        .ok_or_else(|| malformed("no valid x-amz-date"))?;
    if date.date() != credential.date || credential.service != "s3" {
        return Err(malformed(
            "the credential's scope does not match x-amz-date and s3",
        ));
    }
    let legacy_us_east_1 = credential.region == "US" && region == "us-east-1";
    if credential.region != region && !legacy_us_east_1 {
        return Err(AuthError::WrongRegion {
            location: AuthLocation::Form,
            expected: region.to_string(),
            got: super::echo(credential.region),
        });
    }
    let signature = field("x-amz-signature")
        .and_then(sigv4::parse_signature)
        .ok_or_else(|| malformed("x-amz-signature is not 64 hex digits"))?;
    let secret = secret_for(credential.access_key).ok_or_else(|| AuthError::UnknownAccessKey {
        access_key: super::echo(credential.access_key),
    })?;
    let key = sigv4::signing_key(&secret, credential.date, credential.region, "s3");
    match sigv4::verify(&key, policy, &signature) {
        true => Ok(credential.access_key.to_string()),
        false => Err(AuthError::SignatureMismatch),
    }
}

fn form_v2(
    field: Field<'_>,
    policy: &str,
    secret_for: &dyn Fn(&str) -> Option<String>,
) -> Result<String, AuthError> {
    let access_key = field("awsaccesskeyid").ok_or_else(|| malformed("no AWSAccessKeyId"))?;
    let signature = field("signature")
        .and_then(|s| BASE64.decode(s.trim()).ok())
        .ok_or_else(|| malformed("signature is not base64"))?;
    let secret = secret_for(access_key).ok_or_else(|| AuthError::UnknownAccessKey {
        access_key: super::echo(access_key),
    })?;
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(policy.as_bytes());
    match mac.verify_slice(&signature) {
        Ok(()) => Ok(access_key.to_string()),
        Err(_) => Err(AuthError::SignatureMismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn secret_for(access_key: &str) -> Option<String> {
        (access_key == "AKID").then(|| SECRET.to_string())
    }

    fn check(fields: &[(&str, String)], sigv2: bool) -> Result<Option<String>, AuthError> {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        authenticate_form(&field, "us-east-1", sigv2, &secret_for)
    }

    #[test]
    fn sigv4_forms_are_checked_against_the_signing_key() {
        let policy = BASE64.encode(r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[]}"#);
        let key = sigv4::signing_key(SECRET, "20261207", "us-east-1", "s3");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(policy.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        let form = |signature: &str, credential: &str| {
            vec![
                ("Policy", policy.clone()),
                ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
                ("X-Amz-Credential", credential.to_string()),
                ("X-Amz-Date", "20261207T120000Z".to_string()),
                ("X-Amz-Signature", signature.to_string()),
            ]
        };
        let good = "AKID/20261207/us-east-1/s3/aws4_request";
        assert_eq!(
            check(&form(&signature, good), false),
            Ok(Some("AKID".into()))
        );
        let other = "f".repeat(64);
        assert_eq!(
            check(&form(&other, good), false),
            Err(AuthError::SignatureMismatch)
        );
        let stranger = "NOBODY/20261207/us-east-1/s3/aws4_request";
        assert!(matches!(
            check(&form(&signature, stranger), false),
            Err(AuthError::UnknownAccessKey { .. })
        ));
        let elsewhere = "AKID/20261207/eu-west-1/s3/aws4_request";
        assert!(matches!(
            check(&form(&signature, elsewhere), false),
            Err(AuthError::WrongRegion { .. })
        ));
    }

    #[test]
    fn sigv2_forms_only_where_the_node_accepts_them() {
        let policy = BASE64.encode("{}");
        let mut mac = Hmac::<Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(policy.as_bytes());
        let signature = BASE64.encode(mac.finalize().into_bytes());
        let form = vec![
            ("policy", policy.clone()),
            ("AWSAccessKeyId", "AKID".to_string()),
            ("signature", signature),
        ];
        assert_eq!(check(&form, true), Ok(Some("AKID".into())));
        assert_eq!(check(&form, false), Err(AuthError::SigV2Refused));
        let forged = vec![
            ("policy", policy.clone()),
            ("AWSAccessKeyId", "AKID".to_string()),
            ("signature", BASE64.encode([0u8; 20])),
        ];
        assert_eq!(check(&forged, true), Err(AuthError::SignatureMismatch));
    }

    #[test]
    fn unsigned_forms_are_anonymous_and_carry_no_policy() {
        assert_eq!(check(&[("key", "k".into())], false), Ok(None));
        assert!(matches!(
            check(&[("policy", "e30=".into())], false),
            Err(AuthError::Malformed { .. })
        ));
        let unsigned_v2 = [("AWSAccessKeyId", "AKID".to_string())];
        assert!(matches!(
            check(&unsigned_v2, true),
            Err(AuthError::Malformed { .. })
        ));
    }
}
