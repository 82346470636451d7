//! The order fintors's functions are linked in: those a daemon runs, from exec to serving and
//! stopping, first and together.
//!
//! Idle RSS is mostly the binary's own code (anonymous memory is ~1.7 MiB of ~11). Start-up runs
//! code from all over `.text`, and the kernel maps 64 KiB of page cache around every page it
//! faults in (`fault_around_bytes`; `MADV_RANDOM` does not stop it), so touching one function in
//! a window maps the whole window: 6.5 MB of the 8 MB `.text` was resident in an idle daemon.
//! Linked with the functions it runs side by side, the same start touches a fraction of the
//! windows. The list comes from callgrind, which names every function that ran; lld takes it as
//! `--symbol-ordering-file` (`build.rs`), hottest first, the rest of the binary after it.
//!
//! A stale list costs nothing but memory: a symbol that no longer exists is skipped, a new one
//! goes with the rest. `make layout` writes it again; `make bench` shows the RSS it buys.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::instructions::{self, Credentials, Scenario};
use crate::{Fintors, flag};

/// Rounds of every scenario: enough to run each path more than once (caches filled, then hit).
const ROUNDS: u64 = 20;

/// `fintors-bench layout --fintors PATH [--out FILE]`: runs the daemon under callgrind through
/// start-up, the first credential, every scenario the instruction count measures, the metadata
/// readers ask for and a stop; writes the functions that ran to `FILE` (`bench/layout.order`).
/// PATH must have its symbols (`make layout` builds one).
pub async fn layout(args: &[String]) {
    let (fintors, work, _sts) = Fintors::for_subcommand(args, "layout").await;
    let out = PathBuf::from(flag(args, "--out").unwrap_or_else(|| "bench/layout.order".into()));
    let dumps = work.join("dumps");
    std::fs::create_dir_all(&dumps).unwrap();
    let stem = dumps.join("callgrind.fintors");
    let mut wrapper = instructions::callgrind(&stem);
    wrapper.extend(["--demangle=no".into(), "--compress-pos=no".into()]);
    let command = fintors.command_under(0, "0", &wrapper);
    let daemon = crate::spawn_listening(command, true).await;
    let imds = daemon.addr;
    let credentials = instructions::credentials(&fintors, imds).await;
    tokio::task::block_in_place(|| {
        for scenario in instructions::SCENARIOS {
            let addr = match scenario {
                Scenario::Container => credentials.container,
                _ => imds,
            };
            let (requests, new_connection) = instructions::requests(scenario, addr, &credentials);
            instructions::drive(addr, &requests, new_connection, ROUNDS);
        }
        instructions::drive(imds, &readers(imds, &credentials), false, ROUNDS);
    });
    daemon.terminate().await;
    let dump = std::fs::read_dir(&dumps)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("callgrind.fintors"))
        .expect("callgrind wrote no dump");
    let names = ran(&std::fs::read_to_string(&dump).unwrap(), &fintors.binary);
    assert!(
        names.len() > 1000,
        "only {} functions named: was {} built with its symbols?",
        names.len(),
        fintors.binary.display()
    );
    // Symbol names change with the compiler and with the dependencies: the list says which it
    // was made with, and build.rs warns when they are no longer the build's.
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let lock = std::process::Command::new("git")
        .args(["hash-object", "Cargo.lock"])
        .current_dir(&workspace)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .expect("git hash-object Cargo.lock");
    let header = format!(
        "# fintors's functions that a daemon runs from exec to serving and stopping, hottest\n\
         # first: the order lld links them in (build.rs), so that start-up maps few pages.\n\
         # Written by `make layout`; a stale line is skipped, a function missing here is\n\
         # linked with the rest. The names are those of this lock file and compiler:\n\
         # made for: Cargo.lock {lock}, {rustc}\n"
    );
    std::fs::write(&out, format!("{header}{}\n", names.join("\n"))).unwrap();
    eprintln!("{} functions -> {}", names.len(), out.display());
    let _ = std::fs::remove_dir_all(&work);
}

/// What metadata readers ask for besides credentials, with the token: the listing's root, the
/// region and the instance identity document (SDKs' region lookup, instance tooling).
fn readers(imds: SocketAddr, c: &Credentials) -> Vec<String> {
    [
        "/latest/meta-data/",
        "/latest/meta-data/placement/region",
        "/latest/dynamic/instance-identity/document",
    ]
    .iter()
    .map(|path| instructions::get_with_token(imds, path, c))
    .collect()
}

/// The mangled names of the functions in `binary` that ran, by the instructions they ran
/// (most first), from a callgrind dump written with `--compress-strings=no --compress-pos=no`.
fn ran(dump: &str, binary: &Path) -> Vec<String> {
    let binary = binary.canonicalize().unwrap_or_else(|_| binary.to_owned());
    let binary = binary.to_string_lossy();
    let mut cost: HashMap<&str, u64> = HashMap::new();
    let mut in_binary = false;
    let mut function: Option<&str> = None;
    // The cost line after `calls=` is the callee's inclusive cost, not the caller's own.
    let mut call_cost_next = false;
    for line in dump.lines() {
        if let Some(object) = line.strip_prefix("ob=") {
            in_binary = object == binary;
        } else if let Some(name) = line.strip_prefix("fn=") {
            // A recursive call's frames are named `NAME'2`, `NAME'3`, ...: the same function.
            function = Some(name.split_once('\'').map_or(name, |(name, _)| name));
        } else if line.starts_with("calls=") {
            call_cost_next = true;
        } else if line.starts_with(|c: char| c.is_ascii_digit()) {
            if std::mem::take(&mut call_cost_next) {
                continue;
            }
            let own: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if let (true, Some(name), true) = (in_binary, function, own > 0) {
                *cost.entry(name).or_default() += own;
            }
        }
    }
    let mut names: Vec<(&str, u64)> = cost.into_iter().collect();
    names.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    names.into_iter().map(|(n, _)| n.to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_is_ordered_by_its_own_instructions_not_its_callees_recursion_included() {
        let dump = "ob=/bin/fintors\nfl=a.rs\nfn=_ZN4main\n1 10\ncob=/bin/fintors\ncfn=_ZN5child\n\
                    calls=1 0\n1 1000\nfn=_ZN5child\n2 50\nfn=_ZN4main'2\n1 45\n\
                    ob=/lib/libc.so\nfn=memcpy\n3 9999\n";
        assert_eq!(
            ran(dump, Path::new("/bin/fintors")),
            ["_ZN4main", "_ZN5child"]
        );
    }
}
