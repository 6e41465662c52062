//! The CLI's output documents. Built as an ordered tree (`Node`) so JSON keys come out in a
//! fixed, readable order without changing serde_json's map type for the whole workspace, and so
//! the table renderer can lay out the same data. The format is documented in README.md: keep
//! the two in step.
//!
//! Conventions: ids and amounts are strings (u128 and decimals do not survive JSON numbers in
//! most parsers); timestamps are integer nanoseconds plus an RFC 3339 UTC `*_time` string
//! (`timestamp_ns` -> `timestamp_time`), null when the timestamp is absent.

use crate::amount::format_amount;
use crate::timestamp::rfc3339_from_ns;
use crate::types::*;
use crate::amount::Amount;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Integer(u64),
    Text(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => serializer.serialize_none(),
            Node::Bool(value) => serializer.serialize_bool(*value),
            Node::Integer(value) => serializer.serialize_u64(*value),
            Node::Text(value) => serializer.serialize_str(value),
            Node::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (key, value) in fields {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl From<bool> for Node {
    fn from(value: bool) -> Node {
        Node::Bool(value)
    }
}
impl From<u64> for Node {
    fn from(value: u64) -> Node {
        Node::Integer(value)
    }
}
impl From<u32> for Node {
    fn from(value: u32) -> Node {
        Node::Integer(u64::from(value))
    }
}
impl From<&str> for Node {
    fn from(value: &str) -> Node {
        Node::Text(value.to_string())
    }
}
impl From<String> for Node {
    fn from(value: String) -> Node {
        Node::Text(value)
    }
}
impl<T: Into<Node>> From<Option<T>> for Node {
    fn from(value: Option<T>) -> Node {
        value.map_or(Node::Null, Into::into)
    }
}
impl<T: Into<Node>> From<Vec<T>> for Node {
    fn from(items: Vec<T>) -> Node {
        Node::Array(items.into_iter().map(Into::into).collect())
    }
}

/// An ordered object from `key => value` pairs.
macro_rules! object {
    ($($key:literal => $value:expr),* $(,)?) => {
        Node::Object(vec![$(($key.to_string(), Node::from($value))),*])
    };
}
pub(crate) use object;

pub fn id(value: u128) -> Node {
    Node::Text(value.to_string())
}

pub fn amount(value: Amount) -> Node {
    Node::Text(format_amount(value))
}

/// `<stem>_ns` and `<stem>_time` fields; a zero timestamp means "none": both null.
fn timestamp(fields: &mut Vec<(String, Node)>, stem: &str, timestamp_ns: Option<u64>) {
    let timestamp_ns = timestamp_ns.filter(|&ns| ns != 0);
    fields.push((format!("{stem}_ns"), timestamp_ns.into()));
    fields.push((
        format!("{stem}_time"),
        timestamp_ns.map(rfc3339_from_ns).into(),
    ));
}

pub(super) fn with_timestamp(node: Node, stem: &str, timestamp_ns: Option<u64>) -> Node {
    let Node::Object(mut fields) = node else {
        return node;
    };
    timestamp(&mut fields, stem, timestamp_ns);
    Node::Object(fields)
}

pub(super) fn extend(node: Node, more: Node) -> Node {
    match (node, more) {
        (Node::Object(mut fields), Node::Object(more)) => {
            fields.extend(more);
            Node::Object(fields)
        }
        (node, _) => node,
    }
}

pub fn write_result(result: &WriteResult) -> Node {
    let node = object! {
        "index" => result.index,
        "code" => result.code.to_string(),
        "ok" => result.is_success(),
        "leg_index" => result.leg_index,
        "replay" => result.replay,
        "id" => if result.id == 0 { Node::Null } else { id(result.id) },
    };
    with_timestamp(node, "timestamp", Some(result.timestamp_ns))
}

pub fn write_results(results: &[WriteResult]) -> Node {
    object! { "results" => results.iter().map(write_result).collect::<Vec<_>>() }
}

pub fn asset(record: &AssetRecord) -> Node {
    let node = object! { "code" => record.code.as_str(), "scale" => record.scale };
    with_timestamp(node, "timestamp", Some(record.timestamp_ns))
}

pub fn balances(balances: &Balances) -> Node {
    object! {
        "debits_posted" => amount(balances.debits_posted),
        "credits_posted" => amount(balances.credits_posted),
        "debits_pending" => amount(balances.debits_pending),
        "credits_pending" => amount(balances.credits_pending),
    }
}

pub fn account(record: &AccountRecord) -> Node {
    let account = &record.account;
    let metadata = Node::Object(
        account
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), Node::from(v.as_str())))
            .collect(),
    );
    let node = object! {
        "id" => id(account.id),
        "asset" => account.asset.as_str(),
        "code" => account.code,
        "status" => record.status.name(),
        "debits_must_not_exceed_credits" => account.debits_must_not_exceed_credits,
        "credits_must_not_exceed_debits" => account.credits_must_not_exceed_debits,
        "overdraft_limit" => account.overdraft_limit.map(amount),
        "metadata" => metadata,
        "external_ref" => account.external_ref.clone(),
        "balances" => balances(&record.balances),
    };
    with_timestamp(node, "timestamp", Some(record.timestamp_ns))
}

