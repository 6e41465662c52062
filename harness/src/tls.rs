//! The TLS files `ledger-node certs` issues, by the names it gives them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A node's certificate, its key and the cluster CA (given as `--tls-cert`, `--tls-key`, `--tls-ca`).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl TlsFiles {
    /// Node `id`'s files in `dir` as `ledger-node certs --dir <dir> --node <id>=...` names them.
    pub fn issued(dir: &Path, id: u64) -> TlsFiles {
        TlsFiles {
            cert: dir.join(format!("node-{id}.pem")),
            key: dir.join(format!("node-{id}-key.pem")),
            ca: dir.join("ca.pem"),
        }
    }

    /// The node flags that name these files.
    pub fn args(&self) -> Vec<String> {
        [("--tls-cert", &self.cert), ("--tls-key", &self.key), ("--tls-ca", &self.ca)]
            .into_iter()
            .flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()])
            .collect()
    }
}

/// Runs `ledger-node certs --dir <dir> <args>` (the CA is made on the first call in `dir`);
/// the error carries its stderr.
pub fn certs(ledger_node: &Path, dir: &Path, args: &[String]) -> std::io::Result<()> {
    let output = Command::new(ledger_node).args(["certs", "--dir"]).arg(dir).args(args).output()?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(std::io::Error::other(format!("ledger-node certs {}: {}", args.join(" "), stderr.trim())));
    }
    Ok(())
}
