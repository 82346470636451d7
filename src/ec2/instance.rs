//! The instance and its metadata tree: a plausible, self-consistent EC2 instance.
//!
//! Tools ask IMDS more than credentials: the AWS CLI and the SDKs look up their region, scripts
//! read the instance id or the identity document. fintors answers with values from the config's
//! optional `instance` section, or defaults derived from this host (stable across restarts, so a
//! script sees the same "instance" every day). The region follows the active role's `region` when
//! it has one, and the identity document's account is the active role's, because that is what a
//! real instance with that instance profile would report.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::Digest;

use super::document::{IdentityCredentialsInfo, render};
use super::events::Simulated;
use crate::config::InstanceConfig;
use crate::model::Region;
use crate::model::glob::glob;

/// The validated instance description; values that depend on the active role are resolved per
/// request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Region when the active role names none.
    pub region: Region,
    /// The zone letter(s) after the region, e.g. "a".
    pub zone_suffix: String,
    pub instance_id: String,
    pub instance_type: String,
    pub ami_id: String,
    pub reservation_id: String,
    pub interface_id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub hostname: Option<String>,
    pub local_ipv4: Ipv4Addr,
    pub ipv6: Option<Ipv6Addr>,
    pub mac: String,
    pub public_ipv4: Option<Ipv4Addr>,
    pub public_hostname: Option<String>,
    pub security_groups: Vec<String>,
    /// `ebsN`, `ephemeralN`, `swap` beyond the root volume.
    pub block_devices: BTreeMap<String, String>,
    /// `None`: tags in metadata are off.
    pub tags: Option<BTreeMap<String, String>>,
    /// Public key files, `*` allowed in a file name.
    pub ssh_public_keys: Vec<PathBuf>,
    pub user_data: Option<PathBuf>,
    pub pending_time: DateTime<Utc>,
}

impl Instance {
    /// The instance `config` describes, its gaps filled from `seed` (stable per host) and
    /// `default_region`.
    pub fn from_config(
        config: &InstanceConfig,
        seed: &[u8],
        default_region: &Region,
        pending_time: DateTime<Utc>,
    ) -> Self {
        let id = |prefix: &str, kind: &str| super::stable_id(prefix, &[seed, kind.as_bytes()]);
        let digest = sha2::Sha256::digest([seed, b"net"].concat());
        Instance {
            region: config
                .region
                .clone()
                .unwrap_or_else(|| default_region.clone()),
            zone_suffix: config.zone_suffix.clone().unwrap_or_else(|| "a".to_owned()),
            instance_id: config
                .instance_id
                .clone()
                .unwrap_or_else(|| id("i-", "instance")),
            instance_type: config
                .instance_type
                .clone()
                .unwrap_or_else(|| "m5.large".to_owned()),
            ami_id: config.ami_id.clone().unwrap_or_else(|| id("ami-", "ami")),
            reservation_id: id("r-", "reservation"),
            interface_id: id("eni-", "eni"),
            subnet_id: id("subnet-", "subnet"),
            vpc_id: id("vpc-", "vpc"),
            hostname: config.hostname.clone(),
            local_ipv4: config.local_ipv4.unwrap_or(Ipv4Addr::new(
                172,
                31,
                digest[0] & 0x7f,
                digest[1].max(4),
            )),
            ipv6: config.ipv6,
            mac: config.mac.clone().unwrap_or_else(|| {
                format!(
                    "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    digest[2], digest[3], digest[4], digest[5], digest[6]
                )
            }),
            public_ipv4: config.public_ipv4,
            public_hostname: config.public_hostname.clone(),
            security_groups: config
                .security_groups
                .clone()
                .unwrap_or_else(|| vec!["default".to_owned()]),
            block_devices: config.block_devices.clone(),
            tags: config.tags.clone(),
            ssh_public_keys: config.ssh_public_keys.clone(),
            user_data: config.user_data.clone(),
            pending_time,
        }
    }
}

/// What identifies this host across restarts: /etc/machine-id, else the host name.
pub fn host_seed() -> Vec<u8> {
    std::fs::read("/etc/machine-id")
        .or_else(|_| std::fs::read("/var/lib/dbus/machine-id"))
        .or_else(|_| std::fs::read("/etc/hostname"))
        .unwrap_or_else(|_| b"fintors".to_vec())
}

