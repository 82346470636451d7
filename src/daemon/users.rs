//! `allow_users` / `--allow-users`: the local users besides the daemon's own and root whose
//! processes are answered, resolved to uids once at start-up so that a name that is not a user
//! is one line before anything listens.

use crate::http::owner::AllowedUsers;

#[derive(Debug, thiserror::Error)]
#[error(
    "allow_users: {0:?} is not a user of this machine (`getent passwd {0}` finds none); name an \
     existing user or give a numeric uid"
)]
pub struct UnknownUser(pub String);

/// The users whose connections every listener answers.
pub fn allowed(names: &[String]) -> Result<AllowedUsers, UnknownUser> {
    let uids = names
        .iter()
        .map(|name| match name.parse::<u32>() {
            Ok(uid) => Ok(uid),
            Err(_) => uid_of(name).ok_or_else(|| UnknownUser(name.clone())),
        })
        .collect::<Result<Vec<u32>, _>>()?;
    Ok(AllowedUsers::new(uids))
}

/// The uid of the user `name`, from the system's user database.
fn uid_of(name: &str) -> Option<u32> {
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
    (rc == 0 && !found.is_null()).then_some(entry.pw_uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uids_resolve_and_strangers_are_named() {
        assert!(allowed(&["root".into(), "4242".into()]).is_ok());
        let e = allowed(&["no-such-user-here".into()]).unwrap_err();
        assert!(
            e.to_string()
                .contains("\"no-such-user-here\" is not a user")
        );
    }
}
