//! Snapshot files: the ledger tables and the state-machine metadata read from one point-in-time
//! RocksDB view, written to a temp file, fsynced, renamed into place.
//!
//! Format (all integers little-endian):
//! `"LGSNAP01"` ‖ meta_len u32 ‖ CRC-32-framed postcard(SnapshotMeta) ‖
//! records: table u8 ‖ key_len u32 ‖ key ‖ value_len u32 ‖ value ‖ ... ‖ 0xFF ‖
//! record_count u64 ‖ CRC-32 of every byte before it (u32).

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use rocksdb::{IteratorMode, WriteBatch, WriteOptions};

use super::SnapshotMeta;
use ledger_core::codec;
use ledger_core::Table;
use crate::storage::db::{Cf, cf, to_io};

const MAGIC: &[u8; 8] = b"LGSNAP01";
const END_OF_RECORDS: u8 = 0xff;
/// Bytes in one key or value at most; anything larger is corruption, not data.
const FIELD_BYTES_MAX: u32 = 16 << 20;
pub const KEY_APPLIED: &[u8] = b"applied";
pub use crate::storage::db::KEY_INSTALLING;
/// How often a snapshot build waiting for an install to finish looks again.
const INSTALL_WAIT_POLL: std::time::Duration = std::time::Duration::from_millis(50);
pub const KEY_MEMBERSHIP: &[u8] = b"membership";

/// A snapshot on disk, as openraft's `SnapshotData`.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    pub path: PathBuf,
}

struct HashingWriter<W: Write> {
    inner: W,
    hasher: crc32fast::Hasher,
}
impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn corrupt(path: &Path, why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("corrupted snapshot {}: {why}", path.display()))
}

fn table_from_u8(byte: u8) -> Option<Table> {
    Table::ALL.get(usize::from(byte)).copied()
}

/// Reads the state machine's metadata from a view.
pub fn read_sm_meta(get: impl Fn(&[u8]) -> io::Result<Option<Vec<u8>>>) -> io::Result<(Option<super::LogId>, super::StoredMembership)> {
    let applied = match get(KEY_APPLIED)? {
        Some(bytes) => codec::decode(&"state machine applied log id", &bytes)?,
        None => None,
    };
    let membership = match get(KEY_MEMBERSHIP)? {
        Some(bytes) => codec::decode(&"state machine membership", &bytes)?,
        None => super::StoredMembership::default(),
    };
    Ok((applied, membership))
}

/// Writes a snapshot of `db` into `dir`; returns its meta and file. Blocking.
pub fn build(db: &rocksdb::DB, dir: &Path) -> io::Result<(SnapshotMeta, SnapshotFile)> {
    let written = write(db, dir)?;
    let index = snapshot_index(&written.meta);
    let path = published_path(dir, index);
    publish(&written.tmp, &path)?;
    tracing::info!(index, records = written.records, path = %path.display(), "snapshot built");
    Ok((written.meta, SnapshotFile { path }))
}

/// A complete, synced snapshot file not yet published under its final name.
pub struct Written {
    pub meta: SnapshotMeta,
    pub tmp: PathBuf,
    pub records: u64,
}

/// The last log index a snapshot covers (0 for the empty state).
pub fn snapshot_index(meta: &SnapshotMeta) -> u64 {
    meta.last_log_id.as_ref().map(|id| id.index()).unwrap_or(0)
}

/// Where the snapshot of `index` is published in `dir`.
pub fn published_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("snapshot-{index:020}.bin"))
}

/// A temp file name no other build or receive in this process uses at the same time: two
/// builds of one index (a forced one and a policy one) or a build racing a received snapshot
/// must never write, rename or remove each other's file.
pub fn unique_temp_path(dir: &Path, prefix: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!("{prefix}-{}-{n}.tmp", std::process::id()))
}

