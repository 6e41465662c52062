//! The files of an export directory and their exact formats. The exporter writes them and the
//! verifier re-derives them from the same functions' rules, so the two cannot drift apart.
//!
//! | file | content |
//! |---|---|
//! | `journal.jsonl` | the journal lines of the range, verbatim: the bytes the chain hashes |
//! | `journal.hashes` | `seq hash` per line: the chain hash after each line (hex) |
//! | `journal.csv` | one row per leg of every movement, derived from the lines |
//! | `balances.csv` | every account existing at the end: opening and closing balances |
//! | `trial_balance.csv` | per asset: the sums of the closing balances; debits equal credits |
//! | `manifest.json` | range, chain hashes at both ends, counts, offset, SHA-256 of every file |

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};
use ledger_core::journal::MovementLeg;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::amount::Balances;
use crate::timestamp::{UtcOffset, rfc3339_from_ns, rfc3339_with_offset};

pub const JOURNAL: &str = "journal.jsonl";
pub const HASHES: &str = "journal.hashes";
pub const JOURNAL_CSV: &str = "journal.csv";
pub const BALANCES_CSV: &str = "balances.csv";
pub const TRIAL_BALANCE_CSV: &str = "trial_balance.csv";
pub const MANIFEST: &str = "manifest.json";
/// Every file the manifest lists, in the order they are written.
pub const DATA_FILES: [&str; 5] = [JOURNAL, HASHES, JOURNAL_CSV, BALANCES_CSV, TRIAL_BALANCE_CSV];
pub const FORMAT: &str = "ledger-audit-export/1";

pub const JOURNAL_CSV_HEADER: &str = "seq,timestamp_ns,time_utc,time_local,transfer_id,pending_id,idempotency_key,asset,code,leg,kind,debit_account_id,debit_account_code,credit_account_id,credit_account_code,posted,pending_added,pending_released";
pub const BALANCES_CSV_HEADER: &str = "account_id,asset,code,opening_debits_posted,opening_credits_posted,opening_debits_pending,opening_credits_pending,closing_debits_posted,closing_credits_posted,closing_debits_pending,closing_credits_pending";
pub const TRIAL_BALANCE_CSV_HEADER: &str = "asset,accounts,debits_posted,credits_posted,debits_pending,credits_pending,posted_difference,pending_difference";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub from_seq: u64,
    pub to_seq: u64,
    pub opening_timestamp_ns: u64,
    pub closing_timestamp_ns: u64,
    /// Chain hash before the first line of the range, and after its last.
    pub hash_before: String,
    pub hash_end: String,
    pub utc_offset: String,
    pub lines: u64,
    pub legs: u64,
    pub accounts: u64,
    /// File name → SHA-256 (hex) of its bytes.
    pub files: BTreeMap<String, String>,
}

/// A writer that hashes what it writes.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new() }
    }
    pub fn finish(mut self) -> io::Result<String> {
        self.inner.flush()?;
        Ok(super::hex(&self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// RFC 4180 quoting when needed (idempotency keys and assets are free text).
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn text<'a>(value: &'a Value, field: &str) -> Result<&'a str, String> {
    value.get(field).and_then(Value::as_str).ok_or_else(|| format!("field {field} missing or not a string"))
}

fn number(value: &Value, field: &str) -> Result<u64, String> {
    value.get(field).and_then(Value::as_u64).ok_or_else(|| format!("field {field} missing or not a number"))
}

/// One leg of a movement, as the verifier uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegAmounts {
    pub asset: String,
    pub debit_account_id: u128,
    pub credit_account_id: u128,
    pub posted: (u128, u8),
    pub pending_added: (u128, u8),
    pub pending_released: (u128, u8),
}

/// A parsed journal line: its seq, time, and (for movements) the CSV rows and leg amounts.
pub struct ParsedLine {
    pub seq: u64,
    pub timestamp_ns: u64,
    pub event_type: String,
    pub event: Value,
    pub csv_rows: Vec<String>,
    pub legs: Vec<LegAmounts>,
}

