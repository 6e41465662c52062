//! Operational metrics, exported for Prometheus over HTTP (`metrics_listen`, off by default).
//!
//! Instrumented code records through the `metrics` facade (a no-op until a recorder is installed,
//! so tests and nodes without `metrics_listen` pay an atomic load per record). This module owns
//! the names, the histogram buckets, the exporter and the samplers that read state on a timer:
//! Raft's metrics watch, RocksDB properties and the auth denial counters. Every name and what to
//! alert on is listed in docs/operations.md ("Metrics").

pub mod requests;
pub mod samplers;

use std::net::SocketAddr;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

// gRPC requests (client port), by method and status code.
pub const GRPC_REQUESTS_TOTAL: &str = "ledger_grpc_requests_total";
pub const GRPC_REQUEST_DURATION_SECONDS: &str = "ledger_grpc_request_duration_seconds";
// Ledger write results, by item result code.
pub const WRITE_RESULTS_TOTAL: &str = "ledger_write_results_total";
pub const TRANSFERS_APPLIED_TOTAL: &str = "ledger_transfers_applied_total";
// Proposals: propose → applied response on the proposing node.
pub const COMMIT_LATENCY_SECONDS: &str = "ledger_commit_latency_seconds";
pub const GROUP_COMMIT_TRANSFERS: &str = "ledger_group_commit_transfers";
pub const GROUP_COMMIT_REQUESTS: &str = "ledger_group_commit_requests";
// State machine apply calls.
pub const APPLY_LATENCY_SECONDS: &str = "ledger_apply_latency_seconds";
pub const APPLY_ENTRIES: &str = "ledger_apply_entries";
// Raft.
pub const RAFT_TERM: &str = "ledger_raft_term";
pub const RAFT_LEADER_ID: &str = "ledger_raft_leader_id";
pub const RAFT_IS_LEADER: &str = "ledger_raft_is_leader";
pub const RAFT_LEADER_CHANGES_TOTAL: &str = "ledger_raft_leader_changes_total";
pub const RAFT_LAST_LOG_INDEX: &str = "ledger_raft_last_log_index";
pub const RAFT_COMMITTED_INDEX: &str = "ledger_raft_committed_index";
pub const RAFT_APPLIED_INDEX: &str = "ledger_raft_applied_index";
pub const RAFT_SNAPSHOT_INDEX: &str = "ledger_raft_snapshot_index";
pub const RAFT_PURGED_INDEX: &str = "ledger_raft_purged_index";
// RocksDB, summed over column families.
pub const ROCKSDB_PENDING_COMPACTION_BYTES: &str = "ledger_rocksdb_pending_compaction_bytes";
pub const ROCKSDB_MEMTABLE_BYTES: &str = "ledger_rocksdb_memtable_bytes";
pub const ROCKSDB_LIVE_DATA_BYTES: &str = "ledger_rocksdb_live_data_bytes";
// Sizes on disk of the Raft log and the snapshot.
pub const RAFT_LOG_BYTES: &str = "ledger_raft_log_bytes";
pub const SNAPSHOT_BYTES: &str = "ledger_snapshot_bytes";
/// Free bytes in the data dir's filesystem: a full disk stops Raft on this node (`storage_full`).
pub const DATA_DIR_FREE_BYTES: &str = "ledger_data_dir_free_bytes";
// Authentication.
pub const AUTH_DENIALS_TOTAL: &str = "ledger_auth_denials_total";
pub const LEDGER_TIME_CLAMPED_TOTAL: &str = "ledger_time_clamped_total";

/// Latency buckets (seconds): 100 µs to 10 s, about ×2.5 apart.
const SECONDS_BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0];
/// Count buckets (entries per apply call, transfers or requests per group commit), up to the
/// batch bounds (`BATCH_ITEMS_MAX`).
const COUNT_BUCKETS: [f64; 12] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 8192.0];

/// Installs the global recorder and serves `GET /metrics` on `listen` (in the current runtime).
pub fn install(listen: SocketAddr) -> anyhow::Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(listen)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(APPLY_ENTRIES.into()), &COUNT_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(GROUP_COMMIT_TRANSFERS.into()), &COUNT_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(GROUP_COMMIT_REQUESTS.into()), &COUNT_BUCKETS)?
        .install()
        .with_context(|| format!("serving metrics on {listen}"))?;
    describe();
    tracing::info!(%listen, "serving Prometheus metrics on http://{listen}/metrics");
    Ok(())
}

/// HELP lines for the exposition.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(GRPC_REQUESTS_TOTAL, "gRPC calls on the client port, by method and grpc status code");
    describe_histogram!(GRPC_REQUEST_DURATION_SECONDS, Unit::Seconds, "gRPC call time to response headers, by method");
    describe_counter!(WRITE_RESULTS_TOTAL, "Write items answered, by operation and result code");
    describe_counter!(TRANSFERS_APPLIED_TOTAL, "Transfers created (result OK) through this node");
    describe_histogram!(COMMIT_LATENCY_SECONDS, Unit::Seconds, "Raft proposal to applied response, on the proposing node");
    describe_histogram!(GROUP_COMMIT_TRANSFERS, "Transfers per coalesced CreateTransfers entry");
    describe_histogram!(GROUP_COMMIT_REQUESTS, "Requests per coalesced CreateTransfers entry");
    describe_histogram!(APPLY_LATENCY_SECONDS, Unit::Seconds, "State machine apply call (one RocksDB write batch)");
    describe_histogram!(APPLY_ENTRIES, "Raft entries per state machine apply call");
    describe_gauge!(RAFT_TERM, "Current Raft term");
    describe_gauge!(RAFT_LEADER_ID, "Node id of the current leader as this node knows it; 0 if none");
    describe_gauge!(RAFT_IS_LEADER, "1 if this node is the leader");
    describe_counter!(RAFT_LEADER_CHANGES_TOTAL, "Times the known leader changed (including to none)");
    describe_gauge!(RAFT_LAST_LOG_INDEX, "Index of the last entry in this node's log");
    describe_gauge!(RAFT_COMMITTED_INDEX, "Index of the last entry known committed");
    describe_gauge!(RAFT_APPLIED_INDEX, "Index of the last entry applied to the state machine");
    describe_gauge!(RAFT_SNAPSHOT_INDEX, "Last index included in this node's snapshot");
    describe_gauge!(RAFT_PURGED_INDEX, "Last log index purged (compacted away)");
    describe_gauge!(ROCKSDB_PENDING_COMPACTION_BYTES, Unit::Bytes, "rocksdb.estimate-pending-compaction-bytes, all column families");
    describe_gauge!(ROCKSDB_MEMTABLE_BYTES, Unit::Bytes, "rocksdb.cur-size-all-mem-tables, all column families");
    describe_gauge!(ROCKSDB_LIVE_DATA_BYTES, Unit::Bytes, "rocksdb.estimate-live-data-size, all column families");
    describe_counter!(
        LEDGER_TIME_CLAMPED_TOTAL,
        "Proposals whose time was clamped: this node's clock was more than the allowed skew ahead of the voters' median clock"
    );
    describe_counter!(AUTH_DENIALS_TOTAL, "Client calls refused by authentication, by reason");
    describe_gauge!(RAFT_LOG_BYTES, Unit::Bytes, "Raft log on disk: SST files plus memtables of the raft_log column family");
    describe_gauge!(SNAPSHOT_BYTES, Unit::Bytes, "Snapshot files in the data dir (the current one, and one being built or received)");
}
