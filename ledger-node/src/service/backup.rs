//! Backups of a serving node, and restoring one into the data dir of a new cluster.
//!
//! A backup is a directory: `db/` (a RocksDB checkpoint: a consistent point-in-time copy of every
//! column family, SST files hard-linked where the filesystem allows) and `backup.toml`, written
//! last (temp file, fsync, rename), naming the applied log id, the state hash of that state (as
//! `GetStateHash` computes it, read from the checkpoint itself, not from the live database) and a
//! SHA-256 per file. A directory without `backup.toml` is an unfinished backup.
//!
//! Restore (`ledger-node restore`, the disaster-recovery case, like `etcdutl snapshot restore`):
//! checks every file against the manifest, copies them into a new data dir, checks the state hash
//! again, and replaces the Raft state with that of a new one-node cluster: empty log (purged up to
//! the backup's applied log id), a vote of a term after the backup's, membership = this node only,
//! a new data-dir incarnation. The old cluster's nodes can never count towards it; others join it
//! with add-learner / promote. The new membership is not a log entry, so the restored state (and
//! its hash) is exactly the backup's until new commands are applied.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use ledger_core::codec;
use crate::raft::log_store::{KEY_COMMITTED, KEY_LAST_PURGED, KEY_VOTE};
use crate::raft::snapshot::{self, KEY_MEMBERSHIP};
use crate::raft::{LogId, NodeAddr, NodeId, StoredMembership, Vote};
use crate::service::identity::write_atomically;
use crate::storage::db::{Cf, all_cfs, cf, to_io};

/// The manifest, in the backup directory.
pub const MANIFEST_FILE: &str = "backup.toml";
/// The checkpoint, in the backup directory (and the database, in a data dir).
pub const DB_DIR: &str = "db";
/// A copy of the manifest left in a restored data dir: where its state came from.
pub const RESTORED_FROM_FILE: &str = "restored-from.toml";
const MANIFEST_FORMAT: u32 = 1;
/// Files in one backup at most: a RocksDB directory of a few hundred GB holds a few thousand.
pub const BACKUP_FILES_MAX: usize = 100_000;
/// Bytes read at once while hashing and copying files.
const IO_CHUNK_BYTES: usize = 1 << 20;

/// `backup.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// The data format of the backed-up database (`codec::FORMAT_VERSION`): a restore by a
    /// release of another format is refused, as a start on such a data dir is.
    pub data_format_version: u32,
    pub cluster_name: String,
    /// The node the backup was taken on.
    pub node_id: NodeId,
    pub created_at_unix_ms: u64,
    /// The last log entry applied to the backed-up state (0: nothing applied).
    pub applied_index: u64,
    /// The term of that entry.
    pub applied_term: u64,
    /// SHA-256 (hex) over every ledger row, as `GetStateHash` computes it.
    pub state_hash: String,
    /// Every file of `db/`, sorted by name.
    pub files: Vec<FileDigest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDigest {
    /// Path relative to the backup directory (`db/000012.sst`).
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

impl Manifest {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Writes a backup of `db` into `dir` (absolute, must not exist; its parent must). Blocking; the
/// database goes on serving. On failure nothing is left at `dir`.
/// Errors: `InvalidInput` (relative path, no parent), `AlreadyExists`, or any I/O error.
pub fn create(db: &rocksdb::DB, dir: &Path, cluster_name: &str, node_id: NodeId) -> io::Result<Manifest> {
    if !dir.is_absolute() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("backup dir {:?} is relative: give an absolute path on the node's filesystem", dir.display().to_string()),
        ));
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("backup dir {} already exists", dir.display())));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the parent of backup dir {} does not exist", dir.display()),
            ));
        }
        Err(e) => return Err(e),
    }
    let written = write_backup(db, dir, cluster_name, node_id);
    if written.is_err() {
        let _ = fs::remove_dir_all(dir);
    }
    written
}

