//! `fintors doctor`: why a tool in this shell does not get fintors's credentials. One line per
//! check, `ok` and what holds or `FAIL` and the fix (`info` for what is only worth knowing), and
//! exit status 1 when anything failed. It looks where the tools look: this shell's environment
//! (what wins over IMDS and the container endpoint, where IMDS is, the region), the AWS files'
//! `[default]` profile, the daemon the printed endpoint reaches, and 169.254.169.254 when
//! `network up` put it on `lo` (never otherwise: on an EC2 instance that is the real IMDS).

use std::io::Write;
use std::time::Duration;

use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::args::ClientArgs;
use super::client::{ClientError, Endpoint};
use super::daemon::{CommandError, Output, report};
use super::environment::{self, BotocoreRegion, Finding, botocore_region};
use super::status::{human, stamp};
use crate::api::{StatusReport, paths};
use crate::config::aws_profiles;

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Ok,
    Fail,
    Info,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Line(Verdict, String);

impl Line {
    fn ok(text: impl Into<String>) -> Line {
        Line(Verdict::Ok, text.into())
    }
    fn fail(text: impl Into<String>) -> Line {
        Line(Verdict::Fail, text.into())
    }
    fn info(text: impl Into<String>) -> Line {
        Line(Verdict::Info, text.into())
    }
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word = match self.0 {
            Verdict::Ok => "ok  ",
            Verdict::Fail => "FAIL",
            Verdict::Info => "info",
        };
        write!(f, "{word}  {}", self.1)
    }
}

/// `fintors doctor`: prints every line, then fails (exit 1) if a check did.
pub async fn doctor(args: &ClientArgs) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let env = environment::variable;
    let mut lines = Vec::new();
    let daemon = match report(&endpoint).await {
        Ok(daemon) => {
            lines.extend(daemon_lines(&endpoint, &daemon));
            Some(daemon)
        }
        Err(CommandError::Client(ClientError::NotRunning { .. })) => {
            lines.push(Line::fail(format!(
                "nothing answers at {endpoint}: start fintors (`fintors`, or `fintors service \
                 install` to have it start at login)"
            )));
            None
        }
        Err(e) => {
            lines.push(Line::fail(e.to_string()));
            None
        }
    };
    lines.extend(environment_lines(&env));
    let active = daemon.as_ref().and_then(|d| d.active_role.as_deref());
    lines.push(where_tools_look(&endpoint, active, &env).await);
    if let Some(warning) = aws_profiles::default_credentials()
        .await
        .shadowing_fintors()
    {
        lines.push(Line::fail(warning));
    } else {
        lines.push(Line::ok(
            "no [default] profile with credentials of its own (SDKs ask fintors)",
        ));
    }
    lines.push(region_line(&env, daemon.as_ref()).await);
    lines.push(Line::info(
        "the daemon logs to its stderr: `journalctl --user -u fintors` when it runs as `fintors \
         service`",
    ));
    let failed = lines.iter().filter(|l| l.0 == Verdict::Fail).count();
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    if failed == 0 {
        return Ok(text);
    }
    let _ = std::io::stdout().write_all(text.as_bytes());
    Err(CommandError::Unhealthy { failed })
}

/// What the daemon says of itself: its version against this command's, its active role, the
/// IAM Identity Center logins the roles depend on.
fn daemon_lines(endpoint: &Endpoint, daemon: &StatusReport) -> Vec<Line> {
    let now = Utc::now();
    let mut lines = vec![Line::ok(format!(
        "fintors {} answers at {endpoint} (pid {}, config {})",
        daemon.version, daemon.pid, daemon.config
    ))];
    if let Some(mismatch) = super::status::version_mismatch(&daemon.version) {
        lines.push(Line::fail(mismatch));
    }
    lines.push(clock_line(daemon));
    match daemon.active_role.as_deref() {
        None => lines.push(Line::fail(
            "no role is active: tools asking IMDS get nothing; `fintors use ROLE`",
        )),
        Some(alias) => match daemon.roles.iter().find(|r| r.alias == alias) {
            Some(role) => match (&role.credentials, &role.last_error) {
                (Some(c), _) => lines.push(Line::ok(format!(
                    "active role {alias}: credentials valid for {}",
                    human(c.expiration - now)
                ))),
                (None, Some(e)) => lines.push(Line::fail(format!(
                    "active role {alias} has no credentials: {}: {}",
                    e.code, e.message
                ))),
                (None, None) => lines.push(Line::info(format!(
                    "active role {alias}: no credentials yet (fetched at the first request)"
                ))),
            },
            None => lines.push(Line::fail(format!("active role {alias} is not listed"))),
        },
    }
    for sso in &daemon.sso {
        lines.push(match sso.expires {
            Some(expires) if expires > now => Line::ok(format!(
                "{} ({}): logged in until {}",
                sso.session,
                sso.profile,
                stamp(sso.renews_until.unwrap_or(expires))
            )),
            Some(expired) => Line::fail(format!(
                "{} ({}) ended at {}: `{}`",
                sso.session,
                sso.profile,
                stamp(expired),
                sso.login_command
            )),
            None => Line::fail(format!(
                "{} ({}) has no login here: `{}`",
                sso.session, sso.profile, sso.login_command
            )),
        });
    }
    lines
}

