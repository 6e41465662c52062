//! Finding the workspace's binaries (`ledger-node`, `ledger`) built in the release profile.

use std::path::{Path, PathBuf};

/// The environment variable that names `name`'s path explicitly: `LEDGER_NODE_BIN` for
/// `ledger-node`, `LEDGER_BIN` for `ledger`.
fn override_variable(name: &str) -> String {
    format!("{}_BIN", name.to_uppercase().replace('-', "_"))
}

/// The directories searched, first match wins:
/// 1. the running executable's directory, and its parent when that is `deps/` (test and bench
///    executables live in `<target>/release/deps/`): the same build as the caller;
/// 2. `$CARGO_TARGET_DIR/release/` (a shared or relocated target directory);
/// 3. `<workspace>/target/release/` (cargo's default).
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::current_exe().ok().as_deref().and_then(Path::parent) {
        dirs.push(dir.to_path_buf());
        if dir.ends_with("deps") {
            dirs.extend(dir.parent().map(Path::to_path_buf));
        }
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(PathBuf::from(target).join("release"));
    }
    // This crate sits one level below the workspace root.
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release"));
    dirs
}

/// The path of workspace binary `name`: `$<NAME>_BIN` if set (see `override_variable`), else the
/// first of `search_dirs` that holds it. The error names every place looked and how to build it.
pub fn binary(name: &str) -> std::io::Result<PathBuf> {
    let variable = override_variable(name);
    if let Some(path) = std::env::var_os(&variable) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(std::io::Error::other(format!("{variable}={} is not a file", path.display())));
    }
    let dirs = search_dirs();
    if let Some(path) = dirs.iter().map(|dir| dir.join(name)).find(|path| path.is_file()) {
        return Ok(path);
    }
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(std::io::Error::other(format!(
        "{name} not found in {}: build the binaries first (`cargo build --release --bins -p ledger-node -p ledger-client`, \
         done by scripts/test.sh) or set {variable}",
        looked.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_variable_is_the_upper_case_name() {
        assert_eq!(override_variable("ledger-node"), "LEDGER_NODE_BIN");
        assert_eq!(override_variable("ledger"), "LEDGER_BIN");
    }

    #[test]
    fn a_missing_binary_names_where_it_looked() {
        let err = binary("no-such-ledger-binary").unwrap_err().to_string();
        assert!(err.contains("no-such-ledger-binary not found in") && err.contains("release"), "{err}");
        assert!(err.contains("NO_SUCH_LEDGER_BINARY_BIN"), "{err}");
    }

    #[test]
    fn a_binary_next_to_the_executable_is_found() {
        // The test executable itself is in `<target>/release/deps/`.
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_str().unwrap();
        assert_eq!(binary(name).unwrap(), exe);
    }
}
