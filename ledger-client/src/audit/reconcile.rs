//! The daily reconciliation report, from an export (offline): per asset, the custody accounts
//! (money held at banks: debit-normal) against the customer and merchant liabilities
//! (credit-normal), both at the export's closing balances. A difference is money in neither:
//! clearing, fees, holds in flight, or an error to investigate.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::amount;
use super::files;
use super::verify::split_csv;

pub const RECONCILIATION_CSV_HEADER: &str = "asset,custody_accounts,custody,liability_accounts,liabilities,difference";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetReconciliation {
    pub custody_accounts: u64,
    /// Σ (debits − credits) posted of the custody accounts, in minor units.
    pub custody_minor: i128,
    pub liability_accounts: u64,
    /// Σ (credits − debits) posted of the liability accounts.
    pub liabilities_minor: i128,
    pub scale: u8,
}

impl AssetReconciliation {
    pub fn difference_minor(&self) -> i128 {
        self.custody_minor - self.liabilities_minor
    }
}

fn signed(minor: i128, scale: u8) -> String {
    let text = amount::format(minor.unsigned_abs(), scale);
    if minor < 0 { format!("-{text}") } else { text }
}

pub fn csv_row(asset: &str, r: &AssetReconciliation) -> String {
    format!(
        "{},{},{},{},{},{}",
        files::csv_field(asset),
        r.custody_accounts,
        signed(r.custody_minor, r.scale),
        r.liability_accounts,
        signed(r.liabilities_minor, r.scale),
        signed(r.difference_minor(), r.scale)
    )
}

/// Reads `balances.csv` of an export directory (verify it first) and reconciles by account code.
pub fn reconcile(dir: &Path, custody_codes: &BTreeSet<u32>, liability_codes: &BTreeSet<u32>) -> Result<BTreeMap<String, AssetReconciliation>, String> {
    let file = std::fs::File::open(dir.join(files::BALANCES_CSV)).map_err(|e| format!("{}: {e}", files::BALANCES_CSV))?;
    let mut report: BTreeMap<String, AssetReconciliation> = BTreeMap::new();
    for (i, line) in BufReader::new(file).lines().enumerate().skip(1) {
        let line = line.map_err(|e| e.to_string())?;
        let place = || format!("{} line {}", files::BALANCES_CSV, i + 1);
        let f = split_csv(&line);
        if f.len() != 11 {
            return Err(format!("{}: not a balances row", place()));
        }
        let code: u32 = f[2].parse().map_err(|_| format!("{}: code", place()))?;
        let (custody, liability) = (custody_codes.contains(&code), liability_codes.contains(&code));
        if !custody && !liability {
            continue;
        }
        let value = |k: usize| amount::parse(&f[k]).ok_or_else(|| format!("{}: amount {:?}", place(), f[k]));
        let ((debits, scale), (credits, _)) = (value(7)?, value(8)?);
        let net = i128::try_from(credits).ok().zip(i128::try_from(debits).ok()).map(|(c, d)| c - d).ok_or_else(|| format!("{}: too large", place()))?;
        let r = report.entry(f[1].clone()).or_insert(AssetReconciliation { scale, ..AssetReconciliation::default() });
        if custody {
            r.custody_accounts += 1;
            r.custody_minor -= net;
        } else {
            r.liability_accounts += 1;
            r.liabilities_minor += net;
        }
    }
    Ok(report)
}
