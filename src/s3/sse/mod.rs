//! Server-side encryption: SSE-S3 (`x-amz-server-side-encryption:
//! AES256`, or the bucket's default) and SSE-C (the client's own key on
//! every request).
//!
//! Each object (or multipart upload) gets a random data key. Its bytes are
//! encrypted chunk by chunk *after* they are hashed for the ETag and the
//! client's checksums, and *before* the chunk's address is taken: chunks
//! are addressed, deduplicated, replicated, scrubbed and collected as
//! ciphertext like any other ([`cipher`]). The data key is stored only
//! sealed ([`keys`]): under the node master key for SSE-S3, under the
//! client's key for SSE-C, of which only a salted HMAC digest is kept to
//! recognise it. SSE-KMS is refused (501): Shoal holds no KMS keys.

pub mod cipher;
pub mod keys;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http::HeaderMap;
use shoal_proto::meta::{BucketEncryption, EncryptionMode, ObjectEncryption};

use super::error::S3Error;
use super::S3Context;
use keys::{CustomerKey, DataKey, KEY_BYTES};

/// The one algorithm of SSE-S3 and SSE-C.
pub const AES256: &str = "AES256";

/// Where a request names the key of the object it writes or reads, and
/// where a copy names its source's.
pub const CUSTOMER_KEY_PREFIX: &str = "x-amz-server-side-encryption-customer-";
pub const COPY_SOURCE_KEY_PREFIX: &str = "x-amz-copy-source-server-side-encryption-customer-";

/// What a write asks for.
#[derive(Debug)]
pub enum Requested {
    /// Nothing: the bucket's default applies.
    Nothing,
    SseS3,
    SseC(CustomerKey),
}

/// The encryption a write asks for with its headers (or a browser form's
/// fields): `field(name)` looks one up by lower-case name. Conflicting or
/// malformed asks are refused; SSE-KMS is not implemented.
pub fn requested(
    ctx: &S3Context,
    field: &dyn Fn(&str) -> Option<String>,
) -> Result<Requested, S3Error> {
    let customer = customer_key(ctx, field, CUSTOMER_KEY_PREFIX)?;
    let algorithm = field("x-amz-server-side-encryption");
    let kms_named = field("x-amz-server-side-encryption-aws-kms-key-id").is_some()
        || field("x-amz-server-side-encryption-context").is_some();
    let conflict = |message: &str| S3Error::InvalidArgument {
        message: message.to_string(),
    };
    if algorithm.is_none() && kms_named {
        return Err(conflict(
            "A KMS key id or context needs x-amz-server-side-encryption: aws:kms.",
        ));
    }
    match (algorithm.as_deref().map(str::trim), customer) {
        (Some(_), Some(_)) => Err(conflict(
            "Server Side Encryption with a customer-provided key cannot be combined with another encryption method.",
        )),
        (None, Some(customer)) => Ok(Requested::SseC(customer)),
        (None, None) => Ok(Requested::Nothing),
        (Some(AES256), None) if kms_named => Err(conflict(
            "A KMS key id or context does not apply to AES256 encryption.",
        )),
        (Some(AES256), None) => Ok(Requested::SseS3),
        (Some("aws:kms" | "aws:kms:dsse"), None) => Err(S3Error::HeaderNotImplemented {
            header: "x-amz-server-side-encryption",
            feature: "SSE-KMS (Shoal holds no KMS keys; use AES256, keys held by the node, or SSE-C, your own key)",
        }),
        (Some(_), None) => Err(conflict(
            "The encryption method specified is not supported; Shoal serves AES256.",
        )),
    }
}

/// The SSE-C key a request presents under `prefix` (its object's, or its
/// copy source's), checked against the MD5 sent with it. SSE-C sends the
/// key itself, so a node without TLS takes it only when the operator said
/// the network is trusted (`--sse-c-over-http`).
pub fn customer_key(
    ctx: &S3Context,
    field: &dyn Fn(&str) -> Option<String>,
    prefix: &str,
) -> Result<Option<CustomerKey>, S3Error> {
    let algorithm = field(&format!("{prefix}algorithm"));
    let key = field(&format!("{prefix}key"));
    let md5 = field(&format!("{prefix}key-md5"));
    if algorithm.is_none() && key.is_none() && md5.is_none() {
        return Ok(None);
    }
    let invalid = |message: &str| S3Error::InvalidArgument {
        message: message.to_string(),
    };
    let Some(algorithm) = algorithm else {
        return Err(invalid(
            "Requests with a customer-provided key must name its algorithm (AES256).",
        ));
    };
    if algorithm.trim() != AES256 {
        return Err(S3Error::InvalidEncryptionAlgorithm {
            message: "The encryption algorithm specified is not valid; the valid value is AES256."
                .into(),
        });
    }
    let key =
        key.ok_or_else(|| invalid("Requests with a customer key algorithm must send the key."))?;
    let md5 = md5
        .ok_or_else(|| invalid("Requests with a customer-provided key must send the key's MD5."))?;
    let key: [u8; KEY_BYTES] = BASE64
        .decode(key.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| invalid("The customer-provided key is not a base64 256-bit key."))?;
    if BASE64.encode(md5_many::md5(&key)) != md5.trim() {
        return Err(invalid(
            "The MD5 of the customer-provided key does not match the MD5 sent with it.",
        ));
    }
    if ctx.config.tls.is_none() && !ctx.config.sse_c_over_http {
        return Err(S3Error::InvalidRequest {
            message: "Customer-provided keys are taken only over HTTPS (this node has no --tls-cert; its operator may allow them with --sse-c-over-http).".into(),
        });
    }
    Ok(Some(CustomerKey::new(key, md5.trim().to_string())))
}

