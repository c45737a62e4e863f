//! IPC codec tests: layouts from ipc.md §4 built byte by byte, round trips, truncation
//! sweeps and malformed input. Recordings of real corosync runs are decoded end to end by
//! the inspector's snapshot tests (fixtures/ipc).

use proptest::collection::vec;
use proptest::prelude::*;

use super::cpg::*;
use super::record::*;
use super::*;
use crate::exec::cpg::{ConfchgReason, CpgName, PartialType};
use crate::ErrorKind;

fn name(s: &str) -> CpgName {
    CpgName::new(s.as_bytes()).unwrap()
}

fn le32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// A JOIN request as libcpg 3.1.7 builds it (`cpg_join`), with garbage in the padding.
fn join_bytes() -> Vec<u8> {
    let mut b = vec![0x25u8; 168];
    le32(&mut b, 0, 0);
    le32(&mut b, 8, 168);
    le32(&mut b, 16, 5);
    b[24..29].copy_from_slice(b"cslab");
    b[29..152].fill(0);
    le32(&mut b, 152, 4242);
    le32(&mut b, 160, 1);
    b
}

#[test]
fn join_request_fields_and_garbage_padding() {
    let bytes = join_bytes();
    let parsed = CpgRequest::parse(&bytes).unwrap();
    assert_eq!(
        parsed,
        CpgRequest::Join {
            header: RequestHeader { id: 0, size: 168 },
            group: name("cslab"),
            pid: 4242,
            flags: 1,
        }
    );
    assert_eq!(parsed.id(), CpgRequestId::Join);
    assert!(parsed.expects_response());
    let mut out = Vec::new();
    parsed.emit(&mut out);
    assert_eq!(out.len(), 168);
    assert_eq!(CpgRequest::parse(&out).unwrap(), parsed);
}

#[test]
fn mcast_request_uses_a_response_header() {
    let mut b = vec![0u8; 40 + 5];
    le32(&mut b, 0, 2);
    le32(&mut b, 8, 45);
    le32(&mut b, 16, 0x7fff); // garbage "error"
    le32(&mut b, 24, 2);
    le32(&mut b, 32, 5);
    b[40..].copy_from_slice(b"hello");
    let parsed = CpgRequest::parse(&b).unwrap();
    match &parsed {
        CpgRequest::Mcast {
            guarantee,
            msglen,
            data,
            header,
        } => {
            assert_eq!(*guarantee, Guarantee::Agreed);
            assert_eq!(*msglen, 5);
            assert_eq!(*data, b"hello");
            assert_eq!(header.error, CsError::Unknown(0x7fff));
        }
        other => panic!("{other:?}"),
    }
    assert!(!parsed.expects_response());
    assert_eq!(parsed.to_owned_bytes(), b);
}

trait ToOwnedBytes {
    fn to_owned_bytes(&self) -> Vec<u8>;
}

impl ToOwnedBytes for CpgRequest<'_> {
    fn to_owned_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.emit(&mut out);
        out
    }
}

