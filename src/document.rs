//! The JSON documents IMDS serves, byte for byte in EC2's own layout.
//!
//! Real EC2 pretty-prints with a two-space indent and `" : "` between key and value, in a fixed
//! field order, with no trailing newline. Parsers would not care, but people diff these against
//! real instances and some tools scrape them with regular expressions, so fintors matches exactly.
//! Documents are rendered once per credential and then served as bytes.

use chrono::{DateTime, Utc};

use crate::model::Credentials;
use crate::model::RoleArn;

/// The only timestamp format botocore accepts here (fractional seconds disable its expiry logic).
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format(TIMESTAMP_FORMAT).to_string()
}

/// Renders `fields` as an EC2-style JSON object of string values.
pub fn ec2_object(fields: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(
        64 + fields
            .iter()
            .map(|(k, v)| k.len() + v.len() + 10)
            .sum::<usize>(),
    );
    out.push('{');
    for (i, (key, value)) in fields.iter().enumerate() {
        out.push_str(if i == 0 { "\n  \"" } else { ",\n  \"" });
        out.push_str(key);
        out.push_str("\" : ");
        out.push_str(&serde_json::to_string(value).expect("strings always serialize"));
    }
    out.push_str("\n}");
    out
}

/// `/latest/meta-data/iam/security-credentials/<role>`; with `account_id`, the `-extended` variant.
pub fn credentials(
    creds: &Credentials,
    last_updated: DateTime<Utc>,
    account_id: Option<&str>,
) -> String {
    let last_updated = timestamp(last_updated);
    let expiration = timestamp(creds.expiration);
    let mut fields = vec![
        ("Code", "Success"),
        ("LastUpdated", last_updated.as_str()),
        ("Type", "AWS-HMAC"),
        ("AccessKeyId", creds.access_key_id.as_str()),
        ("SecretAccessKey", creds.secret_access_key.expose()),
        ("Token", creds.session_token.expose()),
        ("Expiration", expiration.as_str()),
    ];
    if let Some(account) = account_id {
        fields.push(("AccountId", account));
    }
    ec2_object(&fields)
}

/// What EC2 serves in place of credentials when the role cannot be assumed: the error's code
/// (e.g. `AccessDenied`), so SDKs that read `Code` report it instead of a parse failure.
pub fn error(code: &str, message: &str, last_updated: DateTime<Utc>) -> String {
    ec2_object(&[
        ("Code", code),
        ("Message", message),
        ("LastUpdated", &timestamp(last_updated)),
    ])
}

/// `/latest/meta-data/iam/info` for a role.
pub fn iam_info(arn: &RoleArn, last_updated: DateTime<Utc>) -> String {
    let profile_arn = format!(
        "arn:{}:iam::{}:instance-profile/{}",
        arn.partition(),
        arn.account_id(),
        arn.role_name()
    );
    ec2_object(&[
        ("Code", "Success"),
        ("LastUpdated", &timestamp(last_updated)),
        ("InstanceProfileArn", &profile_arn),
        ("InstanceProfileId", &instance_profile_id(arn)),
    ])
}

/// A stable, plausible instance profile id (`AIPA` + 17 characters) derived from the role ARN, so
/// the same role always reports the same id.
fn instance_profile_id(arn: &RoleArn) -> String {
    use sha2::Digest;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = sha2::Sha256::digest(arn.as_str().as_bytes());
    let mut id = String::from("AIPA");
    id.extend(
        digest
            .iter()
            .take(17)
            .map(|b| ALPHABET[(b & 31) as usize] as char),
    );
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Secret;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Secret::new("se\"cret"),
            session_token: Secret::new("tok/en+=="),
            expiration: at("2021-09-21T04:16:53.123Z"),
        }
    }

    #[test]
    fn credential_document_matches_ec2_layout_exactly() {
        let doc = credentials(&creds(), at("2021-09-20T21:42:26Z"), None);
        assert_eq!(
            doc,
            "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2021-09-20T21:42:26Z\",\n  \
             \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAEXAMPLE\",\n  \
             \"SecretAccessKey\" : \"se\\\"cret\",\n  \"Token\" : \"tok/en+==\",\n  \
             \"Expiration\" : \"2021-09-21T04:16:53Z\"\n}"
        );
    }

    #[test]
    fn extended_document_adds_account_id_last() {
        let doc = credentials(&creds(), at("2021-09-20T21:42:26Z"), Some("123456789012"));
        assert!(
            doc.ends_with(
                "\"Expiration\" : \"2021-09-21T04:16:53Z\",\n  \"AccountId\" : \"123456789012\"\n}"
            ),
            "{doc}"
        );
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["AccountId"], "123456789012");
    }

    #[test]
    fn error_document_carries_code_and_message() {
        let doc = error("AccessDenied", "not authorized", at("2021-09-20T21:42:26Z"));
        assert_eq!(
            doc,
            "{\n  \"Code\" : \"AccessDenied\",\n  \"Message\" : \"not authorized\",\n  \
             \"LastUpdated\" : \"2021-09-20T21:42:26Z\"\n}"
        );
    }

    #[test]
    fn iam_info_names_a_stable_instance_profile() {
        let arn = RoleArn::parse("arn:aws:iam::123456789012:role/dev/example").unwrap();
        let a = iam_info(&arn, at("2021-09-20T21:42:26Z"));
        let v: serde_json::Value = serde_json::from_str(&a).unwrap();
        assert_eq!(
            v["InstanceProfileArn"],
            "arn:aws:iam::123456789012:instance-profile/example"
        );
        let id = v["InstanceProfileId"].as_str().unwrap();
        assert!(id.starts_with("AIPA") && id.len() == 21, "{id}");
        assert_eq!(a, iam_info(&arn, at("2021-09-20T21:42:26Z")));
    }
}
