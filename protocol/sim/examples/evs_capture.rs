//! Writes the EVS fixtures `fixtures/pcap/totem-sim/evs-3node.pcap` and
//! `fixtures/ipc/evs-sim-3node.pcapng`: a 3-node ring of the simulator's
//! real engine (`totem_cpg::Node`, deterministic network, seed 1) with libevs clients on
//! every node speaking the evs IPC (`totem_wire::ipc::evs`), and
//!
//! * the pcap: every datagram between the nodes (the simulator's pcap output);
//! * the pcapng: every request, response and event of those clients, in the IPC
//!   recording format, as a server-side recording (`FLAG_SERVER`, like `totemd
//!   --record-ipc`: no setup records), each client its own process (pid 1000 + 10·node + n).
//!
//! Same seed, same bytes: the files are reproducible.
//!
//! `cargo run -p totem-sim --example evs_capture -- OUT.pcap OUT.pcapng`

use totem_cpg::LibReply;
use totem_sim::pcap::PcapWriter;
use totem_sim::{NetworkOptions, Sim, Timings};
use totem_wire::exec::evs::EvsGroup;
use totem_wire::ipc::evs::EvsRequest;
use totem_wire::ipc::record::{
    pcapng_file_header, pcapng_packet, Direction, LibqbCall, RecordHeader, RecordKind, FLAG_SERVER,
};
use totem_wire::ipc::Channel;

fn key(name: &[u8]) -> EvsGroup {
    let mut k = [0u8; 32];
    k[..name.len()].copy_from_slice(name);
    k
}

/// A libevs client: its node, its simulator connection, its recorded pid.
#[derive(Clone, Copy)]
struct Client {
    node: u32,
    conn: u64,
    pid: u32,
}

struct Recording {
    bytes: Vec<u8>,
    seq: u32,
}

impl Recording {
    fn record(&mut self, sim: &Sim, c: Client, kind: RecordKind, message: &[u8]) {
        let (direction, call) = match kind {
            RecordKind::Message(Channel::Request) => (Direction::ToServer, LibqbCall::SendvRecv),
            RecordKind::Message(Channel::Response) => (Direction::ToClient, LibqbCall::SendvRecv),
            RecordKind::Message(_) => (Direction::ToClient, LibqbCall::EventRecv),
            RecordKind::Disconnect => (Direction::ToServer, LibqbCall::Disconnect),
        };
        let header = RecordHeader {
            kind,
            direction,
            call,
            flags: FLAG_SERVER,
            piece: 0,
            pid: c.pid,
            tid: 0,
            conn: 1,
            result: message.len() as i64,
            seq: self.seq,
            dropped: 0,
            service: RecordHeader::service_field(b"evs"),
        };
        self.seq += 1;
        let mut packet = Vec::new();
        header.emit(&mut packet);
        packet.extend_from_slice(message);
        // The simulator's pcap places virtual time 0 at 1_700_000_000 s: so does this.
        let micros = 1_700_000_000_000_000 + sim.now().total_micros().max(0) as u64;
        pcapng_packet(&mut self.bytes, micros, &packet);
    }

    fn request(&mut self, sim: &mut Sim, c: Client, request: &EvsRequest<'_>) {
        let bytes = request.to_bytes();
        self.record(sim, c, RecordKind::Message(Channel::Request), &bytes);
        match sim.evs_ipc_request(c.node, c.conn, &bytes) {
            Ok(LibReply::Response(reply)) => {
                self.record(sim, c, RecordKind::Message(Channel::Response), &reply)
            }
            other => panic!("node {} request {request:?}: {other:?}", c.node),
        }
    }

    fn events(&mut self, sim: &mut Sim, clients: &[Client]) {
        for &c in clients {
            while let Ok(Some(event)) = sim.evs_ipc_next_event(c.node, c.conn) {
                self.record(sim, c, RecordKind::Message(Channel::Event), &event);
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, pcap_path, ipc_path] = &args[..] else {
        panic!("usage: evs_capture OUT.pcap OUT.pcapng");
    };
    let ids = [1, 2, 3];
    let mut sim = Sim::new(1, &ids, NetworkOptions::default(), Timings::default());
    sim.capture_to(PcapWriter::new());
    for id in ids {
        sim.start(id);
    }
    sim.run_for_ms(2500);
    let mut rec = Recording {
        bytes: pcapng_file_header(),
        seq: 0,
    };
    let connect = |sim: &mut Sim, node: u32, n: u32| Client {
        node,
        conn: sim.evs_ipc_connect(node).expect("daemon running"),
        pid: 1000 + 10 * node + n,
    };
    let a = connect(&mut sim, 1, 1);
    let b = connect(&mut sim, 2, 1);
    let c = connect(&mut sim, 3, 1);
    let d = connect(&mut sim, 3, 2);
    let clients = [a, b, c, d];
    rec.events(&mut sim, &clients);
    let step = |sim: &mut Sim, rec: &mut Recording| {
        sim.run_for_ms(50);
        rec.events(sim, &clients);
    };

    let join = |groups: Vec<EvsGroup>| EvsRequest::Join { groups };
    rec.request(&mut sim, a, &join(vec![key(b"key1"), key(b"key2")]));
    rec.request(&mut sim, b, &join(vec![key(b"key2")]));
    // Two keys that differ only after the first NUL: two groups (EVS-JOIN-6).
    rec.request(&mut sim, c, &join(vec![key(b"a")]));
    rec.request(&mut sim, d, &join(vec![key(b"a\0b")]));
    step(&mut sim, &mut rec);

    let payload: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let mcast = |groups: Vec<EvsGroup>, len: usize| EvsRequest::McastGroups {
        guarantee: 0,
        groups,
        data: &payload[..len],
    };
    // To two groups at once: counted once per group, once in the total.
    rec.request(&mut sim, a, &mcast(vec![key(b"key1"), key(b"key2")], 2000));
    step(&mut sim, &mut rec);
    rec.request(
        &mut sim,
        b,
        &EvsRequest::McastJoined {
            guarantee: 0,
            data: &payload[..100],
        },
    );
    step(&mut sim, &mut rec);
    rec.request(&mut sim, a, &mcast(vec![key(b"a")], 10));
    rec.request(&mut sim, c, &mcast(vec![key(b"a\0b")], 11));
    step(&mut sim, &mut rec);
    // A key listed twice is still one message to that group.
    rec.request(&mut sim, b, &mcast(vec![key(b"key2"), key(b"key2")], 50));
    // Larger than a totempg packet: fragmented over several MCASTs.
    rec.request(&mut sim, c, &mcast(vec![key(b"key1")], 5000));
    step(&mut sim, &mut rec);
    rec.request(&mut sim, a, &EvsRequest::MembershipGet);
    let leave = EvsRequest::Leave {
        groups: vec![key(b"key2")],
    };
    rec.request(&mut sim, b, &leave);
    // Not joined any more: CS_ERR_NOT_EXIST (EVS-LEAVE-7).
    rec.request(&mut sim, b, &leave);
    step(&mut sim, &mut rec);
    for c in clients {
        sim.evs_ipc_disconnect(c.node, c.conn);
        rec.record(&sim, c, RecordKind::Disconnect, &[]);
    }
    sim.run_for_ms(200);

    let pcap = sim.take_capture().expect("capturing").into_bytes();
    std::fs::write(pcap_path, pcap).expect("write pcap");
    std::fs::write(ipc_path, rec.bytes).expect("write pcapng");
}
