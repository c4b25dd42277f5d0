//! Checks on user-supplied text, with the messages clients show.

use crate::error::ApiError;

/// Longest device, group or license name, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 128;
/// Shortest accepted password, in characters.
pub(crate) const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in bytes (hashing cost stays bounded).
pub(crate) const MAX_PASSWORD_BYTES: usize = 1024;

/// A trimmed, lowercased e-mail address of plausible form.
pub(crate) fn email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let ok = email.len() <= 254
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
                    && !local.contains(|c: char| c.is_whitespace() || c.is_control())
                    && !domain.is_empty()
                    && domain.split('.').all(|label| {
                        !label.is_empty()
                            && !label.starts_with('-')
                            && !label.ends_with('-')
                            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
                    })
            }
            None => false,
        };
    if ok {
        Ok(email)
    } else {
        Err(ApiError::business("Email address is not valid!"))
    }
}

/// A new password of acceptable length.
pub(crate) fn new_password(pw: &str) -> Result<(), ApiError> {
    if pw.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::business(
            "Password must be at least 8 characters!",
        ));
    }
    if pw.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::business("Password must be at most 1024 bytes!"));
    }
    Ok(())
}

/// A field a request must carry, and what counts as carrying it.
#[derive(Clone, Copy)]
pub(crate) enum Required<'a> {
    /// More than blanks (names, e-mail addresses, ids).
    NonBlank(Option<&'a str>),
    /// Not empty (passwords, whose blanks are characters too; a device type, which is
    /// checked next).
    NonEmpty(Option<&'a str>),
    /// Present, even empty (a group the original required).
    Present(Option<&'a str>),
}

/// The required fields of a request, in order, or the endpoint's business `message`
/// (the original's HTTP 200 `{"error": message}`) when one is missing or empty.
pub(crate) fn required<'a, const N: usize>(
    fields: [Required<'a>; N],
    message: &'static str,
) -> Result<[&'a str; N], ApiError> {
    let mut values = [""; N];
    for (value, field) in values.iter_mut().zip(fields) {
        *value = match field {
            Required::NonBlank(Some(v)) if !v.trim().is_empty() => v,
            Required::NonEmpty(Some(v)) if !v.is_empty() => v,
            Required::Present(Some(v)) => v,
            _ => return Err(ApiError::business(message)),
        };
    }
    Ok(values)
}

/// A name or group of at most [`MAX_NAME_CHARS`] characters, trimmed.
pub(crate) fn name<'a>(field: &'static str, value: &'a str) -> Result<&'a str, ApiError> {
    let v = value.trim();
    if v.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::Business(
            format!("{field} must be at most {MAX_NAME_CHARS} characters!").into(),
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email(" Holly.He@ITEAD.cc ").unwrap(), "holly.he@itead.cc");
        assert!(email("admin@localhost").is_ok());
        for bad in [
            "", "a", "a@", "@b.c", "a b@c.d", "a@b..c", "a@-b.c", "a@b@c",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn required_fields_by_kind() {
        use Required::*;
        const MSG: &str = "missing!";
        let got = required(
            [
                NonBlank(Some(" a ")),
                NonEmpty(Some(" ")),
                Present(Some("")),
            ],
            MSG,
        );
        assert_eq!(got.unwrap(), [" a ", " ", ""]);
        for fields in [
            [NonBlank(Some(" ")), Present(Some("x"))],
            [NonEmpty(Some("")), Present(Some("x"))],
            [NonBlank(Some("x")), Present(None)],
            [NonEmpty(None), NonBlank(Some("x"))],
        ] {
            let err = required(fields, MSG).unwrap_err();
            assert!(
                matches!(err, ApiError::Business(ref m) if m == MSG),
                "{err:?}"
            );
        }
    }

    #[test]
    fn names_and_passwords() {
        assert_eq!(name("Device name", "  Lamp ").unwrap(), "Lamp");
        assert!(name("Device name", &"é".repeat(128)).is_ok());
        assert!(name("Device name", &"é".repeat(129)).is_err());
        assert!(new_password("1234567").is_err());
        assert!(new_password("12345678").is_ok());
        assert!(new_password(&"x".repeat(1025)).is_err());
    }
}
