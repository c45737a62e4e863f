//! The handle a call is made on: shared by every command of every library (CPG, EVS,
//! quorum, cmap, cfg), so that their command types need nothing else from each other.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn h1() -> String {
    "h1".to_owned()
}

/// The handle a call is made on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Target {
    /// The scenario's name for the handle (`initialize` gave it).
    #[serde(default = "h1")]
    pub handle: String,
    /// A raw handle value instead (e.g. 0 or 0xdeadbeef): results name it `0x<hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle_value: Option<u64>,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            handle: h1(),
            handle_value: None,
        }
    }
}

impl Target {
    /// A named handle.
    pub fn named(handle: &str) -> Target {
        Target {
            handle: handle.to_owned(),
            handle_value: None,
        }
    }
}
