//! Who may call what: bearer-token authentication and one authorization table keyed by the full
//! gRPC method path, enforced by one tower layer in front of every client-facing service.
//!
//! - A path absent from [`AUTHORIZATION`] is refused (default deny): a new RPC is unreachable
//!   until someone decides who may call it (`every_served_method_has_an_entry` fails meanwhile).
//! - Tokens are never stored: the tokens file holds SHA-256 digests, and the node keeps them in a
//!   map in memory. A request costs one SHA-256 of the presented token, one map lookup and a
//!   constant-time compare of the digests; no file read. `TokenTable::reload` swaps the map
//!   (SIGHUP), so tokens rotate without a restart.
//! - With TLS and `tls_client_ca`, a client certificate authenticates too: a `[[certificate]]`
//!   entry of the same file maps a certificate name (subject CN, or a DNS, URI or e-mail SAN) to a
//!   principal and role. A bearer token, when sent, takes precedence over the certificate.
//! - A refused call gets `UNAUTHENTICATED` (no token, or a token the node does not know, or a
//!   certificate no entry maps) or
//!   `PERMISSION_DENIED` (a known principal whose role may not call the method); either way it is
//!   counted (metrics), logged once per kind (principal, role, method, reason; never the token)
//!   and journaled aggregated: one record per kind with its count, at most
//!   `DENIED_RECORDS_PER_MINUTE` records a minute (`journal_denied`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context, bail};
use futures::future::{Either, Ready, ready};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// A role a principal holds (issue 8). One role per token: a service that needs two gets two tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Creates transfers and reads transfers and balances.
    Payments,
    /// Offline wallet tokens: issue and sync (the `ledger.v1.Wallet` service).
    Wallet,
    /// Read-only queries and exports.
    Auditor,
    /// Assets, accounts, freezes, limits, cluster membership.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Payments => "payments",
            Role::Wallet => "wallet",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

/// Who may call one method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any caller, authenticated or not (health checks, reflection).
    Public,
    /// An authenticated principal holding one of these roles.
    Roles(&'static [Role]),
    /// Raft peers only. With authentication on, peers are served on their own port
    /// (`peer_listen`, required then), never through this layer, so here it always refuses.
    Peer,
}

use Role::{Admin, Auditor, Payments, Wallet};

const READERS: &[Role] = &[Payments, Auditor, Admin];
const ACCOUNT_READERS: &[Role] = &[Payments, Wallet, Auditor, Admin];
const ADMIN: &[Role] = &[Admin];
const OPERATORS: &[Role] = &[Auditor, Admin];
/// Wallet back ends issue and sync tokens; an admin may also revoke one (a lost phone).
const WALLET_WRITERS: &[Role] = &[Wallet, Admin];
const WALLET_READERS: &[Role] = &[Wallet, Auditor, Admin];

