//! The generic field tree of a decoded message (`detail`: what `--verbose`, the summary
//! line and JSON print), built from the wire message. Only the views read it: stats and
//! filters read the typed [`MessageKind`](crate::model::MessageKind) the decoder keeps
//! beside it.

use std::sync::Arc;

use totem_wire::exec::cmap::CmapMcast;
use totem_wire::exec::cpg::CpgMessage;
use totem_wire::exec::evs::EvsGroup;
use totem_wire::exec::votequorum::fixed_name_text;
use totem_wire::exec::{CfgMessage, ExecMessage, PloadMessage, SyncMessage, VotequorumMessage};
use totem_wire::legacy::CoroipcHeader;
use totem_wire::ByteOrder;

use crate::evs::key_text;
use crate::intern::NameInterner;
use crate::model::{digest, Fields, Value};

/// The fields of an exec message. `group` is the CPG group it is about, already interned
/// by the decoder (which keeps it in the record too); `names` interns the groups of a
/// JOINLIST's entries.
pub fn exec(
    message: &ExecMessage<'_>,
    order: ByteOrder,
    group: Option<&Arc<str>>,
    names: &mut NameInterner,
) -> Fields {
    let mut f = Fields(Vec::with_capacity(6));
    match message {
        ExecMessage::Cpg(cpg) => {
            if let Some(g) = group {
                f.push("group", Value::Shared(g.clone()));
            }
            match cpg {
                CpgMessage::ProcJoin(p) | CpgMessage::ProcLeave(p) => {
                    f.push("pid", Value::U(p.pid.into()));
                    f.push("reason", name_of(p.reason.known_name(), p.reason));
                }
                CpgMessage::JoinList(j) => {
                    f.push(
                        "entries",
                        Value::Records(
                            j.entries
                                .iter()
                                .map(|e| {
                                    let mut r = Fields::default();
                                    r.push("pid", Value::U(e.pid.into()));
                                    r.push("group", Value::Shared(names.intern(&e.group)));
                                    r
                                })
                                .collect(),
                        ),
                    );
                }
                CpgMessage::Mcast(m) => {
                    f.push("pid", Value::U(m.pid.into()));
                    f.push("source_nodeid", Value::U(m.source.nodeid.into()));
                    f.push("msglen", Value::U(m.msglen.into()));
                    f.push("digest", Value::Digest(digest(m.data)));
                }
                CpgMessage::PartialMcast(m) => {
                    f.push("pid", Value::U(m.pid.into()));
                    f.push("source_nodeid", Value::U(m.source.nodeid.into()));
                    f.push("type", name_of(m.kind.known_name(), m.kind));
                    f.push("msglen", Value::U(m.msglen.into()));
                    f.push("fraglen", Value::U(m.fraglen.into()));
                    f.push("digest", Value::Digest(digest(m.data)));
                }
                CpgMessage::Downlist(d) => {
                    if let Some(old) = d.old_members {
                        f.push("old_members", Value::U(old.into()));
                    }
                    f.push("left_nodes", Value::U(d.left_nodes.into()));
                    f.push(
                        "nodeids",
                        Value::List(d.nodeids.iter().map(|n| u64::from(*n)).collect()),
                    );
                }
            }
        }
        ExecMessage::Cmap(CmapMcast { reason, items, .. }) => {
            f.push("reason", name_of(reason.known_name(), reason));
            f.push(
                "items",
                Value::Records(
                    items
                        .iter()
                        .map(|i| {
                            let mut r = Fields::default();
                            r.push(
                                "key",
                                Value::Str(String::from_utf8_lossy(i.key).into_owned()),
                            );
                            r.push("type", name_of(i.value_type.known_name(), i.value_type));
                            r.push("value", Value::Str(i.value_text(order)));
                            r
                        })
                        .collect(),
                ),
            );
        }
        ExecMessage::Votequorum(v) => match v {
            VotequorumMessage::NodeInfo {
                nodeid,
                votes,
                expected_votes,
                flags,
                ..
            } => {
                f.push("nodeid", Value::U((*nodeid).into()));
                f.push("votes", Value::U((*votes).into()));
                f.push("expected_votes", Value::U((*expected_votes).into()));
                f.push("flags", text(flags));
            }
            VotequorumMessage::Reconfigure {
                nodeid,
                value,
                param,
                ..
            } => {
                f.push("nodeid", Value::U((*nodeid).into()));
                f.push("value", Value::U((*value).into()));
                // An unknown param shows as its number.
                let raw = u8::from(*param);
                f.push("param", name_of(param.known_name(), raw));
            }
            VotequorumMessage::QdeviceReg {
                operation, name, ..
            } => {
                f.push(
                    "operation",
                    Value::Str(
                        if *operation == 1 {
                            "register"
                        } else {
                            "unregister"
                        }
                        .into(),
                    ),
                );
                f.push("name", Value::Str(fixed_name_text(&name[..])));
            }
            VotequorumMessage::QdeviceReconfigure {
                oldname, newname, ..
            } => {
                f.push("oldname", Value::Str(fixed_name_text(&oldname[..])));
                f.push("newname", Value::Str(fixed_name_text(&newname[..])));
            }
        },
        ExecMessage::Cfg(c) => match c {
            CfgMessage::RingReenable { source_nodeid, .. }
            | CfgMessage::ReloadConfig { source_nodeid, .. } => {
                f.push("source_nodeid", Value::U((*source_nodeid).into()));
            }
            CfgMessage::KillNode { nodeid, reason, .. } => {
                f.push("nodeid", Value::U((*nodeid).into()));
                f.push(
                    "reason",
                    Value::Str(String::from_utf8_lossy(reason).into_owned()),
                );
            }
            CfgMessage::Shutdown { .. } => {}
            CfgMessage::CryptoReconfig { phase, .. } => {
                f.push("phase", Value::U((*phase).into()));
            }
        },
        ExecMessage::Pload(p) => match p {
            PloadMessage::Start {
                msg_count,
                msg_size,
                ..
            } => {
                f.push("msg_count", Value::U((*msg_count).into()));
                f.push("msg_size", Value::U((*msg_size).into()));
            }
            PloadMessage::Mcast { filler, .. } => {
                f.push("len", Value::U(filler.len() as u64));
            }
        },
        ExecMessage::Evs(totem_wire::exec::EvsMessage::Mcast(m)) => {
            f = evs_mcast(&m.groups, m.data);
        }
        ExecMessage::Unknown { body, .. } => {
            f.push("body_len", Value::U(body.len() as u64));
        }
    }
    f
}

