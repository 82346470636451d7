//! What an EC2 instance looks like to its clients, with no HTTP in it: the instance metadata
//! service's paths and headers, its JSON documents in EC2's exact layout, the instance and its
//! metadata tree, the IMDSv2 session tokens and the container endpoint's tokens. The `http` layer serves these; the client side
//! reads the same documents.

pub mod container_tokens;
pub mod document;
pub mod instance;
pub mod tokens;

/// The address ECS serves container credentials on, and one of the few every SDK accepts plain
/// HTTP for in `AWS_CONTAINER_CREDENTIALS_FULL_URI` (besides loopback, 169.254.170.23 and
/// fd00:ec2::23): what `fintors network up --containers` gives containers on a bridge.
pub const CONTAINER_ADDR: &str = "169.254.170.2";
/// `PUT` here with [`TTL_HEADER`] for an IMDSv2 session token.
pub const TOKEN_PATH: &str = "/latest/api/token";
/// The session token, on every IMDSv2 request.
pub const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// The TTL a token is asked for, and its remaining lifetime on every answer.
pub const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
/// The instance profile's credentials: `<CREDENTIALS_PATH>/` lists the role, `<...>/<role>` is
/// its document; the `-extended` variant adds `AccountId` (Java v2, Kotlin, Ruby, PHP try it
/// first).
pub const CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials";
pub const EXTENDED_CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials-extended";

/// The alias a credentials path names, if it names one plainly (no further segment, nothing
/// percent-encoded), and whether it is the `-extended` path.
pub fn credentials_alias(path: &str) -> Option<(&str, bool)> {
    let (rest, extended) = match path.strip_prefix(CREDENTIALS_PATH) {
        Some(rest) => match rest.strip_prefix("-extended") {
            Some(rest) => (rest, true),
            None => (rest, false),
        },
        None => return None,
    };
    let alias = rest.strip_prefix('/')?;
    (!alias.is_empty() && !alias.contains(['/', '%'])).then_some((alias, extended))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_alias_names_plain_aliases_on_both_paths() {
        assert_eq!(
            credentials_alias(&format!("{CREDENTIALS_PATH}/dev")),
            Some(("dev", false))
        );
        assert_eq!(
            credentials_alias(&format!("{EXTENDED_CREDENTIALS_PATH}/dev")),
            Some(("dev", true))
        );
    }

    #[test]
    fn credentials_alias_leaves_everything_else_to_the_router() {
        let base = CREDENTIALS_PATH;
        for path in [
            base.to_owned(),
            format!("{base}/"),
            format!("{base}-extended/"),
            format!("{base}/dev/"),
            format!("{base}/dev/x"),
            format!("{base}/d%65v"),
            format!("{base}x/dev"),
            format!("{base}-extendedx/dev"),
            "/latest/meta-data/iam/info".to_owned(),
        ] {
            assert_eq!(credentials_alias(&path), None, "{path}");
        }
    }
}
