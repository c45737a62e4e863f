//! corosync.conf as totemd understands it: the grammar of `exec/coroparse.c`
//! ([`crate::conf_parse`]), then the sections corosync 3.1.7 reads into typed values, with
//! corosync's own checks (`exec/totemconfig.c::totem_config_read` / `_validate`,
//! `exec/logconfig.c`).
//!
//! Every key corosync 3.1.7 does not know is a warning naming file, line and key. A key
//! totemd cannot honour without behaving differently from what the file asks of the ring
//! (knet compression, a second link, qdevice, the heartbeat) is an error naming file, line
//! and key. knet crypto is honoured: the key file is read here, as `totem_config_read`
//! reads it (`totem_config_keyread`). Keys that only change what corosync itself does locally and that totemd does not do
//! (syslog, cgroups, the blackbox) are warnings saying they are ignored.

mod local_node;
mod read;
mod reader;
mod sections;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use totem_cpg::NodeConfig;
use totem_srp::SrpConfigBuilder;

pub use local_node::{find_local_node, generate_nodeid, LocalHost};
/// knet's crypto configuration, as `totem.crypto_*` and the key give it.
pub use totem_knet::crypto::KnetCrypto;
/// The knet keys totemd honours: the link layer's own settings, so that the simulator
/// derives a knet ring's timers as totemd does.
pub use totem_knet::{KnetInterface, KnetSettings, LinkMode};

/// `COROSYSCONFDIR "/authkey"`: the key file read when neither `totem.keyfile` nor
/// `totem.key` is set.
pub const DEFAULT_KEYFILE: &str = "/etc/corosync/authkey";
/// `DEFAULT_PORT`.
pub const DEFAULT_MCASTPORT: u16 = 5405;
/// `UDP_NETMTU`: udpu's netmtu when the file sets none.
pub const UDP_NETMTU: u32 = 1500;
/// knet's netmtu when the file sets none: `KNET_MAX_PACKET_SIZE` (`totem_config_validate`).
pub const KNET_NETMTU: u32 = 65536;
/// corosync's compiled-in `COROSYSCONFDIR "/corosync.conf"`.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/corosync/corosync.conf";
/// `util.c::get_state_dir`'s default (`LOCALSTATEDIR "/lib/corosync"`).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/corosync";

/// One finding at a place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file.
    pub file: String,
    /// 1-based line (the section's line for a missing key).
    pub line: u32,
    /// The key's cmap-style path, e.g. `totem.transport`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.key, self.message
        )
    }
}

/// Why a configuration cannot be used.
#[derive(Debug)]
pub enum ConfigError {
    /// The file cannot be read.
    Io {
        /// The file.
        file: String,
        /// The error.
        error: std::io::Error,
    },
    /// coroparse would refuse the syntax.
    Syntax {
        /// The file.
        file: String,
        /// Where and why.
        error: crate::conf_parse::SyntaxError,
    },
    /// A key corosync refuses, or that totemd cannot honour.
    Key(Diagnostic),
    /// A whole-file check failed (`totem_config_validate`'s messages).
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { file, error } => write!(f, "cannot read {file}: {error}"),
            // coroparse.c's own format: "parser error: %s:%u: %s".
            ConfigError::Syntax { file, error } => {
                write!(f, "parser error: {file}:{}: {}", error.line, error.message)
            }
            ConfigError::Key(d) => write!(f, "{d}"),
            ConfigError::Invalid(m) => write!(f, "parse error in config: {m}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// `totem.ip_version`: the resolution order of host names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    /// `ipv4`.
    V4,
    /// `ipv6`.
    V6,
    /// `ipv4-6`: IPv4 first.
    V4Then6,
    /// `ipv6-4` (the default for udpu and knet): IPv6 first.
    V6Then4,
}

/// The `totem { }` section.
#[derive(Debug, Clone)]
pub struct Totem {
    /// `version` (must be 2).
    pub version: u32,
    /// `cluster_name`.
    pub cluster_name: Option<String>,
    /// `config_version`.
    pub config_version: Option<u64>,
    /// The timing and flow-control keys, fed to `totem_srp`'s derivation unchanged.
    pub srp: SrpConfigBuilder,
    /// `netmtu` (udpu default 1500).
    pub netmtu: u32,
    /// `interface.mcastport`.
    pub mcastport: u16,
    /// `ip_version`.
    pub ip_version: IpVersion,
    /// `clear_node_high_bit`.
    pub clear_node_high_bit: bool,
    /// `transport` (knet when not set, as in corosync 3).
    pub transport: Transport,
    /// knet's settings (used with `transport: knet`).
    pub knet: KnetSettings,
    /// Where an `interface` with a linknumber other than 0 is (refused for udpu once the
    /// transport is known).
    pub second_link_line: Option<u32>,
    /// Each link's `interface.mcastport`, when its section sets one (link 0's is also
    /// `mcastport`); else corosync's `DEFAULT_PORT + linknumber`.
    pub link_mcastport: [Option<u16>; totem_knet::KNET_MAX_LINK],
    /// The link numbers that have an `interface` section.
    pub interface_links: Vec<u8>,
    /// knet's crypto (`crypto_model`, `crypto_cipher`, `crypto_hash`, `secauth`, the key):
    /// `None` when cipher and hash are both none, as corosync runs knet without crypto.
    pub crypto: Option<KnetCrypto>,
}

/// `totem.transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `udpu`.
    Udpu,
    /// `knet` (compression off, up to `KNET_MAX_LINK` links; crypto as `totem.crypto_*`
    /// say).
    Knet,
}