/// Writes a snapshot of `db` into a temp file in `dir`, synced. Blocking.
pub fn write(db: &rocksdb::DB, dir: &Path) -> io::Result<Written> {
    fs::create_dir_all(dir)?;
    // A view taken during an install would hold partial tables: wait for the install to end.
    let view = loop {
        let view = db.snapshot();
        if !install_in_progress(|k| view.get_cf(cf(db, Cf::SmMeta), k).map_err(to_io))? {
            break view;
        }
        drop(view);
        std::thread::sleep(INSTALL_WAIT_POLL);
    };
    // The meta comes from the same view as the data: a snapshot never claims more or less than it holds.
    let (last_log_id, last_membership) = read_sm_meta(|k| view.get_cf(cf(db, Cf::SmMeta), k).map_err(to_io))?;
    let meta = SnapshotMeta { last_log_id, last_membership };
    let tmp = unique_temp_path(dir, &format!("snapshot-{:020}", snapshot_index(&meta)));
    let mut out = HashingWriter { inner: BufWriter::new(File::create(&tmp)?), hasher: crc32fast::Hasher::new() };
    out.write_all(MAGIC)?;
    let meta_bytes = codec::encode(&meta);
    out.write_all(&(meta_bytes.len() as u32).to_le_bytes())?;
    out.write_all(&meta_bytes)?;
    let mut records: u64 = 0;
    for (table_index, table) in Table::ALL.iter().enumerate() {
        let rows = view.iterator_cf_opt(cf(db, Cf::Ledger(*table)), crate::storage::db::scan_options(), IteratorMode::Start);
        for item in rows {
            let (key, value) = item.map_err(to_io)?;
            out.write_all(&[table_index as u8])?;
            out.write_all(&(key.len() as u32).to_le_bytes())?;
            out.write_all(&key)?;
            out.write_all(&(value.len() as u32).to_le_bytes())?;
            out.write_all(&value)?;
            records += 1;
        }
    }
    out.write_all(&[END_OF_RECORDS])?;
    out.write_all(&records.to_le_bytes())?;
    let crc = out.hasher.clone().finalize();
    let mut file = out.inner.into_inner().map_err(|e| e.into_error())?;
    file.write_all(&crc.to_le_bytes())?;
    file.sync_all()?;
    Ok(Written { meta, tmp, records })
}

/// The index in a published snapshot's file name (`snapshot-<index>.bin`).
fn published_index(path: &Path) -> Option<u64> {
    if path.extension()? != "bin" {
        return None;
    }
    path.file_stem()?.to_str()?.strip_prefix("snapshot-")?.parse().ok()
}

/// Renames a complete snapshot into place, fsyncs the directory, then removes the published
/// snapshots **older** than it. Never a newer one: openraft builds and installs concurrently, so
/// a build of index 100 may finish after a snapshot of 200 was installed, and the newest file
/// must stay the one `latest` returns (the log before it may already be purged). Never a temp
/// file either: it belongs to a build or a receive still running (stale ones from a crash are
/// removed at start by `remove_stale_temp_files`).
pub fn publish(tmp: &Path, path: &Path) -> io::Result<()> {
    fs::rename(tmp, path)?;
    let dir = path.parent().expect("snapshot files live in a directory");
    File::open(dir)?.sync_all()?;
    let Some(published) = published_index(path) else { return Ok(()) };
    for old in fs::read_dir(dir)? {
        let old = old?.path();
        if published_index(&old).is_some_and(|index| index < published) {
            let _ = fs::remove_file(old);
        }
    }
    Ok(())
}

