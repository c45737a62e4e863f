//! The command line (corosync's `-f -c -t -v`, plus totemd's own options) and start-up, in
//! `main.c::main`'s order: configuration, logging, state directory, totem configuration,
//! then the transport and the ring.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;

use crate::config::Transport;
use crate::config::{self, ConfigError, CorosyncConf, LocalHost, NodeEntry};
use crate::cpg_service::{CpgService, CpgServiceConfig};
use crate::fault::{FaultConfig, Faults};
use crate::ipc::ServerIpcType;
use crate::knet_link::LinkSocket;
use crate::link_crypto::LinkCrypto;
use crate::log::{self, Logger};
use crate::net_status::{NetKind, NetStatus, NetView};
use crate::quorum_service::{QuorumService, QuorumServiceConfig};
use crate::report::{ReportConfig, Reporter};
use crate::runtime::{Clock, EventSource, Exit, Runtime};
use crate::sender_check::Senders;
use crate::status::StatusFile;
use crate::sys::SignalFd;
use crate::udpu::Udpu;
use crate::{logf, persist};
use totem_cpg::NodeConfig;
use totem_knet::KnetConfig;
use totem_votequorum::VoteConfig;

/// `COROSYNC_DONE_MAINCONFIGREAD`.
pub const EXIT_CONFIG: i32 = 8;
/// `COROSYNC_DONE_LOGCONFIGREAD`.
pub const EXIT_LOG_CONFIG: i32 = 7;
/// `COROSYNC_DONE_DIR_NOT_PRESENT`.
pub const EXIT_STATE_DIR: i32 = 16;
/// `COROSYNC_DONE_FATAL_ERR`.
pub const EXIT_FATAL: i32 = 15;

/// The corosync release whose wire protocol and behaviour totemd follows.
pub const COROSYNC_VERSION: &str = "3.1.7";

fn percentage(s: &str) -> Result<u8, String> {
    match s.parse::<u8>() {
        Ok(v) if v <= 100 => Ok(v),
        _ => Err(format!("{s:?} is not a percentage (0-100)")),
    }
}

/// `totemd`: a Totem peer for corosync 3.1.7 rings over udpu or knet.
#[derive(Debug, Clone, Parser)]
#[command(name = "totemd", disable_version_flag = true)]
pub struct Args {
    /// Stay in the foreground (totemd always does; accepted for corosync's command line).
    #[arg(short = 'f')]
    pub foreground: bool,
    /// The corosync.conf to read.
    #[arg(short = 'c', value_name = "FILE", default_value = config::DEFAULT_CONFIG_FILE)]
    pub config: PathBuf,
    /// Check the configuration and exit (0 when it is usable).
    #[arg(short = 't')]
    pub test: bool,
    /// Print the version and exit.
    #[arg(short = 'v')]
    pub version: bool,
    /// This node's id, instead of finding the local address in the nodelist.
    #[arg(short = 'n', long = "nodeid")]
    pub nodeid: Option<u32>,
    /// The state directory (ringid files), instead of system.state_dir.
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Drop this percentage of received ORF tokens (TEST_DROP_ORF_TOKEN_PERCENTAGE).
    #[arg(long = "drop-orf-token", value_name = "PCT", value_parser = percentage, default_value_t = 0)]
    pub drop_orf_token: u8,
    /// Drop this percentage of received commit tokens (TEST_DROP_COMMIT_TOKEN_PERCENTAGE).
    #[arg(long = "drop-commit-token", value_name = "PCT", value_parser = percentage, default_value_t = 0)]
    pub drop_commit_token: u8,
    /// Drop this percentage of received MCASTs (TEST_DROP_MCAST_PERCENTAGE).
    #[arg(long = "drop-mcast", value_name = "PCT", value_parser = percentage, default_value_t = 0)]
    pub drop_mcast: u8,
    /// Seed of the fault-injection generator.
    #[arg(long = "fault-seed", value_name = "SEED", default_value_t = 1)]
    pub fault_seed: u64,
    /// Start each ring's message sequence numbers near the 32-bit rollover
    /// (totemsrp.c's SEQNO_START_MSG 0xfffffe00 test setting). Only for rings of totemd
    /// nodes all started with it: corosync always starts at 0.
    #[arg(long = "start-seq-near-rollover")]
    pub start_seq_near_rollover: bool,
    /// Keep this file up to date with the node's ring as one JSON line (state, ring id,
    /// members, synced), rewritten atomically at every change; removed at a clean exit.
    #[arg(long = "status-file", value_name = "PATH")]
    pub status_file: Option<PathBuf>,
    /// Record every libqb IPC message of every client into this pcapng file, in the format
    /// `totem-inspect record-ipc` writes (the records carry the server flag);
    /// `totem-inspect FILE` decodes it.
    #[arg(long = "record-ipc", value_name = "FILE")]
    pub record_ipc: Option<PathBuf>,
    /// Send every multicast with its own system call, as corosync does, instead of
    /// handing runs of equal-sized ones to the kernel as one UDP GSO send. The datagrams
    /// on the wire are the same either way, but a capture taken on this host before the
    /// kernel cuts them (tcpdump on a veth or bridge) shows one oversized frame per run.
    #[arg(long = "no-udp-gso")]
    pub no_udp_gso: bool,
}

