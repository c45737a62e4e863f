//! Connects to the CPG service over libqb IPC of whichever type the server chooses (socket
//! or shm, `totem_client::connect`), asks LOCAL_GET and finalizes, with raw
//! `totem_wire::ipc::cpg` messages: what `cpg_initialize` + `cpg_local_get` +
//! `cpg_finalize` put on the wire (ipc.md §4.3). Prints `key=value` lines, the first
//! `ipc_type=SOCKET` or `ipc_type=SHM`.
//!
//! ```text
//! cpg_local_get [--service NAME] [--wait SECONDS] [--join GROUP]
//! ```
//!
//! With `--join`, the events and MCAST path too, through the crate's CPG layer
//! (`totem_client::cpg`): join GROUP, wait for our confchg, mcast one message and wait
//! for its delivery, leave, finalize.
//!
//! `--wait` keeps retrying while nothing listens yet or the server answers EAGAIN
//! (corosync refuses IPC until its first sync completes, ipc.md §3.2). Run it in the
//! server's network namespace: the socket names are abstract.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use totem_client::cpg::{Callback, Cpg, Event};
use totem_client::{IpcTransport, Transport, TransportError};
use totem_wire::ipc::cpg::{CpgRequest, CpgRequestId, CpgResponse, CpgResponseId, Guarantee};
use totem_wire::ipc::{CsError, RequestHeader, IPC_MAX_MSG_LEN, REQUEST_HEADER_LEN};

fn header_only(id: CpgRequestId) -> Vec<u8> {
    let header = RequestHeader {
        id: id.into(),
        size: REQUEST_HEADER_LEN as i32,
    };
    let request = match id {
        CpgRequestId::Finalize => CpgRequest::Finalize { header },
        _ => CpgRequest::LocalGet { header },
    };
    let mut out = Vec::new();
    request.emit(&mut out);
    out
}

fn run(service: &str, wait: Duration, join: Option<&str>) -> Result<(), String> {
    let deadline = Instant::now() + wait;
    let mut transport = loop {
        match totem_client::connect(service, IPC_MAX_MSG_LEN) {
            Ok(t) => break t,
            Err(TransportError::Disconnected(_)) | Err(TransportError::Refused(libc::EAGAIN))
                if Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(format!("connect: {e}")),
        }
    };
    println!("ipc_type={}", transport.ipc_type());
    println!("max_msg_size={}", transport.max_msg_size());
    println!("flow_control={:?}", transport.flow_control());
    if let Some(c) = transport.server_creds() {
        println!(
            "server_pid={} server_uid={} server_gid={}",
            c.pid, c.uid, c.gid
        );
    }

    let reply = transport
        .request(&header_only(CpgRequestId::LocalGet))
        .map_err(|e| format!("LOCAL_GET: {e}"))?;
    match CpgResponse::parse(&reply).map_err(|e| format!("LOCAL_GET reply: {e}"))? {
        CpgResponse::LocalGet {
            header,
            local_nodeid,
        } if header.error == CsError::Ok => println!("local_nodeid={local_nodeid}"),
        other => return Err(format!("LOCAL_GET answered {other:?}")),
    }

    if let Some(group) = join {
        return join_mcast_leave(transport, group.as_bytes());
    }

    let reply = transport
        .request(&header_only(CpgRequestId::Finalize))
        .map_err(|e| format!("FINALIZE: {e}"))?;
    match CpgResponse::parse(&reply).map_err(|e| format!("FINALIZE reply: {e}"))? {
        CpgResponse::Status { header }
            if CpgResponseId::from(header.id) == CpgResponseId::Finalize =>
        {
            println!("finalize={}", header.error)
        }
        other => return Err(format!("FINALIZE answered {other:?}")),
    }
    // libcpg disconnects right after FINALIZE (cpg_inst_finalize → qb_ipcc_disconnect).
    transport.disconnect();
    Ok(())
}

/// The next callback within 10 s, skipping pieces.
fn next_callback(cpg: &mut Cpg<IpcTransport>) -> Result<Callback, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match cpg.next_event(Some(left)) {
            Ok(Some(Event::Callback(cb))) => return Ok(*cb),
            Ok(Some(Event::Piece)) => {}
            Ok(None) => return Err("no event in 10 s".into()),
            Err(e) => return Err(format!("event: {e}")),
        }
    }
}

/// Repeats `call` while it answers CS_ERR_TRY_AGAIN (flow control, sync), as libcpg users
/// do, for up to 10 s.
fn retry(cpg: &mut Cpg<IpcTransport>, call: impl Fn(&mut Cpg<IpcTransport>) -> CsError) -> CsError {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match call(cpg) {
            CsError::TryAgain if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            rc => return rc,
        }
    }
}

fn join_mcast_leave(transport: IpcTransport, group: &[u8]) -> Result<(), String> {
    let mut cpg = Cpg::initialize(transport, std::process::id());
    println!("join={}", retry(&mut cpg, |c| c.join(group)));
    match next_callback(&mut cpg)? {
        Callback::Confchg {
            members, joined, ..
        } => println!("confchg members={} joined={}", members.len(), joined.len()),
        other => return Err(format!("expected our confchg, got {other:?}")),
    }
    let message = b"hello over libqb";
    println!(
        "mcast={}",
        retry(&mut cpg, |c| c.mcast_joined(Guarantee::Agreed, &[message]))
    );
    match next_callback(&mut cpg)? {
        Callback::Deliver { data, .. } => {
            println!("deliver={}", String::from_utf8_lossy(&data))
        }
        other => return Err(format!("expected our message, got {other:?}")),
    }
    println!("leave={}", retry(&mut cpg, |c| c.leave(group)));
    match next_callback(&mut cpg)? {
        Callback::Confchg { left, .. } => println!("confchg left={}", left.len()),
        other => return Err(format!("expected our leave, got {other:?}")),
    }
    println!("finalize={}", cpg.finalize());
    Ok(())
}

fn main() -> ExitCode {
    let mut service = "cpg".to_owned();
    let mut wait = Duration::ZERO;
    let mut join = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--service", Some(v)) => service = v,
            ("--join", Some(v)) => join = Some(v),
            ("--wait", Some(v)) => match v.parse::<u64>() {
                Ok(s) => wait = Duration::from_secs(s),
                Err(_) => {
                    eprintln!("--wait takes whole seconds");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("usage: cpg_local_get [--service NAME] [--wait SECONDS] [--join GROUP]");
                return ExitCode::from(2);
            }
        }
    }
    match run(&service, wait, join.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cpg_local_get: {e}");
            ExitCode::FAILURE
        }
    }
}
