//! `ledger-bench`: loads a ledger with transfers from many concurrent clients, reports accepted
//! load and latency percentiles, then checks every balance against what it sent.

mod cluster;
mod rng;
mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use ledger_client::{ClientConfig, Amount, LedgerClient, Leg, NewAccount, NewAsset, NewTransfer, ResultCode};
use rng::{AccountPicker, Distribution, Rng};
use stats::{Percentiles, percentiles};

const ASSET: &str = "BENCH";
const ASSET_SCALE: u32 = 2;
/// Largest amount of one leg, in minor units.
const LEG_AMOUNT_MINOR_MAX: u64 = 10_000;
const LOOKUP_SAMPLES: usize = 100;
const SPAWN_NODES_MAX: u32 = 7;
/// How long a spawned cluster may take to elect its first leader.
const LEADER_WAIT: Duration = Duration::from_secs(30);

#[derive(Parser, Debug, Clone)]
#[command(name = "ledger-bench", about = "Load and check a ledger")]
struct Args {
    /// Start N local nodes from this build (temp data dirs, removed at the end): 1 runs
    /// `ledger-node dev`, more form a cluster of `ledger-node start` nodes on loopback.
    #[arg(long, conflicts_with = "endpoints")]
    spawn: Option<u32>,
    /// Target an existing ledger (comma-separated gRPC endpoints).
    #[arg(long, value_delimiter = ',')]
    endpoints: Vec<String>,
    #[arg(long, default_value_t = 10_000)]
    accounts: u64,
    #[arg(long, default_value_t = 100_000)]
    transfers: u64,
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 1)]
    clients: u64,
    /// Transfers per request (1..=8190).
    #[arg(long, default_value_t = 8_190)]
    batch: u64,
    #[arg(long, value_enum, default_value_t = Distribution::Uniform)]
    distribution: Distribution,
    /// Legs per transfer (1..=64).
    #[arg(long, default_value_t = 1)]
    legs: u64,
    /// Fraction (0..=1) of transfers sent as holds, each posted by the next request of its client.
    #[arg(long, default_value_t = 0.0)]
    pending: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// What one client sent and saw.
#[derive(Default)]
struct ClientOutcome {
    latencies: Vec<Duration>,
    ok: u64,
    failed: u64,
    /// Per account index: (debits, credits) posted by acknowledged transfers, in minor units.
    expected: Vec<(u128, u128)>,
}

#[derive(serde::Serialize)]
struct Report {
    command: String,
    nodes: String,
    accounts: u64,
    transfers_sent: u64,
    transfers_ok: u64,
    transfers_failed: u64,
    clients: u64,
    batch: u64,
    legs: u64,
    pending: f64,
    distribution: Distribution,
    elapsed_s: f64,
    transfers_per_s: f64,
    request_latency: Percentiles,
    lookup_batch: u64,
    lookup_latency: Percentiles,
    server_rss_mib: Option<f64>,
    server_peak_rss_mib: Option<f64>,
    balances_checked: u64,
    balances_valid: bool,
}

fn minor(amount: u64) -> Amount {
    Amount::new(amount, ASSET_SCALE as u8)
}

