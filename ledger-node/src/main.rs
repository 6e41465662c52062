//! `ledger-node`: runs one ledger replica.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ledger_node::server::{self, NodeConfig};

#[derive(Parser)]
#[command(name = "ledger-node", version, about = "A replicated double-entry ledger node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a single-node ledger: initialises the data dir on first start, reopens it after.
    Dev {
        /// Where the database and snapshots live.
        #[arg(long, env = "LEDGER_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// Address for clients (and peers).
        #[arg(long, env = "LEDGER_LISTEN", default_value = "127.0.0.1:7070")]
        listen: SocketAddr,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEDGER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown signal received");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    match Cli::parse().command {
        Command::Dev { data_dir, listen } => {
            let config = NodeConfig {
                node_id: 1,
                listen,
                advertise: format!("http://{listen}"),
                data_dir,
                bootstrap_single: true,
            };
            server::run(config, shutdown_signal()).await
        }
    }
}