pub fn leg(leg: &Leg) -> Node {
    object! { "debit" => id(leg.debit), "credit" => id(leg.credit), "amount" => amount(leg.amount) }
}

pub fn transfer(record: &TransferRecord) -> Node {
    let transfer = &record.transfer;
    let node = object! {
        "id" => id(transfer.id),
        "idempotency_key" => transfer.idempotency_key.as_str(),
        "kind" => transfer.kind.name(),
        "asset" => transfer.asset.as_str(),
        "code" => transfer.code,
        "legs" => transfer.legs.iter().map(leg).collect::<Vec<_>>(),
        "pending_id" => transfer.pending_id.map(id),
        "timeout_ms" => transfer.timeout_ms,
        "post_amounts" => transfer.post_amounts.iter().copied().map(amount).collect::<Vec<_>>(),
        "pending_state" => record.pending_state.name(),
        "posted_legs" => record.posted_legs.iter().map(leg).collect::<Vec<_>>(),
    };
    let node = with_timestamp(node, "timestamp", Some(record.timestamp_ns));
    let node = with_timestamp(node, "expires_at", Some(record.expires_at_ns));
    extend(node, transfer_extras(record))
}

/// What a transfer may carry beyond its row (refund link, reference, metadata, refunds), each
/// shown only when present: a transfer made without them renders as it always did.
fn transfer_extras(record: &TransferRecord) -> Node {
    let transfer = &record.transfer;
    let mut fields = Vec::new();
    if let Some(original) = transfer.refund_of {
        fields.push(("refund_of".to_string(), id(original)));
    }
    if !transfer.reference.is_empty() {
        fields.push(("reference".to_string(), Node::from(transfer.reference.as_str())));
    }
    if !transfer.metadata.is_empty() {
        let pairs = transfer.metadata.iter().map(|(k, v)| (k.clone(), Node::from(v.as_str()))).collect();
        fields.push(("metadata".to_string(), Node::Object(pairs)));
    }
    if let (Some(refunded), Some(refundable)) = (record.refunded, record.refundable) {
        fields.push(("refunded".to_string(), amount(refunded)));
        fields.push(("refundable".to_string(), amount(refundable)));
    }
    Node::Object(fields)
}

pub fn idempotency(key: &str, record: Option<&IdempotencyRecord>) -> Node {
    let Some(record) = record else {
        return object! { "idempotency_key" => key, "found" => false };
    };
    let node = object! {
        "idempotency_key" => key,
        "found" => true,
        "code" => record.code.to_string(),
        "ok" => record.code.is_success(),
        "transfer_id" => id(record.transfer_id),
    };
    let node = with_timestamp(node, "timestamp", Some(record.timestamp_ns));
    extend(
        node,
        object! { "transfer" => record.transfer.as_ref().map(transfer) },
    )
}

pub fn entry(entry: &AccountEntry) -> Node {
    let node = object! {
        "account_id" => id(entry.account_id),
        "transfer_id" => id(entry.transfer_id),
        "leg_index" => entry.leg_index,
        "kind" => entry.kind.name(),
        "is_debit" => entry.is_debit,
        "amount" => amount(entry.amount),
        "balances_after" => balances(&entry.balances_after),
    };
    with_timestamp(node, "timestamp", Some(entry.timestamp_ns))
}

pub fn entries_page(page: &EntriesPage) -> Node {
    object! {
        "entries" => page.entries.iter().map(entry).collect::<Vec<_>>(),
        "next_cursor_timestamp_ns" => page.next_cursor_timestamp_ns,
    }
}

pub fn balance_at(account_id: u128, timestamp_ns: u64, result: &BalanceAt) -> Node {
    let node = with_timestamp(
        object! { "account_id" => id(account_id) },
        "timestamp",
        Some(timestamp_ns),
    );
    let node = extend(node, object! { "balances" => balances(&result.balances) });
    with_timestamp(node, "as_of_timestamp", result.as_of_timestamp_ns)
}

fn member(n: &NodeStatus) -> Node {
    object! {
        "node_id" => n.node_id,
        "address" => n.address.as_str(),
        "role" => n.role.as_str(),
        "voter" => n.voter,
        "peer_address" => n.peer_address.as_str(),
        "matched_index" => n.matched_index,
        "lag_entries" => n.lag_entries,
    }
}

