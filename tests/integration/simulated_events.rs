//! `fintors simulate`: the events EC2 announces in the metadata appear with EC2's exact fields and
//! times, are read by a client the way an application polls for them, and go away again.

use chrono::{DateTime, Utc};

use crate::require_venv;
use crate::support::{Daemon, fintors_cli, http};

/// GET `path` in an IMDSv2 session, as an application that polls for notices does.
fn read(d: &Daemon, token: &str, path: &str) -> (u16, String) {
    let r = http(
        d.addr,
        "GET",
        path,
        &[("X-aws-ec2-metadata-token", token)],
        "",
    );
    (r.status, r.body)
}

fn simulate(d: &Daemon, args: &[&str]) -> String {
    let out = fintors_cli(d, &[&["simulate"], args].concat());
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_spot_interruption_notice_has_ec2s_fields_and_time() {
    require_venv!();
    let d = Daemon::start();
    let token = d.token();
    let before = Utc::now();
    let printed = simulate(
        &d,
        &["spot-interruption", "--in", "90s", "--action", "stop"],
    );
    assert!(
        printed.contains("/latest/meta-data/spot/instance-action"),
        "{printed}"
    );
    let (status, body) = read(&d, &token, "/latest/meta-data/spot/instance-action");
    assert_eq!(status, 200);
    let notice: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(
        notice.keys().collect::<Vec<_>>(),
        ["action", "time"],
        "EC2's notice has exactly these: {body}"
    );
    assert_eq!(notice["action"], "stop");
    let time: DateTime<Utc> = notice["time"].as_str().unwrap().parse().unwrap();
    let ahead = (time - before).num_seconds();
    assert!((89..=92).contains(&ahead), "{ahead} s ahead, not 90");
    assert!(
        notice["time"].as_str().unwrap().ends_with('Z') && !body.contains('.'),
        "whole seconds, UTC: {body}"
    );
    assert_eq!(
        read(&d, &token, "/latest/meta-data/instance-life-cycle").1,
        "spot"
    );
    assert_eq!(
        read(&d, &token, "/latest/meta-data/spot/termination-time").0,
        404,
        "a stop has no termination time"
    );
}

#[test]
fn a_terminating_spot_instance_reports_its_termination_time() {
    require_venv!();
    let d = Daemon::start();
    let token = d.token();
    simulate(&d, &["spot-interruption"]);
    let (_, notice) = read(&d, &token, "/latest/meta-data/spot/instance-action");
    let notice: serde_json::Value = serde_json::from_str(&notice).unwrap();
    assert_eq!(notice["action"], "terminate", "the default action");
    let (status, time) = read(&d, &token, "/latest/meta-data/spot/termination-time");
    assert_eq!(
        (status, time.as_str()),
        (200, notice["time"].as_str().unwrap())
    );
    assert_eq!(
        read(&d, &token, "/latest/meta-data/spot/").1,
        "instance-action\ntermination-time"
    );
}

#[test]
fn rebalance_maintenance_and_asg_termination_appear_where_ec2_puts_them() {
    require_venv!();
    let d = Daemon::start();
    let token = d.token();
    simulate(&d, &["rebalance"]);
    simulate(
        &d,
        &["maintenance", "--in", "2h", "--code", "instance-retirement"],
    );
    simulate(&d, &["asg-termination"]);
    let (_, rebalance) = read(
        &d,
        &token,
        "/latest/meta-data/events/recommendations/rebalance",
    );
    let rebalance: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&rebalance).unwrap();
    assert_eq!(rebalance.keys().collect::<Vec<_>>(), ["noticeTime"]);
    let (_, scheduled) = read(&d, &token, "/latest/meta-data/events/maintenance/scheduled");
    let scheduled: serde_json::Value = serde_json::from_str(&scheduled).unwrap();
    assert_eq!(scheduled[0]["Code"], "instance-retirement");
    assert_eq!(scheduled[0]["State"], "active");
    // EC2's form: `21 Jan 2019 09:00:43 GMT`.
    let not_before = chrono::NaiveDateTime::parse_from_str(
        scheduled[0]["NotBefore"].as_str().unwrap(),
        "%d %b %Y %H:%M:%S GMT",
    )
    .unwrap()
    .and_utc();
    let ahead = (not_before - Utc::now()).num_minutes();
    assert!((118..=120).contains(&ahead), "{ahead} min ahead, not 120");
    assert_eq!(
        read(
            &d,
            &token,
            "/latest/meta-data/autoscaling/target-lifecycle-state"
        )
        .1,
        "Terminated"
    );
    assert_eq!(
        read(&d, &token, "/latest/meta-data/events/").1,
        "maintenance/\nrecommendations/"
    );
}

#[test]
fn clear_puts_the_instance_back_as_launched() {
    require_venv!();
    let d = Daemon::start();
    let token = d.token();
    for event in [
        "spot-interruption",
        "rebalance",
        "maintenance",
        "asg-termination",
    ] {
        simulate(&d, &[event]);
    }
    let printed = simulate(&d, &["clear"]);
    assert!(printed.contains("no simulated events"), "{printed}");
    for path in [
        "/latest/meta-data/spot/instance-action",
        "/latest/meta-data/events/recommendations/rebalance",
        "/latest/meta-data/autoscaling/target-lifecycle-state",
    ] {
        assert_eq!(read(&d, &token, path).0, 404, "{path}");
    }
    assert_eq!(
        read(&d, &token, "/latest/meta-data/events/maintenance/scheduled").1,
        "[]"
    );
    assert_eq!(
        read(&d, &token, "/latest/meta-data/instance-life-cycle").1,
        "on-demand"
    );
}

/// Starting an event changes the instance for every reader, so a web page must not be able to:
/// the route takes a JSON body only.
#[test]
fn a_form_post_cannot_start_an_event() {
    require_venv!();
    let d = Daemon::start();
    let r = http(
        d.addr,
        "POST",
        "/fintors/simulate",
        &[("Content-Type", "text/plain")],
        r#"{"event": "asg-termination"}"#,
    );
    assert_eq!(r.status, 415, "{r:?}");
    assert_eq!(
        d.get("/latest/meta-data/autoscaling/target-lifecycle-state")
            .status,
        404
    );
}
