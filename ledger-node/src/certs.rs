//! `ledger-node certs`: a cluster CA, node certificates and client certificates for test and
//! small clusters, written as PEM files into one directory (keys mode 600).
//!
//! Files: `ca.pem` + `ca-key.pem` (created on the first run, reused after, so nodes and clients
//! can be added later), `node-<id>.pem` + `node-<id>-key.pem`, `client-<name>.pem` +
//! `client-<name>-key.pem`. A node certificate carries the URI SAN `tls::node_uri` (the node's
//! identity among its peers) and a DNS or IP SAN per host it is dialled at; it serves TLS and is
//! the node's client certificate towards its peers. A client certificate's subject common name
//! is the name a tokens file's `[[certificate]]` entry maps to a principal. Existing node and
//! client files are never overwritten.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::raft::NodeId;

/// Lifetime of a generated CA: long, it is the trust root of the test cluster.
const CA_VALID_DAYS: i64 = 3_650;
/// Lifetime of a generated node or client certificate (rotate by issuing new ones).
const LEAF_VALID_DAYS: i64 = 365;
/// Certificates per `certs` run at most.
pub const REQUESTS_MAX: usize = 256;

/// One certificate to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A node: its id and the hosts (names or IP addresses) it is dialled at.
    Node { id: NodeId, hosts: Vec<String> },
    /// A client: the name its certificate carries (subject CN).
    Client { name: String },
}

/// `ID=HOST[,HOST...]`, as `--node` takes it.
pub fn parse_node(text: &str) -> anyhow::Result<Request> {
    let (id, hosts) = text.split_once('=').with_context(|| format!("--node {text:?}: expected ID=HOST[,HOST...]"))?;
    let id: NodeId = id.trim().parse().with_context(|| format!("--node {text:?}: the id is not a number"))?;
    if id == 0 {
        bail!("--node {text:?}: node ids start at 1");
    }
    let hosts: Vec<String> = hosts.split(',').map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).collect();
    if hosts.is_empty() {
        bail!("--node {text:?}: name at least one host the node is dialled at");
    }
    Ok(Request::Node { id, hosts })
}

fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        bail!("client name {name:?}: 1..=64 of letters, digits, '-', '_', '.'");
    }
    Ok(())
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    // An hour back: a peer whose clock is a little behind still accepts it.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days);
}

/// Writes `text` to a new file; `private`: mode 600 from the start (never readable by others,
/// not even for a moment).
fn write_new(path: &Path, text: &str, private: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(if private { 0o600 } else { 0o644 });
    let mut file = options.open(path).with_context(|| {
        format!("creating {} (existing certificates are never overwritten: remove it first)", path.display())
    })?;
    file.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    file.sync_all()?;
    Ok(())
}

fn ca_params(common_name: String) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

/// The CA in `dir`, created if absent.
fn ca(dir: &Path, cluster_name: &str) -> anyhow::Result<Issuer<'static, KeyPair>> {
    let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    if cert_path.exists() || key_path.exists() {
        crate::api::auth::check_private(&key_path).context("ca-key.pem")?;
        let key = KeyPair::from_pem(&std::fs::read_to_string(&key_path)?).context("parsing ca-key.pem")?;
        let cert = std::fs::read(&cert_path).with_context(|| format!("reading {}", cert_path.display()))?;
        let der = pem::parse(&cert).context("parsing ca.pem")?.into_contents();
        // Issued certificates name their issuer by the CA's subject: the one in ca.pem.
        let common_name = crate::tls::x509::subject_common_names(&der)
            .map_err(|e| anyhow::anyhow!("parsing ca.pem: {e}"))?
            .into_iter()
            .next()
            .context("ca.pem has no subject common name")?;
        return Ok(Issuer::new(ca_params(common_name), key));
    }
    let mut params = ca_params(format!("ledger cluster CA ({cluster_name})"));
    validity(&mut params, CA_VALID_DAYS);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    write_new(&key_path, &key.serialize_pem(), true)?;
    write_new(&cert_path, &cert.pem(), false)?;
    Ok(Issuer::new(params, key))
}

/// Issues every request into `dir` (created if needed), with the CA found there or a new one.
/// Returns the files written.
pub fn generate(dir: &Path, cluster_name: &str, requests: &[Request]) -> anyhow::Result<Vec<String>> {
    if requests.len() > REQUESTS_MAX {
        bail!("{} certificates asked for, at most {REQUESTS_MAX} per run", requests.len());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let had_ca = dir.join("ca.pem").exists();
    let issuer = ca(dir, cluster_name)?;
    let mut written = if had_ca { Vec::new() } else { vec!["ca.pem".to_string(), "ca-key.pem".to_string()] };
    for request in requests {
        let (stem, mut params) = match request {
            Request::Node { id, hosts } => {
                let mut params = CertificateParams::new(hosts.clone())?;
                params.subject_alt_names.push(SanType::URI(crate::tls::node_uri(cluster_name, *id).try_into()?));
                params.distinguished_name.push(DnType::CommonName, format!("ledger node {id} ({cluster_name})"));
                // Serves TLS (clients, peers) and is the node's client certificate towards peers.
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
                (format!("node-{id}"), params)
            }
            Request::Client { name } => {
                check_name(name)?;
                let mut params = CertificateParams::default();
                params.distinguished_name.push(DnType::CommonName, name.clone());
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                (format!("client-{name}"), params)
            }
        };
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, LEAF_VALID_DAYS);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        write_new(&dir.join(format!("{stem}-key.pem")), &key.serialize_pem(), true)?;
        write_new(&dir.join(format!("{stem}.pem")), &cert.pem(), false)?;
        written.push(format!("{stem}.pem"));
        written.push(format!("{stem}-key.pem"));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn keys_are_private_the_ca_is_reused_and_nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let written = generate(dir.path(), "ledger", &[parse_node("1=127.0.0.1,localhost").unwrap()]).unwrap();
        assert_eq!(written, ["ca.pem", "ca-key.pem", "node-1.pem", "node-1-key.pem"]);
        let mode = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("ca-key.pem"), 0o600);
        assert_eq!(mode("node-1-key.pem"), 0o600);
        let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
        let written = generate(dir.path(), "ledger", &[Request::Client { name: "ops".into() }]).unwrap();
        assert_eq!(written, ["client-ops.pem", "client-ops-key.pem"], "the CA is reused");
        assert_eq!(std::fs::read(dir.path().join("ca.pem")).unwrap(), ca);
        let err = generate(dir.path(), "ledger", &[parse_node("1=127.0.0.1").unwrap()]).unwrap_err();
        assert!(format!("{err:#}").contains("never overwritten"), "{err:#}");
        assert!(parse_node("0=a").is_err());
        assert!(parse_node("1=").is_err());
        assert!(generate(dir.path(), "ledger", &[Request::Client { name: "a/b".into() }]).is_err());
    }
}
