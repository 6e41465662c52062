//! Generated gRPC types and services. Contracts live in `proto/ledger/v1/*.proto`; no logic here
//! but `convert`: the one mapping between the shared vocabulary (`ledger-core`) and the proto
//! types, used by the node and the client alike.

pub mod convert;

pub mod ledger {
    pub mod v1 {
        tonic::include_proto!("ledger.v1");
    }
    pub mod raft {
        pub mod v1 {
            tonic::include_proto!("ledger.raft.v1");
        }
    }
}

pub use ledger::raft::v1 as raft;
pub use ledger::v1 as api;

include!(concat!(env!("OUT_DIR"), "/method_paths.rs"));

/// The encoded `google.protobuf.FileDescriptorSet` of every compiled .proto file: what the node's
/// gRPC server reflection serves (`grpcurl list`, `grpcurl describe`).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.bin"));
