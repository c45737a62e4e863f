//! Exec, sync and knet decoding of frames from real corosync 3.1.7 captures
//! (fixtures/wire, extracted from fixtures/pcap/corosync-3.1.7).

use totem_wire::exec::cpg::{ConfchgReason, CpgMessage, PartialType};
use totem_wire::exec::{CmapValueType, ExecMessage, SyncMessage, VotequorumMessage};
use totem_wire::knet::{KnetBody, KnetPacket, KnetType};
use totem_wire::pg::{GroupPrefix, PgPacket};
use totem_wire::srp::{Message, RingId};
use totem_wire::ByteOrder;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../../fixtures/wire/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The group payloads of every entry of an MCAST's totempg packet.
fn messages(datagram: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (Message::Mcast(m), _) = Message::parse(datagram).unwrap() else {
        panic!("not MCAST")
    };
    let packet = PgPacket::parse(m.payload, m.header.order).unwrap();
    let complete = packet.entries.len() - usize::from(packet.fragmented != 0);
    packet.entries[..complete]
        .iter()
        .map(|e| {
            let (prefix, payload) = GroupPrefix::parse(e, ByteOrder::Little).unwrap();
            (prefix.groups[0].to_vec(), payload.to_vec())
        })
        .collect()
}

fn round_trip(bytes: &[u8]) -> ExecMessage<'_> {
    let m = ExecMessage::parse(bytes, ByteOrder::Little).unwrap();
    let mut out = Vec::new();
    m.emit(&mut out, ByteOrder::Little);
    assert_eq!(
        out, bytes,
        "corosync zeroes padding, so these round-trip exactly"
    );
    // A prefix either fails, or is itself a whole message (a JOINLIST with fewer entries).
    for len in 0..bytes.len() {
        if let Ok(shorter) = ExecMessage::parse(&bytes[..len], ByteOrder::Little) {
            let mut again = Vec::new();
            shorter.emit(&mut again, ByteOrder::Little);
            assert_eq!(again, &bytes[..len], "prefix {len} parsed as {shorter:?}");
        }
    }
    m
}

#[test]
fn votequorum_nodeinfo() {
    let msgs = messages(&fixture("srp/mcast-votequorum-nodeinfo.bin"));
    let ExecMessage::Votequorum(VotequorumMessage::NodeInfo {
        nodeid,
        votes,
        expected_votes,
        flags,
        ..
    }) = round_trip(&msgs[0].1)
    else {
        panic!()
    };
    assert_eq!((nodeid, votes, expected_votes), (1, 1, 3));
    assert_eq!(flags.to_string(), "FIRST");
}

#[test]
fn sync_service_build_lists_cmap_cpg_quorum_votequorum() {
    let msgs = messages(&fixture("exec/sync-service-build.bin"));
    assert_eq!(msgs[0].0, b"sync");
    let m = SyncMessage::parse(&msgs[0].1, ByteOrder::Little).unwrap();
    let SyncMessage::ServiceBuild {
        ring_id, services, ..
    } = &m
    else {
        panic!()
    };
    assert_eq!(*ring_id, RingId { rep: 1, seq: 5 });
    assert_eq!(services, &vec![0, 2, 3, 5]);
    let mut out = Vec::new();
    m.emit(&mut out, ByteOrder::Little);
    assert_eq!(out, msgs[0].1);
}

#[test]
fn cmap_sync_item_and_barrier_share_one_mcast() {
    let msgs = messages(&fixture("exec/cmap-sync-and-barrier.bin"));
    assert_eq!(msgs.len(), 2);
    let ExecMessage::Cmap(cmap) = round_trip(&msgs[0].1) else {
        panic!()
    };
    assert_eq!(cmap.items.len(), 1);
    assert_eq!(cmap.items[0].key, b"totem.config_version");
    assert_eq!(cmap.items[0].value_type, CmapValueType::NotExist);
    let barrier = SyncMessage::parse(&msgs[1].1, ByteOrder::Little).unwrap();
    assert_eq!(barrier, SyncMessage::barrier(RingId { rep: 1, seq: 5 }));
}

#[test]
fn cpg_procjoin_and_procleave() {
    let msgs = messages(&fixture("exec/cpg-procjoin.bin"));
    let ExecMessage::Cpg(CpgMessage::ProcJoin(join)) = round_trip(&msgs[0].1) else {
        panic!()
    };
    assert_eq!(join.group.as_bytes(), b"cslab");
    assert_eq!((join.pid, join.reason), (595, ConfchgReason::Join));
    let msgs = messages(&fixture("exec/cpg-procleave-procdown.bin"));
    let ExecMessage::Cpg(CpgMessage::ProcLeave(leave)) = round_trip(&msgs[0].1) else {
        panic!()
    };
    assert_eq!(leave.reason, ConfchgReason::ProcDown);
    assert_eq!(leave.pid, 1053);
}

#[test]
fn cpg_joinlist_lists_the_senders_processes() {
    let msgs = messages(&fixture("exec/cpg-joinlist-and-barrier.bin"));
    let ExecMessage::Cpg(CpgMessage::JoinList(list)) = round_trip(&msgs[0].1) else {
        panic!()
    };
    assert_eq!(list.entries.len(), 1);
    assert_eq!(list.entries[0].pid, 1042);
    assert_eq!(list.entries[0].group.as_bytes(), b"cslab");
}

