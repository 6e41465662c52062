//! Account statements: the opening balance, every entry of a period with the balances after it
//! (the running balance), and the closing balance. Pages through `ListAccountEntries`, writing as
//! it goes: memory is one page, whatever the period.

use std::io::Write;

use crate::amount::Amount;
use serde_json::json;

use crate::client::LedgerClient;
use crate::error::ClientError;
use crate::timestamp::{UtcOffset, rfc3339_from_ns, rfc3339_with_offset};
use std::collections::{BTreeMap, BTreeSet};

use crate::types::{AccountEntry, Balances, TransferRecord};

/// Entries asked for per page: the most the node answers.
const STATEMENT_PAGE_ENTRIES: u32 = ledger_core::limits::ENTRIES_PAGE_MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementFormat {
    Csv,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("writing the statement: {0}")]
    Io(#[from] std::io::Error),
}

pub const STATEMENT_CSV_HEADER: &str = "row,timestamp_ns,time_utc,time_local,transfer_id,leg,kind,side,amount,counterparty,reference,refund_of,debits_posted,credits_posted,debits_pending,credits_pending,net_posted";

/// What a statement ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementSummary {
    pub opening: Balances,
    pub closing: Balances,
    pub entries: u64,
}

/// credits − debits posted: the balance of a customer (liability) account.
fn net(b: &Balances) -> Amount {
    b.credits_posted - b.debits_posted
}

fn balance_fields(b: &Balances) -> [String; 5] {
    [b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending, net(b)].map(|d| d.to_string())
}

fn balance_json(b: &Balances) -> serde_json::Value {
    let [dp, cp, dq, cq, n] = balance_fields(b);
    json!({"debits_posted": dp, "credits_posted": cp, "debits_pending": dq, "credits_pending": cq, "net_posted": n})
}

/// An entry's counterparty (the leg's other account), and its transfer's reference and refund
/// link; empty where there is none (or the transfer is not readable).
fn context(transfer: Option<&TransferRecord>, e: &AccountEntry) -> (String, String, String) {
    let Some(record) = transfer else { return Default::default() };
    let legs = if record.posted_legs.is_empty() { &record.transfer.legs } else { &record.posted_legs };
    let counterparty = legs
        .get(e.leg_index as usize)
        .map(|leg| if e.is_debit { leg.credit } else { leg.debit })
        .map_or_else(String::new, |id| id.to_string());
    let refund_of = record.transfer.refund_of.map_or_else(String::new, |id| id.to_string());
    (counterparty, record.transfer.reference.clone(), refund_of)
}

impl LedgerClient {
    /// The transfers of a page's entries (one lookup per page: at most the page's size).
    async fn page_transfers(&self, entries: &[AccountEntry]) -> Result<BTreeMap<u128, TransferRecord>, ClientError> {
        let ids: BTreeSet<u128> = entries.iter().map(|e| e.transfer_id).collect();
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let found = self.lookup_transfers(ids.into_iter().collect()).await?;
        Ok(found.into_iter().map(|t| (t.transfer.id, t)).collect())
    }

    /// Writes the statement of `account_id` for `from_ns..=to_ns` to `out`.
    pub async fn write_statement(
        &self,
        account_id: u128,
        from_ns: u64,
        to_ns: u64,
        offset: UtcOffset,
        format: StatementFormat,
        out: &mut impl Write,
    ) -> Result<StatementSummary, StatementError> {
        let opening = match from_ns {
            0 => Balances::default(),
            _ => self.get_balance_at(account_id, from_ns - 1).await?.balances,
        };
        let time = |ns: u64| (rfc3339_from_ns(ns), rfc3339_with_offset(ns, offset));
        match format {
            StatementFormat::Csv => {
                writeln!(out, "{STATEMENT_CSV_HEADER}")?;
                let [dp, cp, dq, cq, n] = balance_fields(&opening);
                let (utc, local) = time(from_ns);
                writeln!(out, "opening,{from_ns},{utc},{local},,,,,,,,,{dp},{cp},{dq},{cq},{n}")?;
            }
            StatementFormat::Json => {
                let head = json!({"account_id": account_id.to_string(), "from_ns": from_ns, "to_ns": to_ns, "utc_offset": offset.suffix(), "opening": balance_json(&opening)});
                let text = head.to_string();
                // The entries array goes inside the same object, written as they come.
                write!(out, "{},\"entries\":[", &text[..text.len() - 1])?;
            }
        }
        let mut closing = opening.clone();
        let mut count = 0u64;
        let mut cursor = from_ns.saturating_sub(1);
        'pages: loop {
            let page = self.list_account_entries(account_id, cursor, STATEMENT_PAGE_ENTRIES, false).await?;
            let transfers = self.page_transfers(&page.entries).await?;
            for e in &page.entries {
                let (counterparty, reference, refund_of) = context(transfers.get(&e.transfer_id), e);
                if e.timestamp_ns > to_ns {
                    break 'pages;
                }
                count += 1;
                closing = e.balances_after.clone();
                let side = if e.is_debit { "debit" } else { "credit" };
                let (utc, local) = time(e.timestamp_ns);
                match format {
                    StatementFormat::Csv => {
                        let [dp, cp, dq, cq, n] = balance_fields(&e.balances_after);
                        let reference = super::files::csv_field(&reference);
                        writeln!(out, "{count},{},{utc},{local},{},{},{},{side},{},{counterparty},{reference},{refund_of},{dp},{cp},{dq},{cq},{n}", e.timestamp_ns, e.transfer_id, e.leg_index, e.kind.name(), e.amount)?;
                    }
                    StatementFormat::Json => {
                        let row = json!({"row": count, "timestamp_ns": e.timestamp_ns, "time_utc": utc, "time_local": local, "transfer_id": e.transfer_id.to_string(), "leg": e.leg_index, "kind": e.kind.name(), "side": side, "amount": e.amount.to_string(), "counterparty": counterparty, "reference": reference, "refund_of": refund_of, "balances_after": balance_json(&e.balances_after)});
                        write!(out, "{}{row}", if count == 1 { "" } else { "," })?;
                    }
                }
            }
            match page.next_cursor_timestamp_ns {
                Some(next) if next <= to_ns => cursor = next,
                _ => break,
            }
        }
        match format {
            StatementFormat::Csv => {
                let [dp, cp, dq, cq, n] = balance_fields(&closing);
                let (utc, local) = time(to_ns);
                writeln!(out, "closing,{to_ns},{utc},{local},,,,,,,,,{dp},{cp},{dq},{cq},{n}")?;
            }
            StatementFormat::Json => writeln!(out, "],\"closing\":{},\"entries_count\":{count}}}", balance_json(&closing))?,
        }
        Ok(StatementSummary { opening, closing, entries: count })
    }
}
