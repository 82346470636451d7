//! Why a named profile gives no credentials, in the user's terms. aws-config says "could not find
//! source profile identiy referenced from the root profile" for a typo, and nothing at all about
//! a credentials file that is not there; this says which file is missing, or that no file
//! defines the profile and which one was probably meant.

use std::path::Path;

use aws_types::os_shim_internal::{Env, Fs};

use crate::config::aws_file;
use crate::model::suggest::closest;

/// What is wrong with reading `profile` from the AWS config file and `credentials_file` (the
/// configured one; `None`: the standard place), if it is a missing file or a missing profile.
/// `None` when the profile is there (what is wrong is inside it, which aws-config says well).
pub(super) async fn why_not(credentials_file: Option<&Path>, profile: &str) -> Option<String> {
    let files = super::profile_files(credentials_file);
    let set = aws_config::profile::load(&Fs::real(), &Env::real(), &files, None)
        .await
        .ok()?;
    if set.get_profile(profile).is_some() {
        return None;
    }
    let config = aws_file("AWS_CONFIG_FILE", "~/.aws/config");
    let credentials = match credentials_file {
        Some(file) if !file.exists() => {
            return Some(format!(
                "the credentials file {} does not exist, and {} has no profile \"{profile}\"",
                file.display(),
                config.display()
            ));
        }
        Some(file) => file.to_owned(),
        None => aws_file("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"),
    };
    let mut why = format!(
        "no profile \"{profile}\" in {} or {}",
        credentials.display(),
        config.display()
    );
    if let Some(meant) = closest(profile, set.profiles()) {
        why.push_str(&format!(" (did you mean \"{meant}\"?)"));
    }
    Some(why)
}
