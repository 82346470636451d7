//! What an EC2 instance looks like to its clients, with no HTTP in it: the instance metadata
//! service's paths and headers, its JSON documents in EC2's exact layout, the instance and its
//! metadata tree, the IMDSv2 session tokens and the container endpoint's tokens. The `http` layer serves these; the client side
//! reads the same documents.

pub mod container_tokens;
pub mod document;
pub mod events;
pub mod identity_signing;
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

/// `prefix` and 17 hex digits derived from `parts`: an id in EC2's form (`i-`, `sg-`,
/// `instance-event-`) that is the same every time for the same parts.
pub fn stable_id(prefix: &str, parts: &[&[u8]]) -> String {
    use sha2::Digest;
    let mut digest = sha2::Sha256::new();
    for part in parts {
        digest.update(part);
    }
    let hex: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{prefix}{}", &hex[..17])
}

/// Every version of the metadata API a real instance lists at `GET /`, oldest first, then
/// `latest` (recorded on instances, 2026-12-04). Every dated version serves the same tree as
/// `latest`: boot-time readers ask for the newest dated one they know and give up on a 404.
pub const API_VERSIONS: [&str; 27] = [
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
    "2011-01-01",
    "2011-05-01",
    "2012-01-12",
    "2014-02-25",
    "2014-11-05",
    "2015-10-20",
    "2016-04-19",
    "2016-06-30",
    "2016-09-02",
    "2018-03-28",
    "2018-08-17",
    "2018-09-24",
    "2019-10-01",
    "2020-10-27",
    "2021-01-03",
    "2021-03-23",
    "2021-07-15",
    "latest",
];

/// `path` under `/latest/` if it asks a dated version for its tree (`/2009-04-04/meta-data/...`,
/// its `user-data`, `dynamic`, or the version's own listing); `None` for every other path,
/// `/latest/...` included. The token path is `latest`'s alone, as on EC2.
pub fn as_latest(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?;
    let (version, below) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if version == "latest" || !API_VERSIONS.contains(&version) {
        return None;
    }
    let tree = below.is_empty()
        || below == "/"
        || ["/meta-data", "/user-data", "/dynamic"].iter().any(|part| {
            below
                .strip_prefix(part)
                .is_some_and(|r| r.is_empty() || r.starts_with('/'))
        });
    tree.then(|| format!("/latest{below}"))
}

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
    fn a_dated_version_reads_as_latest_for_its_tree_only() {
        let latest = |p: &str| as_latest(p);
        assert_eq!(
            latest("/2009-04-04/meta-data/instance-id").as_deref(),
            Some("/latest/meta-data/instance-id")
        );
        assert_eq!(
            latest("/1.0/user-data").as_deref(),
            Some("/latest/user-data")
        );
        assert_eq!(
            latest("/2021-07-15/dynamic/").as_deref(),
            Some("/latest/dynamic/")
        );
        assert_eq!(latest("/2016-09-02").as_deref(), Some("/latest"));
        assert_eq!(latest("/2016-09-02/").as_deref(), Some("/latest/"));
        assert_eq!(latest("/latest/meta-data/"), None);
        assert_eq!(
            latest("/2021-03-23/api/token"),
            None,
            "the token is latest's"
        );
        assert_eq!(latest("/2030-01-01/meta-data/"), None, "no such version");
        assert_eq!(latest("/2009-04-04/meta-datax"), None);
        assert_eq!(latest("/"), None);
    }

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
