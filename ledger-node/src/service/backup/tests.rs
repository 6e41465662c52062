use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use openraft::LogId as RaftLogId;

use super::*;
use ledger_core::Table;
use crate::raft::snapshot::KEY_APPLIED;

fn log_id(term: u64, index: u64) -> LogId {
    RaftLogId::new(openraft::impls::leader_id_adv::LeaderId { term, node_id: 2 }, index)
}

/// A database with some ledger rows, applied up to `index`, and an old cluster's Raft state.
fn populated(path: &Path, index: u64) -> crate::storage::Db {
    let db = crate::storage::open(path).unwrap();
    let mut batch = WriteBatch::default();
    for i in 0..100u32 {
        batch.put_cf(cf(&db, Cf::Ledger(Table::Accounts)), i.to_be_bytes(), format!("account {i}"));
    }
    batch.put_cf(cf(&db, Cf::SmMeta), KEY_APPLIED, codec::encode(&Some(log_id(3, index))));
    batch.put_cf(cf(&db, Cf::RaftMeta), KEY_VOTE, codec::encode(&Vote::new(3, 2)));
    batch.put_cf(cf(&db, Cf::RaftLog), index.to_be_bytes(), b"an old entry".to_vec());
    db.write(batch).unwrap();
    db
}

fn target(data_dir: PathBuf) -> RestoreTarget {
    RestoreTarget {
        data_dir,
        node_id: 7,
        cluster_name: "recovered".into(),
        advertise: "http://10.0.0.7:7070".into(),
        peer_advertise: "http://10.0.0.7:7071".into(),
    }
}

#[test]
fn a_restored_backup_has_the_backed_up_state_under_a_new_one_node_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let db = populated(&tmp.path().join("live"), 42);
    let backup_dir = tmp.path().join("backup");
    let manifest = create(&db, &backup_dir, "ledger", 2).unwrap();
    let (live_index, live_hash) = crate::raft::state_machine::state_hash(&db).unwrap();
    assert_eq!((manifest.applied_index, manifest.applied_term), (42, 3));
    assert_eq!((manifest.applied_index, manifest.state_hash.clone()), (live_index, hex(&live_hash)));
    assert!(manifest.files.iter().any(|f| f.name.ends_with(".sst")), "{:?}", manifest.files);
    assert_eq!(read_manifest(&backup_dir).unwrap(), manifest);

    let restored = restore(&backup_dir, &target(tmp.path().join("new"))).unwrap();
    let db = crate::storage::open(&tmp.path().join("new").join(DB_DIR)).unwrap();
    assert_eq!(crate::raft::state_machine::state_hash(&db).unwrap(), (live_index, live_hash));
    // The old cluster's log and vote are gone; the new cluster continues after the backup.
    assert!(db.iterator_cf(cf(&db, Cf::RaftLog), rocksdb::IteratorMode::Start).next().is_none());
    let meta = |key| db.get_cf(cf(&db, Cf::RaftMeta), key).unwrap().unwrap();
    assert_eq!(codec::decode::<Vote>(&"vote", &meta(KEY_VOTE)).unwrap(), Vote::new(4, 7));
    assert_eq!(codec::decode::<LogId>(&"purged", &meta(KEY_LAST_PURGED)).unwrap(), log_id(3, 42));
    let (applied, membership) = snapshot::read_sm_meta(|k| db.get_cf(cf(&db, Cf::SmMeta), k).map_err(to_io)).unwrap();
    assert_eq!(applied, Some(log_id(3, 42)));
    let voters: Vec<NodeId> = membership.membership().voter_ids().collect();
    assert_eq!(voters, vec![7]);
    let me = membership.membership().get_node(&7).unwrap();
    assert_eq!((me.api.as_str(), me.incarnation), ("http://10.0.0.7:7070", restored.incarnation));
    let identity = std::fs::read_to_string(tmp.path().join("new/identity.toml")).unwrap();
    assert!(identity.contains("recovered"), "{identity}");
    assert!(snapshot::latest(&tmp.path().join("new/snapshots")).unwrap().is_some(), "a snapshot for joining members");
}