/// When this host booted (for `pendingTime`), else now.
pub fn boot_time() -> DateTime<Utc> {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<i64>().ok())
        })
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .unwrap_or_else(Utc::now)
}

/// The zone id EC2 uses for `region` + zone letter: `use1-az1` for us-east-1a.
pub fn zone_id(region: &str, suffix: &str) -> String {
    let parts: Vec<&str> = region.split('-').collect();
    let mut id = String::new();
    for (i, part) in parts.iter().enumerate() {
        id.push_str(match (i, *part) {
            (0, p) => p,
            (_, "northeast") => "ne",
            (_, "southeast") => "se",
            (_, "northwest") => "nw",
            (_, "southwest") => "sw",
            (_, "central") => "c",
            (_, p) if p.bytes().all(|b| b.is_ascii_digit()) => p,
            (_, p) => &p[..1],
        });
    }
    let n = suffix.bytes().next().map_or(1, |b| b - b'a' + 1);
    format!("{id}-az{n}")
}

/// One node of the tree.
enum Node {
    Leaf(String),
    Dir(BTreeMap<String, Node>),
    /// A directory whose listing EC2 words its own way (`public-keys/` lists `0=my-key`).
    Worded(String, BTreeMap<String, Node>),
}

fn leaf(v: impl Into<String>) -> Node {
    Node::Leaf(v.into())
}

