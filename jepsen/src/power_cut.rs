//! The power-cut fault's filesystem: a `powercut-fs` mount (see `powercut-fs/` and README,
//! "Power cut") over a backing directory. The node's data dir goes on the mount; `cut` drops
//! every byte not yet fsynced, `mount` brings up a fresh mount over what survived.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, ensure};

/// Builds `powercut-fs` (its own workspace and lock file) into `<target>/powercut-fs` with the
/// `cargo` running us (or the one on PATH); returns the binary.
pub fn build(target: &Path) -> anyhow::Result<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("powercut-fs/Cargo.toml");
    let out = target.join("powercut-fs");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&out)
        .status()
        .context("run cargo build for powercut-fs")?;
    ensure!(status.success(), "building powercut-fs failed ({status})");
    Ok(out.join("release/powercut-fs"))
}

/// Root and /dev/fuse: what a mount needs (as root, fuser mounts with mount(2) directly).
pub fn available() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { geteuid() } == 0;
    let device = Path::new("/dev/fuse").exists();
    if root && device { Ok(()) } else { Err(format!("the power-cut fault needs root and /dev/fuse (root: {root}, /dev/fuse: {device})")) }
}

unsafe extern "C" {
    fn geteuid() -> u32;
}

/// One node's disk: the backing directory and, while mounted, the `powercut-fs` process.
pub struct Disk {
    bin: PathBuf,
    backing: PathBuf,
    mountpoint: PathBuf,
    logs: PathBuf,
    mounts: usize,
    process: Option<Child>,
}

impl Disk {
    /// A disk under `dir` (`dir/disk` backing, `dir/mnt` mount point, `dir/fs-<n>.log` logs).
    pub fn new(bin: &Path, dir: &Path) -> anyhow::Result<Disk> {
        let (backing, mountpoint) = (dir.join("disk"), dir.join("mnt"));
        std::fs::create_dir_all(&backing).context("backing dir")?;
        std::fs::create_dir_all(&mountpoint).context("mount point")?;
        Ok(Disk { bin: bin.to_path_buf(), backing, mountpoint, logs: dir.to_path_buf(), mounts: 0, process: None })
    }

    /// Where the node's files go.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Mounts; returns once `powercut-fs` says `mounted`.
    pub fn mount(&mut self) -> anyhow::Result<()> {
        ensure!(self.process.is_none(), "already mounted");
        let log = std::fs::File::create(self.log_path(self.mounts)).context("powercut-fs log")?;
        let mut child = Command::new(&self.bin)
            .arg(&self.backing)
            .arg(&self.mountpoint)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("spawn powercut-fs")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line).context("read powercut-fs")?;
        self.mounts += 1;
        self.process = Some(child);
        ensure!(line.trim() == "mounted", "powercut-fs did not mount: {}", self.last_log());
        Ok(())
    }

    /// The power cut: every unsynced byte is dropped and the mount detached. Whatever runs on
    /// the mount must be killed first (its files vanish under it). Returns powercut-fs's account
    /// of what it dropped.
    pub fn cut(&mut self) -> anyhow::Result<String> {
        let mut child = self.process.take().context("not mounted")?;
        let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().context("run kill")?;
        ensure!(sent.success(), "kill -TERM powercut-fs");
        let status = child.wait().context("reap powercut-fs")?;
        ensure!(status.success(), "powercut-fs exited with {status}: {}", self.last_log());
        Ok(self.last_log())
    }

    fn log_path(&self, mount: usize) -> PathBuf {
        self.logs.join(format!("fs-{mount}.log"))
    }

    fn last_log(&self) -> String {
        std::fs::read_to_string(self.log_path(self.mounts.saturating_sub(1))).unwrap_or_default().trim().to_string()
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if self.process.is_some() {
            let _ = self.cut();
        }
        // A powercut-fs that died without detaching leaves a dead mount behind: detach it.
        let _ = Command::new("umount").arg("-l").arg(&self.mountpoint).stderr(Stdio::null()).status();
    }
}