/// One `nodelist { node { } }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    /// Where the `node {` line is.
    pub line: u32,
    /// `ring0_addr` as written.
    pub ring0_addr: String,
    /// `ring0_addr` resolved.
    pub addr: IpAddr,
    /// `nodeid`, or the one corosync generates from an IPv4 ring0_addr.
    pub nodeid: u32,
    /// `name`.
    pub name: Option<String>,
    /// `quorum_votes` (default 1).
    pub quorum_votes: u32,
    /// `ring1_addr` … `ring7_addr` (knet's further links): (link number, resolved
    /// address), by link number.
    pub links: Vec<(u8, IpAddr)>,
}

impl NodeEntry {
    /// The node's address on link `link` (`ring<link>_addr`).
    pub fn link_addr(&self, link: u8) -> Option<IpAddr> {
        if link == 0 {
            return Some(self.addr);
        }
        self.links.iter().find(|(l, _)| *l == link).map(|(_, a)| *a)
    }

    /// Its link numbers, link 0 first.
    pub fn link_ids(&self) -> Vec<u8> {
        std::iter::once(0)
            .chain(self.links.iter().map(|(l, _)| *l))
            .collect()
    }
}

impl Totem {
    /// Link `link`'s port: its `interface.mcastport`, else `DEFAULT_PORT + link`
    /// (`totemconfig.c::totem_config_read`'s `ip_port`).
    pub fn link_port(&self, link: u8) -> u16 {
        if link == 0 {
            return self.mcastport;
        }
        self.link_mcastport
            .get(usize::from(link))
            .copied()
            .flatten()
            .unwrap_or(DEFAULT_MCASTPORT.wrapping_add(u16::from(link)))
    }
}

/// A priority of `logging` (libqb's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// `emerg` .. `err`.
    Error,
    /// `warning`.
    Warning,
    /// `notice`.
    Notice,
    /// `info`.
    Info,
    /// `debug` (and `trace`).
    Debug,
}

/// `logging.timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamp {
    /// `off`.
    Off,
    /// `on`: `%t`, seconds.
    On,
    /// `hires` (the default where libqb has it, as Debian's does): `%T`, milliseconds.
    Hires,
}

/// The `logging { }` section.
#[derive(Debug, Clone)]
pub struct Logging {
    /// `to_stderr` (default yes).
    pub to_stderr: bool,
    /// `to_logfile` (default no).
    pub to_logfile: bool,
    /// `logfile`.
    pub logfile: Option<PathBuf>,
    /// `logfile_priority` (default info).
    pub logfile_priority: Priority,
    /// `debug: on|trace`.
    pub debug: bool,
    /// `timestamp`.
    pub timestamp: Timestamp,
    /// `logger_subsys { subsys: X debug: on }`: subsystems with debug on.
    pub debug_subsys: Vec<String>,
}

/// The `quorum { }` section.
#[derive(Debug, Clone, Default)]
pub struct Quorum {
    /// `provider`.
    pub provider: Option<String>,
    /// `expected_votes`.
    pub expected_votes: Option<u32>,
    /// `two_node`.
    pub two_node: bool,
    /// `wait_for_all`, when set (votequorum defaults it to `two_node`).
    pub wait_for_all: Option<bool>,
}

/// The `system { }` section.
#[derive(Debug, Clone)]
pub struct System {
    /// `state_dir`.
    pub state_dir: PathBuf,
    /// `qb_ipc_type`.
    pub qb_ipc_type: Option<String>,
    /// `sched_rr` (default yes): run at SCHED_RR's highest priority, as corosync does.
    pub sched_rr: bool,
}

/// The `uidgid { }` section: users and groups allowed to use the IPC.
#[derive(Debug, Clone, Default)]
pub struct UidGid {
    /// `uid` entries as written.
    pub uids: Vec<String>,
    /// `gid` entries as written.
    pub gids: Vec<String>,
}