fn dir<const N: usize>(entries: [(&str, Node); N]) -> Node {
    Node::Dir(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// The root volume's device, as an HVM instance from an EBS-backed AMI reports it.
const ROOT_DEVICE: &str = "/dev/xvda";
/// The default VPC's block, which the subnet's (`172.31.0.0/20`) lies in.
const VPC_CIDR: &str = "172.31.0.0/16";

/// `address`'s network of `prefix` bits, as a CIDR block (`2001:db8:1234:1a00::/64`).
fn ipv6_block(address: Ipv6Addr, prefix: u32) -> String {
    let bits = u128::from(address) & (u128::MAX << (128 - prefix));
    format!("{}/{prefix}", Ipv6Addr::from(bits))
}

/// A directory of `entries`, named by strings made at run time.
fn dir_of(entries: impl IntoIterator<Item = (String, Node)>) -> Node {
    Node::Dir(entries.into_iter().collect())
}

/// A stable, plausible security group id (`sg-` and 17 hex digits) for the group `name`.
fn group_id(name: &str) -> String {
    super::stable_id("sg-", &[name.as_bytes()])
}

/// The account an instance reports when no role has an ARN to take it from (only credential
/// commands are configured): the account of the EC2 documentation's examples.
pub const DEFAULT_ACCOUNT: &str = "123456789012";

/// The instance as seen with a given instance profile: what the tree depends on beyond the
/// instance is the active role's region, account and partition.
pub struct Context<'a> {
    pub instance: &'a Instance,
    pub region: &'a str,
    pub account_id: &'a str,
    pub partition: &'a str,
    /// The simulated events in force (`fintors simulate`).
    pub events: &'a Simulated,
}

impl Context<'_> {
    fn availability_zone(&self) -> String {
        format!("{}{}", self.region, self.instance.zone_suffix)
    }

    fn local_hostname(&self) -> String {
        self.instance.hostname.clone().unwrap_or_else(|| {
            let ip = self.instance.local_ipv4.to_string().replace('.', "-");
            if self.region == "us-east-1" {
                format!("ip-{ip}.ec2.internal")
            } else {
                format!("ip-{ip}.{}.compute.internal", self.region)
            }
        })
    }

    fn domain(&self) -> &'static str {
        if self.partition == "aws-cn" {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        }
    }

    fn tree(&self) -> Node {
        let i = self.instance;
        let local_hostname = self.local_hostname();
        let groups = i.security_groups.join("\n");
        let group_ids: Vec<String> = i.security_groups.iter().map(|g| group_id(g)).collect();
        let mut interface = BTreeMap::from([
            ("device-number".into(), leaf("0")),
            ("interface-id".into(), leaf(&i.interface_id)),
            ("local-hostname".into(), leaf(&local_hostname)),
            ("local-ipv4s".into(), leaf(i.local_ipv4.to_string())),
            ("mac".into(), leaf(&i.mac)),
            ("network-card-index".into(), leaf("0")),
            ("owner-id".into(), leaf(self.account_id)),
            ("security-group-ids".into(), leaf(group_ids.join("\n"))),
            ("security-groups".into(), leaf(&groups)),
            ("subnet-id".into(), leaf(&i.subnet_id)),
            ("subnet-ipv4-cidr-block".into(), leaf("172.31.0.0/20")),
            ("vpc-id".into(), leaf(&i.vpc_id)),
            ("vpc-ipv4-cidr-block".into(), leaf(VPC_CIDR)),
            ("vpc-ipv4-cidr-blocks".into(), leaf(VPC_CIDR)),
        ]);
        let identity_credentials = render(&IdentityCredentialsInfo {
            code: "Success",
            last_updated: i.pending_time,
            account_id: self.account_id,
        });
        let mut root = BTreeMap::from([
            ("ami-id".into(), leaf(&i.ami_id)),
            ("ami-launch-index".into(), leaf("0")),
            // An EBS-backed AMI has no manifest.
            ("ami-manifest-path".into(), leaf("(unknown)")),
            (
                "block-device-mapping".into(),
                dir_of(
                    [("ami", ROOT_DEVICE), ("root", ROOT_DEVICE)]
                        .into_iter()
                        .chain(
                            i.block_devices
                                .iter()
                                .map(|(k, v)| (k.as_str(), v.as_str())),
                        )
                        .map(|(name, device)| (name.to_owned(), leaf(device))),
                ),
            ),
            (
                "events".into(),
                dir([(
                    "maintenance",
                    dir([("history", leaf("[]")), ("scheduled", leaf("[]"))]),
                )]),
            ),
            ("hostname".into(), leaf(&local_hostname)),
            // The iam/ entries are served by the credential routes; listed here for discovery.
            (
                "iam".into(),
                dir([("info", leaf("")), ("security-credentials", dir([]))]),
            ),
            (
                "identity-credentials".into(),
                dir([("ec2", dir([("info", leaf(identity_credentials))]))]),
            ),
            ("instance-action".into(), leaf("none")),
            ("instance-id".into(), leaf(&i.instance_id)),
            ("instance-life-cycle".into(), leaf(self.events.life_cycle())),
            ("instance-type".into(), leaf(&i.instance_type)),
            ("local-hostname".into(), leaf(&local_hostname)),
            ("local-ipv4".into(), leaf(i.local_ipv4.to_string())),
            ("mac".into(), leaf(&i.mac)),
            (
                "placement".into(),
                dir([
                    ("availability-zone", leaf(self.availability_zone())),
                    (
                        "availability-zone-id",
                        leaf(zone_id(self.region, &i.zone_suffix)),
                    ),
                    ("region", leaf(self.region)),
                ]),
            ),
            ("profile".into(), leaf("default-hvm")),
            ("reservation-id".into(), leaf(&i.reservation_id)),
            ("security-groups".into(), leaf(&groups)),
            (
                "services".into(),
                dir([
                    ("domain", leaf(self.domain())),
                    ("partition", leaf(self.partition)),
                ]),
            ),
            ("system".into(), leaf("nitro")),
        ]);
        if let Some(ip) = i.public_ipv4 {
            root.insert("public-ipv4".into(), leaf(ip.to_string()));
            interface.insert("public-ipv4s".into(), leaf(ip.to_string()));
            interface.insert(
                "ipv4-associations".into(),
                Node::Dir(BTreeMap::from([(
                    ip.to_string(),
                    leaf(i.local_ipv4.to_string()),
                )])),
            );
        }
        if let Some(ip) = i.ipv6 {
            // A subnet gets a /64 of its VPC's /56 (EC2 User Guide, "IPv6 addressing").
            root.insert("ipv6".into(), leaf(ip.to_string()));
            interface.insert("ipv6s".into(), leaf(ip.to_string()));
            interface.insert("subnet-ipv6-cidr-blocks".into(), leaf(ipv6_block(ip, 64)));
            interface.insert("vpc-ipv6-cidr-blocks".into(), leaf(ipv6_block(ip, 56)));
        }
        if let Some(tags) = &i.tags {
            let tags = tags.iter().map(|(k, v)| (k.clone(), leaf(v)));
            root.insert("tags".into(), dir([("instance", dir_of(tags))]));
        }
        if let Some(h) = &i.public_hostname {
            root.insert("public-hostname".into(), leaf(h));
            interface.insert("public-hostname".into(), leaf(h));
        }
        let keys = public_keys(&i.ssh_public_keys);
        if !keys.is_empty() {
            // EC2 lists a key by index and key pair name; the file's name stands for the latter.
            let listing: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(n, (name, _))| format!("{n}={name}"))
                .collect();
            let entries = keys
                .into_iter()
                .enumerate()
                .map(|(n, (_, key))| (n.to_string(), dir([("openssh-key", leaf(key))])));
            root.insert(
                "public-keys".into(),
                Node::Worded(listing.join("\n"), entries.collect()),
            );
        }
        root.insert(
            "network".into(),
            dir([(
                "interfaces",
                dir([(
                    "macs",
                    Node::Dir(BTreeMap::from([(i.mac.clone(), Node::Dir(interface))])),
                )]),
            )]),
        );
        let mut root = Node::Dir(root);
        for (path, body) in self.events.entries() {
            insert_at(&mut root, path, leaf(body));
        }
        root
    }

    /// `/latest/dynamic/instance-identity/document`, in EC2's layout.
    pub fn identity_document(&self) -> String {
        let i = self.instance;
        render(&IdentityDocument {
            account_id: self.account_id,
            architecture: match std::env::consts::ARCH {
                "aarch64" => "arm64",
                a => a,
            },
            availability_zone: self.availability_zone(),
            billing_products: None,
            devpay_product_codes: None,
            image_id: &i.ami_id,
            instance_id: &i.instance_id,
            instance_type: &i.instance_type,
            kernel_id: None,
            marketplace_product_codes: None,
            pending_time: i.pending_time,
            private_ip: i.local_ipv4.to_string(),
            ramdisk_id: None,
            region: self.region,
            version: "2017-09-30",
        })
    }

    /// The text `/latest/meta-data/<path>` answers: a value, or a directory's listing (one entry
    /// a line, sub-directories with a trailing `/`); `None` for what the tree does not hold.
    pub fn meta_data(&self, path: &str) -> Option<String> {
        lookup(&self.tree(), path)
    }
}