pub fn membership_change(change: &MembershipChange) -> Node {
    object! {
        "changed" => change.changed,
        "nodes" => change.nodes.iter().map(member).collect::<Vec<_>>(),
    }
}

pub fn backup_taken(taken: &BackupTaken) -> Node {
    object! {
        "dir" => taken.dir.clone(),
        "applied_index" => taken.applied_index,
        "state_hash" => taken.state_hash.clone(),
        "files" => taken.files,
        "bytes" => taken.bytes,
        "elapsed_ms" => taken.elapsed_ms,
    }
}

pub fn snapshot_taken(taken: &SnapshotTaken) -> Node {
    object! { "snapshot_index" => taken.snapshot_index, "purged_index" => taken.purged_index }
}

/// `cluster status`: the answering node's fields (as `cluster_status`), and per member its
/// membership row plus its own numbers, or the error that kept it from answering.
pub fn cluster_overview(
    here: &ClusterStatus,
    members: &[NodeStatus],
    answers: &[Result<ClusterStatus, String>],
) -> Node {
    let nodes: Vec<Node> = members
        .iter()
        .zip(answers)
        .map(|(m, answer)| {
            let row = member(m);
            match answer {
                Ok(s) => extend(
                    row,
                    object! {
                        "own_role" => s.role.as_str(),
                        "term" => s.term,
                        "last_log_index" => s.last_log_index,
                        "committed_index" => s.committed_index,
                        "applied_index" => s.applied_index,
                        "snapshot_index" => s.snapshot_index,
                        "purged_index" => s.purged_index,
                        "error" => s.error.as_deref(),
                    },
                ),
                Err(e) => extend(row, object! { "error" => e.as_str() }),
            }
        })
        .collect();
    let mut status = here.clone();
    status.nodes.clear();
    let Node::Object(mut fields) = cluster_status(&status) else {
        unreachable!("cluster_status is an object")
    };
    for (key, value) in fields.iter_mut() {
        if key == "nodes" {
            *value = Node::Array(nodes.clone());
        }
    }
    Node::Object(fields)
}

pub fn cluster_status(status: &ClusterStatus) -> Node {
    let nodes: Vec<Node> = status.nodes.iter().map(member).collect();
    object! {
        "node_id" => status.node_id,
        "role" => status.role.as_str(),
        "term" => status.term,
        "leader_id" => status.leader_id,
        "leader_address" => status.leader_address.as_str(),
        "last_log_index" => status.last_log_index,
        "committed_index" => status.committed_index,
        "applied_index" => status.applied_index,
        "snapshot_index" => status.snapshot_index,
        "purged_index" => status.purged_index,
        "error" => status.error.as_deref(),
        "retired_node_ids" => status.retired_node_ids.iter().map(|id| Node::from(*id)).collect::<Vec<_>>(),
        "nodes" => nodes,
    }
}

pub fn state_hash(hash: &StateHash) -> Node {
    object! { "applied_index" => hash.applied_index, "state_hash" => hash.state_hash.as_str() }
}

/// `{"endpoint": url, ...fields}` or `{"endpoint": url, "error": message}`.
pub fn per_endpoint(endpoint: &str, result: Result<Node, String>) -> Node {
    let head = object! { "endpoint" => endpoint };
    match result {
        Ok(node) => extend(head, node),
        Err(error) => extend(head, object! { "error" => error }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResultCode;

    #[test]
    fn write_result_json_is_stable() {
        let result = WriteResult {
            index: 0,
            code: ResultCode::ExceedsCredits,
            timestamp_ns: 1_700_000_000_123_456_789,
            leg_index: Some(1),
            replay: true,
            id: 42,
        };
        assert_eq!(
            serde_json::to_string(&write_results(&[result])).unwrap(),
            r#"{"results":[{"index":0,"code":"exceeds_credits","ok":false,"leg_index":1,"replay":true,"id":"42","timestamp_ns":1700000000123456789,"timestamp_time":"2023-11-14T22:13:20.123456789Z"}]}"#
        );
    }

    #[test]
    fn absent_timestamps_are_null() {
        let result = BalanceAt {
            balances: Balances::default(),
            as_of_timestamp_ns: None,
        };
        let json = serde_json::to_value(balance_at(7, 5, &result)).unwrap();
        assert_eq!(json["as_of_timestamp_ns"], serde_json::Value::Null);
        assert_eq!(json["as_of_timestamp_time"], serde_json::Value::Null);
        assert_eq!(json["balances"]["debits_posted"], "0");
        assert_eq!(json["account_id"], "7");
    }
}
