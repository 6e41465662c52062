//! `ledger audit export`: one consistent range of the journal into a directory (see `files.rs`).
//! Streams: memory is a few messages plus one total per asset, whatever the range. The manifest
//! is written last, so a directory without one is an interrupted export.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use ledger_proto::api;
use ledger_proto::api::export_message::Part;

use super::amount::{self, Balances};
use super::files::{self, AssetTotals, HashingWriter, Manifest};
use crate::client::{CallKind, LedgerClient};
use crate::error::ClientError;
use crate::timestamp::UtcOffset;

/// What to export. Zero bounds are open ends (from the first line, to the head).
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportRange {
    pub from_seq: u64,
    pub to_seq: u64,
    pub from_timestamp_ns: u64,
    pub to_timestamp_ns: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server's export breaks the format: {0}")]
    Protocol(String),
    #[error("{0} exists and is not empty: export into a new directory")]
    NotEmpty(String),
}

type Out = HashingWriter<BufWriter<File>>;

fn create(dir: &Path, name: &str, header: Option<&str>) -> Result<Out, ExportError> {
    let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, File::create(dir.join(name))?));
    if let Some(header) = header {
        writeln!(out, "{header}")?;
    }
    Ok(out)
}

fn balances(b: Option<&api::Balance>) -> Result<(Balances, u8), ExportError> {
    let b = b.ok_or_else(|| ExportError::Protocol("an account without balances".into()))?;
    let mut scale = None;
    let mut field = |text: &str| -> Result<u128, ExportError> {
        let (minor, s) = amount::parse(text).ok_or_else(|| ExportError::Protocol(format!("balance {text:?}")))?;
        if *scale.get_or_insert(s) != s {
            return Err(ExportError::Protocol("balances of one account in two scales".into()));
        }
        Ok(minor)
    };
    let parsed = Balances {
        debits_posted: field(&b.debits_posted)?,
        credits_posted: field(&b.credits_posted)?,
        debits_pending: field(&b.debits_pending)?,
        credits_pending: field(&b.credits_pending)?,
    };
    Ok((parsed, scale.unwrap_or(0)))
}

impl LedgerClient {
    /// Exports `range` into `dir` (created; must not hold files). `progress(lines_done,
    /// lines_total)` is called as lines arrive. Returns the manifest written.
    pub async fn export_journal(
        &self,
        range: ExportRange,
        offset: UtcOffset,
        dir: &Path,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Manifest, ExportError> {
        std::fs::create_dir_all(dir)?;
        if std::fs::read_dir(dir)?.next().is_some() {
            return Err(ExportError::NotEmpty(dir.display().to_string()));
        }
        let request = api::ExportJournalRequest {
            from_seq: range.from_seq,
            to_seq: range.to_seq,
            from_timestamp_ns: range.from_timestamp_ns,
            to_timestamp_ns: range.to_timestamp_ns,
        };
        let mut stream = self
            .audit_call("ExportJournal", CallKind::Stream, request, |mut grpc, request| async move {
                grpc.export_journal(request).await
            })
            .await?;
        let next = |m: Result<Option<api::ExportMessage>, tonic::Status>| -> Result<Option<Part>, ExportError> {
            match m {
                Ok(Some(api::ExportMessage { part: Some(part) })) => Ok(Some(part)),
                Ok(Some(_)) => Err(ExportError::Protocol("an empty message".into())),
                Ok(None) => Ok(None),
                Err(status) => Err(ClientError::Rejected { code: status.code(), message: status.message().to_string() }.into()),
            }
        };
        let Some(Part::Header(header)) = next(stream.message().await)? else {
            return Err(ExportError::Protocol("the export does not start with a header".into()));
        };
        let mut writer = ExportWriter::create(dir, offset, &header)?;
        while let Some(part) = next(stream.message().await)? {
            writer.part(part)?;
            let (done, total) = writer.progress();
            progress(done, total);
        }
        writer.finish()
    }
}

/// Writes the files of one export from its messages (the header first, then in order).
pub struct ExportWriter {
    dir: std::path::PathBuf,
    offset: UtcOffset,
    header: api::ExportHeader,
    hash_before: [u8; 32],
    hash_end: [u8; 32],
    journal: Out,
    hashes: Out,
    csv: Out,
    balances_csv: Out,
    lines: u64,
    total: u64,
    legs: u64,
    accounts: u64,
    totals: BTreeMap<String, AssetTotals>,
    trailer: Option<api::ExportTrailer>,
}

impl ExportWriter {
    /// Creates the files in `dir` (which the caller made sure is empty).
    pub fn create(dir: &Path, offset: UtcOffset, header: &api::ExportHeader) -> Result<ExportWriter, ExportError> {
        let hash_before = super::hash32(&header.hash_before, "hash_before")?;
        Ok(ExportWriter {
            dir: dir.to_path_buf(),
            offset,
            header: header.clone(),
            hash_before,
            hash_end: hash_before,
            journal: create(dir, files::JOURNAL, None)?,
            hashes: create(dir, files::HASHES, None)?,
            csv: create(dir, files::JOURNAL_CSV, Some(files::JOURNAL_CSV_HEADER))?,
            balances_csv: create(dir, files::BALANCES_CSV, Some(files::BALANCES_CSV_HEADER))?,
            lines: 0,
            total: (header.to_seq + 1).saturating_sub(header.from_seq),
            legs: 0,
            accounts: 0,
            totals: BTreeMap::new(),
            trailer: None,
        })
    }

