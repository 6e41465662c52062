//! `ledger-node restore`: a new data dir from a backup (see `service::backup`), for disaster
//! recovery. The restored node is the one member of a new cluster; start it with `ledger-node
//! start` (or `dev` for a single node) and add others with `ledger cluster add-learner`/`promote`.

use std::path::PathBuf;

use anyhow::Context;

use crate::raft::NodeId;
use crate::service::backup::{self, RestoreTarget};

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup directory (holds `backup.toml` and `db/`).
    #[arg(long)]
    pub backup: PathBuf,
    /// The new data dir to create (must not exist, or be empty).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Id of the restored node, the first member of the new cluster. `ledger-node dev` is node 1.
    #[arg(long, default_value_t = 1)]
    pub node_id: NodeId,
    /// Cluster name of the new cluster. Default: the backed-up cluster's. `dev` runs "ledger".
    #[arg(long)]
    pub cluster_name: Option<String>,
    /// Client URL the restored node will advertise (its `start --advertise`, or `http://<listen>`).
    #[arg(long, default_value = "http://127.0.0.1:7070")]
    pub advertise: String,
    /// Peer URL it will advertise. Default: --advertise (peers share the client port).
    #[arg(long)]
    pub peer_advertise: Option<String>,
}

/// Restores, printing what was restored; an error names what is wrong with the backup.
pub fn run(args: RestoreArgs) -> anyhow::Result<()> {
    let advertise = crate::config::check_url(&args.advertise).context("--advertise")?;
    let peer_advertise = match &args.peer_advertise {
        Some(url) => crate::config::check_url(url).context("--peer-advertise")?,
        None => advertise.clone(),
    };
    anyhow::ensure!(args.node_id != 0, "node ids start at 1");
    let cluster_name = match args.cluster_name {
        Some(name) => name,
        None => backup::read_manifest(&args.backup)?.cluster_name,
    };
    anyhow::ensure!(!cluster_name.is_empty() && cluster_name.len() <= 64, "cluster name must be 1..=64 bytes");
    let target = RestoreTarget { data_dir: args.data_dir.clone(), node_id: args.node_id, cluster_name, advertise, peer_advertise };
    let restored = backup::restore(&args.backup, &target)
        .with_context(|| format!("restoring {} into {}", args.backup.display(), args.data_dir.display()))?;
    let m = &restored.manifest;
    println!(
        "restored {} (node {} of cluster {:?}, applied index {}, state hash {}, {} files, {} bytes) into {} as node {} \
         of a new one-node cluster {:?} (incarnation {:x})",
        args.backup.display(),
        m.node_id,
        m.cluster_name,
        m.applied_index,
        m.state_hash,
        m.files.len(),
        m.total_bytes(),
        args.data_dir.display(),
        target.node_id,
        target.cluster_name,
        restored.incarnation
    );
    Ok(())
}
