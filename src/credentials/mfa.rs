//! MFA that works in a background daemon.
//!
//! Roles that require MFA are assumed with an MFA-authenticated session: base credentials plus
//! one code make a `GetSessionToken` session (12 hours by default), kept in memory and used for
//! every role on that device, so there is no code per role and no role-chaining limit. A request
//! never waits for a human: until a code arrives (`fintors mfa CODE`, i.e. `PUT /mfa`, or the
//! configured `mfa_process`, run in the background), credential requests get the EC2-style error
//! document telling the user what to run. Codes are never logged.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::cache::MIN_SERVED_LIFETIME;
use super::sts::{classify, session_credentials};
use super::{MfaError, StsError};
use crate::config::MfaConfig;
use crate::model::{Clock, MfaSerial};

/// How long `mfa_process` may take (a YubiKey waiting for a touch).
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

pub struct MfaSessions {
    config: MfaConfig,
    /// Session validity is judged on the wall clock, as credentials' is.
    clock: Clock,
    client: aws_sdk_sts::Client,
    /// Where `client` calls, for an error that says what could not be reached.
    endpoint: String,
    sessions: RwLock<HashMap<MfaSerial, aws_credential_types::Credentials>>,
    /// Devices whose `mfa_process` is running, so it runs once however many requests need it.
    prompting: Mutex<HashSet<MfaSerial>>,
}

impl MfaSessions {
    pub fn new(
        config: MfaConfig,
        endpoint: String,
        client: aws_sdk_sts::Client,
        clock: Clock,
    ) -> Arc<Self> {
        Arc::new(MfaSessions {
            config,
            clock,
            client,
            endpoint,
            sessions: RwLock::new(HashMap::new()),
            prompting: Mutex::new(HashSet::new()),
        })
    }

    /// The device's session credentials, if they have more life left than credentials must have
    /// to be served at all.
    pub fn current(&self, serial: &MfaSerial) -> Option<aws_credential_types::Credentials> {
        let sessions = self.sessions.read().expect("poisoned");
        sessions
            .get(serial)
            .filter(|c| {
                c.expiry().is_some_and(|e| {
                    DateTime::<Utc>::from(e) - self.clock.now() > MIN_SERVED_LIFETIME
                })
            })
            .cloned()
    }

    /// When the device's session expires, if there is one.
    pub fn expiry(&self, serial: &MfaSerial) -> Option<DateTime<Utc>> {
        self.current(serial)
            .and_then(|c| c.expiry())
            .map(DateTime::<Utc>::from)
    }

