//! `fintors status`, and the wording every report shares: how long until a time (`human`), a
//! moment (`stamp`), an SSO session's line, a role's use per door.

use chrono::{DateTime, TimeDelta, Utc};

use super::args::ClientArgs;
use super::client::Endpoint;
use super::daemon::{Output, report};
use crate::api::{DiscoveryReport, ErrorReport, SSO_LOGIN_REQUIRED, ServedReport, SsoReport};
use crate::config::aws_profiles;

/// `fintors status`
pub async fn status(args: &ClientArgs, as_json: bool) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let report = report(&endpoint).await?;
    if as_json {
        return Ok(serde_json::to_string_pretty(&report).expect("serializes") + "\n");
    }
    let now = Utc::now();
    let mut out = format!(
        "fintors {} is running at {} ({})\nactive role: {}\n",
        report.version,
        endpoint.imds_url(),
        if report.imdsv2_required {
            "IMDSv2 tokens required"
        } else {
            "IMDSv1 and IMDSv2"
        },
        report.active_role.as_deref().unwrap_or("none")
    );
    if let Some(line) = version_mismatch(&report.version) {
        out.push_str(&line);
        out.push('\n');
    }
    for warning in super::environment::warnings() {
        out.push_str(&format!("warning: {warning}\n"));
    }
    if let Some(warning) = aws_profiles::default_credentials()
        .await
        .shadowing_fintors()
    {
        out.push_str(&format!("warning: {warning}\n"));
    }
    match &report.container_endpoint {
        Some(url) => out.push_str(&format!(
            "container endpoint: {url} (`fintors exec ROLE -- CMD`, `fintors env --role ROLE`)\n"
        )),
        None => out.push_str("container endpoint: off\n"),
    }
    for sso in &report.sso {
        out.push_str(&sso_line(sso, now));
    }
    for listed in &report.identity_center {
        out.push_str(&listing_line(listed, now));
    }
    for device in &report.mfa {
        match device.session_expires {
            Some(t) => out.push_str(&format!(
                "MFA {}: session valid for {} (until {})\n",
                device.serial,
                human(t - now),
                stamp(t)
            )),
            None => out.push_str(&format!(
                "MFA {}: no session; run `fintors mfa CODE`\n",
                device.serial
            )),
        }
    }
    let width = report
        .roles
        .iter()
        .map(|r| r.alias.len())
        .max()
        .unwrap_or(0);
    for role in &report.roles {
        let state = match &role.credentials {
            Some(c) => format!(
                "credentials valid for {} (until {}), refresh {}",
                human(c.expiration - now),
                stamp(c.expiration),
                if c.refresh_at <= now {
                    "due now".to_owned()
                } else {
                    format!("in {}", human(c.refresh_at - now))
                }
            ),
            None => "no credentials cached".to_owned(),
        };
        let unreached = match role.attempts.saturating_sub(role.sts_calls) {
            0 => String::new(),
            n => format!(" ({n} more that never reached it)"),
        };
        out.push_str(&format!(
            "{} {:width$}  {state}; {} STS call{}{unreached}; requests in the last 15 min: {}\n",
            if role.active { '*' } else { ' ' },
            role.alias,
            role.sts_calls,
            if role.sts_calls == 1 { "" } else { "s" },
            served(&role.served)
        ));
        match &role.last_error {
            // The session's own line above says when it expired and what to run.
            Some(e) if e.code == SSO_LOGIN_REQUIRED && !report.sso.is_empty() => {
                out.push_str(&format!(
                    "  {:width$}  waiting for an SSO login (see above) since {}\n",
                    "",
                    stamp(e.at)
                ));
            }
            Some(e) => out.push_str(&format!(
                "  {:width$}  last STS error at {}: {}: {}\n",
                "",
                stamp(e.at),
                e.code,
                e.message
            )),
            None => {}
        }
    }
    Ok(out)
}

