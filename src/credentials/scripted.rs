//! [`ScriptedAssumer`]: the one stand-in for STS that the unit tests, the in-process contract
//! tests, the fuzz targets and the benches share, so that what "STS answered" means is written
//! once. It is built like the real thing is used: behind [`RoleAssumer`], answering per role,
//! with MFA sessions honoured, and with every call counted so a test can say "one upstream call
//! per refresh". It never touches the network.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::TimeDelta;
use tokio::sync::Semaphore;

use super::{AssumeFuture, MfaSessions, RoleAssumer, StsError};
use crate::model::{Clock, Credentials, Role, Secret};

/// What every secret access key it issues starts with: a response that carries it carries
/// credentials (the fuzz oracle looks for it), and no real key ever does.
pub const SECRET_PREFIX: &str = "scripted-secret-";

/// AssumeRole from a script. By default every call succeeds with one-hour credentials numbered
/// by call (`ASIA0000000000000001`, `scripted-secret-1`, ...). Outcomes pushed onto the script
/// are used first, in order; roles named as refused always get STS's `AccessDenied`; a role
/// with an MFA serial needs a current session in the [`MfaSessions`] given, as at STS.
pub struct ScriptedAssumer {
    clock: Clock,
    lifetime: TimeDelta,
    delay: Mutex<Duration>,
    script: Mutex<VecDeque<Result<(), StsError>>>,
    refused: HashSet<String>,
    mfa: Option<Arc<MfaSessions>>,
    /// When set, each answer waits for a permit ([`ScriptedAssumer::answer`]).
    gate: Option<Semaphore>,
    calls: AtomicU64,
    /// The chained calls: (role, access key id of the credentials that signed it).
    chained: Mutex<Vec<(String, String)>>,
}

impl ScriptedAssumer {
    /// An STS that issues one-hour credentials on `clock`'s time to every role.
    pub fn new(clock: Clock) -> ScriptedAssumer {
        ScriptedAssumer {
            clock,
            lifetime: TimeDelta::hours(1),
            delay: Mutex::new(Duration::ZERO),
            script: Mutex::default(),
            refused: HashSet::new(),
            mfa: None,
            gate: None,
            calls: AtomicU64::new(0),
            chained: Mutex::default(),
        }
    }

    /// Sessions that last `lifetime` from the moment of the call.
    pub fn lasting(mut self, lifetime: TimeDelta) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Each call answers after `delay` (on tokio's clock, so paused-time tests control it).
    pub fn delayed(self, delay: Duration) -> Self {
        self.slow_down(delay);
        self
    }

    /// The outcomes of the next calls, in order; success after them.
    pub fn scripted(self, outcomes: impl IntoIterator<Item = Result<(), StsError>>) -> Self {
        self.script.lock().expect("poisoned").extend(outcomes);
        self
    }

    /// The role with this alias is always refused with `AccessDenied`.
    pub fn refusing(mut self, alias: &str) -> Self {
        self.refused.insert(alias.to_owned());
        self
    }

    /// Roles with an MFA serial are refused, as STS refuses them, until `mfa` holds a session.
    pub fn with_mfa(mut self, mfa: Arc<MfaSessions>) -> Self {
        self.mfa = Some(mfa);
        self
    }

    /// Each call is counted at once, then waits to answer until [`ScriptedAssumer::answer`]
    /// lets it: for races with what happens while STS is being asked.
    pub fn gated(mut self) -> Self {
        self.gate = Some(Semaphore::new(0));
        self
    }

    /// Lets `n` gated calls answer.
    pub fn answer(&self, n: usize) {
        self.gate
            .as_ref()
            .expect("answer() is for a gated() assumer")
            .add_permits(n);
    }

    /// Calls so far, answered or not.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// The chained calls so far: each role and the key id of the `via` credentials it was
    /// assumed with.
    pub fn chained(&self) -> Vec<(String, String)> {
        self.chained.lock().expect("poisoned").clone()
    }

    /// Waits until at least `n` calls have been made.
    pub async fn asked(&self, n: u64) {
        while self.calls() < n {
            tokio::task::yield_now().await;
        }
    }

    /// Calls from now on answer after `delay`.
    pub fn slow_down(&self, delay: Duration) {
        *self.delay.lock().expect("poisoned") = delay;
    }

    /// Appends an outcome to the script.
    pub fn push(&self, outcome: Result<(), StsError>) {
        self.script.lock().expect("poisoned").push_back(outcome);
    }

    /// Drops the scripted outcomes still to come: STS succeeds from now on.
    pub fn clear(&self) {
        self.script.lock().expect("poisoned").clear();
    }

    fn outcome(&self, role: &Role) -> Result<(), StsError> {
        if self.refused.contains(role.alias.as_str()) {
            return Err(StsError::refused(
                "AccessDenied",
                "not authorized to perform: sts:AssumeRole",
            ));
        }
        if let (Some(serial), Some(mfa)) = (&role.mfa_serial, &self.mfa)
            && mfa.current(serial).is_none()
        {
            return Err(mfa.required(serial));
        }
        self.script
            .lock()
            .expect("poisoned")
            .pop_front()
            .unwrap_or(Ok(()))
    }
}

impl RoleAssumer for ScriptedAssumer {
    fn assume_role<'a>(&'a self, role: &'a Role) -> AssumeFuture<'a> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(gate) = &self.gate {
                gate.acquire().await.expect("never closed").forget();
            }
            let delay = *self.delay.lock().expect("poisoned");
            tokio::time::sleep(delay).await;
            self.outcome(role).map(|()| Credentials {
                access_key_id: format!("ASIA{n:016}"),
                secret_access_key: Secret::new(format!("{SECRET_PREFIX}{n}")),
                session_token: Secret::new(format!("scripted-token-{n}")),
                expiration: self.clock.now() + self.lifetime,
            })
        })
    }

    fn assume_role_as<'a>(&'a self, role: &'a Role, signer: Credentials) -> AssumeFuture<'a> {
        self.chained
            .lock()
            .expect("poisoned")
            .push((role.alias.to_string(), signer.access_key_id));
        self.assume_role(role)
    }
}
