//! The rest of the metadata tree: listings, placement, the identity document, user data, and a
//! real SDK resolving its region from fintors.

use std::process::Command;

use crate::support::{Daemon, clients, rust_whoami};
use crate::{require_client, require_venv};

const WITH_INSTANCE: &str = r#"{
  "credentials": { "file": "CREDS", "profile": "identity" },
  "roles": {
    "example": "arn:aws:iam::123456789012:role/example",
    "eu": { "arn": "arn:aws:iam::210987654321:role/eu", "region": "eu-west-1" }
  },
  "default_role": "example",
  "instance": { "region": "us-west-2", "availability_zone": "us-west-2c", "instance_type": "t3.micro",
                "public_ipv4": "203.0.113.7", "user_data": "DIR/user-data",
                "ssh_public_key": "DIR/id.pub", "ipv6": "2001:db8:1234:1a42::10",
                "block_devices": { "ebs1": "sdb", "swap": "/dev/sdc" },
                "tags": { "Name": "dev-box", "aws:autoscaling:groupName": "web" } }
}"#;

/// Public keys as `ssh-keygen` writes them.
const ED25519_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP0Q6NeuFlxi0sGGnGvBjq902M7MnLdeLyZ8Uk+tQKPh me@laptop";
const ECDSA_KEY: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBH1mZDhM2RhLo2G+QvBSw1vR3IQ3heSsdpUmQCK3ZMhfufZTzFiKtvGUyJaJRwdahtC5MUf/SGNezZBOd6qjitc= me@work";

fn daemon() -> Daemon {
    Daemon::builder(WITH_INSTANCE)
        .file("user-data", "#!/bin/sh\necho hello\n")
        .file("id.pub", &format!("{ED25519_KEY}\n"))
        .start()
}

#[test]
fn directories_list_entries_with_subdirectories_slashed() {
    require_venv!();
    let d = daemon();
    assert_eq!(d.get("/latest/").body, "dynamic\nmeta-data\nuser-data");
    let listing = d.get("/latest/meta-data/").body;
    for entry in [
        "ami-id",
        "instance-id",
        "iam/",
        "placement/",
        "network/",
        "public-ipv4",
        "services/",
    ] {
        assert!(
            listing.lines().any(|l| l == entry),
            "{entry} missing from {listing}"
        );
    }
    assert_eq!(
        d.get("/latest/meta-data").body,
        listing,
        "with or without the slash"
    );
    assert_eq!(
        d.get("/latest/meta-data/iam/").body,
        "info\nsecurity-credentials/"
    );
}

#[test]
fn placement_follows_the_instance_then_the_active_roles_region() {
    require_venv!();
    let d = daemon();
    assert_eq!(
        d.get("/latest/meta-data/placement/region").body,
        "us-west-2"
    );
    assert_eq!(
        d.get("/latest/meta-data/placement/availability-zone").body,
        "us-west-2c"
    );
    assert_eq!(
        d.get("/latest/meta-data/placement/availability-zone-id")
            .body,
        "usw2-az3"
    );
    assert_eq!(d.switch("eu").status, 200);
    assert_eq!(
        d.get("/latest/meta-data/placement/region").body,
        "eu-west-1"
    );
    assert_eq!(
        d.get("/latest/meta-data/placement/availability-zone").body,
        "eu-west-1c"
    );
}

#[test]
fn identity_document_is_consistent_with_the_tree() {
    require_venv!();
    let d = daemon();
    assert_eq!(d.switch("eu").status, 200);
    let doc = d.get("/latest/dynamic/instance-identity/document").json();
    assert_eq!(
        doc["accountId"], "210987654321",
        "the active role's account"
    );
    assert_eq!(doc["region"], "eu-west-1");
    assert_eq!(
        doc["instanceId"],
        d.get("/latest/meta-data/instance-id").body.as_str()
    );
    assert_eq!(
        doc["imageId"],
        d.get("/latest/meta-data/ami-id").body.as_str()
    );
    assert_eq!(
        doc["privateIp"],
        d.get("/latest/meta-data/local-ipv4").body.as_str()
    );
    assert_eq!(doc["instanceType"], "t3.micro");
    let mac = d.get("/latest/meta-data/mac").body;
    let owner = d.get(&format!(
        "/latest/meta-data/network/interfaces/macs/{mac}/owner-id"
    ));
    assert_eq!(owner.body, "210987654321");
}