fn write_backup(db: &rocksdb::DB, dir: &Path, cluster_name: &str, node_id: NodeId) -> io::Result<Manifest> {
    let started = Instant::now();
    let db_dir = dir.join(DB_DIR);
    // RocksDB's checkpoint: every column family at one sequence number (one DB, one WAL), after a
    // flush; the WAL written since is copied up to that point and replayed when opened.
    rocksdb::checkpoint::Checkpoint::new(db).and_then(|c| c.create_checkpoint(&db_dir)).map_err(to_io)?;
    let checkpointed_ms = started.elapsed().as_millis() as u64;
    // The state of the checkpoint itself, read as a restore will read it.
    let (applied, hash) = state_of_checkpoint(dir, &db_dir)?;
    let files = digest_files(dir)?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        data_format_version: ledger_core::codec::FORMAT_VERSION,
        cluster_name: cluster_name.to_string(),
        node_id,
        created_at_unix_ms: now_unix_ms(),
        applied_index: applied.as_ref().map(|l| l.index()).unwrap_or(0),
        applied_term: applied.as_ref().map(|l| l.leader_id.term).unwrap_or(0),
        state_hash: hex(&hash),
        files,
    };
    File::open(&db_dir)?.sync_all()?;
    let text = toml::to_string(&manifest).map_err(io::Error::other)?;
    write_atomically(&dir.join(MANIFEST_FILE), text.as_bytes())?;
    tracing::info!(
        dir = %dir.display(),
        applied_index = manifest.applied_index,
        state_hash = %manifest.state_hash,
        files = manifest.files.len(),
        bytes = manifest.total_bytes(),
        checkpoint_ms = checkpointed_ms,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "backup written"
    );
    Ok(manifest)
}

/// Opens the checkpoint read-only (its files untouched: RocksDB's info log goes to a scratch dir)
/// and reads its applied log id and state hash.
fn state_of_checkpoint(dir: &Path, db_dir: &Path) -> io::Result<(Option<LogId>, [u8; 32])> {
    let scratch = dir.join("open-log.tmp");
    fs::create_dir(&scratch)?;
    let mut opts = Options::default();
    opts.set_db_log_dir(&scratch);
    let descriptors = all_cfs().into_iter().map(|c| ColumnFamilyDescriptor::new(c.name(), Options::default()));
    let read = rocksdb::DB::open_cf_descriptors_read_only(&opts, db_dir, descriptors, false).map_err(to_io).and_then(|db| {
        let (applied, _) = snapshot::read_sm_meta(|k| db.get_cf(cf(&db, Cf::SmMeta), k).map_err(to_io))?;
        let (_, hash) = crate::raft::state_machine::state_hash(&db)?;
        Ok((applied, hash))
    });
    fs::remove_dir_all(&scratch)?;
    read
}

/// Name, size and SHA-256 of every file under `dir/db`, sorted by name.
fn digest_files(dir: &Path) -> io::Result<Vec<FileDigest>> {
    let mut files = Vec::new();
    for name in list_db_files(dir)? {
        let (bytes, sha256) = sha256_file(&dir.join(&name))?;
        files.push(FileDigest { name, bytes, sha256 });
    }
    Ok(files)
}

/// `db/<name>` for every entry of `dir/db` (a checkpoint is one flat directory), sorted.
fn list_db_files(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir.join(DB_DIR))? {
        let entry = entry?;
        let name = entry.file_name().into_string().map_err(|n| {
            io::Error::new(io::ErrorKind::InvalidData, format!("file name {n:?} in the backup is not UTF-8"))
        })?;
        if !entry.file_type()?.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{DB_DIR}/{name} in the backup is not a file")));
        }
        names.push(format!("{DB_DIR}/{name}"));
        if names.len() > BACKUP_FILES_MAX {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("more than {BACKUP_FILES_MAX} files in the backup")));
        }
    }
    names.sort();
    Ok(names)
}

fn sha256_file(path: &Path) -> io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; IO_CHUNK_BYTES];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hex(&hasher.finalize())))
}

