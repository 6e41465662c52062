//! TLS towards the nodes: the CA that signed their certificates and, optionally, this client's
//! own certificate (a node with `tls_client_ca` maps it to a principal, like a bearer token).
//! Endpoints are `https://` with TLS, `http://` without; the two are never mixed.

use std::path::Path;

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// A TLS handshake that takes longer than this fails the attempt (it is retried like a
/// connection failure).
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Largest PEM file read.
const PEM_BYTES_MAX: u64 = 1 << 20;

/// TLS settings of a client. `Debug` never shows the private key.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// PEM of the CA (or CAs) the nodes' certificates must chain to.
    pub ca_pem: Vec<u8>,
    /// PEM certificate and private key presented to the nodes, if any.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca_pem_bytes", &self.ca_pem.len())
            .field("identity", &self.identity.as_ref().map(|_| "<certificate and redacted key>"))
            .finish()
    }
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if meta.len() > PEM_BYTES_MAX {
        return Err(format!("{what} {}: larger than {PEM_BYTES_MAX} bytes", path.display()));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if !String::from_utf8_lossy(&bytes).contains("-----BEGIN ") {
        return Err(format!("{what} {}: not a PEM file", path.display()));
    }
    Ok(bytes)
}

impl ClientTls {
    /// Reads the CA and, when both are given, the client certificate and key. The key must be
    /// readable by its owner only (mode 600), like every secret of the ledger.
    pub fn from_files(ca: &Path, cert: Option<&Path>, key: Option<&Path>) -> Result<ClientTls, String> {
        let ca_pem = read("TLS CA", ca)?;
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(key).map_err(|e| format!("TLS key {}: {e}", key.display()))?.permissions().mode();
                if mode & 0o077 != 0 {
                    return Err(format!(
                        "TLS key {} has mode {:o}: a private key must be readable by its owner only (chmod 600)",
                        key.display(),
                        mode & 0o777
                    ));
                }
                Some((read("TLS certificate", cert)?, read("TLS key", key)?))
            }
            (None, None) => None,
            _ => return Err("a client certificate needs both the certificate and its key".into()),
        };
        Ok(ClientTls { ca_pem, identity })
    }

    pub(crate) fn config(&self) -> ClientTlsConfig {
        let config =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem)).timeout(HANDSHAKE_TIMEOUT);
        match &self.identity {
            Some((cert, key)) => config.identity(Identity::from_pem(cert, key)),
            None => config,
        }
    }
}
