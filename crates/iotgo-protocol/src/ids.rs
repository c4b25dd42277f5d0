//! Device ids, device types and apikeys, following the original IoTgo scheme.
//!
//! A `deviceid` is 10 lowercase hex digits: two for the type, eight for the serial.
//! Serials below `80000000` belong to DIY devices (created by users), serials from
//! `80000001` up to factory-made "indie" devices (licenses issued by an admin).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not exactly 10 lowercase hex digits.
    #[error("deviceid must be 10 lowercase hex digits")]
    DeviceId,
    /// Not exactly 2 lowercase hex digits.
    #[error("device type must be 2 lowercase hex digits")]
    DeviceType,
    /// Not a UUID.
    #[error("apikey must be a UUID")]
    ApiKey,
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A device type: two lowercase hex digits (`00` custom, `01` switch, `02` light, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceType([u8; 2]);

impl DeviceType {
    /// Parses two lowercase hex digits.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if !is_lower_hex(s, 2) {
            return Err(IdError::DeviceType);
        }
        let b = s.as_bytes();
        Ok(Self([b[0], b[1]]))
    }

    /// The two hex digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("00")
    }
}

/// Which half of the serial space a device lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Serial {
    /// Created by a user: serials `00000001` … `7fffffff`.
    Diy,
    /// Made in a factory batch (an "indie" device): serials `80000001` … `ffffffff`.
    Factory,
}

impl Serial {
    /// The serial just below the first one of this half (the counter's start value).
    pub const fn base(self) -> u32 {
        match self {
            Serial::Diy => 0,
            Serial::Factory => 0x8000_0000,
        }
    }

    /// The last serial of this half.
    pub const fn last(self) -> u32 {
        match self {
            Serial::Diy => 0x7fff_ffff,
            Serial::Factory => 0xffff_ffff,
        }
    }
}

/// A device id: type + 8 hex digits of serial.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

impl DeviceId {
    /// Parses 10 lowercase hex digits.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if is_lower_hex(s, 10) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::DeviceId)
        }
    }

    /// Builds the id of serial `serial` of type `ty`.
    pub fn new(ty: DeviceType, serial: u32) -> Self {
        Self(format!("{}{serial:08x}", ty.as_str()))
    }

    /// The type encoded in the first two digits.
    pub fn device_type(&self) -> DeviceType {
        let b = self.0.as_bytes();
        DeviceType([b[0], b[1]])
    }

    /// Whether this is a factory-made ("indie") device: third hex digit 8 or more.
    pub fn is_indie(&self) -> bool {
        self.0.as_bytes()[2] >= b'8'
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An apikey: a UUID in its lowercase hyphenated form.
///
/// Users own one (it never changes); factory devices carry one printed on them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiKey(String);

impl ApiKey {
    /// Parses any UUID text and keeps its canonical lowercase hyphenated form.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() != 36 {
            return Err(IdError::ApiKey);
        }
        uuid::Uuid::parse_str(s)
            .map(|u| Self(u.hyphenated().to_string()))
            .map_err(|_| IdError::ApiKey)
    }

    /// A new random (v4) apikey.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_impls {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    )*};
}
text_impls!(DeviceType, DeviceId, ApiKey);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_follow_the_original_scheme() {
        let t = DeviceType::parse("01").unwrap();
        assert_eq!(DeviceId::new(t, 1).as_str(), "0100000001");
        let f = DeviceId::new(t, Serial::Factory.base() + 1);
        assert_eq!(f.as_str(), "0180000001");
        assert!(f.is_indie());
        assert!(!DeviceId::parse("017fffffff").unwrap().is_indie());
        assert_eq!(f.device_type(), t);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "01",
            "010000000",
            "01000000001",
            "0A00000001",
            "01-0000001",
        ] {
            assert_eq!(DeviceId::parse(bad), Err(IdError::DeviceId), "{bad}");
        }
        for bad in ["", "1", "0A", "001", "zz"] {
            assert_eq!(DeviceType::parse(bad), Err(IdError::DeviceType), "{bad}");
        }
    }

    #[test]
    fn apikeys_are_uuids_in_canonical_form() {
        let k = ApiKey::parse("B45C1E61-964A-4AD3-9B9D-0B97AC95FE14").unwrap();
        assert_eq!(k.as_str(), "b45c1e61-964a-4ad3-9b9d-0b97ac95fe14");
        assert_eq!(
            ApiKey::parse("b45c1e61964a4ad39b9d0b97ac95fe14"),
            Err(IdError::ApiKey)
        );
        assert_eq!(ApiKey::parse("not-a-key"), Err(IdError::ApiKey));
        assert_ne!(ApiKey::generate(), ApiKey::generate());
    }
}
