//! Executes one parsed command and decides the exit status.

use super::args::*;
use super::render;
use super::view::{self, Node};
use crate::client::{ClientConfig, LedgerClient};
use crate::error::ClientError;
use crate::ids::transfer_id_from_key;
use crate::types::*;
use futures::StreamExt;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// Exit status: every result ok/exists.
pub const EXIT_OK: u8 = 0;
/// Some item failed with a result code, or a looked-up object does not exist.
pub const EXIT_ITEM_FAILED: u8 = 1;
/// Usage or transport error (including gRPC rejections and unknown commit outcomes).
pub const EXIT_ERROR: u8 = 2;

/// What a command produced: a document to print and the exit status it implies.
pub(super) struct Outcome {
    pub(super) document: Option<Node>,
    pub(super) exit: u8,
    /// Printed on stderr (e.g. "account 7 not found").
    pub(super) message: Option<String>,
}

impl Outcome {
    pub(super) fn ok(document: Node) -> Outcome {
        Outcome {
            document: Some(document),
            exit: EXIT_OK,
            message: None,
        }
    }

    pub(super) fn writes(results: &[WriteResult]) -> Outcome {
        let failed = results.iter().filter(|r| !r.is_success()).count();
        Outcome {
            document: Some(view::write_results(results)),
            exit: if failed == 0 {
                EXIT_OK
            } else {
                EXIT_ITEM_FAILED
            },
            message: (failed > 0).then(|| format!("{failed} of {} item(s) failed", results.len())),
        }
    }