/// A start-up failure: what to print and the exit code.
#[derive(Debug)]
pub struct StartError {
    /// The message.
    pub message: String,
    /// corosync's exit code for it.
    pub code: i32,
}

fn config_error(e: ConfigError) -> StartError {
    StartError {
        message: e.to_string(),
        code: EXIT_CONFIG,
    }
}

/// A daemon ready to run.
pub struct Daemon {
    /// The configuration it runs with.
    pub config: CorosyncConf,
    /// This node.
    pub nodeid: u32,
    runtime: Runtime,
    cpg: CpgService,
    quorum: QuorumService,
    status: Option<StatusFile>,
}

/// What a start will open, derived from the command line, the configuration and this
/// host without touching anything: what `-t` checks, and what tests inspect.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The configuration.
    pub config: CorosyncConf,
    /// This node's nodelist entry.
    pub me: NodeEntry,
    /// Where the ring seq is kept (`-S` or `system.state_dir`).
    pub state_dir: PathBuf,
    /// `uidgid` entries, resolved: who may connect besides root.
    pub allowed_uids: Vec<u32>,
    /// The same for groups.
    pub allowed_gids: Vec<u32>,
    /// The engine's configuration (its stored ring seq is read when the daemon opens).
    pub node: NodeConfig,
    /// The knet link layer's configuration, when the transport is knet.
    pub knet: Option<KnetConfig>,
    /// The libqb IPC type every service serves.
    pub ipc_type: ServerIpcType,
    /// votequorum's settings.
    pub vote: VoteConfig,
    /// Received datagrams to drop (`--drop-*`).
    pub faults: FaultConfig,
}