#[test]
fn every_request_round_trips() {
    let data = b"0123456789";
    let requests = [
        CpgRequest::Leave {
            header: RequestHeader { id: 1, size: 160 },
            group: name("g"),
            pid: 7,
        },
        CpgRequest::Membership {
            header: RequestHeader { id: 3, size: 152 },
            group: name("g"),
        },
        CpgRequest::LocalGet {
            header: RequestHeader { id: 4, size: 16 },
        },
        CpgRequest::IterationInitialize {
            header: RequestHeader { id: 5, size: 160 },
            group: name("g"),
            iteration_type: IterationType::OneGroup,
        },
        CpgRequest::IterationNext {
            header: RequestHeader { id: 6, size: 24 },
            handle: 0x5469_496f_0000_0000,
        },
        CpgRequest::IterationFinalize {
            header: RequestHeader { id: 7, size: 24 },
            handle: 9,
        },
        CpgRequest::Finalize {
            header: RequestHeader { id: 8, size: 16 },
        },
        CpgRequest::ZcAlloc {
            header: RequestHeader { id: 9, size: 152 },
            map_size: 120,
            path: b"/dev/shm/corosync_zerocopy-abcdef".to_vec(),
        },
        CpgRequest::ZcFree {
            header: RequestHeader { id: 10, size: 32 },
            map_size: 120,
            server_address: 0x7f00_1234_5000,
        },
        CpgRequest::ZcExecute {
            header: RequestHeader { id: 11, size: 24 },
            server_address: 0x7f00_1234_5000,
        },
        CpgRequest::PartialMcast {
            header: ResponseHeader {
                id: 12,
                size: 66,
                error: CsError::Ok,
            },
            guarantee: Guarantee::Agreed,
            msglen: 2_000_000,
            fraglen: 10,
            kind: PartialType::First,
            data,
        },
        CpgRequest::Unknown {
            header: RequestHeader { id: 13, size: 20 },
            body: b"abcd",
        },
    ];
    for request in requests {
        let bytes = request.to_owned_bytes();
        let size = i32::from_le_bytes(bytes[8..12].try_into().unwrap());
        assert_eq!(size as usize, bytes.len(), "{request:?}");
        assert_eq!(CpgRequest::parse(&bytes).unwrap(), request);
        for cut in 0..bytes.len() {
            assert!(
                CpgRequest::parse(&bytes[..cut]).is_err(),
                "{request:?} cut {cut}"
            );
        }
    }
}

#[test]
fn responses_parse_by_id_and_size() {
    let status = CpgResponse::Status {
        header: ResponseHeader {
            id: 0,
            size: 24,
            error: CsError::Exist,
        },
    };
    let members = CpgResponse::Membership {
        header: ResponseHeader {
            id: 3,
            size: 9248,
            error: CsError::Ok,
        },
        members: vec![CpgAddress {
            nodeid: 1,
            pid: 4242,
            reason: ConfchgReason::Undefined,
        }],
    };
    let local = CpgResponse::LocalGet {
        header: ResponseHeader {
            id: 7,
            size: 32,
            error: CsError::Ok,
        },
        local_nodeid: 1,
    };
    let init = CpgResponse::IterationInitialize {
        header: ResponseHeader {
            id: 9,
            size: 32,
            error: CsError::Ok,
        },
        handle: 77,
    };
    let next = CpgResponse::IterationNext {
        header: ResponseHeader {
            id: 10,
            size: 168,
            error: CsError::NoSections,
        },
        group: name("g"),
        nodeid: 1,
        pid: 2,
    };
    for response in [status, members, local, init, next] {
        let mut bytes = Vec::new();
        response.emit(&mut bytes);
        assert_eq!(CpgResponse::parse(&bytes).unwrap(), response);
        for cut in 0..bytes.len().min(400) {
            assert!(CpgResponse::parse(&bytes[..cut]).is_err());
        }
    }
}

#[test]
fn membership_count_is_bounded() {
    let mut b = vec![0u8; MEMBERSHIP_RESPONSE_LEN];
    le32(&mut b, 0, 3);
    le32(&mut b, 8, MEMBERSHIP_RESPONSE_LEN as u32);
    le32(&mut b, 16, 1);
    le32(&mut b, 24, 385);
    let e = CpgResponse::parse(&b).unwrap_err();
    assert_eq!(e.layer, crate::Layer::Ipc);
    assert_eq!(e.offset, 24);
    assert!(matches!(e.kind, ErrorKind::CountTooLarge { max: 384, .. }));
}

