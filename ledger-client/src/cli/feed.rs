//! `ledger feed --from CURSOR [--follow] [filters]`: the change feed, one event per line.

use std::process::ExitCode;

use clap::Args;

use super::args::OutputFormat;
use super::parse::parse_id_arg;
use super::run::{EXIT_ERROR, EXIT_OK, emit_line, fail};
use super::view::{self, Node, object};
use crate::client::LedgerClient;
use crate::feed::{FeedEvent, FeedFilter};

#[derive(Debug, Args)]
pub struct FeedArgs {
    /// Events strictly after this cursor (the `cursor` of the last event handled); 0 = from the first.
    #[arg(long = "from", default_value_t = 0)]
    pub from_cursor: u64,
    /// Keep waiting for new events (across node failures, resuming from the last cursor) until
    /// interrupted. Without it, the feed ends at the head as of the call.
    #[arg(long)]
    pub follow: bool,
    /// Only events naming this account; repeatable (any of them).
    #[arg(long = "account", value_parser = parse_id_arg)]
    pub accounts: Vec<u128>,
    /// Only events of this asset.
    #[arg(long)]
    pub asset: Option<String>,
    /// Only events naming an account of this code; repeatable.
    #[arg(long = "account-code")]
    pub account_codes: Vec<u32>,
    /// Only movements of this transfer code; repeatable.
    #[arg(long = "transfer-code")]
    pub transfer_codes: Vec<u32>,
    /// Only events of this journal type (movement, account_created, …); repeatable.
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
}

pub async fn run(client: &LedgerClient, args: FeedArgs, output: OutputFormat) -> ExitCode {
    let filter = FeedFilter {
        accounts: args.accounts,
        asset: args.asset,
        account_codes: args.account_codes,
        transfer_codes: args.transfer_codes,
        kinds: args.kinds,
    };
    let mut subscription = match client.subscribe(args.from_cursor, &filter, args.follow).await {
        Ok(subscription) => subscription,
        Err(error) => return fail(&error),
    };
    while let Some(page) = subscription.next().await {
        match page {
            Ok(page) => {
                for event in &page.events {
                    if !emit_line(&event_node(event), output) {
                        return ExitCode::from(EXIT_OK);
                    }
                }
            }
            Err(error) => {
                eprintln!("ledger: resume with --from {}", subscription.cursor());
                return fail(&error);
            }
        }
    }
    if args.follow {
        eprintln!("ledger: error: the feed ended; resume with --from {}", subscription.cursor());
        return ExitCode::from(EXIT_ERROR);
    }
    ExitCode::from(EXIT_OK)
}

/// `{"cursor":…,"timestamp_ns":…,"timestamp_time":…,"kind":…,"hash":…,"event":{the journal
/// line's event, keys sorted},"entries":[…]}`.
pub fn event_node(event: &FeedEvent) -> Node {
    let parsed = serde_json::from_str::<serde_json::Value>(&event.line).ok().and_then(|mut line| line.get_mut("event").map(serde_json::Value::take));
    let node = object! { "cursor" => event.cursor };
    let node = view::with_timestamp(node, "timestamp", Some(event.timestamp_ns));
    view::extend(node, object! {
        "kind" => event.kind.as_str(),
        "hash" => event.hash.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "event" => parsed.map_or(Node::Text(event.line.clone()), json_node),
        "entries" => event.entries.iter().map(view::entry).collect::<Vec<_>>(),
    })
}

/// A JSON value as an output node (the journal writes no floats: integers are u64).
fn json_node(value: serde_json::Value) -> Node {
    use serde_json::Value;
    match value {
        Value::Null => Node::Null,
        Value::Bool(b) => Node::Bool(b),
        Value::Number(n) => n.as_u64().map_or_else(|| Node::Text(n.to_string()), Node::Integer),
        Value::String(s) => Node::Text(s),
        Value::Array(items) => Node::Array(items.into_iter().map(json_node).collect()),
        Value::Object(fields) => Node::Object(fields.into_iter().map(|(k, v)| (k, json_node(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{Cli, Command};
    use clap::Parser;

    #[test]
    fn feed_arguments_parse() {
        let cli = Cli::try_parse_from(["ledger", "feed", "--from", "12", "--follow", "--account", "0x10", "--account", "3", "--kind", "movement", "--transfer-code", "7", "--asset", "CNY", "--account-code", "2"]).unwrap();
        let Command::Feed(args) = cli.command else { panic!("wrong command") };
        assert_eq!((args.from_cursor, args.follow, args.accounts, args.kinds), (12, true, vec![16, 3], vec!["movement".to_string()]));
        assert_eq!((args.transfer_codes, args.account_codes, args.asset.as_deref()), (vec![7], vec![2], Some("CNY")));
        assert!(Cli::try_parse_from(["ledger", "feed", "--from", "-1"]).is_err());
    }

    #[test]
    fn an_event_prints_its_journal_event_as_json() {
        let event = FeedEvent {
            cursor: 4,
            timestamp_ns: 1_000_000_000,
            kind: "account_renamed".into(),
            line: r#"{"seq":4,"timestamp_ns":1000000000,"event":{"type":"account_renamed","account_id":"3","n":[1,true,null]}}"#.into(),
            hash: vec![0xab, 0x01],
            entries: Vec::new(),
        };
        let text = serde_json::to_string(&event_node(&event)).unwrap();
        assert_eq!(
            text,
            r#"{"cursor":4,"timestamp_ns":1000000000,"timestamp_time":"1970-01-01T00:00:01.000000000Z","kind":"account_renamed","hash":"ab01","event":{"account_id":"3","n":[1,true,null],"type":"account_renamed"},"entries":[]}"#
        );
    }
}
