//! Simulated instance events (`fintors simulate`): what EC2 puts in the metadata when it is about
//! to interrupt a Spot Instance, recommends a rebalance, schedules maintenance or has Auto Scaling
//! terminate the instance, so an application's handling of them can be tried on a workstation.
//!
//! Each event is a set of metadata entries with EC2's exact bodies (EC2 User Guide, "Spot
//! Instance interruption notices", "EC2 instance rebalance recommendations", "Scheduled events",
//! and Auto Scaling's "target lifecycle state"): [`Simulated::entries`] lists them, and the tree
//! ([`super::instance`]) and the `simulate` command's report both use that one list. An event
//! stays until `simulate clear`; a real instance would be gone once its time came.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::document::render;
use crate::api::{MaintenanceCode, ServedPath, Simulate, SimulationReport, SpotAction};
use crate::model::time;

/// The events in force, changed by `simulate` requests while the tree reads them.
#[derive(Debug)]
pub struct Events(Mutex<Simulated>);

impl Default for Events {
    fn default() -> Self {
        Events(Mutex::new(Simulated::NONE))
    }
}

impl Events {
    /// Starts (or replaces) the event `simulate` names, or clears them all, as of `now`; the
    /// answer is every entry the events in force now serve.
    pub fn apply(&self, simulate: Simulate, now: DateTime<Utc>) -> SimulationReport {
        let mut simulated = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let after = |seconds: u32| now + Duration::seconds(i64::from(seconds));
        match simulate {
            Simulate::SpotInterruption { action, in_seconds } => {
                simulated.spot = Some((action, after(in_seconds)));
            }
            Simulate::Rebalance => simulated.rebalance = Some(now),
            Simulate::Maintenance { code, in_seconds } => {
                simulated.maintenance = Some((code, after(in_seconds)));
            }
            Simulate::AsgTermination => simulated.asg_terminating = true,
            Simulate::Clear => *simulated = Simulated::NONE,
        }
        SimulationReport {
            served: simulated
                .entries()
                .into_iter()
                .map(|(path, body)| ServedPath {
                    path: format!("/latest/meta-data/{path}"),
                    body,
                })
                .collect(),
        }
    }

    /// The events in force now.
    pub fn current(&self) -> Simulated {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The events in force: each at most once, as on an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simulated {
    /// The interruption's action and when it happens.
    spot: Option<(SpotAction, DateTime<Utc>)>,
    /// When the rebalance recommendation was noticed.
    rebalance: Option<DateTime<Utc>>,
    /// The scheduled event's code and when its window opens.
    maintenance: Option<(MaintenanceCode, DateTime<Utc>)>,
    asg_terminating: bool,
}

/// How long a simulated maintenance window lasts (`NotBefore` to `NotAfter`).
const MAINTENANCE_WINDOW: Duration = Duration::hours(2);

/// `spot/instance-action`, compact as EC2 writes it.
#[derive(Serialize)]
struct InstanceAction {
    action: SpotAction,
    #[serde(with = "time")]
    time: DateTime<Utc>,
}

/// `events/recommendations/rebalance`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rebalance {
    #[serde(with = "time")]
    notice_time: DateTime<Utc>,
}

/// One entry of `events/maintenance/scheduled`, in EC2's field order.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduledEvent {
    not_before: String,
    code: MaintenanceCode,
    description: &'static str,
    event_id: String,
    not_after: String,
    state: &'static str,
}

/// EC2's scheduled-event times: `21 Jan 2019 09:00:43 GMT`.
fn event_time(t: DateTime<Utc>) -> String {
    t.format("%-d %b %Y %H:%M:%S GMT").to_string()
}

impl Simulated {
    /// No events: the instance as launched.
    pub const NONE: Simulated = Simulated {
        spot: None,
        rebalance: None,
        maintenance: None,
        asg_terminating: false,
    };

