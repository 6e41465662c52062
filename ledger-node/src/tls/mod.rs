//! Transport security: TLS on the client port, mutual TLS on the peer port, and the identity a
//! node's certificate carries.
//!
//! - Every node has one certificate (`tls_cert`, key `tls_key`) signed by the cluster CA
//!   (`tls_ca`). It serves both ports and is the client certificate the node presents to its
//!   peers. It names the node with a URI SAN `ledger://<cluster_name>/node/<node_id>`
//!   ([`node_uri`]), and the hosts clients and peers dial with DNS or IP SANs.
//! - The peer port requires a client certificate from the cluster CA; the peer service then
//!   reads the node id from it ([`node_id_in`]) and refuses Raft messages from a node that is not
//!   in the membership (raft/peer_service.rs).
//! - The client port accepts a client certificate from `tls_client_ca` when one is configured
//!   (optional: bearer tokens work as well); the tokens file maps certificate names
//!   ([`names_in`]) to principals (api/auth.rs).
//! - The key must be readable by its owner only; it is never logged (`TlsMaterial`'s `Debug`
//!   hides it) and never sent anywhere.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use self::x509::AltName;

use crate::raft::NodeId;

pub mod reload;
pub mod x509;

/// A TLS handshake that takes longer than this is dropped (a client that opens connections and
/// never finishes them must not hold server resources).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest PEM file read (certificates, keys, CA bundles).
pub const PEM_BYTES_MAX: u64 = 1 << 20;
/// Names taken from one client certificate at most (CN and SANs).
pub const CERT_NAMES_MAX: usize = 64;

/// The TLS files of a node (config keys `tls_cert`, `tls_key`, `tls_ca`, `tls_client_ca`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The cluster CA: every node's certificate is signed by it.
    pub ca: PathBuf,
    /// CA of client certificates; `None`: clients authenticate with bearer tokens only.
    pub client_ca: Option<PathBuf>,
}

/// The loaded and checked TLS files.
#[derive(Clone)]
pub struct TlsMaterial {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    ca_pem: Vec<u8>,
    client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").field("key", &"<redacted>").finish_non_exhaustive()
    }
}

/// The URI SAN that names node `node_id` of `cluster_name` in its certificate.
pub fn node_uri(cluster_name: &str, node_id: NodeId) -> String {
    format!("ledger://{cluster_name}/node/{node_id}")
}

fn read_pem(what: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("{what} {}: cannot read it", path.display()))?;
    if meta.len() > PEM_BYTES_MAX {
        bail!("{what} {}: {} bytes, at most {PEM_BYTES_MAX}", path.display(), meta.len());
    }
    std::fs::read(path).with_context(|| format!("{what} {}: cannot read it", path.display()))
}

/// The PEM blocks of a file.
fn blocks(what: &str, path: &Path, pem_bytes: &[u8]) -> anyhow::Result<Vec<pem::Pem>> {
    pem::parse_many(pem_bytes).map_err(|e| anyhow::anyhow!("{what} {}: not valid PEM: {e}", path.display()))
}

/// The DER of every `CERTIFICATE` block of a PEM file; each must parse as a certificate.
fn certificates(what: &str, path: &Path, pem_bytes: &[u8]) -> anyhow::Result<Vec<Vec<u8>>> {
    let ders: Vec<Vec<u8>> =
        blocks(what, path, pem_bytes)?.into_iter().filter(|b| b.tag() == "CERTIFICATE").map(|b| b.into_contents()).collect();
    if ders.is_empty() {
        bail!("{what} {}: no CERTIFICATE block in it", path.display());
    }
    for der in &ders {
        x509::alt_names(der).map_err(|e| anyhow::anyhow!("{what} {}: not an X.509 certificate: {e}", path.display()))?;
    }
    Ok(ders)
}