impl UidGid {
    /// The numeric ids, each entry a number or a name looked up as `coroparse.c`'s
    /// `uid_determine` / `gid_determine` do; the error is theirs for an unknown name.
    pub fn resolve(&self) -> Result<(Vec<u32>, Vec<u32>), String> {
        fn one(kind: crate::sys::IdKind, entry: &str) -> Result<u32, String> {
            if let Ok(id) = entry.parse::<u32>() {
                return Ok(id);
            }
            let (what, file) = match kind {
                crate::sys::IdKind::User => ("user", "/etc/passwd"),
                crate::sys::IdKind::Group => ("group", "/etc/group"),
            };
            match crate::sys::id_by_name(kind, entry) {
                Ok(Some(id)) => Ok(id),
                Ok(None) => Err(format!(
                    "The '{entry}' {what} is not found in {file}, please read the documentation."
                )),
                Err(e) => Err(format!("looking up {what} '{entry}': {e}")),
            }
        }
        let uids = self
            .uids
            .iter()
            .map(|u| one(crate::sys::IdKind::User, u))
            .collect::<Result<_, _>>()?;
        let gids = self
            .gids
            .iter()
            .map(|g| one(crate::sys::IdKind::Group, g))
            .collect::<Result<_, _>>()?;
        Ok((uids, gids))
    }
}

/// A whole corosync.conf.
#[derive(Debug, Clone)]
pub struct CorosyncConf {
    /// The file it came from.
    pub file: String,
    /// `totem { }`.
    pub totem: Totem,
    /// `nodelist { }`, in file order.
    pub nodes: Vec<NodeEntry>,
    /// `logging { }`.
    pub logging: Logging,
    /// `quorum { }`.
    pub quorum: Quorum,
    /// `system { }`.
    pub system: System,
    /// `uidgid { }`.
    pub uidgid: UidGid,
    /// Where the `totem {` line is, and each totem timing key (for messages).
    pub(crate) totem_lines: Vec<(&'static str, u32)>,
    /// The file as parsed (every key, for cmap: `coroparse.c` stores them all).
    pub root: crate::conf_parse::Section,
}

/// A parsed file and what it warned about.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: CorosyncConf,
    /// Unknown or ignored keys, in file order.
    pub warnings: Vec<Diagnostic>,
}

/// Reads and checks a file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Io {
        file: file.clone(),
        error,
    })?;
    parse_str(&text, &file)
}

/// Parses and checks the text of a file named `file`.
pub fn parse_str(text: &str, file: &str) -> Result<Loaded, ConfigError> {
    let root = crate::conf_parse::parse(text).map_err(|error| ConfigError::Syntax {
        file: file.to_owned(),
        error,
    })?;
    read::read(&root, file)
}

impl CorosyncConf {
    /// The node with `nodeid`.
    pub fn node(&self, nodeid: u32) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.nodeid == nodeid)
    }

    /// Which nodelist entry is this host (`find_local_node`), unless `nodeid` says.
    pub fn local_node(
        &self,
        nodeid: Option<u32>,
        host: &LocalHost,
    ) -> Result<&NodeEntry, ConfigError> {
        if let Some(id) = nodeid {
            return self.node(id).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "nodeid {id} (from --nodeid) is not in the nodelist"
                ))
            });
        }
        find_local_node(&self.nodes, host)
            .and_then(|i| self.nodes.get(i))
            .ok_or_else(|| ConfigError::Invalid("No valid name found for local host".into()))
    }

    /// `quorum.expected_votes`, else the nodelist's votes (votequorum's default).
    pub fn expected_votes(&self) -> u32 {
        self.quorum
            .expected_votes
            .unwrap_or_else(|| self.nodes.iter().map(|n| n.quorum_votes).sum())
    }

    /// The engine's configuration for `nodeid`, the timings derived by `totem_srp` from the
    /// totem keys and the nodelist size exactly as `totem_volatile_config_read` does.
    pub fn node_config(
        &self,
        nodeid: u32,
        stored_ring_seq: u64,
    ) -> Result<NodeConfig, ConfigError> {
        let mut builder = self.totem.srp.clone();
        builder.node_count = self.nodes.len() as u32;
        let srp = builder.build().map_err(|e| {
            let line = self
                .totem_lines
                .iter()
                .find(|(k, _)| *k == e.key)
                .or_else(|| self.totem_lines.iter().find(|(k, _)| k.is_empty()))
                .map_or(0, |(_, l)| *l);
            ConfigError::Key(Diagnostic {
                file: self.file.clone(),
                line,
                key: format!("totem.{}", e.key),
                message: e.reason,
            })
        })?;
        Ok(NodeConfig {
            nodeid,
            srp,
            net_mtu: self.totem.netmtu as usize,
            stored_ring_seq,
            nodeinfo: totem_cpg::OwnNodeInfo::new(self.expected_votes()),
        })
    }
}
