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

// ---- `ledger risk-rules …` (issue 22): rules by id on credits, debits and balances ----

use crate::risk::{RiskLimit, RiskRule, RiskSide, RiskWindow};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    Amount,
    Count,
    Balance,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SideArg {
    Debit,
    Credit,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum WindowArg {
    Transfer,
    Minute,
    Hour,
    Day,
    Month,
}

#[derive(Debug, Subcommand)]
pub enum RiskRulesCommand {
    /// Set rule ID (replaces a rule with the same id).
    Set(RiskRuleArgs),
    /// Remove rule ID.
    Remove { rule_id: u64 },
    /// Every rule in force.
    List,
}

#[derive(Debug, Args)]
pub struct RiskRuleArgs {
    pub rule_id: u64,
    #[arg(long)]
    pub asset: String,
    /// Only this account (default: any).
    #[arg(long, value_parser = parse_id_arg)]
    pub account: Option<u128>,
    /// Only accounts of this code (default: any).
    #[arg(long)]
    pub account_code: Option<u32>,
    /// Only transfers of this code, the business type (default: any).
    #[arg(long)]
    pub transfer_code: Option<u32>,
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// Amount and count rules: which side of the account's transfers counts.
    #[arg(long, value_enum, default_value = "debit")]
    pub side: SideArg,
    /// Amount and count rules: per transfer, or per calendar minute/hour/day/month.
    #[arg(long, value_enum, default_value = "day")]
    pub window: WindowArg,
    /// The largest amount (amount, balance) or number (count).
    #[arg(long)]
    pub max: String,
    /// Local time of the windows (480 = UTC+8).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub utc_offset_minutes: i32,
}

fn risk_rule(a: RiskRuleArgs) -> Result<RiskRule, ClientError> {
    let side = match a.side {
        SideArg::Debit => RiskSide::Debit,
        SideArg::Credit => RiskSide::Credit,
    };
    let window = match a.window {
        WindowArg::Transfer => RiskWindow::Transfer,
        WindowArg::Minute => RiskWindow::Minute,
        WindowArg::Hour => RiskWindow::Hour,
        WindowArg::Day => RiskWindow::Day,
        WindowArg::Month => RiskWindow::Month,
    };
    let amount = || parse_amount_arg(&a.max).map_err(|e| ClientError::protocol(format!("--max: {e}")));
    let limit = match a.kind {
        KindArg::Amount => RiskLimit::Amount { side, max: amount()?, window },
        KindArg::Count => RiskLimit::Count { side, max: a.max.parse().map_err(|_| ClientError::protocol("--max: a count"))?, window },
        KindArg::Balance => RiskLimit::Balance { max: amount()? },
    };
    Ok(RiskRule {
        rule_id: a.rule_id,
        asset: a.asset,
        account_id: a.account.unwrap_or(0),
        account_code: a.account_code.unwrap_or(0),
        transfer_code: a.transfer_code,
        limit,
        utc_offset_minutes: a.utc_offset_minutes,
    })
}

fn risk_rule_view(r: &RiskRule) -> Node {
    let (kind, side, window, max) = match &r.limit {
        RiskLimit::Amount { side, max, window } => ("amount", Some(*side), Some(*window), view::amount(*max)),
        RiskLimit::Count { side, max, window } => ("count", Some(*side), Some(*window), Node::Integer(u64::from(*max))),
        RiskLimit::Balance { max } => ("balance", None, None, view::amount(*max)),
    };
    let name = |t: Option<String>| t.map(|t| Node::Text(t.to_lowercase())).unwrap_or(Node::Null);
    Node::Object(vec![
        ("rule_id".into(), Node::Integer(r.rule_id)),
        ("asset".into(), Node::Text(r.asset.clone())),
        ("account_id".into(), if r.account_id == 0 { Node::Null } else { view::id(r.account_id) }),
        ("account_code".into(), if r.account_code == 0 { Node::Null } else { Node::Integer(u64::from(r.account_code)) }),
        ("transfer_code".into(), r.transfer_code.map(|c| Node::Integer(u64::from(c))).unwrap_or(Node::Null)),
        ("kind".into(), Node::Text(kind.into())),
        ("side".into(), name(side.map(|s| format!("{s:?}")))),
        ("window".into(), name(window.map(|w| format!("{w:?}")))),
        ("max".into(), max),
        ("utc_offset_minutes".into(), Node::Text(r.utc_offset_minutes.to_string())),
    ])
}

pub(super) async fn risk_rules(client: &LedgerClient, command: RiskRulesCommand) -> Result<Outcome, ClientError> {
    match command {
        RiskRulesCommand::Set(a) => Ok(Outcome::writes(&client.set_risk_rules(vec![risk_rule(a)?]).await?)),
        RiskRulesCommand::Remove { rule_id } => Ok(Outcome::writes(&client.remove_risk_rules(vec![rule_id]).await?)),
        RiskRulesCommand::List => {
            let rules = client.list_risk_rules().await?;
            Ok(Outcome::ok(Node::Object(vec![("rules".into(), Node::Array(rules.iter().map(risk_rule_view).collect()))])))
        }
    }
}