#[test]
fn confchg_lists_come_in_members_left_joined_order() {
    // The leave confchg of ipc.md §7: m=0, l=1 (208 bytes).
    let mut b = vec![0u8; 208];
    le32(&mut b, 0, 4);
    le32(&mut b, 8, 208);
    le32(&mut b, 16, 1);
    le32(&mut b, 24, 5);
    b[32..37].copy_from_slice(b"cslab");
    le32(&mut b, 160, 0);
    le32(&mut b, 168, 0);
    le32(&mut b, 176, 1);
    le32(&mut b, 184, 1);
    le32(&mut b, 192, 4242);
    le32(&mut b, 200, 2);
    let event = CpgEvent::parse(&b).unwrap();
    match &event {
        CpgEvent::Confchg {
            members,
            left,
            joined,
            group,
            ..
        } => {
            assert!(members.is_empty() && joined.is_empty());
            assert_eq!(group.as_bytes(), b"cslab");
            assert_eq!(
                left,
                &[CpgAddress {
                    nodeid: 1,
                    pid: 4242,
                    reason: ConfchgReason::Leave
                }]
            );
        }
        other => panic!("{other:?}"),
    }
    let mut out = Vec::new();
    event.emit(&mut out);
    assert_eq!(out, b);
}

#[test]
fn confchg_counts_above_cpg_members_max_are_refused() {
    let mut b = vec![0u8; 184];
    le32(&mut b, 0, 4);
    le32(&mut b, 8, 184);
    le32(&mut b, 168, 129);
    let e = CpgEvent::parse(&b).unwrap_err();
    assert_eq!((e.layer, e.offset), (crate::Layer::Ipc, 168));
    assert!(matches!(e.kind, ErrorKind::CountTooLarge { max: 128, .. }));
    // Counts within the limit but with no bytes behind them.
    le32(&mut b, 168, 2);
    assert!(matches!(
        CpgEvent::parse(&b).unwrap_err().kind,
        ErrorKind::Truncated { .. }
    ));
}

#[test]
fn totem_confchg_carries_four_trailing_bytes() {
    // 52 bytes for one member (ipc.md §7), trailing garbage.
    let mut b = vec![0u8; 52];
    le32(&mut b, 0, 13);
    le32(&mut b, 8, 52);
    le32(&mut b, 16, 1);
    le32(&mut b, 24, 1);
    b[32..40].copy_from_slice(&0x2cu64.to_le_bytes());
    le32(&mut b, 40, 1);
    le32(&mut b, 44, 1);
    le32(&mut b, 48, 0x7fff_0000);
    let event = CpgEvent::parse(&b).unwrap();
    assert_eq!(
        event,
        CpgEvent::TotemConfchg {
            header: ResponseHeader {
                id: 13,
                size: 52,
                error: CsError::Ok
            },
            ring_nodeid: 1,
            ring_seq: 0x2c,
            members: vec![1],
        }
    );
    let mut out = Vec::new();
    event.emit(&mut out);
    assert_eq!(CpgEvent::parse(&out).unwrap(), event);
}

#[test]
fn deliver_and_partial_deliver() {
    for event in [
        CpgEvent::Deliver {
            header: ResponseHeader {
                id: 5,
                size: 184 + 3,
                error: CsError::Ok,
            },
            group: name("g"),
            msglen: 3,
            nodeid: 1,
            pid: 9,
            data: b"abc",
        },
        CpgEvent::PartialDeliver {
            header: ResponseHeader {
                id: 17,
                size: 200 + 3,
                error: CsError::Ok,
            },
            group: name("g"),
            msglen: 2_000_000,
            fraglen: 3,
            nodeid: 1,
            pid: 9,
            kind: PartialType::Last,
            data: b"abc",
        },
    ] {
        let mut out = Vec::new();
        event.emit(&mut out);
        assert_eq!(CpgEvent::parse(&out).unwrap(), event);
        // msglen disagreeing with the bytes is a length mismatch at the length field.
        let mut bad = out.clone();
        bad.push(0);
        let len = bad.len() as u32;
        le32(&mut bad, 8, len);
        let e = CpgEvent::parse(&bad).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::LengthMismatch { .. }), "{e}");
        assert!(e.offset == 160 || e.offset == 168, "{e}");
    }
}

