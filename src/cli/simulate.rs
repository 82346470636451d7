//! `fintors simulate EVENT`: asks the daemon to start a simulated instance event (or clear
//! them) and prints what an application polling the metadata now reads.

use super::args::SimulateEvent;
use super::client::Endpoint;
use super::daemon::{Output, post_message};
use crate::api::{Simulate, SimulationReport, paths};

pub async fn simulate(event: &SimulateEvent) -> Output {
    let (simulate, client) = match event {
        SimulateEvent::SpotInterruption {
            after,
            action,
            client,
        } => (
            Simulate::SpotInterruption {
                action: *action,
                in_seconds: *after,
            },
            client,
        ),
        SimulateEvent::Rebalance { client } => (Simulate::Rebalance, client),
        SimulateEvent::Maintenance {
            after,
            code,
            client,
        } => (
            Simulate::Maintenance {
                code: *code,
                in_seconds: *after,
            },
            client,
        ),
        SimulateEvent::AsgTermination { client } => (Simulate::AsgTermination, client),
        SimulateEvent::Clear { client } => (Simulate::Clear, client),
    };
    let endpoint = Endpoint::discover(client)?;
    let report: SimulationReport = post_message(&endpoint, paths::SIMULATE, &simulate).await?;
    Ok(render(&report))
}

/// Each entry the events now serve, with its body; or that none are.
fn render(report: &SimulationReport) -> String {
    if report.served.is_empty() {
        return "no simulated events: the instance is as launched\n".to_owned();
    }
    let mut out = String::from("served until `fintors simulate clear`:\n");
    for served in &report.served {
        out.push_str(&format!("  {}\n", served.path));
        for line in served.body.lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out
}
