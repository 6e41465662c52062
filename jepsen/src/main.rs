//! `jepsen`: one fault-injection run against real `ledger-node` processes (see README.md).

use std::path::PathBuf;

use clap::Parser;
use jepsen::run::{Options, run};
use jepsen::schedule::Nemesis;

#[derive(Parser)]
#[command(about = "Fault-injection run: real nodes, real faults, checked histories")]
struct Args {
    /// `bank` (transfers and reads) or `two-phase` (holds posted, voided, raced, expired).
    #[arg(long, default_value = "bank")]
    workload: String,
    /// Comma-separated: kill, pause, partition, membership, corrupt, clock, kill-all,
    /// snapshot-kill, disk-full, corrupt-files, client-partition ("none" for no faults). With `--rotate`: the
    /// nemeses to rotate through ("all", the default there, for every one).
    #[arg(long, default_value = "kill")]
    nemesis: String,
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Seconds of client load; faults heal 5 s before the end.
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    /// Target operations per second over all clients.
    #[arg(long, default_value_t = 100)]
    rate: u64,
    #[arg(long, default_value_t = 10)]
    concurrency: u32,
    #[arg(long, default_value_t = 8)]
    accounts: u64,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Raft log entries between snapshots (the node's `--raft-snapshot-entries`). Small, so that
    /// snapshots are built, logs purged and snapshots installed while the faults run.
    #[arg(long, default_value_t = jepsen::run::SNAPSHOT_ENTRIES)]
    snapshot_entries: u64,
    /// Why an undecided checker verdict (a search budget ran out) is acceptable for this run.
    /// Without it, an undecided verdict fails the run like an anomaly.
    #[arg(long, value_name = "REASON")]
    accept_undecided: Option<String>,
    /// Run directory (default: jepsen-runs/<unix time>-<nemesis>-seed<seed>).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Long run: every nemesis in rotation, one run of `--time-limit` s each (seeds counting up
    /// from `--seed`, bank and two-phase workloads by turns), until this many seconds are spent;
    /// writes summary.json and summary.md in the directory.
    #[arg(long, value_name = "SECONDS")]
    rotate: Option<u64>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let workload = jepsen::workload::Workload::parse(&args.workload)
        .ok_or_else(|| anyhow::anyhow!("unknown workload {:?} (bank, two-phase)", args.workload))?;
    anyhow::ensure!((1..=jepsen::net::SLOTS_MAX).contains(&args.nodes), "--nodes must be 1..={}", jepsen::net::SLOTS_MAX);
    anyhow::ensure!(args.accounts >= 2, "--accounts must be at least 2");
    let rotating = args.rotate.is_some();
    let nemeses: Vec<Nemesis> = if args.nemesis == "none" || (rotating && args.nemesis == "all") {
        Vec::new()
    } else {
        args.nemesis.split(',').map(|n| Nemesis::parse(n.trim()).ok_or_else(|| anyhow::anyhow!("unknown nemesis {n:?}"))).collect::<Result<_, _>>()?
    };
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let dir = args.dir.unwrap_or_else(|| match args.rotate {
        Some(total) => PathBuf::from(format!("jepsen-runs/{secs}-rotate-{total}s-seed{}", args.seed)),
        None => PathBuf::from(format!("jepsen-runs/{secs}-{}-{}-seed{}", args.workload, args.nemesis.replace(',', "+"), args.seed)),
    });
    let options = Options {
        workload,
        nodes: args.nodes,
        nemeses,
        time_limit_s: args.time_limit,
        rate: args.rate,
        concurrency: args.concurrency,
        accounts: args.accounts,
        seed: args.seed,
        dir,
        snapshot_entries: args.snapshot_entries,
        accept_undecided: args.accept_undecided,
    };
    // Ctrl-C drops the run future, and with it the cluster: its Drop kills every node and
    // deletes the namespaces (so no `process::exit` before that).
    let valid = tokio::select! {
        result = async {
            match args.rotate {
                Some(total) => jepsen::rotate::rotate(options.clone(), total, options.nemeses.clone()).await,
                None => run(options).await,
            }
        } => Some(result?),
        _ = tokio::signal::ctrl_c() => None,
    };
    let Some(valid) = valid else {
        eprintln!("interrupted: nodes stopped, network namespaces removed");
        std::process::exit(130);
    };
    if !valid {
        std::process::exit(1);
    }
    Ok(())
}
