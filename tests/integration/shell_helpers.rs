//! The bash, zsh and fish helpers in shell/, run by the real shells against a live daemon, with
//! only curl (no fintors binary on PATH), but for pinning a shell, which needs the fintors
//! command.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::require_venv;
use crate::support::{Daemon, free_port, in_ci, repo_path};

/// A PATH with curl and the shells but no fintors.
fn bare_path() -> String {
    "/usr/local/bin:/usr/bin:/bin".to_owned()
}

/// Whether `shell` runs here; a skip (a failure under CI) if not.
pub(crate) fn shell_available(shell: &str) -> bool {
    let found = Command::new(shell).arg("-c").arg("true").output().is_ok();
    if !found {
        assert!(
            !in_ci(),
            "{shell} is not installed; .ci/run must install it"
        );
        crate::support::skipped(&format!("{shell} is not installed"));
    }
    found
}

/// Runs `script` in `shell` after sourcing the helpers, against `endpoint`.
fn run(shell: &str, endpoint: &str, script: &str) -> Output {
    let helpers: PathBuf = repo_path(&format!("shell/fintors.{shell}"));
    Command::new(shell)
        .arg("-c")
        .arg(format!("source {}\n{script}", helpers.display()))
        .env_clear()
        .env("PATH", bare_path())
        .env("HOME", "/nonexistent")
        .env("FINTORS_ENDPOINT", endpoint)
        .output()
        .unwrap()
}

