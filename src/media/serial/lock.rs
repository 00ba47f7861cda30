//! UUCP/HDB-style line locks (`LCK..<name>`), taken the way Heartbeat 3.0.6 takes them
//! (links.md 2.2, step 1), so that other programs that honour these locks (minicom, picocom,
//! cu, ...) and we see each other.
//!
//! * Name: the device path without its first five bytes (assumed to be `/dev/`), keeping only
//!   ASCII letters and digits: `/dev/ttyS0` -> `LCK..ttyS0`, `/dev/tts/0` -> `LCK..tts0`.
//! * Record: the pid right-aligned in ten columns and a LF (11 bytes).
//! * Taking: write the record to `tmp<pid>-<name>` (created exclusively, mode 0644), hard-link
//!   it to the lock name, remove the temporary name. The link fails if anybody got there first.
//! * An existing lock is **busy** when it names a pid above 1 that is not ours and whose
//!   process exists (signal 0 succeeds or fails with anything but "no such process"), or when
//!   it is a lock of ours that this process holds right now (a second medium on the same
//!   device). Otherwise (empty, unreadable, garbage, dead pid, our own pid left behind) it is
//!   stale and removed.
//! * A lock shorter than a full record may be one that its owner is writing this very moment.
//!   3.0.6 waits a second and reads it again; we never sleep in the event loop, so such a lock
//!   counts as busy while it is less than a second old, and is judged on its content after.
//!
//! [`LineLock`] removes its lock file when dropped, if the file still names us.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// The lock directory of a standard installation (on Debian a link to `/run/lock`).
pub const DEFAULT_LOCK_DIR: &str = "/var/lock";

/// Length of a complete record: ten columns and a LF.
const RECORD_LEN: usize = 11;

/// A short lock younger than this is taken to be still being written.
const WRITING_GRACE: Duration = Duration::from_secs(1);

/// Lock files this process holds right now (full paths).
static HELD: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

fn held_insert(path: &Path) -> bool {
    let mut g = HELD.lock().unwrap_or_else(|p| p.into_inner());
    g.get_or_insert_with(HashSet::new)
        .insert(path.to_path_buf())
}

fn held_remove(path: &Path) {
    let mut g = HELD.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(set) = g.as_mut() {
        set.remove(path);
    }
}

fn held_contains(path: &Path) -> bool {
    let g = HELD.lock().unwrap_or_else(|p| p.into_inner());
    g.as_ref().is_some_and(|s| s.contains(path))
}

/// `ttyS0` for `/dev/ttyS0`: the part of the lock file name after `LCK..`.
pub fn lock_name(device: &Path) -> String {
    device
        .as_os_str()
        .as_bytes()
        .iter()
        .skip(5)
        .filter(|b| b.is_ascii_alphanumeric())
        .map(|&b| char::from(b))
        .collect()
}

/// `<dir>/LCK..<name>` for `device`.
pub fn lock_path(dir: &Path, device: &Path) -> PathBuf {
    dir.join(format!("LCK..{}", lock_name(device)))
}

/// Why a line could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// Somebody holds the line: the pid from the lock file when it names one.
    Busy { path: PathBuf, pid: Option<i32> },
    /// The lock directory or file could not be used.
    Io { path: PathBuf, error: io::Error },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Busy {
                path,
                pid: Some(pid),
            } => write!(f, "{} is held by pid {pid}", path.display()),
            LockError::Busy { path, pid: None } => write!(f, "{} is held", path.display()),
            LockError::Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for LockError {}

/// A lock we hold; removed on drop (only if the file still names our pid).
#[derive(Debug)]
pub struct LineLock {
    path: PathBuf,
    pid: i32,
}

