//! The real AWS clients beside the venv's, and how a test runs any client the way a user would:
//! after `eval "$(fintors env)"` (or `--ecs`), so each one sees the endpoint exactly as fintors
//! prints it, and nothing else that could lead it to credentials.
//!
//! - AWS CLI v2: Debian's `awscli` package, `/usr/bin/aws`.
//! - aws-sdk-go-v2: Debian's `golang-github-aws-aws-sdk-go-v2-dev`, built in GOPATH mode (no
//!   module download) from `tests/clients/go/whoami` into `target/clients/`, once per run.
//! - JS v3: `@aws-sdk/*` from the npm registry, installed by `make clients` into
//!   `tests/clients/js/node_modules`.
//!
//! Outside CI a missing client skips its tests with a message; under `CI=true` it fails them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{Daemon, in_ci, moto, repo_path};

/// `value`, or `None` with a message (outside CI) when a client is not installed here.
pub fn required<T>(what: &str, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(v) => Some(v),
        Err(why) => {
            let why = format!("{what} is not available: {why}");
            assert!(!in_ci(), "{why}");
            super::skipped(&why);
            None
        }
    }
}

/// Skips the calling test (returns) when the client is missing, outside CI.
#[macro_export]
macro_rules! require_client {
    ($found:expr) => {
        match $found {
            Some(v) => v,
            None => return,
        }
    };
}

/// The `openssl` command, which verifies the identity document's signatures as the EC2 User
/// Guide does.
pub fn openssl() -> Option<PathBuf> {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| PathBuf::from("openssl"))
        .ok_or_else(|| "install Debian's openssl package".to_owned());
    required("openssl", found)
}

/// AWS CLI v2 from Debian's `awscli` (the pyenv shim on PATH would be the venv's v1).
pub fn aws_cli_v2() -> Option<PathBuf> {
    let aws = PathBuf::from("/usr/bin/aws");
    let version = Command::new(&aws)
        .arg("--version")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let found = if version.starts_with("aws-cli/2.") {
        Ok(aws)
    } else {
        Err("install Debian's awscli package (AWS CLI v2)".to_owned())
    };
    required("AWS CLI v2", found)
}

/// The Go client, built once per test run.
pub fn go_whoami() -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = repo_path("target/clients");
        std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
        let exe = out.join("whoami-go");
        let o = Command::new("go")
            .args(["build", "-o"])
            .arg(&exe)
            .arg("./tests/clients/go/whoami")
            .current_dir(repo_path(""))
            .env("GO111MODULE", "off")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "")
            .env("GOPATH", "/usr/share/gocode")
            .env("GOCACHE", out.join("go-cache"))
            .output()
            .map_err(|e| {
                format!("go: {e}; install golang-go and golang-github-aws-aws-sdk-go-v2-dev")
            })?;
        if !o.status.success() {
            return Err(format!(
                "building tests/clients/go/whoami failed (golang-github-aws-aws-sdk-go-v2-dev \
                 installed?): {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Ok(exe)
    });
    required("aws-sdk-go-v2", built.clone())
}

/// Debian's Chromium, for the browser's side of `fintors console`.
/// A `$BROWSER` for `dir` that runs `chromium` headless on the link it is given and writes the
/// page it ends on to `dir/page.html`; with `record`, the link is written there first. Kept on
/// this machine: every name but loopback fails to resolve and any other connection goes to a
/// dead proxy, so the browser's own background traffic cannot leave (Chromium never proxies
/// loopback).
pub fn headless_browser(
    dir: &std::path::Path,
    chromium: &std::path::Path,
    record: Option<&std::path::Path>,
) -> PathBuf {
    let browser = dir.join("browser");
    let record = record
        .map(|r| format!("printf '%s' \"$1\" > {}\n", r.display()))
        .unwrap_or_default();
    super::write_script(
        &browser,
        &format!(
            "{record}HOME={dir} exec {chromium} --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
             --disable-background-networking --disable-component-update --disable-sync \
             --user-data-dir={dir}/chromium --proxy-server=127.0.0.1:9 \
             --host-resolver-rules='MAP * ~NOTFOUND, EXCLUDE 127.0.0.1' \
             --dump-dom \"$1\" > {dir}/page.html 2>/dev/null\n",
            dir = dir.display(),
            chromium = chromium.display()
        ),
    );
    browser
}

pub fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/chromium");
    let found = if path.exists() {
        Ok(path)
    } else {
        Err("install Debian's chromium".to_owned())
    };
    required("chromium", found)
}

/// `node` and the JS client script, once `make clients` has installed its packages.
pub fn js_whoami() -> Option<(PathBuf, PathBuf)> {
    let dir = repo_path("tests/clients/js");
    let found = if !dir.join("node_modules/@aws-sdk/client-sts").exists() {
        Err("run `make clients` (npm ci in tests/clients/js)".to_owned())
    } else if Command::new("node").arg("--version").output().is_err() {
        Err("node is not installed".to_owned())
    } else {
        Ok((PathBuf::from("node"), dir.join("whoami.mjs")))
    };
    required("JS v3", found)
}

