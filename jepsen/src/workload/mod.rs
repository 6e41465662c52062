//! The workloads: concurrent clients recording every operation as invoke → ok / fail / info.
//! `bank` (here): transfers between accounts (each with `debits_must_not_exceed_credits`) and
//! reads of every balance; `two_phase`: holds posted, voided or left to expire. An info write is
//! retried with the same idempotency key.

pub mod two_phase;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger_client::{ClientConfig, ClientError, LedgerClient, NewAccount, NewAsset, NewTransfer};

use crate::history::{AccountId, Amount, Event, Leg, Op, Outcome, Process};
use crate::schedule::Rng;

pub const ASSET: &str = "JEP";

/// What the clients do (`--workload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Transfers and reads of every balance.
    Bank,
    /// Holds posted, voided, raced or left to expire, and reads with pending amounts.
    TwoPhase,
}

impl Workload {
    pub fn parse(name: &str) -> Option<Workload> {
        match name {
            "bank" => Some(Workload::Bank),
            "two-phase" => Some(Workload::TwoPhase),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Workload::Bank => "bank",
            Workload::TwoPhase => "two-phase",
        }
    }
}
/// Account 1000 funds the test accounts before the run; it is not part of the bank.
const FUNDING_ACCOUNT: u128 = 1000;
/// Retries of an info transfer with the same key (then a final one after the heal).
pub const INFO_RETRIES_MAX: u32 = 2;
/// One operation, all of the client's own retries included: past this the harness records it
/// as unknown and moves on (a hung call must not stall the run).
pub(crate) const OPERATION_TIMEOUT: Duration = Duration::from_secs(40);

/// Shared, timestamped history.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    pub fn new(start: Instant) -> Recorder {
        Recorder { start, events: Arc::default() }
    }
    pub fn record(&self, process: Process, outcome: Outcome, op: Op, error: Option<String>, stamp: Option<u64>) {
        let time_ns = self.start.elapsed().as_nanos() as u64;
        let event = Event { time_ns, process, outcome, op, node: None, error, ledger_timestamp_ns: stamp };
        self.events.lock().expect("history lock").push(event);
    }
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("history lock").clone()
    }
}

/// A client of the nodes at `urls` (https, verified against the run's CA in `tls`).
pub fn client(urls: Vec<String>, tls: Option<ledger_client::ClientTls>) -> anyhow::Result<LedgerClient> {
    // Generous timeouts: the machine is shared and faults stall commits for seconds.
    let config = ClientConfig { request_timeout: Duration::from_secs(5), max_retries: 3, tls, ..ClientConfig::default() };
    Ok(LedgerClient::connect_with(urls, config)?)
}

/// Creates the asset and the accounts, and funds each with `balance`. Returns the initial state.
pub async fn setup(client: &LedgerClient, accounts: u64, balance: Amount) -> anyhow::Result<BTreeMap<AccountId, Amount>> {
    let results = client.create_assets(vec![NewAsset::new(ASSET, 0)]).await?;
    anyhow::ensure!(results.iter().all(|r| r.is_success()), "create asset: {results:?}");
    let mut new = vec![NewAccount::new(FUNDING_ACCOUNT, ASSET, 9)];
    for id in 1..=accounts {
        let mut account = NewAccount::new(u128::from(id), ASSET, 1);
        account.debits_must_not_exceed_credits = true;
        new.push(account);
    }
    let results = client.create_accounts(new).await?;
    anyhow::ensure!(results.iter().all(|r| r.is_success()), "create accounts: {results:?}");
    let funding: Vec<NewTransfer> = (1..=accounts)
        .map(|id| NewTransfer::posted(u128::from(1_000_000 + id), format!("fund-{id}"), ASSET, vec![ledger_client::Leg::new(FUNDING_ACCOUNT, u128::from(id), ledger_client::Amount::from(balance))]))
        .collect();
    let results = client.create_transfers(funding).await?;
    anyhow::ensure!(results.iter().all(|r| r.is_success()), "fund accounts: {results:?}");
    Ok((1..=accounts).map(|id| (id, balance)).collect())
}

fn minor(value: ledger_client::Amount) -> Amount {
    let whole = i64::try_from(value.minor() / 10u128.pow(u32::from(value.scale()))).expect("bank balances fit i64");
    if value.is_negative() { -whole } else { whole }
}

pub fn balance_of(record: &ledger_client::AccountRecord) -> Amount {
    let b = record.balances;
    minor(b.credits_posted - b.debits_posted)
}

/// `[debits_pending, credits_pending]`.
pub fn held_of(record: &ledger_client::AccountRecord) -> [Amount; 2] {
    [minor(record.balances.debits_pending), minor(record.balances.credits_pending)]
}

/// Posted balances and pending amounts of every account, from one `LookupAccounts` (one state).
pub async fn read_with_held(
    client: &LedgerClient,
    accounts: u64,
) -> Result<(BTreeMap<AccountId, Amount>, BTreeMap<AccountId, [Amount; 2]>), ClientError> {
    let records = client.lookup_accounts((1..=accounts).map(u128::from).collect()).await?;
    Ok((records.iter().map(|r| (r.account.id as u64, balance_of(r))).collect(), records.iter().map(|r| (r.account.id as u64, held_of(r))).collect()))
}

