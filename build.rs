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
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    // Built again when HEAD moves: a new commit, a checkout, a branch that advances. Only files
    // that exist: cargo would run a build script watching a missing one on every build.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let dir = Path::new(&dir);
        let mut watched = vec![dir.join("HEAD"), dir.join("packed-refs")];
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(dir.join(branch));
        }
        for file in watched.iter().filter(|f| f.exists()) {
            println!("cargo:rerun-if-changed={}", file.display());
        }
    } else {
        println!("cargo:rerun-if-changed=build.rs");
    }
    println!(
        "cargo:rustc-env=FINTORS_COMMIT={}",
        commit.as_deref().unwrap_or("unknown commit")
    );
}
