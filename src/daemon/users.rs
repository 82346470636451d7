//! `allow_users` / `--allow-users`: the local users besides the daemon's own and root whose
//! processes are answered, resolved to uids once at start-up so that a name that is not a user
//! is one line before anything listens.

use crate::http::owner::AllowedUsers;
use crate::platform::users::uid_of;

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
