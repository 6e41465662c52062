//! `ledger.v1.Accounts`: account changes after creation (settings updates, external-reference
//! rebinds) and each account's change history. Decodes, pre-checks with the rules' own stateless
//! checks, and proposes; the rules live in `ledger_core::account::{update, rebind, history}`.

use ledger_proto::api as pb;
use ledger_proto::api::accounts_server::Accounts;
use tonic::{Request, Response, Status};

use super::convert;
use super::grpc::write_items;
use super::status::{storage, to_status};
use crate::service::{Consistency, Node};
use ledger_core::account::history::{AccountChange, AccountSettings, ChangeKind};
use ledger_core::account::rebind::{self, RebindInput};
use ledger_core::account::update::{self, AccountUpdateInput};
use ledger_core::amount::{DecimalInput, format_minor};
use ledger_core::limits::{ACCOUNT_CHANGES_PAGE_DEFAULT, ACCOUNT_CHANGES_PAGE_MAX};
use ledger_core::result::ItemResult;
use ledger_core::types::Operation;

pub struct AccountsService {
    pub node: Node,
}

/// `actor`: who asked (`api::auth::actor`), recorded in the journal and the history.
pub(crate) fn update_input(u: &pb::AccountUpdate, actor: &str) -> Result<AccountUpdateInput, ItemResult> {
    let account_id = convert::id(&u.account_id).map_err(ItemResult::new)?;
    let overdraft_limit = u.overdraft_limit.as_deref().map(DecimalInput::parse).transpose().map_err(ItemResult::new)?;
    let input = AccountUpdateInput {
        account_id,
        metadata: u.set_metadata.then(|| u.metadata.clone()),
        overdraft_limit,
        code: u.code,
        reason: u.reason.clone(),
        actor: actor.to_string(),
    };
    update::check(&input).map_err(|code| ItemResult { id: account_id, ..ItemResult::new(code) })?;
    Ok(input)
}

pub(crate) fn rebind_input(r: &pb::ExternalRefRebind, actor: &str) -> Result<RebindInput, ItemResult> {
    let input = RebindInput {
        external_ref: r.external_ref.clone(),
        from_account_id: convert::id(&r.from_account_id).map_err(ItemResult::new)?,
        to_account_id: convert::id(&r.to_account_id).map_err(ItemResult::new)?,
        reason: r.reason.clone(),
        actor: actor.to_string(),
    };
    rebind::check(&input).map_err(ItemResult::new)?;
    Ok(input)
}

fn settings(s: &AccountSettings, scale: u8) -> pb::AccountSettings {
    pb::AccountSettings { code: s.code, overdraft_limit: format_minor(s.overdraft_limit_minor, scale), metadata: s.metadata.clone() }
}

fn change_to_wire(c: &AccountChange, scale: u8) -> pb::AccountChange {
    let change = match &c.kind {
        ChangeKind::Settings { before, after } => {
            pb::account_change::Change::Settings(pb::SettingsChange { before: Some(settings(before, scale)), after: Some(settings(after, scale)) })
        }
        ChangeKind::ExternalRef { before, after, other_account_id } => pb::account_change::Change::ExternalRef(pb::ExternalRefChange {
            before: before.clone(),
            after: after.clone(),
            other_account_id: if *other_account_id == 0 { Vec::new() } else { convert::id_bytes(*other_account_id) },
        }),
    };
    pb::AccountChange { timestamp_ns: c.timestamp_ns, actor: c.actor.clone(), reason: c.reason.clone(), change: Some(change) }
}

#[tonic::async_trait]
impl Accounts for AccountsService {
    async fn update_accounts(&self, request: Request<pb::UpdateAccountsRequest>) -> Result<Response<pb::UpdateAccountsResponse>, Status> {
        let actor = super::auth::actor(&request);
        let req = request.into_inner();
        let node = &self.node;
        let results = write_items("update_accounts", &req.updates, |u| update_input(u, &actor), |inputs| async move {
            Ok(node.propose(Operation::UpdateAccounts(inputs)).await?.results)
        })
        .await?;
        Ok(Response::new(pb::UpdateAccountsResponse { results }))
    }

    async fn rebind_external_refs(&self, request: Request<pb::RebindExternalRefsRequest>) -> Result<Response<pb::RebindExternalRefsResponse>, Status> {
        let actor = super::auth::actor(&request);
        let req = request.into_inner();
        let node = &self.node;
        let results = write_items("rebind_external_refs", &req.rebinds, |r| rebind_input(r, &actor), |inputs| async move {
            Ok(node.propose(Operation::RebindExternalRefs(inputs)).await?.results)
        })
        .await?;
        Ok(Response::new(pb::RebindExternalRefsResponse { results }))
    }

    async fn list_account_changes(&self, request: Request<pb::ListAccountChangesRequest>) -> Result<Response<pb::ListAccountChangesResponse>, Status> {
        let req = request.into_inner();
        let account_id = match convert::id(&req.account_id) {
            Ok(id) if id != 0 => id,
            _ => return Err(Status::invalid_argument("account id must be 16 bytes and not zero")),
        };
        let limit = match req.limit {
            0 => ACCOUNT_CHANGES_PAGE_DEFAULT,
            n if n <= ACCOUNT_CHANGES_PAGE_MAX => n,
            n => return Err(Status::invalid_argument(format!("limit {n}; at most {ACCOUNT_CHANGES_PAGE_MAX}"))),
        } as usize;
        let snapshot = self.node.read(Consistency::Linearizable).await.map_err(to_status)?;
        let account = snapshot.account(account_id).map_err(storage)?.ok_or_else(|| Status::not_found("account not found"))?;
        let scale = snapshot.asset(&account.asset).map_err(storage)?.ok_or_else(|| Status::data_loss("an account names a missing asset"))?.scale;
        let after = (req.after_timestamp_ns != 0).then_some(req.after_timestamp_ns);
        // One more than asked says whether another page follows.
        let mut changes = snapshot.account_changes(account_id, after, limit + 1).map_err(storage)?;
        let more = changes.len() > limit;
        changes.truncate(limit);
        let next_after_timestamp_ns = if more { changes.last().map_or(0, |c| c.timestamp_ns) } else { 0 };
        Ok(Response::new(pb::ListAccountChangesResponse {
            changes: changes.iter().map(|c| change_to_wire(c, scale)).collect(),
            next_after_timestamp_ns,
        }))
    }
}