#[test]
fn user_data_is_served_from_the_configured_file() {
    require_venv!();
    let d = daemon();
    for path in ["/latest/user-data", "/latest/user-data/"] {
        let r = d.get(path);
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "#!/bin/sh\necho hello\n"),
            "{path}"
        );
        assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));
        assert_eq!(r.header("Server"), Some("EC2ws"));
    }
    let plain = Daemon::start();
    assert_eq!(plain.get("/latest/user-data").status, 404);
    assert_eq!(plain.get("/latest/user-data/").status, 404);
    assert_eq!(plain.get("/latest/meta-data/public-ipv4").status, 404);
}

#[test]
fn public_key_is_served_from_the_configured_file() {
    require_venv!();
    let d = daemon();
    // EC2 lists a key by index and key pair name; the file's name (id.pub) stands for that.
    assert_eq!(d.get("/latest/meta-data/public-keys/").body, "0=id");
    assert_eq!(
        d.get("/latest/meta-data/public-keys/0/").body,
        "openssh-key"
    );
    assert_eq!(
        d.get("/latest/meta-data/public-keys/0/openssh-key").body,
        ED25519_KEY
    );
    assert_eq!(
        Daemon::start().get("/latest/meta-data/public-keys/").status,
        404
    );
}

/// With a pattern, every public key in the folder is published in file-name order, and the
/// private key beside them never is.
#[test]
fn a_key_pattern_publishes_every_public_key_and_no_private_one() {
    require_venv!();
    let config = r#"{
  "credentials": { "file": "CREDS", "profile": "identity" },
  "roles": { "example": "arn:aws:iam::123456789012:role/example" },
  "instance": { "ssh_public_key": ["DIR/ssh/*.pub", "DIR/ssh/id_ed25519"] }
}"#;
    let d = Daemon::builder(config)
        .file("ssh/id_ed25519.pub", &format!("{ED25519_KEY}\n"))
        .file("ssh/work.pub", &format!("{ECDSA_KEY}\n"))
        .file(
            "ssh/id_ed25519",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .start();
    assert_eq!(
        d.get("/latest/meta-data/public-keys/").body,
        "0=id_ed25519\n1=work"
    );
    assert_eq!(
        d.get("/latest/meta-data/public-keys/1/openssh-key").body,
        ECDSA_KEY
    );
    assert_eq!(d.get("/latest/meta-data/public-keys/2/").status, 404);
}

#[test]
fn bad_instance_section_is_refused_at_start_up() {
    let sts = crate::support::FakeSts::access_denied();
    let config = r#"{"roles": {"a": "arn:aws:iam::123456789012:role/a"},
                     "instance": {"region": "eu-west-1", "availability_zone": "us-east-1a"}}"#;
    let o = Daemon::builder(config)
        .sts(&sts.url)
        .command()
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("field \"instance.availability_zone\""),
        "{err}"
    );
}

