//! The `ledger` command-line tool (its binary is `src/bin/ledger.rs`). Lives in the library so
//! its parsers and output formats are unit-tested; not a stable library API.

pub mod accounts;
pub mod args;
pub mod audit;
pub mod feed;
pub mod parse;
pub mod query;
pub mod render;
pub mod risk;
pub mod run;
pub mod view;
pub mod wallet;

use clap::Parser;
use std::process::ExitCode;

/// Parses the command line, runs the command, returns the exit status (see `run::EXIT_*`).
pub fn main() -> ExitCode {
    // Usage errors exit 2 (clap's convention, which matches ours); --help and --version exit 0.
    let cli = args::Cli::parse();
    // Logs go to stderr so stdout stays machine-readable. Off unless RUST_LOG asks: errors are
    // already reported once, in plain words, by `run`.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ledger: error: cannot start the async runtime: {error}");
            return ExitCode::from(run::EXIT_ERROR);
        }
    };
    runtime.block_on(run::run(cli))
}

#[cfg(test)]
mod tests {
    use super::args::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cluster_admin_commands_parse() {
        let cli = Cli::try_parse_from([
            "ledger",
            "cluster",
            "init",
            "--peer",
            "2=127.0.0.1:7071/",
            "--peer",
            "3=http://b:1",
        ])
        .unwrap();
        let Command::Cluster(ClusterCommand::Init { peers }) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(
            peers,
            vec![
                (2, "http://127.0.0.1:7071".to_string()),
                (3, "http://b:1".to_string())
            ]
        );
        assert!(
            Cli::try_parse_from(["ledger", "cluster", "init", "--peer", "0=http://a:1"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["ledger", "cluster", "init", "--peer", "http://a:1"]).is_err()
        );
        let cli =
            Cli::try_parse_from(["ledger", "cluster", "promote", "4", "--wait-secs", "9"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Cluster(ClusterCommand::Promote {
                node_id: 4,
                wait_secs: 9
            })
        ));
        let cli =
            Cli::try_parse_from(["ledger", "cluster", "add-learner", "5", "http://a:1"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Cluster(ClusterCommand::AddLearner { node_id: 5, .. })
        ));
        let cli =
            Cli::try_parse_from(["ledger", "--max-staleness-ms", "250", "account", "get", "1"])
                .unwrap();
        assert_eq!(cli.max_staleness_ms, Some(250));
        assert!(
            Cli::try_parse_from(["ledger", "--max-staleness-ms", "0", "account", "get", "1"])
                .is_err()
        );
        assert!(
            Cli::try_parse_from([
                "ledger",
                "--max-staleness-ms",
                "60001",
                "account",
                "get",
                "1"
            ])
            .is_err()
        );
    }

    #[test]
    fn endpoints_repeat_and_split_on_commas() {
        let cli = Cli::try_parse_from([
            "ledger",
            "--endpoint",
            "http://a:1,http://b:1",
            "--endpoint",
            "http://c:1",
            "cluster",
            "status",
        ])
        .unwrap();
        assert_eq!(
            cli.endpoints,
            vec!["http://a:1", "http://b:1", "http://c:1"]
        );
    }

    #[test]
    fn transfer_submit_parses_legs() {
        let cli = Cli::try_parse_from([
            "ledger",
            "transfer",
            "submit",
            "--asset",
            "CNY",
            "--leg",
            "1:2:10.00",
            "--leg",
            "0x2:3:1",
            "--idempotency-key",
            "k1",
            "--pending",
            "--timeout-ms",
            "500",
            "--output",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.output, OutputFormat::Json);
        let Command::Transfer(TransferCommand::Submit(args)) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(args.legs.len(), 2);
        assert_eq!(args.legs[1].debit, 2);
        assert!(args.pending);
        assert_eq!(args.timeout_ms, 500);
        assert_eq!(args.id, None);
        assert_eq!(
            cli.request_timeout_ms, 10_000,
            "the pending timeout must not leak into the request timeout"
        );
    }

    #[test]
    fn request_timeout_is_separate_from_the_pending_timeout() {
        let cli = Cli::try_parse_from([
            "ledger",
            "--request-timeout-ms",
            "250",
            "transfer",
            "submit",
            "--asset",
            "CNY",
            "--leg",
            "1:2:1",
            "--idempotency-key",
            "k",
        ])
        .unwrap();
        assert_eq!(cli.request_timeout_ms, 250);
        let Command::Transfer(TransferCommand::Submit(args)) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(args.timeout_ms, 0);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for argv in [
            vec![
                "ledger",
                "transfer",
                "submit",
                "--asset",
                "CNY",
                "--leg",
                "1:2",
                "--idempotency-key",
                "k",
            ],
            vec![
                "ledger",
                "transfer",
                "submit",
                "--asset",
                "CNY",
                "--idempotency-key",
                "k",
            ],
            vec!["ledger", "account", "get", "-5"],
            vec![
                "ledger", "account", "create", "--id", "1", "--asset", "C", "--code", "1",
                "--meta", "novalue",
            ],
            vec![
                "ledger",
                "transfer",
                "post",
                "9",
                "--idempotency-key",
                "k",
                "--amount",
                "1e3",
            ],
        ] {
            let error = Cli::try_parse_from(&argv).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{argv:?}");
        }
    }

    #[test]
    fn post_amounts_and_defaults() {
        let cli = Cli::try_parse_from([
            "ledger",
            "transfer",
            "post",
            "0x10",
            "--idempotency-key",
            "k",
            "--amount",
            "1.5",
            "--amount",
            "2",
        ])
        .unwrap();
        let Command::Transfer(TransferCommand::Post {
            pending_id,
            amounts,
            ..
        }) = cli.command
        else {
            panic!("wrong command")
        };
        assert_eq!(pending_id, 16);
        assert_eq!(amounts.len(), 2);
    }
}