    /// Lines written so far, of how many in the range.
    pub fn progress(&self) -> (u64, u64) {
        (self.lines, self.total)
    }

    pub fn part(&mut self, part: Part) -> Result<(), ExportError> {
        match part {
            Part::Lines(batch) => {
                for line in batch.lines {
                    let expected = self.header.from_seq + self.lines;
                    if line.seq != expected {
                        return Err(ExportError::Protocol(format!("line {} where {expected} was due", line.seq)));
                    }
                    let parsed = files::parse_line(&line.line, self.offset)
                        .map_err(|e| ExportError::Protocol(format!("line {}: {e}", line.seq)))?;
                    self.hash_end = super::hash32(&line.hash, "line hash")?;
                    writeln!(self.journal, "{}", line.line)?;
                    writeln!(self.hashes, "{} {}", line.seq, super::hex(&self.hash_end))?;
                    for row in &parsed.csv_rows {
                        writeln!(self.csv, "{row}")?;
                    }
                    self.legs += parsed.csv_rows.len() as u64;
                    self.lines += 1;
                }
            }
            Part::Balances(batch) => {
                for account in batch.accounts {
                    let id = crate::ids::decode_id(&account.account_id).map_err(|e| ExportError::Protocol(e.to_string()))?;
                    let (opening, _) = balances(account.opening.as_ref())?;
                    let (closing, scale) = balances(account.closing.as_ref())?;
                    writeln!(self.balances_csv, "{}", files::balances_row(id, &account.asset, account.code, scale, &opening, &closing))?;
                    let t = self.totals.entry(account.asset.clone()).or_insert(AssetTotals { scale, ..AssetTotals::default() });
                    t.accounts += 1;
                    add(&mut t.sums, &closing).ok_or_else(|| ExportError::Protocol(format!("sums of {} overflow", account.asset)))?;
                    self.accounts += 1;
                }
            }
            Part::Trailer(t) => self.trailer = Some(t),
            Part::Header(_) => return Err(ExportError::Protocol("a second header".into())),
        }
        Ok(())
    }

    /// Checks the counts, writes the trial balance and the manifest (last).
    pub fn finish(self) -> Result<Manifest, ExportError> {
        let ExportWriter { dir, offset, header, hash_before, hash_end, journal, hashes, csv, balances_csv, lines, total, legs, accounts, totals, trailer } = self;
        let trailer = trailer.ok_or_else(|| ExportError::Protocol("the export ended without its trailer".into()))?;
        if (trailer.lines, trailer.accounts) != (lines, accounts) || lines != total {
            return Err(ExportError::Protocol(format!(
                "received {lines} lines and {accounts} accounts; the server sent {} and {}, the range has {total}",
                trailer.lines, trailer.accounts
            )));
        }
        let mut trial = create(&dir, files::TRIAL_BALANCE_CSV, Some(files::TRIAL_BALANCE_CSV_HEADER))?;
        for (asset, t) in &totals {
            writeln!(trial, "{}", files::trial_balance_row(asset, t))?;
        }
        let mut digests = BTreeMap::new();
        for (name, out) in [
            (files::JOURNAL, journal),
            (files::HASHES, hashes),
            (files::JOURNAL_CSV, csv),
            (files::BALANCES_CSV, balances_csv),
            (files::TRIAL_BALANCE_CSV, trial),
        ] {
            digests.insert(name.to_string(), out.finish()?);
        }
        let manifest = Manifest {
            format: files::FORMAT.into(),
            from_seq: header.from_seq,
            to_seq: header.to_seq,
            opening_timestamp_ns: header.opening_timestamp_ns,
            closing_timestamp_ns: header.closing_timestamp_ns,
            hash_before: super::hex(&hash_before),
            hash_end: super::hex(&hash_end),
            utc_offset: offset.suffix(),
            lines,
            legs,
            accounts,
            files: digests,
        };
        let text = serde_json::to_string_pretty(&manifest).map_err(|e| ExportError::Protocol(e.to_string()))?;
        std::fs::write(dir.join(files::MANIFEST), format!("{text}\n"))?;
        Ok(manifest)
    }
}

/// `sums += b`, or None on overflow.
pub fn add(sums: &mut Balances, b: &Balances) -> Option<()> {
    sums.debits_posted = sums.debits_posted.checked_add(b.debits_posted)?;
    sums.credits_posted = sums.credits_posted.checked_add(b.credits_posted)?;
    sums.debits_pending = sums.debits_pending.checked_add(b.debits_pending)?;
    sums.credits_pending = sums.credits_pending.checked_add(b.credits_pending)?;
    Some(())
}
