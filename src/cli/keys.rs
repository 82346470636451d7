//! The container endpoint's key, read by the client from its own user's state directory: the
//! same file the daemon keeps ([`crate::ec2::container_tokens`]), found the same way
//! (`--state-dir`, `FINTORS_STATE_DIR`, else the default). Never from a path the daemon names:
//! whoever answers on the daemon's port must not be able to make a client read a file and send
//! its contents anywhere.

use std::path::PathBuf;

use super::args::ClientArgs;
use crate::config::default_state_dir;
use crate::ec2::container_tokens::{ContainerKey, KEY_FILE, KEY_LEN};
use crate::platform::files::{Own, read_own};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no state directory to read the container key from: set HOME, or pass --state-dir")]
    NoStateDir,
    #[error(
        "cannot read the container key {path}: {reason} (run this as the user fintors runs as, \
         or point --state-dir / FINTORS_STATE_DIR at its state directory)"
    )]
    Read {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("{path} belongs to uid {uid}, not to you: it is not your fintors's key")]
    NotMine { path: PathBuf, uid: u32 },
    #[error("{path} is not a container key ({len} bytes): restart fintors to make a new one")]
    Damaged { path: PathBuf, len: usize },
}

/// This user's state directory: `--state-dir` (or `FINTORS_STATE_DIR`), else the default; none
/// when neither is set and there is no home.
pub fn state_dir(args: &ClientArgs) -> Option<PathBuf> {
    args.state_dir.clone().or_else(default_state_dir)
}

/// The key in this user's state directory. The file must be a plain file (not a link) that
/// belongs to this user.
pub fn container_key(args: &ClientArgs) -> Result<ContainerKey, KeyError> {
    let dir = state_dir(args).ok_or(KeyError::NoStateDir)?;
    let path = dir.join(KEY_FILE);
    let read = |reason| KeyError::Read {
        path: path.clone(),
        reason,
    };
    let key = match read_own(&path, KEY_LEN as u64 + 1).map_err(read)? {
        Own::Bytes(key) => key,
        Own::OtherUsers(uid) => return Err(KeyError::NotMine { path, uid }),
    };
    let len = key.len();
    let key: [u8; KEY_LEN] = key.try_into().map_err(|_| KeyError::Damaged {
        path: path.clone(),
        len,
    })?;
    Ok(ContainerKey::from_key(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ec2::container_tokens::Scope;

    fn args(dir: &std::path::Path) -> ClientArgs {
        ClientArgs {
            endpoint: None,
            config: "/nonexistent".into(),
            state_dir: Some(dir.to_owned()),
        }
    }

    #[test]
    fn the_key_is_read_from_the_state_directory_given() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), [3u8; KEY_LEN]).unwrap();
        let key = container_key(&args(dir.path())).unwrap();
        assert_eq!(
            key.token(Scope::Active),
            ContainerKey::from_key([3; KEY_LEN]).token(Scope::Active)
        );
    }

    #[test]
    fn a_link_in_place_of_the_key_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("elsewhere"), [3u8; KEY_LEN]).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), dir.path().join(KEY_FILE))
            .unwrap();
        let e = container_key(&args(dir.path())).unwrap_err();
        assert!(matches!(e, KeyError::Read { .. }), "{e}");
    }

    #[test]
    fn a_missing_or_damaged_key_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let e = container_key(&args(dir.path())).unwrap_err().to_string();
        assert!(e.contains("--state-dir"), "{e}");
        std::fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        let e = container_key(&args(dir.path())).unwrap_err();
        assert!(matches!(e, KeyError::Damaged { len: 5, .. }), "{e}");
    }
}
