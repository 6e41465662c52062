//! Who a data dir belongs to: `<data_dir>/identity.toml` names the node id and a random
//! incarnation chosen when the dir was created. A node refuses to start on another node's data
//! dir, and peers address messages to (id, incarnation), so a wiped node that comes back under
//! its old id is not mistaken for the member it replaced.
//!
//! Also keeps `<data_dir>/node-ids-seen`: every node id this node has seen in a membership, so
//! the leader can refuse to add an id that was ever a member (ids are never reused).

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::codec::FORMAT_VERSION;
use crate::raft::NodeId;

const IDENTITY_FILE: &str = "identity.toml";
const IDS_SEEN_FILE: &str = "node-ids-seen";
/// Ids kept in the record at most; a cluster that cycled through more members than this has a
/// bigger problem, and the file must stay small.
const IDS_SEEN_MAX: usize = 65_536;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub node_id: NodeId,
    pub incarnation: u64,
    pub cluster_name: String,
    /// The format of everything in the data dir (`codec::FORMAT_VERSION` when it was created);
    /// absent in data dirs of format 1, which predates the key.
    #[serde(default = "format_one")]
    pub format_version: u32,
}

fn format_one() -> u32 {
    1
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
}

fn random_incarnation() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(crate::service::now_ns());
    hasher.write_u32(std::process::id());
    // Never 0: 0 on the wire means "not checked".
    hasher.finish() | 1
}

/// Loads the data dir's identity, or creates it for a new data dir. Refuses a data dir that
/// belongs to another node id or another cluster.
pub fn load_or_create(data_dir: &Path, node_id: NodeId, cluster_name: &str) -> anyhow::Result<Identity> {
    let path = data_dir.join(IDENTITY_FILE);
    if path.exists() {
        let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let identity: Identity = toml::from_str(&text).with_context(|| format!("corrupted {}", path.display()))?;
        if identity.node_id != node_id {
            bail!(
                "data dir {} belongs to node {}, not node {node_id}: give each node its own data dir",
                data_dir.display(),
                identity.node_id
            );
        }
        if identity.cluster_name != cluster_name {
            bail!(
                "data dir {} belongs to cluster {:?}, not {cluster_name:?}",
                data_dir.display(),
                identity.cluster_name
            );
        }
        if identity.format_version != FORMAT_VERSION {
            bail!(
                "data dir {} holds data format {}, and this ledger-node reads only format {FORMAT_VERSION}: run the \
                 release that wrote it, or move the data by backup and restore with it (docs/operations.md, Upgrades)",
                data_dir.display(),
                identity.format_version
            );
        }
        return Ok(identity);
    }
    let identity = Identity {
        node_id,
        incarnation: random_incarnation(),
        cluster_name: cluster_name.to_string(),
        format_version: FORMAT_VERSION,
    };
    let text = toml::to_string(&identity).context("encoding the identity")?;
    write_atomically(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(node_id, incarnation = identity.incarnation, "new data dir identity");
    Ok(identity)
}

/// The durable record of every node id seen in a membership.
pub struct IdsSeen {
    path: PathBuf,
    ids: BTreeSet<NodeId>,
}

impl IdsSeen {
    pub fn load(data_dir: &Path) -> anyhow::Result<IdsSeen> {
        let path = data_dir.join(IDS_SEEN_FILE);
        let mut ids = BTreeSet::new();
        if path.exists() {
            let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                ids.insert(line.parse().with_context(|| format!("corrupted {}: {line:?}", path.display()))?);
            }
        }
        Ok(IdsSeen { path, ids })
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.ids.contains(&id)
    }

    pub fn ids(&self) -> &BTreeSet<NodeId> {
        &self.ids
    }

    /// Adds ids; writes the file (synced) only when something is new.
    pub fn record(&mut self, ids: impl IntoIterator<Item = NodeId>) -> std::io::Result<()> {
        let before = self.ids.len();
        for id in ids {
            if self.ids.len() >= IDS_SEEN_MAX {
                tracing::warn!(max = IDS_SEEN_MAX, "node id record is full; not recording more");
                break;
            }
            self.ids.insert(id);
        }
        if self.ids.len() == before {
            return Ok(());
        }
        let text: String = self.ids.iter().map(|id| format!("{id}\n")).collect();
        write_atomically(&self.path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_keeps_its_identity_and_refuses_another_node() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), 3, "ledger").unwrap();
        assert_ne!(first.incarnation, 0);
        assert_eq!(load_or_create(dir.path(), 3, "ledger").unwrap(), first);
        let err = load_or_create(dir.path(), 4, "ledger").unwrap_err().to_string();
        assert!(err.contains("belongs to node 3"), "{err}");
        assert!(load_or_create(dir.path(), 3, "other").is_err());
        let wiped = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create(wiped.path(), 3, "ledger").unwrap().incarnation, first.incarnation);
    }

    #[test]
    fn a_data_dir_of_another_format_is_refused_by_name_not_read_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let created = load_or_create(dir.path(), 3, "ledger").unwrap();
        assert_eq!(created.format_version, FORMAT_VERSION);
        // A data dir written by the first release has no format key: format 1.
        let text = format!("node_id = 3\nincarnation = {}\ncluster_name = \"ledger\"\n", created.incarnation);
        std::fs::write(dir.path().join(IDENTITY_FILE), text).unwrap();
        let err = load_or_create(dir.path(), 3, "ledger").unwrap_err().to_string();
        assert!(err.contains("holds data format 1") && err.contains(&format!("only format {FORMAT_VERSION}")), "{err}");
    }

    #[test]
    fn ids_seen_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = IdsSeen::load(dir.path()).unwrap();
        seen.record([1, 2, 3]).unwrap();
        seen.record([3, 5]).unwrap();
        let again = IdsSeen::load(dir.path()).unwrap();
        assert_eq!(again.ids().iter().copied().collect::<Vec<_>>(), vec![1, 2, 3, 5]);
        assert!(again.contains(5) && !again.contains(4));
    }
}
