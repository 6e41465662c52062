//! `ledger audit …`: journal head, export, offline verify, statements, reconciliation.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};

use super::parse::parse_id_arg;
use super::run::{EXIT_ERROR, EXIT_ITEM_FAILED};
use crate::audit::export::ExportRange;
use crate::audit::statement::StatementFormat;
use crate::audit::verify::{self, Pin, PinCheck};
use crate::audit::reconcile;
use crate::client::LedgerClient;
use crate::timestamp::{UtcOffset, parse_time_ns};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The journal's newest line: print `seq:hash` to pin it for a later `verify --pin`.
    Head,
    /// Export a range of the journal into a new directory (see the README "Audit and export").
    Export(ExportArgs),
    /// Verify an export directory offline (no server): chain, files, balances, trial balance.
    Verify {
        dir: PathBuf,
        /// A head pinned earlier (`seq:hash` from `ledger audit head`): the export's chain must
        /// pass through it.
        #[arg(long, value_parser = Pin::parse)]
        pin: Option<Pin>,
    },
    /// An account's statement: opening balance, every entry with the balances after it, closing.
    Statement {
        #[arg(value_parser = parse_id_arg)]
        account: u128,
        /// Start of the period (inclusive): nanoseconds, 2026-11-23 or RFC 3339.
        #[arg(long, value_parser = parse_time_ns, default_value = "0")]
        from: u64,
        /// End of the period (inclusive). Default: now and forever.
        #[arg(long, value_parser = parse_time_ns, default_value_t = u64::MAX)]
        to: u64,
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        /// Local times in this fixed offset (e.g. +08:00) beside UTC.
        #[arg(long, value_parser = UtcOffset::parse, default_value = "Z")]
        utc_offset: UtcOffset,
    },
    /// Reconciliation report from an export: custody accounts against customer and merchant
    /// liabilities per asset, at the export's closing balances (CSV on stdout).
    Reconcile {
        dir: PathBuf,
        /// Account codes of custody (bank) accounts; repeat or comma-separate.
        #[arg(long, value_delimiter = ',', required = true)]
        custody_code: Vec<u32>,
        /// Account codes of customer and merchant (liability) accounts.
        #[arg(long, value_delimiter = ',', required = true)]
        liability_code: Vec<u32>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A new (or empty) directory to write.
    pub dir: PathBuf,
    /// First journal line (default: the first).
    #[arg(long, default_value_t = 0)]
    pub from_seq: u64,
    /// Last journal line (default: the head when the export starts).
    #[arg(long, default_value_t = 0)]
    pub to_seq: u64,
    /// Lines at or after this time: nanoseconds, 2026-11-23 or RFC 3339.
    #[arg(long, value_parser = parse_time_ns)]
    pub from_time: Option<u64>,
    /// Lines at or before this time.
    #[arg(long, value_parser = parse_time_ns)]
    pub to_time: Option<u64>,
    /// Local times in journal.csv in this fixed offset (e.g. +08:00) beside UTC.
    #[arg(long, value_parser = UtcOffset::parse, default_value = "Z")]
    pub utc_offset: UtcOffset,
}

pub async fn run(client: &LedgerClient, command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Head => match client.journal_head().await {
            Ok(head) => {
                println!("{}", head.pin());
                eprintln!("ledger: line {} at {} (pin it: ledger audit verify DIR --pin {})", head.seq, head.timestamp_ns, head.pin());
                ExitCode::SUCCESS
            }
            Err(error) => fail(error),
        },
        AuditCommand::Export(args) => export(client, args).await,
        AuditCommand::Verify { dir, pin } => match verify::verify(&dir, pin) {
            Ok(report) => {
                let m = &report.manifest;
                println!(
                    "ok: lines {}..={} ({} lines, {} legs, {} accounts, {} assets), chain {} → {}",
                    m.from_seq, m.to_seq, m.lines, m.legs, m.accounts, report.assets, m.hash_before, m.hash_end
                );
                match report.pin {
                    PinCheck::Matched => println!("ok: the chain passes through the pinned head"),
                    PinCheck::OutsideRange => println!("note: the pinned head is outside this export's range: not checked"),
                    PinCheck::NotGiven => {}
                }
                ExitCode::SUCCESS
            }
            Err(discrepancy) => {
                println!("FAILED: {discrepancy}");
                ExitCode::from(EXIT_ITEM_FAILED)
            }
        },
        AuditCommand::Statement { account, from, to, format, utc_offset } => {
            let format = match format {
                Format::Csv => StatementFormat::Csv,
                Format::Json => StatementFormat::Json,
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match client.write_statement(account, from, to, utc_offset, format, &mut out).await {
                Ok(_) => {
                    let _ = out.flush();
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    let _ = out.flush();
                    eprintln!("ledger: error: {error}");
                    ExitCode::from(EXIT_ERROR)
                }
            }
        }
        AuditCommand::Reconcile { dir, custody_code, liability_code } => {
            let custody: BTreeSet<u32> = custody_code.into_iter().collect();
            let liabilities: BTreeSet<u32> = liability_code.into_iter().collect();
            match reconcile::reconcile(&dir, &custody, &liabilities) {
                Ok(report) => {
                    println!("{}", reconcile::RECONCILIATION_CSV_HEADER);
                    for (asset, r) in &report {
                        println!("{}", reconcile::csv_row(asset, r));
                    }
                    ExitCode::SUCCESS
                }
                Err(why) => {
                    eprintln!("ledger: error: {why}");
                    ExitCode::from(EXIT_ERROR)
                }
            }
        }
    }
}

async fn export(client: &LedgerClient, args: ExportArgs) -> ExitCode {
    let range = ExportRange {
        from_seq: args.from_seq,
        to_seq: args.to_seq,
        from_timestamp_ns: args.from_time.unwrap_or(0),
        to_timestamp_ns: args.to_time.unwrap_or(0),
    };
    let started = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let progress = |done: u64, total: u64| {
        if terminal {
            let percent = if total == 0 { 100 } else { done * 100 / total };
            eprint!("\rexporting: {done}/{total} lines ({percent}%)");
        }
    };
    match client.export_journal(range, args.utc_offset, &args.dir, progress).await {
        Ok(manifest) => {
            if terminal {
                eprintln!();
            }
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "exported lines {}..={} ({} lines, {} legs, {} accounts) to {} in {seconds:.1} s; chain ends at {}",
                manifest.from_seq,
                manifest.to_seq,
                manifest.lines,
                manifest.legs,
                manifest.accounts,
                args.dir.display(),
                manifest.hash_end
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            if terminal {
                eprintln!();
            }
            eprintln!("ledger: error: {error}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn fail(error: crate::error::ClientError) -> ExitCode {
    eprintln!("ledger: error: {error}");
    ExitCode::from(EXIT_ERROR)
}
