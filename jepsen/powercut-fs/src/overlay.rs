//! What a file looks like before its pending (unsynced) operations reach the disk: the backing
//! file's bytes with the pending writes and truncations laid over them, in order. `fsync`
//! applies them to the backing file and syncs it; a power cut drops them.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// One unsynced change to a file's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Write { offset: u64, data: Vec<u8> },
    Truncate(u64),
}

/// The unsynced operations of one file, oldest first.
#[derive(Debug, Default)]
pub struct Pending {
    ops: Vec<Op>,
}

impl Pending {
    pub fn bytes(&self) -> u64 {
        self.ops.iter().map(|op| if let Op::Write { data, .. } = op { data.len() as u64 } else { 0 }).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Appends a write; a write that continues the previous one extends it (a log's appends
    /// stay one operation instead of thousands).
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if let Some(Op::Write { offset: last, data: last_data }) = self.ops.last_mut() {
            if *last + last_data.len() as u64 == offset {
                last_data.extend_from_slice(data);
                return;
            }
        }
        self.ops.push(Op::Write { offset, data: data.to_vec() });
    }

    pub fn truncate(&mut self, size: u64) {
        self.ops.push(Op::Truncate(size));
    }

    /// The file's size once every pending operation is applied to a file of `base` bytes.
    pub fn size(&self, base: u64) -> u64 {
        self.ops.iter().fold(base, |size, op| match op {
            Op::Write { offset, data } => size.max(offset + data.len() as u64),
            Op::Truncate(to) => *to,
        })
    }

    /// Reads `len` bytes at `offset` of the file as the writer sees it (short at the end).
    pub fn read(&self, backing: &File, base: u64, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let end = offset + len as u64;
        let mut buf = vec![0u8; len];
        let from_disk = base.min(end).saturating_sub(offset) as usize;
        read_full(backing, &mut buf[..from_disk], offset)?;
        for op in &self.ops {
            match op {
                Op::Truncate(to) if *to < end => buf[(to.max(&offset) - offset) as usize..].fill(0),
                Op::Truncate(_) => {}
                Op::Write { offset: at, data } => {
                    let (lo, hi) = (offset.max(*at), end.min(at + data.len() as u64));
                    if lo < hi {
                        buf[(lo - offset) as usize..(hi - offset) as usize]
                            .copy_from_slice(&data[(lo - at) as usize..(hi - at) as usize]);
                    }
                }
            }
        }
        buf.truncate(self.size(base).min(end).saturating_sub(offset) as usize);
        Ok(buf)
    }

    /// Applies the operations to the backing file and syncs it (data only when `datasync`).
    pub fn apply(self, backing: &File, datasync: bool) -> io::Result<()> {
        for op in self.ops {
            match op {
                Op::Write { offset, data } => backing.write_all_at(&data, offset)?,
                Op::Truncate(to) => backing.set_len(to)?,
            }
        }
        if datasync { backing.sync_data() } else { backing.sync_all() }
    }
}

fn read_full(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, offset)? {
            0 => break, // shorter on disk than its size said: the rest reads as zeros
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> (tempdir::Dir, File) {
        let dir = tempdir::Dir::new();
        let path = dir.0.join("f");
        File::create(&path).unwrap().write_all(bytes).unwrap();
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        (dir, file)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
                let path = std::env::temp_dir().join(format!("powercut-fs-test-{}-{nanos}", std::process::id()));
                std::fs::create_dir_all(&path).unwrap();
                Dir(path)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn writes_and_truncations_overlay_the_disk_in_order() {
        let (_dir, file) = file_with(b"abcdef");
        let mut p = Pending::default();
        p.write(4, b"XYZ");
        assert_eq!(p.size(6), 7);
        assert_eq!(p.read(&file, 6, 0, 100).unwrap(), b"abcdXYZ");
        p.truncate(2);
        p.write(4, b"Q");
        assert_eq!(p.read(&file, 6, 0, 100).unwrap(), b"ab\0\0Q");
        assert_eq!(p.read(&file, 6, 3, 1).unwrap(), b"\0");
    }

    #[test]
    fn appends_coalesce_and_apply_reaches_the_disk() {
        let (_dir, file) = file_with(b"");
        let mut p = Pending::default();
        p.write(0, b"he");
        p.write(2, b"llo");
        assert_eq!(p.ops.len(), 1);
        assert_eq!(p.bytes(), 5);
        p.apply(&file, true).unwrap();
        let mut back = vec![0; 5];
        file.read_exact_at(&mut back, 0).unwrap();
        assert_eq!(back, b"hello");
    }
}
