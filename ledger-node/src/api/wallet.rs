//! `ledger.v1.Wallet`: offline HCE wallet tokens and the sync of offline records.
//!
//! This layer holds the master key and verifies each record's MAC before proposing; the
//! proposed command carries only the verdict (see `ledger::wallet`). It reads the token after a
//! linearizable read barrier, so a token issued through another node is always seen.

use ledger_proto::api as pb;
use ledger_proto::api::wallet_server::Wallet;
use tonic::{Request, Response, Status};

use super::convert;
use super::status::{storage, to_status};
use ledger_core::amount::{DecimalInput, format_minor};
use ledger_core::limits::WALLET_EXCEPTIONS_PAGE_MAX;
use ledger_core::result::{ItemResult, ResultCode};
use ledger_core::types::Operation;
use ledger_core::wallet::{self, mac, token};
use crate::service::{Consistency, Node, Snapshot};

/// The documented development master key. Used only by `ledger-node dev` (or with
/// `LEDGER_WALLET_DEV_KEY=1`) when no key file is configured; never in production.
pub const DEV_MASTER_KEY: &[u8] = b"ledger-dev-master-key";

/// Bytes in a wallet master key at least.
pub const MASTER_KEY_BYTES_MIN: usize = 32;
/// Bytes in a wallet master key file at most (a key, not a document).
pub const MASTER_KEY_BYTES_MAX: usize = 4_096;

/// The wallet master key. Its `Debug` never shows the bytes, so no log or error message can
/// carry it; nothing else reads it but MAC derivation.
#[derive(Clone)]
pub struct MasterKey(Vec<u8>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(<{} bytes redacted>)", self.0.len())
    }
}

impl MasterKey {
    /// Reads a key file: refused (so the node does not start) if its group or others may read
    /// or write it, if it cannot be read, or if it holds fewer than 32 or more than 4,096 bytes.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<MasterKey> {
        use anyhow::Context;
        super::auth::check_private(path).context("wallet master key file (LEDGER_WALLET_MASTER_KEY_FILE)")?;
        let key = std::fs::read(path).with_context(|| format!("reading the wallet master key file {}", path.display()))?;
        if !(MASTER_KEY_BYTES_MIN..=MASTER_KEY_BYTES_MAX).contains(&key.len()) {
            anyhow::bail!(
                "wallet master key file {} holds {} bytes; a key has {MASTER_KEY_BYTES_MIN}..={MASTER_KEY_BYTES_MAX}",
                path.display(),
                key.len()
            );
        }
        Ok(MasterKey(key))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

pub struct WalletService {
    pub node: Node,
    /// WatchWallet streams open now.
    watchers: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// None: wallet writes are refused (FAILED_PRECONDITION) until a master key is configured.
    master_key: Option<MasterKey>,
}

impl WalletService {
    /// The master key comes from `LEDGER_WALLET_MASTER_KEY_FILE` (raw bytes, 32..=4,096, mode
    /// 600), or the dev key in dev mode. A key file that is set but unusable stops the start-up
    /// (`MasterKey::from_file`): a wallet service silently without its key would refuse every
    /// write. The key is never logged.
    pub fn from_env(node: Node, dev_mode: bool) -> anyhow::Result<WalletService> {
        let master_key = match std::env::var_os("LEDGER_WALLET_MASTER_KEY_FILE") {
            Some(path) => Some(MasterKey::from_file(std::path::Path::new(&path))?),
            None if dev_mode || std::env::var("LEDGER_WALLET_DEV_KEY").as_deref() == Ok("1") => {
                tracing::warn!("wallet: using the documented DEV master key (LEDGER_WALLET_DEV_KEY=1); not for production");
                Some(MasterKey(DEV_MASTER_KEY.to_vec()))
            }
            None => None,
        };
        Ok(WalletService { node, master_key, watchers: Default::default() })
    }

    fn key(&self) -> Result<&[u8], Status> {
        self.master_key.as_ref().map(MasterKey::bytes).ok_or_else(|| {
            Status::failed_precondition("no wallet master key configured (LEDGER_WALLET_MASTER_KEY_FILE)")
        })
    }

