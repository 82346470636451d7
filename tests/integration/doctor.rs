//! `fintors doctor` against a real daemon: exit 0 and no FAIL on a healthy set-up, and each
//! condition that keeps a tool in the shell from fintors's credentials caught, on its own line,
//! with exit 1.

use std::process::Output;

use crate::support::sso::{IdentityCenter, ended_login_daemon};
use crate::support::{Daemon, FakeSts, TWO_ROLES, fintors_cli_with, free_port};

/// A shell set up as the README says: SDKs pointed at the daemon, a region, nothing else.
fn healthy(d: &Daemon) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", format!("{}/", d.url())),
        ("AWS_DEFAULT_REGION", "eu-west-1".into()),
    ]
}

/// `fintors doctor` with `env`, in a shell whose SDKs may ask IMDS (the tests' clients are run
/// with `AWS_EC2_METADATA_DISABLED=true`, which doctor rightly fails; it asks nothing but the
/// daemon on loopback, and 169.254.169.254 only where `network up` put it on lo).
fn doctor(url: &str, env: &[(&'static str, String)]) -> Output {
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if !env.iter().any(|(k, _)| *k == "AWS_EC2_METADATA_DISABLED") {
        env.push(("AWS_EC2_METADATA_DISABLED", "false"));
    }
    fintors_cli_with(url, &["doctor"], &env)
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails(o: &Output) -> Vec<String> {
    out(o)
        .lines()
        .filter(|l| l.starts_with("FAIL  "))
        .map(|l| l[6..].to_owned())
        .collect()
}

#[test]
fn a_healthy_set_up_passes_every_check_and_exits_0() {
    let sts = FakeSts::issuing();
    let d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let o = doctor(&d.url(), &healthy(&d));
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(fails(&o).is_empty(), "{}", out(&o));
    let text = out(&o);
    assert!(
        text.starts_with(&format!(
            "ok    fintors {} answers at {}",
            env_version(),
            d.url()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("(pid {}, config ", d.pid())),
        "{text}"
    );
    assert!(
        text.contains("ok    active role example: credentials valid for "),
        "{text}"
    );
    // `Date` has whole seconds: 0 or 1.
    assert!(
        text.contains("ok    this clock is within 0 s of STS's (at ")
            || text.contains("ok    this clock is within 1 s of STS's (at "),
        "{text}"
    );
    assert!(
        text.contains("ok    region eu-west-1 (AWS_DEFAULT_REGION)"),
        "{text}"
    );
}

/// What `fintors --version` says after "fintors ".
fn env_version() -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_fintors"))
        .arg("--version")
        .output()
        .unwrap();
    String::from_utf8(o.stdout)
        .unwrap()
        .trim()
        .trim_start_matches("fintors ")
        .to_owned()
}

#[test]
fn each_variable_that_wins_over_fintors_fails_with_its_fix() {
    let sts = FakeSts::issuing();
    let d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let mut env = healthy(&d);
    env.push(("AWS_PROFILE", "dev".into()));
    env.push(("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE".into()));
    env.push(("AWS_EC2_METADATA_DISABLED", "true".into()));
    let o = doctor(&d.url(), &env);
    assert_eq!(o.status.code(), Some(1));
    let failed = fails(&o);
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(
        failed
            .iter()
            .any(|l| l.starts_with("AWS_PROFILE is set") && l.ends_with("unset AWS_PROFILE"))
    );
    assert!(
        failed
            .iter()
            .any(|l| l.starts_with("AWS_ACCESS_KEY_ID is set"))
    );
    assert!(
        failed
            .iter()
            .any(|l| l.starts_with("AWS_EC2_METADATA_DISABLED=true"))
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "fintors: 3 checks failed: see the FAIL lines\n"
    );
}

#[test]
fn a_default_profile_with_keys_fails() {
    let sts = FakeSts::issuing();
    let d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let creds = d.dir.path().join("default-credentials");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = x\n",
    )
    .unwrap();
    let mut env = healthy(&d);
    env.push(("AWS_SHARED_CREDENTIALS_FILE", creds.display().to_string()));
    let failed = fails(&doctor(&d.url(), &env));
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].starts_with("the default profile in the AWS credentials file has credentials"),
        "{failed:?}"
    );
}

