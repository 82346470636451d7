//! The `instance` section: what the metadata tree says about "this instance", every key optional.
//! Values are checked here, where the file is read; the defaults that depend on the host (ids
//! from /etc/machine-id, the boot time) are filled in by the `ec2` layer.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde_json::Value;

use super::expand_tilde;
use super::source::Checker;
use crate::model::Region;

pub const INSTANCE_FIELDS: [&str; 16] = [
    "region",
    "availability_zone",
    "instance_id",
    "instance_type",
    "ami_id",
    "hostname",
    "local_ipv4",
    "ipv6",
    "mac",
    "public_ipv4",
    "public_hostname",
    "security_groups",
    "block_devices",
    "tags",
    "ssh_public_key",
    "user_data",
];

/// Where the section's problems are reported.
const AT: [&str; 1] = ["instance"];

/// The `instance` section, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceConfig {
    /// The region the metadata reports when the active role names none: `region`, or the one
    /// `availability_zone` implies.
    pub region: Option<Region>,
    /// The zone's letter after the region, e.g. "a".
    pub zone_suffix: Option<String>,
    pub instance_id: Option<String>,
    pub instance_type: Option<String>,
    pub ami_id: Option<String>,
    pub hostname: Option<String>,
    pub local_ipv4: Option<Ipv4Addr>,
    /// The interface's IPv6 address; with one, the tree has EC2's IPv6 entries.
    pub ipv6: Option<Ipv6Addr>,
    pub mac: Option<String>,
    pub public_ipv4: Option<Ipv4Addr>,
    pub public_hostname: Option<String>,
    pub security_groups: Option<Vec<String>>,
    /// Volumes beyond the root one: `ebsN`, `ephemeralN` or `swap` to a device name.
    pub block_devices: BTreeMap<String, String>,
    /// Instance tags, served under `tags/instance/`; `None` leaves "tags in metadata" off, as
    /// EC2 does unless asked.
    pub tags: Option<BTreeMap<String, String>>,
    /// Files with OpenSSH public keys, served as `public-keys/N/openssh-key`; a `*` in a file
    /// name matches any run of characters (`~/.ssh/*.pub`: every key of the user's, opt-in).
    pub ssh_public_keys: Vec<PathBuf>,
    /// A file served as `/latest/user-data`.
    pub user_data: Option<PathBuf>,
}

impl InstanceConfig {
    pub(super) fn read(checker: &mut Checker, value: &Value) -> InstanceConfig {
        let Some(object) = checker.object(&AT, value, &INSTANCE_FIELDS) else {
            return InstanceConfig::default();
        };
        let string = |checker: &mut Checker, name: &str| checker.field::<String>(&AT, object, name);
        let checked =
            |checker: &mut Checker, name: &str, check: fn(&str) -> Result<String, String>| {
                let value = string(checker, name)?;
                check(&value)
                    .map_err(|why| checker.report(&["instance", name], why))
                    .ok()
            };
        let region = string(checker, "region").and_then(|r| {
            Region::parse(&r)
                .map_err(|e| checker.report(&["instance", "region"], e.0))
                .ok()
        });
        let zone = string(checker, "availability_zone");
        let (region, zone_suffix) = match zone {
            None => (region, None),
            Some(zone) => match split_zone(&zone, region.as_ref()) {
                Ok((implied, suffix)) => (region.or(Some(implied)), Some(suffix)),
                Err(why) => {
                    checker.report(&["instance", "availability_zone"], why);
                    (region, None)
                }
            },
        };
        InstanceConfig {
            region,
            zone_suffix,
            instance_id: checked(checker, "instance_id", |v| checked_id(v, "i-")),
            instance_type: string(checker, "instance_type"),
            ami_id: checked(checker, "ami_id", |v| checked_id(v, "ami-")),
            hostname: string(checker, "hostname"),
            local_ipv4: checker.field(&AT, object, "local_ipv4"),
            ipv6: checker.field(&AT, object, "ipv6"),
            mac: checked(checker, "mac", checked_mac),
            public_ipv4: checker.field(&AT, object, "public_ipv4"),
            public_hostname: string(checker, "public_hostname"),
            security_groups: checker.field(&AT, object, "security_groups"),
            block_devices: checked_map(checker, object, "block_devices", checked_device)
                .unwrap_or_default(),
            tags: checked_map(checker, object, "tags", checked_tag),
            ssh_public_keys: checker
                .field::<OneOrMany>(&AT, object, "ssh_public_key")
                .map(OneOrMany::into_vec)
                .unwrap_or_default()
                .iter()
                .map(|p| expand_tilde(p))
                .collect(),
            user_data: string(checker, "user_data").map(|p| expand_tilde(&p)),
        }
    }
}