#[test]
fn aws_sdk_rust_resolves_its_region_from_fintors() {
    require_venv!();
    let d = daemon();
    let region = |d: &Daemon| {
        let o = Command::new(rust_whoami())
            .arg("--region")
            .env_clear()
            .env("HOME", d.dir.path())
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", d.url())
            .env("AWS_CONFIG_FILE", d.dir.path().join("none"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap().trim().to_owned()
    };
    assert_eq!(region(&d), "us-west-2");
    assert_eq!(d.switch("eu").status, 200);
    assert_eq!(region(&d), "eu-west-1");
}

/// `GET /` lists every API version, and every dated version serves `latest`'s tree, user data
/// and dynamic data byte for byte, credentials included: boot-time readers ask a dated version
/// first and give up on a 404.
#[test]
fn every_dated_api_version_serves_the_same_tree_as_latest() {
    require_venv!();
    let d = daemon();
    let root = d.get("/");
    assert_eq!(root.header("Server"), Some("EC2ws"));
    let versions = root.body;
    assert!(versions.starts_with("1.0\n2007-01-19\n"), "{versions}");
    assert!(versions.ends_with("\n2021-07-15\nlatest"), "{versions}");
    for version in versions.lines().filter(|v| *v != "latest") {
        for path in [
            "/",
            "/meta-data/",
            "/meta-data/instance-id",
            "/meta-data/placement/availability-zone",
            "/meta-data/iam/security-credentials/",
            "/user-data",
            "/dynamic/instance-identity/document",
        ] {
            let (dated, latest) = (
                d.get(&format!("/{version}{path}")),
                d.get(&format!("/latest{path}")),
            );
            assert_eq!(
                (dated.status, &dated.body),
                (latest.status, &latest.body),
                "/{version}{path}"
            );
        }
    }
    let creds = d.get("/2021-03-23/meta-data/iam/security-credentials/example");
    assert_eq!(creds.json()["Code"], "Success", "{creds:?}");
    assert_eq!(
        d.get("/2030-01-01/meta-data/").status,
        404,
        "no such version"
    );
}

/// A dated version keeps `latest`'s token rules.
#[test]
fn a_dated_version_needs_a_session_when_imdsv2_is_required() {
    require_venv!();
    let strict = Daemon::builder(WITH_INSTANCE)
        .file("user-data", "#!/bin/sh\necho hello\n")
        .file("id.pub", &format!("{ED25519_KEY}\n"))
        .arg("--imdsv2-required")
        .start();
    let path = "/2016-09-02/meta-data/iam/security-credentials/example";
    assert_eq!(strict.get(path).status, 401);
    let token = strict.token();
    let r = crate::support::http(
        strict.addr,
        "GET",
        path,
        &[("X-aws-ec2-metadata-token", &token)],
        "",
    );
    assert_eq!(r.status, 200, "{r:?}");
}

/// What a real instance always lists answers as EC2's does (EC2 User Guide, "Instance metadata
/// categories"; recorded traffic).
#[test]
fn what_every_real_instance_lists_is_there() {
    require_venv!();
    let d = daemon();
    let get = |path: &str| {
        let r = d.get(&format!("/latest/{path}"));
        assert_eq!(r.status, 200, "{path}: {r:?}");
        r.body
    };
    assert_eq!(get("meta-data/ami-manifest-path"), "(unknown)");
    let volumes = get("meta-data/block-device-mapping/");
    assert!(volumes.lines().any(|l| l == "ami") && volumes.lines().any(|l| l == "root"));
    assert_eq!(get("meta-data/block-device-mapping/root"), "/dev/xvda");
    assert_eq!(get("meta-data/profile"), "default-hvm");
    assert_eq!(get("meta-data/system"), "nitro");
    assert_eq!(get("meta-data/events/maintenance/"), "history\nscheduled");
    assert_eq!(get("meta-data/events/maintenance/scheduled"), "[]");
    let info: serde_json::Value =
        serde_json::from_str(&get("meta-data/identity-credentials/ec2/info")).unwrap();
    assert_eq!(info["Code"], "Success");
    assert_eq!(
        info["AccountId"], "123456789012",
        "the active role's account"
    );
    assert_eq!(get("dynamic/"), "fws/\ninstance-identity/");
    assert_eq!(get("dynamic/fws/instance-monitoring"), "disabled");
    let mac = get("meta-data/mac");
    let interface = format!("meta-data/network/interfaces/macs/{mac}/");
    assert_eq!(get(&format!("{interface}network-card-index")), "0");
    assert!(get(&format!("{interface}security-group-ids")).starts_with("sg-"));
    assert_eq!(
        get(&format!("{interface}vpc-ipv4-cidr-blocks")),
        get(&format!("{interface}vpc-ipv4-cidr-block"))
    );
    assert_eq!(
        get(&format!("{interface}ipv4-associations/203.0.113.7")),
        get("meta-data/local-ipv4"),
        "the public address maps to the private one"
    );
}

/// Every path a reader finds by following listings from `/` under `version` (`latest` or a
/// dated one), with its body. A listing names sub-directories with a trailing `/`; at the
/// version's own level EC2 lists `meta-data` and `dynamic` bare, and `public-keys/` words its
/// entries `0=name` (follow `0/`). Every listed entry must answer 200: nothing dangles.
fn crawl(d: &Daemon, version: &str) -> std::collections::BTreeMap<String, String> {
    let mut found = std::collections::BTreeMap::new();
    let mut pending = vec![format!("/{version}/")];
    while let Some(path) = pending.pop() {
        let r = d.get(&path);
        assert_eq!(r.status, 200, "{path} is listed but answers {}", r.status);
        if path.ends_with('/') {
            for entry in r.body.lines() {
                let top = path == format!("/{version}/");
                let child = match entry.split_once('=') {
                    Some((index, _)) if path.ends_with("/public-keys/") => format!("{index}/"),
                    _ if top && (entry == "meta-data" || entry == "dynamic") => format!("{entry}/"),
                    _ => entry.to_owned(),
                };
                assert!(!child.is_empty(), "{path} lists an empty entry");
                pending.push(format!("{path}{child}"));
            }
        }
        found.insert(path[version.len() + 1..].to_owned(), r.body);
    }
    found
}

/// From `/`, every version lists a tree in which every entry answers; each dated version's tree
/// is `latest`'s, path for path and byte for byte.
#[test]
fn a_crawl_from_the_root_finds_no_dangling_entry_under_any_version() {
    require_venv!();
    let d = daemon();
    let latest = crawl(&d, "latest");
    assert!(
        latest.len() > 80,
        "only {} paths: is the tree there?",
        latest.len()
    );
    eprintln!("{} paths under /latest/", latest.len());
    let versions = d.get("/").body;
    for version in versions.lines().filter(|v| *v != "latest") {
        let dated = crawl(&d, version);
        assert_eq!(
            dated.keys().collect::<Vec<_>>(),
            latest.keys().collect::<Vec<_>>(),
            "/{version}/ lists another tree"
        );
        for (path, body) in &dated {
            assert_eq!(body, &latest[path], "/{version}{path}");
        }
    }
}

/// What metadata readers ask for directly (EC2 User Guide, "Instance metadata categories", and
/// recorded traffic of real instances) answers, and is in its parent's listing: a reader that
/// crawls finds what one that knows the path asks. `{mac}` is the instance's MAC.
const READERS_ASK: [&str; 44] = [
    "/meta-data/ami-id",
    "/meta-data/ami-launch-index",
    "/meta-data/ami-manifest-path",
    "/meta-data/block-device-mapping/ami",
    "/meta-data/block-device-mapping/root",
    "/meta-data/events/maintenance/history",
    "/meta-data/events/maintenance/scheduled",
    "/meta-data/hostname",
    "/meta-data/iam/info",
    "/meta-data/iam/security-credentials/",
    "/meta-data/iam/security-credentials/example",
    "/meta-data/identity-credentials/ec2/info",
    "/meta-data/instance-action",
    "/meta-data/instance-id",
    "/meta-data/instance-life-cycle",
    "/meta-data/instance-type",
    "/meta-data/ipv6",
    "/meta-data/local-hostname",
    "/meta-data/local-ipv4",
    "/meta-data/mac",
    "/meta-data/network/interfaces/macs/{mac}/device-number",
    "/meta-data/network/interfaces/macs/{mac}/interface-id",
    "/meta-data/network/interfaces/macs/{mac}/ipv6s",
    "/meta-data/network/interfaces/macs/{mac}/local-ipv4s",
    "/meta-data/network/interfaces/macs/{mac}/owner-id",
    "/meta-data/network/interfaces/macs/{mac}/security-group-ids",
    "/meta-data/network/interfaces/macs/{mac}/subnet-id",
    "/meta-data/network/interfaces/macs/{mac}/vpc-id",
    "/meta-data/network/interfaces/macs/{mac}/vpc-ipv4-cidr-blocks",
    "/meta-data/placement/availability-zone",
    "/meta-data/placement/availability-zone-id",
    "/meta-data/placement/region",
    "/meta-data/profile",
    "/meta-data/public-hostname",
    "/meta-data/public-ipv4",
    "/meta-data/public-keys/0/openssh-key",
    "/meta-data/reservation-id",
    "/meta-data/security-groups",
    "/meta-data/services/domain",
    "/meta-data/services/partition",
    "/meta-data/tags/instance/Name",
    "/dynamic/instance-identity/document",
    "/dynamic/instance-identity/rsa2048",
    "/user-data",
];

#[test]
fn what_readers_ask_for_is_listed_where_a_crawler_finds_it() {
    require_venv!();
    let d = Daemon::builder(&WITH_INSTANCE.replace(
        "\"ssh_public_key\"",
        "\"public_hostname\": \"ec2-203-0-113-7.compute-1.amazonaws.com\", \"ssh_public_key\"",
    ))
    .file("user-data", "#!/bin/sh\necho hello\n")
    .file("id.pub", &format!("{ED25519_KEY}\n"))
    .start();
    let crawled = crawl(&d, "latest");
    let mac = d.get("/latest/meta-data/mac").body;
    for path in READERS_ASK {
        let path = path.replace("{mac}", &mac);
        let r = d.get(&format!("/latest{path}"));
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert!(
            crawled.contains_key(&path),
            "{path} answers but no listing names it"
        );
    }
}

/// The JSON documents parse, with EC2's fields.
#[test]
fn every_json_document_in_the_tree_parses_with_ec2s_fields() {
    require_venv!();
    let d = daemon();
    let crawled = crawl(&d, "latest");
    let fields = |path: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&crawled[path])
            .unwrap_or_else(|e| panic!("{path}: {e}: {}", crawled[path]));
        v.as_object()
            .unwrap_or_else(|| panic!("{path} is not an object"))
            .keys()
            .cloned()
            .collect()
    };
    let has = |path: &str, expected: &[&str]| {
        let found = fields(path);
        for field in expected {
            assert!(
                found.iter().any(|f| f == field),
                "{path} lacks {field}: {found:?}"
            );
        }
    };
    has(
        "/dynamic/instance-identity/document",
        &[
            "accountId",
            "architecture",
            "availabilityZone",
            "imageId",
            "instanceId",
            "instanceType",
            "pendingTime",
            "privateIp",
            "region",
            "version",
        ],
    );
    has(
        "/meta-data/iam/info",
        &[
            "Code",
            "LastUpdated",
            "InstanceProfileArn",
            "InstanceProfileId",
        ],
    );
    has(
        "/meta-data/iam/security-credentials/example",
        &[
            "Code",
            "LastUpdated",
            "Type",
            "AccessKeyId",
            "SecretAccessKey",
            "Token",
            "Expiration",
        ],
    );
    has(
        "/meta-data/identity-credentials/ec2/info",
        &["Code", "LastUpdated", "AccountId"],
    );
    for list in [
        "/meta-data/events/maintenance/scheduled",
        "/meta-data/events/maintenance/history",
    ] {
        let v: serde_json::Value = serde_json::from_str(&crawled[list]).unwrap();
        assert!(v.is_array(), "{list}");
    }
}

