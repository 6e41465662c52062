//! `ledger account update …`, `ledger account rebind …`, `ledger account changes …`: account
//! changes after creation and their history.

use clap::Args;

use super::parse::{parse_amount_arg, parse_id_arg, parse_meta_arg};
use super::run::Outcome;
use super::view::{self, Node, object};
use crate::accounts::{AccountChange, AccountChanges, AccountSettings, AccountUpdate, ChangeKind, Rebind};
use crate::amount::Amount;
use crate::client::LedgerClient;
use crate::error::ClientError;

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[arg(value_parser = parse_id_arg)]
    pub id: u128,
    /// A new account code (e.g. a wallet tier after real-name verification); not zero.
    #[arg(long)]
    pub code: Option<u32>,
    /// A new overdraft limit (debits-within-credits accounts only; never below what is drawn).
    #[arg(long, value_parser = parse_amount_arg)]
    pub overdraft_limit: Option<Amount>,
    /// Replace the metadata with these KEY=VALUE entries; repeatable.
    #[arg(long = "meta", value_parser = parse_meta_arg)]
    pub metadata: Vec<(String, String)>,
    /// Remove every metadata entry.
    #[arg(long, conflicts_with = "metadata")]
    pub clear_metadata: bool,
    /// Why (kept in the journal and the history); at most 256 bytes.
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct RebindArgs {
    /// The external reference, e.g. a phone number.
    pub external_ref: String,
    /// The account holding it now (open or closed); omit when it is bound to none.
    #[arg(long, value_parser = parse_id_arg)]
    pub from: Option<u128>,
    /// The account to bind it to; omit to release it.
    #[arg(long, value_parser = parse_id_arg)]
    pub to: Option<u128>,
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct ChangesArgs {
    #[arg(value_parser = parse_id_arg)]
    pub id: u128,
    /// 1..=1000; 0 lets the server choose (100).
    #[arg(long, default_value_t = 0)]
    pub limit: u32,
    /// Changes strictly after this timestamp; 0 = from the first.
    #[arg(long = "cursor", default_value_t = 0)]
    pub cursor_timestamp_ns: u64,
}

pub(super) async fn update(client: &LedgerClient, a: UpdateArgs) -> Result<Outcome, ClientError> {
    let metadata = match (a.clear_metadata, a.metadata.is_empty()) {
        (true, _) => Some(Default::default()),
        (false, false) => Some(a.metadata.into_iter().collect()),
        (false, true) => None,
    };
    let update = AccountUpdate { account_id: a.id, metadata, overdraft_limit: a.overdraft_limit, code: a.code, reason: a.reason };
    Ok(Outcome::writes(&client.update_accounts(vec![update]).await?))
}

pub(super) async fn rebind(client: &LedgerClient, a: RebindArgs) -> Result<Outcome, ClientError> {
    let rebind = Rebind { external_ref: a.external_ref, from_account_id: a.from.unwrap_or(0), to_account_id: a.to.unwrap_or(0), reason: a.reason };
    Ok(Outcome::writes(&client.rebind_external_refs(vec![rebind]).await?))
}

pub(super) async fn changes(client: &LedgerClient, a: ChangesArgs) -> Result<Outcome, ClientError> {
    let page = client.list_account_changes(a.id, a.cursor_timestamp_ns, a.limit).await?;
    Ok(Outcome::ok(changes_view(a.id, &page)))
}

fn settings_view(s: &AccountSettings) -> Node {
    let metadata = Node::Object(s.metadata.iter().map(|(k, v)| (k.clone(), Node::from(v.as_str()))).collect());
    object! { "code" => s.code, "overdraft_limit" => view::amount(s.overdraft_limit), "metadata" => metadata }
}

fn change_view(c: &AccountChange) -> Node {
    let what = match &c.kind {
        ChangeKind::Settings { before, after } => object! { "kind" => "settings", "before" => settings_view(before), "after" => settings_view(after) },
        ChangeKind::ExternalRef { before, after, other_account_id } => object! {
            "kind" => "external_ref",
            "before" => before.clone(),
            "after" => after.clone(),
            "other_account_id" => (*other_account_id != 0).then(|| view::id(*other_account_id)).unwrap_or(Node::Null),
        },
    };
    let node = view::extend(object! { "actor" => c.actor.as_str(), "reason" => c.reason.as_str() }, what);
    view::with_timestamp(node, "timestamp", Some(c.timestamp_ns))
}

fn changes_view(account_id: u128, page: &AccountChanges) -> Node {
    object! {
        "account_id" => view::id(account_id),
        "changes" => Node::Array(page.changes.iter().map(change_view).collect()),
        "next_cursor_timestamp_ns" => page.next_after_timestamp_ns,
    }
}
