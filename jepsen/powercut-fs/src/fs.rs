//! The pass-through filesystem: names, directories and metadata go straight to the backing
//! directory; file contents written through the mount stay in memory (`overlay::Pending`) until
//! the file is fsynced/fdatasynced.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::overlay::Pending;

/// Attributes are never cached by the kernel: sizes change with pending writes only we know of.
const TTL: Duration = Duration::ZERO;

/// Inode numbers (assigned here, 1 = root) and the unsynced operations of every file.
#[derive(Default)]
pub struct State {
    paths: HashMap<u64, PathBuf>,
    inos: HashMap<PathBuf, u64>,
    next_ino: u64,
    pending: HashMap<u64, Pending>,
}

impl State {
    /// Files with unsynced operations and their unsynced written bytes: what a power cut drops.
    pub fn unsynced(&self) -> (usize, u64) {
        let files = self.pending.values().filter(|p| !p.is_empty()).count();
        (files, self.pending.values().map(Pending::bytes).sum())
    }

    fn ino_for(&mut self, rel: PathBuf) -> u64 {
        if let Some(ino) = self.inos.get(&rel) {
            return *ino;
        }
        self.next_ino += 1;
        self.paths.insert(self.next_ino, rel.clone());
        self.inos.insert(rel, self.next_ino);
        self.next_ino
    }

    fn forget_path(&mut self, rel: &Path) {
        if let Some(ino) = self.inos.remove(rel) {
            self.paths.remove(&ino);
            self.pending.remove(&ino);
        }
    }

    /// Moves every name at or under `from` to `to` (a renamed directory takes its children).
    fn rename(&mut self, from: &Path, to: &Path) {
        self.forget_path(to);
        let moved: Vec<(PathBuf, u64)> =
            self.inos.iter().filter(|(p, _)| p.starts_with(from)).map(|(p, i)| (p.clone(), *i)).collect();
        for (old, ino) in moved {
            let rest = old.strip_prefix(from).expect("filtered by prefix");
            // `join("")` would add a trailing slash, which names a directory.
            let new = if rest.as_os_str().is_empty() { to.to_path_buf() } else { to.join(rest) };
            self.inos.remove(&old);
            self.inos.insert(new.clone(), ino);
            self.paths.insert(ino, new);
        }
    }
}

pub struct PowerCutFs {
    root: PathBuf,
    state: Arc<Mutex<State>>,
}

impl PowerCutFs {
    pub fn new(root: PathBuf) -> (PowerCutFs, Arc<Mutex<State>>) {
        let mut state = State { next_ino: 1, ..State::default() };
        state.paths.insert(1, PathBuf::new());
        state.inos.insert(PathBuf::new(), 1);
        let state = Arc::new(Mutex::new(state));
        (PowerCutFs { root, state: state.clone() }, state)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn rel(&self, state: &State, ino: INodeNo) -> Result<PathBuf, Errno> {
        state.paths.get(&ino.0).cloned().ok_or(Errno::ENOENT)
    }

    fn child(&self, state: &State, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.rel(state, parent)?.join(name))
    }

    fn attr(&self, state: &State, ino: u64, rel: &Path) -> Result<FileAttr, Errno> {
        let meta = fs::symlink_metadata(self.root.join(rel)).map_err(Errno::from)?;
        let size = state.pending.get(&ino).map_or(meta.len(), |p| p.size(meta.len()));
        let time = |secs: i64, nanos: i64| UNIX_EPOCH + Duration::new(secs.max(0) as u64, nanos.max(0) as u32);
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: time(meta.atime(), meta.atime_nsec()),
            mtime: time(meta.mtime(), meta.mtime_nsec()),
            ctime: time(meta.ctime(), meta.ctime_nsec()),
            crtime: UNIX_EPOCH,
            kind: FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile),
            perm: (meta.mode() & 0o7777) as u16,
            nlink: meta.nlink() as u32,
            uid: meta.uid(),
            gid: meta.gid(),
            rdev: meta.rdev() as u32,
            blksize: 4096,
            flags: 0,
        })
    }

    /// Looks `rel` up on the backing directory and gives it an inode number.
    fn entry(&self, state: &mut State, rel: PathBuf) -> Result<FileAttr, Errno> {
        fs::symlink_metadata(self.root.join(&rel)).map_err(Errno::from)?;
        let ino = state.ino_for(rel.clone());
        self.attr(state, ino, &rel)
    }

    fn open_backing(&self, rel: &Path, write: bool) -> Result<File, Errno> {
        OpenOptions::new().read(true).write(write).open(self.root.join(rel)).map_err(Errno::from)
    }
}