/// A path, or a list of them.
#[derive(serde::Deserialize)]
#[serde(untagged, expecting = "a file name or a list of file names")]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// `eu-west-1c` -> (`eu-west-1`, `c`). Clients derive the region by dropping the zone's last
/// character, so a zone must be exactly the region and one letter.
fn split_zone(zone: &str, region: Option<&Region>) -> Result<(Region, String), String> {
    let shape = |why: &str| match region {
        Some(r) => format!(
            "{zone:?} {why}: it must be the region {:?} followed by one letter, e.g. \"{}a\" \
             (clients derive the region by dropping the last character)",
            r.as_str(),
            r.as_str()
        ),
        None => format!(
            "{zone:?} {why}: it must be a region followed by one letter, e.g. \"us-east-1a\" \
             (clients derive the region by dropping the last character)"
        ),
    };
    let Some(letter) = zone.chars().last().filter(char::is_ascii_lowercase) else {
        return Err(shape("does not end in a zone letter"));
    };
    let implied = Region::parse(&zone[..zone.len() - 1])
        .map_err(|_| shape("does not start with a region"))?;
    if region.is_some_and(|r| r != &implied) {
        return Err(shape("is in another region"));
    }
    Ok((implied, letter.to_string()))
}

/// The string-to-string object `name`, each entry checked by `check` (which says what is wrong
/// with a key or value); entries that fail are reported and left out.
fn checked_map(
    checker: &mut Checker,
    object: &serde_json::Map<String, Value>,
    name: &str,
    check: fn(&str, &str) -> Result<(), String>,
) -> Option<BTreeMap<String, String>> {
    let map: BTreeMap<String, String> = checker.field(&AT, object, name)?;
    let kept = map
        .into_iter()
        .filter(|(key, value)| match check(key, value) {
            Ok(()) => true,
            Err(why) => {
                checker.report(&["instance", name, key], why);
                false
            }
        })
        .collect();
    Some(kept)
}

/// EC2's rule for tags in metadata: keys of 1 to 128 letters, digits and `+-=.,_:@`, not `.`,
/// `..` or `_index` (they would be paths); values of at most 256 characters.
fn checked_tag(key: &str, value: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "+-=.,_:@".contains(c);
    if key.is_empty() || key.len() > 128 || !key.chars().all(allowed) {
        return Err(format!(
            "tag key {key:?} must be 1 to 128 letters, digits or + - = . , _ : @ \
             (EC2 serves no other tags in metadata)"
        ));
    }
    if matches!(key, "." | ".." | "_index") {
        return Err(format!("tag key {key:?} cannot be served in metadata"));
    }
    if value.chars().count() > 256 {
        return Err(format!("the value of tag {key:?} is over 256 characters"));
    }
    Ok(())
}

/// `ebsN`, `ephemeralN` (N a number) or `swap`, to a device name such as `sdb` or `/dev/sdb`.
fn checked_device(key: &str, device: &str) -> Result<(), String> {
    let numbered = |prefix: &str| {
        key.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()))
    };
    if !(key == "swap" || numbered("ebs") || numbered("ephemeral")) {
        return Err(format!(
            "{key:?} is not a mapping EC2 lists: use ebsN, ephemeralN or swap (ami and root are the root volume's)"
        ));
    }
    let name = device.strip_prefix("/dev/").unwrap_or(device);
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(format!(
            "{device:?} is not a device name like sdb or /dev/sdb"
        ));
    }
    Ok(())
}

fn checked_id(value: &str, prefix: &str) -> Result<String, String> {
    let hex = value.strip_prefix(prefix).unwrap_or("");
    if (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(format!(
            "{value:?} is not an id like {prefix}0123456789abcdef0"
        ))
    }
}

