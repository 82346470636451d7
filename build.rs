//! What the binary gets at build time: the commit `fintors --version` names beside the version
//! (what a bug report, or a client talking to a daemon built from other sources, needs to say;
//! from git when building in a checkout, "unknown commit" from a source tarball), and on Linux
//! its relative relocations packed and, in a release build, the functions a daemon runs linked
//! side by side (`bench/layout.order`), where the toolchain can.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Whether a small C program links through the C compiler rustc links with (`cc`, or the
/// linker chosen for the target) with `args`, and runs. `name` names the probe's files.
fn links(name: &str, program: &str, args: &[String]) -> bool {
    let dir = Path::new(&var("OUT_DIR")).join(name);
    let _ = std::fs::create_dir_all(&dir);
    let source = dir.join("probe.c");
    let probe = dir.join("probe");
    if std::fs::write(&source, program).is_err() {
        return false;
    }
    let linker = std::env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".into());
    let linked = Command::new(linker)
        .args(args)
        .arg("-o")
        .arg(&probe)
        .arg(&source)
        .output()
        .is_ok_and(|o| o.status.success());
    linked && Command::new(&probe).status().is_ok_and(|s| s.success())
}

/// Whether the `fintors` binary can carry its relative relocations packed (`DT_RELR`, `-z
/// pack-relative-relocs`), linked with `linker`'s flags: a glibc target with a linker that
/// knows the option and a glibc (2.36+) that applies it. Told by linking and running a small C
/// program with it, so an older toolchain builds the binary as before instead of one its
/// loader cannot start. Not when cross-compiling: the probe could not run.
fn relative_relocations_pack(linker: &[String]) -> bool {
    // A pointer in initialized data: a relative relocation for the loader to apply.
    let program = "static int x = 42; int *p = &x; int main(void) { return *p != 42; }\n";
    let mut args = linker.to_vec();
    args.extend(
        [
            "-pie",
            "-fPIE",
            "-Wl,-z,pack-relative-relocs",
            "-Wl,--fatal-warnings",
        ]
        .map(String::from),
    );
    native_linux_gnu() && links("relr-probe", program, &args)
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// A glibc Linux target built on itself: where the probes below can run what they link.
fn native_linux_gnu() -> bool {
    var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("HOST") == var("TARGET")
}

/// The flags of a release link that puts the functions in `order` first (see
/// bench/src/layout.rs), with the toolchain's own lld: rust-lld, behind the `gcc-ld/ld.lld`
/// wrapper a C compiler finds with `-B` (what rustc itself passes on x86_64 Linux, where lld
/// has been its default since 1.90). None where a build would not take them: a linker the user
/// chose (for the target, or in RUSTFLAGS), a toolchain without rust-lld, or a C compiler that
/// cannot use it (gcc before 9 lacks `-fuse-ld=lld`), as linking a probe with them tells.
fn ordered_link(order: &Path) -> Option<Vec<String>> {
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let chosen = std::env::var_os("RUSTC_LINKER").is_some()
        || ["linker", "fuse-ld", "-B"]
            .iter()
            .any(|f| flags.contains(f));
    if !native_linux_gnu() || chosen || var("PROFILE") != "release" {
        return None;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let sysroot = String::from_utf8(sysroot.stdout).ok()?;
    let wrappers = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(var("HOST"))
        .join("bin/gcc-ld");
    // One argument each through -Xlinker: -Wl would split a path at its commas.
    let args = vec![
        format!("-B{}", wrappers.display()),
        "-fuse-ld=lld".to_owned(),
        "-Xlinker".to_owned(),
        format!("--symbol-ordering-file={}", order.display()),
        "-Xlinker".to_owned(),
        "--no-warn-symbol-ordering".to_owned(),
    ];
    let program = "int main(void) { return 0; }\n";
    (wrappers.join("ld.lld").is_file() && links("lld-probe", program, &args)).then_some(args)
}

/// Why the function order no longer fits this build, if it does not: it names the symbols of
/// another lock file or compiler (its header says which, as `make layout` wrote it), so most
/// of it would be skipped and idle memory grow back.
fn stale_layout(order: &Path) -> Option<String> {
    let list = std::fs::read_to_string(order).ok()?;
    let made_for = list
        .lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix("# made for: "))?;
    let lock = git(&["hash-object", "Cargo.lock"])?;
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc).arg("--version").output().ok()?;
    let now = format!(
        "Cargo.lock {lock}, {}",
        String::from_utf8_lossy(&version.stdout).trim()
    );
    (made_for.trim() != now).then(|| {
        "bench/layout.order was made for another Cargo.lock or rustc: run `make layout` \
         (idle memory grows until then)"
            .to_owned()
    })
}

/// The linker flags that strip the release binary of its symbol table (8 MB of names nothing
/// reads at run time), as the profile's `strip` would (rustc strips with `-x` on macOS); none
/// with debug info asked for, or a twin that keeps its symbols (`FINTORS_KEEP_SYMBOLS=1`: `make
/// layout`). Here rather than in the profile, whose `strip` would give that twin other symbol
/// names than the release build's.
fn strip_flags() -> &'static [&'static str] {
    let keep = !matches!(var("FINTORS_KEEP_SYMBOLS").as_str(), "" | "0");
    if var("PROFILE") != "release" || var("DEBUG") != "false" || keep {
        return &[];
    }
    match var("CARGO_CFG_TARGET_OS").as_str() {
        "linux" => &["-Wl,--strip-all"],
        "macos" => &["-Wl,-x"],
        _ => &[],
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    println!("cargo:rerun-if-env-changed=FINTORS_KEEP_SYMBOLS");
    // The functions a daemon runs, linked first and together: the kernel maps code 64 KiB
    // around each page start-up faults in, and start-up runs code from all over the binary.
    // Release builds only: the list names the release build's symbols.
    let order = Path::new(&var("CARGO_MANIFEST_DIR")).join("bench/layout.order");
    let ordered = order.is_file().then(|| ordered_link(&order)).flatten();
    if order.is_file() {
        println!("cargo:rerun-if-changed={}", order.display());
        println!("cargo:rerun-if-changed=Cargo.lock");
    }
    if let Some(args) = &ordered {
        if let Some(stale) = stale_layout(&order) {
            println!("cargo:warning={stale}");
        }
        for arg in args {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
    // 24,780 relocations of 24 bytes each become 6.5 KB: the binary 0.6 MB smaller, 580 KiB
    // less read at every start and kept resident (idle RSS 11.6 -> 11.2 MiB), with address
    // randomization as before. Probed with the link's own linker.
    if relative_relocations_pack(ordered.as_deref().unwrap_or_default()) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    for flag in strip_flags() {
        println!("cargo:rustc-link-arg-bins={flag}");
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
