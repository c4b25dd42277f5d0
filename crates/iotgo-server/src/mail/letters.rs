//! The texts of the mails: plain text, one link each, saying how long it works and what
//! to do when the mail was not expected.

use super::{CHANGE_TTL, RESET_TTL, VERIFY_TTL};
use std::time::Duration;

/// One mail, ready for the queue.
#[derive(Debug, Clone)]
pub struct Letter {
    /// What it is, for logs and metrics: `verify`, `reset`, `change` or `notice`.
    pub kind: &'static str,
    /// The recipient's address.
    pub to: String,
    /// Subject line.
    pub subject: &'static str,
    /// Plain-text body.
    pub body: String,
}

fn span(ttl: Duration) -> String {
    match ttl.as_secs() {
        s if s % 3600 == 0 => format!("{} hours", s / 3600),
        s => format!("{} minutes", s / 60),
    }
}

/// Asks a new account to confirm its address.
pub(super) fn verify(to: &str, link: &str) -> Letter {
    Letter {
        kind: "verify",
        to: to.to_owned(),
        subject: "Confirm your e-mail address for IoTgo",
        body: format!(
            "Welcome to IoTgo.\n\nTo confirm that {to} is your address, open this link \
             within {}:\n\n{link}\n\nIf you did not sign up, ignore this mail: nothing \
             happens unless the link is opened.\n",
            span(VERIFY_TTL)
        ),
    }
}

/// Carries a password reset link.
pub(super) fn reset(to: &str, link: &str) -> Letter {
    Letter {
        kind: "reset",
        to: to.to_owned(),
        subject: "Reset your IoTgo password",
        body: format!(
            "Someone asked to reset the password of the IoTgo account {to}.\n\nTo choose \
             a new password, open this link within {} (it works once):\n\n{link}\n\n\
             If it was not you, ignore this mail: your password stays as it is.\n",
            span(RESET_TTL)
        ),
    }
}

/// Asks the new address of an account to confirm the change.
pub(super) fn change(old: &str, to: &str, link: &str) -> Letter {
    Letter {
        kind: "change",
        to: to.to_owned(),
        subject: "Confirm your new e-mail address for IoTgo",
        body: format!(
            "The IoTgo account {old} asked to use {to} as its address from now on.\n\n\
             To confirm, open this link within {}:\n\n{link}\n\nIf it was not you, \
             ignore this mail: nothing changes unless the link is opened.\n",
            span(CHANGE_TTL)
        ),
    }
}

/// Tells the old address that the account moved to a new one.
pub(super) fn changed(old: &str, new: &str) -> Letter {
    Letter {
        kind: "notice",
        to: old.to_owned(),
        subject: "Your IoTgo e-mail address was changed",
        body: format!(
            "The IoTgo account {old} now uses the address {new}; mail for it, password \
             resets included, goes there.\n\nIf you did not make this change, tell the \
             administrator of this IoTgo server at once.\n"
        ),
    }
}