/// Tags in metadata are served when the instance section names them, and only then (EC2 leaves
/// them off unless asked).
#[test]
fn instance_tags_are_served_only_when_configured() {
    require_venv!();
    let d = daemon();
    assert!(
        d.get("/latest/meta-data/")
            .body
            .lines()
            .any(|l| l == "tags/")
    );
    assert_eq!(
        d.get("/latest/meta-data/tags/instance/").body,
        "Name\naws:autoscaling:groupName"
    );
    let r = d.get("/latest/meta-data/tags/instance/Name");
    assert_eq!((r.status, r.body.as_str()), (200, "dev-box"));
    let plain = Daemon::start();
    assert_eq!(plain.get("/latest/meta-data/tags/instance/").status, 404);
    assert!(!plain.get("/latest/meta-data/").body.contains("tags"));
}

/// Configured volumes appear beside the root volume.
#[test]
fn block_devices_are_listed_as_configured() {
    require_venv!();
    let d = daemon();
    let get = |path: &str| d.get(&format!("/latest/meta-data/{path}")).body;
    assert_eq!(get("block-device-mapping/"), "ami\nebs1\nroot\nswap");
    assert_eq!(get("block-device-mapping/ebs1"), "sdb");
}

/// A configured IPv6 address appears where EC2 lists it: at the top and on the interface.
#[test]
fn an_ipv6_address_is_listed_as_configured() {
    require_venv!();
    let d = daemon();
    let get = |path: &str| d.get(&format!("/latest/meta-data/{path}")).body;
    assert_eq!(get("ipv6"), "2001:db8:1234:1a42::10");
    let interface = format!("network/interfaces/macs/{}/", get("mac"));
    assert_eq!(get(&format!("{interface}ipv6s")), "2001:db8:1234:1a42::10");
    assert_eq!(
        get(&format!("{interface}subnet-ipv6-cidr-blocks")),
        "2001:db8:1234:1a42::/64"
    );
}