    /// A view after the barrier `consistency` asks for.
    async fn read(&self, consistency: Consistency) -> Result<Snapshot, Status> {
        self.node.read(consistency).await.map_err(to_status)
    }
}

/// A token and its asset's scale, from one view.
fn read_token(snapshot: &Snapshot, token_id: u128) -> Result<Option<(wallet::Token, u8)>, Status> {
    let Some(t) = snapshot.wallet_token(token_id).map_err(storage)? else { return Ok(None) };
    let scale = snapshot
        .asset(&t.asset)
        .map_err(storage)?
        .ok_or_else(|| Status::data_loss("token names a missing asset"))?
        .scale;
    Ok(Some((t, scale)))
}

/// A required id: 16 bytes, not zero.
pub(crate) fn id(bytes: &[u8], what: &str) -> Result<u128, Status> {
    match convert::id(bytes) {
        Ok(0) | Err(_) => Err(Status::invalid_argument(format!("{what} must be 16 bytes and not zero"))),
        Ok(id) => Ok(id),
    }
}

fn amount(text: &str) -> Result<DecimalInput, Status> {
    DecimalInput::parse(text).map_err(|code| Status::invalid_argument(format!("amount {text:?}: {code:?}")))
}

pub(super) fn token_wire(t: &wallet::Token, scale: u8, mac_key: Vec<u8>) -> pb::Token {
    pb::Token {
        token_id: convert::id_bytes(t.id),
        account_id: convert::id_bytes(t.account_id),
        clearing_account_id: convert::id_bytes(t.clearing_account_id),
        device_id: t.device_id.clone(),
        asset: t.asset.clone(),
        offline_limit: format_minor(t.offline_limit_minor, scale),
        max_offline_count: t.max_offline_count,
        issued_at_ns: t.issued_at_ns,
        expires_at_ns: t.expires_at_ns,
        release_at_ns: t.release_at_ns,
        status: match t.status {
            wallet::TokenStatus::Active => "active",
            wallet::TokenStatus::Revoked => "revoked",
            wallet::TokenStatus::Released => "released",
        }
        .into(),
        revoke_reason: t.revoke_reason.clone(),
        hold_placed: format_minor(t.hold_placed_minor, scale),
        hold_remaining: format_minor(t.hold_remaining_minor, scale),
        hold_capped: t.hold_placed_minor < t.offline_limit_minor,
        generation: t.generation,
        seq_base: t.seq_base,
        seq_high: t.seq_high,
        mac_key,
    }
}

/// Decodes an issue request. Err: the request is malformed (INVALID_ARGUMENT); Ok(Err): the
/// result apply would give for the stateless rules (`token::check_issue`), without proposing.
pub(crate) fn issue_input(r: &pb::IssueTokenRequest) -> Result<Result<wallet::IssueTokenInput, ItemResult>, Status> {
    let input = wallet::IssueTokenInput {
        token_id: id(&r.token_id, "token id")?,
        account_id: id(&r.account_id, "account id")?,
        clearing_account_id: id(&r.clearing_account_id, "clearing account id")?,
        device_id: r.device_id.clone(),
        offline_limit: amount(&r.offline_limit)?,
        max_offline_count: r.max_offline_count,
        validity_ms: r.validity_ms,
    };
    Ok(match token::check_issue(&input) {
        Ok(()) => Ok(input),
        Err(code) => Err(ItemResult { id: input.token_id, ..ItemResult::new(code) }),
    })
}

/// Decodes a revoke request; Ok(Err): the result apply would give (a reason too long), without
/// a Raft round trip.
pub(crate) fn revoke_input(r: &pb::RevokeTokenRequest) -> Result<Result<wallet::RevokeTokenInput, ItemResult>, Status> {
    let token_id = id(&r.token_id, "token id")?;
    if r.reason.len() > ledger_core::limits::REASON_BYTES_MAX {
        return Ok(Err(ItemResult::new(ResultCode::ReasonInvalid)));
    }
    Ok(Ok(wallet::RevokeTokenInput { token_id, reason: r.reason.clone() }))
}

/// Decodes a sync's records and verifies each MAC with the key (apply sees only the verdict).
/// `known`: the token and its asset's scale, if it exists. An unknown token or an amount beyond
/// the asset's scale cannot be verified: apply gives those their own reason.
pub(crate) fn offline_records(
    master: &[u8],
    known: Option<&(wallet::Token, u8)>,
    records: &[pb::OfflineRecord],
) -> Result<Vec<wallet::OfflineRecordInput>, Status> {
    let mut inputs = Vec::with_capacity(records.len());
    for rec in records {
        let merchant = id(&rec.merchant_account_id, "merchant account id")?;
        let amount_input = amount(&rec.amount)?;
        // A MAC of another length can never verify: it is carried as zeros, marked invalid.
        let mac_bytes: Option<[u8; 32]> = rec.mac.as_slice().try_into().ok();
        let mac_valid = match known {
            Some((t, scale)) => match amount_input.to_minor(*scale) {
                Ok(minor) => {
                    let key = mac::token_key(master, &t.device_id, t.id);
                    let expected = mac::record_mac(&key, t.id, rec.sequence, minor, merchant, rec.device_time_ms);
                    mac_bytes.is_some_and(|m| mac::mac_equal(&expected, &m))
                }
                Err(_) => true,
            },
            None => true,
        };
        inputs.push(wallet::OfflineRecordInput {
            sequence: rec.sequence,
            amount: amount_input,
            merchant_account_id: merchant,
            device_time_ms: rec.device_time_ms,
            mac: mac_bytes.unwrap_or([0; 32]),
            mac_valid,
        });
    }
    Ok(inputs)
}

/// `a - b` in minor units as a signed number (balances are u128; their difference may be negative).
fn signed_minor(a: u128, b: u128) -> Result<i128, Status> {
    let too_large = || Status::out_of_range("balance beyond i128");
    let a = i128::try_from(a).map_err(|_| too_large())?;
    let b = i128::try_from(b).map_err(|_| too_large())?;
    a.checked_sub(b).ok_or_else(too_large)
}

fn format_signed_minor(value: i128, scale: u8) -> String {
    let text = format_minor(value.unsigned_abs(), scale);
    if value < 0 { format!("-{text}") } else { text }
}

#[tonic::async_trait]
impl Wallet for WalletService {
    async fn issue_token(&self, request: Request<pb::IssueTokenRequest>) -> Result<Response<pb::IssueTokenResponse>, Status> {
        let master = self.key()?.to_vec();
        let input = match issue_input(&request.into_inner())? {
            Ok(input) => input,
            Err(refused) => return Ok(Response::new(pb::IssueTokenResponse { result: Some(convert::write_result(0, &refused)), token: None })),
        };
        let token_id = input.token_id;
        let applied = self.node.propose(Operation::IssueTokens(vec![input])).await.map_err(to_status)?;
        let result = applied.results.first().ok_or_else(|| Status::internal("no result"))?;
        // The proposal returned once applied here: this node's applied state holds it.
        let snapshot = self.read(Consistency::Applied).await?;
        let token = match read_token(&snapshot, token_id)? {
            Some((t, scale)) if result.code.is_success() => {
                let key = mac::token_key(&master, &t.device_id, t.id).to_vec();
                Some(token_wire(&t, scale, key))
            }
            _ => None,
        };
        Ok(Response::new(pb::IssueTokenResponse { result: Some(convert::write_result(0, result)), token }))
    }