/// The authorization table: every served method path and who may call it. Sorted by path.
pub const AUTHORIZATION: &[(&str, Access)] = &[
    ("/grpc.health.v1.Health/Check", Access::Public),
    ("/grpc.health.v1.Health/Watch", Access::Public),
    ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", Access::Public),
    ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", Access::Public),
    ("/ledger.raft.v1.RaftPeer/AppendEntries", Access::Peer),
    ("/ledger.raft.v1.RaftPeer/InstallSnapshot", Access::Peer),
    ("/ledger.raft.v1.RaftPeer/NodeInfo", Access::Peer),
    ("/ledger.raft.v1.RaftPeer/ReadIndex", Access::Peer),
    ("/ledger.raft.v1.RaftPeer/TransferLeader", Access::Peer),
    ("/ledger.raft.v1.RaftPeer/Vote", Access::Peer),
    // Account changes (issue 22): settings and references are changed by admins, like
    // freezes; the history names people's numbers, so only operators read it.
    ("/ledger.v1.Accounts/ListAccountChanges", Access::Roles(OPERATORS)),
    ("/ledger.v1.Accounts/RebindExternalRefs", Access::Roles(ADMIN)),
    ("/ledger.v1.Accounts/UpdateAccounts", Access::Roles(ADMIN)),
    ("/ledger.v1.Audit/ExportJournal", Access::Roles(OPERATORS)),
    ("/ledger.v1.Audit/GetJournalHead", Access::Roles(OPERATORS)),
    ("/ledger.v1.Cluster/AddLearner", Access::Roles(ADMIN)),
    ("/ledger.v1.Cluster/Backup", Access::Roles(ADMIN)),
    ("/ledger.v1.Cluster/InitCluster", Access::Roles(ADMIN)),
    ("/ledger.v1.Cluster/PromoteVoter", Access::Roles(ADMIN)),
    ("/ledger.v1.Cluster/RemoveNode", Access::Roles(ADMIN)),
    ("/ledger.v1.Cluster/TriggerSnapshot", Access::Roles(ADMIN)),
    // Scoped: payments and wallet principals get only their own events (api/feed.rs `scope_of`).
    ("/ledger.v1.Feed/Subscribe", Access::Roles(ACCOUNT_READERS)),
    ("/ledger.v1.Ledger/ClusterStatus", Access::Roles(OPERATORS)),
    ("/ledger.v1.Ledger/CreateAccounts", Access::Roles(ADMIN)),
    ("/ledger.v1.Ledger/CreateAssets", Access::Roles(ADMIN)),
    ("/ledger.v1.Ledger/CreateTransfers", Access::Roles(&[Payments])),
    ("/ledger.v1.Ledger/GetAccountByExternalRef", Access::Roles(ACCOUNT_READERS)),
    // A balance at any past time, with the time of the entry that set it: stepping back entry by
    // entry rebuilds an account's history, which only ListAccountEntries' readers may see.
    ("/ledger.v1.Ledger/GetBalanceAt", Access::Roles(OPERATORS)),
    ("/ledger.v1.Ledger/GetStateHash", Access::Roles(OPERATORS)),
    ("/ledger.v1.Ledger/GetTransferByIdempotencyKey", Access::Roles(READERS)),
    // Entries and their stream show every transfer on an account, not only the caller's.
    ("/ledger.v1.Ledger/ListAccountEntries", Access::Roles(OPERATORS)),
    ("/ledger.v1.Ledger/LookupAccounts", Access::Roles(ACCOUNT_READERS)),
    ("/ledger.v1.Ledger/LookupAssets", Access::Roles(ACCOUNT_READERS)),
    ("/ledger.v1.Ledger/LookupTransfers", Access::Roles(READERS)),
    ("/ledger.v1.Ledger/SetAccountStatus", Access::Roles(ADMIN)),
    ("/ledger.v1.Ledger/WatchAccount", Access::Roles(OPERATORS)),
    // A history shows every transfer on the account (as ListAccountEntries).
    ("/ledger.v1.Query/GetAccountHistory", Access::Roles(OPERATORS)),
    ("/ledger.v1.Risk/GetLimits", Access::Roles(ACCOUNT_READERS)),
    ("/ledger.v1.Risk/ListRiskRules", Access::Roles(ACCOUNT_READERS)),
    ("/ledger.v1.Risk/SetBlocklist", Access::Roles(ADMIN)),
    ("/ledger.v1.Risk/SetLimits", Access::Roles(ADMIN)),
    ("/ledger.v1.Risk/SetRiskRules", Access::Roles(ADMIN)),
    ("/ledger.v1.Wallet/GetToken", Access::Roles(WALLET_READERS)),
    ("/ledger.v1.Wallet/IssueToken", Access::Roles(&[Wallet])),
    ("/ledger.v1.Wallet/ListExceptions", Access::Roles(WALLET_READERS)),
    ("/ledger.v1.Wallet/Reconcile", Access::Roles(WALLET_READERS)),
    ("/ledger.v1.Wallet/RevokeToken", Access::Roles(WALLET_WRITERS)),
    ("/ledger.v1.Wallet/SyncOfflineRecords", Access::Roles(&[Wallet])),
    ("/ledger.v1.Wallet/WatchWallet", Access::Roles(WALLET_READERS)),
];

/// Who may call `path`; `None` (refused) for a path not in the table.
pub fn access(path: &str) -> Option<Access> {
    AUTHORIZATION.binary_search_by(|(p, _)| (*p).cmp(path)).ok().map(|i| AUTHORIZATION[i].1)
}

/// `path` as the table spells it (a `'static` label for metrics), if it has a row.
pub fn known_path(path: &str) -> Option<&'static str> {
    AUTHORIZATION.binary_search_by(|(p, _)| (*p).cmp(path)).ok().map(|i| AUTHORIZATION[i].0)
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

/// Longest bearer token accepted (longer ones are refused before hashing).
pub const TOKEN_BYTES_MAX: usize = 512;
/// Entries in a tokens file at most.
pub const TOKENS_MAX: usize = 10_000;

/// Longest certificate name an entry may map.
pub const CERT_NAME_BYTES_MAX: usize = 255;

/// The tokens file (TOML): one `[[token]]` per principal and token, one `[[certificate]]` per
/// principal and client certificate name.
///
/// ```toml
/// [[token]]
/// principal = "checkout-service"
/// role = "payments"
/// sha256 = "<hex SHA-256 of the token; `ledger-node hash-token` prints it>"
///
/// [[certificate]]
/// principal = "reconciliation"
/// role = "auditor"
/// subject = "recon.payments.internal"   # the certificate's subject CN, or a DNS, URI or e-mail SAN
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
    #[serde(default)]
    certificate: Vec<CertificateEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateEntry {
    principal: String,
    role: Role,
    subject: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    principal: String,
    role: Role,
    sha256: String,
}

pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex_digest(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Equal-time comparison: the time taken does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

type TokenMap = HashMap<[u8; 32], Principal>;

/// Everything one read of the tokens file gives: principals by token digest and by client
/// certificate name.
#[derive(Default)]
struct Credentials {
    tokens: TokenMap,
    certificates: HashMap<String, Principal>,
}

/// The principals this node knows, by token digest and by certificate name; reloadable while
/// serving.
pub struct TokenTable {
    path: PathBuf,
    tokens: RwLock<Arc<Credentials>>,
}

impl TokenTable {
    /// Reads the tokens file; refuses a file others may read or write (it names who may move
    /// money), a malformed entry, or a digest given twice.
    pub fn load(path: &Path) -> anyhow::Result<TokenTable> {
        let tokens = read_tokens(path)?;
        Ok(TokenTable { path: path.to_path_buf(), tokens: RwLock::new(Arc::new(tokens)) })
    }

    /// A table from `(principal, role, token)` triples; for tests and embedding.
    pub fn from_tokens(entries: &[(&str, Role, &str)]) -> TokenTable {
        let tokens = entries
            .iter()
            .map(|(name, role, token)| (token_digest(token), Principal { name: name.to_string(), role: *role }))
            .collect();
        let credentials = Credentials { tokens, certificates: HashMap::new() };
        TokenTable { path: PathBuf::new(), tokens: RwLock::new(Arc::new(credentials)) }
    }

    /// Adds `(certificate name, principal, role)` mappings; for tests and embedding.
    pub fn with_certificates(self, entries: &[(&str, &str, Role)]) -> TokenTable {
        let mut credentials = Credentials::default();
        credentials.tokens = self.tokens.read().unwrap_or_else(|p| p.into_inner()).tokens.clone();
        for (subject, name, role) in entries {
            credentials.certificates.insert(subject.to_string(), Principal { name: name.to_string(), role: *role });
        }
        TokenTable { path: self.path, tokens: RwLock::new(Arc::new(credentials)) }
    }

    /// Re-reads the file; on error the current tokens and certificate mappings stay in force.
    /// Returns the number of entries (tokens and certificates).
    pub fn reload(&self) -> anyhow::Result<usize> {
        let credentials = read_tokens(&self.path)?;
        let count = credentials.tokens.len() + credentials.certificates.len();
        *self.tokens.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(credentials);
        Ok(count)
    }

    /// The principal a client certificate's names map to: the first of `names` (subject CN
    /// first, then the SANs in certificate order) that has a `[[certificate]]` entry.
    pub fn authenticate_certificate(&self, names: &[String]) -> Option<Principal> {
        let credentials = self.tokens.read().unwrap_or_else(|p| p.into_inner()).clone();
        names.iter().find_map(|name| credentials.certificates.get(name).cloned())
    }

    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        if token.is_empty() || token.len() > TOKEN_BYTES_MAX {
            return None;
        }
        let digest = token_digest(token);
        let tokens = self.tokens.read().unwrap_or_else(|p| p.into_inner()).clone();
        // The map finds the entry by digest; the compare of the stored digest is constant-time.
        let (stored, principal) = tokens.tokens.get_key_value(&digest)?;
        constant_time_eq(stored, &digest).then(|| principal.clone())
    }
}

fn read_tokens(path: &Path) -> anyhow::Result<Credentials> {
    check_private(path)?;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading tokens file {}", path.display()))?;
    let file: TokensFile = toml::from_str(&text).with_context(|| format!("parsing tokens file {}", path.display()))?;
    let entries = file.token.len() + file.certificate.len();
    if entries > TOKENS_MAX {
        bail!("tokens file {}: {entries} entries, at most {TOKENS_MAX}", path.display());
    }
    let mut certificates = HashMap::new();
    for (i, entry) in file.certificate.iter().enumerate() {
        if entry.principal.is_empty() || entry.principal.len() > 128 {
            bail!("tokens file {}: certificate entry {}: principal must be 1..=128 bytes", path.display(), i + 1);
        }
        if entry.subject.is_empty() || entry.subject.len() > CERT_NAME_BYTES_MAX {
            bail!(
                "tokens file {}: certificate entry {} ({}): subject must be 1..={CERT_NAME_BYTES_MAX} bytes",
                path.display(),
                i + 1,
                entry.principal
            );
        }
        let principal = Principal { name: entry.principal.clone(), role: entry.role };
        if certificates.insert(entry.subject.clone(), principal).is_some() {
            bail!(
                "tokens file {}: certificate entry {} ({}): subject {:?} mapped twice",
                path.display(),
                i + 1,
                entry.principal,
                entry.subject
            );
        }
    }
    let mut tokens = TokenMap::new();
    for (i, entry) in file.token.iter().enumerate() {
        if entry.principal.is_empty() || entry.principal.len() > 128 {
            bail!("tokens file {}: entry {}: principal must be 1..=128 bytes", path.display(), i + 1);
        }
        let Some(digest) = parse_hex_digest(&entry.sha256) else {
            bail!(
                "tokens file {}: entry {} ({}): sha256 must be 64 hex digits (`ledger-node hash-token` prints it)",
                path.display(),
                i + 1,
                entry.principal
            );
        };
        let principal = Principal { name: entry.principal.clone(), role: entry.role };
        if tokens.insert(digest, principal).is_some() {
            bail!("tokens file {}: entry {} ({}): the same token twice", path.display(), i + 1, entry.principal);
        }
    }
    Ok(Credentials { tokens, certificates })
}

