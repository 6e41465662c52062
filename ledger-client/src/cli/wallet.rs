//! `ledger wallet ...`: tokens, offline record sync, exceptions and record MACs. Output follows
//! `view.rs`'s conventions (ids and amounts as strings, `*_ns` + `*_time` timestamps).

use super::args::{TokenCommand, WalletCommand, WalletMacArgs, WalletSyncArgs};
use super::run::{EXIT_ERROR, EXIT_ITEM_FAILED, Outcome};
use super::view::{self, Node, amount, extend, id, object, with_timestamp};
use crate::amount::parse_amount;
use crate::client::LedgerClient;
use crate::error::ClientError;
use crate::ids::parse_id;
use crate::wallet::mac::{MAC_BYTES, TokenKey, decode_hex, record_mac, to_hex};
use crate::wallet::{
    IssuedToken, NewToken, OfflineException, OfflineRecord, Reconciliation, SyncOutcome, Token,
};
use crate::amount::Amount;
use serde::Deserialize;
use std::io::Read;

pub(super) async fn run(
    client: &LedgerClient,
    command: WalletCommand,
) -> Result<Outcome, ClientError> {
    Ok(match command {
        WalletCommand::Token(TokenCommand::Issue(args)) => {
            let issued = client
                .issue_token(NewToken {
                    token_id: args.token_id,
                    account_id: args.account,
                    clearing_account_id: args.clearing,
                    device_id: args.device,
                    offline_limit: args.limit,
                    max_offline_count: args.count,
                    validity_ms: args.validity_ms,
                })
                .await?;
            let ok = issued.result.is_success();
            Outcome {
                document: Some(issued_token(&issued)),
                exit: if ok {
                    super::run::EXIT_OK
                } else {
                    EXIT_ITEM_FAILED
                },
                message: (!ok).then(|| format!("token not issued: {}", issued.result.code)),
            }
        }
        WalletCommand::Token(TokenCommand::Get { token_id }) => {
            let found = client.get_token(token_id).await?;
            Outcome::found(found.as_ref().map(token), format!("token {token_id}"))
        }
        WalletCommand::Token(TokenCommand::Revoke { token_id, reason }) => {
            Outcome::writes(&[client.revoke_token(token_id, &reason).await?])
        }
        WalletCommand::Sync(args) => return sync(client, args).await,
        WalletCommand::Exceptions { token_id, limit } => {
            let exceptions = client.list_exceptions(token_id, limit).await?;
            Outcome::ok(object! {
                "token_id" => id(token_id),
                "exceptions" => exceptions.iter().map(exception).collect::<Vec<_>>(),
            })
        }
        WalletCommand::Reconcile {
            token_id,
            balance,
            last_sequence,
        } => {
            let found = client.reconcile(token_id, balance, last_sequence).await?;
            Outcome::found(
                found
                    .as_ref()
                    .map(|r| reconciliation(balance, last_sequence, r)),
                format!("token {token_id}"),
            )
        }
        WalletCommand::Mac(args) => match signed_record(&args) {
            Ok(document) => Outcome::ok(document),
            Err(message) => input_error(message),
        },
    })
}

async fn sync(client: &LedgerClient, args: WalletSyncArgs) -> Result<Outcome, ClientError> {
    let mut records = match &args.file {
        None => Vec::new(),
        Some(path) => match read_records(path, args.token_id) {
            Ok(records) => records,
            Err(message) => return Ok(input_error(message)),
        },
    };
    records.extend(args.records);
    let outcome = client
        .sync_offline_records(args.token_id, &records, args.reissue_through)
        .await?;
    let failed = outcome.results.iter().filter(|r| !r.is_success()).count();
    // A terminal upload (no re-issue asked) reports the re-issue as ok: only a phone's counts.
    let reissue_failed = args.reissue_through != 0 && !outcome.reissue.is_success();
    let mut problems = Vec::new();
    if failed > 0 {
        problems.push(format!(
            "{failed} of {} record(s) not posted (see `ledger wallet exceptions`)",
            records.len()
        ));
    }
    if reissue_failed {
        problems.push(format!("not re-issued: {}", outcome.reissue.code));
    }
    Ok(Outcome {
        document: Some(sync_outcome(args.token_id, &outcome)),
        exit: if problems.is_empty() {
            super::run::EXIT_OK
        } else {
            EXIT_ITEM_FAILED
        },
        message: (!problems.is_empty()).then(|| problems.join("; ")),
    })
}

/// Bad local input (a records file, a key): nothing was sent.
fn input_error(message: String) -> Outcome {
    Outcome {
        document: None,
        exit: EXIT_ERROR,
        message: Some(format!("error: {message}")),
    }
}

/// One line of a records file: the fields of `wallet mac --output json` (and of exceptions).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordLine {
    /// Optional; when present it must be the token synced.
    #[serde(default)]
    token_id: Option<String>,
    sequence: u64,
    amount: String,
    merchant_account_id: String,
    device_time_ms: u64,
    mac: String,
}

