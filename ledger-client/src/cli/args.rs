//! Command-line syntax (clap derive). Parsing of ids, legs, amounts and metadata is in `parse`.

use super::parse::{
    parse_amount_arg, parse_id_arg, parse_leg_arg, parse_member_arg, parse_meta_arg,
    parse_record_arg,
};
use crate::wallet::OfflineRecord;
use crate::types::Leg;
use clap::{Args, Parser, Subcommand, ValueEnum};
use crate::amount::Amount;

#[derive(Debug, Parser)]
#[command(
    name = "ledger",
    version,
    about = "Command-line client for the ledger (gRPC ledger.v1.Ledger)."
)]
#[command(
    after_help = "IDs: decimal u128 or 0x-prefixed hex. Amounts: plain decimals like 12.50.\n\
Exit status: 0 every result ok/exists, 1 some item failed or was not found, 2 usage or transport error."
)]
pub struct Cli {
    /// Node endpoint URL; repeat or comma-separate for several nodes (the client follows the leader).
    #[arg(
        long = "endpoint",
        env = "LEDGER_ENDPOINT",
        default_value = "http://127.0.0.1:7070",
        value_delimiter = ',',
        global = true
    )]
    pub endpoints: Vec<String>,

    #[arg(long, value_enum, default_value_t = OutputFormat::Table, global = true)]
    pub output: OutputFormat,

    /// Per-attempt request timeout in milliseconds. (Not `--timeout-ms`: that is the pending
    /// transfer's timeout, and clap would merge two arguments with one name.)
    #[arg(long, default_value_t = 10_000, global = true)]
    pub request_timeout_ms: u64,

    /// Retries after the first attempt (safe: writes are idempotent).
    #[arg(long, default_value_t = 8, global = true)]
    pub max_retries: u32,

    /// Accept reads up to this many milliseconds stale (1..=60000): a follower may answer from
    /// its own state without asking the leader. Default: linearizable reads.
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub max_staleness_ms: Option<u64>,

    /// Bearer token for nodes that require authentication (read from the environment rather than
    /// typed on a command line others can see in `ps`).
    #[arg(long, env = "LEDGER_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,

    /// CA certificate (PEM) the nodes' certificates must chain to; with it, endpoints are
    /// https://. The cluster CA of `ledger-node certs` (ca.pem).
    #[arg(long, env = "LEDGER_TLS_CA", global = true)]
    pub tls_ca: Option<std::path::PathBuf>,

    /// Client certificate (PEM) to present: nodes with tls_client_ca map it to a principal.
    #[arg(long, env = "LEDGER_TLS_CERT", global = true, requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The client certificate's private key (PEM, mode 600).
    #[arg(long, env = "LEDGER_TLS_KEY", global = true, requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Json,
    Table,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and look up assets.
    #[command(subcommand)]
    Asset(AssetCommand),
    /// Create, look up, change, freeze and close accounts; list their entries and changes.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Submit, post and void transfers; look them up.
    #[command(subcommand)]
    Transfer(TransferCommand),
    /// Raft cluster state of the nodes.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Account risk limits: largest single debit, daily debit amount and count.
    #[command(subcommand)]
    Limits(super::risk::LimitsCommand),
    /// Risk rules by id: amount or count caps on credits or debits per transfer or calendar
    /// window, balance caps; scoped by account, account code and transfer code.
    #[command(subcommand)]
    RiskRules(super::risk::RiskRulesCommand),
    /// Block or unblock offline-wallet tokens and devices.
    #[command(subcommand)]
    Blocklist(super::risk::BlocklistCommand),
    /// Regulator audit: journal head, exports, offline verification, statements, reconciliation.
    #[command(subcommand)]
    Audit(super::audit::AuditCommand),
    /// Offline HCE wallets: tokens, offline record sync, exceptions, record MACs.
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// Write a consistent backup of the first --endpoint's node, while it serves, to DIR on that
    /// node's filesystem (absolute, must not exist). Restore it with `ledger-node restore`.
    Backup {
        #[arg(long)]
        dir: String,
    },
    /// History queries: an account's balances after each change.
    #[command(subcommand)]
    Query(super::query::QueryCommand),
    /// Print committed events after a cursor, in commit order, one per line (the change feed).
    Feed(super::feed::FeedArgs),
    /// Print the entries committed on an account as they happen, until interrupted.
    Watch {
        #[arg(value_parser = parse_id_arg)]
        id: u128,
    },
}