/// Refuses a secret file that its group or others may read or write.
pub fn check_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.permissions().mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} has mode {:o}: a secret file must be readable by its owner only (chmod 600)",
            path.display(),
            mode & 0o777
        );
    }
    Ok(())
}

/// One kind of refused call, as the audit journal will record it, with how many times it
/// happened since the last record of that kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDenied {
    /// `None`: no token, or an unknown one.
    pub principal: Option<Principal>,
    /// The method path as the authorization table spells it, or `UNKNOWN_METHOD`.
    pub method: &'static str,
    pub reason: &'static str,
    /// Refusals of this kind it stands for (at least 1).
    pub count: u64,
}

/// What a refusal of a path that is not in the table is recorded as: made-up paths are the
/// caller's choice, and must not make the journal's or the log's content unbounded.
pub const UNKNOWN_METHOD: &str = "(not in the authorization table)";

/// The kind of a refusal: refusals of one kind between two records become one record.
type DenialKey = (String, Option<Role>, &'static str, &'static str);

/// Kinds of refusals held between records at most; a refusal of a new kind beyond it is counted
/// under `OVERFLOW_KEY` (and in `dropped_total`).
pub const DENIED_KINDS_MAX: usize = 256;
/// Refusal records journaled per minute at most (a token bucket: this many at once, then one
/// every `60 / DENIED_RECORDS_PER_MINUTE` seconds). Whatever the call rate, the journal grows by
/// at most this many lines a minute for refusals; each names its count.
pub const DENIED_RECORDS_PER_MINUTE: u32 = 60;
const OVERFLOW_KEY: DenialKey = (String::new(), None, "(other)", "more kinds of refusal than the node holds apart");

/// Counts and aggregates refusals. Lock-free counters; the aggregate is bounded by kind.
pub struct Denials {
    pub unauthenticated_total: AtomicU64,
    pub permission_denied_total: AtomicU64,
    /// Refusals of a new kind that found `DENIED_KINDS_MAX` kinds held (recorded as "(other)").
    pub dropped_total: AtomicU64,
    pending: Mutex<PendingDenials>,
}

struct PendingDenials {
    counts: std::collections::BTreeMap<DenialKey, u64>,
    /// Records that may be journaled now (refilled with time, at most `DENIED_RECORDS_PER_MINUTE`).
    budget: f64,
    refilled_at: std::time::Instant,
}

impl Default for Denials {
    fn default() -> Denials {
        Denials {
            unauthenticated_total: AtomicU64::new(0),
            permission_denied_total: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
            pending: Mutex::new(PendingDenials {
                counts: Default::default(),
                budget: f64::from(DENIED_RECORDS_PER_MINUTE),
                refilled_at: std::time::Instant::now(),
            }),
        }
    }
}

impl Denials {
    /// Counts one refusal under its kind. True when the kind is new since its last record: the
    /// caller logs it (one log line per kind and record, not one per call).
    fn push(&self, principal: Option<&Principal>, method: &'static str, reason: &'static str) -> bool {
        let key: DenialKey = (principal.map(|p| p.name.clone()).unwrap_or_default(), principal.map(|p| p.role), method, reason);
        self.add(key, 1)
    }

    fn add(&self, key: DenialKey, count: u64) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(held) = pending.counts.get_mut(&key) {
            *held = held.saturating_add(count);
            return false;
        }
        let key = if pending.counts.len() >= DENIED_KINDS_MAX && key != OVERFLOW_KEY {
            self.dropped_total.fetch_add(count, Ordering::Relaxed);
            OVERFLOW_KEY
        } else {
            key
        };
        let held = pending.counts.entry(key).or_insert(0);
        *held = held.saturating_add(count);
        *held == count
    }

    /// Takes the refusals the record budget allows now (`DENIED_RECORDS_PER_MINUTE`), one
    /// record per kind.
    pub fn take(&self, now: std::time::Instant) -> Vec<AccessDenied> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let per_second = f64::from(DENIED_RECORDS_PER_MINUTE) / 60.0;
        let elapsed = now.saturating_duration_since(pending.refilled_at).as_secs_f64();
        pending.budget = (pending.budget + elapsed * per_second).min(f64::from(DENIED_RECORDS_PER_MINUTE));
        pending.refilled_at = now;
        let n = (pending.budget.floor() as usize).min(pending.counts.len());
        pending.budget -= n as f64;
        (0..n).filter_map(|_| pending.counts.pop_first()).map(record).collect()
    }

    /// Takes every held refusal, whatever the budget (tests).
    pub fn drain(&self) -> Vec<AccessDenied> {
        std::mem::take(&mut self.pending.lock().unwrap_or_else(|p| p.into_inner()).counts).into_iter().map(record).collect()
    }

    /// Puts back refusals that could not be journaled (no leader); they merge with newer ones.
    fn put_back(&self, denied: Vec<AccessDenied>) {
        for d in denied {
            let key = (d.principal.as_ref().map(|p| p.name.clone()).unwrap_or_default(), d.principal.map(|p| p.role), d.method, d.reason);
            self.add(key, d.count);
        }
    }
}