    pub(super) fn found(document: Option<Node>, what: String) -> Outcome {
        match document {
            Some(document) => Outcome::ok(document),
            None => Outcome {
                document: None,
                exit: EXIT_ITEM_FAILED,
                message: Some(format!("{what} not found")),
            },
        }
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    let token = match cli.token.as_deref().map(crate::BearerToken::new).transpose() {
        Ok(token) => token,
        Err(why) => {
            eprintln!("error: --token / LEDGER_TOKEN: {why}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let tls = match (&cli.tls_ca, &cli.tls_cert) {
        (Some(ca), _) => match crate::ClientTls::from_files(ca, cli.tls_cert.as_deref(), cli.tls_key.as_deref()) {
            Ok(tls) => Some(tls),
            Err(why) => {
                eprintln!("error: --tls-ca / --tls-cert / --tls-key: {why}");
                return ExitCode::from(EXIT_ERROR);
            }
        },
        (None, Some(_)) => {
            eprintln!("error: --tls-cert needs --tls-ca (the CA the nodes' certificates chain to)");
            return ExitCode::from(EXIT_ERROR);
        }
        (None, None) => None,
    };
    let config = ClientConfig {
        token,
        tls,
        request_timeout: Duration::from_millis(cli.request_timeout_ms.max(1)),
        max_retries: cli.max_retries,
        max_staleness: cli.max_staleness_ms.map(Duration::from_millis),
        ..ClientConfig::default()
    };
    let endpoints: Vec<String> = cli
        .endpoints
        .iter()
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    let client = match LedgerClient::connect_with(endpoints, config) {
        Ok(client) => client,
        Err(error) => return fail(&error),
    };
    let output = cli.output;
    let result = match cli.command {
        Command::Watch { id } => return watch(&client, id, output).await,
        Command::Feed(args) => return super::feed::run(&client, args, output).await,
        Command::Audit(command) => return super::audit::run(&client, command).await,
        Command::Asset(command) => asset(&client, command).await,
        Command::Account(command) => account(&client, command).await,
        Command::Transfer(command) => transfer(&client, command).await,
        Command::Cluster(command) => cluster(&client, command).await,
        Command::Limits(command) => super::risk::limits(&client, command).await,
        Command::Blocklist(command) => super::risk::blocklist(&client, command).await,
        Command::RiskRules(command) => super::risk::risk_rules(&client, command).await,
        Command::Wallet(command) => super::wallet::run(&client, command).await,
        Command::Query(command) => super::query::run(&client, command).await,
        Command::Backup { dir } => {
            let first = client.endpoints()[0].clone();
            client.backup(&first, &dir).await.map(|taken| Outcome::ok(view::backup_taken(&taken)))
        }
    };
    match result {
        Ok(outcome) => {
            if let Some(document) = &outcome.document {
                print(document, output);
            }
            if let Some(message) = &outcome.message {
                eprintln!("ledger: {message}");
            }
            ExitCode::from(outcome.exit)
        }
        Err(ClientError::Rejected {
            code: tonic::Code::NotFound,
            message,
        }) => {
            // The object the command names does not exist: an item failure, not a usage error.
            eprintln!("ledger: not found: {message}");
            ExitCode::from(EXIT_ITEM_FAILED)
        }
        Err(error) => fail(&error),
    }
}

pub(super) fn fail(error: &ClientError) -> ExitCode {
    eprintln!("ledger: error: {error}");
    if let ClientError::Unknown { .. } = error {
        eprintln!(
            "ledger: re-run the same command (same idempotency key / same fields) to learn the outcome"
        );
    }
    ExitCode::from(EXIT_ERROR)
}

/// One line of a stream (a JSON object, or `key=value` pairs), flushed at once: a watcher piped
/// into another program must see it now. False when stdout is closed (e.g. `| head -1`).
pub(super) fn emit_line(node: &Node, output: OutputFormat) -> bool {
    let text = match output {
        OutputFormat::Json => serde_json::to_string(node).unwrap_or_default(),
        OutputFormat::Table => render::line(node),
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}").and_then(|()| stdout.flush()).is_ok()
}

fn print(document: &Node, output: OutputFormat) {
    let text = match output {
        OutputFormat::Json => serde_json::to_string(document).unwrap_or_default() + "\n",
        OutputFormat::Table => render::table(document),
    };
    // A closed stdout (e.g. `| head`) is not worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

async fn asset(client: &LedgerClient, command: AssetCommand) -> Result<Outcome, ClientError> {
    Ok(match command {
        AssetCommand::Create { code, scale } => {
            Outcome::writes(&client.create_assets(vec![NewAsset { code, scale }]).await?)
        }
        AssetCommand::Get { code } => {
            let found = client
                .lookup_assets(vec![code.clone()])
                .await?
                .into_iter()
                .find(|a| a.code == code);
            Outcome::found(found.as_ref().map(view::asset), format!("asset {code}"))
        }
    })
}

async fn account(client: &LedgerClient, command: AccountCommand) -> Result<Outcome, ClientError> {
    let set_status = |id: u128, status: AccountStatus, reason: String| async move {
        client
            .set_account_status(vec![(id, status, reason)])
            .await
            .map(|r| Outcome::writes(&r))
    };
    Ok(match command {
        AccountCommand::Create(args) => {
            let account = NewAccount {
                id: args.id,
                asset: args.asset,
                code: args.code,
                debits_must_not_exceed_credits: args.debits_must_not_exceed_credits,
                credits_must_not_exceed_debits: args.credits_must_not_exceed_debits,
                overdraft_limit: args.overdraft_limit,
                metadata: args.metadata.into_iter().collect(),
                external_ref: args.external_ref,
            };
            Outcome::writes(&client.create_accounts(vec![account]).await?)
        }
        AccountCommand::Get { id } => {
            let found = client.lookup_account(id).await?;
            Outcome::found(found.as_ref().map(view::account), format!("account {id}"))
        }
        AccountCommand::ByRef { external_ref } => {
            let found = client.get_account_by_external_ref(&external_ref).await?;
            Outcome::found(
                found.as_ref().map(view::account),
                format!("account with external ref {external_ref:?}"),
            )
        }
        AccountCommand::Freeze(args) => {
            set_status(args.id, AccountStatus::Frozen, args.reason).await?
        }
        AccountCommand::Unfreeze(args) => {
            set_status(args.id, AccountStatus::Active, args.reason).await?
        }
        AccountCommand::Close(args) => {
            set_status(args.id, AccountStatus::Closed, args.reason).await?
        }
        AccountCommand::ListTransfers {
            id,
            limit,
            cursor_timestamp_ns,
            reverse,
        } => {
            let page = client
                .list_account_entries(id, cursor_timestamp_ns, limit, reverse)
                .await?;
            Outcome::ok(view::entries_page(&page))
        }
        AccountCommand::Update(args) => super::accounts::update(client, args).await?,
        AccountCommand::Rebind(args) => super::accounts::rebind(client, args).await?,
        AccountCommand::Changes(args) => super::accounts::changes(client, args).await?,
        AccountCommand::BalanceAt { id, timestamp_ns } => {
            let balance = client.get_balance_at(id, timestamp_ns).await?;
            Outcome::ok(view::balance_at(id, timestamp_ns, &balance))
        }
    })
}

async fn transfer(client: &LedgerClient, command: TransferCommand) -> Result<Outcome, ClientError> {
    let submit = |transfer: NewTransfer| async move {
        client
            .create_transfers(vec![transfer])
            .await
            .map(|r| Outcome::writes(&r))
    };
    Ok(match command {
        TransferCommand::Submit(args) => {
            let id = args
                .id
                .unwrap_or_else(|| transfer_id_from_key(&args.idempotency_key));
            let transfer = if args.pending {
                NewTransfer::pending(
                    id,
                    args.idempotency_key,
                    args.asset,
                    args.legs,
                    args.timeout_ms,
                )
            } else {
                // Sent as given: the server answers timeout_reserved_for_pending if it is set.
                NewTransfer {
                    timeout_ms: args.timeout_ms,
                    ..NewTransfer::posted(id, args.idempotency_key, args.asset, args.legs)
                }
            };
            let transfer = NewTransfer {
                refund_of: args.refund_of,
                reference: args.reference,
                metadata: args.metadata.into_iter().collect(),
                ..transfer.with_code(args.code)
            };
            submit(transfer).await?
        }
        TransferCommand::Post {
            pending_id,
            idempotency_key,
            id,
            amounts,
            code,
        } => {
            let id = id.unwrap_or_else(|| transfer_id_from_key(&idempotency_key));
            submit(NewTransfer::post(id, idempotency_key, pending_id, amounts).with_code(code))
                .await?
        }
        TransferCommand::Void {
            pending_id,
            idempotency_key,
            id,
            code,
        } => {
            let id = id.unwrap_or_else(|| transfer_id_from_key(&idempotency_key));
            submit(NewTransfer::void(id, idempotency_key, pending_id).with_code(code)).await?
        }
        TransferCommand::Get { id } => {
            let found = client.lookup_transfer(id).await?;
            Outcome::found(found.as_ref().map(view::transfer), format!("transfer {id}"))
        }
        TransferCommand::ByKey { idempotency_key } => {
            let record = client
                .get_transfer_by_idempotency_key(&idempotency_key)
                .await?;
            let exit = match &record {
                Some(record) if record.code.is_success() => EXIT_OK,
                _ => EXIT_ITEM_FAILED,
            };
            let message = match &record {
                None => Some(format!("idempotency key {idempotency_key:?} not found")),
                Some(record) if !record.code.is_success() => {
                    Some(format!("the transfer for this key failed: {}", record.code))
                }
                Some(_) => None,
            };
            Outcome {
                document: Some(view::idempotency(&idempotency_key, record.as_ref())),
                exit,
                message,
            }
        }
    })
}

async fn cluster(client: &LedgerClient, command: ClusterCommand) -> Result<Outcome, ClientError> {
    let (all, state_hash) = match command {
        ClusterCommand::Status { all } => (all, false),
        ClusterCommand::StateHash { all } => (all, true),
        ClusterCommand::Init { peers } => {
            return Ok(Outcome::ok(view::membership_change(
                &client.init_cluster(peers).await?,
            )));
        }
        ClusterCommand::AddLearner {
            node_id,
            peer_address,
        } => {
            let peer_address = crate::retry::normalize_endpoint(&peer_address);
            let change = client.add_learner(node_id, &peer_address).await?;
            return Ok(Outcome::ok(view::membership_change(&change)));
        }
        ClusterCommand::Promote { node_id, wait_secs } => {
            let change = client
                .promote_voter(node_id, Duration::from_secs(wait_secs))
                .await?;
            return Ok(Outcome::ok(view::membership_change(&change)));
        }
        ClusterCommand::Remove { node_id } => {
            return Ok(Outcome::ok(view::membership_change(
                &client.remove_node(node_id).await?,
            )));
        }
        ClusterCommand::Snapshot { purge, all } => return snapshot(client, purge, all).await,
    };
    if !all {
        return Ok(Outcome::ok(if state_hash {
            view::state_hash(&client.state_hash().await?)
        } else {
            cluster_overview(client).await?
        }));
    }
    // Every endpoint, concurrently; one unreachable node must not hide the others.
    let endpoints = client.endpoints();
    let answers = futures::future::join_all(endpoints.iter().map(|endpoint| async move {
        let answer = if state_hash {
            client
                .state_hash_of(endpoint)
                .await
                .map(|h| view::state_hash(&h))
        } else {
            client
                .cluster_status_of(endpoint)
                .await
                .map(|s| view::cluster_status(&s))
        };
        answer.map_err(|e| e.to_string())
    }))
    .await;
    Ok(per_endpoint(&endpoints, answers))
}

fn per_endpoint(endpoints: &[String], answers: Vec<Result<Node, String>>) -> Outcome {
    let failed = answers.iter().filter(|a| a.is_err()).count();
    let nodes: Vec<Node> = endpoints
        .iter()
        .zip(answers)
        .map(|(e, a)| view::per_endpoint(e, a))
        .collect();
    Outcome {
        document: Some(view::object! { "endpoints" => nodes }),
        exit: if failed == 0 { EXIT_OK } else { EXIT_ERROR },
        message: (failed > 0).then(|| format!("{failed} endpoint(s) did not answer")),
    }
}

/// The answering node's status, with every member's own numbers (each member is asked at its
/// client address) and the leader's view of replication (matched index, lag).
async fn cluster_overview(client: &LedgerClient) -> Result<Node, ClientError> {
    let here = client.cluster_status().await?;
    let leader = if here.role == "leader" {
        Some(here.clone())
    } else if !here.leader_address.is_empty() {
        client.cluster_status_at(&here.leader_address).await.ok()
    } else {
        None
    };
    let members = leader.as_ref().unwrap_or(&here).nodes.clone();
    let answers = futures::future::join_all(members.iter().map(|m| async move {
        client
            .cluster_status_at(&m.address)
            .await
            .map_err(|e| e.to_string())
    }))
    .await;
    Ok(view::cluster_overview(&here, &members, &answers))
}

async fn snapshot(client: &LedgerClient, purge: bool, all: bool) -> Result<Outcome, ClientError> {
    let endpoints = client.endpoints();
    let targets = if all {
        endpoints.clone()
    } else {
        endpoints[..1].to_vec()
    };
    if !all {
        return Ok(Outcome::ok(view::snapshot_taken(
            &client.trigger_snapshot(&targets[0], purge).await?,
        )));
    }
    let answers = futures::future::join_all(targets.iter().map(|endpoint| async move {
        client
            .trigger_snapshot(endpoint, purge)
            .await
            .map(|t| view::snapshot_taken(&t))
            .map_err(|e| e.to_string())
    }))
    .await;
    Ok(per_endpoint(&targets, answers))
}

async fn watch(client: &LedgerClient, id: u128, output: OutputFormat) -> ExitCode {
    let mut stream = match client.watch_account(id).await {
        Ok(stream) => stream,
        Err(error) => return fail(&error),
    };
    while let Some(item) = stream.next().await {
        match item {
            Ok(entry) => {
                if !emit_line(&view::entry(&entry), output) {
                    return ExitCode::from(EXIT_OK); // Reader went away (e.g. `| head -1`).
                }
            }
            Err(error) => return fail(&error),
        }
    }
    eprintln!("ledger: error: the server closed the watch stream");
    ExitCode::from(EXIT_ERROR)
}