/// The identity document's fields, in the order EC2 writes them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IdentityDocument<'a> {
    account_id: &'a str,
    architecture: &'a str,
    availability_zone: String,
    billing_products: Option<Vec<String>>,
    devpay_product_codes: Option<Vec<String>>,
    image_id: &'a str,
    instance_id: &'a str,
    instance_type: &'a str,
    kernel_id: Option<String>,
    marketplace_product_codes: Option<Vec<String>>,
    #[serde(with = "crate::model::time")]
    pending_time: DateTime<Utc>,
    private_ip: String,
    ramdisk_id: Option<String>,
    region: &'a str,
    version: &'a str,
}

/// `/latest/` (EC2 lists these without trailing slashes).
pub fn latest_listing(instance: &Instance) -> String {
    let mut entries = vec!["dynamic", "meta-data"];
    if instance.user_data.is_some() {
        entries.push("user-data");
    }
    entries.join("\n")
}

/// `/latest/dynamic/<path>` other than the identity document and its signatures
/// ([`super::identity_signing`]): its listings and values.
pub fn dynamic_listing(path: &str) -> Option<&'static str> {
    match path.trim_end_matches('/') {
        "" => Some("fws/\ninstance-identity/"),
        "fws" => Some("instance-monitoring"),
        // Detailed monitoring is off unless asked for at launch.
        "fws/instance-monitoring" => Some("disabled"),
        "instance-identity" => Some("document\npkcs7\nrsa2048\nsignature"),
        _ => None,
    }
}