#[test]
fn size_field_must_match_the_message() {
    let mut b = join_bytes();
    le32(&mut b, 8, 200);
    let e = CpgRequest::parse(&b).unwrap_err();
    assert_eq!((e.layer, e.offset), (crate::Layer::Ipc, 8));
    assert_eq!(e.kind_name(), "length_mismatch");
    le32(&mut b, 8, u32::MAX);
    assert!(CpgRequest::parse(&b).is_err());
}

#[test]
fn setup_handshake_round_trips() {
    let mut req = vec![0u8; 24];
    le32(&mut req, 0, u32::MAX);
    le32(&mut req, 8, 24);
    le32(&mut req, 16, 1 << 20);
    let parsed = ConnectionRequest::parse(&req).unwrap();
    assert_eq!(parsed.max_msg_size, 1 << 20);
    let mut out = Vec::new();
    parsed.emit(&mut out);
    assert_eq!(out, req);

    let response = ConnectionResponse {
        header: ResponseHeader {
            id: -1,
            size: 12_328,
            error: CsError::Unknown(0),
        },
        connection_type: IpcType::Socket,
        max_msg_size: 1 << 20,
        connection: 0x5555_0000_1000,
        request: b"/dev/shm/qb-1-2-18-abcdef/qb-control-cpg".to_vec(),
        response: b"/dev/shm/qb-1-2-18-abcdef/qb-cpg".to_vec(),
        event: Vec::new(),
    };
    let mut bytes = Vec::new();
    response.emit(&mut bytes);
    assert_eq!(bytes.len(), setup::CONNECTION_RESPONSE_LEN);
    let parsed = ConnectionResponse::parse(&bytes).unwrap();
    assert_eq!(parsed, response);
    assert_eq!(parsed.refusal_errno(), None);

    // A refusal: -EAGAIN while corosync is not ready.
    le32(&mut bytes, 16, (-11i32) as u32);
    assert_eq!(
        ConnectionResponse::parse(&bytes).unwrap().refusal_errno(),
        Some(11)
    );
    // Not the authentication id.
    le32(&mut req, 0, 0);
    let e = ConnectionRequest::parse(&req).unwrap_err();
    assert!(matches!(
        e.kind,
        ErrorKind::InvalidValue { field: "id", .. }
    ));
}

#[test]
fn record_header_round_trips_and_rejects_bad_input() {
    let header = RecordHeader {
        kind: RecordKind::Message(Channel::Response),
        direction: Direction::ToClient,
        call: LibqbCall::SendvRecv,
        flags: 0,
        piece: 0,
        pid: 4242,
        tid: 4243,
        conn: 1,
        result: 24,
        seq: 7,
        dropped: 0,
        service: RecordHeader::service_field(b"cpg"),
    };
    let mut bytes = Vec::new();
    header.emit(&mut bytes);
    assert_eq!(bytes.len(), RECORD_HEADER_LEN);
    bytes.extend_from_slice(b"msg");
    let (parsed, rest) = RecordHeader::parse(&bytes).unwrap();
    assert_eq!(parsed, header);
    assert_eq!(rest, b"msg");
    assert_eq!(parsed.service_name(), b"cpg");
    for cut in 0..RECORD_HEADER_LEN {
        assert!(RecordHeader::parse(&bytes[..cut]).is_err());
    }
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert_eq!(
        RecordHeader::parse(&bad).unwrap_err().kind_name(),
        "bad_magic"
    );
    let mut bad = bytes.clone();
    bad[4] = 2;
    assert_eq!(
        RecordHeader::parse(&bad).unwrap_err().kind_name(),
        "unsupported_version"
    );
    let mut bad = bytes;
    bad[6] = 9;
    let e = RecordHeader::parse(&bad).unwrap_err();
    assert_eq!((e.offset, e.kind_name()), (6, "invalid_value"));
}