/// The fields of an EVS MCAST (ours or corosync 1.4's): the keys as [`key_text`] shows
/// them, the length and the digest of the message (CPG's digest).
pub fn evs_mcast(groups: &[EvsGroup], data: &[u8]) -> Fields {
    let mut f = Fields(Vec::with_capacity(3));
    f.push(
        "groups",
        Value::Texts(groups.iter().map(key_text).collect()),
    );
    f.push("msg_len", Value::U(data.len() as u64));
    f.push("digest", Value::Digest(digest(data)));
    f
}

/// The fields of a sync message.
pub fn sync(message: &SyncMessage<'_>) -> Fields {
    let mut f = Fields::default();
    if let Some(ring) = message.ring_id() {
        f.push("ring_id", Value::Ring(ring.into()));
    }
    if let SyncMessage::ServiceBuild { services, .. } = message {
        f.push(
            "services",
            Value::List(services.iter().map(|s| *s as u32 as u64).collect()),
        );
    }
    f
}

/// The fields of a message of a group other than corosync's own.
pub fn raw(payload: &[u8]) -> Fields {
    let mut f = Fields::default();
    f.push("payload_len", Value::U(payload.len() as u64));
    f
}

/// The fields of a corosync 1.x message, whose service bodies are not decoded.
pub fn coroipc_1x(header: &CoroipcHeader) -> Fields {
    let mut f = Fields::default();
    f.push("size", Value::U(header.size.into()));
    f
}

fn text(s: impl std::fmt::Display) -> Value {
    Value::Str(s.to_string())
}

/// The name of an open-enum value: borrowed when known.
fn name_of(known: Option<&'static str>, value: impl std::fmt::Display) -> Value {
    match known {
        Some(name) => Value::Static(name),
        None => text(value),
    }
}
