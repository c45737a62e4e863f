//! Frame filters. They choose what is shown; every frame is still decoded, so reassembly
//! sees the whole capture.

use totem_wire::srp::MessageType;

use crate::model::{FrameRecord, MessageKind, TotemBody};

/// What to keep; an empty list keeps everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Nodeids: the totem sender, the knet host, or a reassembled message's sender.
    pub nodes: Vec<u32>,
    /// Totem message types (`--type token` is `ORF_TOKEN` ...).
    pub types: Vec<MessageType>,
    /// Services (`CPG`, `SYNC`, `VOTEQUORUM` ...), upper case.
    pub services: Vec<String>,
    /// CPG group names (and the EVS keys they name: [`Filter::evs_keys`]).
    pub groups: Vec<String>,
    /// The EVS group keys `--group` names (`crate::evs::key_from_text` of each).
    pub evs_keys: Vec<totem_wire::exec::evs::EvsGroup>,
    /// `--type` as given, upper case, for IPC recordings (request, response and event
    /// names: `JOIN`, `MCAST`, `DELIVER` ...).
    pub ipc_types: Vec<String>,
}

/// Maps the short names people type (and corosync's names) to a message type.
pub fn normalise_type(name: &str) -> Option<MessageType> {
    let upper = name.to_ascii_uppercase().replace('-', "_");
    let t = match upper.as_str() {
        "TOKEN" | "ORF" | "ORF_TOKEN" => MessageType::OrfToken,
        "MCAST" => MessageType::Mcast,
        "MERGE" | "MERGE_DETECT" | "MEMB_MERGE_DETECT" => MessageType::MembMergeDetect,
        "JOIN" | "MEMB_JOIN" | "LEAVE" => MessageType::MembJoin,
        "COMMIT" | "COMMIT_TOKEN" | "MEMB_COMMIT_TOKEN" => MessageType::MembCommitToken,
        "HOLD_CANCEL" | "TOKEN_HOLD_CANCEL" => MessageType::TokenHoldCancel,
        _ => return None,
    };
    Some(t)
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
            if !self.types.contains(&t.kind) {
                return false;
            }
        }
        if !self.services.is_empty()
            && !frame.messages.iter().any(|m| {
                // `--service evs` also keeps corosync 1.x's `EVS(1.x)` (and so for each).
                let base = m.service.strip_suffix("(1.x)").unwrap_or(&m.service);
                self.services
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&m.service) || s.eq_ignore_ascii_case(base))
            })
        {
            return false;
        }
        if !self.groups.is_empty()
            && !frame.messages.iter().any(|m| {
                m.cpg_group
                    .as_deref()
                    .is_some_and(|g| self.groups.iter().any(|want| want == g))
                    || matches!(&m.kind, MessageKind::CpgJoinList { groups }
                        if groups.iter().any(|g| self.groups.iter().any(|want| **want == **g)))
                    || matches!(&m.kind, MessageKind::EvsMcast { groups, .. }
                        if groups.iter().any(|g| self.evs_keys.contains(g)))
            })
        {
            return false;
        }
        true
    }
}
