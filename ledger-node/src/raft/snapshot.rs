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
use crate::codec;
use crate::ledger::Table;
use crate::storage::db::{Cf, cf, to_io};

const MAGIC: &[u8; 8] = b"LGSNAP01";
const END_OF_RECORDS: u8 = 0xff;
/// Bytes in one key or value at most; anything larger is corruption, not data.
const FIELD_BYTES_MAX: u32 = 16 << 20;
pub const KEY_APPLIED: &[u8] = b"applied";
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
    fs::create_dir_all(dir)?;
    let view = db.snapshot();
    // The meta comes from the same view as the data: a snapshot never claims more or less than it holds.
    let (last_log_id, last_membership) = read_sm_meta(|k| view.get_cf(cf(db, Cf::SmMeta), k).map_err(to_io))?;
    let meta = SnapshotMeta { last_log_id, last_membership };
    let index = meta.last_log_id.as_ref().map(|id| id.index()).unwrap_or(0);
    let tmp = dir.join(format!("snapshot-{index:020}.tmp"));
    let mut out = HashingWriter { inner: BufWriter::new(File::create(&tmp)?), hasher: crc32fast::Hasher::new() };
    out.write_all(MAGIC)?;
    let meta_bytes = codec::encode(&meta);
    out.write_all(&(meta_bytes.len() as u32).to_le_bytes())?;
    out.write_all(&meta_bytes)?;
    let mut records: u64 = 0;
    for (table_index, table) in Table::ALL.iter().enumerate() {
        for item in view.iterator_cf(cf(db, Cf::Ledger(*table)), IteratorMode::Start) {
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
    drop(file);
    let path = dir.join(format!("snapshot-{index:020}.bin"));
    publish(&tmp, &path)?;
    tracing::info!(index, records, path = %path.display(), "snapshot built");
    Ok((meta, SnapshotFile { path }))
}

/// Renames a complete snapshot into place, fsyncs the directory, removes older snapshots.
pub fn publish(tmp: &Path, path: &Path) -> io::Result<()> {
    fs::rename(tmp, path)?;
    let dir = path.parent().expect("snapshot files live in a directory");
    File::open(dir)?.sync_all()?;
    for old in fs::read_dir(dir)? {
        let old = old?.path();
        let is_snapshot = old.extension().is_some_and(|e| e == "bin" || e == "tmp");
        if is_snapshot && old != path && old != tmp {
            let _ = fs::remove_file(old);
        }
    }
    Ok(())
}

/// The newest snapshot in `dir`, if any.
pub fn latest(dir: &Path) -> io::Result<Option<SnapshotFile>> {
    if !dir.exists() {
        return Ok(None);
    }
    let mut newest: Option<PathBuf> = None;
    for item in fs::read_dir(dir)? {
        let path = item?.path();
        if path.extension().is_some_and(|e| e == "bin") && newest.as_ref().is_none_or(|n| path > *n) {
            newest = Some(path);
        }
    }
    Ok(newest.map(|path| SnapshotFile { path }))
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

/// Replaces the state machine with the snapshot, atomically: one WriteBatch deletes every ledger
/// row and writes the snapshot's, with its meta, synced. A crash before it leaves the old state.
pub fn install(db: &rocksdb::DB, path: &Path, expected: &SnapshotMeta) -> io::Result<()> {
    let meta = verify(path)?;
    if &meta != expected {
        return Err(corrupt(path, "meta differs from the one it was sent with"));
    }
    let mut file = BufReader::new(File::open(path)?);
    let mut skip = [0u8; 8];
    file.read_exact(&mut skip)?;
    read_field(&mut file, path)?;
    let mut batch = WriteBatch::default();
    // No key the ledger writes is 256 bytes of 0xff or more.
    let key_end = vec![0xffu8; 256];
    for table in Table::ALL {
        batch.delete_range_cf(cf(db, Cf::Ledger(table)), Vec::new(), key_end.clone());
    }
    let mut records: u64 = 0;
    loop {
        let mut tag = [0u8; 1];
        file.read_exact(&mut tag)?;
        if tag[0] == END_OF_RECORDS {
            break;
        }
        let table = table_from_u8(tag[0]).ok_or_else(|| corrupt(path, "unknown table"))?;
        let key = read_field(&mut file, path)?;
        let value = read_field(&mut file, path)?;
        batch.put_cf(cf(db, Cf::Ledger(table)), key, value);
        records += 1;
    }
    let mut count = [0u8; 8];
    file.read_exact(&mut count)?;
    if u64::from_le_bytes(count) != records {
        return Err(corrupt(path, "record count mismatch"));
    }
    let sm_meta = cf(db, Cf::SmMeta);
    batch.put_cf(sm_meta, KEY_APPLIED, codec::encode(&meta.last_log_id));
    batch.put_cf(sm_meta, KEY_MEMBERSHIP, codec::encode(&meta.last_membership));
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    db.write_opt(batch, &opts).map_err(to_io)?;
    tracing::info!(records, path = %path.display(), "snapshot installed");
    Ok(())
}
