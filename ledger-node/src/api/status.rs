//! Service errors as gRPC statuses. A client reads `x-ledger-leader` to follow the leader and
//! `x-ledger-outcome: unknown` to know a write may have been applied (retry with the same key).

use tonic::Status;
use tonic::metadata::MetadataValue;

use crate::service::ServiceError;

pub const LEADER_HEADER: &str = "x-ledger-leader";
pub const OUTCOME_HEADER: &str = "x-ledger-outcome";

pub fn to_status(e: ServiceError) -> Status {
    match e {
        ServiceError::NotLeader { leader_addr } => {
            let mut status = Status::unavailable(format!(
                "this node is not the leader; leader: {}",
                leader_addr.as_deref().unwrap_or("unknown (election in progress)")
            ));
            if let Some(addr) = leader_addr.and_then(|a| MetadataValue::try_from(a).ok()) {
                status.metadata_mut().insert(LEADER_HEADER, addr);
            }
            status
        }
        ServiceError::Unknown(why) => {
            let mut status = Status::unavailable(format!("commit outcome unknown: {why}"));
            status.metadata_mut().insert(OUTCOME_HEADER, MetadataValue::from_static("unknown"));
            status
        }
        ServiceError::NoQuorum(why) => Status::unavailable(why),
        ServiceError::Unavailable(why) => Status::unavailable(why),
        ServiceError::Refused(why) => Status::failed_precondition(why),
        ServiceError::Fatal(why) if crate::storage_full::caused_by_full_disk(&why) => Status::unavailable(format!(
            "this node's disk is full: it refuses writes and linearizable reads until space returns, then starts \
             afresh by itself; ask another node ({why})"
        )),
        ServiceError::Fatal(why) => Status::internal(format!("node stopped serving: {why}")),
        ServiceError::Storage(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Status::data_loss(format!("refusing to serve corrupted state: {e}"))
        }
        // A snapshot install in progress (storage::db::install_in_progress_error): transient.
        ServiceError::Storage(e) if e.kind() == std::io::ErrorKind::WouldBlock => Status::unavailable(e.to_string()),
        ServiceError::Storage(e) => Status::internal(e.to_string()),
    }
}

pub fn storage(e: std::io::Error) -> Status {
    to_status(ServiceError::Storage(e))
}
