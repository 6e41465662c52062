//! The short fault-injection runs of CI: 3 real nodes, about 25 s of load per nemesis (kill,
//! pause, partition, flipped byte) on the bank workload, and one two-phase run (holds posted,
//! voided, raced, expired) under kills; each judged by every checker of its workload. Runs one after another (one
//! test) so they do not compete for the 2 cores. Needs the `ledger-node` binary built next to
//! `jepsen` (`cargo build --release --workspace --bins`, done by scripts/test.sh) and root for
//! the partition run's network namespaces.

use std::path::Path;
use std::process::Command;

/// Fewer ok operations than this in 25 s means the run did not really exercise the cluster.
const OK_OPS_MIN: u64 = 300;

fn run(workload: &str, nemesis: &str, seed: u64, dir: &Path) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_jepsen"))
        .args(["--workload", workload, "--nemesis", nemesis, "--nodes", "3", "--time-limit", "25", "--rate", "100", "--seed", &seed.to_string()])
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("run jepsen");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{nemesis}: jepsen failed\n{stdout}\n{stderr}\n{}", node_log_tails(dir));
    let results: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).expect("results.json")).expect("json");
    assert_eq!(results["valid"], true, "{nemesis}: {results:#}");
    for checker in results["checkers"].as_array().expect("checkers") {
        assert_eq!(checker["valid"], true, "{nemesis}: checker {checker:#}");
    }
    let ok = results["counts"]["ok"].as_u64().expect("ok count");
    assert!(ok >= OK_OPS_MIN, "{nemesis}: only {ok} ok operations\n{stdout}");
    assert!(results["faults_injected"].as_u64().expect("faults") >= 1, "{nemesis}: no fault injected\n{stdout}");
    // The small snapshot threshold (`--snapshot-entries`, 300) is reached: snapshots are built
    // (and logs purged behind them) while the faults run.
    assert!(results["snapshots"]["built"].as_u64().expect("snapshots built") >= 1, "{nemesis}: no snapshot built\n{stdout}");
    for file in ["history.jsonl", "timeline.jsonl", "report.html"] {
        assert!(dir.join(file).metadata().is_ok_and(|m| m.len() > 0), "{nemesis}: {file} missing");
    }
    results
}

#[test]
fn short_runs_under_kill_pause_partition_and_a_flipped_byte_pass_every_checker() {
    let root = tempfile_dir();
    let runs = [("bank", "kill", 1), ("bank", "pause", 2), ("bank", "partition", 3), ("bank", "corrupt", 4), ("two-phase", "kill", 5)];
    for (workload, nemesis, seed) in runs {
        let results = run(workload, nemesis, seed, &root.join(format!("{workload}-{nemesis}")));
        println!("{workload} {nemesis}: {}; snapshots {}", results["counts"], results["snapshots"]);
        if workload == "two-phase" {
            let checkers = results["checkers"].as_array().expect("checkers");
            assert!(checkers.iter().any(|c| c["checker"] == "two_phase"), "the two-phase checker ran: {results:#}");
            // The run exercised every path: posts and voids that won, and late ones refused.
            let history = std::fs::read_to_string(root.join("two-phase-kill/history.jsonl")).expect("history");
            let has = |kind: &str, tail: &str| history.lines().any(|l| l.contains(&format!("{{\"{kind}\"")) && l.contains(tail));
            assert!(has("post", "\"outcome\":\"ok\""), "no post acknowledged");
            assert!(has("void", "\"outcome\":\"ok\""), "no void acknowledged");
            assert!(history.contains("pending_transfer_expired"), "no late post or void refused as expired");
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("jepsen-short-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The last lines of each node's log, for a failure message (the run directory is left behind
/// too, but CI keeps only the output).
fn node_log_tails(dir: &Path) -> String {
    let mut out = String::new();
    for slot in 0..16 {
        let Ok(text) = std::fs::read_to_string(dir.join(format!("node-slot{slot}.log"))) else { continue };
        let lines: Vec<&str> = text.lines().collect();
        out += &format!("--- node-slot{slot}.log (last 15 lines of {})\n{}\n", dir.display(), lines[lines.len().saturating_sub(15)..].join("\n"));
    }
    out
}
