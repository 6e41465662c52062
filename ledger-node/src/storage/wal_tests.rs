//! Write-ahead-log recovery on the real RocksDB: a torn tail (bytes never synced) is dropped,
//! damage to a synced record refuses the open.

use std::path::{Path, PathBuf};

use rocksdb::{WriteBatch, WriteOptions};

use super::db::{Cf, cf};
use super::open;

/// The database's WAL files, oldest first (RocksDB numbers them in creation order).
fn wal_files(db_dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(db_dir)
        .expect("db dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs
}

fn last_wal(db_dir: &Path) -> PathBuf {
    wal_files(db_dir).pop().expect("a WAL file")
}

/// What a crash leaves on disk: every file as it is now, copied while the database is open (no
/// close, no flush of the memtables: the writes exist only in the WAL).
fn crash_image(db_dir: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("image dir");
    for entry in std::fs::read_dir(db_dir).expect("db dir") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, to.join(path.file_name().expect("file name"))).expect("copy");
    }
}

fn synced() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    opts
}

fn synced_key(i: u32) -> Vec<u8> {
    format!("synced-{i:04}").into_bytes()
}

fn synced_value(i: u32) -> Vec<u8> {
    (0..1_000u32).map(|j| (i.wrapping_mul(2_654_435_761).wrapping_add(j * 40_503) >> 11) as u8).collect()
}

/// A kill during a large write leaves its WAL record half written. That record was never synced
/// (so never acknowledged): the open drops it, whole, and keeps every synced write.
#[test]
fn a_torn_last_wal_record_is_dropped_and_every_synced_write_is_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, image) = (dir.path().join("db"), dir.path().join("crashed"));
    {
        let db = open(&path).expect("open");
        let family = cf(&db, Cf::RaftLog);
        for i in 0..200 {
            db.put_cf_opt(family, synced_key(i), synced_value(i), &synced()).expect("synced put");
        }
        let wal = last_wal(&path);
        let before = std::fs::metadata(&wal).expect("wal").len();
        // One 4 MiB batch, not synced: the torn write.
        let mut batch = WriteBatch::default();
        for j in 0..64u32 {
            batch.put_cf(family, format!("torn-{j:02}"), vec![j as u8; 64 << 10]);
        }
        db.write(batch).expect("unsynced 4 MiB batch");
        let after = std::fs::metadata(&wal).expect("wal").len();
        assert!(after - before >= 4 << 20, "the batch is in the WAL: {before} -> {after}");
        crash_image(&path, &image);
        // Cut the copy in the middle of the batch's record (it spans many 32 KiB WAL blocks).
        let cut = before + (after - before) / 2 + 123;
        std::fs::OpenOptions::new().write(true).open(last_wal(&image)).expect("wal copy").set_len(cut).expect("truncate");
    }
    let db = open(&image).expect("a torn tail must not stop the node");
    let family = cf(&db, Cf::RaftLog);
    for i in 0..200 {
        assert_eq!(db.get_cf(family, synced_key(i)).expect("get").as_deref(), Some(&synced_value(i)[..]), "synced write {i}");
    }
    for j in 0..64u32 {
        assert!(db.get_cf(family, format!("torn-{j:02}")).expect("get").is_none(), "a torn batch is dropped whole ({j})");
    }
    // The recovered database takes writes and reopens.
    db.put_cf_opt(family, b"after", b"recovery", &synced()).expect("write after recovery");
    drop(db);
    let db = open(&image).expect("reopen");
    assert_eq!(db.get_cf(cf(&db, Cf::RaftLog), b"after").expect("get").as_deref(), Some(&b"recovery"[..]));
}

/// A flipped byte inside a synced record (not at the tail): the open refuses, naming the damage
/// and what to do, instead of replaying up to it and forgetting what followed.
#[test]
fn a_flipped_byte_in_a_synced_wal_record_refuses_the_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, image) = (dir.path().join("db"), dir.path().join("damaged"));
    {
        let db = open(&path).expect("open");
        let family = cf(&db, Cf::RaftLog);
        for i in 0..400 {
            db.put_cf_opt(family, synced_key(i), synced_value(i), &synced()).expect("synced put");
        }
        crash_image(&path, &image);
    }
    let wal = last_wal(&image);
    let mut bytes = std::fs::read(&wal).expect("read wal");
    assert!(bytes.len() > 300_000, "400 records of 1 KB: {}", bytes.len());
    // The middle of the file: inside record ~200 of 400, far from the tail.
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&wal, &bytes).expect("write wal");

    let error = open(&image).err().expect("a damaged synced record must refuse the open");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
    let message = error.to_string();
    assert!(message.contains("is damaged") && message.contains("refuses to start"), "{message}");
    assert!(message.contains("Rebuild a node whose data is lost"), "names the procedure: {message}");
    assert!(message.to_lowercase().contains("corruption"), "RocksDB's own words: {message}");
}
