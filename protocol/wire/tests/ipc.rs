//! The IPC codec on every message of the real recordings in fixtures/ipc (corosync 3.1.7,
//! libqb 2.0.6, shm and socket transports): each parses on its channel, re-emits to the same
//! length, and re-parses equal (padding holds garbage on the wire, so bytes are compared
//! only where the layout has no padding: the setup request and the payloads).

use std::path::Path;

use totem_wire::ipc::record::{Direction, RecordHeader, RecordKind};
use totem_wire::ipc::{CpgEvent, CpgRequest, IpcMessage};

/// The packets of a pcapng file (Enhanced Packet Blocks only), in order.
fn packets(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let word = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
        let (block_type, len) = (word(at), word(at + 4));
        assert!(len >= 12 && at + len <= bytes.len(), "pcapng block at {at}");
        if block_type == 6 {
            let caplen = word(at + 20);
            out.push(&bytes[at + 28..at + 28 + caplen]);
        }
        at += len;
    }
    out
}

#[test]
fn every_message_of_the_real_recordings_round_trips() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/ipc");
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("pcapng") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let mut assembling: Vec<u8> = Vec::new();
        for packet in packets(&bytes) {
            let (header, piece) = RecordHeader::parse(packet).unwrap();
            if header.more() {
                assembling.extend_from_slice(piece);
                continue;
            }
            let message = if header.piece > 0 {
                assembling.extend_from_slice(piece);
                std::mem::take(&mut assembling)
            } else {
                piece.to_vec()
            };
            let RecordKind::Message(channel) = header.kind else {
                continue;
            };
            if message.is_empty() || header.service_name() != b"cpg" {
                continue;
            }
            let from_client = header.direction == Direction::ToServer;
            let parsed = IpcMessage::parse(channel, from_client, &message)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let emitted = parsed.to_bytes();
            assert_eq!(emitted.len(), message.len(), "{parsed:?}");
            assert_eq!(
                IpcMessage::parse(channel, from_client, &emitted).unwrap(),
                parsed
            );
            match &parsed {
                IpcMessage::ConnectionRequest(_) => assert_eq!(emitted, message),
                IpcMessage::Request(CpgRequest::Mcast { data, .. })
                | IpcMessage::Request(CpgRequest::PartialMcast { data, .. })
                | IpcMessage::Event(CpgEvent::Deliver { data, .. })
                | IpcMessage::Event(CpgEvent::PartialDeliver { data, .. }) => {
                    assert!(emitted.ends_with(data));
                }
                _ => {}
            }
            let kind = match &parsed {
                IpcMessage::ConnectionRequest(_) => "setup request".to_string(),
                IpcMessage::ConnectionResponse(_) => "setup response".to_string(),
                IpcMessage::Request(r) => format!("request {}", r.id()),
                IpcMessage::Response(r) => format!("response id {}", r.header().id),
                IpcMessage::Event(e) => format!("event id {}", e.header().id),
            };
            *seen.entry(kind).or_default() += 1;
        }
    }
    // Every kind the client exercises is in the recordings.
    for kind in [
        "setup request",
        "setup response",
        "request JOIN",
        "request LEAVE",
        "request MCAST",
        "request MEMBERSHIP",
        "request LOCAL_GET",
        "request ITERATIONINITIALIZE",
        "request ITERATIONNEXT",
        "request ITERATIONFINALIZE",
        "request FINALIZE",
        "request ZC_ALLOC",
        "request ZC_FREE",
        "request ZC_EXECUTE",
        "request PARTIAL_MCAST",
        "response id 3",
        "response id 7",
        "response id 9",
        "response id 10",
        "response id 18",
        "event id 4",
        "event id 5",
        "event id 13",
        "event id 17",
    ] {
        assert!(
            seen.contains_key(kind),
            "{kind} missing from fixtures/ipc: {seen:?}"
        );
    }
}
