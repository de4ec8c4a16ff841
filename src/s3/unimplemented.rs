//! Request headers that ask for something Shoal does not do yet, refused
//! with `501 NotImplemented` naming the header.
//!
//! Accepting such a header and ignoring it would pretend: a website
//! redirect would silently not redirect, an MFA delete would delete
//! without the second factor. A client told
//! "not implemented" can choose another store or drop the option; one
//! told "200 OK" cannot know. Each entry leaves this list when its feature
//! lands.

use super::error::S3Error;
use super::request::S3Request;

/// A header Shoal refuses, the feature it asks for, and which values ask
/// for it (`None`: any value).
struct Unimplemented {
    header: &'static str,
    feature: &'static str,
    /// Values (ASCII case-insensitive) that ask for nothing and pass.
    harmless: &'static [&'static str],
}

const UNIMPLEMENTED: [Unimplemented; 4] = [
    Unimplemented {
        header: "x-amz-website-redirect-location",
        feature: "website redirects",
        harmless: &[],
    },
    Unimplemented {
        header: "x-amz-storage-class",
        feature: "storage classes other than STANDARD",
        harmless: &["STANDARD"],
    },
    Unimplemented {
        header: "x-amz-write-offset-bytes",
        feature: "appending to objects",
        harmless: &[],
    },
    Unimplemented {
        header: "x-amz-mfa",
        feature: "MFA delete",
        harmless: &[],
    },
];

/// Refuses the request if it carries a header from the list with a value
/// that asks for the feature.
pub fn refuse_unimplemented_headers(request: &S3Request) -> Result<(), S3Error> {
    let headers = request.headers();
    for entry in &UNIMPLEMENTED {
        for value in headers.get_all(entry.header) {
            let value = value.to_str().unwrap_or("?").trim();
            if !entry.harmless.iter().any(|h| h.eq_ignore_ascii_case(value)) {
                return Err(S3Error::HeaderNotImplemented {
                    header: entry.header,
                    feature: entry.feature,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_is_lower_case_and_listed_once() {
        let mut seen = std::collections::BTreeSet::new();
        for entry in &UNIMPLEMENTED {
            assert_eq!(entry.header, entry.header.to_ascii_lowercase());
            assert!(seen.insert(entry.header), "{} listed twice", entry.header);
        }
    }
}
