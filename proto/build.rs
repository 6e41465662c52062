//! Generates the gRPC code with protox, a pure-Rust protobuf compiler: no system `protoc` needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/ledger/v1/ledger.proto",
        "proto/ledger/v1/cluster.proto",
        "proto/ledger/v1/raft.proto",
        "proto/ledger/v1/wallet.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .btree_map(".")
        .compile_fds(fds)?;
    Ok(())
}
