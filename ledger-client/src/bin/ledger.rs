//! `ledger`: command-line client for the ledger. See ledger-client/README.md.

fn main() -> std::process::ExitCode {
    ledger_client::cli::main()
}