#[derive(Debug, Subcommand)]
pub enum AssetCommand {
    /// Create an asset (idempotent: the same code and scale again answers `exists`).
    Create {
        /// 1..=16 of A-Z 0-9 _, e.g. CNY.
        code: String,
        /// Decimal places of the minor unit, 0..=18.
        #[arg(long)]
        scale: u32,
    },
    Get {
        code: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account (idempotent: the same fields again answers `exists`).
    Create(AccountCreateArgs),
    Get {
        #[arg(value_parser = parse_id_arg)]
        id: u128,
    },
    /// Look an account up by its external reference.
    ByRef {
        external_ref: String,
    },
    /// Refuse debits (credits are still accepted).
    Freeze(StatusArgs),
    Unfreeze(StatusArgs),
    /// Close for good; only allowed when every balance is zero.
    Close(StatusArgs),
    /// List the account's entries (one per transfer leg touching it), oldest first.
    ListTransfers {
        #[arg(value_parser = parse_id_arg)]
        id: u128,
        /// 1..=1000; 0 lets the server choose (100).
        #[arg(long, default_value_t = 0)]
        limit: u32,
        /// Entries strictly after this timestamp (before it with --reverse); 0 = from the start/end.
        #[arg(long = "cursor", default_value_t = 0)]
        cursor_timestamp_ns: u64,
        /// Newest first.
        #[arg(long)]
        reverse: bool,
    },
    /// Change its code, overdraft limit or metadata (one step, ordered with transfers).
    Update(super::accounts::UpdateArgs),
    /// Move an external reference to another account, or release it (`--to` omitted).
    Rebind(super::accounts::RebindArgs),
    /// Its change history (settings and references): who, when, what, oldest first.
    Changes(super::accounts::ChangesArgs),
    /// Balances as of a past moment.
    BalanceAt {
        #[arg(value_parser = parse_id_arg)]
        id: u128,
        #[arg(long)]
        timestamp_ns: u64,
    },
}

#[derive(Debug, Args)]
pub struct AccountCreateArgs {
    #[arg(long, value_parser = parse_id_arg)]
    pub id: u128,
    #[arg(long)]
    pub asset: String,
    /// Account type chosen by the application; not zero.
    #[arg(long)]
    pub code: u32,
    #[arg(long)]
    pub debits_must_not_exceed_credits: bool,
    #[arg(long)]
    pub credits_must_not_exceed_debits: bool,
    /// With --debits-must-not-exceed-credits: how far debits may exceed credits.
    #[arg(long, value_parser = parse_amount_arg)]
    pub overdraft_limit: Option<Amount>,
    /// Metadata entry KEY=VALUE; repeatable.
    #[arg(long = "meta", value_parser = parse_meta_arg)]
    pub metadata: Vec<(String, String)>,
    /// Unique external reference, e.g. a phone number.
    #[arg(long)]
    pub external_ref: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(value_parser = parse_id_arg)]
    pub id: u128,
    /// Why (kept in history); at most 256 bytes.
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Debug, Subcommand)]
pub enum TransferCommand {
    /// Submit a posted (or, with --pending, two-phase) transfer.
    Submit(TransferSubmitArgs),
    /// Post a pending transfer: all of it, or one --amount per leg.
    Post {
        #[arg(value_parser = parse_id_arg)]
        pending_id: u128,
        #[arg(long)]
        idempotency_key: String,
        /// Default: derived from the idempotency key (see README).
        #[arg(long, value_parser = parse_id_arg)]
        id: Option<u128>,
        /// Amount to post for each leg, in leg order; omit to post everything.
        #[arg(long = "amount", value_parser = parse_amount_arg)]
        amounts: Vec<Amount>,
        #[arg(long, default_value_t = 0)]
        code: u32,
    },
    /// Release a pending transfer.
    Void {
        #[arg(value_parser = parse_id_arg)]
        pending_id: u128,
        #[arg(long)]
        idempotency_key: String,
        #[arg(long, value_parser = parse_id_arg)]
        id: Option<u128>,
        #[arg(long, default_value_t = 0)]
        code: u32,
    },
    Get {
        #[arg(value_parser = parse_id_arg)]
        id: u128,
    },
    /// What an idempotency key is bound to (including a failure recorded for it).
    ByKey { idempotency_key: String },
}