    async fn sync_offline_records(
        &self,
        request: Request<pb::SyncOfflineRecordsRequest>,
    ) -> Result<Response<pb::SyncOfflineRecordsResponse>, Status> {
        let master = self.key()?.to_vec();
        let r = request.into_inner();
        super::bounds::sync_offline_records(&r)?;
        let token_id = id(&r.token_id, "token id")?;
        let known = read_token(&self.read(Consistency::Linearizable).await?, token_id)?;
        let records = offline_records(&master, known.as_ref(), &r.records)?;
        let input = wallet::SyncInput { token_id, records, reissue_through_sequence: r.reissue_through_sequence };
        let applied = self.node.propose(Operation::SyncOfflineRecords(vec![input])).await.map_err(to_status)?;
        let mut results: Vec<pb::WriteResult> =
            applied.results.iter().enumerate().map(|(i, res)| convert::write_result(i, res)).collect();
        let reissue = results.pop();
        // One view for the whole reply: the token and its account of the same applied index.
        let snapshot = self.read(Consistency::Applied).await?;
        let (token, account) = match read_token(&snapshot, token_id)? {
            Some((t, scale)) => {
                let account = snapshot.account(t.account_id).map_err(storage)?;
                (Some(token_wire(&t, scale, Vec::new())), account.map(|a| convert::account_record(&a, scale)))
            }
            None => (None, None),
        };
        Ok(Response::new(pb::SyncOfflineRecordsResponse { results, reissue, token, account }))
    }