#[test]
fn pcapng_blocks_are_well_formed() {
    let header = pcapng_file_header();
    assert_eq!(&header[..4], &[0x0A, 0x0D, 0x0D, 0x0A]);
    assert_eq!(header.len() % 4, 0);
    let mut out = Vec::new();
    pcapng_packet(&mut out, 1_700_000_000_123_456, b"abcde");
    assert_eq!(out.len(), 28 + 8 + 4);
    assert_eq!(&out[4..8], &(out.len() as u32).to_le_bytes());
    assert_eq!(&out[out.len() - 4..], &(out.len() as u32).to_le_bytes());
}

#[test]
fn cs_error_names() {
    assert_eq!(CsError::from(1).to_string(), "CS_OK");
    assert_eq!(CsError::from(6).to_string(), "CS_ERR_TRY_AGAIN");
    assert_eq!(CsError::from(27).to_string(), "CS_ERR_NO_SECTIONS");
    assert_eq!(CsError::from(29).to_string(), "UNKNOWN(0x1d)");
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_round_trip(bytes in vec(any::<u8>(), 0..600)) {
        crate::fuzzing::ipc_round_trip(&bytes);
    }

    #[test]
    fn mcast_and_deliver_round_trip(data in vec(any::<u8>(), 0..2000), pid in any::<u32>(), g in vec(any::<u8>(), 0..=128)) {
        let group = CpgName::new(&g).unwrap();
        let request = CpgRequest::Mcast {
            header: ResponseHeader { id: 2, size: (40 + data.len()) as i32, error: CsError::Ok },
            guarantee: Guarantee::Agreed,
            msglen: data.len() as u32,
            data: &data,
        };
        let bytes = request.to_owned_bytes();
        prop_assert_eq!(CpgRequest::parse(&bytes).unwrap(), request);
        let event = CpgEvent::Deliver {
            header: ResponseHeader { id: 5, size: (184 + data.len()) as i32, error: CsError::Ok },
            group,
            msglen: data.len() as u32,
            nodeid: 1,
            pid,
            data: &data,
        };
        let mut out = Vec::new();
        event.emit(&mut out);
        prop_assert_eq!(CpgEvent::parse(&out).unwrap(), event);
    }
}

/// Every constructor gives a message whose `size` is its length and that parses back.
#[test]
fn constructors_emit_consistent_sizes() {
    use crate::exec::cpg::{ConfchgReason, CpgName, PartialType};
    use crate::ipc::cpg::{CpgAddress, Guarantee, IterationType};
    use crate::ipc::CsError;
    let g = CpgName::new(b"group").expect("short name");
    let a = CpgAddress {
        nodeid: 1,
        pid: 42,
        reason: ConfchgReason::Join,
    };
    let requests = [
        CpgRequest::join(g, 42, 1),
        CpgRequest::leave(g, 42),
        CpgRequest::mcast(Guarantee::Agreed, b"hello"),
        CpgRequest::partial_mcast(Guarantee::Agreed, 9, PartialType::First, b"hell"),
        CpgRequest::membership(g),
        CpgRequest::local_get(),
        CpgRequest::iteration_initialize(IterationType::All, g),
        CpgRequest::iteration_next(7),
        CpgRequest::iteration_finalize(7),
        CpgRequest::finalize(),
        CpgRequest::zc_alloc(4096, b"/dev/shm/corosync_zerocopy-abc"),
        CpgRequest::zc_free(4096, 9),
        CpgRequest::zc_execute(9),
    ];
    for r in &requests {
        let bytes = r.to_bytes();
        let parsed = CpgRequest::parse(&bytes).expect("parses");
        assert_eq!(&parsed, r);
    }
    let responses = [
        CpgResponse::status(CpgResponseId::Join, CsError::Exist),
        CpgResponse::membership(vec![a, a], CsError::Ok),
        CpgResponse::local_get(3),
        CpgResponse::iteration_initialize(5, CsError::Ok),
        CpgResponse::iteration_next(g, 1, 42, CsError::Ok),
    ];
    for r in &responses {
        let bytes = r.to_bytes();
        assert_eq!(CpgResponse::parse(&bytes).expect("parses"), *r);
    }
    let events = [
        CpgEvent::confchg(g, vec![a], vec![], vec![a]),
        CpgEvent::deliver(g, 1, 42, b"payload"),
        CpgEvent::totem_confchg(1, 8, vec![1, 2, 3]),
        CpgEvent::partial_deliver(g, 100, 1, 42, PartialType::Continued, b"piece"),
    ];
    for e in &events {
        let bytes = e.to_bytes();
        assert_eq!(CpgEvent::parse(&bytes).expect("parses"), *e);
    }
    // ipc.md §4.5's observed sizes: join confchg 232, deliver of 40 bytes 224, totem
    // confchg of one member 52.
    assert_eq!(
        CpgEvent::confchg(g, vec![a], vec![], vec![a])
            .to_bytes()
            .len(),
        232
    );
    assert_eq!(CpgEvent::deliver(g, 1, 1, &[0; 40]).to_bytes().len(), 224);
    assert_eq!(CpgEvent::totem_confchg(1, 1, vec![1]).to_bytes().len(), 52);
}

