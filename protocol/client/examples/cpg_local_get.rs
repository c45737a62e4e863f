//! Connects to the CPG service over libqb socket IPC, asks LOCAL_GET and finalizes, with
//! raw `totem_wire::ipc::cpg` messages: what `cpg_initialize` + `cpg_local_get` +
//! `cpg_finalize` put on the wire (ipc.md §4.3). Prints `key=value` lines.
//!
//! ```text
//! cpg_local_get [--service NAME] [--wait SECONDS]
//! ```
//!
//! `--wait` keeps retrying while nothing listens yet or the server answers EAGAIN
//! (corosync refuses IPC until its first sync completes, ipc.md §3.2). Run it in the
//! server's network namespace: the socket names are abstract.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use totem_client::socket::SocketTransport;
use totem_client::{Transport, TransportError};
use totem_wire::ipc::cpg::{CpgRequest, CpgRequestId, CpgResponse, CpgResponseId};
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

fn run(service: &str, wait: Duration) -> Result<(), String> {
    let deadline = Instant::now() + wait;
    let mut transport = loop {
        match SocketTransport::connect(service, IPC_MAX_MSG_LEN) {
            Ok(t) => break t,
            Err(TransportError::Disconnected(_)) | Err(TransportError::Refused(libc::EAGAIN))
                if Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(format!("connect: {e}")),
        }
    };
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

fn main() -> ExitCode {
    let mut service = "cpg".to_owned();
    let mut wait = Duration::ZERO;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--service", Some(v)) => service = v,
            ("--wait", Some(v)) => match v.parse::<u64>() {
                Ok(s) => wait = Duration::from_secs(s),
                Err(_) => {
                    eprintln!("--wait takes whole seconds");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("usage: cpg_local_get [--service NAME] [--wait SECONDS]");
                return ExitCode::from(2);
            }
        }
    }
    match run(&service, wait) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cpg_local_get: {e}");
            ExitCode::FAILURE
        }
    }
}