    async fn revoke_token(&self, request: Request<pb::RevokeTokenRequest>) -> Result<Response<pb::WriteResult>, Status> {
        let input = match revoke_input(&request.into_inner())? {
            Ok(input) => input,
            Err(refused) => return Ok(Response::new(convert::write_result(0, &refused))),
        };
        let applied = self.node.propose(Operation::RevokeTokens(vec![input])).await.map_err(to_status)?;
        let result = applied.results.first().ok_or_else(|| Status::internal("no result"))?;
        Ok(Response::new(convert::write_result(0, result)))
    }

    async fn get_token(&self, request: Request<pb::GetTokenRequest>) -> Result<Response<pb::GetTokenResponse>, Status> {
        let token_id = id(&request.into_inner().token_id, "token id")?;
        let snapshot = self.read(Consistency::Linearizable).await?;
        let Some((t, scale)) = read_token(&snapshot, token_id)? else {
            return Err(Status::not_found(format!("token {token_id} not found")));
        };
        Ok(Response::new(pb::GetTokenResponse { token: Some(token_wire(&t, scale, Vec::new())) }))
    }

    type WatchWalletStream = super::wallet_watch::WalletStream;

    async fn watch_wallet(&self, request: Request<pb::WatchWalletRequest>) -> Result<Response<Self::WatchWalletStream>, Status> {
        let token_id = id(&request.into_inner().token_id, "token id")?;
        Ok(Response::new(super::wallet_watch::watch(self.node.clone(), token_id, self.watchers.clone()).await?))
    }

    async fn reconcile(&self, request: Request<pb::ReconcileRequest>) -> Result<Response<pb::ReconcileResponse>, Status> {
        let r = request.into_inner();
        let token_id = id(&r.token_id, "token id")?;
        let snapshot = self.read(Consistency::Linearizable).await?;
        let Some((t, scale)) = read_token(&snapshot, token_id)? else {
            return Err(Status::not_found(format!("token {token_id} not found")));
        };
        let device_minor = amount(&r.device_balance)?
            .to_minor(scale)
            .map_err(|code| Status::invalid_argument(format!("device balance {:?}: {code:?}", r.device_balance)))?;
        let account = snapshot
            .account(t.account_id)
            .map_err(storage)?
            .ok_or_else(|| Status::data_loss("token names a missing account"))?;
        let ledger_net = signed_minor(account.balances.credits_posted, account.balances.debits_posted)?;
        let difference = signed_minor(device_minor, 0)?
            .checked_sub(ledger_net)
            .ok_or_else(|| Status::invalid_argument("device balance out of range"))?;
        // Below the window everything is posted (a re-issue requires it), so only the window
        // can have gaps: at most max_offline_count point reads.
        let window_end = t.seq_base + u64::from(t.max_offline_count);
        let mut missing_sequences = Vec::new();
        for sequence in t.seq_base + 1..=r.device_last_sequence.min(window_end) {
            if snapshot.wallet_record(t.id, sequence).map_err(storage)?.is_none() {
                missing_sequences.push(sequence);
            }
        }
        let out_of_window = r.device_last_sequence > window_end || r.device_last_sequence < t.seq_high;
        Ok(Response::new(pb::ReconcileResponse {
            token: Some(token_wire(&t, scale, Vec::new())),
            account: Some(convert::account_record(&account, scale)),
            ledger_balance: format_signed_minor(ledger_net, scale),
            difference: format_signed_minor(difference, scale),
            ledger_last_sequence: t.seq_high,
            missing_sequences,
            device_sequence_out_of_window: out_of_window,
        }))
    }