/// Reads and checks the TLS files of node `node_id`: each readable PEM of the right kind, the key
/// private to its owner (mode 600) and matching the certificate, and the certificate naming this
/// node (`node_uri`). Every refusal says which file and why. (The chain to the cluster CA and the
/// validity period are checked by rustls at every handshake, on both sides.)
pub fn load(paths: &TlsPaths, node_id: NodeId, cluster_name: &str) -> anyhow::Result<TlsMaterial> {
    let cert_pem = read_pem("tls_cert", &paths.cert)?;
    crate::api::auth::check_private(&paths.key).context("tls_key")?;
    let key_pem = read_pem("tls_key", &paths.key)?;
    let ca_pem = read_pem("tls_ca", &paths.ca)?;
    let client_ca_pem = paths.client_ca.as_ref().map(|p| read_pem("tls_client_ca", p)).transpose()?;

    let cert_ders = certificates("tls_cert", &paths.cert, &cert_pem)?;
    certificates("tls_ca", &paths.ca, &ca_pem)?;
    if let (Some(path), Some(pem)) = (&paths.client_ca, &client_ca_pem) {
        certificates("tls_client_ca", path, pem)?;
    }
    if !blocks("tls_key", &paths.key, &key_pem)?.iter().any(|b| b.tag().ends_with("PRIVATE KEY")) {
        bail!("tls_key {}: no PRIVATE KEY block in it", paths.key.display());
    }
    let expected = node_uri(cluster_name, node_id);
    let uris = uri_sans(&cert_ders[0]);
    if !uris.contains(&expected) {
        bail!(
            "tls_cert {} does not name this node: it needs the URI SAN {expected} (`ledger-node certs` makes such \
             certificates); its URI SANs are {uris:?}",
            paths.cert.display()
        );
    }
    let material = TlsMaterial { cert_pem, key_pem, ca_pem, client_ca_pem };
    // rustls refuses a key it cannot parse or one that does not match the certificate.
    tonic::transport::Server::builder().tls_config(material.peer_server()).map_err(|e| {
        anyhow::anyhow!(
            "tls_key {} cannot be used with tls_cert {}: {}",
            paths.key.display(),
            paths.cert.display(),
            error_chain(&e)
        )
    })?;
    Ok(material)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl TlsMaterial {
    fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, &self.key_pem)
    }

    /// The client port: the node's certificate; a client certificate from `tls_client_ca` is
    /// asked for but optional (bearer tokens authenticate too).
    pub fn client_server(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(self.identity()).timeout(HANDSHAKE_TIMEOUT);
        match &self.client_ca_pem {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)).client_auth_optional(true),
            None => config,
        }
    }

    /// The peer port: mutual TLS, the peer's certificate must chain to the cluster CA.
    pub fn peer_server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity())
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
            .timeout(HANDSHAKE_TIMEOUT)
    }

    /// A follower forwarding a client's write to the leader's client port (`api::forward`):
    /// verify the leader against the cluster CA; no client certificate (the caller's bearer
    /// token authenticates the call, never the follower's identity).
    pub fn forward_client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem)).timeout(HANDSHAKE_TIMEOUT)
    }

    /// Outgoing peer connections: verify the peer against the cluster CA (and the host it is
    /// dialled at), present this node's certificate.
    pub fn peer_client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(self.identity())
            .timeout(HANDSHAKE_TIMEOUT)
    }
}

fn uri_sans(der: &[u8]) -> Vec<String> {
    x509::alt_names(der)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| match n {
            AltName::Uri(uri) => Some(uri),
            _ => None,
        })
        .collect()
}

/// The node id a peer's certificate (DER) names in `cluster_name`, or why it names none.
pub fn node_id_in(der: &[u8], cluster_name: &str) -> Result<NodeId, String> {
    let prefix = format!("ledger://{cluster_name}/node/");
    let uris = uri_sans(der);
    let ids: Vec<NodeId> = uris.iter().filter_map(|u| u.strip_prefix(&prefix)).filter_map(|id| id.parse().ok()).collect();
    match ids.as_slice() {
        [id] if *id > 0 => Ok(*id),
        [] | [_] => Err(format!("the certificate names no node of cluster {cluster_name:?} (URI SANs {uris:?})")),
        _ => Err(format!("the certificate names several nodes ({ids:?}): refused")),
    }
}