/// Records of a JSON Lines file (`-`: stdin); blank lines are skipped. Errors name the line.
pub fn read_records(path: &std::path::Path, token_id: u128) -> Result<Vec<OfflineRecord>, String> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_records(&text, token_id).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse_records(text: &str, token_id: u128) -> Result<Vec<OfflineRecord>, String> {
    let mut records = Vec::new();
    for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() {
            continue;
        }
        let at = |e: &dyn std::fmt::Display| format!("line {number}: {e}");
        let row: RecordLine = serde_json::from_str(line).map_err(|e| at(&e))?;
        if let Some(text) = &row.token_id
            && parse_id(text).map_err(|e| at(&e))? != token_id
        {
            return Err(at(&format!(
                "token_id {text} is not the token synced ({token_id})"
            )));
        }
        records.push(OfflineRecord {
            sequence: row.sequence,
            amount: parse_amount(&row.amount).map_err(|e| at(&e))?,
            merchant_account_id: parse_id(&row.merchant_account_id).map_err(|e| at(&e))?,
            device_time_ms: row.device_time_ms,
            mac: decode_hex::<MAC_BYTES>(&row.mac, "record MAC").map_err(|e| at(&e))?,
        });
    }
    Ok(records)
}

/// `wallet mac`: the record with its MAC, in the records file's line format.
fn signed_record(args: &WalletMacArgs) -> Result<Node, String> {
    let key = TokenKey::from_hex(&args.key).map_err(|e| e.to_string())?;
    let mac = record_mac(
        &key,
        args.token_id,
        args.sequence,
        args.amount,
        args.scale,
        args.merchant,
        args.device_time_ms,
    )
    .map_err(|e| e.to_string())?;
    let record = OfflineRecord {
        sequence: args.sequence,
        amount: args.amount,
        merchant_account_id: args.merchant,
        device_time_ms: args.device_time_ms,
        mac,
    };
    Ok(extend(
        object! { "token_id" => id(args.token_id) },
        record_node(&record),
    ))
}

fn record_node(record: &OfflineRecord) -> Node {
    object! {
        "sequence" => record.sequence,
        "amount" => amount(record.amount),
        "merchant_account_id" => id(record.merchant_account_id),
        "device_time_ms" => record.device_time_ms,
        "mac" => to_hex(&record.mac),
    }
}

pub fn token(token: &Token) -> Node {
    let node = object! {
        "token_id" => id(token.token_id),
        "account_id" => id(token.account_id),
        "clearing_account_id" => id(token.clearing_account_id),
        "device_id" => token.device_id.as_str(),
        "asset" => token.asset.as_str(),
        "status" => token.status.name(),
        "revoke_reason" => token.revoke_reason.as_str(),
        "offline_limit" => amount(token.offline_limit),
        "max_offline_count" => token.max_offline_count,
        "hold_placed" => amount(token.hold_placed),
        "hold_remaining" => amount(token.hold_remaining),
        "hold_capped" => token.hold_capped,
        "generation" => token.generation,
        "seq_base" => token.seq_base,
        "seq_high" => token.seq_high,
        "window_first_sequence" => token.window().start().to_owned(),
        "window_last_sequence" => token.window().end().to_owned(),
    };
    let node = with_timestamp(node, "issued_at", Some(token.issued_at_ns));
    let node = with_timestamp(node, "expires_at", Some(token.expires_at_ns));
    with_timestamp(node, "release_at", Some(token.release_at_ns))
}

fn issued_token(issued: &IssuedToken) -> Node {
    object! {
        "result" => view::write_result(&issued.result),
        "token" => issued.token.as_ref().map(token),
        "mac_key" => issued.key.as_ref().map(TokenKey::to_hex),
    }
}

fn sync_outcome(token_id: u128, outcome: &SyncOutcome) -> Node {
    object! {
        "token_id" => id(token_id),
        "results" => outcome.results.iter().map(view::write_result).collect::<Vec<_>>(),
        "reissue" => view::write_result(&outcome.reissue),
        "token" => outcome.token.as_ref().map(token),
        "account" => outcome.account.as_ref().map(view::account),
    }
}

fn reconciliation(device_balance: Amount, device_last_sequence: u64, r: &Reconciliation) -> Node {
    object! {
        "token_id" => id(r.token.token_id),
        "device_balance" => amount(device_balance),
        "ledger_balance" => amount(r.ledger_balance),
        "difference" => amount(r.difference),
        "device_last_sequence" => device_last_sequence,
        "ledger_last_sequence" => r.ledger_last_sequence,
        "missing_sequences" => r.missing_sequences.iter().map(|s| Node::from(*s)).collect::<Vec<_>>(),
        "device_sequence_out_of_window" => r.device_sequence_out_of_window,
        "token" => token(&r.token),
        "account" => view::account(&r.account),
    }
}