/// The ledger request for a write of the history.
fn request(op: &Op) -> NewTransfer {
    let leg = |from: &AccountId, to: &AccountId, amount: &Amount| ledger_client::Leg::new(u128::from(*from), u128::from(*to), ledger_client::Amount::from(*amount));
    match op {
        Op::Transfer { id, key, legs } => {
            NewTransfer::posted(u128::from(*id), key.clone(), ASSET, legs.iter().map(|l| leg(&l.from, &l.to, &l.amount)).collect())
        }
        Op::Hold { id, key, from, to, amount, timeout_ms } => {
            NewTransfer::pending(u128::from(*id), key.clone(), ASSET, vec![leg(from, to, amount)], *timeout_ms)
        }
        Op::Post { id, key, hold } => NewTransfer::post(u128::from(*id), key.clone(), u128::from(*hold), Vec::new()),
        Op::Void { id, key, hold } => NewTransfer::void(u128::from(*id), key.clone(), u128::from(*hold)),
        Op::Read { .. } => unreachable!("a read is not a write"),
    }
}

/// Sends one attempt of a write (transfer, hold, post, void) and records it. `retry`: an earlier
/// attempt of this key is unknown, so only the ledger's own answer for the key (a result code)
/// is a definite fail; a client-side error now says nothing about that earlier attempt.
pub async fn attempt_transfer(client: &LedgerClient, recorder: &Recorder, process: Process, op: &Op, retry: bool) -> Outcome {
    recorder.record(process, Outcome::Invoke, op.clone(), None, None);
    let transfer = request(op);
    let sent = tokio::time::timeout(OPERATION_TIMEOUT, client.create_transfers(vec![transfer])).await;
    let sent = sent.unwrap_or_else(|_| Err(ClientError::Unknown { attempts: 0, last_error: format!("no answer within {OPERATION_TIMEOUT:?}") }));
    let (outcome, error, stamp) = match sent {
        Ok(results) => match results.first() {
            Some(r) if r.is_success() => (Outcome::Ok, None, Some(r.timestamp_ns)),
            Some(r) => (Outcome::Fail, Some(r.code.to_string()), None),
            None => (Outcome::Info, Some("no result".into()), None),
        },
        Err(e @ ClientError::Unknown { .. }) | Err(e @ ClientError::Protocol(_)) => (Outcome::Info, Some(e.to_string()), None),
        Err(e) if retry => (Outcome::Info, Some(e.to_string()), None),
        Err(e) => (Outcome::Fail, Some(e.to_string()), None),
    };
    recorder.record(process, outcome, op.clone(), error, stamp);
    outcome
}

/// One read of every balance (and, with `with_held`, every pending amount), recorded.
pub async fn read(client: &LedgerClient, recorder: &Recorder, process: Process, accounts: u64, with_held: bool) {
    recorder.record(process, Outcome::Invoke, Op::Read { balances: None, held: None }, None, None);
    let read = tokio::time::timeout(OPERATION_TIMEOUT, read_with_held(client, accounts)).await;
    match read.unwrap_or_else(|_| Err(ClientError::Unavailable { attempts: 0, last_error: "read timed out".into() })) {
        Ok((balances, held)) => {
            let op = Op::Read { balances: Some(balances), held: with_held.then_some(held) };
            recorder.record(process, Outcome::Ok, op, None, None);
        }
        // A read changes nothing: a failed one is a fail whatever happened.
        Err(e) => recorder.record(process, Outcome::Fail, Op::Read { balances: None, held: None }, Some(e.to_string()), None),
    }
}

/// A write, retried with the same key while its outcome is unknown (up to `INFO_RETRIES_MAX`
/// times, not past `deadline`). Returns the last outcome.
pub async fn write_with_retries(client: &LedgerClient, recorder: &Recorder, process: Process, op: &Op, deadline: Instant) -> Outcome {
    let mut outcome = attempt_transfer(client, recorder, process, op, false).await;
    let mut retries = 0;
    while outcome == Outcome::Info && retries < INFO_RETRIES_MAX && Instant::now() < deadline {
        retries += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
        outcome = attempt_transfer(client, recorder, process, op, true).await;
    }
    outcome
}

/// Two different accounts in 1..=accounts.
pub fn two_accounts(rng: &mut Rng, accounts: u64) -> (AccountId, AccountId) {
    let from = rng.range(1, accounts);
    let mut to = rng.range(1, accounts - 1);
    if to >= from {
        to += 1;
    }
    (from, to)
}

/// One client process until `deadline`: transfers (retried with the same key while unknown) and
/// reads of all balances. Returns the ids of transfers left unknown.
pub async fn worker(
    client: LedgerClient,
    recorder: Recorder,
    process: Process,
    seed: u64,
    accounts: u64,
    interval: Duration,
    deadline: Instant,
) -> Vec<Op> {
    let mut rng = Rng::new(seed ^ (u64::from(process) << 32));
    let mut sequence = 0u64;
    let mut unknown = Vec::new();
    while Instant::now() < deadline {
        let began = Instant::now();
        if rng.range(0, 9) < 3 {
            read(&client, &recorder, process, accounts, false).await;
        } else {
            sequence += 1;
            let id = u64::from(process) * 10_000_000 + sequence;
            // 2 in 3 transfers have one leg, the rest 2 or 3 (all applied or none).
            let leg_count = match rng.range(0, 5) {
                0 => 2,
                1 => 3,
                _ => 1,
            };
            let legs = (0..leg_count)
                .map(|_| {
                    let (from, to) = two_accounts(&mut rng, accounts);
                    Leg { from, to, amount: rng.range(1, 30) as Amount }
                })
                .collect();
            let op = Op::Transfer { id, key: format!("jepsen-{seed}-{id}"), legs };
            if write_with_retries(&client, &recorder, process, &op, deadline).await == Outcome::Info {
                unknown.push(op);
            }
        }
        if let Some(rest) = interval.checked_sub(began.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    unknown
}
