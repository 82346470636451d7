//! IAM role ARNs, split once into the parts fintors needs (partition, account, name).

use std::fmt;

use super::names::{Invalid, check_charset, is_role_name_char};

/// `arn:<partition>:iam::<12 digits>:role/<path/>name`, split into the parts fintors needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    arn: String,
    partition_len: usize,
    account_id: String,
    name: String,
}

impl RoleArn {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        const SHAPE: &str = "expected arn:<partition>:iam::<12-digit account>:role/[path/]name";
        let bad = |why: &str| Invalid(format!("{s:?} is not an IAM role ARN: {why} ({SHAPE})"));
        if !(20..=2048).contains(&s.len()) {
            return Err(bad("length must be 20..=2048"));
        }
        let mut parts = s.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad("wrong prefix"));
        };
        if partition.is_empty()
            || !partition
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-')
        {
            return Err(bad("bad partition"));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the account id must be 12 digits"));
        }
        let Some(path_and_name) = resource.strip_prefix("role/") else {
            return Err(bad("the resource must start with role/"));
        };
        let (path, name) = match path_and_name.rfind('/') {
            Some(i) => (&path_and_name[..=i], &path_and_name[i + 1..]),
            None => ("", path_and_name),
        };
        if !path.bytes().all(|b| (0x21..=0x7e).contains(&b)) || path.contains("//") {
            return Err(bad("bad role path"));
        }
        check_charset(
            name,
            1,
            64,
            is_role_name_char,
            "letters, digits and + = , . @ _ -",
        )
        .map_err(|e| bad(&format!("role name: {e}")))?;
        Ok(RoleArn {
            arn: s.to_owned(),
            partition_len: partition.len(),
            account_id: account.to_owned(),
            name: name.to_owned(),
        })
    }
    pub fn as_str(&self) -> &str {
        &self.arn
    }
    pub fn partition(&self) -> &str {
        &self.arn[4..4 + self.partition_len]
    }
    pub fn account_id(&self) -> &str {
        &self.account_id
    }
    /// The role's name without its path.
    pub fn role_name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arn_with_path_is_accepted() {
        let arn = RoleArn::parse("arn:aws:iam::123456789012:role/a/b/c-role").unwrap();
        assert_eq!(arn.role_name(), "c-role");
        assert_eq!(arn.partition(), "aws");
        assert_eq!(arn.account_id(), "123456789012");
    }
}
