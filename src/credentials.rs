//! The node's access key pair: from flags, or generated once and kept in
//! the data directory.
//!
//! A generated pair is printed on the start that creates it (to stdout, as
//! a shell `export` line a user can paste), and never again; it lives in
//! `<data-dir>/credentials` (mode 0600) as two `name=value` lines.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;

use crate::flags::KeyPair;

const FILE_NAME: &str = "credentials";

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is malformed: it needs access_key= and secret_key= lines")]
    Malformed { path: String },
}

/// The configured pair, else the stored one, else a new one (stored, then
/// printed to stdout with the `region` clients must sign for).
pub fn load_or_create(
    data_dir: &Path,
    configured: Option<KeyPair>,
    region: &str,
) -> Result<KeyPair, CredentialsError> {
    if let Some(keys) = configured {
        return Ok(keys);
    }
    let path = data_dir.join(FILE_NAME);
    let shown = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text).ok_or(CredentialsError::Malformed { path: shown }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keys = generate();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|source| CredentialsError::Write {
                    path: shown.clone(),
                    source,
                })?;
            let text = format!(
                "access_key={}\nsecret_key={}\n",
                keys.access_key, keys.secret_key
            );
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|source| CredentialsError::Write {
                    path: shown.clone(),
                    source,
                })?;
            println!("Generated the admin user's S3 key pair (kept in {shown}); for the aws CLI:");
            println!(
                "export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_DEFAULT_REGION={region}",
                keys.access_key, keys.secret_key
            );
            Ok(keys)
        }
        Err(source) => Err(CredentialsError::Read {
            path: shown,
            source,
        }),
    }
}

fn parse(text: &str) -> Option<KeyPair> {
    let mut access_key = None;
    let mut secret_key = None;
    for line in text.lines() {
        match line.split_once('=') {
            Some(("access_key", v)) if !v.trim().is_empty() => {
                access_key = Some(v.trim().to_string())
            }
            Some(("secret_key", v)) if !v.trim().is_empty() => {
                secret_key = Some(v.trim().to_string())
            }
            _ => {}
        }
    }
    Some(KeyPair {
        access_key: access_key?,
        secret_key: secret_key?,
    })
}

fn generate() -> KeyPair {
    let mut rng = rand::thread_rng();
    let access_key: String = (0..20)
        .map(|_| {
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            alphabet[rng.gen_range(0..alphabet.len())] as char
        })
        .collect();
    KeyPair {
        access_key,
        secret_key: Alphanumeric.sample_string(&mut rng, 40),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), None, "us-east-1").unwrap();
        assert_eq!(first.access_key.len(), 20);
        assert_eq!(first.secret_key.len(), 40);
        let again = load_or_create(dir.path(), None, "us-east-1").unwrap();
        assert_eq!(first.access_key, again.access_key);
        assert_eq!(first.secret_key, again.secret_key);
    }

    #[test]
    fn malformed_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "access_key=x\n").unwrap();
        assert!(matches!(
            load_or_create(dir.path(), None, "us-east-1"),
            Err(CredentialsError::Malformed { .. })
        ));
    }
}