/// A header lookup for [`requested`] and [`customer_key`].
pub fn header_field(headers: &HeaderMap) -> impl Fn(&str) -> Option<String> + '_ {
    |name| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
}

/// An object's encryption as a request uses it: the data key, and what
/// the response says about it.
#[derive(Debug)]
pub struct ObjectKey {
    pub data_key: DataKey,
    mode: EncryptionMode,
    /// SSE-C: the MD5 of the client's key, echoed back.
    customer_md5: Option<String>,
}

impl ObjectKey {
    /// The encryption headers of a response about the object.
    pub fn insert_headers(&self, headers: &mut HeaderMap) -> Result<(), S3Error> {
        insert_headers(headers, self.mode, self.customer_md5.as_deref())
    }
}

fn header_value(text: &str) -> Result<http::HeaderValue, S3Error> {
    http::HeaderValue::from_str(text).map_err(S3Error::internal)
}

/// The encryption headers of a response about an object stored in `mode`.
pub fn insert_headers(
    headers: &mut HeaderMap,
    mode: EncryptionMode,
    customer_md5: Option<&str>,
) -> Result<(), S3Error> {
    match mode {
        EncryptionMode::None => {}
        EncryptionMode::SseS3 => {
            headers.insert("x-amz-server-side-encryption", header_value(AES256)?);
        }
        EncryptionMode::SseC => {
            headers.insert(
                "x-amz-server-side-encryption-customer-algorithm",
                header_value(AES256)?,
            );
            if let Some(md5) = customer_md5 {
                headers.insert(
                    "x-amz-server-side-encryption-customer-key-md5",
                    header_value(md5)?,
                );
            }
        }
    }
    Ok(())
}

/// Whether a copy of an object stored as `stored` (read with the SSE-C key
/// `presented`, if any) into a bucket (with a default encryption or not)
/// that asks for `requested` keeps the same protection under the same
/// key: then the copy shares the stored bytes and the sealed data key.
pub fn keeps_protection(
    stored: Option<&ObjectEncryption>,
    presented: Option<&CustomerKey>,
    requested: &Requested,
    bucket_default: bool,
) -> bool {
    let source = stored.map_or(EncryptionMode::None, ObjectEncryption::mode);
    match (source, requested) {
        (EncryptionMode::None, Requested::Nothing) => !bucket_default,
        (EncryptionMode::SseS3, Requested::SseS3) => true,
        (EncryptionMode::SseS3, Requested::Nothing) => bucket_default,
        (EncryptionMode::SseC, Requested::SseC(wanted)) => {
            presented.is_some_and(|key| key.same_as(wanted))
        }
        _ => false,
    }
}

/// The encryption of a new object or upload in `bucket`, from a request
/// whose fields `field` looks up: what it asks for, else the bucket's
/// default. Returns what to store and the key to write with; `None` when
/// the bytes are stored as sent.
pub fn for_new_object(
    ctx: &S3Context,
    bucket: &str,
    field: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(ObjectEncryption, ObjectKey)>, S3Error> {
    let requested = requested(ctx, field)?;
    let default = bucket_default(ctx, bucket)?;
    Ok(new_object_key(ctx, requested, default.as_ref()))
}

/// The bucket's default encryption, if it has one.
pub fn bucket_default(ctx: &S3Context, bucket: &str) -> Result<Option<BucketEncryption>, S3Error> {
    ctx.read_existing_bucket(bucket, |record| record.encryption.clone())
}

/// [`for_new_object`] with the request already read.
pub fn new_object_key(
    ctx: &S3Context,
    requested: Requested,
    bucket_default: Option<&BucketEncryption>,
) -> Option<(ObjectEncryption, ObjectKey)> {
    let requested = match requested {
        Requested::Nothing if bucket_default.is_some() => Requested::SseS3,
        other => other,
    };
    let data_key = DataKey::random();
    let (stored, customer_md5) = match requested {
        Requested::Nothing => return None,
        Requested::SseS3 => {
            let stored = ObjectEncryption {
                mode: EncryptionMode::SseS3.into(),
                sealed_key: ctx.master_key.seal(&data_key),
                master_key_id: ctx.master_key.id().to_string(),
                ..Default::default()
            };
            (stored, None)
        }
        Requested::SseC(customer) => {
            let salt: [u8; 16] = rand::random();
            let stored = ObjectEncryption {
                mode: EncryptionMode::SseC.into(),
                sealed_key: customer.seal(&data_key),
                key_salt: salt.to_vec(),
                key_hmac: customer.digest(&salt).to_vec(),
                ..Default::default()
            };
            (stored, Some(customer.md5_base64().to_string()))
        }
    };
    let key = ObjectKey {
        data_key,
        mode: stored.mode(),
        customer_md5,
    };
    Some((stored, key))
}

/// What a request is doing with a stored object's (or upload's) key: a
/// wrong SSE-C key is refused as S3 does for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// GET, HEAD, a copy's source: a wrong key is 403.
    Read,
    /// UploadPart, CompleteMultipartUpload: the key must be the upload's
    /// (400 otherwise).
    Upload,
}