/// The public keys `patterns` name, in their order (a pattern's matches by file name), each as
/// (key pair name, key). Only what [`public_key_in`] accepts is served.
fn public_keys(patterns: &[PathBuf]) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    for pattern in patterns {
        let name = pattern
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let files = if name.contains('*') {
            let dir = pattern.parent().unwrap_or(std::path::Path::new("."));
            let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .is_some_and(|n| glob(&name, &n.to_string_lossy()))
                })
                .collect();
            found.sort();
            found
        } else {
            vec![pattern.clone()]
        };
        for file in files {
            let Some(key) = public_key_in(&file) else {
                continue;
            };
            let stem = file
                .file_stem()
                .map_or_else(|| "key".to_owned(), |s| s.to_string_lossy().into_owned());
            keys.push((stem, key));
        }
    }
    keys
}

/// The largest file read as a public key: an RSA-16384 key's line is under 3 KiB.
const MAX_KEY_FILE: u64 = 16 * 1024;

/// The key types OpenSSH writes public keys of (`ssh-keygen -t`), certificates included.
const OPENSSH_KEY_TYPES: [&str; 12] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
];

/// The OpenSSH public key line in `file`, if that is all it holds: a regular file (not a FIFO
/// that would block the read), small, that no one but its owner may write, with one line of a
/// known key type whose base64 blob starts with that same type, as every OpenSSH public key
/// does. A pattern that also matches a private key (`~/.ssh/*`), an API key that happens to
/// start `sk-`, or a file another user planted is never served.
fn public_key_in(file: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(file).ok()?;
    if !meta.is_file() || meta.len() > MAX_KEY_FILE || meta.permissions().mode() & 0o022 != 0 {
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.trim();
    let mut fields = line.split(' ');
    let (kind, blob) = (fields.next()?, fields.next()?);
    if line.contains('\n') || !OPENSSH_KEY_TYPES.contains(&kind) {
        return None;
    }
    use base64::Engine;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .ok()?;
    let named = blob
        .get(..4)
        .map(|n| u32::from_be_bytes(n.try_into().expect("4 bytes")) as usize)
        .and_then(|n| blob.get(4..4 + n))?;
    (named == kind.as_bytes()).then(|| line.to_owned())
}

/// Puts `node` at `path` below `root`, making the directories on the way (an event's entries
/// join the tree where EC2 lists them).
fn insert_at(root: &mut Node, path: &str, node: Node) {
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    let mut at = root;
    for part in parent.split('/').filter(|p| !p.is_empty()) {
        let Node::Dir(entries) = at else { break };
        at = entries
            .entry(part.to_owned())
            .or_insert_with(|| Node::Dir(BTreeMap::new()));
    }
    match at {
        Node::Dir(entries) => {
            entries.insert(name.to_owned(), node);
        }
        _ => debug_assert!(false, "{path} runs into a value or a worded listing"),
    }
}

fn lookup(root: &Node, path: &str) -> Option<String> {
    let mut node = root;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        match node {
            Node::Dir(entries) | Node::Worded(_, entries) => node = entries.get(part)?,
            Node::Leaf(_) => return None,
        }
    }
    Some(match node {
        Node::Leaf(value) => value.clone(),
        Node::Worded(listing, _) => listing.clone(),
        Node::Dir(entries) => {
            let listing: Vec<String> = entries
                .iter()
                .map(|(name, child)| match child {
                    Node::Dir(_) | Node::Worded(..) => format!("{name}/"),
                    Node::Leaf(_) => name.clone(),
                })
                .collect();
            listing.join("\n")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(config: &InstanceConfig) -> Instance {
        Instance::from_config(
            config,
            b"seed",
            &Region::parse("us-east-1").unwrap(),
            DateTime::from_timestamp(0, 0).unwrap(),
        )
    }

    #[test]
    fn defaults_are_plausible_and_stable_per_host() {
        let a = instance(&InstanceConfig::default());
        let b = instance(&InstanceConfig::default());
        assert_eq!(a, b);
        assert!(
            a.instance_id.starts_with("i-") && a.instance_id.len() == 19,
            "{}",
            a.instance_id
        );
        assert!(a.ami_id.starts_with("ami-") && a.ami_id.len() == 21);
        assert!(a.mac.starts_with("02:") && a.mac.len() == 17);
        assert_eq!(a.local_ipv4.octets()[..2], [172, 31]);
        assert_eq!(
            (a.region.as_str(), a.zone_suffix.as_str()),
            ("us-east-1", "a")
        );
        let other = Instance::from_config(
            &InstanceConfig::default(),
            b"other host",
            &a.region,
            a.pending_time,
        );
        assert_ne!(a.instance_id, other.instance_id);
    }

    #[test]
    fn zone_ids_follow_ec2_naming() {
        assert_eq!(zone_id("us-east-1", "a"), "use1-az1");
        assert_eq!(zone_id("eu-west-1", "b"), "euw1-az2");
        assert_eq!(zone_id("ap-southeast-2", "a"), "apse2-az1");
        assert_eq!(zone_id("ca-central-1", "a"), "cac1-az1");
    }

    #[test]
    fn identity_document_uses_ec2_layout() {
        let i = instance(&InstanceConfig::default());
        let c = Context {
            instance: &i,
            region: "eu-west-1",
            account_id: "210987654321",
            partition: "aws",
            events: &Simulated::NONE,
        };
        let doc = c.identity_document();
        assert!(doc.contains("  \"accountId\" : \"210987654321\""), "{doc}");
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["availabilityZone"], "eu-west-1a");
        assert_eq!(v["region"], "eu-west-1");
        assert_eq!(v["version"], "2017-09-30");
        assert_eq!(v["pendingTime"], "1970-01-01T00:00:00Z");
    }

    fn context(instance: &Instance) -> Context<'_> {
        Context {
            instance,
            region: "us-east-1",
            account_id: "123456789012",
            partition: "aws",
            events: &Simulated::NONE,
        }
    }

    #[test]
    fn tags_are_absent_unless_configured() {
        let i = instance(&InstanceConfig::default());
        assert_eq!(context(&i).meta_data("tags/instance/"), None);
        assert!(!context(&i).meta_data("").unwrap().contains("tags"));
    }

    #[test]
    fn configured_tags_are_listed_and_served() {
        let config = InstanceConfig {
            tags: Some(BTreeMap::from([
                ("Name".to_owned(), "dev box".to_owned()),
                ("team".to_owned(), "infra".to_owned()),
            ])),
            ..InstanceConfig::default()
        };
        let i = instance(&config);
        let c = context(&i);
        assert!(c.meta_data("").unwrap().lines().any(|l| l == "tags/"));
        assert_eq!(c.meta_data("tags/").unwrap(), "instance/");
        assert_eq!(c.meta_data("tags/instance").unwrap(), "Name\nteam");
        assert_eq!(c.meta_data("tags/instance/Name").unwrap(), "dev box");
    }

    #[test]
    fn configured_block_devices_join_the_root_volume() {
        let config = InstanceConfig {
            block_devices: BTreeMap::from([
                ("ebs1".to_owned(), "sdb".to_owned()),
                ("swap".to_owned(), "/dev/sdc".to_owned()),
            ]),
            ..InstanceConfig::default()
        };
        let i = instance(&config);
        let c = context(&i);
        assert_eq!(
            c.meta_data("block-device-mapping/").unwrap(),
            "ami\nebs1\nroot\nswap"
        );
        assert_eq!(
            c.meta_data("block-device-mapping/swap").unwrap(),
            "/dev/sdc"
        );
    }

    #[test]
    fn an_ipv6_address_brings_its_subnet_and_vpc_blocks() {
        let config = InstanceConfig {
            ipv6: Some("2001:db8:1234:1a42:abcd::10".parse().unwrap()),
            ..InstanceConfig::default()
        };
        let i = instance(&config);
        let c = context(&i);
        let interface = format!("network/interfaces/macs/{}/", i.mac);
        assert_eq!(c.meta_data("ipv6").unwrap(), "2001:db8:1234:1a42:abcd::10");
        assert_eq!(
            c.meta_data(&format!("{interface}ipv6s")).unwrap(),
            "2001:db8:1234:1a42:abcd::10"
        );
        assert_eq!(
            c.meta_data(&format!("{interface}subnet-ipv6-cidr-blocks"))
                .unwrap(),
            "2001:db8:1234:1a42::/64"
        );
        assert_eq!(
            c.meta_data(&format!("{interface}vpc-ipv6-cidr-blocks"))
                .unwrap(),
            "2001:db8:1234:1a00::/56"
        );
    }

    #[test]
    fn no_ipv6_entries_without_an_address() {
        let i = instance(&InstanceConfig::default());
        let c = context(&i);
        assert_eq!(c.meta_data("ipv6"), None);
        let interface = c
            .meta_data(&format!("network/interfaces/macs/{}/", i.mac))
            .unwrap();
        assert!(!interface.contains("ipv6"), "{interface}");
    }

    #[test]
    fn simulated_events_join_the_tree_where_ec2_lists_them() {
        let i = instance(&InstanceConfig::default());
        let events = super::super::events::Events::default();
        events.apply(
            crate::api::Simulate::SpotInterruption {
                action: crate::api::SpotAction::Stop,
                in_seconds: 120,
            },
            DateTime::from_timestamp(0, 0).unwrap(),
        );
        events.apply(
            crate::api::Simulate::Rebalance,
            DateTime::from_timestamp(0, 0).unwrap(),
        );
        let current = events.current();
        let c = Context {
            events: &current,
            ..context(&i)
        };
        assert!(c.meta_data("").unwrap().lines().any(|l| l == "spot/"));
        assert_eq!(c.meta_data("spot/").unwrap(), "instance-action");
        assert_eq!(c.meta_data("instance-life-cycle").unwrap(), "spot");
        assert_eq!(
            c.meta_data("events/").unwrap(),
            "maintenance/\nrecommendations/"
        );
        assert_eq!(c.meta_data("events/maintenance/scheduled").unwrap(), "[]");
        assert!(c.meta_data("events/recommendations/rebalance").is_some());
    }

    #[test]
    fn without_events_there_is_no_spot_or_autoscaling_entry() {
        let i = instance(&InstanceConfig::default());
        let c = context(&i);
        for path in ["spot/", "autoscaling/", "events/recommendations/"] {
            assert_eq!(c.meta_data(path), None, "{path}");
        }
        assert_eq!(c.meta_data("instance-life-cycle").unwrap(), "on-demand");
    }

    #[test]
    fn a_pattern_publishes_every_public_key_and_never_a_private_one() {
        const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP0Q6NeuFlxi0sGGnGvBjq902M7MnLdeLyZ8Uk+tQKPh me@laptop";
        const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBH1mZDhM2RhLo2G+QvBSw1vR3IQ3heSsdpUmQCK3ZMhfufZTzFiKtvGUyJaJRwdahtC5MUf/SGNezZBOd6qjitc= me@work";
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| std::fs::write(dir.path().join(name), body).unwrap();
        write("id_ed25519.pub", &format!("{ED25519}\n"));
        write("id_ecdsa.pub", &format!("{ECDSA}\n"));
        write(
            "id_ed25519",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n",
        );
        write("known_hosts", &format!("host {ED25519}\nother {ECDSA}\n"));
        write("api.pub", "sk-ant-api03-abcdef\n");
        write(
            "mislabelled.pub",
            &ED25519.replace("ssh-ed25519", "ssh-rsa"),
        );
        let config = InstanceConfig {
            ssh_public_keys: vec![dir.path().join("*")],
            ..InstanceConfig::default()
        };
        let i = instance(&config);
        let c = context(&i);
        assert_eq!(
            c.meta_data("public-keys/").unwrap(),
            "0=id_ecdsa\n1=id_ed25519"
        );
        assert_eq!(c.meta_data("public-keys/1/openssh-key").unwrap(), ED25519);
        assert_eq!(c.meta_data("public-keys/2/"), None);
    }

    #[test]
    fn a_key_file_others_may_write_is_not_served() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("id.pub");
        std::fs::write(&file, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP0Q6NeuFlxi0sGGnGvBjq902M7MnLdeLyZ8Uk+tQKPh me@laptop\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let config = InstanceConfig {
            ssh_public_keys: vec![file],
            ..InstanceConfig::default()
        };
        let i = instance(&config);
        assert_eq!(context(&i).meta_data("public-keys/"), None);
    }
}
