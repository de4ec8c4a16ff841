//! Put/Get/DeleteBucketEncryption: the bucket's default encryption, which
//! every object written without encryption headers gets (SSE-S3; SSE-KMS
//! is not implemented). Kept in the bucket's record on the metadata shard.

use std::rc::Rc;

use http::{Response, StatusCode};
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{BucketEncryption, PutBucketEncryption};

use super::put_bucket_setting;
use crate::limits::ENCRYPTION_BODY_BYTES_MAX;
use crate::s3::auth::PayloadMode;
use crate::s3::error::S3Error;
use crate::s3::request::S3Request;
use crate::s3::sse::AES256;
use crate::s3::xml::{self, XmlEvent, XmlWriter};
use crate::s3::{xml_response, Body, S3Context};

const ROOT: &[u8] = b"ServerSideEncryptionConfiguration";

pub fn get_bucket_encryption(ctx: &Rc<S3Context>, bucket: &str) -> Result<Response<Body>, S3Error> {
    let encryption = ctx.read_existing_bucket(bucket, |record| record.encryption.clone())?;
    let encryption = encryption.ok_or_else(|| S3Error::NoSuchEncryptionConfiguration {
        bucket: bucket.to_string(),
    })?;
    Ok(xml_response(
        StatusCode::OK,
        write_configuration(&encryption),
    ))
}

/// PutBucketEncryption, and DeleteBucketEncryption (`delete`).
pub async fn put_bucket_encryption(
    ctx: &Rc<S3Context>,
    bucket: &str,
    request: S3Request,
    payload: PayloadMode,
    delete: bool,
) -> Result<Response<Body>, S3Error> {
    let limits = (ENCRYPTION_BODY_BYTES_MAX, false);
    let sent = (request, payload);
    put_bucket_setting(
        ctx,
        bucket,
        sent,
        delete,
        limits,
        parse_configuration,
        |encryption| {
            Ok(Op::PutBucketEncryption(PutBucketEncryption {
                bucket: bucket.to_string(),
                encryption,
            }))
        },
    )
    .await
}

/// One `<Rule>`'s default: SSE-S3, optionally with a bucket key (which
/// SSE-S3 has no use for, kept to be returned as sent).
fn parse_configuration(body: &[u8]) -> Result<BucketEncryption, S3Error> {
    let rule: &[&[u8]] = &[ROOT, b"Rule"];
    let mut rules = 0;
    let mut algorithm = None;
    let mut kms_key = false;
    let mut bucket_key_enabled = false;
    xml::walk(body, ROOT, |event| {
        match event {
            XmlEvent::Open(path) if xml::path_is(path, rule) => rules += 1,
            XmlEvent::Text(path, text)
                if xml::path_is(
                    path,
                    &[
                        ROOT,
                        b"Rule",
                        b"ApplyServerSideEncryptionByDefault",
                        b"SSEAlgorithm",
                    ],
                ) =>
            {
                algorithm = Some(text.trim().to_string())
            }
            XmlEvent::Text(path, _)
                if xml::path_is(
                    path,
                    &[
                        ROOT,
                        b"Rule",
                        b"ApplyServerSideEncryptionByDefault",
                        b"KMSMasterKeyID",
                    ],
                ) =>
            {
                kms_key = true
            }
            XmlEvent::Text(path, text)
                if xml::path_is(path, &[ROOT, b"Rule", b"BucketKeyEnabled"]) =>
            {
                bucket_key_enabled = match text.trim() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(xml::MalformedXml),
                }
            }
            _ => {}
        }
        Ok(())
    })
    .map_err(|_| S3Error::MalformedXml)?;
    if rules != 1 {
        return Err(S3Error::MalformedXml);
    }
    match algorithm.as_deref() {
        Some(AES256) if kms_key => Err(S3Error::InvalidArgument {
            message: "A KMS master key id does not apply to AES256 encryption.".into(),
        }),
        Some(AES256) => Ok(BucketEncryption {
            sse_algorithm: AES256.to_string(),
            bucket_key_enabled,
        }),
        Some("aws:kms" | "aws:kms:dsse") => Err(S3Error::NotImplemented {
            what: "SSE-KMS default encryption (Shoal holds no KMS keys; use AES256)",
        }),
        _ => Err(S3Error::MalformedXml),
    }
}

fn write_configuration(encryption: &BucketEncryption) -> String {
    let mut out = XmlWriter::new();
    out.open_root("ServerSideEncryptionConfiguration");
    out.open("Rule");
    out.open("ApplyServerSideEncryptionByDefault");
    out.leaf("SSEAlgorithm", &encryption.sse_algorithm);
    out.close("ApplyServerSideEncryptionByDefault");
    out.leaf(
        "BucketKeyEnabled",
        if encryption.bucket_key_enabled {
            "true"
        } else {
            "false"
        },
    );
    out.close("Rule");
    out.close("ServerSideEncryptionConfiguration");
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(algorithm: &str, extra: &str) -> String {
        format!(
            "<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>\
             <SSEAlgorithm>{algorithm}</SSEAlgorithm>{extra}</ApplyServerSideEncryptionByDefault>\
             </Rule></ServerSideEncryptionConfiguration>"
        )
    }

    #[test]
    fn aes256_is_taken_and_written_back() {
        let parsed = parse_configuration(document("AES256", "").as_bytes()).unwrap();
        assert_eq!(parsed.sse_algorithm, "AES256");
        let written = write_configuration(&parsed);
        assert!(
            written.contains("<SSEAlgorithm>AES256</SSEAlgorithm>"),
            "{written}"
        );
        assert_eq!(parse_configuration(written.as_bytes()).unwrap(), parsed);
    }

    #[test]
    fn kms_and_malformed_documents_are_refused() {
        let kms = parse_configuration(document("aws:kms", "").as_bytes()).unwrap_err();
        assert_eq!(kms.code(), "NotImplemented");
        let mixed = document("AES256", "<KMSMasterKeyID>k</KMSMasterKeyID>");
        assert_eq!(
            parse_configuration(mixed.as_bytes()).unwrap_err().code(),
            "InvalidArgument"
        );
        for bad in [
            document("AES128", ""),
            "<ServerSideEncryptionConfiguration/>".to_string(),
            "<Other/>".to_string(),
        ] {
            assert_eq!(
                parse_configuration(bad.as_bytes()).unwrap_err().code(),
                "MalformedXML"
            );
        }
    }
}
