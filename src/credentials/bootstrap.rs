//! Base credentials handed to fintors at run time (`POST /bootstrap/creds` on the admin
//! listener, e.g. from a vault or a CI secret): when set, they win over the configured source.

use crate::model::Secret;

/// Base credentials supplied at run time (`POST /bootstrap/creds` on the admin API); when set,
/// they win over the configured source.
#[derive(Default)]
pub struct Bootstrap {
    credentials: std::sync::RwLock<Option<aws_credential_types::Credentials>>,
}

impl std::fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bootstrap(<redacted>)")
    }
}

impl Bootstrap {
    pub fn set(&self, access_key_id: &str, secret: &Secret, session_token: Option<&Secret>) {
        let credentials = aws_credential_types::Credentials::new(
            access_key_id,
            secret.expose(),
            session_token.map(|t| t.expose().to_owned()),
            None,
            "fintors-bootstrap",
        );
        *self.credentials.write().expect("poisoned") = Some(credentials);
    }

    pub(super) fn get(&self) -> Option<aws_credential_types::Credentials> {
        self.credentials.read().expect("poisoned").clone()
    }
}
