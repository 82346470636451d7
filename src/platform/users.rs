//! Users: this process's effective uid, and a user's uid (for `allow_users`) and home (for a
//! command run with sudo) by name from the system's user database (`getpwnam_r`).

/// The effective uid of this process: whose files it may read, whose sockets it trusts.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The uid of the user `name`, from the system's user database.
pub fn uid_of(name: &str) -> Option<u32> {
    passwd_of(name, |entry| entry.pw_uid)
}

/// The home directory of the user `name`, from the system's user database: where a command run
/// with sudo finds the files of the user who ran sudo (`SUDO_USER`), not root's.
pub fn home_of(name: &str) -> Option<std::path::PathBuf> {
    passwd_of(name, |entry| {
        if entry.pw_dir.is_null() {
            return None;
        }
        // SAFETY: a non-null pw_dir points to a NUL-terminated string in the buffer, which
        // lives until passwd_of returns; it is copied out here.
        let dir = unsafe { std::ffi::CStr::from_ptr(entry.pw_dir) };
        use std::os::unix::ffi::OsStrExt;
        Some(std::path::PathBuf::from(std::ffi::OsStr::from_bytes(
            dir.to_bytes(),
        )))
    })
    .flatten()
}

/// `read` of the user database's entry for `name` (`getpwnam_r`), while its strings are valid.
fn passwd_of<T>(name: &str, read: impl FnOnce(&libc::passwd) -> T) -> Option<T> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: an all-zero passwd (null pointers, zero ids) is a valid value to be filled in.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call, the buffer's length is its real length, and
    // `found` is read only after the call, which sets it to null or to `&mut entry`.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then(|| read(&entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_home_is_its_own_and_a_stranger_has_none() {
        assert_eq!(home_of("root"), Some(std::path::PathBuf::from("/root")));
        assert_eq!(home_of("no-such-user-here"), None);
    }

    #[test]
    fn root_is_uid_0_and_a_stranger_is_none() {
        assert_eq!(uid_of("root"), Some(0));
        assert_eq!(uid_of("no-such-user-here"), None);
        assert_eq!(uid_of("nul\0in-name"), None);
    }
}
