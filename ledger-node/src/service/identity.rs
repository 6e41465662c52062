//! Who a data dir belongs to: `<data_dir>/identity.toml` names the node id and a random
//! incarnation chosen when the dir was created. A node refuses to start on another node's data
//! dir, and peers address messages to (id, incarnation), so a wiped node that comes back under
//! its old id is not mistaken for the member it replaced.
//!
//! The database records the incarnation too (`KEY_INCARNATION` in `raft_meta`), so a data dir
//! whose database was deleted or replaced while `identity.toml` stayed is refused at start: its
//! vote and log are gone, and coming back as the same member could vote twice in one term.
//!
//! Also keeps `<data_dir>/node-ids-seen`: every node id this node has seen in a membership, so
//! the leader can refuse to add an id that was ever a member (ids are never reused).

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use ledger_core::codec::{self, FORMAT_VERSION};
use crate::raft::NodeId;
use crate::storage::db::{Cf, cf, to_io};

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
        if !codec::opens_format(identity.format_version) {
            bail!(
                "data dir {} holds data format {}, and this ledger-node reads only format {FORMAT_VERSION} (and opens \
                 {:?} in place): run the release that wrote it, or move the data by backup and restore with it \
                 (docs/operations.md, Upgrades)",
                data_dir.display(),
                identity.format_version,
                codec::OPENS_IN_PLACE
            );
        }
        if identity.format_version != FORMAT_VERSION {
            return mark_current_format(&path, identity);
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

/// A data dir of an older format this binary opens in place: record the current format before
/// anything is written in it, so the older binary, which cannot read what this one may write,
/// refuses it from now on.
fn mark_current_format(path: &Path, identity: Identity) -> anyhow::Result<Identity> {
    let from = identity.format_version;
    let identity = Identity { format_version: FORMAT_VERSION, ..identity };
    let text = toml::to_string(&identity).context("encoding the identity")?;
    write_atomically(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    tracing::warn!(from, to = FORMAT_VERSION, "data dir opened in place from an older data format, now marked with this one");
    Ok(identity)
}

/// Whether the data dir has an identity yet (before `load_or_create` makes one).
pub fn exists(data_dir: &Path) -> bool {
    data_dir.join(IDENTITY_FILE).exists()
}

/// Key in the `raft_meta` column family: the incarnation whose Raft state the database holds.
pub const KEY_INCARNATION: &[u8] = b"incarnation";

/// Ties the database to the data dir's identity, or refuses to start on a database that is not
/// the one this identity voted and acknowledged with. `identity_is_new`: `identity.toml` was
/// created by this start.
///
/// - The database names this incarnation: it is the one. Any other incarnation: refused (a
///   database copied from another data dir, or an identity file replaced).
/// - The database names none and is empty: a new data dir binds it. But an identity older than
///   this start with an empty database means the database was deleted (or never bound and
///   wiped): the member may have voted in a term and acknowledged log entries that are gone, and
///   answering as it again could elect two leaders in one term. Refused, with the procedure.
/// - The database names none but holds Raft state: a data dir from before the record existed
///   (or a restored one); it is bound now.
pub fn bind_database(data_dir: &Path, identity: &Identity, identity_is_new: bool, db: &rocksdb::DB) -> anyhow::Result<()> {
    let meta = cf(db, Cf::RaftMeta);
    if let Some(bytes) = db.get_cf(meta, KEY_INCARNATION).map_err(to_io)? {
        let recorded: u64 = codec::decode(&"the database's incarnation", &bytes)?;
        if recorded != identity.incarnation {
            bail!(
                "data dir {}: the database holds the Raft state of incarnation {recorded:x}, but identity.toml names \
                 incarnation {:x}: the database or the identity file was replaced. Refusing to start; put back the \
                 matching file, or rebuild the node (docs/operations.md, \"Rebuild a node whose data is lost\")",
                data_dir.display(),
                identity.incarnation
            );
        }
        return Ok(());
    }
    if !identity_is_new && !holds_raft_state(db)? {
        bail!(
            "data dir {} belongs to node {} (incarnation {:x}) but its database holds no Raft state: the db \
             directory was deleted or replaced. This member may have voted and acknowledged log entries that are \
             gone; starting it empty under the same identity could let it vote twice in one term (two leaders, \
             lost writes), so it refuses. Rebuild it as a new node: remove node {} from the cluster, delete the \
             whole data dir (identity.toml included), start it with a new node id and add it (docs/operations.md, \
             \"Rebuild a node whose data is lost\")",
            data_dir.display(),
            identity.node_id,
            identity.incarnation,
            identity.node_id
        );
    }
    record_incarnation(db, identity.incarnation)?;
    tracing::info!(incarnation = format!("{:x}", identity.incarnation), "database bound to the data dir's identity");
    Ok(())
}

/// Records (synced) that the database holds the Raft state of `incarnation`; `restore` calls it
/// for the new incarnation of a restored data dir, whose database came from another one.
pub fn record_incarnation(db: &rocksdb::DB, incarnation: u64) -> std::io::Result<()> {
    let mut opts = rocksdb::WriteOptions::default();
    opts.set_sync(true);
    db.put_cf_opt(cf(db, Cf::RaftMeta), KEY_INCARNATION, codec::encode(&incarnation), &opts).map_err(to_io)
}

/// A vote, a log entry, a purge or commit record, or an applied state machine.
fn holds_raft_state(db: &rocksdb::DB) -> anyhow::Result<bool> {
    for family in [Cf::RaftMeta, Cf::RaftLog, Cf::SmMeta] {
        let mut iter = db.raw_iterator_cf(cf(db, family));
        iter.seek_to_first();
        if iter.valid() {
            return Ok(true);
        }
        iter.status().map_err(to_io)?;
    }
    Ok(false)
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
    fn a_data_dir_of_an_older_format_opened_in_place_is_marked_with_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let created = load_or_create(dir.path(), 3, "ledger").unwrap();
        let older = codec::OPENS_IN_PLACE[0];
        let text = format!(
            "node_id = 3\nincarnation = {}\ncluster_name = \"ledger\"\nformat_version = {older}\n",
            created.incarnation
        );
        std::fs::write(dir.path().join(IDENTITY_FILE), text).unwrap();
        let opened = load_or_create(dir.path(), 3, "ledger").unwrap();
        assert_eq!(opened, created, "same identity, now of the current format");
        let on_disk = std::fs::read_to_string(dir.path().join(IDENTITY_FILE)).unwrap();
        assert!(on_disk.contains(&format!("format_version = {FORMAT_VERSION}")), "{on_disk}");
    }

    /// The db directory deleted while identity.toml stayed: the node refuses to start as the
    /// member that voted, and says how to rebuild it.
    #[test]
    fn a_data_dir_whose_database_was_deleted_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let db_dir = dir.path().join("db");
        let fresh = !exists(dir.path());
        let identity = load_or_create(dir.path(), 3, "ledger").unwrap();
        {
            let db = crate::storage::open(&db_dir).unwrap();
            bind_database(dir.path(), &identity, fresh, &db).unwrap();
            // A start before the node joined anything: bound, empty, still fine.
            bind_database(dir.path(), &identity, false, &db).unwrap();
            // It votes (as the log store writes a vote).
            db.put_cf(cf(&db, Cf::RaftMeta), crate::raft::log_store::KEY_VOTE, b"vote for node 1 in term 7").unwrap();
        }
        let db = crate::storage::open(&db_dir).unwrap();
        bind_database(dir.path(), &identity, !exists(dir.path()), &db).expect("a restart with its database");
        drop(db);
        std::fs::remove_dir_all(&db_dir).unwrap();
        let db = crate::storage::open(&db_dir).unwrap();
        let identity = load_or_create(dir.path(), 3, "ledger").unwrap();
        let err = bind_database(dir.path(), &identity, false, &db).unwrap_err().to_string();
        assert!(err.contains("holds no Raft state") && err.contains("vote twice"), "{err}");
        assert!(err.contains("Rebuild a node whose data is lost"), "{err}");
        // Refused again on every start: nothing was written.
        assert!(bind_database(dir.path(), &identity, false, &db).is_err());
    }

    #[test]
    fn a_database_of_another_incarnation_is_refused_and_an_unbound_one_with_state_is_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let identity = load_or_create(dir.path(), 3, "ledger").unwrap();
        let db = crate::storage::open(&dir.path().join("db")).unwrap();
        // A data dir from before the record: Raft state, no incarnation in the database.
        db.put_cf(cf(&db, Cf::RaftMeta), crate::raft::log_store::KEY_VOTE, b"a vote").unwrap();
        bind_database(dir.path(), &identity, false, &db).expect("adopted");
        let other = Identity { incarnation: identity.incarnation ^ 0x10, ..identity.clone() };
        let err = bind_database(dir.path(), &other, false, &db).unwrap_err().to_string();
        assert!(err.contains("the database or the identity file was replaced"), "{err}");
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