/// Derives the [`Plan`]: which node this is, the totem timings, the transport, the IPC
/// and quorum settings; every error corosync reports at this stage, with its exit code, in
/// its order. `is_dir` answers whether the state directory exists (the one question about
/// the file system at this stage; a test answers it as it likes).
pub fn plan(
    args: &Args,
    conf: CorosyncConf,
    host: &LocalHost,
    is_dir: impl Fn(&std::path::Path) -> bool,
) -> Result<Plan, StartError> {
    let me = conf
        .local_node(args.nodeid, host)
        .map_err(config_error)?
        .clone();
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| conf.system.state_dir.clone());
    if !is_dir(&state_dir) {
        return Err(StartError {
            message: format!(
                "Cannot chdir to state directory {}. No such file or directory",
                state_dir.display()
            ),
            code: EXIT_STATE_DIR,
        });
    }
    // The stored ring seq is only known when the daemon opens its state file.
    let mut node = conf.node_config(me.nodeid, 0).map_err(config_error)?;
    if args.start_seq_near_rollover {
        node.srp.seqno_start = totem_srp::SEQNO_START_NEAR_ROLLOVER;
    }
    // coroparse.c resolves uidgid names while parsing: an unknown one stops corosync.
    let (allowed_uids, allowed_gids) = conf.uidgid.resolve().map_err(|message| StartError {
        message: format!("parser error: {message}"),
        code: EXIT_CONFIG,
    })?;
    let knet = (conf.totem.transport == Transport::Knet).then(|| {
        // totemknet_member_add: every other node a host on each of our links where it has
        // an address (the reader checked that every node has every link).
        let links = me
            .link_ids()
            .into_iter()
            .map(|link| {
                let port = conf.totem.link_port(link);
                let peers = conf
                    .nodes
                    .iter()
                    .filter(|n| n.nodeid != me.nodeid)
                    // The reader refused nodeids of 65536 and above for knet.
                    .filter_map(|n| {
                        n.link_addr(link)
                            .map(|a| (n.nodeid as u16, std::net::SocketAddr::new(a, port)))
                    })
                    .collect();
                (link, peers)
            })
            .collect();
        let mut k = KnetConfig::corosync_links(
            me.nodeid as u16,
            links,
            node.srp.token_ms,
            &conf.totem.knet,
        );
        for l in &mut k.links {
            l.local = me
                .link_addr(l.id)
                .map(|a| std::net::SocketAddr::new(a, conf.totem.link_port(l.id)));
        }
        match &conf.totem.crypto {
            Some(crypto) => k.with_crypto(crypto, &conf.totem.knet),
            None => k,
        }
    });
    // cs_ipcs_service_init with corosync's IPC type (`cs_get_ipc_type`: native, the
    // default, is shm). Clients follow (ipc.md §1.3).
    let ipc_type = ServerIpcType::from_config(conf.system.qb_ipc_type.as_deref())
        .unwrap_or(ServerIpcType::Shm);
    // votequorum_readconfig: wait_for_all defaults to two_node.
    let vote = VoteConfig {
        provider: conf.quorum.provider.is_some(),
        votes: conf
            .nodes
            .iter()
            .map(|n| (n.nodeid, n.quorum_votes))
            .collect(),
        expected_votes: conf.expected_votes(),
        two_node: conf.quorum.two_node,
        wait_for_all: conf.quorum.wait_for_all.unwrap_or(conf.quorum.two_node),
    };
    // votequorum_exec_init_fn's NODEINFO says what votequorum's start-up state is.
    node.nodeinfo = totem_votequorum::Votequorum::new(vote.clone(), me.nodeid).own_nodeinfo();
    let faults = FaultConfig {
        drop_orf_token_pct: args.drop_orf_token,
        drop_commit_token_pct: args.drop_commit_token,
        drop_mcast_pct: args.drop_mcast,
        seed: args.fault_seed,
    };
    Ok(Plan {
        config: conf,
        me,
        state_dir,
        allowed_uids,
        allowed_gids,
        node,
        knet,
        ipc_type,
        vote,
        faults,
    })
}

/// Reads the configuration and, unless `-t`, opens everything. `Ok(None)` means "done,
/// exit 0" (`-v`, `-t`).
pub fn start(args: &Args) -> Result<Option<Daemon>, StartError> {
    if args.version {
        println!(
            "totemd {} (Totem peer for Corosync Cluster Engine, version '{COROSYNC_VERSION}', udpu, knet)",
            env!("CARGO_PKG_VERSION")
        );
        return Ok(None);
    }
    let loaded = config::load(&args.config).map_err(config_error)?;
    if args.test {
        // -t opens nothing: the warnings go to stderr.
        for w in &loaded.warnings {
            logf!(Main, Warning, "{w}");
        }
    } else {
        let logger = Logger::from_config(&loaded.config.logging).map_err(|e| StartError {
            message: format!("cannot open logfile: {e}"),
            code: EXIT_LOG_CONFIG,
        })?;
        log::install(logger);
        for w in &loaded.warnings {
            logf!(Main, Warning, "{w}");
        }
    }
    let host = LocalHost::current().map_err(|e| StartError {
        message: format!("cannot list local addresses: {e}"),
        code: EXIT_CONFIG,
    })?;
    let plan = plan(args, loaded.config, &host, std::path::Path::is_dir)?;
    if args.test {
        return Ok(None);
    }
    open(args, plan).map(Some)
}

