//! `powercut-fs <backing dir> <mount point>`: mounts a FUSE pass-through of the backing
//! directory that keeps every unsynced write in memory (the LazyFS approach). Prints `mounted`
//! on stdout once the mount is up. SIGTERM or SIGINT is the power cut: the mount is detached and
//! the process exits without writing anything it holds, so the backing directory keeps exactly
//! what was fsynced (plus names: see jepsen/README.md, "Power cut").

mod fs;
mod overlay;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, backing, mountpoint] = args.as_slice() else {
        eprintln!("usage: powercut-fs <backing dir> <mount point>");
        return ExitCode::from(2);
    };
    let backing = match std::fs::canonicalize(backing) {
        Ok(path) => path,
        Err(e) => {
            eprintln!("powercut-fs: backing dir {backing}: {e}");
            return ExitCode::from(2);
        }
    };
    let signals = block_signals();
    let (filesystem, state) = fs::PowerCutFs::new(backing);
    let mut config = fuser::Config::default();
    config.mount_options = vec![fuser::MountOption::FSName("powercut".into()), fuser::MountOption::RW];
    let session = match fuser::spawn_mount(filesystem, PathBuf::from(mountpoint), &config) {
        Ok(session) => session,
        Err(e) => {
            eprintln!("powercut-fs: mount {mountpoint}: {e} (needs /dev/fuse and root or fusermount3)");
            return ExitCode::FAILURE;
        }
    };
    println!("mounted");
    let signal = wait_for(&signals);
    let (files, bytes) = state.lock().unwrap_or_else(|p| p.into_inner()).unsynced();
    eprintln!("powercut-fs: power cut (signal {signal}): dropping {bytes} unsynced bytes in {files} files");
    detach(mountpoint);
    // No destructor runs: nothing held in memory may reach the backing directory.
    std::mem::forget(session);
    std::process::exit(0);
}

/// Blocks SIGTERM and SIGINT in every thread (the session's threads inherit the mask), so
/// `wait_for` receives them.
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local, then the calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for(set: &libc::sigset_t) -> i32 {
    let mut signal = 0;
    // SAFETY: the set was initialised by block_signals.
    unsafe { libc::sigwait(set, &mut signal) };
    signal
}

/// A lazy unmount: works even while a (killed, not yet reaped) process holds files open.
fn detach(mountpoint: &str) {
    let Ok(path) = std::ffi::CString::new(mountpoint) else { return };
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } != 0 {
        eprintln!("powercut-fs: unmount {mountpoint}: {}", std::io::Error::last_os_error());
    }
}
