//! Users and their access keys, as the node manages them: the records
//! live in the metadata shard's raft group (see `shoal_shard::directory`
//! for how every core sees them); this module creates them from the
//! credentials file and the admin endpoint.
//!
//! Secrets are generated here or read from the credentials file, stored
//! with the user (SigV4 verification needs them), shown once when the
//! admin endpoint creates them, and never logged.

use std::path::{Path, PathBuf};

use rand::distributions::{Alphanumeric, DistString};
use serde::Deserialize;
use shoal_proto::meta::meta_command::Op;
use shoal_proto::meta::{AccessKey, AddAccessKey, User};
use shoal_shard::directory::Directory;
use shoal_shard::raft::ApplyOutcome;

use crate::route::{Router, METADATA_SHARD};

/// The user of the `--access-key`/`--secret-key` pair (or the generated
/// one). Buckets made before users existed belong to it.
pub use shoal_shard::directory::BOOTSTRAP_USER;

/// A user the node makes sure of at start.
#[derive(Clone, Deserialize)]
pub struct SeedUser {
    pub name: String,
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for SeedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedUser")
            .field("name", &self.name)
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default)]
    user: Vec<SeedUser>,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsFileError {
    #[error("reading credentials file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("credentials file {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// Reads `--credentials-file`: `[[user]]` tables of name, access_key and
/// secret_key.
pub fn read_credentials_file(path: &Path) -> Result<Vec<SeedUser>, CredentialsFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| CredentialsFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |reason: String| CredentialsFileError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    // The parse error may quote the line, secret included: not shown.
    let file: CredentialsFile = toml::from_str(&text)
        .map_err(|e| invalid(format!("not a list of [[user]] tables ({})", e.message())))?;
    for user in &file.user {
        validate_name(&user.name).map_err(|reason| invalid(reason.to_string()))?;
        validate_key(&user.access_key, &user.secret_key)
            .map_err(|reason| invalid(format!("user {:?}: {reason}", user.name)))?;
    }
    Ok(file.user)
}

/// User names: 1–64 letters, digits, `-`, `_`, `.`, `@`.
pub fn validate_name(name: &str) -> Result<(), &'static str> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if valid {
        Ok(())
    } else {
        Err("user names are 1 to 64 letters, digits, '-', '_', '.' or '@'")
    }
}

/// Access keys: 3–128 letters and digits; secrets: 8–128 visible ASCII.
pub fn validate_key(access_key: &str, secret_key: &str) -> Result<(), &'static str> {
    if !(3..=128).contains(&access_key.len())
        || !access_key.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err("access keys are 3 to 128 letters and digits");
    }
    if !(8..=128).contains(&secret_key.len()) || !secret_key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("secret keys are 8 to 128 visible ASCII characters");
    }
    Ok(())
}

/// A new random user id (32 hex digits).
pub fn new_user_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A new key pair: a 20-character access key and a 40-character secret.
pub fn new_key() -> AccessKey {
    let mut rng = rand::thread_rng();
    AccessKey {
        access_key: Alphanumeric
            .sample_string(&mut rng, 20)
            .to_ascii_uppercase(),
        secret_key: Alphanumeric.sample_string(&mut rng, 40),
        disabled: false,
        created_unix_ms: now_unix_ms(),
    }
}

pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Proposes one metadata change and returns how it applied.
pub async fn change(router: &Router, change: Op) -> Result<ApplyOutcome, String> {
    router
        .propose(METADATA_SHARD, change)
        .await
        .map_err(|e| e.to_string())
}

/// Creates the seeded user if it is missing, or adds its key if the user
/// exists without it. A key that belongs to another user is left there,
/// with a warning.
pub async fn ensure(router: &Router, directory: &Directory, seed: &SeedUser) -> Result<(), String> {
    let key = AccessKey {
        access_key: seed.access_key.clone(),
        secret_key: seed.secret_key.clone(),
        disabled: false,
        created_unix_ms: now_unix_ms(),
    };
    if let Some(owner) = directory.key_owner(&seed.access_key) {
        if owner.user_name != seed.name {
            tracing::warn!(
                user = %seed.name,
                access_key = %seed.access_key,
                holder = %owner.user_name,
                "seeded access key belongs to another user; left there"
            );
        }
        return Ok(());
    }
    let outcome = match directory.user(&seed.name) {
        None => {
            let user = User {
                name: seed.name.clone(),
                id: new_user_id(),
                keys: vec![key],
                disabled: false,
                created_unix_ms: now_unix_ms(),
            };
            change(router, Op::CreateUser(user)).await?
        }
        Some(_) => {
            let add = AddAccessKey {
                user: seed.name.clone(),
                key: Some(key),
            };
            change(router, Op::AddAccessKey(add)).await?
        }
    };
    match outcome {
        ApplyOutcome::Applied => {
            tracing::info!(user = %seed.name, access_key = %seed.access_key, "user key seeded");
            Ok(())
        }
        other => Err(format!("seeding applied as {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_file_parses_and_validates() {
        let dir = std::env::temp_dir().join(format!("shoal-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users.toml");
        std::fs::write(
            &path,
            "[[user]]\nname = \"main\"\naccess_key = \"MAINKEY01\"\nsecret_key = \"main-secret-1\"\n\
             [[user]]\nname = \"alt\"\naccess_key = \"ALTKEY01\"\nsecret_key = \"alt-secret-1\"\n",
        )
        .unwrap();
        let users = read_credentials_file(&path).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[1].name, "alt");
        assert!(!format!("{:?}", users[0]).contains("main-secret-1"));

        std::fs::write(
            &path,
            "[[user]]\nname = \"x\"\naccess_key = \"K\"\nsecret_key = \"s\"\n",
        )
        .unwrap();
        assert!(read_credentials_file(&path).is_err());
        std::fs::write(
            &path,
            "[[user]]\nname = \"x\"\nsecret = \"leaked-secret\"\n",
        )
        .unwrap();
        let err = read_credentials_file(&path).unwrap_err().to_string();
        assert!(!err.contains("leaked-secret"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_and_keys() {
        assert!(validate_name("tenant.user@1").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a b").is_err());
        let key = new_key();
        assert!(validate_key(&key.access_key, &key.secret_key).is_ok());
        assert_eq!(new_user_id().len(), 32);
    }
}
