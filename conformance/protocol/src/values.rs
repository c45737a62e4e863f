//! The protocol's enumerated values: return codes and the C enums commands pass.
//!
//! Scenarios pass invalid values on purpose (`guarantee: "99"`, `mode: "99"`, `type: "7"`),
//! so every C enum is *open*: a known name or any number, written back as it was given (a
//! name, or the number as a string), never rejected before libcpg sees it.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use totem_wire::ipc::CsError;

/// A `cs_error_t` (corotypes.h), written by its name: `"CS_OK"`, `"CS_ERR_BAD_HANDLE"`, and
/// `"CS_UNKNOWN_<n>"` for a value corotypes.h does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rc(pub CsError);

impl Rc {
    /// `CS_OK`.
    pub const OK: Rc = Rc(CsError::Ok);

    /// Every name corotypes.h gives, in its order.
    pub fn known_names() -> impl Iterator<Item = &'static str> {
        CsError::KNOWN.iter().filter_map(|e| e.known_name())
    }
}

impl From<CsError> for Rc {
    fn from(e: CsError) -> Self {
        Rc(e)
    }
}

impl fmt::Display for Rc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.known_name() {
            Some(n) => f.write_str(n),
            None => write!(f, "CS_UNKNOWN_{}", i32::from(self.0)),
        }
    }
}

impl FromStr for Rc {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(e) = CsError::KNOWN.iter().find(|e| e.known_name() == Some(s)) {
            return Ok(Rc(*e));
        }
        s.strip_prefix("CS_UNKNOWN_")
            .and_then(|n| n.parse::<i32>().ok())
            .map(|n| Rc(CsError::from(n)))
            .ok_or_else(|| format!("unknown return code {s:?}"))
    }
}

impl Serialize for Rc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Rc {
    fn schema_name() -> Cow<'static, str> {
        "Rc".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = Rc::known_names().collect();
        json_schema!({
            "description": "A cs_error_t (corotypes.h) by name; CS_UNKNOWN_<n> for an unnamed value",
            "anyOf": [
                {"type": "string", "enum": names},
                {"type": "string", "pattern": "^CS_UNKNOWN_-?[0-9]+$"}
            ]
        })
    }
}

/// An open C enum: known names, or any `u32`.
macro_rules! open_value {
    ($(#[$doc:meta])* $name:ident, $c_type:literal, [$(($konst:ident, $text:literal, $v:literal)),+ $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);

        impl $name {
            $(
                #[doc = concat!("`", $text, "` (", stringify!($v), ").")]
                pub const $konst: $name = $name($v);
            )+
            const NAMES: &'static [(&'static str, u32)] = &[$(($text, $v)),+];

            /// The C value.
            pub fn raw(self) -> u32 {
                self.0
            }
        }

        impl fmt::Display for $name {
            /// The name, or the number for a value the header does not name.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match Self::NAMES.iter().find(|(_, v)| *v == self.0) {
                    Some((n, _)) => f.write_str(n),
                    None => write!(f, "{}", self.0),
                }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                if let Some((_, v)) = Self::NAMES.iter().find(|(n, _)| *n == s) {
                    return Ok($name(*v));
                }
                s.parse::<u32>().map($name).map_err(|_| {
                    let names: Vec<&str> = Self::NAMES.iter().map(|(n, _)| *n).collect();
                    format!(concat!("bad ", $c_type, " {:?}: one of {:?} or a number"), s, names)
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // A YAML scenario may write the number bare or quoted.
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Either<'a> {
                    Number(u32),
                    Text(Cow<'a, str>),
                }
                match Either::deserialize(d)? {
                    Either::Number(n) => Ok($name(n)),
                    Either::Text(s) => s.parse().map_err(serde::de::Error::custom),
                }
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                let names: Vec<&str> = Self::NAMES.iter().map(|(n, _)| *n).collect();
                json_schema!({
                    "description": concat!("`", $c_type, "` by name, or any number (as a decimal string or an integer)"),
                    "anyOf": [
                        {"type": "string", "enum": names},
                        {"type": "string", "pattern": "^[0-9]+$"},
                        {"type": "integer", "minimum": 0}
                    ]
                })
            }
        }
    };
}