/// A zero-copy buffer as libcpg and the server fill it: token, map size, the MCAST header
/// `cpg_zcb_mcast_joined` writes, then the payload; a msglen past the buffer is refused.
#[test]
fn zero_copy_buffer_head_and_payload() {
    use crate::ipc::cpg::{zc_payload, Guarantee, ZcHead, ZC_MAP_SIZE_OFFSET, ZC_MCAST_OFFSET};
    use crate::ipc::cpg::{ZC_PAYLOAD_OFFSET, ZC_SERVER_ADDRESS_OFFSET};
    let mut buf = vec![0u8; ZC_PAYLOAD_OFFSET + 8];
    buf[ZC_SERVER_ADDRESS_OFFSET..ZC_SERVER_ADDRESS_OFFSET + 8]
        .copy_from_slice(&ZcHead::server_address_bytes(0x5a01));
    buf[ZC_MAP_SIZE_OFFSET..4].copy_from_slice(&ZcHead::map_size_bytes(64));
    let header = CpgRequest::zc_mcast_header(Guarantee::Agreed, 5);
    buf[ZC_MCAST_OFFSET..ZC_PAYLOAD_OFFSET].copy_from_slice(&header);
    buf[ZC_PAYLOAD_OFFSET..ZC_PAYLOAD_OFFSET + 5].copy_from_slice(b"hello");
    let head = ZcHead::parse(&buf).expect("head");
    assert_eq!(
        (head.map_size, head.server_address, head.msglen),
        (64, 0x5a01, 5)
    );
    assert_eq!(zc_payload(&buf).expect("payload"), b"hello");
    let long = CpgRequest::zc_mcast_header(Guarantee::Agreed, 9);
    buf[ZC_MCAST_OFFSET..ZC_PAYLOAD_OFFSET].copy_from_slice(&long);
    assert!(zc_payload(&buf).is_err());
    assert!(ZcHead::parse(&buf[..ZC_PAYLOAD_OFFSET - 1]).is_err());
}