fn validate_args(a: &Args) -> anyhow::Result<()> {
    if a.spawn.is_none() && a.endpoints.is_empty() {
        bail!("give --spawn 1 or --endpoints URL[,URL...]");
    }
    if let Some(n) = a.spawn {
        if !(1..=SPAWN_NODES_MAX).contains(&n) {
            bail!("--spawn {n}: give 1 to {SPAWN_NODES_MAX} nodes");
        }
    }
    if !(1..=8_190).contains(&a.batch) || !(1..=64).contains(&a.legs) || a.clients == 0 || a.accounts < 2 {
        bail!("need 1 <= --batch <= 8190, 1 <= --legs <= 64, --clients >= 1, --accounts >= 2");
    }
    if !(0.0..=1.0).contains(&a.pending) {
        bail!("--pending is a fraction in 0..=1");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    validate_args(&args)?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let spawned = match args.spawn {
        Some(n) => Some(cluster::spawn(n)?),
        None => None,
    };
    let endpoints = match &spawned {
        Some(cluster) => cluster.nodes.iter().map(|n| n.endpoint.clone()).collect(),
        None => args.endpoints.clone(),
    };
    let config = ClientConfig { request_timeout: Duration::from_secs(60), ..ClientConfig::default() };
    let admin = LedgerClient::connect_with(endpoints.clone(), config.clone())?;
    if spawned.is_some() {
        wait_for_leader(&admin).await?;
    }

    // Account ids are unique per run so runs against one ledger do not collide.
    let run_id = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
    let account_id = |index: u64| (u128::from(run_id) << 64) | u128::from(index + 1);
    setup(&admin, args.accounts, &account_id).await?;
    eprintln!("created {} accounts; sending {} transfers", args.accounts, args.transfers);

    let picker = Arc::new(AccountPicker::new(args.distribution, args.accounts));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let progress = tokio::spawn(report_progress(sent.clone(), args.transfers, started));
    let mut tasks = Vec::new();
    for client_index in 0..args.clients {
        let share = args.transfers / args.clients + u64::from(client_index < args.transfers % args.clients);
        let client = LedgerClient::connect_with(endpoints.clone(), config.clone())?;
        let (args, picker, sent) = (args.clone(), picker.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            run_client(client, &args, client_index, share, run_id, &picker, &sent).await
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await??);
    }
    let elapsed = started.elapsed();
    progress.abort();

    let mut latencies: Vec<Duration> = outcomes.iter().flat_map(|o| o.latencies.iter().copied()).collect();
    let ok: u64 = outcomes.iter().map(|o| o.ok).sum();
    let failed: u64 = outcomes.iter().map(|o| o.failed).sum();
    let lookup_batch = args.batch.min(args.accounts);
    let lookup_latency = measure_lookups(&admin, args.accounts, lookup_batch, &account_id, args.seed).await?;
    let (valid, checked) = check_balances(&admin, args.accounts, &account_id, &outcomes).await?;
    // The largest resident set among the spawned nodes (the leader's, in practice).
    let rss = spawned.as_ref().and_then(|c| c.nodes.iter().filter_map(|n| n.rss_kib()).max_by_key(|&(now, _)| now));
    let report = Report {
        command,
        nodes: spawned.as_ref().map(|c| format!("spawned {}", c.nodes.len())).unwrap_or_else(|| endpoints.join(",")),
        accounts: args.accounts,
        transfers_sent: args.transfers,
        transfers_ok: ok,
        transfers_failed: failed,
        clients: args.clients,
        batch: args.batch,
        legs: args.legs,
        pending: args.pending,
        distribution: args.distribution,
        elapsed_s: elapsed.as_secs_f64(),
        transfers_per_s: ok as f64 / elapsed.as_secs_f64(),
        request_latency: percentiles(&mut latencies),
        lookup_batch,
        lookup_latency,
        server_rss_mib: rss.map(|(now, _)| now as f64 / 1024.0),
        server_peak_rss_mib: rss.map(|(_, peak)| peak as f64 / 1024.0),
        balances_checked: checked,
        balances_valid: valid,
    };
    print_report(&report, args.json)?;
    if !valid || failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

async fn wait_for_leader(c: &LedgerClient) -> anyhow::Result<()> {
    let deadline = Instant::now() + LEADER_WAIT;
    loop {
        match c.cluster_status().await {
            Ok(status) if status.leader_id.is_some() => return Ok(()),
            Ok(_) | Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Ok(status) => bail!("no leader after {LEADER_WAIT:?}: {status:?}"),
            Err(e) => bail!("no leader after {LEADER_WAIT:?}: {e}"),
        }
    }
}

async fn setup(c: &LedgerClient, accounts: u64, account_id: &impl Fn(u64) -> u128) -> anyhow::Result<()> {
    let asset = c.create_assets(vec![NewAsset::new(ASSET, ASSET_SCALE)]).await?;
    if !asset[0].is_success() {
        bail!("creating asset {ASSET}: {:?}", asset[0].code);
    }
    for start in (0..accounts).step_by(8_190) {
        let end = (start + 8_190).min(accounts);
        let batch: Vec<NewAccount> = (start..end).map(|i| NewAccount::new(account_id(i), ASSET, 1)).collect();
        for r in c.create_accounts(batch).await? {
            if !r.is_success() {
                bail!("creating accounts: {:?}", r.code);
            }
        }
    }
    Ok(())
}

async fn report_progress(sent: Arc<AtomicU64>, total: u64, started: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        let n = sent.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64();
        eprintln!("  {n}/{total} transfers acknowledged, {:.0}/s so far", n as f64 / secs);
    }
}

async fn run_client(
    client: LedgerClient,
    args: &Args,
    client_index: u64,
    share: u64,
    run_id: u64,
    picker: &AccountPicker,
    sent: &AtomicU64,
) -> anyhow::Result<ClientOutcome> {
    let mut rng = Rng::new(args.seed ^ (client_index.wrapping_mul(0x9E37_79B9)));
    let mut outcome = ClientOutcome { expected: vec![(0, 0); args.accounts as usize], ..Default::default() };
    let account_id = |index: u64| (u128::from(run_id) << 64) | u128::from(index + 1);
    // Transfer ids: run ‖ client ‖ sequence; keys derived from them.
    let mut sequence: u64 = 0;
    let mut next_id = || {
        sequence += 1;
        (u128::from(run_id) << 64) | (u128::from(client_index) << 40) | u128::from(sequence)
    };
    // Holds created by the previous request, posted by the next one: (hold id, legs).
    let mut holds_to_post: Vec<(u128, Vec<(u64, u64, u64)>)> = Vec::new();
    let mut remaining = share;
    while remaining > 0 || !holds_to_post.is_empty() {
        let mut batch = Vec::with_capacity(args.batch as usize);
        let mut effects: Vec<Option<Vec<(u64, u64, u64)>>> = Vec::with_capacity(args.batch as usize);
        let mut new_holds = Vec::new();
        for (hold_id, legs) in holds_to_post.drain(..) {
            let id = next_id();
            batch.push(NewTransfer::post(id, format!("bench-{id:x}"), hold_id, Vec::new()));
            effects.push(Some(legs));
        }
        while (batch.len() as u64) < args.batch && remaining > 0 {
            let legs: Vec<(u64, u64, u64)> = (0..args.legs)
                .map(|_| {
                    let (debit, credit) = picker.pick_pair(&mut rng);
                    (debit, credit, 1 + rng.below(LEG_AMOUNT_MINOR_MAX))
                })
                .collect();
            let wire_legs = legs.iter().map(|&(d, c, a)| Leg::new(account_id(d), account_id(c), minor(a))).collect();
            let id = next_id();
            let key = format!("bench-{id:x}");
            if args.pending > 0.0 && rng.unit() < args.pending {
                batch.push(NewTransfer::pending(id, key, ASSET, wire_legs, 0));
                effects.push(None);
                new_holds.push((batch.len() - 1, id, legs));
            } else {
                batch.push(NewTransfer::posted(id, key, ASSET, wire_legs));
                effects.push(Some(legs));
            }
            remaining -= 1;
        }
        let count = batch.len() as u64;
        let started = Instant::now();
        let results = client.create_transfers(batch).await.context("create_transfers")?;
        outcome.latencies.push(started.elapsed());
        for (result, effect) in results.iter().zip(&effects) {
            if result.code != ResultCode::Ok {
                outcome.failed += 1;
                continue;
            }
            outcome.ok += 1;
            for &(debit, credit, amount) in effect.iter().flatten() {
                outcome.expected[debit as usize].0 += u128::from(amount);
                outcome.expected[credit as usize].1 += u128::from(amount);
            }
        }
        for (position, id, legs) in new_holds {
            if results[position].code == ResultCode::Ok {
                holds_to_post.push((id, legs));
            }
        }
        sent.fetch_add(count, Ordering::Relaxed);
    }
    Ok(outcome)
}

async fn measure_lookups(
    c: &LedgerClient,
    accounts: u64,
    batch: u64,
    account_id: &impl Fn(u64) -> u128,
    seed: u64,
) -> anyhow::Result<Percentiles> {
    let mut rng = Rng::new(seed ^ 0x5EED);
    let mut samples = Vec::with_capacity(LOOKUP_SAMPLES);
    for _ in 0..LOOKUP_SAMPLES {
        let ids: Vec<u128> = (0..batch).map(|_| account_id(rng.below(accounts))).collect();
        let started = Instant::now();
        let found = c.lookup_accounts(ids).await?;
        samples.push(started.elapsed());
        if found.len() as u64 != batch {
            bail!("lookup returned {} of {batch} accounts", found.len());
        }
    }
    Ok(percentiles(&mut samples))
}

/// Every account's posted balances must equal the sums of the acknowledged transfers; pending
/// balances must be zero (every hold was posted).
async fn check_balances(
    c: &LedgerClient,
    accounts: u64,
    account_id: &impl Fn(u64) -> u128,
    outcomes: &[ClientOutcome],
) -> anyhow::Result<(bool, u64)> {
    let mut expected = vec![(0u128, 0u128); accounts as usize];
    for o in outcomes {
        for (e, (d, c)) in expected.iter_mut().zip(&o.expected) {
            e.0 += d;
            e.1 += c;
        }
    }
    let (mut valid, mut checked) = (true, 0);
    let (mut total_debits, mut total_credits) = (Amount::ZERO, Amount::ZERO);
    for start in (0..accounts).step_by(8_190) {
        let end = (start + 8_190).min(accounts);
        let found = c.lookup_accounts((start..end).map(account_id).collect()).await?;
        if found.len() as u64 != end - start {
            bail!("lookup returned {} of {} accounts", found.len(), end - start);
        }
        for (index, record) in (start..end).zip(found) {
            let (debits, credits) = expected[index as usize];
            let b = record.balances;
            let want = (Amount::from_minor(u128::from(debits), ASSET_SCALE as u8), Amount::from_minor(u128::from(credits), ASSET_SCALE as u8));
            if (b.debits_posted, b.credits_posted) != want || !b.debits_pending.is_zero() || !b.credits_pending.is_zero() {
                eprintln!("account {index}: ledger has {b:?}, sent (debits, credits) = {want:?}");
                valid = false;
            }
            total_debits += b.debits_posted;
            total_credits += b.credits_posted;
            checked += 1;
        }
    }
    if total_debits != total_credits {
        eprintln!("money not conserved: debits {total_debits} != credits {total_credits}");
        valid = false;
    }
    Ok((valid, checked))
}

fn print_report(r: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    let l = &r.request_latency;
    let q = &r.lookup_latency;
    println!("command            {}", r.command);
    println!("nodes              {}", r.nodes);
    println!("workload           {} transfers x {} legs, {} clients, batch {}, {:?}, pending {:.2}, {} accounts", r.transfers_sent, r.legs, r.clients, r.batch, r.distribution, r.pending, r.accounts);
    println!("load accepted      {:.0} transfers/s ({} ok, {} failed, {:.2} s)", r.transfers_per_s, r.transfers_ok, r.transfers_failed, r.elapsed_s);
    println!("request latency    p1 {:.2} ms  p50 {:.2} ms  p99 {:.2} ms  p100 {:.2} ms", l.p1_ms, l.p50_ms, l.p99_ms, l.p100_ms);
    println!("lookup latency     p1 {:.2} ms  p50 {:.2} ms  p99 {:.2} ms  p100 {:.2} ms  (batches of {})", q.p1_ms, q.p50_ms, q.p99_ms, q.p100_ms, r.lookup_batch);
    match (r.server_rss_mib, r.server_peak_rss_mib) {
        (Some(now), Some(peak)) => println!("server rss         {now:.1} MiB (peak {peak:.1} MiB)"),
        _ => println!("server rss         n/a (not spawned)"),
    }
    println!("balances           {} ({} accounts checked)", if r.balances_valid { "valid" } else { "INVALID" }, r.balances_checked);
    Ok(())
}
