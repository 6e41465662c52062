//! `ledger.v1.Risk` SetRiskRules / ListRiskRules: the wire form of `ledger_core::risk::rules`.

use ledger_core::amount::{DecimalInput, format_minor};
use ledger_core::result::{ItemResult, ResultCode};
use ledger_core::risk::rules::{Limit, Rule, RuleInput, RuleScope, Side, Window};
use ledger_proto::api as pb;

use super::convert;

fn invalid() -> ItemResult {
    ItemResult::new(ResultCode::LimitInvalid)
}

fn side(value: i32) -> Result<Side, ItemResult> {
    match pb::RiskSide::try_from(value) {
        Ok(pb::RiskSide::Debit) => Ok(Side::Debit),
        Ok(pb::RiskSide::Credit) => Ok(Side::Credit),
        _ => Err(invalid()),
    }
}

fn window(value: i32) -> Result<Window, ItemResult> {
    match pb::RiskWindow::try_from(value) {
        Ok(pb::RiskWindow::Transfer) => Ok(Window::Transfer),
        Ok(pb::RiskWindow::Minute) => Ok(Window::Minute),
        Ok(pb::RiskWindow::Hour) => Ok(Window::Hour),
        Ok(pb::RiskWindow::Day) => Ok(Window::Day),
        Ok(pb::RiskWindow::Month) => Ok(Window::Month),
        _ => Err(invalid()),
    }
}

pub(crate) fn rule_input(r: &pb::RiskRule) -> Result<RuleInput, ItemResult> {
    if r.rule_id == 0 {
        return Err(ItemResult::new(ResultCode::IdMustNotBeZero));
    }
    if r.remove {
        return Ok(RuleInput { rule_id: r.rule_id, rule: None, utc_offset_minutes: 0 });
    }
    super::bounds::named_asset(&r.asset).map_err(|_| ItemResult::new(ResultCode::AssetCodeInvalid))?;
    let scope = RuleScope {
        asset: r.asset.clone(),
        account_id: convert::id(&r.account_id).map_err(ItemResult::new)?,
        account_code: r.account_code,
        transfer_code: r.transfer_code,
    };
    let amount = || DecimalInput::parse(&r.max_amount).map_err(ItemResult::new);
    let limit = match pb::RiskLimitKind::try_from(r.kind) {
        Ok(pb::RiskLimitKind::Amount) => Limit::Amount { side: side(r.side)?, max: amount()?, window: window(r.window)? },
        Ok(pb::RiskLimitKind::Count) => Limit::Count { side: side(r.side)?, max: r.max_count, window: window(r.window)? },
        Ok(pb::RiskLimitKind::Balance) => Limit::Balance { max: amount()? },
        _ => return Err(invalid()),
    };
    Ok(RuleInput { rule_id: r.rule_id, rule: Some((scope, limit)), utc_offset_minutes: r.utc_offset_minutes })
}

fn side_to_wire(side: Side) -> i32 {
    match side {
        Side::Debit => pb::RiskSide::Debit as i32,
        Side::Credit => pb::RiskSide::Credit as i32,
    }
}

fn window_to_wire(window: Window) -> i32 {
    (match window {
        Window::Transfer => pb::RiskWindow::Transfer,
        Window::Minute => pb::RiskWindow::Minute,
        Window::Hour => pb::RiskWindow::Hour,
        Window::Day => pb::RiskWindow::Day,
        Window::Month => pb::RiskWindow::Month,
    }) as i32
}

/// A stored rule on the wire, amounts at its asset's scale.
pub(crate) fn rule_to_wire(rule: &Rule, scale: u8) -> pb::RiskRule {
    let s = &rule.scope;
    let mut wire = pb::RiskRule {
        rule_id: rule.rule_id,
        asset: s.asset.clone(),
        account_id: if s.account_id == 0 { Vec::new() } else { convert::id_bytes(s.account_id) },
        account_code: s.account_code,
        transfer_code: s.transfer_code,
        utc_offset_minutes: rule.utc_offset_minutes,
        ..Default::default()
    };
    match rule.limit {
        Limit::Amount { side, max, window } => {
            (wire.kind, wire.side, wire.window, wire.max_amount) = (pb::RiskLimitKind::Amount as i32, side_to_wire(side), window_to_wire(window), format_minor(max, scale));
        }
        Limit::Count { side, max, window } => {
            (wire.kind, wire.side, wire.window, wire.max_count) = (pb::RiskLimitKind::Count as i32, side_to_wire(side), window_to_wire(window), max);
        }
        Limit::Balance { max } => {
            (wire.kind, wire.max_amount) = (pb::RiskLimitKind::Balance as i32, format_minor(max, scale));
        }
    }
    wire
}