    /// Starts a session for `serial` with `code` (GetSessionToken).
    pub async fn start(&self, serial: &MfaSerial, code: &str) -> Result<DateTime<Utc>, MfaError> {
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MfaError::InvalidCode);
        }
        let output = self
            .client
            .get_session_token()
            .serial_number(serial.as_str())
            .token_code(code)
            .duration_seconds(self.config.session_seconds as i32)
            .send()
            .await
            .map_err(|e| classify(e, &self.endpoint))?;
        let session = session_credentials(output.credentials(), "GetSessionToken")?;
        let expires = session.expiration;
        let credentials = aws_credential_types::Credentials::new(
            session.access_key_id,
            session.secret_access_key.expose(),
            Some(session.session_token.expose().to_owned()),
            Some(expires.into()),
            "fintors-mfa",
        );
        self.sessions
            .write()
            .expect("poisoned")
            .insert(serial.clone(), credentials);
        tracing::info!(
            serial = serial.as_str(),
            expires = %crate::model::time::format(expires),
            "MFA session started"
        );
        Ok(expires)
    }

    /// The error a role gets while its device has no session; with an `mfa_process` configured,
    /// also starts it in the background (once).
    pub fn required(self: &Arc<Self>, serial: &MfaSerial) -> StsError {
        if let Some(process) = self.config.process.clone() {
            let first = self
                .prompting
                .lock()
                .expect("poisoned")
                .insert(serial.clone());
            if first {
                let this = self.clone();
                let serial = serial.clone();
                tokio::spawn(async move {
                    if let Err(e) = this.run_process(&process, &serial).await {
                        tracing::warn!(serial = serial.as_str(), "mfa_process failed: {e}");
                    }
                    this.prompting.lock().expect("poisoned").remove(&serial);
                });
            }
            return StsError::MfaRequired(format!(
                "waiting for an MFA code for {} from mfa_process; or run `fintors mfa CODE`",
                serial.as_str()
            ));
        }
        StsError::MfaRequired(format!(
            "an MFA code is needed for {}: run `fintors mfa CODE`",
            serial.as_str()
        ))
    }

    async fn run_process(&self, process: &str, serial: &MfaSerial) -> Result<(), String> {
        let output = tokio::time::timeout(
            PROCESS_TIMEOUT,
            tokio::process::Command::new("sh")
                .arg("-c")
                .arg(process)
                .env("FINTORS_MFA_SERIAL", serial.as_str())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .map_err(|_| format!("no code within {} s", PROCESS_TIMEOUT.as_secs()))?
        .map_err(|e| format!("cannot run `{process}`: {e}"))?;
        if !output.status.success() {
            return Err(format!("`{process}` exited with {}", output.status));
        }
        let code = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        self.start(serial, &code)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::credentials::replay::{Replay, client, session_token_response, sts_error};

    fn serial() -> MfaSerial {
        MfaSerial::parse("arn:aws:iam::123456789012:mfa/me").unwrap()
    }

    fn sessions(replay: Replay, clock: Clock) -> Arc<MfaSessions> {
        MfaSessions::new(
            MfaConfig::default(),
            "https://sts.us-east-1.amazonaws.com".into(),
            client(replay, None),
            clock,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_serves_until_its_last_minute_on_the_wall_clock() {
        let clock = Clock::following_tokio(Utc::now());
        let expires = clock.now() + chrono::TimeDelta::hours(1);
        let mfa = sessions(
            Replay::answering(200, session_token_response(expires)),
            clock,
        );
        assert!(mfa.current(&serial()).is_none(), "no session before a code");
        let started = mfa.start(&serial(), "123456").await.unwrap();
        assert_eq!(started.timestamp(), expires.timestamp());
        tokio::time::advance(Duration::from_secs(58 * 60)).await;
        assert!(mfa.current(&serial()).is_some(), "two minutes left");
        assert_eq!(
            mfa.expiry(&serial()).map(|e| e.timestamp()),
            Some(expires.timestamp())
        );
        tokio::time::advance(Duration::from_secs(90)).await;
        assert!(mfa.current(&serial()).is_none(), "30 s left: never served");
        assert_eq!(mfa.expiry(&serial()), None);
    }

    #[tokio::test]
    async fn a_code_that_is_not_six_digits_never_reaches_sts() {
        // A replay that never answers: a call to STS would time out instead.
        let mfa = sessions(Replay::never(), Clock::system());
        for code in ["12345", "1234567", "12a456", ""] {
            assert_eq!(
                mfa.start(&serial(), code).await.unwrap_err(),
                MfaError::InvalidCode,
                "{code:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_refused_code_is_stss_error() {
        let refusal = sts_error(
            "AccessDenied",
            "MultiFactorAuthentication failed with invalid MFA one time pass code.",
        );
        let mfa = sessions(Replay::answering(403, refusal), Clock::system());
        match mfa.start(&serial(), "123456").await {
            Err(MfaError::Sts(e)) => assert_eq!(e.code(), "AccessDenied"),
            other => panic!("{other:?}"),
        }
        assert!(mfa.current(&serial()).is_none());
    }

    #[tokio::test]
    async fn without_a_session_a_role_is_told_what_to_run() {
        let mfa = sessions(Replay::never(), Clock::system());
        let e = mfa.required(&serial());
        assert_eq!(e.code(), "MfaRequired");
        assert!(e.message().contains("fintors mfa CODE"), "{e}");
    }
}