    async fn list_exceptions(
        &self,
        request: Request<pb::ListExceptionsRequest>,
    ) -> Result<Response<pb::ListExceptionsResponse>, Status> {
        let r = request.into_inner();
        let token_id = id(&r.token_id, "token id")?;
        let limit = if r.limit == 0 { WALLET_EXCEPTIONS_PAGE_MAX } else { (r.limit as usize).min(WALLET_EXCEPTIONS_PAGE_MAX) };
        let exceptions = self
            .read(Consistency::Linearizable)
            .await?
            .wallet_exceptions(token_id, limit)
            .map_err(storage)?
            .into_iter()
            .map(|e| pb::OfflineException {
                sequence: e.sequence,
                amount: format_minor(e.amount.digits, e.amount.scale),
                merchant_account_id: convert::id_bytes(e.merchant_account_id),
                device_time_ms: e.device_time_ms,
                reason: convert::result_code(e.reason),
                timestamp_ns: e.timestamp_ns,
            })
            .collect();
        Ok(Response::new(pb::ListExceptionsResponse { exceptions }))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn key_file(bytes: &[u8], mode: u32) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        file
    }

    #[test]
    fn a_master_key_file_others_may_read_is_refused() {
        let secret = [7u8; 32];
        assert_eq!(MasterKey::from_file(key_file(&secret, 0o600).path()).unwrap().bytes(), secret);
        assert!(MasterKey::from_file(key_file(&secret, 0o400).path()).is_ok());
        for mode in [0o640, 0o604, 0o620, 0o602, 0o644, 0o666] {
            let err = MasterKey::from_file(key_file(&secret, mode).path()).unwrap_err();
            let text = format!("{err:#}");
            assert!(text.contains("readable by its owner only") && text.contains("LEDGER_WALLET_MASTER_KEY_FILE"), "{mode:o}: {text}");
        }
    }

    #[test]
    fn a_master_key_file_of_the_wrong_size_or_missing_is_refused() {
        assert!(MasterKey::from_file(key_file(&[1; MASTER_KEY_BYTES_MIN - 1], 0o600).path()).is_err());
        assert!(MasterKey::from_file(key_file(&[1; MASTER_KEY_BYTES_MAX], 0o600).path()).is_ok());
        assert!(MasterKey::from_file(key_file(&[1; MASTER_KEY_BYTES_MAX + 1], 0o600).path()).is_err());
        assert!(MasterKey::from_file(std::path::Path::new("/nonexistent/ledger-master.key")).is_err());
    }

    /// The replicated state (what snapshots ship, what audit exports read: the journal is a
    /// table) never holds the master key, a device key or a token key: the state machine never
    /// sees them, only the verdict on each MAC.
    #[test]
    fn no_table_holds_a_wallet_key() {
        use crate::fuzz::world::{DEVICE, MASTER_KEY, TOKEN, world};
        let state = world();
        assert!(token::get_token(&state, TOKEN).unwrap().is_some(), "the world has an issued token");
        let secrets = [MASTER_KEY.to_vec(), mac::device_key(MASTER_KEY, DEVICE).to_vec(), mac::token_key(MASTER_KEY, DEVICE, TOKEN).to_vec()];
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        for (table, rows) in &state.tables {
            for (key, value) in rows {
                for secret in &secrets {
                    for needle in [secret.clone(), hex(secret).into_bytes()] {
                        let found = |haystack: &[u8]| haystack.windows(needle.len()).any(|w| w == needle.as_slice());
                        assert!(!found(key) && !found(value), "table {table:?} holds a wallet key");
                    }
                }
            }
        }
    }

    #[test]
    fn a_master_key_never_prints_its_bytes() {
        let key = MasterKey::from_file(key_file(b"0123456789abcdef0123456789ABCDEF-secret", 0o600).path()).unwrap();
        for text in [format!("{key:?}"), format!("{:?}", Some(key.clone())), format!("{key:#?}")] {
            assert!(!text.contains("secret") && !text.contains("0123456789") && !text.contains("48, 49"), "{text}");
            assert!(text.contains("redacted"), "{text}");
        }
    }
}
