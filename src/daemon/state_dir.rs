//! The state directory: small private files that must survive a restart — the IMDSv2 token key
//! (the Rust SDK keeps a token for hours) and the container endpoint's authorization token
//! (containers keep reading the file they were given). The directory is 0700, the files 0600,
//! and a file someone loosened is tightened again.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::ec2::container_tokens::{self, ContainerKey};
use crate::ec2::identity_signing::{self, IdentitySigner, SigningError};
use crate::ec2::tokens::KEY_LEN;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create state directory {path}: {reason} (choose another with --state-dir)")]
    Dir {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error(
        "state directory {path} belongs to uid {uid}, not to this user: choose your own with \
         --state-dir"
    )]
    NotMine { path: PathBuf, uid: u32 },
    #[error("cannot read or create {path}: {reason}")]
    Io {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Identity {
        path: PathBuf,
        reason: crate::ec2::identity_signing::SigningError,
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
    /// Opens `path`, creating it (0700) if needed. An existing directory must be this user's;
    /// one that others may read or write into is made 0700 again, with a line that says so.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        use std::os::unix::fs::MetadataExt;
        let dir_error = |reason| StateError::Dir {
            path: path.to_owned(),
            reason,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(dir_error)?;
        let meta = std::fs::metadata(path).map_err(dir_error)?;
        let me = crate::platform::users::effective_uid();
        if meta.uid() != me {
            return Err(StateError::NotMine {
                path: path.to_owned(),
                uid: meta.uid(),
            });
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                .map_err(dir_error)?;
            tracing::warn!(
                "state directory {} was mode {mode:03o}; set to 700 (it holds keys)",
                path.display()
            );
        }
        Ok(StateDir(path.to_owned()))
    }

    pub fn path(&self) -> &Path {
        &self.0
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
        let bytes = self.private_file(name, || Ok(generate()))?;
        if bytes.len() != len {
            return Err(StateError::Damaged {
                path: self.file(name),
                expected: len,
                found: bytes.len(),
                what,
            });
        }
        Ok(bytes)
    }

    /// The private file `name`: read if it exists (made 0600 if others could read it),
    /// otherwise made by `generate` and written 0600.
    fn private_file(
        &self,
        name: &str,
        generate: impl FnOnce() -> Result<Vec<u8>, StateError>,
    ) -> Result<Vec<u8>, StateError> {
        let path = self.file(name);
        let io = |reason| StateError::Io {
            path: path.clone(),
            reason,
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
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
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = generate()?;
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

/// The file holding the IMDSv2 token key.
pub const TOKEN_KEY_FILE: &str = "imds-token.key";

impl StateDir {
    /// The IMDSv2 token key, created on first use: a restart must not invalidate tokens already
    /// handed out (the Rust SDK keeps one for hours and does not fetch another after a 401).
    pub fn token_key(&self) -> Result<[u8; KEY_LEN], StateError> {
        let key = self.secret(TOKEN_KEY_FILE, KEY_LEN, "IMDSv2 tokens", || {
            random_bytes(KEY_LEN)
        })?;
        Ok(key.try_into().expect("length checked"))
    }

    /// The key of the container endpoint's tokens, created on first use; it survives restarts,
    /// since containers keep the token they were started with.
    pub fn container_key(&self) -> Result<ContainerKey, StateError> {
        let key = self.secret(
            container_tokens::KEY_FILE,
            container_tokens::KEY_LEN,
            "container tokens",
            || random_bytes(container_tokens::KEY_LEN),
        )?;
        Ok(ContainerKey::from_key(
            key.try_into().expect("length checked"),
        ))
    }
}

/// The key that signs the identity document (PKCS#8), and its certificate, which verifiers need
/// and fintors writes where they can find it.
pub const IDENTITY_KEY_FILE: &str = "identity-signing.key";
pub const IDENTITY_CERTIFICATE_FILE: &str = "identity-certificate.pem";
const IDENTITY_LOCK_FILE: &str = "identity-signing.lock";

impl StateDir {
    /// The identity document's signer: its key made on first use and kept, its certificate
    /// written beside it whenever a new one is made (first use, or a key that changed). A lock
    /// makes two makers (two daemons, or a retry beside an attempt still running) take turns,
    /// so the second finds the first's key and certificate rather than half a file.
    pub fn identity_signer(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<IdentitySigner, StateError> {
        let lock_path = self.file(IDENTITY_LOCK_FILE);
        let _turn = crate::platform::files::lock_exclusive(&lock_path, true).map_err(|reason| {
            StateError::Io {
                path: lock_path.clone(),
                reason,
            }
        })?;
        let key_path = self.file(IDENTITY_KEY_FILE);
        let key = self.private_file(IDENTITY_KEY_FILE, || {
            identity_signing::generate_key().map_err(|reason| StateError::Identity {
                path: key_path.clone(),
                reason,
            })
        })?;
        let certificate_path = self.file(IDENTITY_CERTIFICATE_FILE);
        let kept = std::fs::read_to_string(&certificate_path).ok();
        let (signer, new) = IdentitySigner::new(&key, kept.as_deref(), now).map_err(|reason| {
            StateError::Identity {
                path: match reason {
                    SigningError::Certificate(_) => certificate_path.clone(),
                    _ => key_path.clone(),
                },
                reason,
            }
        })?;
        if new {
            crate::platform::files::replace_private(
                &certificate_path,
                signer.certificate_pem().as_bytes(),
            )
            .map_err(|reason| StateError::Io {
                path: certificate_path,
                reason,
            })?;
        }
        Ok(signer)
    }
}

/// `n` bytes from the operating system's CSPRNG.
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
    fn an_existing_state_directory_open_to_others_is_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        StateDir::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    /// A directory another user made (say, in a shared `/tmp`) is theirs to read: refused,
    /// with the fix. Giving a directory away takes root, which CI has.
    #[test]
    fn a_state_directory_of_another_user_is_refused() {
        if !fintors_testkit::as_root(
            crate::platform::users::effective_uid(),
            "giving a directory to another user",
        ) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        std::fs::create_dir(&path).unwrap();
        std::os::unix::fs::chown(&path, Some(4242), Some(4242)).unwrap();
        let Err(e) = StateDir::open(&path) else {
            panic!("another user's directory was opened");
        };
        assert!(matches!(e, StateError::NotMine { uid: 4242, .. }), "{e}");
        assert!(e.to_string().contains("choose your own with"), "{e}");
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
    fn the_container_key_persists_so_tokens_survive_restarts() {
        use crate::ec2::container_tokens::Scope;
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let token = state.container_key().unwrap().token(Scope::Role("ops"));
        assert_eq!(
            state.container_key().unwrap().token(Scope::Role("ops")),
            token
        );
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