/// Removes the temp files of builds and receives that a crash or kill interrupted. Call only
/// before Raft starts (no build or receive runs then).
pub fn remove_stale_temp_files(dir: &Path) -> io::Result<usize> {
    if !dir.exists() {
        return Ok(0);
    }
    let mut removed = 0;
    for item in fs::read_dir(dir)? {
        let path = item?.path();
        if path.extension().is_some_and(|e| e == "tmp") {
            fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// What `check_latest_at_start` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartCheck {
    /// No published snapshot.
    None,
    /// The newest snapshot's whole-file checksum matches.
    Intact { index: u64 },
    /// The newest snapshot was damaged: removed, and a new one built from the database.
    Rebuilt { damaged_index: u64, index: u64 },
}

/// Verifies the newest published snapshot's whole-file checksum before Raft starts; a damaged
/// one is removed and a new one built from the database. Without this a flipped byte in the
/// file was found only when the snapshot was next sent (a leader then stops its Raft: it must
/// not ship what it cannot vouch for) or read for its header. The database is the state (its
/// table blocks are verified at open); the file is only what this node sends to followers that
/// are behind its purged log, and the new one covers at least as much: the applied index is at
/// or past every snapshot this node published or installed (`finish_interrupted_install` runs
/// first, so an install whose file is damaged refuses the start instead). Blocking.
pub fn check_latest_at_start(db: &rocksdb::DB, dir: &Path) -> io::Result<StartCheck> {
    let Some(file) = latest(dir)? else { return Ok(StartCheck::None) };
    let damaged_index = published_index(&file.path).expect("`latest` returns published files");
    let error = match verify(&file.path) {
        Ok(meta) => return Ok(StartCheck::Intact { index: snapshot_index(&meta) }),
        Err(e) if matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof) => e,
        Err(e) => return Err(e),
    };
    tracing::error!(error = %error, path = %file.path.display(), "the newest snapshot is damaged: removing it and building a new one from the database");
    fs::remove_file(&file.path)?;
    let (meta, _) = build(db, dir)?;
    let index = snapshot_index(&meta);
    assert!(index >= damaged_index, "the applied index {index} is behind a snapshot this node published ({damaged_index})");
    Ok(StartCheck::Rebuilt { damaged_index, index })
}

/// The newest published snapshot in `dir`, if any.
pub fn latest(dir: &Path) -> io::Result<Option<SnapshotFile>> {
    if !dir.exists() {
        return Ok(None);
    }
    let mut newest: Option<(u64, PathBuf)> = None;
    for item in fs::read_dir(dir)? {
        let path = item?.path();
        if let Some(index) = published_index(&path) {
            if newest.as_ref().is_none_or(|(n, _)| index > *n) {
                newest = Some((index, path));
            }
        }
    }
    Ok(newest.map(|(_, path)| SnapshotFile { path }))
}

/// The most bytes a snapshot received into `dir` may take: half the space free there when the
/// transfer begins, since installing it writes about as much again into the database. Without
/// a bound a peer (buggy or not) could fill the disk the Raft log and the database live on.
pub fn receive_bytes_max(dir: &Path) -> io::Result<u64> {
    Ok(available_bytes(dir)? / 2)
}

/// Bytes available to this (unprivileged) process on the filesystem of `dir` (also the free-space
/// poll of `storage_full` and the `ledger_data_dir_free_bytes` gauge).
pub fn available_bytes(dir: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stat` a buffer of the right type; statvfs
    // writes it whole when it returns 0, and only then is it read.
    let stat = unsafe {
        if libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        stat.assume_init()
    };
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// Checks the whole-file checksum, then returns the meta. Reads the file once.
pub fn verify(path: &Path) -> io::Result<SnapshotMeta> {
    let mut file = BufReader::new(File::open(path)?);
    let len = fs::metadata(path)?.len();
    if len < (MAGIC.len() + 4 + 1 + 8 + 4) as u64 {
        return Err(corrupt(path, "too short"));
    }
    let mut hasher = crc32fast::Hasher::new();
    let mut remaining = len - 4;
    let mut buf = vec![0u8; 1 << 20];
    while remaining > 0 {
        let n = remaining.min(buf.len() as u64) as usize;
        file.read_exact(&mut buf[..n])?;
        hasher.update(&buf[..n]);
        remaining -= n as u64;
    }
    let mut crc = [0u8; 4];
    file.read_exact(&mut crc)?;
    if hasher.finalize().to_le_bytes() != crc {
        return Err(corrupt(path, "checksum mismatch"));
    }
    read_meta(path)
}

/// Reads the meta from the header (no whole-file check).
pub fn read_meta(path: &Path) -> io::Result<SnapshotMeta> {
    let mut file = BufReader::new(File::open(path)?);
    let mut magic = [0u8; 8];
    file.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(corrupt(path, "bad magic"));
    }
    let meta_bytes = read_field(&mut file, path)?;
    codec::decode(&format!("snapshot {} meta", path.display()), &meta_bytes)
}

fn read_field(file: &mut impl Read, path: &Path) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    file.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len);
    if len > FIELD_BYTES_MAX {
        return Err(corrupt(path, "field longer than any the ledger writes"));
    }
    let mut bytes = vec![0u8; len as usize];
    file.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Bytes of ledger rows gathered in one write batch at most while a snapshot is installed: the
/// install's memory is this (plus one row, ≤ 2 × 16 MiB), whatever the snapshot's size.
pub const INSTALL_BATCH_BYTES_MAX: usize = 4 << 20;

/// Bytes of rows an install writes between two flushes of the ledger tables. The rows arrive
/// faster than RocksDB's background flushes write them out, and the memtables they wait in
/// would otherwise grow with the snapshot (measured: 180 MiB resident after installing 256 MiB
/// with a 16 MiB memtable budget); flushing as it goes keeps them at this.
pub const INSTALL_FLUSH_BYTES: usize = 32 << 20;

/// What an install wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installed {
    pub records: u64,
    /// Write batches of rows (the first, which clears the tables, and the last not counted).
    pub batches: u64,
    /// The most bytes of rows one batch held.
    pub peak_batch_bytes: usize,
}

/// Replaces the state machine with the snapshot, streamed in bounded batches
/// (`INSTALL_BATCH_BYTES_MAX`), and atomic as far as anyone can see:
///
/// 1. One batch writes the install marker (`KEY_INSTALLING`: the meta and this file's path) and
///    clears every ledger table.
/// 2. The rows follow in batches of at most `INSTALL_BATCH_BYTES_MAX` bytes, not synced.
/// 3. The last batch writes the last rows, the applied log id and membership, and removes the
///    marker; synced, which makes every earlier batch durable too (one WAL).
///
/// No reader sees a half-installed state: every read view that holds the marker refuses
/// (`RocksSnapshot`, `state_hash`) or waits (`write`, the snapshot builder); every view without it
/// holds the old state or the new one whole. A crash in between leaves the marker: the next
/// start finishes the install from the same file (`finish_interrupted_install`) before Raft
/// reads the state, so the file must stay in place until this returns (it is published first).
pub fn install(db: &rocksdb::DB, path: &Path, expected: &SnapshotMeta) -> io::Result<Installed> {
    install_with(db, path, expected, INSTALL_BATCH_BYTES_MAX, None)
}

fn install_with(
    db: &rocksdb::DB,
    path: &Path,
    expected: &SnapshotMeta,
    batch_bytes_max: usize,
    crash_after_batches: Option<u64>,
) -> io::Result<Installed> {
    let meta = verify(path)?;
    if &meta != expected {
        return Err(corrupt(path, "meta differs from the one it was sent with"));
    }
    let mut file = BufReader::new(File::open(path)?);
    let mut skip = [0u8; 8];
    file.read_exact(&mut skip)?;
    read_field(&mut file, path)?;
    let sm_meta = cf(db, Cf::SmMeta);
    let mut batch = WriteBatch::default();
    batch.put_cf(sm_meta, KEY_INSTALLING, codec::encode(&(meta.clone(), path.to_string_lossy().into_owned())));
    // No key the ledger writes is 256 bytes of 0xff or more.
    let key_end = vec![0xffu8; 256];
    for table in Table::ALL {
        batch.delete_range_cf(cf(db, Cf::Ledger(table)), Vec::new(), key_end.clone());
    }
    db.write(batch).map_err(to_io)?;
    let mut done = Installed { records: 0, batches: 0, peak_batch_bytes: 0 };
    let (mut batch, mut batch_bytes, mut unflushed_bytes) = (WriteBatch::default(), 0usize, 0usize);
    loop {
        let mut tag = [0u8; 1];
        file.read_exact(&mut tag)?;
        if tag[0] == END_OF_RECORDS {
            break;
        }
        let table = table_from_u8(tag[0]).ok_or_else(|| corrupt(path, "unknown table"))?;
        let key = read_field(&mut file, path)?;
        let value = read_field(&mut file, path)?;
        batch_bytes += key.len() + value.len();
        batch.put_cf(cf(db, Cf::Ledger(table)), key, value);
        done.records += 1;
        if batch_bytes >= batch_bytes_max {
            done.peak_batch_bytes = done.peak_batch_bytes.max(batch_bytes);
            db.write(std::mem::take(&mut batch)).map_err(to_io)?;
            unflushed_bytes += batch_bytes;
            batch_bytes = 0;
            done.batches += 1;
            if unflushed_bytes >= INSTALL_FLUSH_BYTES {
                flush_ledger_tables(db)?;
                unflushed_bytes = 0;
            }
            if crash_after_batches.is_some_and(|n| done.batches >= n) {
                return Err(io::Error::other("install stopped by the test (a crash)"));
            }
        }
    }
    let mut count = [0u8; 8];
    file.read_exact(&mut count)?;
    if u64::from_le_bytes(count) != done.records {
        return Err(corrupt(path, "record count mismatch"));
    }
    done.peak_batch_bytes = done.peak_batch_bytes.max(batch_bytes);
    batch.put_cf(sm_meta, KEY_APPLIED, codec::encode(&meta.last_log_id));
    batch.put_cf(sm_meta, KEY_MEMBERSHIP, codec::encode(&meta.last_membership));
    batch.delete_cf(sm_meta, KEY_INSTALLING);
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    db.write_opt(batch, &opts).map_err(to_io)?;
    tracing::info!(records = done.records, batches = done.batches, path = %path.display(), "snapshot installed");
    Ok(done)
}

/// Writes the ledger tables' memtables out and waits. Only the marker's batch and the rows are
/// in them; the marker (in `sm_meta`, not flushed here) still guards the partial state, and the
/// WAL that holds it is kept until every column family with data in it is flushed.
fn flush_ledger_tables(db: &rocksdb::DB) -> io::Result<()> {
    let families: Vec<_> = Table::ALL.iter().map(|table| cf(db, Cf::Ledger(*table))).collect();
    let mut opts = rocksdb::FlushOptions::default();
    opts.set_wait(true);
    db.flush_cfs_opt(&families, &opts).map_err(to_io)
}

/// Whether a view holds the marker of an install in progress (its ledger tables are partial).
pub fn install_in_progress(get: impl Fn(&[u8]) -> io::Result<Option<Vec<u8>>>) -> io::Result<bool> {
    Ok(get(KEY_INSTALLING)?.is_some())
}

/// Finishes an install a crash interrupted, from the file its marker names. Blocking; call
/// before Raft reads the state. Refuses (the node does not start) if that file is gone.
pub fn finish_interrupted_install(db: &rocksdb::DB) -> io::Result<Option<Installed>> {
    let Some(bytes) = db.get_cf(cf(db, Cf::SmMeta), KEY_INSTALLING).map_err(to_io)? else { return Ok(None) };
    let (meta, path): (SnapshotMeta, String) = codec::decode(&"snapshot install marker", &bytes)?;
    tracing::warn!(index = snapshot_index(&meta), path, "finishing a snapshot install a crash interrupted");
    install(db, Path::new(&path), &meta).map(Some).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "a snapshot install (index {}) was interrupted and cannot be finished from {path}: {e}; the ledger \
                 tables are partial, so the node does not start: rebuild it (docs/operations.md, \"Rebuild a node \
                 whose data is lost\")",
                snapshot_index(&meta)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use openraft::LogId as RaftLogId;
    use openraft::impls::leader_id_adv::LeaderId;

    use super::*;

    fn db_applied_at(dir: &Path, index: u64) -> crate::storage::Db {
        let db = crate::storage::open(&dir.join("db")).unwrap();
        set_applied(&db, index);
        db
    }

    fn set_applied(db: &rocksdb::DB, index: u64) {
        let id = RaftLogId::new(LeaderId { term: 1, node_id: 1 }, index);
        db.put_cf(cf(db, Cf::SmMeta), KEY_APPLIED, codec::encode(&Some(id))).unwrap();
        db.put_cf(cf(db, Cf::Ledger(Table::ALL[0])), format!("row-{index}"), b"v").unwrap();
    }

    fn index_of(file: &SnapshotFile) -> u64 {
        snapshot_index(&read_meta(&file.path).unwrap())
    }

    /// A build that finishes after a newer snapshot was published neither replaces nor removes it.
    #[test]
    fn a_late_build_of_an_older_index_keeps_the_newer_snapshot() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("snapshots");
        let db = db_applied_at(tmp.path(), 200);
        let (_, newer) = build(&db, &dir).unwrap();
        set_applied(&db, 100);
        let (meta, older) = build(&db, &dir).unwrap();
        assert_eq!(snapshot_index(&meta), 100);
        let newest = latest(&dir).unwrap().expect("a snapshot");
        assert_eq!(newest.path, newer.path);
        assert_eq!(index_of(&newest), 200);
        verify(&newer.path).unwrap();
        assert!(older.path.exists(), "the late build's file stays until a newer one is published");
        // A newer publish removes both older ones.
        set_applied(&db, 300);
        build(&db, &dir).unwrap();
        assert!(!newer.path.exists() && !older.path.exists());
        assert_eq!(index_of(&latest(&dir).unwrap().unwrap()), 300);
    }

    /// An install published while a build is writing its temp file leaves the build working:
    /// its temp file is not removed, and it publishes afterwards without hiding the install.
    #[test]
    fn an_install_during_a_build_leaves_both_working() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("snapshots");
        let db = db_applied_at(tmp.path(), 100);
        let building = write(&db, &dir).unwrap();
        // Meanwhile a snapshot of 300 (from a leader) arrives and is installed and published.
        let leader = tempfile::tempdir().unwrap();
        let leader_db = db_applied_at(leader.path(), 300);
        let sent = write(&leader_db, &leader.path().join("out")).unwrap();
        let incoming = unique_temp_path(&dir, "incoming");
        fs::rename(&sent.tmp, &incoming).unwrap();
        install(&db, &incoming, &sent.meta).unwrap();
        publish(&incoming, &published_path(&dir, 300)).unwrap();
        assert!(building.tmp.exists(), "the install must not remove a build's temp file");
        // The build finishes.
        let built = published_path(&dir, snapshot_index(&building.meta));
        publish(&building.tmp, &built).unwrap();
        verify(&built).unwrap();
        assert_eq!(index_of(&latest(&dir).unwrap().unwrap()), 300);
        let (applied, _) = read_sm_meta(|k| db.get_cf(cf(&db, Cf::SmMeta), k).map_err(to_io)).unwrap();
        assert_eq!(applied.map(|id| id.index()), Some(300));
    }

    #[test]
    fn stale_temp_files_are_removed_at_start_and_published_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("snapshots");
        let db = db_applied_at(tmp.path(), 7);
        let (_, published) = build(&db, &dir).unwrap();
        let interrupted = write(&db, &dir).unwrap();
        fs::write(unique_temp_path(&dir, "incoming"), b"half a snapshot").unwrap();
        assert_eq!(remove_stale_temp_files(&dir).unwrap(), 2);
        assert!(!interrupted.tmp.exists() && published.path.exists());
    }

    /// A ledger of about `mib` MiB: 1 KiB rows spread over every table, applied at `index`.
    fn ledger_of(dir: &Path, mib: usize, index: u64) -> crate::storage::Db {
        let db = db_applied_at(dir, index);
        for i in 0..mib * 1_024 {
            let table = Table::ALL[i % Table::ALL.len()];
            let value: Vec<u8> = (0..1_024u32).map(|j| (i as u32).wrapping_mul(2_654_435_761).wrapping_add(j) as u8).collect();
            db.put_cf(cf(&db, Cf::Ledger(table)), format!("key-{i:08}"), value).unwrap();
        }
        db
    }

    fn hash(db: &rocksdb::DB) -> (u64, [u8; 32]) {
        crate::raft::state_machine::state_hash(db).unwrap()
    }

    /// Unit-level memory bound (a memory-limited node process would take minutes on this box):
    /// the install never gathers more than the batch bound (plus one row), whatever the size.
    #[test]
    fn an_install_streams_in_bounded_batches_and_gives_the_senders_state() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let source = ledger_of(from.path(), 12, 500);
        let (meta, file) = build(&source, &from.path().join("snapshots")).unwrap();
        let target = db_applied_at(to.path(), 3);
        target.put_cf(cf(&target, Cf::Ledger(Table::ALL[1])), b"a row the snapshot does not have", b"x").unwrap();
        let batch_max = 1 << 20;
        let installed = install_with(&target, &file.path, &meta, batch_max, None).unwrap();
        assert_eq!(installed.records, 12 * 1_024 + 1, "every row (and the one `db_applied_at` writes)");
        assert!(installed.batches >= 11, "{installed:?}");
        assert!(installed.peak_batch_bytes <= batch_max + 2_048, "{installed:?}");
        assert_eq!(hash(&target), hash(&source), "the sender's state, the old rows gone");
        assert!(!install_in_progress(|k| target.get_cf(cf(&target, Cf::SmMeta), k).map_err(to_io)).unwrap());
    }

    /// A crash in the middle of an install: nobody reads the partial tables (reads and hashes
    /// refuse, a snapshot build waits), and the next start finishes the install from the file.
    #[test]
    fn a_crash_mid_install_is_finished_at_the_next_start_and_the_partial_state_is_never_read() {
        use ledger_core::ReadStore;
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let source = ledger_of(from.path(), 4, 80);
        let (meta, file) = build(&source, &from.path().join("snapshots")).unwrap();
        let target = db_applied_at(to.path(), 3);
        let crashed = install_with(&target, &file.path, &meta, 256 << 10, Some(2));
        assert!(crashed.is_err());
        let read = crate::storage::RocksSnapshot::new(&target).get(Table::ALL[0], b"key-00000000");
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::WouldBlock);
        let hashed = crate::raft::state_machine::state_hash(&target);
        assert_eq!(hashed.unwrap_err().kind(), io::ErrorKind::WouldBlock);
        // A restart: the marker is durable with the partial rows.
        drop(target);
        let target = crate::storage::open(&to.path().join("db")).unwrap();
        let builder = {
            let (db, dir) = (target.clone(), to.path().join("snapshots"));
            std::thread::spawn(move || write(&db, &dir).map(|w| snapshot_index(&w.meta)))
        };
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(!builder.is_finished(), "a build waits while an install is in progress");
        // What `applied_state` does first at start.
        let finished = finish_interrupted_install(&target).unwrap().expect("an interrupted install");
        assert_eq!(finished.records, 4 * 1_024 + 1);
        assert_eq!(hash(&target), hash(&source));
        assert!(finish_interrupted_install(&target).unwrap().is_none(), "nothing left to finish");
        assert!(crate::storage::RocksSnapshot::new(&target).get(Table::ALL[0], b"key-00000000").unwrap().is_some());
        assert_eq!(builder.join().unwrap().unwrap(), 80, "the waiting build snapshots the installed state");
    }

    #[test]
    fn an_interrupted_install_whose_file_is_gone_refuses_to_start() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let source = ledger_of(from.path(), 1, 9);
        let (meta, file) = build(&source, &from.path().join("snapshots")).unwrap();
        let target = db_applied_at(to.path(), 3);
        assert!(install_with(&target, &file.path, &meta, 64 << 10, Some(1)).is_err());
        fs::remove_file(&file.path).unwrap();
        let err = finish_interrupted_install(&target).unwrap_err().to_string();
        assert!(err.contains("was interrupted and cannot be finished") && err.contains("Rebuild a node"), "{err}");
    }

    /// A flipped byte in the newest snapshot is found before Raft starts: the file is replaced
    /// by one built from the database, which carries the same rows.
    #[test]
    fn a_damaged_snapshot_is_rebuilt_at_start_and_an_intact_one_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = ledger_of(dir.path(), 1, 40);
        let snapshots = dir.path().join("snapshots");
        assert_eq!(check_latest_at_start(&db, &snapshots).unwrap(), StartCheck::None);
        let (_, file) = build(&db, &snapshots).unwrap();
        let sent_before = fs::read(&file.path).unwrap();
        assert_eq!(check_latest_at_start(&db, &snapshots).unwrap(), StartCheck::Intact { index: 40 });
        assert_eq!(fs::read(&file.path).unwrap(), sent_before, "an intact file is not rewritten");
        // Applied moves on after the snapshot; then a byte of the file flips.
        set_applied(&db, 55);
        let mut bytes = sent_before.clone();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
        fs::write(&file.path, &bytes).unwrap();
        assert!(verify(&file.path).is_err());
        let checked = check_latest_at_start(&db, &snapshots).unwrap();
        assert_eq!(checked, StartCheck::Rebuilt { damaged_index: 40, index: 55 });
        assert!(!file.path.exists(), "the damaged file is gone");
        let rebuilt = latest(&snapshots).unwrap().expect("a rebuilt snapshot");
        let meta = verify(&rebuilt.path).unwrap();
        assert_eq!(snapshot_index(&meta), 55);
        let to = tempfile::tempdir().unwrap();
        let target = db_applied_at(to.path(), 3);
        install(&target, &rebuilt.path, &meta).unwrap();
        assert_eq!(hash(&target), hash(&db), "the rebuilt snapshot carries the database's state");
        // A truncated file (a torn copy) is damage too.
        let len = fs::metadata(&rebuilt.path).unwrap().len();
        fs::OpenOptions::new().write(true).open(&rebuilt.path).unwrap().set_len(len / 3).unwrap();
        assert_eq!(check_latest_at_start(&db, &snapshots).unwrap(), StartCheck::Rebuilt { damaged_index: 55, index: 55 });
        assert!(verify(&latest(&snapshots).unwrap().unwrap().path).is_ok());
    }

    #[test]
    fn a_received_snapshot_may_take_half_the_free_space() {
        let dir = tempfile::tempdir().unwrap();
        let max = receive_bytes_max(dir.path()).unwrap();
        let free = available_bytes(dir.path()).unwrap();
        assert!(max > 0 && max == free / 2, "{max} of {free}");
        assert!(receive_bytes_max(&dir.path().join("missing")).is_err());
    }
}
