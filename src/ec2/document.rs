//! The JSON documents IMDS serves, byte for byte in EC2's own layout, and the container
//! endpoint's.
//!
//! Real EC2 pretty-prints with a two-space indent and `" : "` between key and value, in a fixed
//! field order, with no trailing newline. Parsers would not care, but people diff these against
//! real instances and some tools scrape them with regular expressions, so fintors matches
//! exactly: each document is a serde type (its field order is EC2's) written by one formatter,
//! [`Ec2Formatter`]. Credential documents are rendered once per credential and served as bytes.

use std::io;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::ser::{Formatter, PrettyFormatter};

use crate::model::{Credentials, RoleArn, Secret, time};

pub use crate::model::time::format as timestamp;

/// `/latest/meta-data/iam/security-credentials/<role>` (and the `-extended` variant), or in its
/// place the error form EC2 serves when the role cannot be assumed: a `Code` other than
/// `Success` and a `Message`. The client subcommands read the same type.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CredentialsDocument {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::option"
    )]
    pub last_updated: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::model::secret::serialize_exposed"
    )]
    pub secret_access_key: Option<Secret>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::model::secret::serialize_exposed"
    )]
    pub token: Option<Secret>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::option"
    )]
    pub expiration: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

impl std::fmt::Debug for CredentialsDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsDocument")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

impl CredentialsDocument {
    /// The success document; with `account_id`, the `-extended` variant.
    pub fn success(
        creds: &Credentials,
        last_updated: DateTime<Utc>,
        account_id: Option<&str>,
    ) -> Self {
        CredentialsDocument {
            code: "Success".into(),
            message: None,
            last_updated: Some(last_updated),
            r#type: Some("AWS-HMAC".into()),
            access_key_id: Some(creds.access_key_id.clone()),
            secret_access_key: Some(creds.secret_access_key.clone()),
            token: Some(creds.session_token.clone()),
            expiration: Some(creds.expiration),
            account_id: account_id.map(str::to_owned),
        }
    }

    /// What EC2 serves in place of credentials when the role cannot be assumed: the error's
    /// code (e.g. `AccessDenied`), so SDKs that read `Code` report it instead of a parse
    /// failure.
    pub fn error(code: &str, message: &str, last_updated: DateTime<Utc>) -> Self {
        CredentialsDocument {
            code: code.into(),
            message: Some(message.into()),
            last_updated: Some(last_updated),
            r#type: None,
            access_key_id: None,
            secret_access_key: None,
            token: None,
            expiration: None,
            account_id: None,
        }
    }

    /// The credentials, when this is a complete success document.
    pub fn credentials(&self) -> Option<Credentials> {
        match (
            self.code.as_str(),
            &self.access_key_id,
            &self.secret_access_key,
            &self.token,
            self.expiration,
        ) {
            ("Success", Some(key), Some(secret), Some(token), Some(expiration)) => {
                Some(Credentials {
                    access_key_id: key.clone(),
                    secret_access_key: secret.clone(),
                    session_token: token.clone(),
                    expiration,
                })
            }
            _ => None,
        }
    }
}

/// `/latest/meta-data/identity-credentials/ec2/info`: the account of the instance's own
/// identity credentials (which fintors does not serve: the role's are what callers want).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IdentityCredentialsInfo<'a> {
    pub code: &'static str,
    #[serde(with = "time")]
    pub last_updated: DateTime<Utc>,
    pub account_id: &'a str,
}

/// `/latest/meta-data/iam/info` for a role.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IamInfo {
    pub code: &'static str,
    #[serde(with = "time")]
    pub last_updated: DateTime<Utc>,
    pub instance_profile_arn: String,
    pub instance_profile_id: String,
}

impl IamInfo {
    /// The instance profile named after the role `arn`, in its account.
    pub fn new(arn: &RoleArn, last_updated: DateTime<Utc>) -> Self {
        IamInfo::named(
            arn.partition(),
            arn.account_id(),
            arn.role_name(),
            last_updated,
        )
    }

    /// The instance profile `name` in `account`: for a role whose ARN is not known (a
    /// credential command's), named after its alias.
    pub fn named(partition: &str, account: &str, name: &str, last_updated: DateTime<Utc>) -> Self {
        let instance_profile_arn =
            format!("arn:{partition}:iam::{account}:instance-profile/{name}");
        IamInfo {
            code: "Success",
            last_updated,
            instance_profile_id: instance_profile_id(&instance_profile_arn),
            instance_profile_arn,
        }
    }
}

/// A stable, plausible instance profile id (`AIPA` + 17 characters) derived from the instance
/// profile's ARN, so the same role always reports the same id.
fn instance_profile_id(profile_arn: &str) -> String {
    use sha2::Digest;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = sha2::Sha256::digest(profile_arn.as_bytes());
    let mut id = String::from("AIPA");
    id.extend(
        digest
            .iter()
            .take(17)
            .map(|b| ALPHABET[(b & 31) as usize] as char),
    );
    id
}

/// The container credentials endpoint's answer (`AWS_CONTAINER_CREDENTIALS_FULL_URI`), in the
/// compact form the SDKs' container providers read.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerCredentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub token: &'a str,
    #[serde(with = "time")]
    pub expiration: DateTime<Utc>,
    /// The role's account and ARN, when known (not for a credential command's role).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<&'a str>,
}