/// The names a client certificate (DER) carries: its subject's common names, then its DNS, URI
/// and e-mail SANs (at most `CERT_NAMES_MAX`). Empty if it cannot be parsed.
pub fn names_in(der: &[u8]) -> Vec<String> {
    let mut names = x509::subject_common_names(der).unwrap_or_default();
    names.extend(x509::alt_names(der).unwrap_or_default().into_iter().map(|n| match n {
        AltName::Dns(s) | AltName::Uri(s) | AltName::Email(s) => s,
    }));
    names.truncate(CERT_NAMES_MAX);
    names
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::certs::{self, Request};

    fn issue(dir: &Path, cluster: &str) -> PathBuf {
        let requests = vec![
            Request::Node { id: 1, hosts: vec!["127.0.0.1".into(), "localhost".into()] },
            Request::Node { id: 2, hosts: vec!["127.0.0.1".into()] },
            Request::Client { name: "checkout".into() },
        ];
        certs::generate(dir, cluster, &requests).unwrap();
        dir.to_path_buf()
    }

    fn paths(dir: &Path, node: &str) -> TlsPaths {
        TlsPaths {
            cert: dir.join(format!("{node}.pem")),
            key: dir.join(format!("{node}-key.pem")),
            ca: dir.join("ca.pem"),
            client_ca: Some(dir.join("ca.pem")),
        }
    }

    #[test]
    fn generated_certificates_load_and_name_their_node() {
        let dir = tempfile::tempdir().unwrap();
        issue(dir.path(), "ledger");
        let material = load(&paths(dir.path(), "node-1"), 1, "ledger").unwrap();
        assert!(!format!("{material:?}").contains("PRIVATE"), "the key is never printed");
        let der = &certificates("t", dir.path(), &material.cert_pem).unwrap()[0];
        assert_eq!(node_id_in(der, "ledger"), Ok(1));
        assert!(node_id_in(der, "other").unwrap_err().contains("names no node"));
        let client = std::fs::read(dir.path().join("client-checkout.pem")).unwrap();
        let client_der = &certificates("t", dir.path(), &client).unwrap()[0];
        assert_eq!(names_in(client_der), vec!["checkout".to_string()]);
        assert!(node_id_in(client_der, "ledger").is_err(), "a client certificate names no node");
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        issue(dir.path(), "ledger");
        let refuse = |p: &TlsPaths, id: NodeId, cluster: &str| format!("{:#}", load(p, id, cluster).unwrap_err());

        let err = refuse(&paths(dir.path(), "node-1"), 2, "ledger");
        assert!(err.contains("does not name this node") && err.contains("ledger://ledger/node/2"), "{err}");
        let err = refuse(&paths(dir.path(), "node-1"), 1, "payments");
        assert!(err.contains("does not name this node"), "{err}");

        let mut missing = paths(dir.path(), "node-1");
        missing.cert = dir.path().join("absent.pem");
        assert!(refuse(&missing, 1, "ledger").contains("tls_cert") && refuse(&missing, 1, "ledger").contains("absent.pem"));

        let key = dir.path().join("node-1-key.pem");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = refuse(&paths(dir.path(), "node-1"), 1, "ledger");
        assert!(err.contains("tls_key") && err.contains("chmod 600") && err.contains("644"), "{err}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

        // Node 2's key with node 1's certificate.
        let mut mismatch = paths(dir.path(), "node-1");
        mismatch.key = dir.path().join("node-2-key.pem");
        let err = refuse(&mismatch, 1, "ledger");
        assert!(err.contains("cannot be used with tls_cert"), "{err}");

        let mut not_pem = paths(dir.path(), "node-1");
        not_pem.ca = key.clone();
        let err = refuse(&not_pem, 1, "ledger");
        assert!(err.contains("tls_ca") && err.contains("no CERTIFICATE"), "{err}");
    }
}
