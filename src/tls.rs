//! TLS on the S3 port: the certificate and key from `--tls-cert` and
//! `--tls-key`, read at start and again on every SIGHUP, so a renewed
//! certificate (certbot, an internal CA) takes effect without a restart.
//!
//! A reload that fails (a file missing, half-written or not matching its
//! key) keeps the configuration that works and says why in the log;
//! connections already open keep the session they have. Each new
//! connection takes the configuration current at its accept.
//!
//! SIGHUP is always handled: with no TLS configured it is logged and
//! otherwise ignored, so `systemctl reload` never ends the node (the
//! default action of SIGHUP would).

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use shoal_shard::tls::{CertifiedKey, TlsError};

/// The S3 port's certificate files.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The configuration new S3 connections are served with.
pub struct S3Tls {
    files: TlsFiles,
    current: ArcSwap<ServerConfig>,
}

impl std::fmt::Debug for S3Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Tls").field("files", &self.files).finish()
    }
}

impl S3Tls {
    /// Reads the files; an error stops the start.
    pub fn load(files: TlsFiles) -> Result<Arc<S3Tls>, TlsError> {
        let config = CertifiedKey::load(&files.cert, &files.key)?.server_config()?;
        Ok(Arc::new(S3Tls {
            files,
            current: ArcSwap::from_pointee(config),
        }))
    }

    /// What a connection accepted now is served with.
    pub fn acceptor(&self) -> futures_rustls::TlsAcceptor {
        futures_rustls::TlsAcceptor::from(self.current.load_full())
    }

    /// Reads the files again; keeps the current configuration if they
    /// do not make a valid one.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = CertifiedKey::load(&self.files.cert, &self.files.key)?.server_config()?;
        self.current.store(Arc::new(config));
        Ok(())
    }
}

/// Starts the thread that answers SIGHUP by reloading `tls` (when the S3
/// port has TLS).
pub fn reload_on_sighup(tls: Option<Arc<S3Tls>>) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    std::thread::Builder::new()
        .name("shoal-sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                let Some(tls) = &tls else {
                    tracing::info!("SIGHUP: no TLS certificate to reload (--tls-cert is not set)");
                    continue;
                };
                match tls.reload() {
                    Ok(()) => tracing::info!(
                        cert = %tls.files.cert.display(),
                        "SIGHUP: reloaded the TLS certificate and key; new connections use them"
                    ),
                    Err(e) => tracing::error!(
                        error = %e,
                        "SIGHUP: the TLS certificate or key cannot be used; still serving the previous one"
                    ),
                }
            }
        })?;
    Ok(())
}