/// libcfg's GET_NODE_ADDRS as `corosync-cpgtool` sends it, and the replies' sizes
/// (`ipc_cfg.h`: 32 + 16 per address, 32 for LOCAL_GET, 10272 for RINGSTATUSGET).
#[test]
fn cfg_requests_parse_and_replies_have_corosyncs_sizes() {
    use crate::ipc::cfg::{CfgRequest, CfgResponse};
    let mut req = vec![0u8; 24];
    req[..4].copy_from_slice(&5i32.to_le_bytes());
    req[8..12].copy_from_slice(&24i32.to_le_bytes());
    req[16..20].copy_from_slice(&3u32.to_le_bytes());
    match CfgRequest::parse(&req).expect("parses") {
        CfgRequest::GetNodeAddrs { nodeid, .. } => assert_eq!(nodeid, 3),
        other => panic!("{other:?}"),
    }
    // A GET_NODE_ADDRS without its nodeid is refused, not read past.
    let mut short = req[..16].to_vec();
    short[8..12].copy_from_slice(&16i32.to_le_bytes());
    assert!(CfgRequest::parse(&short).is_err());
    let addrs = CfgResponse::NodeAddrs {
        error: CsError::Ok,
        family: 2,
        addrs: vec![[10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]],
    }
    .to_bytes();
    assert_eq!(addrs.len(), 48);
    assert_eq!(&addrs[8..12], &48i32.to_le_bytes());
    assert_eq!(CfgResponse::LocalGet { nodeid: 9 }.to_bytes().len(), 32);
    let ring = CfgResponse::RingStatusEmpty {
        error: CsError::NotSupported,
    };
    assert_eq!(ring.to_bytes().len(), 10272);
}

/// The shutdown-tracking and status calls round-trip at libcfg's sizes (`sizeof` checked
/// with gcc against Debian's `corosync/cfg.h`: node_status_v1 4176 bytes, its link_status at
/// 16, each link 520), and wrong sizes are refused rather than read past.
#[test]
fn cfg_tracking_and_status_calls_have_libcfgs_layouts() {
    use crate::ipc::cfg::{
        CfgRequest, CfgResponse, LinkStatus, NodeStatus, NODESTATUS_V1_RESPONSE_LEN,
        SHUTDOWN_FLAG_IMMEDIATE,
    };
    use crate::ipc::RequestHeader;
    let h = RequestHeader { id: 0, size: 0 };
    for (request, len) in [
        (
            CfgRequest::TryShutdown {
                header: h,
                flags: SHUTDOWN_FLAG_IMMEDIATE,
            },
            24,
        ),
        (
            CfgRequest::ReplyToShutdown {
                header: h,
                response: 1,
            },
            24,
        ),
        (
            CfgRequest::TrackStart {
                header: h,
                flags: 0,
            },
            24,
        ),
        (
            CfgRequest::NodeStatusGet {
                header: h,
                nodeid: 7,
                version: 1,
            },
            32,
        ),
        (
            CfgRequest::KillNode {
                header: h,
                nodeid: 3,
                reason: b"fenced by test".to_vec(),
            },
            288,
        ),
    ] {
        let bytes = request.to_bytes();
        assert_eq!(bytes.len(), len, "{request:?}");
        let back = CfgRequest::parse(&bytes).expect("parses");
        assert_eq!(back.to_bytes(), bytes);
        // One byte short (size adjusted so only the struct check can refuse it).
        let mut short = bytes[..len - 8].to_vec();
        short[8..12].copy_from_slice(&((len - 8) as i32).to_le_bytes());
        assert!(CfgRequest::parse(&short).is_err(), "{request:?}");
    }
    // A reason longer than cs_name_t's value is refused.
    let mut kill = CfgRequest::KillNode {
        header: h,
        nodeid: 3,
        reason: vec![],
    }
    .to_bytes();
    kill[24..26].copy_from_slice(&257u16.to_le_bytes());
    assert!(CfgRequest::parse(&kill).is_err());

    let mut status = NodeStatus {
        nodeid: 2,
        reachable: true,
        remote: true,
        ..NodeStatus::default()
    };
    status.links[1] = LinkStatus {
        enabled: true,
        connected: true,
        dynconnected: false,
        mtu: 1397,
        src_ipaddr: "10.0.0.1".into(),
        dst_ipaddr: "10.0.0.2".into(),
    };
    let bytes = CfgResponse::NodeStatusV1(Box::new(status)).to_bytes();
    assert_eq!(bytes.len(), NODESTATUS_V1_RESPONSE_LEN);
    assert_eq!(bytes.len(), 4200);
    let link1 = 24 + 16 + 520;
    assert_eq!(&bytes[link1..link1 + 3], &[1, 1, 0]);
    assert_eq!(&bytes[link1 + 4..link1 + 8], &1397u32.to_le_bytes());
    assert_eq!(&bytes[link1 + 8..link1 + 17], b"10.0.0.1\0");
    assert_eq!(&bytes[link1 + 264..link1 + 273], b"10.0.0.2\0");
    let test = CfgResponse::TestShutdown {
        error: CsError::Ok,
        flags: 0,
    }
    .to_bytes();
    assert_eq!((test.len(), &test[..4]), (32, &10i32.to_le_bytes()[..]));
}