fn checked_mac(mac: &str) -> Result<String, String> {
    let ok = mac.len() == 17
        && mac
            .split(':')
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(mac.to_ascii_lowercase())
    } else {
        Err(format!(
            "{mac:?} is not a MAC address like 02:ab:cd:ef:01:23"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::Source;

    fn read(text: &str) -> (InstanceConfig, Vec<String>) {
        let source = Source::parse(text).unwrap();
        let mut checker = source.checker();
        let instance = InstanceConfig::read(&mut checker, &source.value["instance"]);
        let problems = checker
            .into_problems()
            .iter()
            .map(|p| p.to_string())
            .collect();
        (instance, problems)
    }

    #[test]
    fn a_zone_implies_its_region() {
        let (i, problems) = read(r#"{"instance": {"availability_zone": "eu-west-1c"}}"#);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(i.region.unwrap().as_str(), "eu-west-1");
        assert_eq!(i.zone_suffix.as_deref(), Some("c"));
    }

    #[test]
    fn a_zone_must_be_its_region_plus_one_letter() {
        let (_, problems) =
            read(r#"{"instance": {"region": "eu-west-1", "availability_zone": "eu-west-2a"}}"#);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("field \"instance.availability_zone\""));
        assert!(
            problems[0].contains("followed by one letter"),
            "{problems:?}"
        );
    }

    #[test]
    fn every_malformed_value_is_reported() {
        let (_, problems) = read(
            r#"{"instance": {"instance_id": "x-123", "ami_id": "ami-xyz", "mac": "02:00",
                "local_ipv4": "nope", "colour": "red"}}"#,
        );
        let fields: Vec<&str> = problems
            .iter()
            .map(|p| p.split('"').nth(1).unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "instance.instance_id",
                "instance.ami_id",
                "instance.mac",
                "instance.local_ipv4",
                "instance.colour"
            ],
            "{problems:?}"
        );
    }

    #[test]
    fn tags_are_read_with_their_values() {
        let (i, problems) = read(
            r#"{"instance": {"tags": {"Name": "dev-box", "aws:autoscaling:groupName": "web"}}}"#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let tags = i.tags.unwrap();
        assert_eq!(tags["Name"], "dev-box");
        assert_eq!(tags["aws:autoscaling:groupName"], "web");
    }

    #[test]
    fn block_devices_are_read_by_mapping_name() {
        let (i, problems) = read(
            r#"{"instance": {"block_devices": {"ebs1": "/dev/sdb", "ephemeral0": "sdc", "swap": "sdd"}}}"#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(i.block_devices["ephemeral0"], "sdc");
        assert_eq!(i.block_devices.len(), 3);
    }

    #[test]
    fn an_ipv6_address_is_read() {
        let (i, problems) = read(r#"{"instance": {"ipv6": "2001:db8:1234:1a00::10"}}"#);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(i.ipv6.unwrap().to_string(), "2001:db8:1234:1a00::10");
        let (_, problems) = read(r#"{"instance": {"ipv6": "10.0.0.1"}}"#);
        assert_eq!(problems.len(), 1, "an IPv4 address is not one");
    }

    #[test]
    fn tags_off_unless_configured() {
        let (i, _) = read(r#"{"instance": {}}"#);
        assert_eq!(i.tags, None);
        let (i, _) = read(r#"{"instance": {"tags": {}}}"#);
        assert_eq!(i.tags, Some(BTreeMap::new()), "on, with no tags");
    }

    #[test]
    fn tags_metadata_cannot_serve_are_reported_by_key() {
        let long = "v".repeat(257);
        let (i, problems) = read(&format!(
            r#"{{"instance": {{"tags": {{"has space": "x", "a/b": "x", "..": "x", "_index": "x",
                "ok": "{long}", "fine": "y"}}}}}}"#
        ));
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("\"instance.tags.has space\"")),
            "{problems:?}"
        );
        assert_eq!(i.tags.unwrap().keys().collect::<Vec<_>>(), ["fine"]);
    }

    #[test]
    fn block_devices_must_be_mappings_ec2_lists() {
        let (i, problems) = read(
            r#"{"instance": {"block_devices": {"root": "sda", "ebs": "sdb", "ebs2": "/dev/SDB!", "swap": "xvdf"}}}"#,
        );
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert_eq!(i.block_devices.keys().collect::<Vec<_>>(), ["swap"]);
    }

    #[test]
    fn public_keys_are_one_file_or_a_list_of_files_and_patterns() {
        let (i, problems) = read(r#"{"instance": {"ssh_public_key": "/k/id.pub"}}"#);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(i.ssh_public_keys, [PathBuf::from("/k/id.pub")]);
        let (i, problems) = read(r#"{"instance": {"ssh_public_key": ["/k/a.pub", "/k/*.pub"]}}"#);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(i.ssh_public_keys.len(), 2);
        let (_, problems) = read(r#"{"instance": {"ssh_public_key": 7}}"#);
        assert!(
            problems[0].contains("a file name or a list of file names"),
            "{problems:?}"
        );
    }
}