impl Filesystem for PowerCutFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut state = self.state();
        match self.child(&state, parent, name).and_then(|rel| self.entry(&mut state, rel)) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let state = self.state();
        match self.rel(&state, ino).and_then(|rel| self.attr(&state, ino.0, &rel)) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut state = self.state();
        let result = self.rel(&state, ino).and_then(|rel| {
            if let Some(mode) = mode {
                fs::set_permissions(self.root.join(&rel), fs::Permissions::from_mode(mode)).map_err(Errno::from)?;
            }
            if let Some(size) = size {
                // A truncation is a change to the contents: unsynced like a write.
                state.pending.entry(ino.0).or_default().truncate(size);
            }
            self.attr(&state, ino.0, &rel)
        });
        match result {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let mut state = self.state();
        let result = self.child(&state, parent, name).and_then(|rel| {
            let path = self.root.join(&rel);
            fs::create_dir(&path).map_err(Errno::from)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode & !umask)).map_err(Errno::from)?;
            self.entry(&mut state, rel)
        });
        match result {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.state();
        let result = self.child(&state, parent, name).and_then(|rel| {
            fs::remove_file(self.root.join(&rel)).map_err(Errno::from)?;
            state.forget_path(&rel);
            Ok(())
        });
        reply_empty(reply, result);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.state();
        let result = self.child(&state, parent, name).and_then(|rel| {
            fs::remove_dir(self.root.join(&rel)).map_err(Errno::from)?;
            state.forget_path(&rel);
            Ok(())
        });
        reply_empty(reply, result);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut state = self.state();
        let result = self.child(&state, parent, name).and_then(|from| {
            let to = self.child(&state, newparent, newname)?;
            fs::rename(self.root.join(&from), self.root.join(&to)).map_err(Errno::from)?;
            state.rename(&from, &to);
            Ok(())
        });
        reply_empty(reply, result);
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let state = self.state();
        match self.rel(&state, ino) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = self.state();
        let result = self.child(&state, parent, name).and_then(|rel| {
            // The new name is durable at once (names are not modelled); its contents are not.
            let mut options = OpenOptions::new();
            options.write(true).mode(mode & !umask);
            if flags & libc::O_EXCL != 0 { options.create_new(true) } else { options.create(true) };
            options.open(self.root.join(&rel)).map_err(Errno::from)?;
            let attr = self.entry(&mut state, rel)?;
            if flags & libc::O_TRUNC != 0 {
                state.pending.entry(attr.ino.0).or_default().truncate(0);
            }
            self.attr(&state, attr.ino.0, &state.paths[&attr.ino.0].clone())
        });
        match result {
            Ok(attr) => reply.created(&TTL, &attr, Generation(0), FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let state = self.state();
        let result = self.rel(&state, ino).and_then(|rel| {
            let file = self.open_backing(&rel, false)?;
            let base = file.metadata().map_err(Errno::from)?.len();
            let empty = Pending::default();
            let pending = state.pending.get(&ino.0).unwrap_or(&empty);
            pending.read(&file, base, offset, size as usize).map_err(Errno::from)
        });
        match result {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut state = self.state();
        match self.rel(&state, ino) {
            Ok(_) => {
                state.pending.entry(ino.0).or_default().write(offset, data);
                reply.written(data.len() as u32);
            }
            Err(e) => reply.error(e),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _owner: LockOwner, reply: ReplyEmpty) {
        reply.ok(); // close(2) is not a sync
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        let mut state = self.state();
        let result = self.rel(&state, ino).and_then(|rel| {
            let file = self.open_backing(&rel, true)?;
            let pending = state.pending.remove(&ino.0).unwrap_or_default();
            pending.apply(&file, datasync).map_err(Errno::from)
        });
        reply_empty(reply, result);
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        reply.ok(); // names are durable at once here (see README: what is modelled)
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let mut state = self.state();
        let result = self.rel(&state, ino).and_then(|rel| {
            let mut entries = vec![(ino.0, FileType::Directory, ".".into()), (1, FileType::Directory, "..".into())];
            for item in fs::read_dir(self.root.join(&rel)).map_err(Errno::from)? {
                let item = item.map_err(Errno::from)?;
                let kind = item.file_type().ok().and_then(FileType::from_std).unwrap_or(FileType::RegularFile);
                let child = state.ino_for(rel.join(item.file_name()));
                entries.push((child, kind, item.file_name()));
            }
            Ok(entries)
        });
        match result {
            Ok(entries) => {
                for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(child), i as u64 + 1, kind, &name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let path = std::ffi::CString::new(self.root.as_os_str().as_encoded_bytes()).unwrap_or_default();
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid NUL-terminated path and a zeroed out-struct of the right type.
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
            return reply.error(Errno::from(std::io::Error::last_os_error()));
        }
        reply.statfs(st.f_blocks, st.f_bfree, st.f_bavail, st.f_files, st.f_ffree, st.f_bsize as u32, 255, st.f_frsize as u32);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        // Preallocation that keeps the size (RocksDB's WAL) changes nothing visible.
        if mode == libc::FALLOC_FL_KEEP_SIZE { reply.ok() } else { reply.error(Errno::EOPNOTSUPP) }
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
}

fn reply_empty(reply: ReplyEmpty, result: Result<(), Errno>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}