// The inspector's `--type` on IPC recordings takes these names (any case, events with or
// without `_CALLBACK`); every request and response id the codec knows has one.
#[test]
fn cpg_message_names_are_recognised_in_any_case() {
    use crate::ipc::cpg::{is_message_name, CpgRequestId, CpgResponseId};
    for name in [
        "JOIN",
        "join",
        "MCAST",
        "CONFCHG",
        "confchg_callback",
        "DELIVER_CALLBACK",
    ] {
        assert!(is_message_name(name), "{name}");
    }
    for name in ["CONNECT", "disconnect"] {
        assert!(is_message_name(name), "{name}");
    }
    for name in ["", "JOINX", "_CALLBACK", "ORF_TOKEN"] {
        assert!(!is_message_name(name), "{name}");
    }
    for id in CpgRequestId::KNOWN {
        assert!(is_message_name(id.known_name().unwrap()), "{id}");
    }
    assert_eq!(CpgResponseId::KNOWN.len(), 19, "responses 0..=18");
    assert_eq!(CpgRequestId::KNOWN.len(), 13, "requests 0..=12");
}

#[test]
fn header_words_peek_from_messages_too_short_to_parse() {
    let mut response = vec![0u8; RESPONSE_HEADER_LEN];
    le32(&mut response, 0, 18);
    le32(&mut response, 8, 24);
    le32(&mut response, 16, 6);
    assert_eq!(peek_id(&response), Some(18));
    assert_eq!(peek_error(&response), Some(CsError::TryAgain));
    // The head a failed request keeps, or a record cut by the capture.
    assert_eq!(peek_id(&response[..4]), Some(18));
    assert_eq!(peek_error(&response[..20]), Some(CsError::TryAgain));
    assert_eq!(peek_id(&response[..3]), None);
    assert_eq!(peek_error(&response[..19]), None);
    let parsed = ResponseHeader::peek(&response).unwrap();
    assert_eq!((parsed.id, parsed.error), (18, CsError::TryAgain));
}

#[test]
fn each_request_is_answered_with_the_id_corosync_sets() {
    let answers: Vec<(CpgRequestId, CpgResponseId)> = CpgRequestId::KNOWN
        .iter()
        .map(|r| (*r, r.response_id()))
        .collect();
    use CpgRequestId as Rq;
    use CpgResponseId as Rs;
    assert_eq!(
        answers,
        vec![
            (Rq::Join, Rs::Join),
            (Rq::Leave, Rs::Leave),
            (Rq::Mcast, Rs::Mcast),
            (Rq::Membership, Rs::Membership),
            (Rq::LocalGet, Rs::LocalGet),
            (Rq::IterationInitialize, Rs::IterationInitialize),
            (Rq::IterationNext, Rs::IterationNext),
            (Rq::IterationFinalize, Rs::IterationFinalize),
            (Rq::Finalize, Rs::Finalize),
            // ipc.md §4.3: the zc alloc/free replies carry id 0.
            (Rq::ZcAlloc, Rs::Join),
            (Rq::ZcFree, Rs::Join),
            (Rq::ZcExecute, Rs::Mcast),
            (Rq::PartialMcast, Rs::PartialSend),
        ]
    );
    // The glue's error reply to an id it cannot dispatch (ipc.md §3.4).
    assert_eq!(Rq::Unknown(99).response_id(), Rs::Join);
}