/// [`run`] with the fintors command on PATH too (pinning needs it, and the daemon's state
/// directory), STS at moto and a region.
fn run_with_fintors(shell: &str, daemon: &Daemon, script: &str) -> Output {
    let helpers: PathBuf = repo_path(&format!("shell/fintors.{shell}"));
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_fintors"))
        .parent()
        .unwrap();
    Command::new(shell)
        .arg("-c")
        .arg(format!("source {}\n{script}", helpers.display()))
        .env_clear()
        .env("PATH", format!("{}:{}", bin.display(), bare_path()))
        .env("HOME", "/nonexistent")
        .env("FINTORS_ENDPOINT", daemon.url())
        .env("FINTORS_STATE_DIR", daemon.state_dir())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL_STS", crate::support::moto())
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn lists_roles_with_the_active_one_marked(shell: &str) {
    require_venv!();
    if !shell_available(shell) {
        return;
    }
    let d = Daemon::start();
    let o = run(shell, &d.url(), "fintors_roles");
    assert_eq!(out(&o), "* example\n  example2\n", "{}", err(&o));
}

fn switches_through_the_role_api(shell: &str) {
    require_venv!();
    if !shell_available(shell) {
        return;
    }
    let d = Daemon::start();
    let script = if shell == "fish" {
        "fintors_use example2; and fintors_current"
    } else {
        "fintors_use example2 && fintors_current"
    };
    let o = run(shell, &d.url(), script);
    assert_eq!(out(&o), "active role: example2\nexample2\n", "{}", err(&o));
    assert_eq!(
        d.get("/roles?status=active").body,
        r#"{"roles":["example2"]}"#
    );
}

/// Under --imdsv2-required the role API needs an IMDS session too; the helpers get one when
/// they are told so (a 401), and otherwise send one request as before.
fn work_when_the_daemon_requires_imdsv2(shell: &str) {
    require_venv!();
    if !shell_available(shell) {
        return;
    }
    let d = Daemon::builder(crate::support::TWO_ROLES)
        .arg("--imdsv2-required")
        .start();
    let script = if shell == "fish" {
        "fintors_use example2; and fintors_roles"
    } else {
        "fintors_use example2 && fintors_roles"
    };
    let o = run(shell, &d.url(), script);
    assert_eq!(
        out(&o),
        "active role: example2\n  example\n* example2\n",
        "{}",
        err(&o)
    );
}

fn unknown_role_is_refused_with_status_1(shell: &str) {
    require_venv!();
    if !shell_available(shell) {
        return;
    }
    let d = Daemon::start();
    let o = run(shell, &d.url(), "fintors_use nope");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(err(&o), "fintors: unknown role: nope\n");
    assert_eq!(
        d.get("/roles?status=active").body,
        r#"{"roles":["example"]}"#
    );
}

fn prompt_shows_the_active_role(shell: &str) {
    require_venv!();
    if !shell_available(shell) {
        return;
    }
    let d = Daemon::start();
    assert_eq!(out(&run(shell, &d.url(), "fintors_prompt")), "(example) ");
    let down = format!("http://127.0.0.1:{}", free_port());
    let o = run(shell, &down, "fintors_prompt");
    assert_eq!(
        (out(&o).as_str(), o.status.code()),
        ("", Some(0)),
        "a prompt never fails"
    );
}

/// Whoever answers on the daemon's port (a squatter, before fintors starts) can put anything in
/// a role's name; the prompt shows only what a role name may hold: no zsh `%` sequences, no
/// terminal escapes.
fn the_prompt_shows_only_what_a_role_name_may_hold(shell: &str) {
    if !shell_available(shell) {
        return;
    }
    let squatter = crate::support::FakeServer::start(|_| {
        (
            200,
            "application/json",
            "{\"roles\":[\"%F{red}ev$(x)il\u{1b}]0;t\u{7}\"]}".to_owned(),
        )
    });
    let o = run(shell, &squatter.url, "fintors_prompt");
    assert_eq!(out(&o), "(Fredevxil0t) ", "{}", err(&o));
}

fn pins_the_shell_to_a_role_and_unpins_it_back(shell: &str) {
    require_venv!();
    if !shell_available(shell) {
        return;
    }
    let d = Daemon::start();
    let whoami = crate::support::rust_whoami();
    let whoami = whoami.display();
    let script = if shell != "fish" {
        format!(
            "export AWS_REGION=ap-south-1 AWS_PROFILE=parent\n\
             fintors_use --here example2 >/dev/null || exit 9\n\
             printf 'pinned:%s\\n' \"$FINTORS_ROLE\"\n\
             fintors_prompt; echo\n\
             {whoami} --container\n\
             printf 'profile:%s\\n' \"${{AWS_PROFILE-unset}}\"\n\
             fintors_unpin\n\
             printf 'after:%s:%s:%s\\n' \"${{FINTORS_ROLE-unset}}\" \"$AWS_PROFILE\" \"$AWS_REGION\"\n\
             fintors_prompt; echo"
        )
    } else {
        format!(
            "set -gx AWS_REGION ap-south-1; set -gx AWS_PROFILE parent\n\
             fintors_use --here example2 >/dev/null; or exit 9\n\
             printf 'pinned:%s\\n' $FINTORS_ROLE\n\
             fintors_prompt; echo\n\
             {whoami} --container\n\
             printf 'profile:%s\\n' (set -q AWS_PROFILE; and echo $AWS_PROFILE; or echo unset)\n\
             fintors_unpin\n\
             printf 'after:%s:%s:%s\\n' (set -q FINTORS_ROLE; and echo $FINTORS_ROLE; or echo unset) $AWS_PROFILE $AWS_REGION\n\
             fintors_prompt; echo"
        )
    };
    let o = run_with_fintors(shell, &d, &script);
    assert_eq!(
        out(&o),
        "pinned:example2\n[example2] \n\
         arn:aws:sts::123456789012:assumed-role/example2/me\n\
         profile:unset\nafter:unset:parent:ap-south-1\n(example) \n",
        "{}",
        err(&o)
    );
}

fn completes_role_aliases(shell: &str) {
    require_venv!();
    if !shell_available(shell) {
        return;
    }
    let d = Daemon::start();
    let script = match shell {
        "bash" => {
            "COMP_WORDS=(fintors_use ex); COMP_CWORD=1; _fintors_complete_use; printf '%s\\n' \"${COMPREPLY[@]}\"\n\
             COMP_WORDS=(fintors use example); COMP_CWORD=2; _fintors_complete_cli; printf '%s\\n' \"${COMPREPLY[@]}\"\n\
             COMP_WORDS=(fintors console ex); COMP_CWORD=2; _fintors_complete_cli; printf '%s\\n' \"${COMPREPLY[@]}\""
        }
        // compadd, which matches what is offered against what was typed, works only inside
        // zsh's completion; here it prints what it is given.
        "zsh" => {
            "compadd() { shift $(( ${@[(i)--]} )); print -l -- \"$@\"; }\n\
             words=(fintors_use ex); CURRENT=2; _fintors_complete_use\n\
             words=(fintors use example); CURRENT=3; _fintors_complete_cli\n\
             words=(fintors console ex); CURRENT=3; _fintors_complete_cli"
        }
        _ => {
            "complete -C'fintors_use ex'; complete -C'fintors use example'; complete -C'fintors console ex'"
        }
    };
    let o = run(shell, &d.url(), script);
    let expected = "example\nexample2\nexample\nexample2\nexample\nexample2\n";
    assert_eq!(out(&o), expected, "{}", err(&o));
}

fn daemon_down_is_one_line_and_status_2(shell: &str) {
    if !shell_available(shell) {
        return;
    }
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    for f in ["fintors_roles", "fintors_use example", "fintors_current"] {
        let o = run(shell, &endpoint, f);
        assert_eq!(o.status.code(), Some(2), "{shell} {f}");
        assert_eq!(
            err(&o),
            format!(
                "fintors is not running at {endpoint}: start it with `fintors serve` (or set FINTORS_ENDPOINT)\n"
            ),
            "{shell} {f}"
        );
    }
}

/// zsh's completion system, loaded as a .zshrc loads it, then fintors's completions and the
/// helper: `fintors` completes through the helper, which hands what is not a role name to
/// fintors's own completion, and `fintors_use` completes role names.
#[test]
fn zsh_registers_its_completions_over_fintorss_own() {
    require_venv!();
    if !shell_available("zsh") {
        return;
    }
    let d = Daemon::start();
    let helpers = repo_path("shell/fintors.zsh");
    let script = format!(
        "autoload -Uz compinit && compinit -u -D\n\
         source <(fintors completions zsh)\n\
         source {}\n\
         print -r -- $_comps[fintors] $_comps[fintors_use] $+functions[_fintors]",
        helpers.display()
    );
    let o = run_with_fintors("zsh", &d, &script);
    assert_eq!(
        out(&o).lines().last().unwrap_or_default(),
        "_fintors_complete_cli _fintors_complete_use 1",
        "{}",
        err(&o)
    );
}

macro_rules! for_each_shell {
    ($($name:ident),* $(,)?) => {
        mod bash {
            $( #[test] fn $name() { super::$name("bash") } )*
        }
        mod zsh {
            $( #[test] fn $name() { super::$name("zsh") } )*
        }
        mod fish {
            $( #[test] fn $name() { super::$name("fish") } )*
        }
    };
}

for_each_shell!(
    lists_roles_with_the_active_one_marked,
    switches_through_the_role_api,
    work_when_the_daemon_requires_imdsv2,
    unknown_role_is_refused_with_status_1,
    prompt_shows_the_active_role,
    the_prompt_shows_only_what_a_role_name_may_hold,
    pins_the_shell_to_a_role_and_unpins_it_back,
    completes_role_aliases,
    daemon_down_is_one_line_and_status_2,
);