/// The line that says the daemon runs other code than this command's, if it does: after an
/// upgrade, the daemon started before it still runs the old binary. `status` and `doctor` say it.
pub(super) fn version_mismatch(daemon: &str) -> Option<String> {
    (daemon != crate::VERSION).then(|| {
        format!(
            "this command is fintors {}, the daemon {daemon}: restart the daemon (`fintors \
             stop`, then start it) to run what is installed",
            crate::VERSION
        )
    })
}

/// `SSO session "corp": 1500 roles listed 5m ago`, and why the last listing failed, if it did.
fn listing_line(listed: &DiscoveryReport, now: DateTime<Utc>) -> String {
    let when = match listed.listed_at {
        Some(t) => format!("{} roles listed {} ago", listed.listed, human(now - t)),
        None => "not listed yet".to_owned(),
    };
    match &listed.last_error {
        None => format!("SSO session \"{}\": {when}\n", listed.sso_session),
        // The session's own line says what to run.
        Some(e) if e.code == SSO_LOGIN_REQUIRED => format!(
            "SSO session \"{}\": {when}; listing again needs a login\n",
            listed.sso_session
        ),
        Some(e) => format!(
            "SSO session \"{}\": {when}; listing again failed: {}\n",
            listed.sso_session, e.message
        ),
    }
}

/// Why `listed`'s session could not be listed, in one line, and what is served meanwhile. An
/// expired login's message names its session and the command already.
pub fn listing_failure(listed: &DiscoveryReport, error: &ErrorReport) -> String {
    let served = match listed.listed_at {
        Some(_) => format!("the {} roles listed before are served", listed.listed),
        None => "no earlier listing to serve".to_owned(),
    };
    if error.code == SSO_LOGIN_REQUIRED {
        format!("{}; {served}", error.message)
    } else {
        format!(
            "SSO session \"{}\" not listed: {}; {served}",
            listed.sso_session, error.message
        )
    }
}

/// `SSO session "corp": expires in 7h58m`, or since when it has expired and what to run.
pub fn sso_line(sso: &SsoReport, now: DateTime<Utc>) -> String {
    match sso.expires {
        Some(t) if t > now => match sso.renews_until {
            Some(until) => format!(
                "{}: renewed by fintors until Identity Center ends the session (at the latest \
                 {}); access token for {}\n",
                sso.session,
                stamp(until),
                human(t - now)
            ),
            None => format!("{}: expires in {}\n", sso.session, human(t - now)),
        },
        Some(t) => format!(
            "{}: expired at {}; run `{}`\n",
            sso.session,
            stamp(t),
            sso.login_command
        ),
        None => format!(
            "{}: not logged in on this machine; run `{}`\n",
            sso.session, sso.login_command
        ),
    }
}

/// A role's credential requests in the last 15 minutes per door: `imds 12, container 3`, or `-`.
pub fn served(report: &ServedReport) -> String {
    let doors = [
        ("imds", report.imds.last_15_minutes),
        ("container", report.container.last_15_minutes),
    ];
    let used: Vec<String> = doors
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(door, n)| format!("{door} {n}"))
        .collect();
    if used.is_empty() {
        "-".to_owned()
    } else {
        used.join(", ")
    }
}

pub fn stamp(t: DateTime<Utc>) -> String {
    crate::model::time::format(t)
}

/// A short human duration: `45s`, `59m`, `11h05m`.
pub fn human(d: TimeDelta) -> String {
    let secs = d.num_seconds();
    if secs <= 0 {
        return "expired".into();
    }
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_built_from_other_code_is_told_apart() {
        assert_eq!(version_mismatch(crate::VERSION), None);
        let line = version_mismatch("0.1.0 (0123456789ab)").unwrap();
        assert!(
            line.starts_with("this command is fintors 0.2.0 (")
                && line.contains(", the daemon 0.1.0 (0123456789ab): restart the daemon"),
            "{line}"
        );
    }

    #[test]
    fn human_durations_are_short() {
        assert_eq!(human(TimeDelta::seconds(45)), "45s");
        assert_eq!(human(TimeDelta::seconds(59 * 60 + 59)), "59m");
        assert_eq!(human(TimeDelta::seconds(11 * 3600 + 5 * 60)), "11h05m");
        assert_eq!(human(TimeDelta::seconds(-3)), "expired");
    }
}
