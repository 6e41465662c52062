//! `ledger limits …` and `ledger blocklist …`.

use clap::{Args, Subcommand};
use crate::amount::Amount;

use super::parse::{parse_amount_arg, parse_id_arg};
use super::run::Outcome;
use super::view::{self, Node};
use crate::client::LedgerClient;
use crate::error::ClientError;
use crate::risk::{BlockTarget, LimitScope, Limits};

#[derive(Debug, Subcommand)]
pub enum LimitsCommand {
    /// Set the rule of one account, or of every account of an asset and code (`--code`).
    /// Give no limit to remove the rule.
    Set(LimitArgs),
    /// The rule that applies to an account and what it debited today.
    Get {
        #[arg(value_parser = parse_id_arg)]
        account: u128,
    },
}

#[derive(Debug, Args)]
pub struct LimitArgs {
    /// The account (omit with --asset and --code).
    #[arg(value_parser = parse_id_arg, required_unless_present = "code")]
    pub account: Option<u128>,
    /// A rule for every account of this code (needs --asset).
    #[arg(long, requires = "asset", conflicts_with = "account")]
    pub code: Option<u32>,
    #[arg(long)]
    pub asset: Option<String>,
    /// Largest single debit, e.g. 500.00.
    #[arg(long, value_parser = parse_amount_arg)]
    pub max_single_debit: Option<Amount>,
    /// Debits per day, in amount.
    #[arg(long, value_parser = parse_amount_arg)]
    pub daily_amount: Option<Amount>,
    /// Debits per day, in number.
    #[arg(long)]
    pub daily_count: Option<u32>,
    /// The day's fixed UTC offset in minutes (480 = UTC+8).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub utc_offset_minutes: i32,
}

#[derive(Debug, Subcommand)]
pub enum BlocklistCommand {
    /// Block a token (which revokes it) or a device.
    Block(BlockArgs),
    /// Take a token or device off the list.
    Unblock(BlockArgs),
}

#[derive(Debug, Args)]
pub struct BlockArgs {
    /// (`--token` is the caller's bearer token.)
    #[arg(long, value_parser = parse_id_arg, required_unless_present = "device", conflicts_with = "device")]
    pub token_id: Option<u128>,
    #[arg(long)]
    pub device: Option<String>,
    #[arg(long, default_value = "")]
    pub reason: String,
}

fn limits_view(l: &Limits) -> Node {
    let amount = |d: Option<Amount>| d.map(view::amount).unwrap_or(Node::Null);
    let scope = match &l.scope {
        LimitScope::Account(id) => format!("account:{id}"),
        LimitScope::Code { asset, code } => format!("code:{asset}:{code}"),
    };
    Node::Object(vec![
        ("scope".into(), Node::Text(scope)),
        ("max_single_debit".into(), amount(l.max_single_debit)),
        ("daily_debit_amount".into(), amount(l.daily_debit_amount)),
        ("daily_debit_count".into(), l.daily_debit_count.map(|c| Node::Integer(u64::from(c))).unwrap_or(Node::Null)),
        ("utc_offset_minutes".into(), Node::Text(l.utc_offset_minutes.to_string())),
    ])
}

pub(super) async fn limits(client: &LedgerClient, command: LimitsCommand) -> Result<Outcome, ClientError> {
    match command {
        LimitsCommand::Set(a) => {
            let scope = match (a.account, a.code, a.asset) {
                (Some(id), _, _) => LimitScope::Account(id),
                (None, Some(code), Some(asset)) => LimitScope::Code { asset, code },
                _ => unreachable!("clap requires an account or --code with --asset"),
            };
            let rule = Limits {
                scope,
                max_single_debit: a.max_single_debit,
                daily_debit_amount: a.daily_amount,
                daily_debit_count: a.daily_count,
                utc_offset_minutes: a.utc_offset_minutes,
            };
            Ok(Outcome::writes(&client.set_limits(vec![rule]).await?))
        }
        LimitsCommand::Get { account } => {
            let l = client.get_limits(account).await?;
            Ok(Outcome::ok(Node::Object(vec![
                ("account_id".into(), view::id(account)),
                ("rule".into(), l.rule.as_ref().map(limits_view).unwrap_or(Node::Null)),
                ("debited_today".into(), view::amount(l.debited_today)),
                ("debits_today".into(), Node::Integer(u64::from(l.debits_today))),
            ])))
        }
    }
}

pub(super) async fn blocklist(client: &LedgerClient, command: BlocklistCommand) -> Result<Outcome, ClientError> {
    let (args, blocked) = match command {
        BlocklistCommand::Block(a) => (a, true),
        BlocklistCommand::Unblock(a) => (a, false),
    };
    let target = match (args.token_id, args.device) {
        (Some(token), _) => BlockTarget::Token(token),
        (None, Some(device)) => BlockTarget::Device(device),
        (None, None) => unreachable!("clap requires --token or --device"),
    };
    Ok(Outcome::writes(&client.set_blocklist(vec![(target, blocked, args.reason)]).await?))
}
