//! Two things the binary gets at build time: the commit `fintors --version` names beside the
//! version (what a bug report, or a client talking to a daemon built from other sources, needs
//! to say; from git when building in a checkout, "unknown commit" from a source tarball), and
//! on Linux its relative relocations packed, where the toolchain can.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Whether the `fintors` binary can carry its relative relocations packed (`DT_RELR`, `-z
/// pack-relative-relocs`): a glibc target with a linker that knows the option and a glibc
/// (2.36+) that applies it. Told by linking and running a small C program with it, so an older
/// toolchain builds the binary as before instead of one its loader cannot start. Not when
/// cross-compiling: the probe could not run.
fn relative_relocations_pack() -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || var("HOST") != var("TARGET")
    {
        return false;
    }
    let dir = Path::new(&var("OUT_DIR")).join("relr-probe");
    let _ = std::fs::create_dir_all(&dir);
    let source = dir.join("probe.c");
    let probe = dir.join("probe");
    // A pointer in initialized data: a relative relocation for the loader to apply.
    let program = "static int x = 42; int *p = &x; int main(void) { return *p != 42; }\n";
    if std::fs::write(&source, program).is_err() {
        return false;
    }
    let linked = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args([
            "-pie",
            "-fPIE",
            "-Wl,-z,pack-relative-relocs",
            "-Wl,--fatal-warnings",
        ])
        .arg("-o")
        .arg(&probe)
        .arg(&source)
        .output()
        .is_ok_and(|o| o.status.success());
    linked && Command::new(&probe).status().is_ok_and(|s| s.success())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    // 24,780 relocations of 24 bytes each become 6.5 KB: the binary 0.6 MB smaller, 580 KiB
    // less read at every start and kept resident (idle RSS 11.6 -> 11.2 MiB), with address
    // randomization as before.
    if relative_relocations_pack() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
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
