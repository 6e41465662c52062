//! `ledger.v1.Risk`: account risk limits and the token/device blocklist. Decodes and proposes;
//! the rules themselves live in `ledger::risk` and `ledger::wallet::blocklist`.

use ledger_proto::api as pb;
use ledger_proto::api::risk_server::Risk;
use tonic::{Request, Response, Status};

use super::convert;
use super::grpc::write_items;
use super::status::{storage, to_status};
use ledger_core::amount::{DecimalInput, format_minor};
use ledger_core::result::{ItemResult, ResultCode};
use ledger_core::risk::{self, LimitInput, LimitScope};
use ledger_core::types::Operation;
use ledger_core::wallet::blocklist::{BlockInput, BlockTarget};
use crate::service::{Consistency, Node};

pub struct RiskService {
    pub node: Node,
}

fn decimal(text: &Option<String>) -> Result<Option<DecimalInput>, ItemResult> {
    text.as_deref().map(DecimalInput::parse).transpose().map_err(ItemResult::new)
}

pub(crate) fn limit_input(rule: &pb::LimitRule) -> Result<LimitInput, ItemResult> {
    let scope = match &rule.scope {
        Some(pb::limit_rule::Scope::AccountId(id)) => {
            LimitScope::Account(convert::id(id).map_err(ItemResult::new)?)
        }
        Some(pb::limit_rule::Scope::Code(c)) => LimitScope::Code { asset: c.asset.clone(), code: c.code },
        None => return Err(ItemResult::new(ResultCode::LimitInvalid)),
    };
    Ok(LimitInput {
        scope,
        max_single_debit: decimal(&rule.max_single_debit)?,
        daily_debit_amount: decimal(&rule.daily_debit_amount)?,
        daily_debit_count: rule.daily_debit_count,
        utc_offset_minutes: rule.utc_offset_minutes,
    })
}

pub(crate) fn block_input(change: &pb::BlocklistChange) -> Result<BlockInput, ItemResult> {
    let target = match &change.target {
        Some(pb::blocklist_change::Target::TokenId(id)) => BlockTarget::Token(convert::id(id).map_err(ItemResult::new)?),
        Some(pb::blocklist_change::Target::DeviceId(device)) => BlockTarget::Device(device.clone()),
        None => return Err(ItemResult::new(ResultCode::DeviceIdInvalid)),
    };
    let input = BlockInput { target, blocked: change.blocked, reason: change.reason.clone() };
    ledger_core::wallet::blocklist::check(&input).map_err(ItemResult::new)?;
    Ok(input)
}

#[tonic::async_trait]
impl Risk for RiskService {
    async fn set_limits(&self, request: Request<pb::SetLimitsRequest>) -> Result<Response<pb::SetLimitsResponse>, Status> {
        let req = request.into_inner();
        super::bounds::set_limits(&req)?;
        let node = &self.node;
        let results = write_items("set_limits", &req.rules, limit_input, |inputs| async move {
            Ok(node.propose(Operation::SetLimits(inputs)).await?.results)
        })
        .await?;
        Ok(Response::new(pb::SetLimitsResponse { results }))
    }

    async fn get_limits(&self, request: Request<pb::GetLimitsRequest>) -> Result<Response<pb::GetLimitsResponse>, Status> {
        let account_id = match convert::id(&request.into_inner().account_id) {
            Ok(id) if id != 0 => id,
            _ => return Err(Status::invalid_argument("account id must be 16 bytes and not zero")),
        };
        let snapshot = self.node.read(Consistency::Linearizable).await.map_err(to_status)?;
        let account = snapshot.account(account_id).map_err(storage)?.ok_or_else(|| Status::not_found("account not found"))?;
        let scale = snapshot
            .asset(&account.asset)
            .map_err(storage)?
            .ok_or_else(|| Status::data_loss("an account names a missing asset"))?
            .scale;
        let Some(rule) = snapshot.limit_rule(account_id).map_err(storage)? else {
            return Ok(Response::new(pb::GetLimitsResponse { has_rule: false, ..Default::default() }));
        };
        let own = snapshot.has_own_limit_rule(account_id).map_err(storage)?;
        let scope = if own {
            pb::limit_rule::Scope::AccountId(convert::id_bytes(account_id))
        } else {
            pb::limit_rule::Scope::Code(pb::CodeScope { asset: account.asset.clone(), code: account.code })
        };
        let today = risk::day_of(crate::service::now_ns(), rule.utc_offset_minutes);
        let used = snapshot.daily_usage(account_id, today).map_err(storage)?;
        Ok(Response::new(pb::GetLimitsResponse {
            has_rule: true,
            rule: Some(pb::LimitRule {
                scope: Some(scope),
                max_single_debit: rule.max_single_debit_minor.map(|m| format_minor(m, scale)),
                daily_debit_amount: rule.daily_debit_amount_minor.map(|m| format_minor(m, scale)),
                daily_debit_count: rule.daily_debit_count,
                utc_offset_minutes: rule.utc_offset_minutes,
            }),
            debited_today: format_minor(used.amount_minor, scale),
            debits_today: used.count,
        }))
    }

    async fn set_risk_rules(&self, request: Request<pb::SetRiskRulesRequest>) -> Result<Response<pb::SetRiskRulesResponse>, Status> {
        let req = request.into_inner();
        let node = &self.node;
        let results = write_items("set_risk_rules", &req.rules, super::risk_rules::rule_input, |inputs| async move {
            Ok(node.propose(Operation::SetRiskRules(inputs)).await?.results)
        })
        .await?;
        Ok(Response::new(pb::SetRiskRulesResponse { results }))
    }

    async fn list_risk_rules(&self, _: Request<pb::ListRiskRulesRequest>) -> Result<Response<pb::ListRiskRulesResponse>, Status> {
        let snapshot = self.node.read(Consistency::Linearizable).await.map_err(to_status)?;
        let mut rules = Vec::new();
        for rule in snapshot.risk_rules().map_err(storage)? {
            let asset = snapshot.asset(&rule.scope.asset).map_err(storage)?;
            let scale = asset.ok_or_else(|| Status::data_loss("a risk rule names a missing asset"))?.scale;
            rules.push(super::risk_rules::rule_to_wire(&rule, scale));
        }
        Ok(Response::new(pb::ListRiskRulesResponse { rules }))
    }

    async fn set_blocklist(&self, request: Request<pb::SetBlocklistRequest>) -> Result<Response<pb::SetBlocklistResponse>, Status> {
        let req = request.into_inner();
        super::bounds::set_blocklist(&req)?;
        let node = &self.node;
        let results = write_items("set_blocklist", &req.changes, block_input, |inputs| async move {
            Ok(node.propose(Operation::SetBlocklist(inputs)).await?.results)
        })
        .await?;
        Ok(Response::new(pb::SetBlocklistResponse { results }))
    }
}
