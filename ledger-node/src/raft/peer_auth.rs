//! Peer authentication when peers are not on mutual TLS: a cluster secret, shared by every node
//! (`cluster_secret_file`), sent with every peer call as metadata and checked by the receiver in
//! constant time. With TLS on, peers authenticate by certificate instead (`PeerService::check_sender`).
//!
//! The secret travels in the clear: this is for plaintext clusters, which the node allows only on
//! loopback (`config::check_plaintext_on_loopback`), where it keeps out the other local processes
//! that can reach the peer port (a forged snapshot or vote needs the secret).

use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::{Request, Status};

/// Request metadata carrying the cluster secret on every peer call.
pub const SECRET_METADATA_KEY: &str = "x-ledger-cluster-secret";
/// Shortest secret accepted (`openssl rand -hex 32` gives 64).
pub const SECRET_BYTES_MIN: usize = 32;
/// Longest secret accepted.
pub const SECRET_BYTES_MAX: usize = 1_024;

/// The secret as sent (header value) and as compared (its SHA-256).
struct Loaded {
    header: MetadataValue<Ascii>,
    digest: [u8; 32],
}

/// The cluster secret of this node, reloadable while serving (SIGHUP).
pub struct ClusterSecret {
    path: std::path::PathBuf,
    loaded: RwLock<Arc<Loaded>>,
}

impl ClusterSecret {
    /// Reads the secret file: mode 600 (like every secret file), one line of visible ASCII of
    /// `SECRET_BYTES_MIN..=SECRET_BYTES_MAX` bytes (surrounding whitespace ignored).
    pub fn load(path: &Path) -> anyhow::Result<ClusterSecret> {
        Ok(ClusterSecret { path: path.to_path_buf(), loaded: RwLock::new(Arc::new(read(path)?)) })
    }

    /// A secret given as text (tests, embedding).
    pub fn from_text(text: &str) -> anyhow::Result<ClusterSecret> {
        Ok(ClusterSecret { path: Default::default(), loaded: RwLock::new(Arc::new(parse(text)?)) })
    }

    /// Re-reads the file; a bad file is refused and the secret in force stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let loaded = read(&self.path)?;
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        Ok(())
    }

    fn current(&self) -> Arc<Loaded> {
        self.loaded.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Adds the secret to an outgoing peer call.
    pub fn attach<T>(&self, request: &mut Request<T>) {
        request.metadata_mut().insert(SECRET_METADATA_KEY, self.current().header.clone());
    }

    /// Checks an incoming peer call: UNAUTHENTICATED without the secret or with another one.
    /// The presented value is hashed and the digests compared in constant time, so the time
    /// taken says nothing about how much of a guess was right.
    pub fn verify<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let presented = request
            .metadata()
            .get(SECRET_METADATA_KEY)
            .ok_or_else(|| Status::unauthenticated("peer call without the cluster secret"))?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let expected = self.current().digest;
        let differ = digest.iter().zip(expected.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differ != 0 {
            return Err(Status::unauthenticated("peer call with a wrong cluster secret"));
        }
        Ok(())
    }
}

fn read(path: &Path) -> anyhow::Result<Loaded> {
    crate::api::auth::check_private(path)?;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading cluster secret file {}", path.display()))?;
    parse(&text).with_context(|| format!("cluster secret file {}", path.display()))
}

fn parse(text: &str) -> anyhow::Result<Loaded> {
    let secret = text.trim();
    if secret.len() < SECRET_BYTES_MIN || secret.len() > SECRET_BYTES_MAX {
        bail!("the secret must be {SECRET_BYTES_MIN}..={SECRET_BYTES_MAX} bytes (`openssl rand -hex 32` makes one)");
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        bail!("the secret must be one line of visible ASCII (no spaces)");
    }
    let header = MetadataValue::try_from(secret).context("the secret is not a valid header value")?;
    Ok(Loaded { header, digest: Sha256::digest(secret.as_bytes()).into() })
}

/// Adds the cluster secret (if any) to every outgoing peer call.
#[derive(Clone, Default)]
pub struct PeerAuth(pub Option<Arc<ClusterSecret>>);

impl tonic::service::Interceptor for PeerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(secret) = &self.0 {
            secret.attach(&mut request);
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef-cluster";

    #[test]
    fn the_right_secret_passes_and_anything_else_is_unauthenticated() {
        let secret = ClusterSecret::from_text(SECRET).unwrap();
        let mut request = Request::new(());
        assert_eq!(secret.verify(&request).unwrap_err().code(), tonic::Code::Unauthenticated);
        secret.attach(&mut request);
        secret.verify(&request).unwrap();
        let other = ClusterSecret::from_text(&SECRET.replace('0', "1")).unwrap();
        let mut forged = Request::new(());
        other.attach(&mut forged);
        let err = secret.verify(&forged).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(err.message().contains("wrong cluster secret"), "{}", err.message());
        let mut prefix = Request::new(());
        prefix.metadata_mut().insert(SECRET_METADATA_KEY, SECRET[..SECRET.len() - 1].parse().unwrap());
        assert!(secret.verify(&prefix).is_err(), "a prefix of the secret is not the secret");
    }

    #[test]
    fn short_or_world_readable_secrets_are_refused_and_reload_keeps_the_old_on_error() {
        use std::os::unix::fs::PermissionsExt;
        assert!(format!("{:#}", ClusterSecret::from_text("short").err().unwrap()).contains("32..=1024"));
        assert!(ClusterSecret::from_text(&format!("{SECRET} with spaces")).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, format!("{SECRET}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(format!("{:#}", ClusterSecret::load(&path).err().unwrap()).contains("chmod 600"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let secret = ClusterSecret::load(&path).unwrap();
        let mut request = Request::new(());
        ClusterSecret::from_text(SECRET).unwrap().attach(&mut request);
        secret.verify(&request).unwrap();
        std::fs::write(&path, "bad").unwrap();
        assert!(secret.reload().is_err());
        secret.verify(&request).unwrap();
        let rotated = SECRET.replace('a', "b");
        std::fs::write(&path, &rotated).unwrap();
        secret.reload().unwrap();
        assert!(secret.verify(&request).is_err(), "the old secret is gone after a reload");
    }
}