impl LineLock {
    /// Take the lock for `device` in `dir` for this process.
    pub fn acquire(dir: &Path, device: &Path) -> Result<LineLock, LockError> {
        let pid = std::process::id() as i32;
        let path = lock_path(dir, device);
        let io_err = |path: &Path, error: io::Error| LockError::Io {
            path: path.to_path_buf(),
            error,
        };
        if held_contains(&path) {
            return Err(LockError::Busy {
                path,
                pid: Some(pid),
            });
        }
        match fs::read(&path) {
            Ok(record) => {
                let owner = parse_pid(&record);
                let young = fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_none_or(|age| age < WRITING_GRACE);
                if record.len() < RECORD_LEN && young {
                    return Err(LockError::Busy { path, pid: owner });
                }
                if let Some(p) = owner.filter(|&p| p > 1 && p != pid && process_exists(p)) {
                    return Err(LockError::Busy { path, pid: Some(p) });
                }
                remove_if_present(&path).map_err(|e| io_err(&path, e))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            // Unreadable: stale by 3.0.6's rule, if we can remove it.
            Err(_) => remove_if_present(&path).map_err(|e| io_err(&path, e))?,
        }

        let tmp = dir.join(format!("tmp{pid}-{}", lock_name(device)));
        remove_if_present(&tmp).map_err(|e| io_err(&tmp, e))?;
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&tmp)?;
            f.set_permissions(fs::Permissions::from_mode(0o644))?;
            f.write_all(format!("{pid:>10}\n").as_bytes())
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&tmp, e));
        }
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                held_insert(&path);
                Ok(LineLock { path, pid })
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let owner = fs::read(&path).ok().and_then(|r| parse_pid(&r));
                Err(LockError::Busy { path, pid: owner })
            }
            Err(e) => Err(io_err(&path, e)),
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LineLock {
    fn drop(&mut self) {
        held_remove(&self.path);
        if fs::read(&self.path).ok().and_then(|r| parse_pid(&r)) == Some(self.pid) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The decimal pid of a lock record (surrounding blanks allowed), if there is one.
fn parse_pid(record: &[u8]) -> Option<i32> {
    std::str::from_utf8(record).ok()?.trim().parse().ok()
}

fn process_exists(pid: i32) -> bool {
    !matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("hb-lock-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn age(path: &Path, secs: u64) {
        let f = fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn names() {
        assert_eq!(lock_name(Path::new("/dev/ttyS0")), "ttyS0");
        assert_eq!(lock_name(Path::new("/dev/tts/0")), "tts0");
        assert_eq!(lock_name(Path::new("/dev/ttyUSB0")), "ttyUSB0");
        assert_eq!(lock_name(Path::new("/dev/pts/17")), "pts17");
        assert_eq!(lock_name(Path::new("/tmp/x-y/ttyA")), "xyttyA");
        assert_eq!(lock_name(Path::new("/ab")), "");
        assert_eq!(
            lock_path(Path::new("/var/lock"), Path::new("/dev/ttyS0")),
            PathBuf::from("/var/lock/LCK..ttyS0")
        );
    }

    #[test]
    fn take_and_release() {
        let d = TempDir::new("take");
        let dev = Path::new("/dev/ttyS7");
        let lock = LineLock::acquire(&d.0, dev).unwrap();
        let record = fs::read(lock.path()).unwrap();
        assert_eq!(record.len(), RECORD_LEN);
        assert_eq!(record, format!("{:>10}\n", std::process::id()).into_bytes());
        let mode = fs::metadata(lock.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(&d.0).unwrap().count(), 1);
        // A second medium on the same line in this process finds it busy.
        assert!(matches!(
            LineLock::acquire(&d.0, dev),
            Err(LockError::Busy { .. })
        ));
        let path = lock.path().to_path_buf();
        drop(lock);
        assert!(!path.exists());
        LineLock::acquire(&d.0, dev).unwrap();
    }

    #[test]
    fn live_owner_is_busy() {
        let d = TempDir::new("busy");
        let dev = Path::new("/dev/ttyS1");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let path = lock_path(&d.0, dev);
        fs::write(&path, format!("{:>10}\n", child.id())).unwrap();
        let r = LineLock::acquire(&d.0, dev);
        child.kill().unwrap();
        child.wait().unwrap();
        match r {
            Err(LockError::Busy { pid, .. }) => assert_eq!(pid, Some(child.id() as i32)),
            other => panic!("expected busy, got {other:?}"),
        }
        // The owner is gone now: the lock is stale and replaced.
        let lock = LineLock::acquire(&d.0, dev).unwrap();
        assert_eq!(
            parse_pid(&fs::read(lock.path()).unwrap()),
            Some(std::process::id() as i32)
        );
    }

    #[test]
    fn stale_locks_are_replaced() {
        let d = TempDir::new("stale");
        let dev = Path::new("/dev/ttyS2");
        let path = lock_path(&d.0, dev);
        let own = format!("{:>10}\n", std::process::id());
        for record in [
            "".to_string(),
            "garbage\n".to_string(),
            "         1\n".to_string(),
            format!("{:>10}\n", i32::MAX),
            own,
            "\u{1}\u{2}\u{3}\u{4}".to_string(),
        ] {
            fs::write(&path, &record).unwrap();
            age(&path, 5);
            let lock =
                LineLock::acquire(&d.0, dev).unwrap_or_else(|e| panic!("record {record:?}: {e}"));
            drop(lock);
            assert!(!path.exists());
        }
    }

    #[test]
    fn short_fresh_lock_is_busy_for_a_second() {
        let d = TempDir::new("fresh");
        let dev = Path::new("/dev/ttyS3");
        let path = lock_path(&d.0, dev);
        fs::write(&path, "  ").unwrap();
        assert!(matches!(
            LineLock::acquire(&d.0, dev),
            Err(LockError::Busy { pid: None, .. })
        ));
        age(&path, 2);
        LineLock::acquire(&d.0, dev).unwrap();
    }

    #[test]
    fn drop_leaves_a_lock_that_is_not_ours() {
        let d = TempDir::new("foreign");
        let dev = Path::new("/dev/ttyS4");
        let lock = LineLock::acquire(&d.0, dev).unwrap();
        fs::write(lock.path(), "         2\n").unwrap();
        let path = lock.path().to_path_buf();
        drop(lock);
        assert!(path.exists());
    }

    #[test]
    fn missing_directory_is_an_error() {
        let d = TempDir::new("missing");
        let r = LineLock::acquire(&d.0.join("nope"), Path::new("/dev/ttyS5"));
        assert!(matches!(r, Err(LockError::Io { .. })));
    }
}