/// botocore and the AWS CLI v1 read AWS_DEFAULT_REGION, not AWS_REGION (nor IMDS).
#[test]
fn no_region_botocore_reads_fails_and_names_the_variable() {
    let sts = FakeSts::issuing();
    let d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let env: Vec<_> = healthy(&d)
        .into_iter()
        .filter(|(k, _)| *k != "AWS_DEFAULT_REGION")
        .chain([("AWS_REGION", "eu-west-1".to_owned())])
        .collect();
    let failed = fails(&doctor(&d.url(), &env));
    assert_eq!(
        failed,
        [
            "no region: botocore and the AWS CLI v1 do not read it from IMDS, nor AWS_REGION; \
             `eval \"$(fintors env)\"` exports it, or export AWS_DEFAULT_REGION=REGION"
        ]
    );
}

/// Neither `AWS_EC2_METADATA_SERVICE_ENDPOINT` nor `network up` (the test machine has no
/// fintors address on lo): the tools of this shell look at the real IMDS address and miss
/// fintors.
#[test]
fn nothing_pointing_tools_at_fintors_fails() {
    let sts = FakeSts::issuing();
    let d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let env = vec![("AWS_DEFAULT_REGION", "eu-west-1".to_owned())];
    let failed = fails(&doctor(&d.url(), &env));
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].starts_with("nothing points this shell's tools at fintors: "),
        "{failed:?}"
    );
}

#[test]
fn an_endpoint_variable_pointing_elsewhere_fails() {
    let sts = FakeSts::issuing();
    let d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let elsewhere = format!("http://127.0.0.1:{}/", free_port());
    let env = vec![
        ("AWS_DEFAULT_REGION", "eu-west-1".to_owned()),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", elsewhere.clone()),
    ];
    let failed = fails(&doctor(&d.url(), &env));
    assert_eq!(
        failed,
        [format!(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT={elsewhere}, but fintors is at {}/: eval \"$(fintors env)\"",
            d.url()
        )]
    );
}

#[test]
fn a_daemon_that_is_not_running_fails_first() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let env = vec![
        ("AWS_DEFAULT_REGION", "eu-west-1".to_owned()),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", format!("{url}/")),
    ];
    let o = doctor(&url, &env);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        fails(&o),
        [format!(
            "nothing answers at {url}: start fintors (`fintors`, or `fintors service install` to have it start at login)"
        )]
    );
}

#[test]
fn an_ended_sso_session_fails_with_the_login_command() {
    let center = IdentityCenter::start(&[]);
    let sts = FakeSts::issuing();
    let d = ended_login_daemon(&center, &sts);
    let failed = fails(&doctor(&d.url(), &healthy(&d)));
    assert!(
        failed
            .iter()
            .any(|l| l.contains(" ended at ") && l.ends_with("`fintors login`")),
        "{failed:?}"
    );
}

/// STS's answers are dated ten minutes after this machine's clock: the daemon noticed at its
/// first AssumeRole, and doctor says by how much and what to do.
#[test]
fn a_clock_off_from_stss_fails_with_the_difference() {
    let n = std::sync::atomic::AtomicU32::new(0);
    let sts = FakeSts::dated(chrono::Duration::minutes(10), move |call| {
        crate::support::issued(
            call,
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
            chrono::Duration::hours(1),
        )
    });
    let d = Daemon::builder(TWO_ROLES).sts(&sts.url).start();
    let failed = fails(&doctor(&d.url(), &healthy(&d)));
    assert_eq!(failed.len(), 1, "{failed:?}");
    // `Date` has whole seconds: 600 less the fraction of the second the answer was dated in.
    let seconds: i64 = failed[0]
        .strip_prefix("this clock is ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{failed:?}"));
    assert!((599..=600).contains(&seconds), "{failed:?}");
    assert!(failed[0].contains(" s behind STS's (at "), "{failed:?}");
    assert!(failed[0].ends_with("set the time (`timedatectl set-ntp true`)"));
}