#[derive(Debug, Args)]
pub struct TransferSubmitArgs {
    #[arg(long)]
    pub asset: String,
    /// DEBIT_ID:CREDIT_ID:AMOUNT; repeatable (1..=64 legs, applied all or none).
    #[arg(long = "leg", value_parser = parse_leg_arg, required = true)]
    pub legs: Vec<Leg>,
    /// Retrying with the same key and content replays the first result.
    #[arg(long)]
    pub idempotency_key: String,
    /// Default: derived from the idempotency key, so a re-run reuses it (see README).
    #[arg(long, value_parser = parse_id_arg)]
    pub id: Option<u128>,
    /// Hold the money in pending balances until posted, voided or expired.
    #[arg(long)]
    pub pending: bool,
    /// With --pending: expire the hold after this many milliseconds (0 = never).
    #[arg(long, default_value_t = 0)]
    pub timeout_ms: u64,
    /// Application transfer type.
    #[arg(long, default_value_t = 0)]
    pub code: u32,
    /// Refund this earlier posted transfer: the legs must reverse its accounts, and all its
    /// refunds together never exceed it.
    #[arg(long, value_parser = parse_id_arg)]
    pub refund_of: Option<u128>,
    /// The caller's reference (e.g. the order number): at most 64 bytes, not unique.
    #[arg(long, default_value = "")]
    pub reference: String,
    /// Metadata entry KEY=VALUE; repeatable (at most 16).
    #[arg(long = "meta", value_parser = parse_meta_arg)]
    pub metadata: Vec<(String, String)>,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Raft role, term, indexes of the answering node, and of every member (each one is asked).
    Status {
        /// Ask every --endpoint instead (no fan-out to members).
        #[arg(long)]
        all: bool,
    },
    /// Form a new cluster of the first --endpoint's node and every --peer, all voters. Once:
    /// refused when any of them already holds Raft state.
    Init {
        /// Another initial member, ID=PEER_URL; repeatable.
        #[arg(long = "peer", value_parser = parse_member_arg)]
        peers: Vec<(u64, String)>,
    },
    /// Add a node as a learner (it receives the log, but does not vote). The node must be
    /// running on an empty data dir with this id; ids are never reused.
    AddLearner {
        node_id: u64,
        /// Where peers reach it, e.g. http://127.0.0.1:7073.
        peer_address: String,
    },
    /// Make a learner a voter, once it has caught up with the leader.
    Promote {
        node_id: u64,
        /// How long to wait for it to catch up.
        #[arg(long, default_value_t = 300)]
        wait_secs: u64,
    },
    /// Remove a node (voter or learner) from the cluster for good.
    Remove { node_id: u64 },
    /// Build a snapshot on the first --endpoint's node now (every --endpoint with --all).
    Snapshot {
        /// Also delete the log entries the snapshot covers.
        #[arg(long)]
        purge: bool,
        #[arg(long)]
        all: bool,
    },
    /// Hash of the replicated state at the node's applied index.
    StateHash {
        /// Ask every --endpoint (compare replicas).
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Issue, read and revoke tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Upload offline records of a token (phone or terminal; any order, any number of times).
    Sync(WalletSyncArgs),
    /// The records of a token that were not posted, with the reason, oldest first.
    Exceptions {
        #[arg(value_parser = parse_id_arg)]
        token_id: u128,
        /// 1..=1000; 0 = 1000.
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
    /// Compare a device's balance and last sequence with the ledger (read-only).
    Reconcile {
        #[arg(value_parser = parse_id_arg)]
        token_id: u128,
        /// The wallet balance the device shows.
        #[arg(long, value_parser = parse_amount_arg)]
        balance: Amount,
        /// The last sequence the device used (0: none).
        #[arg(long, default_value_t = 0)]
        last_sequence: u64,
    },
    /// Compute a record's MAC offline (no server), as a wallet must: prints the record with its
    /// MAC, one JSON line with --output json (a line `wallet sync --file` reads).
    Mac(WalletMacArgs),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token and hold its offline limit. Prints the token's MAC key (hex): it is shown
    /// only here, hand it to the device. Re-running with the same id answers `exists` and the key.
    Issue(TokenIssueArgs),
    Get {
        #[arg(value_parser = parse_id_arg)]
        token_id: u128,
    },
    /// No new allowance; the hold is released once the records are in or at expiry + grace.
    Revoke {
        #[arg(value_parser = parse_id_arg)]
        token_id: u128,
        /// Why (kept on the token); at most 256 bytes.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub struct TokenIssueArgs {
    /// The token id, chosen by the caller; not zero.
    #[arg(long = "id", value_parser = parse_id_arg)]
    pub token_id: u128,
    /// The wallet account.
    #[arg(long, value_parser = parse_id_arg)]
    pub account: u128,
    /// The offline-clearing account that holds the allowance.
    #[arg(long, value_parser = parse_id_arg)]
    pub clearing: u128,
    #[arg(long)]
    pub device: String,
    /// Offline limit, e.g. 100.00.
    #[arg(long, value_parser = parse_amount_arg)]
    pub limit: Amount,
    /// Most offline records per window (1..=1000).
    #[arg(long)]
    pub count: u32,
    /// Validity; 0 = the node's default (one day).
    #[arg(long, default_value_t = 0)]
    pub validity_ms: u64,
}

#[derive(Debug, Args)]
pub struct WalletSyncArgs {
    #[arg(long = "token", value_parser = parse_id_arg)]
    pub token_id: u128,
    /// JSON Lines file of records ({"sequence":1,"amount":"30.00","merchant_account_id":"3",
    /// "device_time_ms":1001,"mac":"<64 hex>"}); `-` reads stdin.
    #[arg(long)]
    pub file: Option<std::path::PathBuf>,
    /// SEQ:AMOUNT:MERCHANT_ID:DEVICE_TIME_MS:MAC_HEX; repeatable, after the file's records.
    #[arg(long = "record", value_parser = parse_record_arg)]
    pub records: Vec<OfflineRecord>,
    /// Phone sync: its last sequence; the allowance is reset once every record up to it is
    /// posted. 0 (default): a terminal upload, no re-issue.
    #[arg(long, default_value_t = 0)]
    pub reissue_through: u64,
}

#[derive(Debug, Args)]
pub struct WalletMacArgs {
    /// The token key, 64 hex digits. Prefer the environment variable: it stays out of the
    /// shell history.
    #[arg(long, env = "LEDGER_TOKEN_KEY", hide_env_values = true)]
    pub key: String,
    #[arg(long = "token", value_parser = parse_id_arg)]
    pub token_id: u128,
    #[arg(long)]
    pub sequence: u64,
    #[arg(long, value_parser = parse_amount_arg)]
    pub amount: Amount,
    /// Decimal places of the token's asset (the MAC covers the amount in minor units).
    #[arg(long)]
    pub scale: u32,
    #[arg(long, value_parser = parse_id_arg)]
    pub merchant: u128,
    #[arg(long)]
    pub device_time_ms: u64,
}