/// Which way of reaching fintors a client is given, as `fintors env` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `eval "$(fintors env)"`: IMDS at the endpoint fintors prints.
    Imds,
    /// `eval "$(fintors env --ecs)"` over a stale token file variable (which it must unset);
    /// IMDS disabled, so the container endpoint is the only way to credentials.
    Container,
    /// `fintors exec ROLE -- client ...`, IMDS disabled.
    Exec(&'static str),
    /// A shell pinned with `eval "$(fintors env --role ROLE)"`, IMDS disabled.
    Pinned(&'static str),
}

/// Where a client finds its region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    /// us-east-1 in AWS_REGION and AWS_DEFAULT_REGION, as most users have it.
    Set,
    /// Only what `fintors env` exports for a shell that has none.
    Printed,
    /// Nowhere but the instance metadata: what `fintors env` exports is dropped too.
    ImdsOnly,
}

/// One run of a client program against a daemon.
pub struct ClientRun<'a> {
    daemon: &'a Daemon,
    via: Via,
    region: Region,
    envs: Vec<(String, String)>,
    imds_endpoint: Option<String>,
}

impl<'a> ClientRun<'a> {
    pub fn new(daemon: &'a Daemon, via: Via) -> Self {
        ClientRun {
            daemon,
            via,
            region: Region::Set,
            envs: Vec::new(),
            imds_endpoint: None,
        }
    }

    /// IMDS at `url` instead of where `fintors env` points (a proxy in front of fintors).
    pub fn imds_endpoint(mut self, url: &str) -> Self {
        self.imds_endpoint = Some(url.to_owned());
        self
    }

    /// No region anywhere, not even the one `fintors env` exports: the client must take it
    /// from the instance metadata.
    pub fn without_region(mut self) -> Self {
        self.region = Region::ImdsOnly;
        self
    }

    /// No region but the one `fintors env` exports (for botocore, which reads none from IMDS).
    pub fn with_the_printed_region(mut self) -> Self {
        self.region = Region::Printed;
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.envs.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Runs `program args` and returns its trimmed stdout; panics with its stderr on failure.
    pub fn run(&self, program: &Path, args: &[&str]) -> String {
        let (stdout, stderr, ok) = self.output(program, args);
        assert!(
            ok,
            "{} {args:?} failed ({:?}): {stderr}\n{}",
            program.display(),
            self.via,
            self.daemon.stderr()
        );
        stdout
    }

    /// Runs `program args`: trimmed stdout, stderr, and whether it succeeded.
    pub fn output(&self, program: &Path, args: &[&str]) -> (String, String, bool) {
        let home = self.daemon.dir.path().join("client-home");
        std::fs::create_dir_all(&home).unwrap();
        let (env_args, stale) = match self.via {
            Via::Imds => (String::new(), ""),
            // A token file left from elsewhere would win over the printed token in most SDKs.
            Via::Container => (
                " --ecs".into(),
                "export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/nonexistent\n",
            ),
            Via::Pinned(role) => (format!(" --role {role}"), ""),
            Via::Exec(_) => (String::new(), ""),
        };
        let mut script = match self.via {
            Via::Exec(_) => String::new(),
            _ => format!(
                "{stale}exports=$(\"$FINTORS\" env{env_args}) || exit 99\neval \"$exports\"\n"
            ),
        };
        if self.region == Region::ImdsOnly {
            script.push_str("unset AWS_DEFAULT_REGION\n");
        }
        if let Some(url) = &self.imds_endpoint {
            script.push_str(&format!(
                "export AWS_EC2_METADATA_SERVICE_ENDPOINT='{url}'\n"
            ));
        }
        match self.via {
            // fintors exec finds the daemon through FINTORS_ENDPOINT, as a user's would.
            Via::Exec(role) => script.push_str(&format!("exec \"$FINTORS\" exec {role} -- \"$@\"")),
            _ => script.push_str("unset FINTORS FINTORS_ENDPOINT\nexec \"$@\""),
        }
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(script)
            .arg("client")
            .arg(program)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("FINTORS", env!("CARGO_BIN_EXE_fintors"))
            .env("FINTORS_ENDPOINT", self.daemon.url())
            .env("FINTORS_STATE_DIR", self.daemon.state_dir())
            .env("AWS_CONFIG_FILE", home.join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("none"))
            .env("AWS_ENDPOINT_URL_STS", moto())
            // The JS SDK's notice that Node 20 support ends.
            .env("AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED", "true");
        if !matches!(self.via, Via::Imds) {
            command.env("AWS_EC2_METADATA_DISABLED", "true");
        }
        if self.region == Region::Set {
            command
                .env("AWS_REGION", "us-east-1")
                .env("AWS_DEFAULT_REGION", "us-east-1");
        }
        command.envs(self.envs.iter().map(|(k, v)| (k, v)));
        let o = command.output().expect("running the client");
        (
            String::from_utf8_lossy(&o.stdout).trim().to_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
            o.status.success(),
        )
    }
}
