//! `ledger audit verify DIR`: checks an export offline, with no server. Recomputes the hash chain
//! from the lines, re-derives the CSV rows, carries every opening balance through every leg to the
//! closing balances, re-derives the trial balance, and checks each file's SHA-256 against the
//! manifest. Stops at the first discrepancy and names the file, line and field.
//!
//! Memory: one balance per account of the export; the journal is read a line at a time.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::amount::{self, Balances};
use super::files::{self, AssetTotals, Manifest};
use crate::timestamp::UtcOffset;

/// The first thing found wrong: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {what}")]
pub struct Discrepancy {
    pub place: String,
    pub what: String,
}

fn wrong(place: impl Into<String>, what: impl Into<String>) -> Discrepancy {
    Discrepancy { place: place.into(), what: what.into() }
}

/// A head pinned earlier (`seq:hash`), to check the export's chain against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    pub seq: u64,
    pub hash: [u8; 32],
}

impl Pin {
    pub fn parse(text: &str) -> Result<Pin, String> {
        let (seq, hash) = text.split_once(':').ok_or("a pin is seq:hash (from `ledger audit head`)")?;
        Ok(Pin {
            seq: seq.parse().map_err(|_| format!("{seq:?} is not a sequence number"))?,
            hash: super::unhex32(hash).ok_or("the hash is 64 hex digits")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck {
    NotGiven,
    Matched,
    /// The pinned line is outside the exported range (and not the line before it).
    OutsideRange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub manifest: Manifest,
    pub assets: usize,
    pub pin: PinCheck,
}

#[derive(Debug, PartialEq, Eq)]
struct Account {
    asset: String,
    scale: u8,
    opening: Balances,
    closing: Balances,
    derived: Balances,
    /// Line of balances.csv, for messages.
    row: usize,
}

/// Splits one CSV record written by `files` (RFC 4180 quotes; no newlines inside fields).
pub fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().expect("one field").push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

fn open(dir: &Path, name: &str) -> Result<BufReader<File>, Discrepancy> {
    File::open(dir.join(name)).map(BufReader::new).map_err(|e| wrong(name, format!("cannot be read: {e}")))
}

/// Lines of a file with 1-based numbers.
fn numbered(dir: &Path, name: &'static str) -> Result<impl Iterator<Item = Result<(usize, String), Discrepancy>>, Discrepancy> {
    Ok(open(dir, name)?.lines().enumerate().map(move |(i, l)| l.map(|l| (i + 1, l)).map_err(|e| wrong(format!("{name} line {}", i + 1), e.to_string()))))
}

pub fn verify(dir: &Path, pin: Option<Pin>) -> Result<Report, Discrepancy> {
    let (manifest, offset, hash_before, hash_end) = read_manifest(dir)?;
    let mut accounts = read_balances(dir)?;
    let mut pin_check = match pin {
        None => PinCheck::NotGiven,
        Some(p) if p.seq + 1 == manifest.from_seq => {
            if p.hash != hash_before {
                return Err(wrong(files::MANIFEST, format!("hash_before differs from the pinned head at seq {}", p.seq)));
            }
            PinCheck::Matched
        }
        Some(_) => PinCheck::OutsideRange,
    };
    let walked = walk_journal(dir, &manifest, offset, hash_before, pin, &mut accounts)?;
    if walked.pin_matched {
        pin_check = PinCheck::Matched;
    }
    let (lines, legs, previous) = (walked.lines, walked.legs, walked.end_hash);
    let expected_lines = (manifest.to_seq + 1).saturating_sub(manifest.from_seq);
    if lines != expected_lines || lines != manifest.lines || legs != manifest.legs {
        return Err(wrong(files::MANIFEST, format!("says {} lines ({expected_lines} in its range) and {} legs; the journal has {lines} and {legs}", manifest.lines, manifest.legs)));
    }
    if previous != hash_end {
        return Err(wrong(files::MANIFEST, format!("hash_end {} but the chain ends at {}", manifest.hash_end, super::hex(&previous))));
    }
    let totals = closing_totals(&accounts)?;
    if manifest.accounts != accounts.len() as u64 {
        return Err(wrong(files::MANIFEST, format!("says {} accounts; balances.csv has {}", manifest.accounts, accounts.len())));
    }
    check_trial_balance(dir, &totals)?;
    check_digests(dir, &manifest)?;
    Ok(Report { assets: totals.len(), manifest, pin: pin_check })
}

/// The manifest, its time offset and the chain hashes at both ends of the range.
fn read_manifest(dir: &Path) -> Result<(Manifest, UtcOffset, [u8; 32], [u8; 32]), Discrepancy> {
    let manifest_text = std::fs::read_to_string(dir.join(files::MANIFEST)).map_err(|e| wrong(files::MANIFEST, format!("cannot be read ({e}): an interrupted export has none")))?;
    let manifest: Manifest = serde_json::from_str(&manifest_text).map_err(|e| wrong(files::MANIFEST, format!("not a manifest: {e}")))?;
    if manifest.format != files::FORMAT {
        return Err(wrong(files::MANIFEST, format!("format {:?}, this verifier reads {:?}", manifest.format, files::FORMAT)));
    }
    let offset = UtcOffset::parse(&manifest.utc_offset).map_err(|e| wrong(files::MANIFEST, e))?;
    let hash_before = super::unhex32(&manifest.hash_before).ok_or_else(|| wrong(files::MANIFEST, "hash_before is not 64 hex digits"))?;
    let hash_end = super::unhex32(&manifest.hash_end).ok_or_else(|| wrong(files::MANIFEST, "hash_end is not 64 hex digits"))?;
    Ok((manifest, offset, hash_before, hash_end))
}

/// What the walk of the journal found.
struct Walked {
    lines: u64,
    legs: u64,
    /// The chain hash after the last line.
    end_hash: [u8; 32],
    /// A pinned head inside the range was found on its line.
    pin_matched: bool,
}

/// The chain, the CSV rows and the balances, line by line.
fn walk_journal(
    dir: &Path,
    manifest: &Manifest,
    offset: UtcOffset,
    hash_before: [u8; 32],
    pin: Option<Pin>,
    accounts: &mut BTreeMap<u128, Account>,
) -> Result<Walked, Discrepancy> {
    let mut hashes = numbered(dir, files::HASHES)?;
    let mut csv = numbered(dir, files::JOURNAL_CSV)?;
    match csv.next().transpose()? {
        Some((_, header)) if header == files::JOURNAL_CSV_HEADER => {}
        _ => return Err(wrong(format!("{} line 1", files::JOURNAL_CSV), "not the journal.csv header")),
    }
    let mut previous = hash_before;
    let mut pin_matched = false;
    let (mut lines, mut legs) = (0u64, 0u64);
    for item in numbered(dir, files::JOURNAL)? {
        let (number, line) = item?;
        let seq = manifest.from_seq + lines;
        let place = format!("{} line {number}", files::JOURNAL);
        let parsed = files::parse_line(&line, offset).map_err(|e| wrong(&place, e))?;
        if parsed.seq != seq {
            return Err(wrong(&place, format!("holds seq {} where seq {seq} is due (a line is missing, added or moved)", parsed.seq)));
        }
        let mut hasher = Sha256::new();
        hasher.update(previous);
        hasher.update(line.as_bytes());
        let hash: [u8; 32] = hasher.finalize().into();
        let listed = hashes.next().transpose()?.ok_or_else(|| wrong(files::HASHES, format!("ends before seq {seq}")))?;
        if listed.1 != format!("{seq} {}", super::hex(&hash)) {
            return Err(wrong(&place, format!("seq {seq} does not hash to the chain hash listed at {} line {} (the line or the list was changed)", files::HASHES, listed.0)));
        }
        if let Some(p) = pin.filter(|p| p.seq == seq) {
            if p.hash != hash {
                return Err(wrong(&place, format!("seq {seq} hashes to {}, the pinned head says {}", super::hex(&hash), super::hex(&p.hash))));
            }
            pin_matched = true;
        }
        for expected in &parsed.csv_rows {
            let found = csv.next().transpose()?.ok_or_else(|| wrong(files::JOURNAL_CSV, format!("ends before the legs of seq {seq}")))?;
            if &found.1 != expected {
                return Err(wrong(format!("{} line {}", files::JOURNAL_CSV, found.0), format!("is {:?}; seq {seq} of the journal gives {expected:?}", found.1)));
            }
        }
        apply_line(&parsed, accounts).map_err(|what| wrong(&place, what))?;
        legs += parsed.legs.len() as u64;
        lines += 1;
        previous = hash;
    }
    if let Some((number, _)) = hashes.next().transpose()? {
        return Err(wrong(format!("{} line {number}", files::HASHES), "more hashes than journal lines"));
    }
    if let Some((number, row)) = csv.next().transpose()? {
        return Err(wrong(format!("{} line {number}", files::JOURNAL_CSV), format!("{row:?} belongs to no journal line")));
    }
    Ok(Walked { lines, legs, end_hash: previous, pin_matched })
}

/// Every account's closing balances as opening plus the journal's legs, and the per-asset sums.
fn closing_totals(accounts: &BTreeMap<u128, Account>) -> Result<BTreeMap<String, AssetTotals>, Discrepancy> {
    let mut totals: BTreeMap<String, AssetTotals> = BTreeMap::new();
    for (id, a) in accounts {
        if a.derived != a.closing {
            return Err(wrong(format!("{} line {}", files::BALANCES_CSV, a.row), format!("account {id} closes at {:?}; opening plus the journal's legs give {:?}", amount::columns(&a.closing, a.scale), amount::columns(&a.derived, a.scale))));
        }
        let t = totals.entry(a.asset.clone()).or_insert(AssetTotals { scale: a.scale, ..AssetTotals::default() });
        t.accounts += 1;
        super::export::add(&mut t.sums, &a.closing).ok_or_else(|| wrong(files::BALANCES_CSV, format!("the sums of {} overflow", a.asset)))?;
    }
    Ok(totals)
}

/// trial_balance.csv is the closing sums, row for row, and every asset balances.
fn check_trial_balance(dir: &Path, totals: &BTreeMap<String, AssetTotals>) -> Result<(), Discrepancy> {
    let mut trial = numbered(dir, files::TRIAL_BALANCE_CSV)?;
    match trial.next().transpose()? {
        Some((_, header)) if header == files::TRIAL_BALANCE_CSV_HEADER => {}
        _ => return Err(wrong(format!("{} line 1", files::TRIAL_BALANCE_CSV), "not the trial_balance.csv header")),
    }
    for (asset, t) in totals {
        let expected = files::trial_balance_row(asset, t);
        let found = trial.next().transpose()?.ok_or_else(|| wrong(files::TRIAL_BALANCE_CSV, format!("has no row for {asset}")))?;
        if found.1 != expected {
            return Err(wrong(format!("{} line {}", files::TRIAL_BALANCE_CSV, found.0), format!("is {:?}; the closing balances give {expected:?}", found.1)));
        }
        let s = &t.sums;
        if s.debits_posted != s.credits_posted || s.debits_pending != s.credits_pending {
            return Err(wrong(format!("{} line {}", files::TRIAL_BALANCE_CSV, found.0), format!("{asset} does not balance: debits {} vs credits {}", amount::format(s.debits_posted, t.scale), amount::format(s.credits_posted, t.scale))));
        }
    }
    if let Some((number, row)) = trial.next().transpose()? {
        return Err(wrong(format!("{} line {number}", files::TRIAL_BALANCE_CSV), format!("{row:?} is for no asset of balances.csv")));
    }
    Ok(())
}

/// Last, the bytes of every file against the manifest (content errors above name the line).
fn check_digests(dir: &Path, manifest: &Manifest) -> Result<(), Discrepancy> {
    let listed: std::collections::BTreeSet<&str> = manifest.files.keys().map(String::as_str).collect();
    if listed != files::DATA_FILES.into_iter().collect() {
        return Err(wrong(files::MANIFEST, format!("lists {listed:?}, not the export's files")));
    }
    for name in files::DATA_FILES {
        let digest = sha256_file(&dir.join(name)).map_err(|e| wrong(name, e.to_string()))?;
        if Some(&digest) != manifest.files.get(name) {
            return Err(wrong(name, format!("SHA-256 {digest} differs from the manifest's {}", manifest.files[name])));
        }
    }
    Ok(())
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(super::hex(&hasher.finalize()))
}

fn read_balances(dir: &Path) -> Result<BTreeMap<u128, Account>, Discrepancy> {
    let mut accounts = BTreeMap::new();
    let mut rows = numbered(dir, files::BALANCES_CSV)?;
    match rows.next().transpose()? {
        Some((_, header)) if header == files::BALANCES_CSV_HEADER => {}
        _ => return Err(wrong(format!("{} line 1", files::BALANCES_CSV), "not the balances.csv header")),
    }
    let mut last_id = None;
    for item in rows {
        let (number, row) = item?;
        let place = format!("{} line {number}", files::BALANCES_CSV);
        let fields = split_csv(&row);
        if fields.len() != 11 {
            return Err(wrong(&place, format!("has {} fields, not 11", fields.len())));
        }
        let id: u128 = fields[0].parse().map_err(|_| wrong(&place, "account_id is not a number"))?;
        if last_id.is_some_and(|last| last >= id) {
            return Err(wrong(&place, "accounts are not in increasing id order (a row was moved or repeated)"));
        }
        last_id = Some(id);
        let mut scale = None;
        let mut value = |i: usize| -> Result<u128, Discrepancy> {
            let (minor, s) = amount::parse(&fields[i]).ok_or_else(|| wrong(&place, format!("{:?} is not an amount", fields[i])))?;
            if *scale.get_or_insert(s) != s {
                return Err(wrong(&place, "amounts in two scales"));
            }
            Ok(minor)
        };
        let opening = Balances { debits_posted: value(3)?, credits_posted: value(4)?, debits_pending: value(5)?, credits_pending: value(6)? };
        let closing = Balances { debits_posted: value(7)?, credits_posted: value(8)?, debits_pending: value(9)?, credits_pending: value(10)? };
        let scale = scale.unwrap_or(0);
        accounts.insert(id, Account { asset: fields[1].clone(), scale, opening, closing, derived: opening, row: number });
    }
    Ok(accounts)
}

/// The accounts an account change names (`account_updated`, `external_ref_rebound`): changes move
/// no money, but each must name accounts of the export (accounts are never deleted).
fn changed_accounts(parsed: &files::ParsedLine) -> Result<Vec<u128>, String> {
    let fields: &[&str] = match parsed.event_type.as_str() {
        "account_updated" => &["account_id"],
        "external_ref_rebound" => &["from_account_id", "to_account_id"],
        _ => return Ok(Vec::new()),
    };
    let mut ids = Vec::new();
    for field in fields {
        match parsed.event.get(*field) {
            None | Some(serde_json::Value::Null) if parsed.event_type == "external_ref_rebound" => {}
            value => ids.push(value.and_then(|v| v.as_str()).and_then(|t| t.parse().ok()).ok_or(format!("{field} is not an id"))?),
        }
    }
    Ok(ids)
}

fn apply_line(parsed: &files::ParsedLine, accounts: &mut BTreeMap<u128, Account>) -> Result<(), String> {
    for id in changed_accounts(parsed)? {
        if !accounts.contains_key(&id) {
            return Err(format!("account {id} is changed here but missing from balances.csv"));
        }
    }
    if parsed.event_type == "account_created" {
        let id: u128 = parsed.event.get("account_id").and_then(|v| v.as_str()).and_then(|t| t.parse().ok()).ok_or("account_id is not an id")?;
        let account = accounts.get(&id).ok_or_else(|| format!("account {id} is created here but missing from balances.csv"))?;
        if account.opening != Balances::default() {
            return Err(format!("account {id} is created in the range but opens with {:?}", amount::columns(&account.opening, account.scale)));
        }
    }
    for leg in &parsed.legs {
        for (id, is_debit) in [(leg.debit_account_id, true), (leg.credit_account_id, false)] {
            let a = accounts.get_mut(&id).ok_or_else(|| format!("account {id} is not in balances.csv"))?;
            if a.asset != leg.asset {
                return Err(format!("account {id} is in {}, the leg in {}", a.asset, leg.asset));
            }
            for (amount, scale) in [leg.posted, leg.pending_added, leg.pending_released] {
                if scale != a.scale {
                    return Err(format!("amount {} has scale {scale}; account {id} has {}", amount::format(amount, scale), a.scale));
                }
            }
            let b = &mut a.derived;
            let (posted, pending) = if is_debit { (&mut b.debits_posted, &mut b.debits_pending) } else { (&mut b.credits_posted, &mut b.credits_pending) };
            *posted = posted.checked_add(leg.posted.0).ok_or_else(|| format!("account {id} overflows"))?;
            *pending = pending
                .checked_add(leg.pending_added.0)
                .and_then(|p| p.checked_sub(leg.pending_released.0))
                .ok_or_else(|| format!("account {id} releases more than it holds"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::UtcOffset;

    fn known(ids: &[u128]) -> BTreeMap<u128, Account> {
        let account = |row| Account { asset: "CNY".into(), scale: 2, opening: Balances::default(), closing: Balances::default(), derived: Balances::default(), row };
        ids.iter().map(|&id| (id, account(id as usize))).collect()
    }

    fn line(event: &str) -> files::ParsedLine {
        files::parse_line(&format!("{{\"seq\":1,\"timestamp_ns\":5,\"event\":{event}}}"), UtcOffset::parse("+00:00").unwrap()).unwrap()
    }

    /// Account changes move no money; each must name accounts of the export.
    #[test]
    fn account_changes_verify_when_they_name_exported_accounts() {
        let mut accounts = known(&[2, 3]);
        let updated = r#"{"type":"account_updated","account_id":"2","before":{"code":1,"overdraft_limit":"0.00","metadata":{}},"after":{"code":2,"overdraft_limit":"0.00","metadata":{}},"reason":"","actor":""}"#;
        let moved = r#"{"type":"external_ref_rebound","external_ref":"+86","from_account_id":"2","to_account_id":"3","reason":"","actor":""}"#;
        let released = r#"{"type":"external_ref_rebound","external_ref":"+86","from_account_id":"3","to_account_id":null,"reason":"","actor":""}"#;
        for event in [updated, moved, released] {
            assert_eq!(apply_line(&line(event), &mut accounts), Ok(()), "{event}");
        }
        assert_eq!(accounts, known(&[2, 3]), "no balance changes");
        let stray = moved.replace("\"3\"", "\"9\"");
        assert_eq!(apply_line(&line(&stray), &mut accounts), Err("account 9 is changed here but missing from balances.csv".into()));
        let broken = updated.replace("\"account_id\":\"2\"", "\"account_id\":7");
        assert_eq!(apply_line(&line(&broken), &mut accounts), Err("account_id is not an id".into()));
    }
}
