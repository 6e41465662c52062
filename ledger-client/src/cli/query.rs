//! `ledger query …`: history queries.

use clap::Subcommand;

use super::parse::parse_id_arg;
use super::run::Outcome;
use super::view::{self, Node, object};
use crate::client::LedgerClient;
use crate::error::ClientError;
use crate::query::{AccountHistoryPage, HistoryRange};

#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// An account's balances after each change, oldest first (auditor or admin).
    History {
        #[arg(value_parser = parse_id_arg)]
        account: u128,
        /// From this time (ns, inclusive); 0 = the first change.
        #[arg(long = "from", default_value_t = 0)]
        from_timestamp_ns: u64,
        /// To this time (ns, inclusive); 0 = the last change.
        #[arg(long = "to", default_value_t = 0)]
        to_timestamp_ns: u64,
        /// 1..=8190; 0 = 100.
        #[arg(long, default_value_t = 0)]
        limit: u32,
        /// The previous page's next_cursor_timestamp_ns.
        #[arg(long = "cursor", default_value_t = 0)]
        cursor_timestamp_ns: u64,
        /// Newest first.
        #[arg(long)]
        reverse: bool,
    },
}

pub(super) async fn run(client: &LedgerClient, command: QueryCommand) -> Result<Outcome, ClientError> {
    match command {
        QueryCommand::History { account, from_timestamp_ns, to_timestamp_ns, limit, cursor_timestamp_ns, reverse } => {
            let range = HistoryRange { from_timestamp_ns, to_timestamp_ns, cursor_timestamp_ns, limit, reverse };
            match client.get_account_history(account, range).await {
                Ok(page) => Ok(Outcome::ok(history(&page))),
                Err(ClientError::Rejected { code: tonic::Code::NotFound, .. }) => Ok(Outcome::found(None, format!("account {account}"))),
                Err(error) => Err(error),
            }
        }
    }
}

/// `{"changes":[{"timestamp_ns","timestamp_time","transfer_id","balances"}…],"next_cursor_timestamp_ns"}`.
fn history(page: &AccountHistoryPage) -> Node {
    let changes: Vec<Node> = page
        .changes
        .iter()
        .map(|c| {
            let node = view::with_timestamp(object! {}, "timestamp", Some(c.timestamp_ns));
            view::extend(node, object! { "transfer_id" => view::id(c.transfer_id), "balances" => view::balances(&c.balances) })
        })
        .collect();
    object! { "changes" => changes, "next_cursor_timestamp_ns" => page.next_cursor_timestamp_ns }
}