/// Reads `backup.toml`.
pub fn read_manifest(backup_dir: &Path) -> anyhow::Result<Manifest> {
    let path = backup_dir.join(MANIFEST_FILE);
    let text = fs::read_to_string(&path)
        .with_context(|| format!("reading {} (a backup dir without it is unfinished)", path.display()))?;
    let manifest: Manifest = toml::from_str(&text).with_context(|| format!("{} is not a backup manifest", path.display()))?;
    ensure!(manifest.format == MANIFEST_FORMAT, "backup format {} is not known to this version (it reads {MANIFEST_FORMAT})", manifest.format);
    ensure!(manifest.files.len() <= BACKUP_FILES_MAX, "the manifest lists more than {BACKUP_FILES_MAX} files");
    Ok(manifest)
}

/// Checks that `backup_dir/db` holds exactly the manifest's files, each with its size and
/// SHA-256. The first difference is refused, naming the file.
pub fn verify(backup_dir: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    ensure!(listed.len() == manifest.files.len(), "the manifest lists a file twice");
    for name in list_db_files(backup_dir).with_context(|| format!("listing {}", backup_dir.join(DB_DIR).display()))? {
        ensure!(listed.contains(name.as_str()), "backup file {name} is not in the manifest: the backup was changed");
    }
    for file in &manifest.files {
        let relative = Path::new(&file.name);
        let plain = relative.parent() == Some(Path::new(DB_DIR)) && relative.file_name().is_some();
        ensure!(plain, "the manifest names {:?}, which is not a file of {DB_DIR}/", file.name);
        let (bytes, sha256) = sha256_file(&backup_dir.join(relative))
            .with_context(|| format!("backup file {} (listed in the manifest) cannot be read", file.name))?;
        if bytes != file.bytes || sha256 != file.sha256 {
            bail!(
                "backup file {} is damaged: {bytes} bytes with SHA-256 {sha256}, the manifest says {} bytes with SHA-256 {}",
                file.name,
                file.bytes,
                file.sha256
            );
        }
    }
    Ok(())
}

/// Who the restored node is.
#[derive(Debug, Clone)]
pub struct RestoreTarget {
    pub data_dir: PathBuf,
    pub node_id: NodeId,
    pub cluster_name: String,
    /// Its client URL (`ledger.v1.Ledger`) and peer URL, as it will serve them.
    pub advertise: String,
    pub peer_advertise: String,
}

/// What a restore made.
#[derive(Debug, Clone)]
pub struct Restored {
    pub manifest: Manifest,
    pub incarnation: u64,
}

/// Verifies the backup and creates `target.data_dir` (which must not exist, or be empty) from
/// it: the backed-up state machine under a new one-node cluster. Blocking. On failure the data
/// dir is removed again.
pub fn restore(backup_dir: &Path, target: &RestoreTarget) -> anyhow::Result<Restored> {
    let manifest = read_manifest(backup_dir)?;
    ensure!(
        ledger_core::codec::opens_format(manifest.data_format_version),
        "the backup holds data format {}, and this ledger-node reads only format {} (and opens {:?} in place): \
         restore it with a release of its format (or migrate it first)",
        manifest.data_format_version,
        ledger_core::codec::FORMAT_VERSION,
        ledger_core::codec::OPENS_IN_PLACE
    );
    verify(backup_dir, &manifest)?;
    let data_dir = &target.data_dir;
    if data_dir.exists() {
        let empty = fs::read_dir(data_dir).with_context(|| format!("reading {}", data_dir.display()))?.next().is_none();
        ensure!(empty, "data dir {} is not empty: restore creates a new data dir", data_dir.display());
    }
    fs::create_dir_all(data_dir.join(DB_DIR)).with_context(|| format!("creating {}", data_dir.display()))?;
    let restored = restore_into(backup_dir, &manifest, target);
    if restored.is_err() {
        let _ = fs::remove_dir_all(data_dir);
    }
    restored
}