fn record(((name, role, method, reason), count): (DenialKey, u64)) -> AccessDenied {
    AccessDenied { principal: role.map(|role| Principal { name, role }), method, reason, count }
}

/// The reason as journaled: with the count when the record stands for more than one refusal.
fn journaled_reason(d: &AccessDenied) -> String {
    match d.count {
        1 => d.reason.to_string(),
        n => format!("{} ({n} refused calls)", d.reason),
    }
}

/// Journals held refusals: proposes what the record budget allows (one record per kind of
/// refusal, with its count, at most `BATCH_ITEMS_MAX` per command) as
/// `Operation::RecordAccessDenied`. Only a leader can propose; a follower keeps its refusals
/// (bounded by kind) and journals them if it becomes leader. Every refusal is counted in the
/// metrics whether or not it is journaled.
pub async fn journal_denied(denials: &Denials, node: &crate::service::Node) {
    use ledger_core::limits::BATCH_ITEMS_MAX;
    use ledger_core::types::{AccessDeniedInput, Operation};
    let mut queued = denials.take(std::time::Instant::now());
    while !queued.is_empty() {
        let rest = queued.split_off(queued.len().min(BATCH_ITEMS_MAX));
        let inputs: Vec<AccessDeniedInput> = queued
            .iter()
            .map(|d| AccessDeniedInput {
                principal: d.principal.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
                role: d.principal.as_ref().map(|p| p.role.name().to_string()).unwrap_or_default(),
                method: d.method.to_string(),
                reason: journaled_reason(d),
            })
            .collect();
        if let Err(error) = node.propose(Operation::RecordAccessDenied(inputs)).await {
            tracing::debug!(%error, kinds = queued.len() + rest.len(), "refusals not journaled yet");
            denials.put_back(queued.into_iter().chain(rest).collect());
            return;
        }
        queued = rest;
    }
}

/// Authentication state shared by the layer and the node.
pub struct Auth {
    /// `None`: authentication is off (dev mode, `--insecure-plaintext`): every call passes.
    pub tokens: Option<Arc<TokenTable>>,
    pub denials: Denials,
}

impl Auth {
    pub fn disabled() -> Arc<Auth> {
        Arc::new(Auth { tokens: None, denials: Denials::default() })
    }

    pub fn with_tokens(tokens: TokenTable) -> Arc<Auth> {
        Arc::new(Auth { tokens: Some(Arc::new(tokens)), denials: Denials::default() })
    }

    /// The decision for one call: `Ok` to serve it (with who called, when a token was needed
    /// and given), or the status to answer with.
    pub fn check(&self, path: &str, authorization: Option<&[u8]>) -> Result<Option<Principal>, tonic::Status> {
        self.check_call(path, authorization, None)
    }

    /// `check`, with the names of the client certificate the connection presented (if any): a
    /// call without a bearer token authenticates by its certificate.
    pub fn check_call(
        &self,
        path: &str,
        authorization: Option<&[u8]>,
        certificate_names: Option<&[String]>,
    ) -> Result<Option<Principal>, tonic::Status> {
        let Some(tokens) = &self.tokens else {
            return Ok(None);
        };
        let refuse = |principal: Option<Principal>, reason: &'static str| {
            let unauthenticated = principal.is_none();
            let method = known_path(path).unwrap_or(UNKNOWN_METHOD);
            // Logged once per kind of refusal between two journal records: a flood of one kind
            // is one line (its count is in the journal and the metrics).
            if self.denials.push(principal.as_ref(), method, reason) {
                tracing::warn!(
                    method,
                    principal = principal.as_ref().map(|p| p.name.as_str()).unwrap_or("-"),
                    role = principal.as_ref().map(|p| p.role.name()).unwrap_or("-"),
                    reason,
                    "access denied"
                );
            }
            let counter = if unauthenticated {
                &self.denials.unauthenticated_total
            } else {
                &self.denials.permission_denied_total
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if unauthenticated {
                tonic::Status::unauthenticated(reason)
            } else {
                tonic::Status::permission_denied(format!("{reason}: {path}"))
            }
        };
        let access = access(path);
        if access == Some(Access::Public) {
            return Ok(None);
        }
        let token = authorization
            .and_then(|value| std::str::from_utf8(value).ok())
            .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
            .map(str::trim);
        let principal = match (token, certificate_names) {
            (Some(token), _) => tokens.authenticate(token).ok_or_else(|| refuse(None, "unknown token"))?,
            (None, Some(names)) => tokens
                .authenticate_certificate(names)
                .ok_or_else(|| refuse(None, "client certificate not mapped to a principal"))?,
            (None, None) => return Err(refuse(None, "no bearer token (authorization: Bearer <token>)")),
        };
        match access {
            Some(Access::Roles(roles)) if roles.contains(&principal.role) => Ok(Some(principal)),
            Some(Access::Roles(_)) => Err(refuse(Some(principal), "role may not call this method")),
            Some(Access::Peer) => Err(refuse(Some(principal), "peer method on the client port")),
            Some(Access::Public) => Ok(None),
            None => Err(refuse(Some(principal), "method not in the authorization table")),
        }
    }
}

