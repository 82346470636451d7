//! The commit `fintors --version` names beside the version: what a bug report, or a client
//! talking to a daemon built from other sources, needs to say. From git when building in a
//! checkout; "unknown commit" from a source tarball (crates.io).

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Only this source tree's own checkout: sources vendored into another repository (or a
    // registry under a home directory kept in git) must not name that repository's commit.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let ours = git(&["rev-parse", "--show-toplevel"]).is_some_and(|top| {
        Path::new(&top).canonicalize().ok() == Path::new(&manifest).canonicalize().ok()
    });
    let commit = ours
        .then(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .flatten();
    // Built again when HEAD moves: a new commit, a checkout, a branch that advances; where git
    // keeps them (`--git-path`: a worktree's HEAD is its own, its refs the common ones). A
    // branch's loose ref appears at its first commit after `git pack-refs`: its directory is
    // watched too. Only paths that exist: cargo reruns a script watching a missing one always.
    if ours {
        let mut watched: Vec<String> = ["HEAD", "packed-refs", "refs/heads"]
            .iter()
            .filter_map(|p| git(&["rev-parse", "--git-path", p]))
            .collect();
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
            && let Some(path) = git(&["rev-parse", "--git-path", &branch])
        {
            watched.push(path);
        }
        for path in watched.iter().filter(|p| Path::new(p).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!(
        "cargo:rustc-env=FINTORS_COMMIT={}",
        commit.as_deref().unwrap_or("unknown commit")
    );
}