pub fn parse_line(line: &str, offset: UtcOffset) -> Result<ParsedLine, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let seq = number(&value, "seq")?;
    let timestamp_ns = number(&value, "timestamp_ns")?;
    let event = value.get("event").cloned().ok_or("field event missing")?;
    let event_type = text(&event, "type")?.to_string();
    let mut csv_rows = Vec::new();
    let mut legs = Vec::new();
    if event_type == "movement" {
        let asset = text(&event, "asset")?;
        let transfer_id = text(&event, "transfer_id")?;
        let pending_id = event.get("pending_id").and_then(Value::as_str).unwrap_or("");
        let key = text(&event, "idempotency_key")?;
        let code = number(&event, "code")?;
        let (utc, local) = (rfc3339_from_ns(timestamp_ns), rfc3339_with_offset(timestamp_ns, offset));
        // The legs in the node's own schema (ledger-core `journal::MovementLeg`): a line the
        // node could not have written is refused here; the hashes are re-derived from the bytes.
        let movement_legs: Vec<MovementLeg> = event
            .get("legs")
            .cloned()
            .map(serde_json::from_value)
            .ok_or("field legs missing")?
            .map_err(|e| format!("legs: {e}"))?;
        for leg in &movement_legs {
            let amount = |field: &str, t: &str| -> Result<(u128, u8), String> {
                super::amount::parse(t).ok_or_else(|| format!("{field} {t:?} is not a decimal"))
            };
            let id = |field: &str, t: &str| -> Result<u128, String> { t.parse().map_err(|_| format!("{field} {t:?} is not an id")) };
            legs.push(LegAmounts {
                asset: asset.to_string(),
                debit_account_id: id("debit_account_id", &leg.debit_account_id)?,
                credit_account_id: id("credit_account_id", &leg.credit_account_id)?,
                posted: amount("posted", &leg.posted)?,
                pending_added: amount("pending_added", &leg.pending_added)?,
                pending_released: amount("pending_released", &leg.pending_released)?,
            });
            csv_rows.push(
                [
                    seq.to_string(),
                    timestamp_ns.to_string(),
                    utc.clone(),
                    local.clone(),
                    transfer_id.to_string(),
                    pending_id.to_string(),
                    csv_field(key),
                    csv_field(asset),
                    code.to_string(),
                    leg.leg.to_string(),
                    leg.kind.clone(),
                    leg.debit_account_id.clone(),
                    leg.debit_account_code.to_string(),
                    leg.credit_account_id.clone(),
                    leg.credit_account_code.to_string(),
                    leg.posted.clone(),
                    leg.pending_added.clone(),
                    leg.pending_released.clone(),
                ]
                .join(","),
            );
        }
    }
    Ok(ParsedLine { seq, timestamp_ns, event_type, event, csv_rows, legs })
}

pub fn balances_row(account_id: u128, asset: &str, code: u32, scale: u8, opening: &Balances, closing: &Balances) -> String {
    let mut fields = vec![account_id.to_string(), csv_field(asset), code.to_string()];
    fields.extend(super::amount::columns(opening, scale));
    fields.extend(super::amount::columns(closing, scale));
    fields.join(",")
}

/// Per asset: accounts, the four closing sums, and the scale they are written in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetTotals {
    pub accounts: u64,
    pub sums: Balances,
    pub scale: u8,
}

pub fn trial_balance_row(asset: &str, totals: &AssetTotals) -> String {
    let s = &totals.sums;
    let difference = |a: u128, b: u128| {
        let text = super::amount::format(a.abs_diff(b), totals.scale);
        if a < b { format!("-{text}") } else { text }
    };
    let mut fields = vec![csv_field(asset), totals.accounts.to_string()];
    fields.extend(super::amount::columns(s, totals.scale));
    fields.push(difference(s.debits_posted, s.credits_posted));
    fields.push(difference(s.debits_pending, s.credits_pending));
    fields.join(",")
}