/// Who made a call, for the audit journal: `name (role)`, or empty when authentication is off.
pub fn actor<T>(request: &tonic::Request<T>) -> String {
    request.extensions().get::<Principal>().map(|p| format!("{} ({})", p.name, p.role.name())).unwrap_or_default()
}

/// The owner recorded on the transfers `request` creates: the principal's name, or empty when
/// authentication is off.
pub fn owner<T>(request: &tonic::Request<T>) -> String {
    request.extensions().get::<Principal>().map(|p| p.name.clone()).unwrap_or_default()
}

/// Whose transfers the caller of `request` may read. A `payments` principal reads only what it
/// created (issue 8), so its scope is its own name; every other role, and every caller when
/// authentication is off, reads all (`None`). A transfer out of scope reads as absent: its
/// existence is not revealed.
pub fn transfer_scope<T>(request: &tonic::Request<T>) -> TransferScope {
    match request.extensions().get::<Principal>() {
        Some(p) if p.role == Role::Payments => TransferScope(Some(p.name.clone())),
        _ => TransferScope(None),
    }
}

/// See [`transfer_scope`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferScope(Option<String>);

impl TransferScope {
    pub fn admits(&self, owner: &str) -> bool {
        self.0.as_deref().is_none_or(|name| name == owner)
    }
}

/// The tower layer that runs [`Auth::check`] before every call.
#[derive(Clone)]
pub struct AuthLayer {
    pub auth: Arc<Auth>,
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService { inner, auth: self.auth.clone() }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<Auth>,
}

