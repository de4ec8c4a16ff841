//! TLS material from PEM files, for the S3 port (the node) and the peer
//! ports (here): a certificate chain with its private key, and the CA a
//! cluster's peer certificates are checked against.
//!
//! Peer links use mutual TLS under the cluster's own CA: a node accepts
//! only peers whose certificate that CA signed, and checks that a peer's
//! certificate names the IP address it dialled (peer addresses are IPs).
//! The cluster secret's handshake still runs inside the TLS session, so a
//! certificate alone opens nothing.
//!
//! rustls runs on the `ring` provider, the only one built in.

mod stream;

pub use stream::TcpOrTls;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{what}: {reason}")]
    Config { what: &'static str, reason: String },
}

/// A certificate chain (leaf first) and its private key.
pub struct CertifiedKey {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl CertifiedKey {
    /// Reads both PEM files; the key may be PKCS#8, PKCS#1 or SEC1.
    pub fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| file_error(cert, e))?;
        if chain.is_empty() {
            return Err(TlsError::File {
                path: cert.to_path_buf(),
                reason: "holds no PEM certificate".into(),
            });
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
        Ok(CertifiedKey { chain, key })
    }

    /// A server configuration that presents this certificate and asks
    /// clients for none (the S3 port: clients prove themselves by SigV4).
    pub fn server_config(self) -> Result<ServerConfig, TlsError> {
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(self.chain, self.key)
            .map_err(|e| TlsError::Config {
                what: "certificate and key",
                reason: e.to_string(),
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// The peer ports' TLS: both directions, under the cluster's CA.
pub struct PeerTls {
    pub server: Arc<ServerConfig>,
    pub client: Arc<ClientConfig>,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls(..)")
    }
}

impl PeerTls {
    /// This node's certificate and key, and the CA every peer's
    /// certificate must chain to.
    pub fn load(cert: &Path, key: &Path, ca: &Path) -> Result<PeerTls, TlsError> {
        let mut roots = RootCertStore::empty();
        let cas = CertificateDer::pem_file_iter(ca)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| file_error(ca, e))?;
        let (added, _ignored) = roots.add_parsable_certificates(cas);
        if added == 0 {
            return Err(TlsError::File {
                path: ca.to_path_buf(),
                reason: "holds no usable CA certificate".into(),
            });
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder(Arc::clone(&roots))
            .build()
            .map_err(|e| TlsError::Config {
                what: "peer CA",
                reason: e.to_string(),
            })?;
        let own = CertifiedKey::load(cert, key)?;
        let server = ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(own.chain.clone(), own.key.clone_key())
            .map_err(|e| TlsError::Config {
                what: "peer certificate and key",
                reason: e.to_string(),
            })?;
        let client = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_client_auth_cert(own.chain, own.key)
            .map_err(|e| TlsError::Config {
                what: "peer certificate and key",
                reason: e.to_string(),
            })?;
        Ok(PeerTls {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }
}

fn file_error(path: &Path, error: rustls_pki_types::pem::Error) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}
