//! Request-level bounds: what makes a whole request INVALID_ARGUMENT before any of its items is
//! looked at (too many items, too many legs, a field longer than any valid value). Per-item
//! refusals are result codes (`convert::prepare_*`, `ledger::validate`); these are for requests
//! no correct client sends. The limits are in `ledger::limits` and docs/operations.md "Limits".

use ledger_proto::api as pb;
use tonic::Status;

use ledger_core::limits::*;

/// Items (assets, accounts, transfers, status changes, limit rules, blocklist changes) in one
/// write request.
pub fn items(len: usize) -> Result<(), Status> {
    if len > BATCH_ITEMS_MAX {
        return Err(Status::invalid_argument(format!("batch has {len} items; the limit is {BATCH_ITEMS_MAX}")));
    }
    Ok(())
}

/// Ids (or asset codes) in one lookup.
pub fn lookup(len: usize, what: &str) -> Result<(), Status> {
    if len > LOOKUP_IDS_MAX {
        return Err(Status::invalid_argument(format!("at most {LOOKUP_IDS_MAX} {what} per lookup")));
    }
    Ok(())
}

/// An asset code a request names (not creates: `CreateAssets` refuses a bad code per item). No
/// asset has a longer code, so such an item could only fail; refusing the request keeps an
/// arbitrarily long string out of the Raft log.
pub fn named_asset(code: &str) -> Result<(), Status> {
    if code.len() > ASSET_CODE_LEN_MAX {
        return Err(Status::invalid_argument(format!("asset code of {} bytes; codes have at most {ASSET_CODE_LEN_MAX}", code.len())));
    }
    Ok(())
}

pub fn create_assets(req: &pb::CreateAssetsRequest) -> Result<(), Status> {
    items(req.assets.len())
}

pub fn create_accounts(req: &pb::CreateAccountsRequest) -> Result<(), Status> {
    items(req.accounts.len())?;
    req.accounts.iter().try_for_each(|a| named_asset(&a.asset))
}

/// Items, legs in all (one Raft entry stays about 4 MiB), and the asset each names.
pub fn create_transfers(req: &pb::CreateTransfersRequest) -> Result<(), Status> {
    items(req.transfers.len())?;
    let legs: usize = req.transfers.iter().map(|t| t.legs.len().max(t.post_amounts.len())).sum();
    if legs > BATCH_LEGS_MAX {
        return Err(Status::invalid_argument(format!("batch has {legs} legs; the limit is {BATCH_LEGS_MAX}")));
    }
    req.transfers.iter().try_for_each(|t| named_asset(&t.asset))
}

pub fn set_account_status(req: &pb::SetAccountStatusRequest) -> Result<(), Status> {
    items(req.changes.len())
}

pub fn set_limits(req: &pb::SetLimitsRequest) -> Result<(), Status> {
    items(req.rules.len())?;
    req.rules.iter().try_for_each(|r| match &r.scope {
        Some(pb::limit_rule::Scope::Code(c)) => named_asset(&c.asset),
        _ => Ok(()),
    })
}

pub fn set_blocklist(req: &pb::SetBlocklistRequest) -> Result<(), Status> {
    items(req.changes.len())
}

/// Records in one sync: one result each plus one for the re-issue must fit a batch.
pub fn sync_offline_records(req: &pb::SyncOfflineRecordsRequest) -> Result<(), Status> {
    if req.records.len() >= BATCH_ITEMS_MAX {
        return Err(Status::invalid_argument(format!("at most {} records per sync", BATCH_ITEMS_MAX - 1)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(status: Result<(), Status>) -> tonic::Code {
        status.err().map(|s| s.code()).unwrap_or(tonic::Code::Ok)
    }

    #[test]
    fn item_counts_are_bounded_at_the_limit_not_before() {
        assert_eq!(code(items(BATCH_ITEMS_MAX)), tonic::Code::Ok);
        assert_eq!(code(items(BATCH_ITEMS_MAX + 1)), tonic::Code::InvalidArgument);
        assert_eq!(code(lookup(LOOKUP_IDS_MAX, "ids")), tonic::Code::Ok);
        assert_eq!(code(lookup(LOOKUP_IDS_MAX + 1, "ids")), tonic::Code::InvalidArgument);
        let sync = |n| pb::SyncOfflineRecordsRequest { records: vec![pb::OfflineRecord::default(); n], ..Default::default() };
        assert_eq!(code(sync_offline_records(&sync(BATCH_ITEMS_MAX - 1))), tonic::Code::Ok);
        assert_eq!(code(sync_offline_records(&sync(BATCH_ITEMS_MAX))), tonic::Code::InvalidArgument);
        let blocks = |n| pb::SetBlocklistRequest { changes: vec![pb::BlocklistChange::default(); n] };
        assert_eq!(code(set_blocklist(&blocks(BATCH_ITEMS_MAX + 1))), tonic::Code::InvalidArgument);
    }

    #[test]
    fn legs_are_counted_across_the_request_post_amounts_included() {
        let transfer = |legs: usize, posts: usize| pb::Transfer {
            legs: vec![pb::Leg::default(); legs],
            post_amounts: vec![String::new(); posts],
            ..Default::default()
        };
        let request = |transfers| pb::CreateTransfersRequest { transfers };
        let full = BATCH_LEGS_MAX / TRANSFER_LEGS_MAX;
        assert_eq!(code(create_transfers(&request(vec![transfer(TRANSFER_LEGS_MAX, 0); full]))), tonic::Code::Ok);
        let over = [vec![transfer(TRANSFER_LEGS_MAX, 0); full], vec![transfer(1, 0)]].concat();
        assert_eq!(code(create_transfers(&request(over))), tonic::Code::InvalidArgument);
        let over_by_posts = [vec![transfer(TRANSFER_LEGS_MAX, 0); full], vec![transfer(0, 1)]].concat();
        assert_eq!(code(create_transfers(&request(over_by_posts))), tonic::Code::InvalidArgument);
    }

    #[test]
    fn a_named_asset_longer_than_any_code_refuses_the_request() {
        let long = "A".repeat(ASSET_CODE_LEN_MAX + 1);
        let ok = "A".repeat(ASSET_CODE_LEN_MAX);
        let accounts = |asset: &str| pb::CreateAccountsRequest { accounts: vec![pb::Account { asset: asset.into(), ..Default::default() }] };
        assert_eq!(code(create_accounts(&accounts(&ok))), tonic::Code::Ok);
        assert_eq!(code(create_accounts(&accounts(&long))), tonic::Code::InvalidArgument);
        let transfers = |asset: &str| pb::CreateTransfersRequest { transfers: vec![pb::Transfer { asset: asset.into(), ..Default::default() }] };
        assert_eq!(code(create_transfers(&transfers(&ok))), tonic::Code::Ok);
        assert_eq!(code(create_transfers(&transfers(&long))), tonic::Code::InvalidArgument);
        let limits = |asset: &str| pb::SetLimitsRequest {
            rules: vec![pb::LimitRule { scope: Some(pb::limit_rule::Scope::Code(pb::CodeScope { asset: asset.into(), code: 1 })), ..Default::default() }],
        };
        assert_eq!(code(set_limits(&limits(&ok))), tonic::Code::Ok);
        assert_eq!(code(set_limits(&limits(&long))), tonic::Code::InvalidArgument);
    }
}