#[test]
fn a_changed_byte_in_a_backup_file_is_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let db = populated(&tmp.path().join("live"), 5);
    let backup_dir = tmp.path().join("backup");
    let manifest = create(&db, &backup_dir, "ledger", 2).unwrap();
    let victim = manifest.files.iter().find(|f| f.name.ends_with(".sst")).unwrap();
    let path = backup_dir.join(&victim.name);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    // A hard-linked file shares its inode with the live database's: write a new file instead.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let err = format!("{:#}", restore(&backup_dir, &target(tmp.path().join("new"))).unwrap_err());
    assert!(err.contains(&victim.name) && err.contains("damaged"), "{err}");
    assert!(!tmp.path().join("new").exists(), "nothing is left of a refused restore");

    std::fs::write(backup_dir.join("db/EXTRA"), b"x").unwrap();
    let err = format!("{:#}", verify(&backup_dir, &manifest).unwrap_err());
    assert!(err.contains("db/EXTRA"), "{err}");
}

#[test]
fn a_backup_needs_an_absolute_new_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let db = populated(&tmp.path().join("live"), 5);
    let relative = create(&db, Path::new("backups/today"), "ledger", 2).unwrap_err();
    assert_eq!(relative.kind(), io::ErrorKind::InvalidInput);
    let exists = create(&db, tmp.path(), "ledger", 2).unwrap_err();
    assert_eq!(exists.kind(), io::ErrorKind::AlreadyExists);
    let orphan = create(&db, &tmp.path().join("no/such/parent"), "ledger", 2).unwrap_err();
    assert_eq!(orphan.kind(), io::ErrorKind::InvalidInput);
    // An unfinished backup (no manifest) is refused by restore.
    std::fs::create_dir(tmp.path().join("half")).unwrap();
    let err = format!("{:#}", restore(&tmp.path().join("half"), &target(tmp.path().join("new"))).unwrap_err());
    assert!(err.contains("unfinished"), "{err}");
}

/// A checkpoint taken while batches write one counter into two column families holds the same
/// counter in both: it is one point in time across column families (the applied index and the
/// ledger rows of one apply batch are never split).
#[test]
fn a_backup_taken_during_writes_is_consistent_across_column_families() {
    let tmp = tempfile::tempdir().unwrap();
    let db = populated(&tmp.path().join("live"), 1);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let mut batch = WriteBatch::default();
                batch.put_cf(cf(&db, Cf::Ledger(Table::Transfers)), b"counter", n.to_be_bytes());
                batch.put_cf(cf(&db, Cf::Ledger(Table::Accounts)), n.to_be_bytes(), vec![7u8; 200]);
                batch.put_cf(cf(&db, Cf::SmMeta), b"counter", n.to_be_bytes());
                db.write(batch).unwrap();
            }
            n
        })
    };
    let mut seen = Vec::new();
    for round in 0..8 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let dir = tmp.path().join(format!("backup{round}"));
        create(&db, &dir, "ledger", 2).unwrap();
        let copy = crate::storage::db::open_with(&dir.join(DB_DIR), true).unwrap();
        let ledger = copy.get_cf(cf(&copy, Cf::Ledger(Table::Transfers)), b"counter").unwrap().unwrap();
        let meta = copy.get_cf(cf(&copy, Cf::SmMeta), b"counter").unwrap().unwrap();
        assert_eq!(ledger, meta, "round {round}");
        let n = u64::from_be_bytes(meta.try_into().unwrap());
        assert!(copy.get_cf(cf(&copy, Cf::Ledger(Table::Accounts)), n.to_be_bytes()).unwrap().is_some());
        assert!(copy.get_cf(cf(&copy, Cf::Ledger(Table::Accounts)), (n + 1).to_be_bytes()).unwrap().is_none());
        seen.push(n);
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "backups taken while writing: {seen:?}");
    assert!(*seen.last().unwrap() <= written);
}

#[test]
fn a_backup_of_another_data_format_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let db = populated(&tmp.path().join("live"), 5);
    let backup_dir = tmp.path().join("backup");
    let mut manifest = create(&db, &backup_dir, "ledger", 2).unwrap();
    assert_eq!(manifest.data_format_version, ledger_core::codec::FORMAT_VERSION);
    manifest.data_format_version = ledger_core::codec::FORMAT_VERSION + 1;
    std::fs::write(backup_dir.join(MANIFEST_FILE), toml::to_string(&manifest).unwrap()).unwrap();
    let err = format!("{:#}", restore(&backup_dir, &target(tmp.path().join("new"))).unwrap_err());
    assert!(err.contains("data format"), "{err}");
    assert!(!tmp.path().join("new").exists());
}
