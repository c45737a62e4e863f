//! Entry points for the fuzz targets and their corpus replay (rustls' `internal::fuzzing`).
//! Each asserts the round-trip contract of the crate root; a panic is a bug.

use crate::exec::{ExecMessage, SyncMessage};
use crate::knet::KnetPacket;
use crate::pg::{Assembler, AssemblerLimits, GroupPrefix, PgPacket};
use crate::srp::Message;
use crate::ByteOrder;

/// totemsrp: parse, and if it parses, emit must give back the consumed bytes exactly.
pub fn srp_round_trip(data: &[u8]) {
    if let Ok((message, rest)) = Message::parse(data) {
        let mut out = message.to_bytes();
        out.extend_from_slice(rest);
        assert_eq!(out, data, "totemsrp emit(parse(x)) != x");
        if let Message::Mcast(m) = &message {
            if let Some(Ok(inner)) = m.inner() {
                let mut again = Vec::new();
                inner.emit(&mut again);
                assert_eq!(again, m.payload, "inner MCAST round trip");
            }
        }
    }
}

/// totempg and group prefix in both orders; pg packets round-trip exactly.
pub fn pg_round_trip(data: &[u8]) {
    for order in [ByteOrder::Little, ByteOrder::Big] {
        if let Ok(packet) = PgPacket::parse(data, order) {
            let mut out = Vec::new();
            packet.emit(&mut out);
            assert_eq!(out, data, "totempg emit(parse(x)) != x");
            let mut assembler = Assembler::observer(AssemblerLimits::default());
            let _ = assembler.feed(1, &packet, ());
        }
        if let Ok((prefix, rest)) = GroupPrefix::parse(data, order) {
            let mut out = Vec::new();
            prefix.emit(&mut out, order);
            out.extend_from_slice(rest);
            assert_eq!(out, data, "group prefix emit(parse(x)) != x");
        }
    }
}

/// Exec and sync messages: re-parsing what emit wrote gives the same message.
pub fn exec_round_trip(data: &[u8]) {
    for order in [ByteOrder::Little, ByteOrder::Big] {
        if let Ok(message) = ExecMessage::parse(data, order) {
            let mut out = Vec::new();
            message.emit(&mut out, order);
            let again = ExecMessage::parse(&out, order).expect("emitted exec message re-parses");
            assert_eq!(again, message, "exec parse(emit(m)) != m");
            // Names compare by identity; the bytes after their length must survive as well.
            if let (ExecMessage::Cpg(a), ExecMessage::Cpg(b)) = (&again, &message) {
                if let (Some(x), Some(y)) = (a.group(), b.group()) {
                    assert!(
                        x.same_bytes(y),
                        "exec round trip changed a group name's bytes"
                    );
                }
            }
        }
        if let Ok(message) = SyncMessage::parse(data, order) {
            let mut out = Vec::new();
            message.emit(&mut out, order);
            let again = SyncMessage::parse(&out, order).expect("emitted sync message re-parses");
            assert_eq!(again, message, "sync parse(emit(m)) != m");
        }
    }
}

/// knet: exact round trip.
pub fn knet_round_trip(data: &[u8]) {
    if let Ok(packet) = KnetPacket::parse(data) {
        assert_eq!(packet.to_bytes(), data, "knet emit(parse(x)) != x");
    }
}

/// corosync 1.x/2.x: framing and message parse without panics; the message round-trips.
pub fn legacy_round_trip(data: &[u8]) {
    use crate::legacy::{LegacyFraming, LegacyVersion};
    if let Ok((framing, message, rest)) = LegacyFraming::parse(data) {
        let mut out = Vec::new();
        message.emit(&mut out);
        out.extend_from_slice(rest);
        assert_eq!(out, &data[framing.offset..], "legacy emit(parse(x)) != x");
    }
    for version in [LegacyVersion::Corosync1, LegacyVersion::Corosync2] {
        let _ = crate::legacy::Message::parse(data, version);
    }
    // 1.4's EVS exec message: counters never trusted, and what parses re-emits exactly.
    for order in [ByteOrder::Little, ByteOrder::Big] {
        if let Ok(m) = crate::legacy::EvsMcast1x::parse(data, order) {
            let mut out = Vec::new();
            m.emit(&mut out, order);
            assert_eq!(out.len(), data.len(), "1.x EVS emit changed the length");
            let again = crate::legacy::EvsMcast1x::parse(&out, order).expect("1.x EVS re-parses");
            assert_eq!(again, m, "1.x EVS parse(emit(m)) != m");
        }
    }
}

/// libqb IPC: every channel's parser (and the recording header); whatever parses
/// re-parses equal after emit.
pub fn ipc_round_trip(data: &[u8]) {
    use crate::ipc::record::RecordHeader;
    use crate::ipc::{Channel, IpcMessage};
    for (channel, from_client) in [
        (Channel::Setup, true),
        (Channel::Setup, false),
        (Channel::Request, true),
        (Channel::Response, false),
        (Channel::Event, false),
    ] {
        if let Ok(message) = IpcMessage::parse(channel, from_client, data) {
            let out = message.to_bytes();
            assert_eq!(out.len(), data.len(), "ipc emit changed the length");
            let again =
                IpcMessage::parse(channel, from_client, &out).expect("emitted ipc re-parses");
            assert_eq!(again, message, "ipc parse(emit(m)) != m");
        }
    }
    evs_ipc_round_trip(data);
    if let Ok((header, rest)) = RecordHeader::parse(data) {
        let mut out = Vec::new();
        header.emit(&mut out);
        let (again, _) = RecordHeader::parse(&out).expect("emitted record header re-parses");
        assert_eq!(again, header, "record header round trip");
        let _ = rest;
    }
}

/// The evs service's IPC (our libevs layout): requests, responses and events re-parse equal
/// after emit, with the same length.
fn evs_ipc_round_trip(data: &[u8]) {
    use crate::ipc::evs::{EvsIpcEvent, EvsRequest, EvsResponse};
    if let Ok(m) = EvsRequest::parse(data) {
        let out = m.to_bytes();
        assert_eq!(out.len(), data.len(), "evs request emit changed the length");
        assert_eq!(EvsRequest::parse(&out).expect("re-parses"), m);
    }
    if let Ok(m) = EvsResponse::parse(data) {
        let out = m.to_bytes();
        assert_eq!(
            out.len(),
            data.len(),
            "evs response emit changed the length"
        );
        assert_eq!(EvsResponse::parse(&out).expect("re-parses"), m);
    }
    if let Ok(m) = EvsIpcEvent::parse(data) {
        let out = m.to_bytes();
        assert_eq!(out.len(), data.len(), "evs event emit changed the length");
        assert_eq!(EvsIpcEvent::parse(&out).expect("re-parses"), m);
    }
}

/// Every entry point at once: what the corpus replay test runs.
pub fn all(data: &[u8]) {
    srp_round_trip(data);
    pg_round_trip(data);
    exec_round_trip(data);
    knet_round_trip(data);
    legacy_round_trip(data);
    ipc_round_trip(data);
}
