//! Generates the gRPC code with protox, a pure-Rust protobuf compiler: no system `protoc` needed.
//! Also writes the list of every served method path (`/package.Service/Method`) from the same
//! file descriptor set, so the node can check that its authorization table covers each one, and the
//! encoded set itself, which the node's reflection service serves.
use std::fmt::Write as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/ledger/v1/ledger.proto",
        "proto/ledger/v1/cluster.proto",
        "proto/ledger/v1/raft.proto",
        "proto/ledger/v1/wallet.proto",
        "proto/ledger/v1/audit.proto",
        "proto/ledger/v1/risk.proto",
        "proto/ledger/v1/accounts.proto",
        "proto/ledger/v1/feed.proto",
        "proto/ledger/v1/query.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let mut methods = String::from(
        "/// Every gRPC method path of every service in the compiled .proto files.\npub const METHOD_PATHS: &[&str] = &[\n",
    );
    for file in &fds.file {
        let package = file.package.clone().unwrap_or_default();
        for service in &file.service {
            for method in &service.method {
                let service_name = service.name.clone().unwrap_or_default();
                let method_name = method.name.clone().unwrap_or_default();
                writeln!(methods, "    \"/{package}.{service_name}/{method_name}\",")?;
            }
        }
    }
    methods.push_str("];\n");
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("method_paths.rs"), methods)?;
    // The encoded set, for the server reflection service (grpcurl, Postman need no .proto files).
    std::fs::write(out_dir.join("file_descriptor_set.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure().btree_map(".").compile_fds(fds)?;
    Ok(())
}