    /// `instance-life-cycle`: a Spot Instance says so (interruption notices and rebalance
    /// recommendations are Spot's alone).
    pub fn life_cycle(&self) -> &'static str {
        if self.spot.is_some() || self.rebalance.is_some() {
            "spot"
        } else {
            "on-demand"
        }
    }

    /// Each metadata entry (path under `meta-data/`) the events add or change, with its body.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let mut entries = Vec::new();
        if let Some((action, at)) = self.spot {
            let notice =
                serde_json::to_string(&InstanceAction { action, time: at }).expect("plain data");
            entries.push(("spot/instance-action", notice));
            // Only a terminating instance has a termination time (EC2 User Guide,
            // "termination-time").
            if action == SpotAction::Terminate {
                entries.push(("spot/termination-time", time::format(at)));
            }
        }
        if let Some(noticed) = self.rebalance {
            let notice = serde_json::to_string(&Rebalance {
                notice_time: noticed,
            })
            .expect("plain data");
            entries.push(("events/recommendations/rebalance", notice));
        }
        if let Some((code, opens)) = self.maintenance {
            let event = ScheduledEvent {
                not_before: event_time(opens),
                code,
                description: match code {
                    MaintenanceCode::SystemReboot | MaintenanceCode::InstanceReboot => {
                        "scheduled reboot"
                    }
                    MaintenanceCode::SystemMaintenance => "scheduled maintenance",
                    MaintenanceCode::InstanceRetirement | MaintenanceCode::InstanceStop => {
                        "The instance is running on degraded hardware"
                    }
                },
                event_id: super::stable_id(
                    "instance-event-",
                    &[format!("{code:?}{opens}").as_bytes()],
                ),
                not_after: event_time(opens + MAINTENANCE_WINDOW),
                state: "active",
            };
            entries.push(("events/maintenance/scheduled", render(&[event])));
        }
        if self.asg_terminating {
            entries.push(("autoscaling/target-lifecycle-state", "Terminated".into()));
        }
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn served(events: &Events, simulate: Simulate) -> Vec<(String, String)> {
        events
            .apply(simulate, at("2026-12-04T08:20:00Z"))
            .served
            .into_iter()
            .map(|s| (s.path, s.body))
            .collect()
    }

    #[test]
    fn a_spot_interruption_is_ec2s_notice_two_minutes_ahead() {
        let events = Events::default();
        let simulate = Simulate::SpotInterruption {
            action: SpotAction::Terminate,
            in_seconds: 120,
        };
        assert_eq!(
            served(&events, simulate),
            [
                (
                    "/latest/meta-data/spot/instance-action".to_owned(),
                    r#"{"action":"terminate","time":"2026-12-04T08:22:00Z"}"#.to_owned()
                ),
                (
                    "/latest/meta-data/spot/termination-time".to_owned(),
                    "2026-12-04T08:22:00Z".to_owned()
                ),
            ]
        );
        assert_eq!(events.current().life_cycle(), "spot");
    }

    #[test]
    fn only_a_terminating_spot_instance_has_a_termination_time() {
        let events = Events::default();
        let paths: Vec<String> = served(
            &events,
            Simulate::SpotInterruption {
                action: SpotAction::Hibernate,
                in_seconds: 60,
            },
        )
        .into_iter()
        .map(|(path, _)| path)
        .collect();
        assert_eq!(paths, ["/latest/meta-data/spot/instance-action"]);
    }

    #[test]
    fn a_rebalance_recommendation_is_noticed_now() {
        let events = Events::default();
        let served = served(&events, Simulate::Rebalance);
        assert_eq!(served[0].1, r#"{"noticeTime":"2026-12-04T08:20:00Z"}"#);
    }

    #[test]
    fn a_scheduled_event_has_ec2s_fields_order_and_times() {
        let events = Events::default();
        let served = served(
            &events,
            Simulate::Maintenance {
                code: MaintenanceCode::SystemReboot,
                in_seconds: 3600,
            },
        );
        let (path, body) = &served[0];
        assert_eq!(path, "/latest/meta-data/events/maintenance/scheduled");
        let keys: Vec<&str> = body
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
            .collect();
        assert_eq!(
            keys,
            [
                "NotBefore",
                "Code",
                "Description",
                "EventId",
                "NotAfter",
                "State"
            ]
        );
        let list: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(list[0]["NotBefore"], "4 Dec 2026 09:20:00 GMT");
        assert_eq!(list[0]["NotAfter"], "4 Dec 2026 11:20:00 GMT");
        assert_eq!(list[0]["Code"], "system-reboot");
        let id = list[0]["EventId"].as_str().unwrap();
        assert!(id.starts_with("instance-event-") && id.len() == 32, "{id}");
    }

    #[test]
    fn clear_ends_every_event() {
        let events = Events::default();
        served(&events, Simulate::AsgTermination);
        served(&events, Simulate::Rebalance);
        assert_eq!(served(&events, Simulate::Clear), []);
        assert_eq!(events.current(), Simulated::NONE);
        assert_eq!(events.current().life_cycle(), "on-demand");
    }
}
