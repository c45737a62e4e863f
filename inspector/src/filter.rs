//! Frame filters. They choose what is shown; every frame is still decoded, so reassembly
//! sees the whole capture.

use crate::model::{FrameRecord, TotemBody};

/// What to keep; an empty list keeps everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Nodeids: the totem sender, the knet host, or a reassembled message's sender.
    pub nodes: Vec<u32>,
    /// Totem message types, normalised to corosync's names (`ORF_TOKEN`, `MCAST` ...).
    pub types: Vec<String>,
    /// Services (`CPG`, `SYNC`, `VOTEQUORUM` ...), upper case.
    pub services: Vec<String>,
    /// CPG group names.
    pub groups: Vec<String>,
    /// `--type` as given, upper case, for IPC recordings (request, response and event
    /// names: `JOIN`, `MCAST`, `DELIVER` ...).
    pub ipc_types: Vec<String>,
}

/// Maps the short names people type to corosync's message type names.
pub fn normalise_type(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase().replace('-', "_");
    let full = match upper.as_str() {
        "TOKEN" | "ORF" | "ORF_TOKEN" => "ORF_TOKEN",
        "MCAST" => "MCAST",
        "MERGE" | "MERGE_DETECT" | "MEMB_MERGE_DETECT" => "MEMB_MERGE_DETECT",
        "JOIN" | "MEMB_JOIN" | "LEAVE" => "MEMB_JOIN",
        "COMMIT" | "COMMIT_TOKEN" | "MEMB_COMMIT_TOKEN" => "MEMB_COMMIT_TOKEN",
        "HOLD_CANCEL" | "TOKEN_HOLD_CANCEL" => "TOKEN_HOLD_CANCEL",
        _ => return None,
    };
    Some(full.to_string())
}

impl Filter {
    /// Does `frame` pass?
    pub fn matches(&self, frame: &FrameRecord) -> bool {
        if !self.nodes.is_empty() {
            let totem_node = frame.totem.as_ref().map(|t| match &t.body {
                TotemBody::Join { system_from, .. } => *system_from,
                _ => t.nodeid,
            });
            let knet_node = frame.knet.as_ref().map(|k| u32::from(k.node));
            let hit = self.nodes.iter().any(|n| {
                totem_node == Some(*n)
                    || knet_node == Some(*n)
                    || frame.messages.iter().any(|m| m.sender == *n)
            });
            if !hit {
                return false;
            }
        }
        if !self.types.is_empty() {
            let Some(t) = &frame.totem else { return false };
            if !self.types.iter().any(|ty| *ty == t.message_type) {
                return false;
            }
        }
        if !self.services.is_empty()
            && !frame.messages.iter().any(|m| {
                self.services
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&m.service))
            })
        {
            return false;
        }
        if !self.groups.is_empty()
            && !frame.messages.iter().any(|m| {
                m.cpg_group
                    .as_deref()
                    .is_some_and(|g| self.groups.iter().any(|want| want == g))
                    || matches!(m.detail.get("entries"), Some(crate::model::Value::Records(r))
                        if r.iter().any(|e| e.get("group").and_then(|g| g.as_str())
                            .is_some_and(|g| self.groups.iter().any(|want| want == g))))
            })
        {
            return false;
        }
        true
    }
}