impl<'a> ContainerCredentials<'a> {
    pub fn new(creds: &'a Credentials, arn: Option<&'a RoleArn>) -> Self {
        ContainerCredentials {
            access_key_id: &creds.access_key_id,
            secret_access_key: creds.secret_access_key.expose(),
            token: creds.session_token.expose(),
            expiration: creds.expiration,
            account_id: arn.map(RoleArn::account_id),
            role_arn: arn.map(RoleArn::as_str),
        }
    }
}

/// The container endpoint's refusals: `{"Code": ..., "Message": ...}`, as ECS answers them;
/// written by the endpoint, read by `fintors exec` to say why a role cannot be had.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerError<'a> {
    #[serde(borrow)]
    pub code: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub message: std::borrow::Cow<'a, str>,
}

/// EC2's layout: serde_json's pretty printer with a two-space indent, but `" : "` between a key
/// and its value.
pub struct Ec2Formatter(PrettyFormatter<'static>);

impl Default for Ec2Formatter {
    fn default() -> Self {
        Ec2Formatter(PrettyFormatter::with_indent(b"  "))
    }
}

impl Formatter for Ec2Formatter {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b" : ")
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// `document` in EC2's layout.
pub fn render<T: Serialize>(document: &T) -> String {
    let mut out = Vec::with_capacity(512);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Ec2Formatter::default());
    document
        .serialize(&mut serializer)
        .expect("documents are plain data");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// The page EC2's metadata service answers an error with (`404 - Not Found`, `401 -
/// Unauthorized`, `400 - Bad Request`), served as `text/html`. Its layout is the one AWS's own
/// metadata mock (`aws/amazon-ec2-metadata-mock`, `pkg/server/httpserver.go`) records; readers
/// that tell "no such entry" from "no metadata service here" by the body see the page they know.
pub fn error_page(status: u16, reason: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n\
         <!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n\
         \t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n\
         <html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n \
         <head>\n  <title>{status} - {reason}</title>\n </head>\n \
         <body>\n  <h1>{status} - {reason}</h1>\n </body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let doc = render(&CredentialsDocument::success(
            &creds(),
            at("2021-09-20T21:42:26Z"),
            None,
        ));
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
        let doc = render(&CredentialsDocument::success(
            &creds(),
            at("2021-09-20T21:42:26Z"),
            Some("123456789012"),
        ));
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
        let doc = render(&CredentialsDocument::error(
            "AccessDenied",
            "not authorized",
            at("2021-09-20T21:42:26Z"),
        ));
        assert_eq!(
            doc,
            "{\n  \"Code\" : \"AccessDenied\",\n  \"Message\" : \"not authorized\",\n  \
             \"LastUpdated\" : \"2021-09-20T21:42:26Z\"\n}"
        );
    }

    #[test]
    fn a_value_containing_the_key_separator_is_left_alone() {
        let doc = render(&CredentialsDocument::error(
            "X",
            "a \": b",
            at("2021-09-20T21:42:26Z"),
        ));
        assert!(doc.contains(r#""Message" : "a \": b""#), "{doc}");
    }

    #[test]
    fn a_rendered_document_reads_back_as_the_same_credentials() {
        let doc = render(&CredentialsDocument::success(
            &creds(),
            at("2021-09-20T21:42:26Z"),
            None,
        ));
        let read: CredentialsDocument = serde_json::from_str(&doc).unwrap();
        let back = read.credentials().unwrap();
        assert_eq!(back.secret_access_key.expose(), "se\"cret");
        assert_eq!(back.expiration, at("2021-09-21T04:16:53Z"));
        let error: CredentialsDocument = serde_json::from_str(&render(
            &CredentialsDocument::error("AccessDenied", "no", at("2021-09-20T21:42:26Z")),
        ))
        .unwrap();
        assert!(error.credentials().is_none());
        assert_eq!(error.message.as_deref(), Some("no"));
    }

    #[test]
    fn iam_info_names_a_stable_instance_profile() {
        let arn = RoleArn::parse("arn:aws:iam::123456789012:role/dev/example").unwrap();
        let a = render(&IamInfo::new(&arn, at("2021-09-20T21:42:26Z")));
        let v: serde_json::Value = serde_json::from_str(&a).unwrap();
        assert_eq!(
            v["InstanceProfileArn"],
            "arn:aws:iam::123456789012:instance-profile/example"
        );
        let id = v["InstanceProfileId"].as_str().unwrap();
        assert!(id.starts_with("AIPA") && id.len() == 21, "{id}");
        assert_eq!(a, render(&IamInfo::new(&arn, at("2021-09-20T21:42:26Z"))));
        assert!(
            a.starts_with("{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : "),
            "{a}"
        );
    }

    #[test]
    fn error_pages_have_ec2s_layout() {
        let page = error_page(404, "Not Found");
        assert!(
            page.starts_with("<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<!DOCTYPE html")
        );
        assert!(
            page.contains("\n  <title>404 - Not Found</title>\n"),
            "{page}"
        );
        assert!(
            page.ends_with(" <body>\n  <h1>404 - Not Found</h1>\n </body>\n</html>\n"),
            "{page}"
        );
    }
}