open_value!(
    /// `cpg_guarantee_t` (cpg.h).
    Guarantee,
    "cpg_guarantee_t",
    [
        (UNORDERED, "UNORDERED", 0),
        (FIFO, "FIFO", 1),
        (AGREED, "AGREED", 2),
        (SAFE, "SAFE", 3),
    ]
);

open_value!(
    /// `cs_dispatch_flags_t` (corotypes.h).
    DispatchMode,
    "cs_dispatch_flags_t",
    [
        (ONE, "ONE", 1),
        (ALL, "ALL", 2),
        (BLOCKING, "BLOCKING", 3),
        (ONE_NONBLOCKING, "ONE_NONBLOCKING", 4),
    ]
);

open_value!(
    /// `cpg_iteration_type_t` (cpg.h).
    IterationType,
    "cpg_iteration_type_t",
    [
        (NAME_ONLY, "NAME_ONLY", 1),
        (ONE_GROUP, "ONE_GROUP", 2),
        (ALL, "ALL", 3),
    ]
);

impl Default for Guarantee {
    /// The suite's default: what corosync delivers whatever is asked.
    fn default() -> Self {
        Guarantee::AGREED
    }
}

impl Default for DispatchMode {
    fn default() -> Self {
        DispatchMode::ALL
    }
}

impl Default for IterationType {
    fn default() -> Self {
        IterationType::ALL
    }
}

/// How a handle is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// `cpg_initialize`: deliver and confchg callbacks.
    #[default]
    Plain,
    /// `cpg_model_initialize(CPG_MODEL_V1)`: the totem confchg callback too.
    V1,
}

/// How a `dispatch` that may block for ever is guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Guard {
    /// Poll the descriptor first for `timeout_ms`; nothing pending: report `would_block`
    /// and do not call (the default, except for BLOCKING).
    Poll,
    /// Call for real; a call that outlives `timeout_ms` ends the agent with
    /// [`crate::EXIT_WATCHDOG`] after a `watchdog` event.
    Watchdog,
}

/// `cpg_flow_control_state_t` (cpg.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum FlowControlState {
    /// `CPG_FLOW_CONTROL_DISABLED`.
    Disabled,
    /// `CPG_FLOW_CONTROL_ENABLED`.
    Enabled,
}

/// `cpg_reason_t` names (cpg.h), `REASON_<n>` for others.
pub fn reason_name(reason: totem_wire::exec::cpg::ConfchgReason) -> String {
    match reason.known_name() {
        Some(n) => n.to_owned(),
        None => format!("REASON_{}", u32::from(reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_values_keep_what_was_given() {
        let g: Guarantee = serde_json::from_str("\"SAFE\"").unwrap();
        assert_eq!(g, Guarantee::SAFE);
        let g: Guarantee = serde_json::from_str("\"99\"").unwrap();
        assert_eq!(
            (g.raw(), serde_json::to_string(&g).unwrap()),
            (99, "\"99\"".into())
        );
        let m: DispatchMode = serde_json::from_str("4").unwrap();
        assert_eq!(m.to_string(), "ONE_NONBLOCKING");
        let e = serde_json::from_str::<IterationType>("\"SOME\"").unwrap_err();
        assert!(e.to_string().contains("NAME_ONLY"), "{e}");
    }

    #[test]
    fn return_codes_round_trip_by_name() {
        for name in Rc::known_names() {
            let rc: Rc = name.parse().unwrap();
            assert_eq!(rc.to_string(), name);
        }
        let odd = Rc(CsError::from(77));
        assert_eq!(odd.to_string(), "CS_UNKNOWN_77");
        assert_eq!("CS_UNKNOWN_77".parse::<Rc>().unwrap(), odd);
        assert!("CS_OKAY".parse::<Rc>().is_err());
    }
}
