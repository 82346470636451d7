//! The state directory: small private files that must survive a restart — the IMDSv2 token key
//! (the Rust SDK keeps a token for hours) and the container endpoint's authorization token
//! (containers keep reading the file they were given). The directory is 0700, the files 0600,
//! and a file someone loosened is tightened again.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::ec2::tokens::KEY_LEN;
use crate::model::Secret;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create state directory {path}: {reason} (choose another with --state-dir)")]
    Dir {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("cannot read or create {path}: {reason}")]
    Io {
        path: PathBuf,
        reason: std::io::Error,
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
            .map_err(|reason| StateError::Dir {
                path: path.to_owned(),
                reason,
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
        let io = |reason| StateError::Io {
            path: path.clone(),
            reason,
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
/// The file holding the IMDSv2 token key.
pub const TOKEN_KEY_FILE: &str = "imds-token.key";
/// The file holding the container endpoint's authorization token.
pub const CONTAINER_TOKEN_FILE: &str = "container-token";
const CONTAINER_TOKEN_LEN: usize = 64;

impl StateDir {
    /// The IMDSv2 token key, created on first use: a restart must not invalidate tokens already
    /// handed out (the Rust SDK keeps one for hours and does not fetch another after a 401).
    pub fn token_key(&self) -> Result<[u8; KEY_LEN], StateError> {
        let key = self.secret(TOKEN_KEY_FILE, KEY_LEN, "IMDSv2 tokens", || {
            random_bytes(KEY_LEN)
        })?;
        Ok(key.try_into().expect("length checked"))
    }

    /// The container endpoint's authorization token, created on first use: 64 hex characters
    /// and no newline (the Rust SDK and JS v3's `fromHttp` reject one); containers keep reading
    /// the file they were given, so it survives restarts.
    pub fn container_token(&self) -> Result<Secret, StateError> {
        let token = self.secret(
            CONTAINER_TOKEN_FILE,
            CONTAINER_TOKEN_LEN,
            "container token",
            || {
                random_bytes(CONTAINER_TOKEN_LEN / 2)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
                    .into_bytes()
            },
        )?;
        Ok(Secret::new(String::from_utf8_lossy(&token).into_owned()))
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
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
    fn the_token_key_persists_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        assert_eq!(state.token_key().unwrap(), state.token_key().unwrap());
    }

    #[test]
    fn the_container_token_is_hex_without_newline_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let token = state.container_token().unwrap();
        assert_eq!(token.expose().len(), 64);
        assert!(token.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(state.container_token().unwrap(), token);
        let on_disk = std::fs::read(state.file(CONTAINER_TOKEN_FILE)).unwrap();
        assert!(!on_disk.ends_with(b"\n"));
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
