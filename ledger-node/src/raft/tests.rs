//! openraft's own conformance suite against the RocksDB log store and state machine.

use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};

use super::TypeConfig;
use super::log_store::LogStore;
use super::state_machine::StateMachine;
use crate::storage;

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for RocksBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = storage::open(&dir.path().join("db")).expect("open db");
        let log = LogStore::new(db.clone()).expect("log store");
        let sm = StateMachine::new(db, dir.path().join("snapshots"));
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocksdb_storage_passes_the_openraft_suite() {
    Suite::test_all(RocksBuilder).await.expect("openraft storage suite");
}
