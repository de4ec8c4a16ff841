//! Where the SSE-S3 master key comes from, strongest first:
//!
//! 1. `--sse-master-key-file`: 64 hex digits. The operator keeps it (and
//!    its backup); every node of a cluster is given the same file.
//! 2. In a cluster, derived from the cluster secret, which every member
//!    already holds: SSE-S3 works on a new cluster with nothing more to
//!    distribute. Rotating that secret then changes the key: give the
//!    nodes the derived key's file (`--sse-master-key-file`) first.
//! 3. On a node on its own, `<data-dir>/sse-master-key`, written (0600)
//!    with a random key on the first start and read on every later one.
//!
//! A key file must be readable by its owner only: the key opens every
//! SSE-S3 object.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::s3::sse::keys::{MasterKey, KEY_BYTES};

/// The generated key's file in the first data directory.
pub const FILE_NAME: &str = "sse-master-key";
/// What a cluster secret is hashed with to derive the master key.
const DERIVE_LABEL: &[u8] = b"shoal sse-s3 master key v1";

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("SSE master key file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> MasterKeyError {
    MasterKeyError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The node's master key, as the module docs say: from `key_file`
/// (`--sse-master-key-file`), else derived from `cluster_secret` (the
/// cluster secret file's bytes), else generated in `first_data_dir`.
pub fn load(
    key_file: Option<&Path>,
    first_data_dir: &Path,
    cluster_secret: Option<&[u8]>,
) -> Result<MasterKey, MasterKeyError> {
    let generated = first_data_dir.join(FILE_NAME);
    let (key, source) = match (key_file, cluster_secret) {
        (Some(path), _) => (read(path)?, path.display().to_string()),
        (None, Some(secret)) => {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.trim_ascii())
                .expect("HMAC takes any key");
            mac.update(DERIVE_LABEL);
            let key = MasterKey::new(mac.finalize().into_bytes().into());
            (key, "derived from the cluster secret".to_string())
        }
        (None, None) => match std::fs::metadata(&generated) {
            Ok(_) => (read(&generated)?, generated.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (create(&generated)?, generated.display().to_string())
            }
            Err(e) => return Err(file_error(&generated, e)),
        },
    };
    // A key file given now beside one this node generated before: the
    // objects sealed under the old one would answer 500.
    if key_file.is_some() || cluster_secret.is_some() {
        if let Ok(earlier) = read(&generated) {
            if earlier.id() != key.id() {
                tracing::warn!(
                    earlier = %generated.display(),
                    earlier_fingerprint = earlier.id(),
                    fingerprint = key.id(),
                    "this node generated another SSE-S3 master key before: SSE-S3 objects written under it cannot be read with this one"
                );
            }
        }
    }
    tracing::info!(fingerprint = key.id(), source, "SSE-S3 master key");
    Ok(key)
}

/// Reads a key file, refusing one that others may read.
fn read(path: &Path) -> Result<MasterKey, MasterKeyError> {
    let metadata = std::fs::metadata(path).map_err(|e| file_error(path, e))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(file_error(
            path,
            format!("is readable by others (mode {mode:o}); `chmod 600` it"),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    let key: [u8; KEY_BYTES] = hex::decode(text.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            file_error(
                path,
                "must hold 64 hex digits (e.g. from `openssl rand -hex 32`)",
            )
        })?;
    Ok(MasterKey::new(key))
}

/// Writes a new random key (0600, synced) and returns it.
fn create(path: &Path) -> Result<MasterKey, MasterKeyError> {
    let key: [u8; KEY_BYTES] = rand::random();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| file_error(path, e))?;
    file.write_all(format!("{}\n", hex::encode(key)).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| file_error(path, e))?;
    tracing::info!(path = %path.display(), "generated the SSE-S3 master key; back it up: SSE-S3 objects cannot be read without it");
    Ok(MasterKey::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = load(None, dir.path(), None).unwrap();
        let again = load(None, dir.path(), None).unwrap();
        assert_eq!(first.id(), again.id());
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_cluster_derives_one_key_from_its_secret() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let secret = b"a-cluster-secret-of-some-length\n";
        let on_a = load(None, a.path(), Some(secret)).unwrap();
        let on_b = load(None, b.path(), Some(&secret[..secret.len() - 1])).unwrap();
        assert_eq!(
            on_a.id(),
            on_b.id(),
            "trailing whitespace is not the secret"
        );
        let other = load(None, a.path(), Some(b"another-secret-entirely")).unwrap();
        assert_ne!(on_a.id(), other.id());
        assert!(!a.path().join(FILE_NAME).exists(), "nothing written");
    }

    #[test]
    fn a_key_file_must_be_private_and_well_formed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, format!("{}\n", "ab".repeat(32))).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = load(Some(&path), dir.path(), None).unwrap_err();
        assert!(refused.to_string().contains("chmod 600"), "{refused}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let key = load(Some(&path), dir.path(), Some(b"ignored-secret-0123")).unwrap();
        assert_eq!(
            key.id(),
            MasterKey::new([0xab; KEY_BYTES]).id(),
            "the file wins"
        );
        std::fs::write(&path, "not hex").unwrap();
        let malformed = load(Some(&path), dir.path(), None).unwrap_err();
        assert!(
            malformed.to_string().contains("64 hex digits"),
            "{malformed}"
        );
    }
}
