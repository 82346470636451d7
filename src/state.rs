//! The state directory: small private files that must survive a restart — the IMDSv2 token key
//! (the Rust SDK keeps a token for hours) and the container endpoint's authorization token
//! (containers keep reading the file they were given). The directory is 0700, the files 0600,
//! and a file someone loosened is tightened again.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create state directory {path}: {source} (choose another with --state-dir)")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read or create {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is damaged (expected {expected} bytes, found {found}); delete it and restart \
         (clients holding the old {what} must fetch a new one)"
    )]
    Damaged {
        path: PathBuf,
        expected: usize,
        found: usize,
        what: &'static str,
    },
}

#[derive(Debug, Clone)]
pub struct StateDir(PathBuf);

impl StateDir {
    /// Opens `path`, creating it (0700) if needed.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|source| StateError::Dir {
                path: path.to_owned(),
                source,
            })?;
        Ok(StateDir(path.to_owned()))
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The secret kept in `name`: read if it exists (it must be `len` bytes), otherwise made by
    /// `generate` and written 0600.
    pub fn secret(
        &self,
        name: &str,
        len: usize,
        what: &'static str,
        generate: impl FnOnce() -> Vec<u8>,
    ) -> Result<Vec<u8>, StateError> {
        let path = self.file(name);
        let io = |source| StateError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == len => {
                let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        "{} was readable by others; setting it to 0600",
                        path.display()
                    );
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                        .map_err(io)?;
                }
                Ok(bytes)
            }
            Ok(bytes) => Err(StateError::Damaged {
                path: path.clone(),
                expected: len,
                found: bytes.len(),
                what,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = generate();
                debug_assert_eq!(secret.len(), len);
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io)?;
                file.write_all(&secret)
                    .and_then(|()| file.sync_all())
                    .map_err(io)?;
                Ok(secret)
            }
            Err(e) => Err(io(e)),
        }
    }
}

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_persists_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("state")).unwrap();
        let first = state.secret("s", 8, "secret", || random_bytes(8)).unwrap();
        let again = state.secret("s", 8, "secret", || unreachable!()).unwrap();
        assert_eq!(first, again);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("state")), 0o700);
        assert_eq!(mode(&state.file("s")), 0o600);
    }

    #[test]
    fn loosened_permissions_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        state.secret("s", 4, "secret", || random_bytes(4)).unwrap();
        std::fs::set_permissions(state.file("s"), std::fs::Permissions::from_mode(0o644)).unwrap();
        state.secret("s", 4, "secret", || unreachable!()).unwrap();
        let mode = std::fs::metadata(state.file("s"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn damaged_secret_is_reported_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        std::fs::write(state.file("k"), b"short").unwrap();
        let e = state
            .secret("k", 32, "token key", || unreachable!())
            .unwrap_err()
            .to_string();
        assert!(e.contains("is damaged") && e.contains("delete it"), "{e}");
    }
}
