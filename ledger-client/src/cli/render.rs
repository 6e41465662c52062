//! Human-readable rendering of a `Node`: key/value lines for objects, aligned columns for lists
//! of objects (results, entries, legs, nodes). JSON output does not go through here.

use super::view::Node;

/// Renders a whole document.
pub fn table(node: &Node) -> String {
    let mut out = String::new();
    match node {
        Node::Array(items) => columns(&mut out, items),
        Node::Object(fields) => {
            let mut scalars = Vec::new();
            let mut sections = Vec::new();
            for (key, value) in fields {
                match value {
                    Node::Array(items) if items.iter().any(|i| matches!(i, Node::Object(_))) => {
                        sections.push((key, items));
                    }
                    _ => flatten(&mut scalars, key, value),
                }
            }
            let width = scalars.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            for (key, value) in &scalars {
                out.push_str(&format!("{key:<width$}  {value}\n"));
            }
            for (key, items) in sections {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(&format!("{key}:\n"));
                columns(&mut out, items);
            }
        }
        scalar => {
            out.push_str(&text(scalar));
            out.push('\n');
        }
    }
    out
}

/// One line of `key=value` pairs (for streams, where columns cannot be aligned in advance).
pub fn line(node: &Node) -> String {
    let mut pairs = Vec::new();
    flatten(&mut pairs, "", node);
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn columns(out: &mut String, rows: &[Node]) {
    let rows: Vec<Vec<(String, String)>> = rows
        .iter()
        .map(|row| {
            let mut cells = Vec::new();
            flatten(&mut cells, "", row);
            cells
        })
        .collect();
    let mut headers: Vec<String> = Vec::new();
    for row in &rows {
        for (key, _) in row {
            if !headers.contains(key) {
                headers.push(key.clone());
            }
        }
    }
    let cell = |row: &Vec<(String, String)>, header: &str| {
        row.iter()
            .find(|(k, _)| k == header)
            .map_or_else(|| "-".to_string(), |(_, v)| v.clone())
    };
    let widths: Vec<usize> = headers
        .iter()
        .map(|h| {
            rows.iter()
                .map(|r| cell(r, h).len())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let join = |cells: Vec<String>| {
        let line: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", line.join("  ").trim_end())
    };
    out.push_str(&join(headers.clone()));
    for row in &rows {
        out.push_str(&join(headers.iter().map(|h| cell(row, h)).collect()));
    }
}

/// Nested objects become dotted keys; arrays of scalars are comma-joined; other arrays compact
/// JSON.
fn flatten(out: &mut Vec<(String, String)>, prefix: &str, node: &Node) {
    match node {
        Node::Object(fields) => {
            if fields.is_empty() && !prefix.is_empty() {
                out.push((prefix.to_string(), "-".into()));
            }
            for (key, value) in fields {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(out, &key, value);
            }
        }
        Node::Array(items)
            if items
                .iter()
                .all(|i| !matches!(i, Node::Object(_) | Node::Array(_))) =>
        {
            let joined = items.iter().map(text).collect::<Vec<_>>().join(",");
            out.push((
                prefix.to_string(),
                if joined.is_empty() {
                    "-".into()
                } else {
                    joined
                },
            ));
        }
        Node::Array(_) => {
            out.push((
                prefix.to_string(),
                serde_json::to_string(node).unwrap_or_default(),
            ));
        }
        scalar => out.push((prefix.to_string(), text(scalar))),
    }
}

fn text(node: &Node) -> String {
    match node {
        Node::Null => "-".into(),
        Node::Bool(value) => value.to_string(),
        Node::Integer(value) => value.to_string(),
        Node::Text(value) if value.is_empty() => "\"\"".into(),
        Node::Text(value) => value.clone(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::view::object;
    use super::*;

    #[test]
    fn objects_and_sections() {
        let doc = object! {
            "id" => "7",
            "balances" => object! { "debits_posted" => "1.00" },
            "results" => vec![object! { "code" => "ok", "leg_index" => Node::Null }],
        };
        assert_eq!(
            table(&doc),
            "id                      7\nbalances.debits_posted  1.00\n\nresults:\ncode  leg_index\nok    -\n"
        );
        assert_eq!(
            line(&doc),
            "id=7 balances.debits_posted=1.00 results=[{\"code\":\"ok\",\"leg_index\":null}]"
        );
    }
}
