//! The bank workload: concurrent clients moving money between accounts (each with
//! `debits_must_not_exceed_credits`) and reading every balance, each operation recorded as
//! invoke → ok / fail / info. An info transfer is retried with the same idempotency key.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger_client::{ClientConfig, ClientError, Decimal, LedgerClient, Leg, NewAccount, NewAsset, NewTransfer};

use crate::history::{AccountId, Amount, Event, Op, Outcome, Process};
use crate::schedule::Rng;

pub const ASSET: &str = "JEP";
/// Account 1000 funds the test accounts before the run; it is not part of the bank.
const FUNDING_ACCOUNT: u128 = 1000;
/// Retries of an info transfer with the same key (then a final one after the heal).
const INFO_RETRIES_MAX: u32 = 2;
/// One operation, all of the client's own retries included: past this the harness records it
/// as unknown and moves on (a hung call must not stall the run).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(40);

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

pub fn client(urls: Vec<String>) -> anyhow::Result<LedgerClient> {
    // Generous timeouts: the machine is shared and faults stall commits for seconds.
    let config = ClientConfig { request_timeout: Duration::from_secs(5), max_retries: 3, ..ClientConfig::default() };
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
        .map(|id| NewTransfer::posted(u128::from(1_000_000 + id), format!("fund-{id}"), ASSET, vec![Leg::new(FUNDING_ACCOUNT, u128::from(id), Decimal::from(balance))]))
        .collect();
    let results = client.create_transfers(funding).await?;
    anyhow::ensure!(results.iter().all(|r| r.is_success()), "fund accounts: {results:?}");
    Ok((1..=accounts).map(|id| (id, balance)).collect())
}

pub fn balance_of(record: &ledger_client::AccountRecord) -> Amount {
    let b = record.balances;
    let value = b.credits_posted - b.debits_posted;
    i64::try_from(value.mantissa() / 10i128.pow(value.scale())).expect("bank balances fit i64")
}

pub async fn read_all(client: &LedgerClient, accounts: u64) -> Result<BTreeMap<AccountId, Amount>, ClientError> {
    let records = client.lookup_accounts((1..=accounts).map(u128::from).collect()).await?;
    Ok(records.iter().map(|r| (r.account.id as u64, balance_of(r))).collect())
}

/// Sends one transfer attempt and records it. `retry`: an earlier attempt of this key is unknown,
/// so only the ledger's own answer for the key (a result code) is a definite fail; a client-side
/// error now says nothing about that earlier attempt.
pub async fn attempt_transfer(client: &LedgerClient, recorder: &Recorder, process: Process, op: &Op, retry: bool) -> Outcome {
    let Op::Transfer { id, key, from, to, amount } = op else { unreachable!("a transfer") };
    recorder.record(process, Outcome::Invoke, op.clone(), None, None);
    let transfer = NewTransfer::posted(u128::from(*id), key.clone(), ASSET, vec![Leg::new(u128::from(*from), u128::from(*to), Decimal::from(*amount))]);
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
            recorder.record(process, Outcome::Invoke, Op::Read { balances: None }, None, None);
            let read = tokio::time::timeout(OPERATION_TIMEOUT, read_all(&client, accounts)).await;
            match read.unwrap_or_else(|_| Err(ClientError::Unavailable { attempts: 0, last_error: "read timed out".into() })) {
                Ok(balances) => recorder.record(process, Outcome::Ok, Op::Read { balances: Some(balances) }, None, None),
                // A read changes nothing: a failed one is a fail whatever happened.
                Err(e) => recorder.record(process, Outcome::Fail, Op::Read { balances: None }, Some(e.to_string()), None),
            }
        } else {
            sequence += 1;
            let id = u64::from(process) * 10_000_000 + sequence;
            let from = rng.range(1, accounts);
            let mut to = rng.range(1, accounts - 1);
            if to >= from {
                to += 1;
            }
            let op = Op::Transfer { id, key: format!("jepsen-{seed}-{id}"), from, to, amount: rng.range(1, 30) as Amount };
            let mut outcome = attempt_transfer(&client, &recorder, process, &op, false).await;
            let mut retries = 0;
            while outcome == Outcome::Info && retries < INFO_RETRIES_MAX && Instant::now() < deadline {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                outcome = attempt_transfer(&client, &recorder, process, &op, true).await;
            }
            if outcome == Outcome::Info {
                unknown.push(op);
            }
        }
        if let Some(rest) = interval.checked_sub(began.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    unknown
}