fn exception(exception: &OfflineException) -> Node {
    let node = object! {
        "sequence" => exception.sequence,
        "amount" => amount(exception.amount),
        "merchant_account_id" => id(exception.merchant_account_id),
        "device_time_ms" => exception.device_time_ms,
        "reason" => exception.reason.to_string(),
    };
    with_timestamp(node, "timestamp", Some(exception.timestamp_ns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{Cli, Command};
    use clap::Parser;

    const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn mac_args(extra: &[&str]) -> WalletMacArgs {
        let mut argv = vec![
            "ledger",
            "wallet",
            "mac",
            "--key",
            KEY_HEX,
            "--token",
            "0x0102030405060708090a0b0c0d0e0f10",
        ];
        argv.extend([
            "--sequence",
            "7",
            "--amount",
            "25.00",
            "--scale",
            "2",
            "--merchant",
            "3",
        ]);
        argv.extend(["--device-time-ms", "1700000000000"]);
        argv.extend(extra);
        let Command::Wallet(WalletCommand::Mac(args)) = Cli::try_parse_from(argv).unwrap().command
        else {
            panic!("wrong command")
        };
        args
    }

    /// `wallet mac` prints the shared test vector, and its JSON line reads back as the record.
    #[test]
    fn mac_command_prints_the_shared_vector_as_a_record_line() {
        let node = signed_record(&mac_args(&[])).unwrap();
        let line = serde_json::to_string(&node).unwrap();
        assert_eq!(
            line,
            r#"{"token_id":"1339673755198158349044581307228491536","sequence":7,"amount":"25.00","merchant_account_id":"3","device_time_ms":1700000000000,"mac":"3a666d262ddf7b00df1680e71eb0a0c592304e4ae6be4d417fc9ecb1a815a169"}"#
        );
        let records = parse_records(
            &format!("{line}\n\n{line}\n"),
            0x0102030405060708090a0b0c0d0e0f10,
        )
        .unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(
            (records[0].sequence, records[0].amount.to_string().as_str()),
            (7, "25.00")
        );
        assert_eq!(
            to_hex(&records[0].mac),
            "3a666d262ddf7b00df1680e71eb0a0c592304e4ae6be4d417fc9ecb1a815a169"
        );
        let error = parse_records(&line, 5).unwrap_err();
        assert!(
            error.contains("line 1") && error.contains("not the token synced"),
            "{error}"
        );
    }

    #[test]
    fn mac_command_refuses_bad_keys_and_amounts() {
        let mut args = mac_args(&[]);
        args.key = "00".into();
        assert!(signed_record(&args).unwrap_err().contains("token key"));
        let mut args = mac_args(&[]);
        args.scale = 1;
        args.amount = Amount::new(2505, 2);
        assert!(signed_record(&args).unwrap_err().contains("minor units"));
    }

    #[test]
    fn record_lines_name_the_bad_line() {
        let mac = "ab".repeat(32);
        let good = format!(
            r#"{{"sequence":1,"amount":"30.00","merchant_account_id":"3","device_time_ms":1,"mac":"{mac}"}}"#
        );
        assert_eq!(parse_records(&good, 9).unwrap()[0].merchant_account_id, 3);
        for (bad, what) in [
            (good.replace("30.00", "3e1"), "amount"),
            (good.replace(&mac, "abcd"), "record MAC"),
            (good.replace("\"sequence\"", "\"seq\""), "unknown field"),
            (good.replace("\"3\"", "\"-3\""), "id"),
            ("{".to_string(), "EOF"),
        ] {
            let error = parse_records(&format!("{good}\n{bad}"), 9).unwrap_err();
            assert!(
                error.starts_with("line 2:") && error.contains(what),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn wallet_commands_parse() {
        let cli = Cli::try_parse_from([
            "ledger",
            "wallet",
            "token",
            "issue",
            "--id",
            "77",
            "--account",
            "2",
            "--clearing",
            "4",
            "--device",
            "phone-1",
            "--limit",
            "100.00",
            "--count",
            "10",
        ])
        .unwrap();
        let Command::Wallet(WalletCommand::Token(TokenCommand::Issue(args))) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!((args.token_id, args.count, args.validity_ms), (77, 10, 0));
        let cli = Cli::try_parse_from([
            "ledger",
            "wallet",
            "sync",
            "--token",
            "77",
            "--reissue-through",
            "3",
        ])
        .unwrap();
        let Command::Wallet(WalletCommand::Sync(args)) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(
            (args.token_id, args.reissue_through, args.records.len()),
            (77, 3, 0)
        );
        for argv in [
            vec!["ledger", "wallet", "token", "issue", "--id", "77"],
            vec![
                "ledger", "wallet", "sync", "--token", "77", "--record", "1:2:3",
            ],
            vec!["ledger", "wallet", "exceptions"],
        ] {
            assert_eq!(
                Cli::try_parse_from(&argv).unwrap_err().exit_code(),
                2,
                "{argv:?}"
            );
        }
    }
}
