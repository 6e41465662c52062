//! Live certificate reload: the node's certificate, key and CAs are re-read on SIGHUP and
//! served from the next handshake on, on both ports, without a restart.
//!
//! tonic's own TLS takes a fixed configuration, so the servers accept TLS here instead: every
//! accepted connection is handshaken with the configuration in force at that moment
//! (`LiveServerTls`), and handed to tonic as a rustls stream (tonic reads the peer's
//! certificates from it as from its own TLS). Outgoing peer connections take the new client
//! certificate and CA too (`PeerChannels::set_tls` drops the cached channels). Connections open
//! at a reload keep the session they negotiated.

use std::sync::{Arc, RwLock};

use anyhow::{Context, anyhow};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;

use super::{HANDSHAKE_TIMEOUT, TlsMaterial};

/// TLS handshakes in progress on one port at most; connections beyond it wait to be accepted.
pub const HANDSHAKES_MAX: usize = 1_024;

/// Which port a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// Clients: a client certificate from `tls_client_ca` is asked for but optional.
    Client,
    /// Peers: a certificate from the cluster CA is required (mutual TLS).
    Peer,
}

/// A server TLS configuration that can be replaced while serving.
pub struct LiveServerTls {
    port: Port,
    config: RwLock<Arc<ServerConfig>>,
}

impl LiveServerTls {
    pub fn new(material: &TlsMaterial, port: Port) -> anyhow::Result<Arc<LiveServerTls>> {
        Ok(Arc::new(LiveServerTls { port, config: RwLock::new(Arc::new(server_config(material, port)?)) }))
    }

    /// Serves `material` from the next handshake on.
    pub fn replace(&self, material: &TlsMaterial) -> anyhow::Result<()> {
        let config = Arc::new(server_config(material, self.port)?);
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
        Ok(())
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// The rustls configuration of `port` from the node's files: what tonic would build from
/// `TlsMaterial::client_server` / `peer_server`, HTTP/2 by ALPN.
pub fn server_config(material: &TlsMaterial, port: Port) -> anyhow::Result<ServerConfig> {
    let builder = ServerConfig::builder();
    let roots = |pem: &[u8]| -> anyhow::Result<Arc<RootCertStore>> {
        let mut roots = RootCertStore::empty();
        for der in certificate_ders(pem)? {
            roots.add(der).context("a CA certificate")?;
        }
        Ok(Arc::new(roots))
    };
    let builder = match (port, &material.client_ca_pem) {
        (Port::Peer, _) => builder.with_client_cert_verifier(WebPkiClientVerifier::builder(roots(&material.ca_pem)?).build()?),
        (Port::Client, Some(ca)) => {
            builder.with_client_cert_verifier(WebPkiClientVerifier::builder(roots(ca)?).allow_unauthenticated().build()?)
        }
        (Port::Client, None) => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certificate_ders(&material.cert_pem)?, private_key(&material.key_pem)?)
        .context("the certificate and key")?;
    config.alpn_protocols.push(b"h2".to_vec());
    Ok(config)
}

fn certificate_ders(pem_bytes: &[u8]) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let blocks = pem::parse_many(pem_bytes).map_err(|e| anyhow!("not valid PEM: {e}"))?;
    Ok(blocks.into_iter().filter(|b| b.tag() == "CERTIFICATE").map(|b| CertificateDer::from(b.into_contents())).collect())
}

fn private_key(pem_bytes: &[u8]) -> anyhow::Result<PrivateKeyDer<'static>> {
    let blocks = pem::parse_many(pem_bytes).map_err(|e| anyhow!("not valid PEM: {e}"))?;
    for block in blocks {
        let key = match block.tag() {
            "PRIVATE KEY" => PrivateKeyDer::from(PrivatePkcs8KeyDer::from(block.into_contents())),
            "RSA PRIVATE KEY" => PrivateKeyDer::from(PrivatePkcs1KeyDer::from(block.into_contents())),
            "EC PRIVATE KEY" => PrivateKeyDer::from(PrivateSec1KeyDer::from(block.into_contents())),
            _ => continue,
        };
        return Ok(key);
    }
    Err(anyhow!("no PRIVATE KEY block"))
}

/// The TLS connections of `listener`, each handshaken with the configuration in force when it
/// was accepted; at most `HANDSHAKES_MAX` handshakes at once, each cut off after
/// `HANDSHAKE_TIMEOUT`. A failed handshake is logged and dropped; the port goes on serving.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<LiveServerTls>,
) -> tokio_stream::wrappers::ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (tx, rx) = mpsc::channel(64);
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES_MAX));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = handshakes.clone().acquire_owned().await else { return };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            let tcp = match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Small responses must not wait out delayed ACKs (~40 ms per read).
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (tls.acceptor(), tx.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let remote = tcp.peer_addr().ok();
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(?remote, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(?remote, "TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