fn restore_into(backup_dir: &Path, manifest: &Manifest, target: &RestoreTarget) -> anyhow::Result<Restored> {
    let data_dir = &target.data_dir;
    for file in &manifest.files {
        let to = data_dir.join(&file.name);
        // Copied, not linked: the backup stays a backup whatever the node does to its files.
        fs::copy(backup_dir.join(&file.name), &to).with_context(|| format!("copying {}", file.name))?;
        File::open(&to)?.sync_all()?;
        // A byte changed between the verification and the copy is caught by the state hash below.
    }
    File::open(data_dir.join(DB_DIR))?.sync_all()?;
    let identity = crate::service::identity::load_or_create(data_dir, target.node_id, &target.cluster_name)?;
    let db = crate::storage::db::open(&data_dir.join(DB_DIR)).context("opening the restored database")?;
    let (applied_index, hash) = crate::raft::state_machine::state_hash(&db)?;
    ensure!(
        applied_index == manifest.applied_index && hex(&hash) == manifest.state_hash,
        "the restored state (applied index {applied_index}, state hash {}) is not the one the manifest names \
         (applied index {}, state hash {}): the backup is damaged",
        hex(&hash),
        manifest.applied_index,
        manifest.state_hash
    );
    let me = NodeAddr { peer: target.peer_advertise.clone(), api: target.advertise.clone(), incarnation: identity.incarnation };
    let (applied, _) = snapshot::read_sm_meta(|k| db.get_cf(cf(&db, Cf::SmMeta), k).map_err(to_io))?;
    new_cluster_state(&db, applied.as_ref(), target.node_id, me)?;
    // The checkpoint names the backed-up node's incarnation: the restored data dir has its own.
    crate::service::identity::record_incarnation(&db, identity.incarnation)?;
    if applied.is_some() {
        // Members that join later receive this snapshot (the log before it is gone).
        snapshot::build(&db, &data_dir.join("snapshots"))?;
    }
    db.flush_wal(true).map_err(to_io)?;
    drop(db);
    let text = toml::to_string(manifest).context("encoding the manifest")?;
    write_atomically(&data_dir.join(RESTORED_FROM_FILE), text.as_bytes())?;
    tracing::info!(
        data_dir = %data_dir.display(),
        applied_index,
        state_hash = %manifest.state_hash,
        node_id = target.node_id,
        incarnation = format!("{:x}", identity.incarnation),
        "restored a backup as a new one-node cluster"
    );
    Ok(Restored { manifest: manifest.clone(), incarnation: identity.incarnation })
}

/// Replaces the Raft state with a new one-node cluster's that continues after `applied`: no log
/// entries (purged and committed up to `applied`), a vote of a later term (the first election is
/// of a term after every entry of the backup), and this node as the only voter. With nothing
/// applied, no Raft state at all: the node is initialised as any new one.
fn new_cluster_state(db: &rocksdb::DB, applied: Option<&LogId>, node_id: NodeId, me: NodeAddr) -> io::Result<()> {
    let mut batch = WriteBatch::default();
    // 9 bytes of 0xff sort after every 8-byte log index.
    batch.delete_range_cf(cf(db, Cf::RaftLog), vec![0u8; 8], vec![0xff; 9]);
    let meta = cf(db, Cf::RaftMeta);
    for key in [KEY_VOTE, KEY_LAST_PURGED, KEY_COMMITTED] {
        batch.delete_cf(meta, key);
    }
    let sm_meta = cf(db, Cf::SmMeta);
    match applied {
        Some(applied) => {
            let term = applied.leader_id.term;
            batch.put_cf(meta, KEY_VOTE, codec::encode(&Vote::new(term + 1, node_id)));
            batch.put_cf(meta, KEY_LAST_PURGED, codec::encode(applied));
            batch.put_cf(meta, KEY_COMMITTED, codec::encode(&Some(applied.clone())));
            let membership = openraft::Membership::new(vec![BTreeSet::from([node_id])], BTreeMap::from([(node_id, me)]))
                .map_err(io::Error::other)?;
            batch.put_cf(sm_meta, KEY_MEMBERSHIP, codec::encode(&StoredMembership::new(Some(applied.clone()), membership)));
        }
        None => batch.delete_cf(sm_meta, KEY_MEMBERSHIP),
    }
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    db.write_opt(batch, &opts).map_err(to_io)
}

#[cfg(test)]
mod tests;