impl<S, B, RB> tower_service::Service<http::Request<B>> for AuthService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<RB>>,
    RB: Default,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = Either<Ready<Result<http::Response<RB>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let authorization = request.headers().get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
        // Parsed only when needed: a call with a token never looks at the certificate.
        let certificate_names = match authorization {
            Some(_) => None,
            None => request
                .extensions()
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.peer_certs())
                .and_then(|certs| certs.first().map(|der| crate::tls::names_in(der))),
        };
        match self.auth.check_call(request.uri().path(), authorization, certificate_names.as_deref()) {
            Ok(principal) => {
                // Handlers read who called (e.g. the actor of a freeze) from the extensions.
                if let Some(principal) = principal {
                    request.extensions_mut().insert(principal);
                }
                Either::Right(self.inner.call(request))
            }
            Err(status) => Either::Left(ready(Ok(status.into_http()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_has_no_duplicate() {
        for pair in AUTHORIZATION.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
    }

    /// A new RPC in any .proto file fails this test until it has a row in `AUTHORIZATION`.
    #[test]
    fn every_served_method_has_an_entry() {
        assert!(ledger_proto::METHOD_PATHS.len() >= 36, "the method list comes from the descriptor set");
        let missing: Vec<&str> = ledger_proto::METHOD_PATHS.iter().copied().filter(|p| access(p).is_none()).collect();
        assert!(missing.is_empty(), "methods with no authorization entry: {missing:?}");
        // Health and reflection come from their crates, not our .proto files: public, and only they.
        for path in crate::api::health::method_paths() {
            assert_eq!(access(&path), Some(Access::Public), "{path}");
        }
    }

    #[test]
    fn unknown_paths_are_refused() {
        let auth = Auth::with_tokens(TokenTable::from_tokens(&[("root", Admin, "admin-token")]));
        let err = auth.check("/ledger.v1.Ledger/DropEverything", Some(b"Bearer admin-token")).unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        let err = auth.check("/ledger.raft.v1.RaftPeer/Vote", Some(b"Bearer admin-token")).unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "peer methods are not served on the client port");
    }

    #[test]
    fn each_role_reaches_exactly_its_rows() {
        let tokens: Vec<(String, Role, String)> = [Payments, Wallet, Auditor, Admin]
            .iter()
            .map(|r| (r.name().to_string(), *r, format!("tok-{}", r.name())))
            .collect();
        let refs: Vec<(&str, Role, &str)> = tokens.iter().map(|(n, r, t)| (n.as_str(), *r, t.as_str())).collect();
        let auth = Auth::with_tokens(TokenTable::from_tokens(&refs));
        for path in ledger_proto::METHOD_PATHS {
            for (_, role, token) in &tokens {
                let header = format!("Bearer {token}");
                let allowed = match access(path).unwrap() {
                    Access::Public => true,
                    Access::Roles(roles) => roles.contains(role),
                    Access::Peer => false,
                };
                let got = auth.check(path, Some(header.as_bytes()));
                assert_eq!(got.is_ok(), allowed, "{path} as {role:?}: {got:?}");
                if let Err(status) = got {
                    assert_eq!(status.code(), tonic::Code::PermissionDenied);
                }
            }
            let none = auth.check(path, None).unwrap_err();
            assert_eq!(none.code(), tonic::Code::Unauthenticated, "{path} with no token");
            let wrong = auth.check(path, Some(b"Bearer not-a-token")).unwrap_err();
            assert_eq!(wrong.code(), tonic::Code::Unauthenticated, "{path} with a wrong token");
        }
        let queued = auth.denials.drain();
        assert!(
            queued.iter().any(|d| d.principal.as_ref().map(|p| p.role) == Some(Wallet)
                && d.method == "/ledger.v1.Ledger/CreateTransfers")
        );
        assert!(auth.denials.drain().is_empty(), "drained");
        assert!(
            auth.denials.unauthenticated_total.load(Ordering::Relaxed) >= 2 * ledger_proto::METHOD_PATHS.len() as u64
        );
    }

    #[test]
    fn public_methods_need_no_token_and_auth_off_lets_everything_through() {
        let auth = Auth::with_tokens(TokenTable::from_tokens(&[]));
        auth.check("/grpc.health.v1.Health/Check", None).unwrap();
        let off = Auth::disabled();
        off.check("/ledger.v1.Ledger/CreateTransfers", None).unwrap();
    }

    /// Issue 18 item 6: refusals are aggregated by kind and journaled at a bounded rate, however
    /// many calls are refused and whatever paths they make up.
    #[test]
    fn refusals_are_aggregated_by_kind_and_journaled_at_a_bounded_rate() {
        let auth = Auth::with_tokens(TokenTable::from_tokens(&[("shop", Payments, "tok")]));
        for i in 0..100_000 {
            let _ = auth.check("/ledger.v1.Ledger/CreateTransfers", None);
            let _ = auth.check(&format!("/made.up.Service/Method{i}"), None);
        }
        let _ = auth.check("/ledger.v1.Ledger/CreateAssets", Some(b"Bearer tok"));
        assert_eq!(auth.denials.unauthenticated_total.load(Ordering::Relaxed), 200_000, "every refusal is counted");
        let t0 = std::time::Instant::now();
        let first = auth.denials.take(t0);
        assert_eq!(first.len(), 3, "three kinds: {first:?}");
        let anonymous = first.iter().find(|d| d.method == "/ledger.v1.Ledger/CreateTransfers").unwrap();
        assert_eq!((anonymous.principal.clone(), anonymous.count), (None, 100_000));
        assert!(journaled_reason(anonymous).contains("(100000 refused calls)"));
        let made_up = first.iter().find(|d| d.method == UNKNOWN_METHOD).unwrap();
        assert_eq!(made_up.count, 100_000, "made-up paths are one kind");
        let shop = first.iter().find(|d| d.principal.is_some()).unwrap();
        assert_eq!((shop.method, shop.count), ("/ledger.v1.Ledger/CreateAssets", 1));

        // More kinds than the node holds apart: the rest is one "(other)" kind.
        let many: Vec<(String, Role, String)> = (0..2 * DENIED_KINDS_MAX).map(|i| (format!("p{i}"), Payments, format!("t{i}"))).collect();
        let refs: Vec<(&str, Role, &str)> = many.iter().map(|(n, r, t)| (n.as_str(), *r, t.as_str())).collect();
        let auth = Auth::with_tokens(TokenTable::from_tokens(&refs));
        for (_, _, token) in &refs {
            let _ = auth.check("/ledger.v1.Ledger/CreateAssets", Some(format!("Bearer {token}").as_bytes()));
        }
        assert_eq!(auth.denials.dropped_total.load(Ordering::Relaxed), DENIED_KINDS_MAX as u64);
        // The budget: a burst of DENIED_RECORDS_PER_MINUTE records, then one a second.
        let burst = auth.denials.take(t0);
        assert_eq!(burst.len(), DENIED_RECORDS_PER_MINUTE as usize);
        assert!(auth.denials.take(t0).is_empty(), "no budget left at the same instant");
        let later = auth.denials.take(t0 + std::time::Duration::from_secs(10));
        assert_eq!(later.len(), 10, "one record a second after the burst");
        let rest = auth.denials.drain();
        assert_eq!(rest.len(), DENIED_KINDS_MAX + 1 - DENIED_RECORDS_PER_MINUTE as usize - 10);
        let all: Vec<AccessDenied> = burst.into_iter().chain(later).chain(rest).collect();
        assert_eq!(all.iter().map(|d| d.count).sum::<u64>(), 2 * DENIED_KINDS_MAX as u64, "nothing lost");
        let other = all.iter().find(|d| d.method == "(other)").unwrap();
        assert_eq!(other.count, DENIED_KINDS_MAX as u64);
        // Put back (no leader), refusals merge with newer ones of their kind.
        auth.denials.put_back(vec![other.clone()]);
        let _ = auth.check("/ledger.v1.Ledger/CreateAssets", Some(b"Bearer t0"));
        let merged = auth.denials.drain();
        assert_eq!(merged.len(), 2);
    }

    #[test]
    fn tokens_file_is_read_hashed_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let write = |token: &str| {
            let text = format!(
                "[[token]]\nprincipal = \"checkout\"\nrole = \"payments\"\nsha256 = \"{}\"\n",
                hex(&token_digest(token))
            );
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        };
        write("first");
        let table = TokenTable::load(&path).unwrap();
        assert_eq!(table.authenticate("first").unwrap(), Principal { name: "checkout".into(), role: Payments });
        assert!(table.authenticate("second").is_none());
        write("second");
        assert_eq!(table.reload().unwrap(), 1);
        assert!(table.authenticate("first").is_none(), "the old token is gone after a reload");
        assert!(table.authenticate("second").is_some());

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = TokenTable::load(&path).err().unwrap().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(table.reload().is_err(), "a bad reload keeps the tokens in force");
        assert!(table.authenticate("second").is_some());
        std::fs::write(&path, "[[token]]\nprincipal = \"x\"\nrole = \"root\"\nsha256 = \"00\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(format!("{:#}", TokenTable::load(&path).err().unwrap()).contains("root"));
    }

    #[test]
    fn a_mapped_client_certificate_authenticates_and_a_token_wins_over_it() {
        let table = TokenTable::from_tokens(&[("root", Admin, "admin-token")])
            .with_certificates(&[("recon.internal", "reconciliation", Auditor)]);
        let auth = Auth::with_tokens(table);
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mapped = names(&["Recon CN", "recon.internal"]);
        let got = auth.check_call("/ledger.v1.Audit/GetJournalHead", None, Some(&mapped)).unwrap();
        assert_eq!(got, Some(Principal { name: "reconciliation".into(), role: Auditor }), "a SAN maps");
        let err = auth.check_call("/ledger.v1.Ledger/CreateAssets", None, Some(&mapped)).unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "the certificate's role rules");
        let err = auth.check_call("/ledger.v1.Audit/GetJournalHead", None, Some(&names(&["stranger"]))).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(err.message().contains("not mapped"), "{}", err.message());
        let got = auth.check_call("/ledger.v1.Ledger/CreateAssets", Some(b"Bearer admin-token"), Some(&mapped)).unwrap();
        assert_eq!(got.unwrap().role, Admin, "a token, when sent, is who calls");
        let err = auth.check_call("/ledger.v1.Audit/GetJournalHead", Some(b"Bearer wrong"), Some(&mapped)).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "a bad token is not rescued by the certificate");
    }

    #[test]
    fn certificate_entries_are_read_checked_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let write = |text: &str| {
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        };
        write("[[certificate]]\nprincipal = \"recon\"\nrole = \"auditor\"\nsubject = \"recon.internal\"\n");
        let table = TokenTable::load(&path).unwrap();
        let names = vec!["recon.internal".to_string()];
        assert_eq!(table.authenticate_certificate(&names).unwrap().role, Auditor);
        write("[[certificate]]\nprincipal = \"recon\"\nrole = \"admin\"\nsubject = \"recon2\"\n");
        assert_eq!(table.reload().unwrap(), 1);
        assert!(table.authenticate_certificate(&names).is_none(), "gone after the reload");
        write("[[certificate]]\nprincipal = \"a\"\nrole = \"admin\"\nsubject = \"x\"\n[[certificate]]\nprincipal = \"b\"\nrole = \"admin\"\nsubject = \"x\"\n");
        assert!(format!("{:#}", TokenTable::load(&path).err().unwrap()).contains("mapped twice"));
        write("[[certificate]]\nprincipal = \"a\"\nrole = \"admin\"\nsubject = \"\"\n");
        assert!(format!("{:#}", TokenTable::load(&path).err().unwrap()).contains("subject must be"));
    }
}
