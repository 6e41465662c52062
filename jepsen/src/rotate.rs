//! `--rotate SECONDS`: every nemesis in turn (`schedule::ALL_NEMESES`), one run each of
//! `--time-limit` seconds, the bank workload in odd cycles and two-phase in even ones, seeds
//! counting up from `--seed`, until the total duration is spent. Writes `summary.json` and
//! `summary.md` (the Jepsen figures of every run and their totals) in the rotation's directory.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::{Value, json};

use crate::run::{Options, run};
use crate::schedule::{ALL_NEMESES, Nemesis};
use crate::workload::Workload;

/// What a rotation repeats; `template.nemeses`, `template.workload`, `template.seed` and
/// `template.dir` are set per run.
pub async fn rotate(template: Options, total_s: u64, nemeses: Vec<Nemesis>) -> anyhow::Result<bool> {
    let root = template.dir.clone();
    std::fs::create_dir_all(&root)?;
    let nemeses = if nemeses.is_empty() { ALL_NEMESES.to_vec() } else { nemeses };
    let began = Instant::now();
    let mut rows: Vec<Value> = Vec::new();
    let mut all_valid = true;
    let mut i = 0usize;
    while began.elapsed().as_secs() < total_s {
        let nemesis = nemeses[i % nemeses.len()];
        let workload = if (i / nemeses.len()) % 2 == 0 { Workload::Bank } else { Workload::TwoPhase };
        let seed = template.seed + i as u64;
        let dir: PathBuf = root.join(format!("{i:03}-{}-{}-seed{seed}", workload.name(), nemesis.name()));
        println!("=== rotation run {i}: {} under {} (seed {seed}), {} s of {total_s} s spent", workload.name(), nemesis.name(), began.elapsed().as_secs());
        let options = Options { workload, nemeses: vec![nemesis], seed, dir: dir.clone(), accept_undecided: template.accept_undecided.clone(), ..template.clone() };
        let outcome = run(options).await;
        let row = match outcome {
            Ok(valid) => {
                all_valid &= valid;
                let results: Value = std::fs::read_to_string(dir.join("results.json")).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
                summarize(&results, nemesis, workload, seed, &dir)
            }
            Err(e) => {
                all_valid = false;
                json!({"nemesis": nemesis.name(), "workload": workload.name(), "seed": seed, "dir": dir, "error": format!("{e:#}"), "valid": false})
            }
        };
        rows.push(row);
        write_summary(&root, &rows, began.elapsed().as_secs(), total_s)?;
        i += 1;
    }
    println!("rotation done: {} runs in {} s; summary in {}", rows.len(), began.elapsed().as_secs(), root.join("summary.md").display());
    print!("{}", std::fs::read_to_string(root.join("summary.md"))?);
    Ok(all_valid)
}

fn verdict(results: &Value, checker: &str) -> Value {
    results["checkers"].as_array().and_then(|cs| cs.iter().find(|c| c["checker"] == checker)).map_or(Value::Null, |c| c["valid"].clone())
}

