//! `fintors console [ROLE]`: the AWS console as a role, in the browser. The daemon makes the
//! sign-in URL (`POST /roles/ROLE/console`, through the federation endpoint); this opens it
//! with `$BROWSER`, else `xdg-open` (`open` on macOS), or prints it with `--print` or when there
//! is no display to open it on (an SSH session).
//!
//! The URL opens the console as the role for 15 minutes, so it goes to the browser and nowhere
//! else: not to the terminal unless asked, never to a log, and not on the opener's command line
//! either, which every user of the machine can read: the browser is given the daemon's one-use
//! link (`/fintors/console/<nonce>`, see `http::console`), which redirects to it.

use hyper::{Method, StatusCode};

use super::args::ClientArgs;
use super::browser::opener;
use super::client::Endpoint;
use super::daemon::{CommandError, Output, error_text, parse, report, unknown_role};
use super::picker::{self, Purpose, named_or_picked};
use crate::api::{ConsoleRequest, ConsoleUrl, paths};

/// `fintors console [ROLE] [--print] [--destination D] [--duration S]`
pub async fn console(
    args: &ClientArgs,
    role: Option<&str>,
    print: bool,
    mut request: ConsoleRequest,
) -> Output {
    let endpoint = Endpoint::discover(args)?;
    let alias = named_or_picked(args, &endpoint, role, Purpose::Console).await?;
    let opener = opener().filter(|_| !print);
    request.handoff = opener.is_some();
    let body = serde_json::to_string(&request).expect("serializes");
    let (status, reply) = endpoint
        .request_in_session(Method::POST, &paths::role_console(&alias), Some(body))
        .await?;
    match status {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND => return Err(unknown_role(&alias, &report(&endpoint).await?)),
        _ => return Err(CommandError::Refused(error_text(&reply))),
    }
    let answer: ConsoleUrl = parse(&endpoint, &reply)?;
    picker::remember(args, &alias);
    let (Some(opener), Some(handoff)) = (opener, &answer.handoff) else {
        return match &answer.url {
            Some(url) => Ok(format!("{}\n", url.expose())),
            None => Err(CommandError::NotFintors {
                endpoint: endpoint.clone(),
                why: "no sign-in URL".into(),
            }),
        };
    };
    // The daemon's one-use link: nothing on the opener's command line opens the console. Only
    // that shape, so whatever answers on the port cannot send the browser elsewhere.
    let nonce = handoff
        .strip_prefix(&paths::console_handoff(""))
        .unwrap_or("");
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CommandError::NotFintors {
            endpoint: endpoint.clone(),
            why: "a console link of the wrong shape".into(),
        });
    }
    let link = format!("{endpoint}{handoff}");
    let opened = super::browser::open_with(&opener, &link);
    match opened {
        Ok(s) if s.success() => Ok(format!(
            "opened the AWS console as {alias} at {} (the link works once, for a minute)\n",
            answer.destination
        )),
        Ok(status) => Err(CommandError::BrowserFailed {
            opener,
            link,
            status,
            alias,
        }),
        Err(why) => Err(CommandError::Exec {
            program: opener,
            why,
        }),
    }
}