/// How far apart this clock and STS's may be before it is worth fixing: fintors stops serving
/// credentials a minute before they expire by this clock, and SigV4 refuses requests signed
/// 5 minutes off.
const CLOCK_TOLERANCE_SECONDS: i64 = 60;

/// This machine's clock against STS's, from the `Date` of STS's last answer to the daemon.
fn clock_line(daemon: &StatusReport) -> Line {
    match daemon.clock_skew {
        None => {
            Line::info("STS has not answered since the daemon started: no clock to compare yet")
        }
        Some(skew) if skew.seconds.abs() < CLOCK_TOLERANCE_SECONDS => Line::ok(format!(
            "this clock is within {} s of STS's (at {})",
            skew.seconds.abs(),
            stamp(skew.at)
        )),
        Some(skew) => Line::fail(format!(
            "this clock is {} s {} STS's (at {}): credentials expire by it and SigV4 refuses \
             requests 5 minutes off; set the time (`timedatectl set-ntp true`)",
            skew.seconds.abs(),
            if skew.seconds > 0 {
                "behind"
            } else {
                "ahead of"
            },
            stamp(skew.at)
        )),
    }
}

/// This shell's variables that win over fintors ([`environment::findings`]), as lines.
fn environment_lines(env: &dyn Fn(&str) -> Option<String>) -> Vec<Line> {
    let findings = environment::findings(env);
    if findings.is_empty() {
        return vec![Line::ok(
            "nothing in this environment wins over fintors (keys, AWS_PROFILE, web identity, a \
             container endpoint)",
        )];
    }
    findings
        .into_iter()
        .map(|finding| match finding {
            Finding::Wins(text) => Line::fail(text),
            Finding::Pinned(text) => Line::info(text),
        })
        .collect()
}

/// Whether this shell's tools find the daemon: where `AWS_EC2_METADATA_SERVICE_ENDPOINT` points,
/// else 169.254.169.254 when `network up` is in force.
async fn where_tools_look(
    endpoint: &Endpoint,
    active: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Line {
    if let Some(url) = env("AWS_EC2_METADATA_SERVICE_ENDPOINT") {
        let ours = endpoint.imds_url();
        let same = Endpoint::parse(url.trim_end_matches('/'))
            .is_ok_and(|theirs| theirs.imds_url() == ours);
        return if same {
            Line::ok(format!(
                "AWS_EC2_METADATA_SERVICE_ENDPOINT points SDKs at fintors ({url})"
            ))
        } else {
            Line::fail(format!(
                "AWS_EC2_METADATA_SERVICE_ENDPOINT={url}, but fintors is at {ours}: eval \"$(fintors env)\""
            ))
        };
    }
    match super::network::metadata_address_is_ours() {
        Some(true) => match metadata_address_answers(active).await {
            Ok(()) => Line::ok("http://169.254.169.254/ is fintors (`network up` is in force)"),
            Err(why) => Line::fail(format!(
                "169.254.169.254 is on lo, but {why}: `sudo \"$(command -v fintors)\" network up`"
            )),
        },
        _ => Line::fail(
            "nothing points this shell's tools at fintors: `sudo \"$(command -v fintors)\" network \
             up` (every tool), or eval \"$(fintors env)\" (this shell)",
        ),
    }
}

/// Whether fintors, not something else, answers at http://169.254.169.254/ (asked only when the
/// address on lo is fintors's own): its role API answers there with the daemon's active role,
/// which no real IMDS has. With a token when the daemon requires one (`--imdsv2-required`).
async fn metadata_address_answers(active: Option<&str>) -> Result<(), String> {
    let ask = async {
        let (status, _) = metadata_request("GET", &paths::active_role(), &[]).await?;
        if status != 401 {
            return metadata_request("GET", &paths::active_role(), &[]).await;
        }
        let (_, token) = metadata_request(
            "PUT",
            "/latest/api/token",
            &["X-aws-ec2-metadata-token-ttl-seconds: 60"],
        )
        .await?;
        let header = format!("X-aws-ec2-metadata-token: {}", token.trim());
        metadata_request("GET", &paths::active_role(), &[&header]).await
    };
    let expected = format!(
        "{{\"roles\":[{}]}}",
        active.map(|a| format!("\"{a}\"")).unwrap_or_default()
    );
    match tokio::time::timeout(Duration::from_secs(3), ask).await {
        Ok(Ok((200, body))) if body.trim() == expected => Ok(()),
        Ok(Ok(_)) => Err("what answers there is not this fintors".into()),
        Ok(Err(e)) => Err(format!("nothing answers there ({e})")),
        Err(_) => Err("nothing answers there within 3 s".into()),
    }
}

/// One HTTP/1.1 request to 169.254.169.254:80: its status and (at most 64 KiB of) body.
async fn metadata_request(
    method: &str,
    path: &str,
    headers: &[&str],
) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("169.254.169.254", 80)).await?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 169.254.169.254\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    (&mut stream)
        .take(64 * 1024)
        .read_to_end(&mut answer)
        .await?;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok((status, body.to_owned()))
}