fn summarize(results: &Value, nemesis: Nemesis, workload: Workload, seed: u64, dir: &std::path::Path) -> Value {
    json!({
        "nemesis": nemesis.name(),
        "workload": workload.name(),
        "seed": seed,
        "dir": dir,
        "seconds": results["ops_duration_ms"].as_u64().unwrap_or(0) / 1000,
        "attempted": results["counts"]["total"],
        "acknowledged": results["counts"]["ok"],
        "failed": results["counts"]["fail"],
        "unknown": results["counts"]["info"],
        "faults_by_class": results["faults_by_class"],
        "lost_acknowledged": results["lost_acknowledged"],
        "double_applied": results["double_applied"],
        "conservation": verdict(results, "bank"),
        "linearizable": verdict(results, "linearizable"),
        "replicas_equal": verdict(results, "replicas"),
        "ledger_time": verdict(results, "ledger_time"),
        "nodes_alive": verdict(results, "nodes_alive"),
        "two_phase": verdict(results, "two_phase"),
        "snapshots": results["snapshots"],
        "undecided": results["undecided"],
        "valid": results["valid"],
    })
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::Bool(true) => "ok".into(),
        Value::Bool(false) => "**FAIL**".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// "ok", or "**FAIL**" with the undecided checkers named (an undecided verdict fails a run
/// unless `--accept-undecided` gave a reason).
fn valid_cell(r: &Value) -> String {
    match (&r["valid"], r["undecided"].as_array().filter(|u| !u.is_empty())) {
        (Value::Bool(false), Some(u)) => format!("**FAIL** (undecided: {})", u.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")),
        (v, _) => cell(v),
    }
}

fn write_summary(root: &std::path::Path, rows: &[Value], spent_s: u64, total_s: u64) -> anyhow::Result<()> {
    let sum = |key: &str| rows.iter().map(|r| r[key].as_u64().unwrap_or(0)).sum::<u64>();
    let mut classes = std::collections::BTreeMap::<String, u64>::new();
    for r in rows {
        if let Some(map) = r["faults_by_class"].as_object() {
            for (k, v) in map {
                *classes.entry(k.clone()).or_default() += v.as_u64().unwrap_or(0);
            }
        }
    }
    let all = |key: &str| rows.iter().all(|r| r[key] == Value::Bool(true) || (key == "two_phase" && r[key].is_null()));
    let totals = json!({
        "runs": rows.len(),
        "seconds_of_load": sum("seconds"),
        "wall_seconds": spent_s,
        "attempted": sum("attempted"),
        "acknowledged": sum("acknowledged"),
        "failed": sum("failed"),
        "unknown": sum("unknown"),
        "faults_by_class": classes,
        "lost_acknowledged": sum("lost_acknowledged"),
        "double_applied": sum("double_applied"),
        "conservation": all("conservation"),
        "linearizable": all("linearizable"),
        "replicas_equal": all("replicas_equal"),
        "ledger_time": all("ledger_time"),
        "nodes_alive": all("nodes_alive"),
        "runs_valid": rows.iter().filter(|r| r["valid"] == Value::Bool(true)).count(),
    });
    std::fs::write(root.join("summary.json"), serde_json::to_string_pretty(&json!({"total_s": total_s, "totals": totals, "runs": rows}))?)?;
    let mut md = String::from(
        "| # | workload | nemesis | seed | s | attempted | ack | fail | unknown | faults | lost acks | double-applied | conservation | linearizable | replicas equal | ledger time | nodes alive | valid |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (i, r) in rows.iter().enumerate() {
        let faults = r["faults_by_class"].as_object().map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")).unwrap_or_default();
        if let Some(e) = r["error"].as_str() {
            md += &format!("| {i} | {} | {} | {} | | | | | | | | | | | | | | **harness error**: {} |\n", cell(&r["workload"]), cell(&r["nemesis"]), r["seed"], e.replace('|', "/").replace('\n', " "));
            continue;
        }
        md += &format!(
            "| {i} | {} | {} | {} | {} | {} | {} | {} | {} | {faults} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&r["workload"]), cell(&r["nemesis"]), r["seed"], r["seconds"], r["attempted"], r["acknowledged"], r["failed"], r["unknown"],
            r["lost_acknowledged"], r["double_applied"], cell(&r["conservation"]), cell(&r["linearizable"]), cell(&r["replicas_equal"]), cell(&r["ledger_time"]), cell(&r["nodes_alive"]), valid_cell(r),
        );
    }
    let faults = classes.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
    md += &format!(
        "| **total** | | {} runs | | {} | {} | {} | {} | {} | {faults} | {} | {} | {} | {} | {} | {} | {} | {} / {} |\n",
        rows.len(), totals["seconds_of_load"], totals["attempted"], totals["acknowledged"], totals["failed"], totals["unknown"],
        totals["lost_acknowledged"], totals["double_applied"], cell(&totals["conservation"]), cell(&totals["linearizable"]), cell(&totals["replicas_equal"]), cell(&totals["ledger_time"]), cell(&totals["nodes_alive"]), totals["runs_valid"], rows.len(),
    );
    std::fs::write(root.join("summary.md"), md)?;
    Ok(())
}