/// Runs `openssl ARGS` in `dir`: its status and what it said.
fn openssl(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl ran");
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.success(), said)
}

/// The identity document's three signatures verify against fintors's certificate exactly as the
/// EC2 User Guide verifies AWS's ("Verify the instance identity document"): `signature` with
/// `openssl dgst -sha256 -verify`, `pkcs7` and `rsa2048` with `openssl smime -verify`.
#[test]
fn identity_document_signatures_verify_with_fintors_certificate() {
    require_venv!();
    require_client!(clients::openssl());
    let d = daemon();
    let listing = d.get("/latest/dynamic/instance-identity/").body;
    assert_eq!(listing, "document\npkcs7\nrsa2048\nsignature");
    let dir = tempfile::tempdir().unwrap();
    let get = |path: &str| {
        let r = d.get(path);
        assert_eq!(r.status, 200, "{path}: {r:?}");
        r.body
    };
    let save = |name: &str, body: &str| std::fs::write(dir.path().join(name), body).unwrap();
    save(
        "document",
        &get("/latest/dynamic/instance-identity/document"),
    );
    let certificate = get("/fintors/identity-certificate");
    save("certificate", &certificate);
    let signature = get("/latest/dynamic/instance-identity/signature");
    assert!(signature.lines().all(|l| l.len() <= 64), "{signature}");
    let decoded = Command::new("base64")
        .args(["-d"])
        .stdin(
            std::fs::File::open({
                save("signature.b64", &signature);
                dir.path().join("signature.b64")
            })
            .unwrap(),
        )
        .output()
        .unwrap()
        .stdout;
    std::fs::write(dir.path().join("signature.bin"), decoded).unwrap();
    let (ok, said) = openssl(
        dir.path(),
        &[
            "x509",
            "-pubkey",
            "-noout",
            "-in",
            "certificate",
            "-out",
            "public.pem",
        ],
    );
    assert!(ok, "{said}");
    let (ok, said) = openssl(
        dir.path(),
        &[
            "dgst",
            "-sha256",
            "-verify",
            "public.pem",
            "-signature",
            "signature.bin",
            "document",
        ],
    );
    assert!(ok, "signature: {said}");
    assert_eq!(
        get("/latest/dynamic/instance-identity/pkcs7"),
        get("/latest/dynamic/instance-identity/rsa2048"),
        "one RSA key signs both forms"
    );
    for form in ["pkcs7", "rsa2048"] {
        let body = get(&format!("/latest/dynamic/instance-identity/{form}"));
        assert!(!body.starts_with("-----"), "no armour, as EC2");
        save(
            form,
            &format!("-----BEGIN PKCS7-----\n{body}\n-----END PKCS7-----\n"),
        );
        for trust in [["-noverify", ""], ["-CAfile", "certificate"]] {
            let mut args = vec![
                "smime",
                "-verify",
                "-in",
                form,
                "-inform",
                "PEM",
                "-content",
                "document",
                "-certfile",
                "certificate",
                "-out",
                "/dev/null",
            ];
            args.extend(trust.iter().filter(|a| !a.is_empty()));
            let (ok, said) = openssl(dir.path(), &args);
            assert!(ok, "{form} {trust:?}: {said}");
        }
    }
    let (ok, said) = openssl(
        dir.path(),
        &["x509", "-noout", "-subject", "-in", "certificate"],
    );
    assert!(ok && said.contains("not AWS"), "{said}");
}