#[test]
fn cpg_partial_mcast_last_piece() {
    let msgs = messages(&fixture("exec/cpg-partial-mcast-last.bin"));
    let m = ExecMessage::parse(&msgs[0].1, ByteOrder::Little).unwrap();
    let ExecMessage::Cpg(CpgMessage::PartialMcast(p)) = &m else {
        panic!()
    };
    assert_eq!(p.kind, PartialType::Last);
    assert_eq!((p.msglen, p.fraglen, p.data.len()), (1_048_576, 1024, 1024));
    assert_eq!(p.source.nodeid, 2);
    // This one was built by libcpg and forwarded: its padding holds stack garbage (the bytes
    // after `id`, `size` and `pid` are not zero), so it re-parses equal rather than
    // re-emitting byte for byte.
    let mut out = Vec::new();
    m.emit(&mut out, ByteOrder::Little);
    assert_ne!(out, msgs[0].1);
    assert_eq!(ExecMessage::parse(&out, ByteOrder::Little).unwrap(), m);
}

#[test]
fn cpg_mcast_length_must_match() {
    let msg = CpgMessage::Mcast(totem_wire::exec::cpg::CpgMcast {
        header: totem_wire::exec::ExecHeader::new(totem_wire::exec::ServiceId::Cpg, 3, 184 + 5),
        group: totem_wire::exec::cpg::CpgName::new(b"g").unwrap(),
        msglen: 5,
        pid: 7,
        source: Default::default(),
        data: b"hello",
    });
    let mut bytes = Vec::new();
    msg.emit(&mut bytes, ByteOrder::Little);
    assert!(ExecMessage::parse(&bytes, ByteOrder::Little).is_ok());
    bytes.push(0);
    let e = ExecMessage::parse(&bytes, ByteOrder::Little).unwrap_err();
    assert_eq!(e.offset, 152, "points at msglen");
    assert_eq!(e.layer, totem_wire::Layer::Cpg);
}

#[test]
fn unknown_services_are_kept_raw() {
    let mut bytes = vec![0u8; 24];
    bytes[2] = 0x20; // service 32
    let m = ExecMessage::parse(&bytes, ByteOrder::Little).unwrap();
    assert!(matches!(m, ExecMessage::Unknown { body, .. } if body.len() == 8));
    assert_eq!(m.name(), "UNKNOWN(0x20)/fn0");
}

#[test]
fn knet_link_packets() {
    let ping = fixture("knet/ping.bin");
    let p = KnetPacket::parse(&ping).unwrap();
    assert_eq!(p.header.packet_type, KnetType::Ping);
    assert_eq!(p.header.node, 1);
    assert_eq!(p.to_bytes(), ping);
    let pong_bytes = fixture("knet/pong.bin");
    let pong = KnetPacket::parse(&pong_bytes).unwrap();
    assert_eq!(pong.header.packet_type, KnetType::Pong);
    let probe = fixture("knet/pmtud.bin");
    let KnetBody::Pmtud(pmtud) = KnetPacket::parse(&probe).unwrap().body else {
        panic!()
    };
    assert_eq!(pmtud.size_le(), 1500);
    assert_eq!(pmtud.filler.len(), probe.len() - 9);
    let reply_bytes = fixture("knet/pmtud_reply.bin");
    let reply = KnetPacket::parse(&reply_bytes).unwrap();
    assert!(
        matches!(reply.body, KnetBody::PmtudReply(ref r) if r.size_le() == 1500 && r.filler.is_empty())
    );
}

#[test]
fn knet_data_carries_a_totem_message_with_target_nodeid() {
    let bytes = fixture("knet/data-commit-token.bin");
    let packet = KnetPacket::parse(&bytes).unwrap();
    let KnetBody::Data(data) = &packet.body else {
        panic!()
    };
    assert_eq!((data.frag_num, data.channel, data.bcast), (1, 0, 0));
    let (Message::MembCommitToken(token), _) = Message::parse(data.payload).unwrap() else {
        panic!()
    };
    assert_eq!(
        token.header.target_nodeid, 1,
        "knet fills target_nodeid for unicasts"
    );
    assert_eq!(packet.to_bytes(), bytes);
    assert_eq!(totem_wire::classify(&bytes), totem_wire::Framing::Knet);
}

#[test]
fn votequorum_reconfigure_names_its_param_and_keeps_unknown_ones() {
    use totem_wire::exec::votequorum::ReconfigureParam;
    use totem_wire::exec::{ExecHeader, ServiceId};
    for (raw, param) in [
        (1u8, ReconfigureParam::ExpectedVotes),
        (2, ReconfigureParam::NodeVotes),
        (3, ReconfigureParam::CancelWfa),
        (9, ReconfigureParam::Unknown(9)),
    ] {
        let message = VotequorumMessage::Reconfigure {
            header: ExecHeader::new(ServiceId::Votequorum, 1, 28),
            nodeid: 2,
            value: 5,
            param,
        };
        let mut bytes = Vec::new();
        message.emit(&mut bytes, ByteOrder::Little);
        // `req_exec_quorum_reconfigure`: the 16-byte header, nodeid, value, param, 3 pad.
        assert_eq!(bytes.len(), 28);
        assert_eq!(bytes[24], raw, "param is the byte after nodeid and value");
        let parsed = ExecMessage::parse(&bytes, ByteOrder::Little).unwrap();
        assert_eq!(parsed, ExecMessage::Votequorum(message));
    }
    assert_eq!(ReconfigureParam::CancelWfa.to_string(), "CANCEL_WFA");
}