/// Opens what the plan says, in `main.c::main`'s order and with corosync's log lines:
/// scheduling, the ring seq file, signals, the transport's sockets, the IPC services.
fn open(args: &Args, plan: Plan) -> Result<Daemon, StartError> {
    let Plan {
        config: conf,
        me,
        state_dir,
        allowed_uids,
        allowed_gids,
        node: mut node_config,
        knet,
        ipc_type,
        vote,
        faults,
    } = plan;
    logf!(
        Main,
        Notice,
        "totemd {} (Corosync Cluster Engine {COROSYNC_VERSION} compatible) starting up",
        env!("CARGO_PKG_VERSION")
    );
    // main.c: round-robin realtime scheduling unless system.sched_rr is "no". It also
    // matters on the wire: a LEAVE is unicast to one member after another, and a woken
    // SCHED_RR corosync that got the first copy would otherwise preempt us and send its
    // JOIN to the next member before our LEAVE reaches it ("Failed to receive the leave
    // message" there).
    if conf.system.sched_rr {
        match crate::sys::set_rr_scheduler() {
            Ok(p) => logf!(Main, Debug, "scheduling: SCHED_RR at priority {p}"),
            Err(e) => logf!(Main, Warning, "{e}"),
        }
    }
    let stored = persist::load_or_create(&state_dir, me.nodeid).map_err(|e| StartError {
        message: format!(
            "Couldn't create ringid file '{}': {e}",
            persist::ringid_path(&state_dir, me.nodeid).display()
        ),
        code: crate::runtime::EXIT_STORE_RINGID,
    })?;
    node_config.stored_ring_seq = stored;
    if args.start_seq_near_rollover {
        logf!(
            Totem,
            Warning,
            "message sequence numbers start at {:#x} on every ring (SEQNO_START_MSG test setting)",
            node_config.srp.seqno_start
        );
    }
    let signals = SignalFd::new(&[libc::SIGTERM, libc::SIGINT]).map_err(|e| StartError {
        message: format!("cannot set up signal handling: {e}"),
        code: EXIT_FATAL,
    })?;
    if knet.is_some() {
        logf!(Totem, Notice, "Initializing transport (Kronosnet).");
    } else {
        logf!(Totem, Notice, "Initializing transport (UDP/IP Unicast).");
    }
    log_timings(&node_config.srp);
    let members: Vec<(u32, std::net::IpAddr)> =
        conf.nodes.iter().map(|n| (n.nodeid, n.addr)).collect();
    let mut udpu = Udpu::new(
        me.addr,
        conf.totem.mcastport,
        &members,
        node_config.srp.block_unlisted_ips,
    )
    .map_err(|e| StartError {
        message: format!("cannot bind the token socket: {e}"),
        code: EXIT_FATAL,
    })?;
    udpu.set_gso(!args.no_udp_gso);
    if knet.is_some() {
        udpu.use_knet_buffers();
    }
    logf!(
        Totem,
        Notice,
        "The network interface [{}] is now up.",
        me.addr
    );
    if let Ok(size) = udpu.recv_buffer_size() {
        logf!(
            Totem,
            Debug,
            "Receive multicast socket recv buffer size ({size} bytes)."
        );
    }
    match &knet {
        Some(k) => {
            logf!(Totem, Info, "totemknet initialized");
            for l in &k.links {
                logf!(
                    Knet,
                    Debug,
                    "link {}: ping interval {} ms, ping timeout {} ms, pong count {}, priority {}, data MTU {}",
                    l.id,
                    l.ping_interval.total_millis(),
                    l.ping_timeout.total_millis(),
                    l.pong_count,
                    l.priority,
                    k.data_mtu
                );
            }
            // libknet's line once its PMTUD settles; totemd's data MTU is fixed from the start.
            logf!(
                Knet,
                Info,
                "pmtud: Global data MTU changed to: {}",
                k.data_mtu
            );
        }
        None => {
            for n in &conf.nodes {
                logf!(Totem, Notice, "adding new UDPU member {{{}}}", n.addr);
            }
        }
    }
    logf!(
        Totem,
        Debug,
        "Created or loaded sequence id {:x}.{:x} for this ring.",
        me.nodeid,
        stored.wrapping_add(1)
    );
    if Faults::new(faults).active() {
        logf!(
            Totem,
            Warning,
            "fault injection: dropping {}% of ORF tokens, {}% of commit tokens, {}% of MCASTs received (seed {})",
            faults.drop_orf_token_pct,
            faults.drop_commit_token_pct,
            faults.drop_mcast_pct,
            faults.seed
        );
    }
    let clock = Clock::new();
    // One icmap for the daemon: cmap serves it, both IPC servers check run-time uidgid
    // keys in it when accepting (ipc_glue.c::cs_ipcs_connection_accept).
    let mut map = crate::cmap::Icmap::from_config(&conf, me.nodeid);
    map.set_totem_runtime(&node_config.srp);
    // corodefs.h: CMAP 0, CFG 1, CPG 2, QUORUM 3, VOTEQUORUM 5 (no PLOAD, MON, WD here).
    map.set_services(&[
        ("cmap", 0),
        ("cfg", 1),
        ("cpg", 2),
        ("quorum", 3),
        ("votequorum", 5),
    ]);
    let icmap = map.shared();
    let mut quorum_service = QuorumServiceConfig::new(allowed_uids.clone(), allowed_gids.clone());
    quorum_service.ipc.ipc_type = ipc_type;
    quorum_service.ipc.icmap = Some(icmap.clone());
    let mut service = CpgServiceConfig::new(allowed_uids, allowed_gids);
    service.ipc.ipc_type = ipc_type;
    service.ipc.icmap = Some(icmap.clone());
    // totem_ifaces_get: every link's address, in link order.
    for n in &conf.nodes {
        let a = service.node_addrs.entry(n.nodeid).or_default();
        a.push(n.addr);
        a.extend(n.links.iter().map(|(_, ip)| *ip));
    }
    let mut cpg = CpgService::new(service, clock.now()).map_err(|e| StartError {
        message: format!("Can't initialize IPC: {e}"),
        code: EXIT_FATAL,
    })?;
    if let Some(path) = &args.record_ipc {
        let file = std::fs::File::create(path)
            .and_then(|f| cpg.record_ipc_to(Box::new(std::io::BufWriter::new(f))))
            .map_err(|e| StartError {
                message: format!("Can't record IPC to {}: {e}", path.display()),
                code: EXIT_FATAL,
            });
        file?;
    }
    logf!(
        Main,
        Notice,
        "Service engine loaded: corosync cluster closed process group service v1.01 (IPC type {})",
        ipc_type.name()
    );
    quorum_service.vote = vote.clone();
    quorum_service.icmap = icmap;
    let quorum =
        QuorumService::new(quorum_service, me.nodeid, clock.now()).map_err(|e| StartError {
            message: format!("Can't initialize IPC: {e}"),
            code: EXIT_FATAL,
        })?;
    // EVS is refused while the node is inquorate (EVS-CODE-8).
    cpg.set_quorate(quorum.quorate());
    logf!(
        Main,
        Notice,
        "Service engine loaded: corosync extended virtual synchrony service (IPC type {})",
        ipc_type.name()
    );
    // service.c::corosync_service_link_and_init, in corosync's order of the three.
    // cmap is writable (the daemon's icmap); the other two answer from the quorum view.
    for (name, access) in [
        ("corosync configuration map access", ""),
        ("corosync vote quorum service v1.0", ", read-only"),
        ("corosync cluster quorum service v0.1", ", read-only"),
    ] {
        logf!(
            Main,
            Notice,
            "Service engine loaded: {name} (IPC type socket{access})"
        );
    }
    let status = args.status_file.clone().map(StatusFile::new);
    let reporter = Reporter::new(
        ReportConfig {
            token_ms: node_config.srp.token_ms,
            consensus_ms: node_config.srp.consensus_ms,
            token_warning: node_config.srp.token_warning(),
            nodeid: me.nodeid,
            vote,
        },
        clock.now(),
    );
    let mut runtime = Runtime::new(
        clock,
        node_config,
        udpu,
        signals,
        Faults::new(faults),
        reporter,
        state_dir,
    );
    // cfg's NODESTATUSGET: the nodelist's addresses and what the transport says.
    let kind = match &knet {
        Some(k) => NetKind::Knet {
            data_mtu: k.data_mtu as u32,
        },
        None => NetKind::Udpu {
            netmtu: conf.totem.netmtu,
        },
    };
    let mut addrs: BTreeMap<u32, Vec<(u8, std::net::IpAddr)>> = BTreeMap::new();
    for n in &conf.nodes {
        let a = addrs.entry(n.nodeid).or_default();
        a.push((0, n.addr));
        a.extend(n.links.iter().copied());
    }
    runtime.set_senders(Senders::new(
        addrs
            .iter()
            .map(|(n, a)| (*n, a.iter().map(|(_, ip)| *ip).collect())),
    ));
    let net = NetStatus::new(NetView::new(kind, me.nodeid, addrs));
    runtime.set_net_status(net.clone());
    cpg.set_net_status(net);
    if let Some(knet) = knet {
        // Links other than 0 get a socket each at our address on them (link 0 is the
        // token socket's).
        let mut sockets = Vec::new();
        for link in knet.links.iter().map(|l| l.id).filter(|l| *l != 0) {
            let Some(ip) = me.link_addr(link) else {
                continue;
            };
            let local = std::net::SocketAddr::new(ip, conf.totem.link_port(link));
            let socket =
                LinkSocket::bind(link, local, !args.no_udp_gso).map_err(|e| StartError {
                    message: format!("cannot bind the socket of knet link {link}: {e}"),
                    code: EXIT_FATAL,
                })?;
            logf!(
                Totem,
                Notice,
                "knet link {link}: the network interface [{ip}] is now up."
            );
            sockets.push(socket);
        }
        runtime.use_knet(knet);
        runtime.use_knet_links(sockets);
        if let Some(crypto) = conf.totem.crypto.clone() {
            let crypto = LinkCrypto::new(crypto).map_err(|e| StartError {
                message: format!("knet crypto: cannot open /dev/urandom: {e}"),
                code: EXIT_FATAL,
            })?;
            runtime.use_knet_crypto(crypto);
        }
    }
    Ok(Daemon {
        config: conf,
        nodeid: me.nodeid,
        runtime,
        cpg,
        quorum,
        status,
    })
}

