//! State files in `/var/lib/heartbeat` (admin.md §4.6): `hb_generation`, `hb_uuid`, `fifo`.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

/// The default state directory.
pub const DEFAULT_STATEDIR: &str = "/var/lib/heartbeat";

/// `<statedir>/hb_generation`.
pub fn generation_path(statedir: &Path) -> PathBuf {
    statedir.join("hb_generation")
}

/// `<statedir>/hb_uuid`.
pub fn uuid_path(statedir: &Path) -> PathBuf {
    statedir.join("hb_uuid")
}

/// `<statedir>/fifo`.
pub fn fifo_path(statedir: &Path) -> PathBuf {
    statedir.join("fifo")
}

/// The 16 bytes of `hb_generation` for `generation`: decimal, right-aligned in 15 columns,
/// newline.
pub fn format_generation(generation: u64) -> String {
    format!("{generation:>15}\n")
}

/// The generation for this start (or restart).
///
/// * `from_time` (`hbgenmethod time`): `now_unix`; no file is read or written.
/// * otherwise the number in `hb_generation` plus one, written back (fsync'ed, replaced
///   atomically) before it is returned, so it is never reused. Without a readable number in
///   the file, `now_unix + 1`.
///
/// The flag is true when there was no previous generation: log
/// `WARN: No Previous generation - starting at N`.
pub fn next_generation(statedir: &Path, from_time: bool, now_unix: u64) -> io::Result<(u64, bool)> {
    if from_time {
        return Ok((now_unix, false));
    }
    let path = generation_path(statedir);
    let previous = match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u64>().ok(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let (generation, first) = match previous {
        Some(g) => (g.saturating_add(1), false),
        None => (now_unix.saturating_add(1), true),
    };
    write_durably(&path, format_generation(generation).as_bytes())?;
    Ok((generation, first))
}

/// This node's UUID.
///
/// * `nodename_for_derivation` `Some(name)` (`uuidfrom nodename`): derived from the name, no
///   file. The spec does not say how 3.0.6 derives it; we use the RFC 4122 name-based
///   (version 3, MD5) UUID of the name in the DNS namespace, so every node computes the same
///   UUID for a name.
/// * `None` (`uuidfrom file`, the default): the 16 raw bytes of `hb_uuid`; when the file is
///   missing, not 16 bytes long or all zero, a new random (version 4) UUID from
///   `/dev/urandom` is written (mode 0644) and the flag is true: log
///   `info: No uuid found for current node - generating a new uuid.`
pub fn node_uuid(
    statedir: &Path,
    nodename_for_derivation: Option<&str>,
) -> io::Result<([u8; 16], bool)> {
    if let Some(name) = nodename_for_derivation {
        return Ok((name_uuid(name), false));
    }
    let path = uuid_path(statedir);
    match fs::read(&path) {
        Ok(bytes) => {
            if let Ok(uuid) = <[u8; 16]>::try_from(bytes.as_slice()) {
                if uuid != [0u8; 16] {
                    return Ok((uuid, false));
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let uuid = random_uuid()?;
    write_durably(&path, &uuid)?;
    Ok((uuid, true))
}

/// RFC 4122 version 3 UUID of `name` in the DNS namespace.
pub fn name_uuid(name: &str) -> [u8; 16] {
    const NAMESPACE_DNS: [u8; 16] = [
        0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30,
        0xc8,
    ];
    let mut h = Md5::new();
    h.update(NAMESPACE_DNS);
    h.update(name.as_bytes());
    let mut uuid: [u8; 16] = h.finalize().into();
    uuid[6] = (uuid[6] & 0x0f) | 0x30;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    uuid
}

/// A random (version 4) UUID from `/dev/urandom`.
pub fn random_uuid() -> io::Result<[u8; 16]> {
    let mut uuid = [0u8; 16];
    fs::File::open("/dev/urandom")?.read_exact(&mut uuid)?;
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    Ok(uuid)
}

/// The usual text form, `80757dda-d3d5-401a-8fa3-1dd600503a81`.
pub fn uuid_to_string(uuid: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in uuid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Makes sure `<statedir>/fifo` is a named pipe (mode 0600). Returns true when it had to be
/// created: log `info: Creating FIFO /var/lib/heartbeat/fifo.` A non-FIFO file in its place
/// is replaced; a directory there is an error.
pub fn ensure_fifo(statedir: &Path) -> io::Result<bool> {
    let path = fifo_path(statedir);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_fifo() => return Ok(false),
        Ok(meta) if meta.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is a directory, not a FIFO", path.display()),
            ))
        }
        Ok(_) => fs::remove_file(&path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::create_dir_all(statedir)?;
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
    // mkfifo honours the umask; the mode is 0600 whatever it is.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
    Ok(true)
}

/// Writes `bytes` to `path` (mode 0644) through a temporary file that is fsync'ed and renamed
/// over `path`, then fsyncs the directory: after a crash the file holds either the old or
/// the new contents.
fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(0o644))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hb-state-{}-{}", name, std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn generation_file() {
        let d = temp_dir("gen");
        assert_eq!(format_generation(1_795_384_848), "     1795384848\n");
        assert_eq!(format_generation(1_795_384_848).len(), 16);

        assert_eq!(
            next_generation(&d, false, 1_795_384_959).unwrap(),
            (1_795_384_960, true)
        );
        assert_eq!(fs::read(generation_path(&d)).unwrap(), b"     1795384960\n");
        assert_eq!(
            fs::metadata(generation_path(&d))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o644
        );
        assert_eq!(
            next_generation(&d, false, 5).unwrap(),
            (1_795_384_961, false)
        );
        assert_eq!(fs::read(generation_path(&d)).unwrap(), b"     1795384961\n");

        // hbgenmethod time: the clock, the file untouched.
        assert_eq!(
            next_generation(&d, true, 1_800_000_000).unwrap(),
            (1_800_000_000, false)
        );
        assert_eq!(fs::read(generation_path(&d)).unwrap(), b"     1795384961\n");

        // Garbage counts as no previous generation.
        fs::write(generation_path(&d), "junk\n").unwrap();
        assert_eq!(next_generation(&d, false, 99).unwrap(), (100, true));
        // No stray temporary files.
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn uuid_file() {
        let d = temp_dir("uuid");
        let (u1, created) = node_uuid(&d, None).unwrap();
        assert!(created);
        assert_eq!(u1[6] >> 4, 4);
        assert_eq!(u1[8] & 0xc0, 0x80);
        assert_eq!(fs::read(uuid_path(&d)).unwrap(), u1);
        assert_eq!(
            fs::metadata(uuid_path(&d)).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(node_uuid(&d, None).unwrap(), (u1, false));

        // A truncated or zero file is replaced.
        fs::write(uuid_path(&d), [1u8; 5]).unwrap();
        let (u2, created) = node_uuid(&d, None).unwrap();
        assert!(created && u2 != u1);
        fs::write(uuid_path(&d), [0u8; 16]).unwrap();
        assert!(node_uuid(&d, None).unwrap().1);

        // Derived from the node name: no file involved.
        let _ = fs::remove_file(uuid_path(&d));
        let (u3, created) = node_uuid(&d, Some("alice")).unwrap();
        assert!(!created);
        assert_eq!(uuid_to_string(&u3), "d6d1cd4b-d15a-3b76-9f89-509754f92c74");
        assert!(!uuid_path(&d).exists());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn uuid_text() {
        let u = [
            0x80, 0x75, 0x7d, 0xda, 0xd3, 0xd5, 0x40, 0x1a, 0x8f, 0xa3, 0x1d, 0xd6, 0x00, 0x50,
            0x3a, 0x81,
        ];
        assert_eq!(uuid_to_string(&u), "80757dda-d3d5-401a-8fa3-1dd600503a81");
    }

    #[test]
    fn fifo() {
        let d = temp_dir("fifo");
        assert!(ensure_fifo(&d).unwrap());
        let meta = fs::symlink_metadata(fifo_path(&d)).unwrap();
        assert!(meta.file_type().is_fifo());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert!(!ensure_fifo(&d).unwrap());

        fs::remove_file(fifo_path(&d)).unwrap();
        fs::write(fifo_path(&d), "not a fifo").unwrap();
        assert!(ensure_fifo(&d).unwrap());
        assert!(fs::symlink_metadata(fifo_path(&d))
            .unwrap()
            .file_type()
            .is_fifo());

        fs::remove_file(fifo_path(&d)).unwrap();
        fs::create_dir(fifo_path(&d)).unwrap();
        assert!(ensure_fifo(&d).is_err());
        let _ = fs::remove_dir_all(&d);
    }
}