/// The key to use a stored object (or upload) with, given the SSE-C key
/// the request presents, if any.
pub fn stored_key(
    ctx: &S3Context,
    stored: Option<&ObjectEncryption>,
    presented: Option<&CustomerKey>,
    usage: Use,
) -> Result<Option<ObjectKey>, S3Error> {
    let mode = stored.map_or(EncryptionMode::None, ObjectEncryption::mode);
    let not_applicable = || {
        S3Error::InvalidRequest {
        message: "The object is not encrypted with a customer-provided key; send no SSE-C headers to use it.".into(),
    }
    };
    match (mode, stored, presented) {
        (EncryptionMode::None, _, None) | (_, None, None) => Ok(None),
        (EncryptionMode::None | EncryptionMode::SseS3, _, Some(_)) | (_, None, Some(_)) => {
            Err(not_applicable())
        }
        (EncryptionMode::SseS3, Some(stored), None) => {
            let data_key = open_under_master(ctx, stored)?;
            Ok(Some(ObjectKey {
                data_key,
                mode,
                customer_md5: None,
            }))
        }
        (EncryptionMode::SseC, Some(_), None) => Err(S3Error::InvalidRequest {
            message: "The object was stored with a customer-provided key (SSE-C): send the same key to use it.".into(),
        }),
        (EncryptionMode::SseC, Some(stored), Some(customer)) => {
            if !customer.matches(&stored.key_salt, &stored.key_hmac) {
                let message = "The customer-provided key is not the one the object was stored with.";
                return Err(match usage {
                    Use::Read => S3Error::AccessDenied {
                        message: message.into(),
                    },
                    Use::Upload => S3Error::InvalidArgument {
                        message: message.into(),
                    },
                });
            }
            let data_key = customer.open(&stored.sealed_key).ok_or_else(|| {
                S3Error::internal("a stored SSE-C data key does not open under the key its digest matches")
            })?;
            Ok(Some(ObjectKey {
                data_key,
                mode,
                customer_md5: Some(customer.md5_base64().to_string()),
            }))
        }
    }
}

fn open_under_master(ctx: &S3Context, stored: &ObjectEncryption) -> Result<DataKey, S3Error> {
    if stored.master_key_id != ctx.master_key.id() {
        return Err(S3Error::internal(format!(
            "the object's data key is sealed under master key {}, and this node holds {}: start the node with the master key that sealed it (--sse-master-key-file; the same on every node of a cluster)",
            stored.master_key_id,
            ctx.master_key.id()
        )));
    }
    ctx.master_key.open(&stored.sealed_key).ok_or_else(|| {
        S3Error::internal("a sealed SSE-S3 data key does not open under the master key")
    })
}

/// A chunk's counter block as a ref stores it: empty for plaintext.
pub fn chunk_iv(stored: &[u8]) -> Result<Option<[u8; cipher::IV_BYTES]>, S3Error> {
    match stored.len() {
        0 => Ok(None),
        _ => stored
            .try_into()
            .map(Some)
            .map_err(|_| S3Error::internal("a chunk ref's counter block is not 16 bytes")),
    }
}

/// `bytes`, which lie `offset` bytes into a chunk (or embedded body)
/// encrypted from `iv` under `key`, as plaintext. Plaintext passes as is;
/// a chunk whose encryption disagrees with its object's is an error, never
/// bytes sent as they are.
pub fn open_bytes(
    key: Option<&DataKey>,
    iv: Option<[u8; cipher::IV_BYTES]>,
    offset: u64,
    bytes: bytes::Bytes,
) -> Result<bytes::Bytes, S3Error> {
    match (key, iv) {
        (None, None) => Ok(bytes),
        (Some(key), Some(iv)) => {
            let mut plain = bytes.to_vec();
            cipher::apply_keystream(key, &iv, offset, &mut plain);
            Ok(plain.into())
        }
        (Some(_), None) => Err(S3Error::internal(
            "an encrypted object has a chunk stored as plaintext",
        )),
        (None, Some(_)) => Err(S3Error::internal(
            "a plaintext object has an encrypted chunk",
        )),
    }
}
