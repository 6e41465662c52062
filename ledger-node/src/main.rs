//! `ledger-node`: runs one ledger replica.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ledger_node::config::{NodeConfig, StartArgs};
use ledger_node::server;

#[derive(Parser)]
#[command(name = "ledger-node", version, about = "A replicated double-entry ledger node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on standard error: `text` for people, `json` (one object per line: timestamp,
    /// level, target, fields, spans) for log shippers.
    #[arg(long, global = true, env = "LEDGER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
        /// Serve Prometheus metrics over HTTP on this address (off by default).
        #[arg(long, env = "LEDGER_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
    },
    /// Run one member of a cluster (README: "Run a 3-node cluster on one machine").
    Start {
        /// TOML file with any of the keys below (flags and environment variables win over it).
        #[arg(long, env = "LEDGER_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        args: StartArgs,
    },
    /// Creates a new data dir from a backup (`ledger backup`): the backed-up state as the one
    /// member of a new cluster (docs/operations.md, "Backup and restore").
    Restore(ledger_node::restore::RestoreArgs),
    /// Reads a token on standard input and prints its SHA-256, the `sha256` of a tokens-file entry.
    HashToken,
    /// Makes TLS files for a test cluster into --dir: a cluster CA (created once, reused after),
    /// node certificates (`--node ID=HOST[,HOST...]`) and client certificates (`--client NAME`).
    /// Keys are written mode 600; existing files are never overwritten.
    Certs {
        #[arg(long)]
        dir: PathBuf,
        /// The cluster the node certificates name (URI SAN ledger://<cluster>/node/<id>).
        #[arg(long, env = "LEDGER_CLUSTER_NAME", default_value = "ledger")]
        cluster_name: String,
        /// A node and the hosts (names or IP addresses) clients and peers dial it at; repeat.
        #[arg(long = "node", value_parser = ledger_node::certs::parse_node)]
        nodes: Vec<ledger_node::certs::Request>,
        /// A client certificate with this subject common name; repeat.
        #[arg(long = "client")]
        clients: Vec<String>,
    },
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEDGER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn,openraft::core::heartbeat=error"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(false).init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let config = match cli.command {
        Command::Dev { data_dir, listen, metrics_listen } => NodeConfig::dev(data_dir, listen, metrics_listen),
        Command::Start { config, args } => args.resolve(config.as_deref())?,
        Command::Restore(args) => return ledger_node::restore::run(args),
        Command::HashToken => {
            let mut token = String::new();
            std::io::stdin().read_line(&mut token)?;
            let token = token.trim_end_matches(['\n', '\r']);
            anyhow::ensure!(!token.is_empty(), "no token on standard input");
            println!("{}", ledger_node::api::auth::hex(&ledger_node::api::auth::token_digest(token)));
            return Ok(());
        }
        Command::Certs { dir, cluster_name, mut nodes, clients } => {
            nodes.extend(clients.into_iter().map(|name| ledger_node::certs::Request::Client { name }));
            for file in ledger_node::certs::generate(&dir, &cluster_name, &nodes)? {
                println!("{}", dir.join(file).display());
            }
            return Ok(());
        }
    };
    match server::run(config, ledger_node::shutdown::signal()).await? {
        server::Stopped::Shutdown => Ok(()),
        server::Stopped::StartAfresh => Err(ledger_node::storage_full::start_afresh()),
    }
}
