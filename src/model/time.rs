//! Timestamps as EC2 writes them, `2026-11-26T09:00:00Z`: whole seconds, UTC, `Z`. botocore
//! parses credential expirations with exactly this format (fractional seconds silently disable
//! its expiry logic), so every document and API message uses it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serializer};

pub const FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

pub fn format(t: DateTime<Utc>) -> String {
    t.format(FORMAT).to_string()
}

/// `#[serde(with = "crate::model::time")]` for a `DateTime<Utc>` field.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&t.format(FORMAT))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// The same for an optional field.
pub mod option {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| text.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fractions_of_a_second_are_not_written() {
        let t = "2021-09-21T04:16:53.123Z".parse().unwrap();
        assert_eq!(super::format(t), "2021-09-21T04:16:53Z");
    }
}
