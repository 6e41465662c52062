//! The HTML report of a run: verdicts, counts, and latency over time with the fault windows
//! shaded and failures marked. One self-contained file (inline SVG), viewable offline.

use std::fmt::Write;

use crate::checker::Verdict;
use crate::history::{Completed, Outcome};
use crate::schedule::Window;

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 360.0;
const MARGIN: f64 = 40.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn fault_name(w: &Window) -> String {
    let json = serde_json::to_value(&w.fault).unwrap_or_default();
    json.get("fault").and_then(|f| f.as_str()).unwrap_or("fault").to_string()
}

/// Counts of ok / fail / info completions.
pub fn counts(ops: &[Completed]) -> (usize, usize, usize) {
    let count = |o: Outcome| ops.iter().filter(|op| op.outcome == o).count();
    (count(Outcome::Ok), count(Outcome::Fail), count(Outcome::Info))
}

pub fn render(title: &str, ops: &[Completed], windows: &[Window], verdicts: &[Verdict]) -> String {
    let end_ns = ops.iter().map(|o| if o.complete_ns == u64::MAX { o.invoke_ns } else { o.complete_ns }).max().unwrap_or(1).max(1);
    let end_ns = end_ns.max(windows.iter().map(|w| w.end_ms * 1_000_000).max().unwrap_or(0));
    let mut latencies_ms: Vec<f64> = ops
        .iter()
        .filter(|o| o.complete_ns != u64::MAX)
        .map(|o| (o.complete_ns - o.invoke_ns) as f64 / 1e6)
        .collect();
    latencies_ms.sort_by(f64::total_cmp);
    // Scale to the 99.9th percentile so one outlier does not flatten the plot.
    let top_ms = latencies_ms.get(latencies_ms.len().saturating_sub(1) * 999 / 1000).copied().unwrap_or(1.0).max(1.0);
    let x = |ns: u64| MARGIN + (ns as f64 / end_ns as f64) * (WIDTH - 2.0 * MARGIN);
    let y = |ms: f64| HEIGHT - MARGIN - (ms.min(top_ms) / top_ms) * (HEIGHT - 2.0 * MARGIN);

    let mut svg = String::new();
    let _ = write!(svg, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="11">"#);
    for w in windows {
        let (x0, x1) = (x(w.start_ms * 1_000_000), x(w.end_ms * 1_000_000));
        let _ = write!(
            svg,
            r##"<rect class="fault" x="{x0:.1}" y="{MARGIN}" width="{:.1}" height="{:.1}" fill="#f4cccc" opacity="0.6"/><text x="{x0:.1}" y="{:.1}">{}</text>"##,
            (x1 - x0).max(1.0),
            HEIGHT - 2.0 * MARGIN,
            MARGIN - 4.0,
            escape(&fault_name(w))
        );
    }
    for o in ops {
        let (cx, cy, color) = match o.outcome {
            Outcome::Ok => (x(o.invoke_ns), y((o.complete_ns - o.invoke_ns) as f64 / 1e6), "#2a7a2a"),
            Outcome::Fail => (x(o.invoke_ns), y((o.complete_ns - o.invoke_ns) as f64 / 1e6), "#cc2222"),
            // Unknown outcomes sit on the top line: they never finished (or timed out).
            Outcome::Info | Outcome::Invoke => (x(o.invoke_ns), MARGIN, "#e69500"),
        };
        let _ = write!(svg, r#"<circle class="{:?}" cx="{cx:.1}" cy="{cy:.1}" r="1.5" fill="{color}"/>"#, o.outcome);
    }
    let _ = write!(
        svg,
        r#"<line x1="{MARGIN}" y1="{b}" x2="{r}" y2="{b}" stroke="black"/><line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{b}" stroke="black"/><text x="{MARGIN}" y="{t}">latency (ms, top = {top_ms:.1})</text><text x="{r}" y="{u}" text-anchor="end">time ({:.1} s)</text></svg>"#,
        end_ns as f64 / 1e9,
        b = HEIGHT - MARGIN,
        r = WIDTH - MARGIN,
        t = MARGIN - 20.0,
        u = HEIGHT - 10.0,
    );

    let (ok, fail, info) = counts(ops);
    let mut rows = String::new();
    for v in verdicts {
        let status = match v.valid {
            Some(true) => "valid",
            Some(false) => "INVALID",
            None => "undecided",
        };
        let details: String = v.anomalies.iter().map(|a| format!("<li>{}</li>", escape(a))).collect();
        let _ = write!(rows, "<tr><td>{}</td><td class=\"{status}\">{status}</td><td>{}</td><td><ul>{details}</ul></td></tr>", v.checker, v.anomaly_count);
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font-family:sans-serif;margin:2em}}td{{border-top:1px solid #ccc;padding:4px 8px;vertical-align:top}}.INVALID{{color:#c22;font-weight:bold}}.valid{{color:#2a7a2a}}</style></head><body><h1>{t}</h1><p>{ok} ok, {fail} failed, {info} unknown outcome; {n} fault windows (shaded).</p>{svg}<table><tr><th>checker</th><th>result</th><th>anomalies</th><th>first anomalies</th></tr>{rows}</table></body></html>",
        t = escape(title),
        n = windows.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;
    use crate::schedule::{Fault, Target};

    #[test]
    fn renders_points_faults_and_verdicts() {
        let op = |invoke_ns, complete_ns, outcome| Completed {
            process: 0,
            invoke_ns,
            complete_ns,
            outcome,
            op: Op::Read { balances: None, held: None },
            ledger_timestamp_ns: None,
            error: None,
        };
        let ops = [op(1_000_000, 3_000_000, Outcome::Ok), op(2_000_000, 9_000_000, Outcome::Fail), op(4_000_000, u64::MAX, Outcome::Info)];
        let windows = [Window { start_ms: 1, end_ms: 5, fault: Fault::Kill { target: Target::Leader } }];
        let mut bad = Verdict::new("bank");
        bad.anomaly("read <1> total 101".into());
        let html = render("run <7>", &ops, &windows, &[Verdict::new("durability"), bad]);
        assert_eq!(html.matches("<circle").count(), 3);
        assert_eq!(html.matches("class=\"fault\"").count(), 1);
        assert!(html.contains(">kill<"));
        assert!(html.contains("1 ok, 1 failed, 1 unknown outcome"));
        assert!(html.contains("class=\"INVALID\""));
        assert!(html.contains("read &lt;1&gt; total 101"), "anomalies are escaped");
        assert!(html.contains("run &lt;7&gt;"));
    }
}
