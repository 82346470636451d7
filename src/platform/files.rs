//! Files only their owner may read, replaced whole: what fintors keeps of logins and listings.

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `bytes` to `file` so that a reader sees the old contents or the new, never half: into
/// a new file beside it (`NAME.<pid>-<random>.partial`, mode 0600, created afresh and never
/// through a link, so nothing planted there is written into), synced, then renamed over `file`.
/// The name is this writer's own: two processes renewing one login at once (the daemon and an
/// SDK) each rename a whole file, and neither removes the other's half-written one.
pub fn replace_private(file: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut partial = file.as_os_str().to_owned();
    partial.push(format!(
        ".{}-{:016x}.partial",
        std::process::id(),
        fastrand::u64(..)
    ));
    let partial = std::path::PathBuf::from(partial);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&partial)
        .and_then(|mut out| {
            out.write_all(bytes)?;
            out.sync_all()
        })
        .and_then(|()| std::fs::rename(&partial, file));
    match written {
        Ok(()) => sweep_stale_partials(file),
        Err(_) => {
            let _ = std::fs::remove_file(&partial);
        }
    }
    written
}

/// How old another writer's partial copy must be to be taken for one a crash left behind.
const STALE_PARTIAL: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes the partial copies of `file` that writers which never finished (a crash, a kill)
/// left beside it: names are random, so nothing else ever would.
fn sweep_stale_partials(file: &Path) {
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
        return;
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let entry_name = entry.file_name();
        let entry_name = entry_name.to_string_lossy();
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_PARTIAL);
        if entry_name.starts_with(&prefix) && entry_name.ends_with(".partial") && stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// What [`read_own`] found at a path.
#[derive(Debug, PartialEq, Eq)]
pub enum Own {
    /// The file is this user's: its first bytes, at most the limit asked for (ask for one
    /// more than the longest valid file to tell one that is too long).
    Bytes(Vec<u8>),
    /// The file belongs to this other user, and was not read.
    OtherUsers(u32),
}

/// Reads `file` if it is a plain file of this process's user, opened without following a link
/// (another user could plant one, or a file of their own, where the caller expects its own):
/// at most `limit` bytes, so a huge file costs nothing.
pub fn read_own(file: &Path, limit: u64) -> io::Result<Own> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)?;
    let owner = opened.metadata()?.uid();
    if owner != super::users::effective_uid() {
        return Ok(Own::OtherUsers(owner));
    }
    let mut bytes = Vec::new();
    opened.take(limit).read_to_end(&mut bytes)?;
    Ok(Own::Bytes(bytes))
}

/// Creates `dir` and its missing parents, each new one 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// An exclusive advisory lock on `file` (created 0600 if missing), held until the returned
/// file is closed: `Ok(None)` when another process holds it and `wait` is false.
pub fn lock_exclusive(file: &Path, wait: bool) -> io::Result<Option<std::fs::File>> {
    use std::os::fd::AsRawFd;
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)?;
    let how = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    // SAFETY: flock on a descriptor this function owns; no memory is passed.
    if unsafe { libc::flock(handle.as_raw_fd(), how) } == 0 {
        return Ok(Some(handle));
    }
    match io::Error::last_os_error() {
        e if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        e => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_held_lock_is_refused_without_waiting_and_free_once_closed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("login.lock");
        let held = lock_exclusive(&file, false).unwrap().expect("free");
        assert!(lock_exclusive(&file, false).unwrap().is_none(), "held");
        drop(held);
        assert!(lock_exclusive(&file, false).unwrap().is_some(), "released");
    }

    #[test]
    fn an_own_file_is_read_up_to_the_limit_and_a_link_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_own(&file, 4).unwrap(), Own::Bytes(b"0123".to_vec()));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(read_own(&link, 4).is_err(), "a link is not followed");
    }

    #[test]
    fn another_users_file_is_not_read() {
        if !fintors_testkit::as_root(
            super::super::users::effective_uid(),
            "giving a file to another user",
        ) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, b"secret").unwrap();
        std::os::unix::fs::chown(&file, Some(4242), None).unwrap();
        assert_eq!(read_own(&file, 64).unwrap(), Own::OtherUsers(4242));
    }

    #[test]
    fn a_replaced_file_is_private_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token.json");
        std::fs::write(&file, "old").unwrap();
        replace_private(&file, b"new").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            entries(dir.path()),
            ["token.json"],
            "nothing left beside it"
        );
    }

    #[test]
    fn a_partial_copy_a_crashed_writer_left_is_swept_and_a_fresh_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token.json");
        let stale = dir.path().join("token.json.1-00000000000000aa.partial");
        let fresh = dir.path().join("token.json.2-00000000000000bb.partial");
        for f in [&stale, &fresh] {
            std::fs::write(f, "half").unwrap();
        }
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        replace_private(&file, b"new").unwrap();
        assert_eq!(
            entries(dir.path()),
            ["token.json", "token.json.2-00000000000000bb.partial"],
            "another writer's copy under way stays"
        );
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writers_racing_on_one_file_each_leave_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token.json");
        let contents: Vec<Vec<u8>> = (0..4u8).map(|i| vec![b'a' + i; 64 * 1024]).collect();
        std::thread::scope(|s| {
            for bytes in &contents {
                let (file, contents) = (&file, &contents);
                s.spawn(move || {
                    for _ in 0..50 {
                        replace_private(file, bytes).unwrap();
                        let now = std::fs::read(file).unwrap();
                        assert!(
                            contents.contains(&now),
                            "a torn file of {} bytes",
                            now.len()
                        );
                    }
                });
            }
        });
        assert_eq!(
            entries(dir.path()),
            ["token.json"],
            "no writer's partial left"
        );
    }
}
