//! `ledger.v1.Query`: history queries answered from the existing tables with bounded scans
//! (`ledger_core::query`), each a read through the door like every other read.

use ledger_core::query::{QUERY_LIMIT_DEFAULT, QUERY_LIMIT_MAX};
use ledger_proto::api as pb;
use ledger_proto::api::query_server::Query;
use tonic::{Request, Response, Status};

use super::convert;
use super::status::{storage, to_status};
use crate::service::{Consistency, Node};

pub struct QueryService {
    pub node: Node,
}

/// A page size: 0 is the default, more than a batch is refused.
fn limit(requested: u32) -> Result<usize, Status> {
    match requested {
        0 => Ok(QUERY_LIMIT_DEFAULT as usize),
        n if n > QUERY_LIMIT_MAX => Err(Status::invalid_argument(format!("limit must be at most {QUERY_LIMIT_MAX}"))),
        n => Ok(n as usize),
    }
}

#[tonic::async_trait]
impl Query for QueryService {
    async fn get_account_history(&self, request: Request<pb::GetAccountHistoryRequest>) -> Result<Response<pb::GetAccountHistoryResponse>, Status> {
        let staleness = super::grpc::max_staleness(&request)?;
        let req = request.into_inner();
        let account_id = match convert::id(&req.account_id) {
            Ok(id) if id != 0 => id,
            _ => return Err(Status::invalid_argument("account id must be 16 bytes and not zero")),
        };
        let limit = limit(req.limit)?;
        let to = if req.to_timestamp_ns == 0 { u64::MAX } else { req.to_timestamp_ns };
        if req.from_timestamp_ns > to {
            return Err(Status::invalid_argument("from_timestamp_ns must not be after to_timestamp_ns"));
        }
        let snapshot = self.node.read(Consistency::from_staleness(staleness)).await.map_err(to_status)?;
        let account = snapshot.account(account_id).map_err(storage)?.ok_or_else(|| Status::not_found("account not found"))?;
        let scale = snapshot.asset(&account.asset).map_err(storage)?.ok_or_else(|| Status::data_loss("an account names a missing asset"))?.scale;
        let cursor = (req.cursor_timestamp_ns != 0).then_some(req.cursor_timestamp_ns);
        let (changes, next) = snapshot.account_history(account_id, (req.from_timestamp_ns, to), cursor, limit, req.reverse).map_err(storage)?;
        let changes = changes
            .iter()
            .map(|c| pb::AccountBalanceChange { timestamp_ns: c.timestamp_ns, transfer_id: convert::id_bytes(c.transfer_id), balances: Some(convert::balances(&c.balances, scale)) })
            .collect();
        Ok(Response::new(pb::GetAccountHistoryResponse { changes, next_cursor_timestamp_ns: next.unwrap_or(0) }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_page_is_at_most_a_batch() {
        assert_eq!(super::limit(0).unwrap(), 100);
        assert_eq!(super::limit(8_190).unwrap(), 8_190);
        assert_eq!(super::limit(8_191).unwrap_err().code(), tonic::Code::InvalidArgument);
    }
}