/// `totemsrp_initialize`'s debug dump of the timings, in its words.
fn log_timings(c: &totem_srp::SrpConfig) {
    logf!(
        Totem,
        Debug,
        "Token Timeout ({} ms) retransmit timeout ({} ms)",
        c.token_ms,
        c.token_retransmit_ms
    );
    if c.token_warning_percent > 0 {
        logf!(
            Totem,
            Debug,
            "Token warning every {} ms ({}% of Token Timeout)",
            c.token_warning().total_millis(),
            c.token_warning_percent
        );
    } else {
        logf!(Totem, Debug, "Token warnings disabled");
    }
    logf!(
        Totem,
        Debug,
        "token hold ({} ms) retransmits before loss ({} retrans)",
        c.hold_ms,
        c.token_retransmits_before_loss
    );
    logf!(
        Totem,
        Debug,
        "join ({} ms) send_join ({} ms) consensus ({} ms) merge ({} ms)",
        c.join_ms,
        c.send_join_ms,
        c.consensus_ms,
        c.merge_ms
    );
    logf!(
        Totem,
        Debug,
        "downcheck ({} ms) fail to recv const ({} msgs)",
        c.downcheck_ms,
        c.fail_recv_const
    );
    logf!(
        Totem,
        Debug,
        "window size per rotation ({} messages) maximum messages per rotation ({} messages)",
        c.window_size,
        c.max_messages
    );
}