/// Whether tools that do not read the region from IMDS (botocore, the AWS CLI v1) have one:
/// AWS_DEFAULT_REGION, or the selected profile's.
async fn region_line(env: &dyn Fn(&str) -> Option<String>, daemon: Option<&StatusReport>) -> Line {
    match botocore_region(env).await {
        Some(BotocoreRegion::Variable(region)) => {
            return Line::ok(format!("region {region} (AWS_DEFAULT_REGION)"));
        }
        Some(BotocoreRegion::Profile { region, profile }) => {
            return Line::ok(format!("region {region} (profile {profile})"));
        }
        None => {}
    }
    let suggestion = daemon
        .and_then(|d| {
            let active = d.active_role.as_deref()?;
            d.roles.iter().find(|r| r.alias == active)?.region.clone()
        })
        .unwrap_or_else(|| "REGION".to_owned());
    Line::fail(format!(
        "no region: botocore and the AWS CLI v1 do not read it from IMDS, nor AWS_REGION; \
         `eval \"$(fintors env)\"` exports it, or export AWS_DEFAULT_REGION={suggestion}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn failures(lines: &[Line]) -> Vec<&str> {
        lines
            .iter()
            .filter(|l| l.0 == Verdict::Fail)
            .map(|l| l.1.as_str())
            .collect()
    }

    #[test]
    fn a_clean_environment_is_one_ok_line() {
        let lines = environment_lines(&env_of(&[("HOME", "/home/me")]));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].0, Verdict::Ok);
    }

    #[test]
    fn each_variable_that_wins_over_fintors_is_named_with_its_fix() {
        let lines = environment_lines(&env_of(&[
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_PROFILE", "dev"),
            ("AWS_DEFAULT_PROFILE", "dev"),
            ("AWS_EC2_METADATA_DISABLED", "TRUE"),
        ]));
        let failed = failures(&lines);
        assert_eq!(failed.len(), 4, "{failed:?}");
        assert!(
            failed[0].starts_with("AWS_ACCESS_KEY_ID is set")
                && failed[0].ends_with("unset AWS_ACCESS_KEY_ID")
        );
        assert!(failed.iter().any(|l| l.contains("AWS_PROFILE is set")));
        assert!(
            failed
                .iter()
                .any(|l| l.contains("AWS_DEFAULT_PROFILE is set"))
        );
        assert!(
            failed
                .iter()
                .any(|l| l.starts_with("AWS_EC2_METADATA_DISABLED=true"))
        );
    }

    #[test]
    fn a_container_endpoint_is_a_pin_when_fintors_set_it_and_a_failure_otherwise() {
        let pinned = environment_lines(&env_of(&[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:16926/creds/ops",
            ),
            ("FINTORS_ROLE", "ops"),
        ]));
        assert_eq!(pinned[0].0, Verdict::Info);
        let foreign = environment_lines(&env_of(&[(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://10.0.0.1/creds",
        )]));
        assert_eq!(failures(&foreign).len(), 1);
    }

    #[test]
    fn a_line_reads_as_its_verdict_then_its_text() {
        assert_eq!(Line::fail("x").to_string(), "FAIL  x");
        assert_eq!(Line::ok("y").to_string(), "ok    y");
    }
}