/// A signature made of another document does not verify: the check above is not one that
/// passes whatever it is given.
#[test]
fn an_altered_identity_document_fails_verification() {
    require_venv!();
    require_client!(clients::openssl());
    let d = daemon();
    let dir = tempfile::tempdir().unwrap();
    let save = |name: &str, body: &str| std::fs::write(dir.path().join(name), body).unwrap();
    let document = d.get("/latest/dynamic/instance-identity/document").body;
    save(
        "document",
        &document.replace(
            "\"accountId\" : \"123456789012\"",
            "\"accountId\" : \"999999999999\"",
        ),
    );
    save("certificate", &d.get("/fintors/identity-certificate").body);
    let body = d.get("/latest/dynamic/instance-identity/rsa2048").body;
    save(
        "rsa2048",
        &format!("-----BEGIN PKCS7-----\n{body}\n-----END PKCS7-----\n"),
    );
    let (ok, said) = openssl(
        dir.path(),
        &[
            "smime",
            "-verify",
            "-in",
            "rsa2048",
            "-inform",
            "PEM",
            "-content",
            "document",
            "-certfile",
            "certificate",
            "-noverify",
            "-out",
            "/dev/null",
        ],
    );
    assert!(!ok, "an altered document verified: {said}");
}

/// The key is kept in the state directory, 0600, and the certificate written beside it, the
/// same as the route serves.
#[test]
fn the_signing_key_is_kept_private_and_its_certificate_written_beside_it() {
    use std::os::unix::fs::PermissionsExt;
    require_venv!();
    let d = daemon();
    let certificate = d.get("/fintors/identity-certificate").body;
    assert!(
        certificate.starts_with("-----BEGIN CERTIFICATE-----"),
        "{certificate}"
    );
    let state = d.state_dir();
    let key = std::fs::metadata(state.join("identity-signing.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(state.join("identity-certificate.pem")).unwrap(),
        certificate
    );
}

/// A certificate a user saved stays good across restarts.
#[test]
fn the_identity_certificate_survives_a_restart() {
    require_venv!();
    let d = daemon();
    let certificate = d.get("/fintors/identity-certificate").body;
    let dir = d.stop();
    let again = Daemon::builder(WITH_INSTANCE)
        .file("user-data", "#!/bin/sh\necho hello\n")
        .file("id.pub", &format!("{ED25519_KEY}\n"))
        .dir(dir)
        .start();
    assert_eq!(again.get("/fintors/identity-certificate").body, certificate);
}