impl Daemon {
    /// Runs, serving CPG (and writing the status file), until a signal (exit code 0) or a
    /// fatal error (its code).
    pub fn run(&mut self) -> i32 {
        let mut sources: Vec<&mut dyn EventSource> = vec![&mut self.cpg, &mut self.quorum];
        if let Some(status) = self.status.as_mut() {
            sources.push(status);
        }
        let exit = self.runtime.run(&mut sources);
        logf!(Main, Info, "{}", self.cpg.ipc_stats());
        logf!(Main, Info, "{}", self.cpg.zero_copy_stats());
        let q = self.quorum.stats();
        logf!(
            Main,
            Info,
            "quorum/votequorum/cmap: {} requests answered, {} clients dropped for bad requests ({})",
            q.requests,
            q.bad_requests,
            self.quorum.ipc_stats()
        );
        let c = self.cpg.stats();
        logf!(
            Main,
            Info,
            "cpg: {} mcasts held back for the ring, {} clients dropped for bad requests, {} events lost, {} requests dropped at shutdown",
            c.held_back,
            c.bad_requests,
            c.events_lost,
            c.dropped_at_shutdown
        );
        let e = self.cpg.evs_stats();
        logf!(
            Main,
            Info,
            "evs: {} clients connected ({} now), {} clients dropped for bad requests, {} events lost, {} requests refused while inquorate",
            e.connected,
            self.cpg.evs_clients(),
            e.bad_requests,
            e.events_lost,
            e.inquorate_refused
        );
        match exit {
            Exit::Signal(_) | Exit::Requested => {
                let s = self.runtime.udpu().stats;
                logf!(
                    Main,
                    Info,
                    "datagrams: {} received, {} sent, {} send errors{}, {} rejected (unlisted), {} truncated, {} forged, {} malformed",
                    s.received,
                    s.sent,
                    s.send_errors,
                    s.last_send_errno
                        .map(|e| format!(" (last: {})", std::io::Error::from_raw_os_error(e)))
                        .unwrap_or_default(),
                    s.rejected_unlisted,
                    s.truncated,
                    self.runtime.stats.forged,
                    self.runtime.stats.malformed
                );
                if let Some(k) = self.runtime.knet().map(|k| k.stats) {
                    logf!(
                        Knet,
                        Info,
                        "knet: {} data packets and {} pings sent, {} pongs counted, {} pongs and PMTUD replies sent, {} messages received, {} datagrams dropped",
                        k.data_sent,
                        k.pings_sent,
                        k.pongs_received,
                        k.replies_sent,
                        k.messages_received,
                        k.dropped
                    );
                }
                for socket in self.runtime.knet_link_sockets() {
                    let s = socket.stats;
                    logf!(
                        Main,
                        Info,
                        "datagrams on knet link {}'s socket: {} received, {} sent, {} send errors, {} truncated",
                        socket.link(),
                        s.received,
                        s.sent,
                        s.send_errors,
                        s.truncated
                    );
                }
                // Per host and link: what went over each (the failover's evidence).
                for h in self
                    .runtime
                    .knet()
                    .map(|k| k.hosts_status())
                    .unwrap_or_default()
                {
                    for l in &h.links {
                        logf!(
                            Knet,
                            Info,
                            "knet: host {} link {}: {} data packets sent, {} received, {} pings sent, {} pongs received, up {} times, down {} times",
                            h.host,
                            l.link,
                            l.stats.tx_data_packets,
                            l.stats.rx_data_packets,
                            l.stats.tx_ping_packets,
                            l.stats.rx_pong_packets,
                            l.stats.up_count,
                            l.stats.down_count
                        );
                    }
                }
                if let Some(c) = self.runtime.knet_crypto() {
                    let c = c.stats;
                    logf!(
                        Knet,
                        Info,
                        "knet crypto: {} datagrams encrypted, {} decrypted, {} dropped ({} bad HMAC, {} malformed)",
                        c.encrypted,
                        c.decrypted,
                        c.dropped(),
                        c.bad_hmac,
                        c.malformed
                    );
                }
                if self.runtime.faults().active() {
                    let f = self.runtime.faults().stats;
                    logf!(
                        Main,
                        Info,
                        "fault injection dropped {} ORF tokens, {} commit tokens, {} MCASTs",
                        f.orf_tokens,
                        f.commit_tokens,
                        f.mcasts
                    );
                }
                logf!(Main, Notice, "totemd exiting normally");
                0
            }
            Exit::Fatal { message, code } => {
                logf!(Main, Error, "{message}");
                code
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The conformance template with three nodes, as the lab renders it.
    fn conf(transport: &str, extra_totem: &str, ipc: &str) -> CorosyncConf {
        let mut nodelist = String::new();
        for n in 1..=3 {
            nodelist.push_str(&format!(
                "\tnode {{\n\t\tring0_addr: 10.200.0.{}\n\t\tnodeid: {n}\n\t}}\n",
                10 + n
            ));
        }
        let text = include_str!("../../../fixtures/corosync/corosync.conf.tmpl")
            .replace("{{transport}}", transport)
            .replace("{{totem_timings}}", extra_totem)
            .replace("{{nodelist}}", &nodelist)
            .replace("{{logfile}}", "/tmp/x/corosync.log")
            .replace("{{state_dir}}", "/tmp/x/state")
            .replace("{{ipc}}", ipc);
        config::parse_str(&text, "corosync.conf").unwrap().config
    }

    fn host(addr: &str) -> LocalHost {
        LocalHost {
            nodename: "n".into(),
            addrs: vec![addr.parse().unwrap()],
        }
    }

    fn args(extra: &[&str]) -> Args {
        Args::try_parse_from(["totemd", "-f"].iter().chain(extra)).unwrap()
    }

    // Reference: totemknet.c::totemknet_member_add (one knet host per other node, one
    // knet link per ringN_addr), totemconfig.c (ip_port = DEFAULT_PORT + linknumber).
    #[test]
    fn a_two_link_knet_plan_has_each_link_with_its_peers_ports_and_keys() {
        let mut text = String::new();
        for n in 1..=3 {
            text.push_str(&format!(
                "\tnode {{\n\t\tring0_addr: 10.200.0.1{n}\n\t\tring1_addr: 10.201.0.1{n}\n\t\tname: n{n}\n\t\tnodeid: {n}\n\t}}\n"
            ));
        }
        let file = include_str!("../../../fixtures/corosync/corosync.conf.tmpl")
            .replace("{{transport}}", "knet")
            .replace(
                "{{totem_timings}}",
                "\tlink_mode: rr\n\tinterface {\n\t\tlinknumber: 1\n\t\tknet_link_priority: 7\n\t}\n",
            )
            .replace("{{nodelist}}", &text)
            .replace("{{logfile}}", "/tmp/x/corosync.log")
            .replace("{{state_dir}}", "/tmp/x/state")
            .replace("{{ipc}}", "shm");
        let conf = config::parse_str(&file, "corosync.conf").unwrap().config;
        let p = plan(&args(&[]), conf, &host("10.200.0.12"), |_| true).unwrap();
        let k = p.knet.expect("knet");
        assert_eq!(k.link_mode, totem_knet::LinkMode::Rr);
        let sa = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        type Link = (
            u8,
            u8,
            Option<std::net::SocketAddr>,
            Vec<(u16, std::net::SocketAddr)>,
        );
        let links: Vec<Link> = k
            .links
            .iter()
            .map(|l| (l.id, l.priority, l.local, l.peers.clone()))
            .collect();
        assert_eq!(
            links,
            vec![
                (
                    0,
                    1,
                    Some(sa("10.200.0.12:5405")),
                    vec![(1, sa("10.200.0.11:5405")), (3, sa("10.200.0.13:5405"))]
                ),
                (
                    1,
                    7,
                    Some(sa("10.201.0.12:5406")),
                    vec![(1, sa("10.201.0.11:5406")), (3, sa("10.201.0.13:5406"))]
                ),
            ]
        );
    }

    #[test]
    fn a_udpu_plan_is_this_nodes_ring_and_services_without_opening_anything() {
        let p = plan(
            &args(&[]),
            conf("udpu", "\ttoken: 1000\n", "socket"),
            &host("10.200.0.12"),
            |_| true,
        )
        .unwrap();
        assert_eq!(p.me.nodeid, 2);
        assert_eq!(p.state_dir, PathBuf::from("/tmp/x/state"));
        assert!(p.knet.is_none());
        assert_eq!(p.ipc_type, ServerIpcType::Socket);
        // token 1000 + the default coefficient of 650 for the third node.
        assert_eq!(p.node.srp.token_ms, 1650);
        assert_eq!(p.node.stored_ring_seq, 0);
        assert_eq!(p.vote.votes.len(), 3);
        assert!(p.vote.provider && !p.vote.two_node);
        assert_eq!(p.faults.drop_mcast_pct, 0);
    }

    #[test]
    fn a_knet_plan_carries_the_link_layers_settings_and_the_command_lines_faults() {
        let p = plan(
            &args(&["--drop-mcast", "5", "--start-seq-near-rollover"]),
            conf("knet", "", "shm"),
            &host("10.200.0.11"),
            |_| true,
        )
        .unwrap();
        let k = p.knet.expect("knet");
        // corosync's defaults on a three-node ring (token 1650): pong count 2, and
        // fragments of 1446 bytes on a 1500-byte path.
        assert_eq!(
            (k.links.len(), k.links[0].pong_count, k.data_mtu),
            (1, 2, 1446)
        );
        assert_eq!(p.ipc_type, ServerIpcType::Shm);
        assert_eq!(p.faults.drop_mcast_pct, 5);
        assert_eq!(p.node.srp.seqno_start, totem_srp::SEQNO_START_NEAR_ROLLOVER);
    }

    #[test]
    fn plan_errors_are_corosyncs_in_its_order() {
        // Not a local address of any node: the config's error.
        let e = plan(
            &args(&[]),
            conf("udpu", "", "shm"),
            &host("192.0.2.1"),
            |_| true,
        )
        .unwrap_err();
        assert_eq!(e.code, EXIT_CONFIG, "{}", e.message);
        // No state directory.
        let e = plan(
            &args(&[]),
            conf("udpu", "", "shm"),
            &host("10.200.0.11"),
            |_| false,
        )
        .unwrap_err();
        assert_eq!(e.code, EXIT_STATE_DIR);
        assert!(e.message.contains("/tmp/x/state"), "{}", e.message);
        // The state directory comes before the timings, as in corosync's start-up.
        let bad = conf("udpu", "\tjoin: 500\n\tconsensus: 400\n", "shm");
        let e = plan(&args(&[]), bad.clone(), &host("10.200.0.11"), |_| false).unwrap_err();
        assert_eq!(e.code, EXIT_STATE_DIR);
        let e = plan(&args(&[]), bad, &host("10.200.0.11"), |_| true).unwrap_err();
        assert_eq!(e.code, EXIT_CONFIG);
        assert!(e.message.contains("consensus"), "{}", e.message);
    }
}
