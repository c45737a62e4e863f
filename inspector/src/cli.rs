//! Command-line arguments (clap) and their validation into a [`Config`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::filter::{normalise_type, Filter};

/// Decode captures of corosync's Totem protocol (udpu and knet, corosync 3.x) down to CPG.
#[derive(Debug, Parser)]
#[command(name = "totem-inspect", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode frames: one line each, a field tree (--verbose), or JSON lines.
    Decode(DecodeArgs),
    /// Summarise a capture: membership timeline, token rotation, retransmits, traffic per
    /// service and CPG group, anomalies.
    Stats(StatsArgs),
    /// Run a command and record its libqb IPC (libcpg <-> corosync, libevs <-> totemd) into
    /// a pcapng file that `decode` and `stats` read.
    RecordIpc(crate::ipc::record::RecordIpcArgs),
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// JSON (one object per frame for `decode`, one document for `stats`).
    Json,
}

/// Options shared by the subcommands.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// pcap or pcapng files.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Also treat UDP traffic on PORT as corosync's (5405 always is); datagrams on these
    /// ports that are neither totem nor knet are reported as errors.
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// knet crypto: how to open encrypted knet packets.
#[derive(Debug, Args)]
#[command(next_help_heading = "knet crypto")]
pub struct CryptoArgs {
    /// corosync's key file (the authkey): decrypt knet packets with it. Without
    /// --crypto-cipher/--crypto-hash they are detected from the first packet that
    /// verifies (the hash by its HMAC, the cipher by its padding and the knet header
    /// inside). Without any key, encrypted knet packets are reported as such
    /// (layer knet-crypto), not decoded; with crypto_cipher none (hash only) packets are
    /// clear knet and decode, the unverified HMAC left at their end.
    #[arg(long, value_name = "FILE")]
    pub authkey: Option<PathBuf>,
    /// A corosync.conf: its totem keyfile (relative to the conf's directory) and
    /// crypto_model/crypto_cipher/crypto_hash/secauth, with corosync's defaults.
    #[arg(long = "keyfile", visible_alias = "corosync-conf", value_name = "CONF")]
    pub conf: Option<PathBuf>,
    /// nss or openssl. Not visible on the wire and not needed: both models put the same
    /// bytes on the wire.
    #[arg(long, value_name = "MODEL")]
    pub crypto_model: Option<String>,
    /// aes256, aes192, aes128 or none (detected when not given).
    #[arg(long, value_name = "CIPHER")]
    pub crypto_cipher: Option<String>,
    /// sha1, sha256, sha384, sha512, md5 or none (detected when not given).
    #[arg(long, value_name = "HASH")]
    pub crypto_hash: Option<String>,
}

impl CryptoArgs {
    fn resolve(&self) -> Result<Option<crate::knet_crypto::CryptoSetting>, String> {
        crate::knet_crypto::CryptoSetting::resolve(&crate::knet_crypto::CryptoOptions {
            authkey: self.authkey.clone(),
            conf: self.conf.clone(),
            model: self.crypto_model.clone(),
            cipher: self.crypto_cipher.clone(),
            hash: self.crypto_hash.clone(),
        })
    }
}

/// `decode` options.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// Files, ports, format.
    #[command(flatten)]
    pub input: InputArgs,
    /// Capture live on this interface instead of reading files (needs CAP_NET_RAW).
    #[arg(long, short = 'i', value_name = "IF", conflicts_with = "files")]
    pub interface: Option<String>,
    /// Stop after this many frames (handy with --interface).
    #[arg(long, short = 'c', value_name = "N")]
    pub count: Option<u64>,
    /// Show every field, and the frames each reassembled message came from.
    #[arg(long, short = 'V')]
    pub verbose: bool,
    /// Only frames from or about this nodeid (repeatable).
    #[arg(long = "node", value_name = "NODEID")]
    pub nodes: Vec<u32>,
    /// Only this totem message type: token, mcast, join, commit, merge, hold-cancel, or
    /// corosync's name (ORF_TOKEN ...). Repeatable.
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Only frames that complete a message of this service (CPG, SYNC, CMAP, VOTEQUORUM,
    /// CFG, PLOAD, EVS; `evs` also keeps corosync 1.x's EVS). Repeatable.
    #[arg(long = "service", value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Only frames that complete a CPG message about this group, or an EVS message to this
    /// group key (as the views print it). Repeatable.
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// knet crypto.
    #[command(flatten)]
    pub crypto: CryptoArgs,
}

/// `stats` options.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Files, ports, format.
    #[command(flatten)]
    pub input: InputArgs,
    /// The cluster's token timeout in ms: longer gaps between tokens are anomalies.
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    pub token_ms: u64,
    /// knet crypto.
    #[command(flatten)]
    pub crypto: CryptoArgs,
}

/// Where frames come from.
#[derive(Debug, Clone)]
pub enum Input {
    /// Files, in order.
    Files(Vec<PathBuf>),
    /// A live interface.
    Live(String),
}

/// Which view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// One line per frame.
    Summary,
    /// Field tree.
    Verbose,
    /// JSON lines.
    Json,
    /// Aggregates, as text.
    StatsText,
    /// Aggregates, as JSON.
    StatsJson,
}

/// The validated configuration `run` works from.
#[derive(Debug, Clone)]
pub struct Config {
    /// Input.
    pub input: Input,
    /// Extra ports.
    pub ports: Vec<u16>,
    /// View.
    pub view: View,
    /// Filter (decode only).
    pub filter: Filter,
    /// Frame limit.
    pub count: Option<u64>,
    /// Token timeout for stats.
    pub token_ms: u64,
    /// Key and settings to open encrypted knet packets with.
    pub knet_crypto: Option<crate::knet_crypto::CryptoSetting>,
}

impl Config {
    /// Validates the parsed arguments.
    pub fn from_cli(cli: Cli) -> Result<Config, String> {
        match cli.command {
            Command::Decode(args) => {
                let input = match (&args.interface, args.input.files.is_empty()) {
                    (Some(interface), true) => Input::Live(interface.clone()),
                    (None, false) => Input::Files(args.input.files.clone()),
                    (None, true) => return Err("decode needs a FILE or --interface".into()),
                    (Some(_), false) => return Err("give FILEs or --interface, not both".into()),
                };
                let mut types = Vec::new();
                for t in &args.types {
                    match normalise_type(t) {
                        Some(totem) => types.push(totem),
                        // IPC recordings are filtered by message name instead.
                        None if totem_wire::ipc::cpg::is_message_name(t)
                            || crate::evs::is_ipc_message_name(t) => {}
                        None => return Err(format!(
                            "unknown --type {t:?}: use token, mcast, join, commit, merge or hold-cancel (or an IPC message name such as JOIN, DELIVER)"
                        )),
                    }
                }
                let view = match (args.input.format, args.verbose) {
                    (Format::Json, _) => View::Json,
                    (Format::Text, true) => View::Verbose,
                    (Format::Text, false) => View::Summary,
                };
                Ok(Config {
                    input,
                    ports: args.input.ports,
                    view,
                    filter: Filter {
                        nodes: args.nodes,
                        types,
                        services: args
                            .services
                            .iter()
                            .map(|s| s.to_ascii_uppercase())
                            .collect(),
                        groups: args.groups.iter().map(|g| canonical_group(g)).collect(),
                        evs_keys: args
                            .groups
                            .iter()
                            .filter_map(|g| crate::evs::key_from_text(g))
                            .collect(),
                        ipc_types: args.types.iter().map(|t| t.to_ascii_uppercase()).collect(),
                    },
                    count: args.count,
                    token_ms: 3000,
                    knet_crypto: args.crypto.resolve()?,
                })
            }
            Command::RecordIpc(_) => {
                Err("record-ipc runs a command; call totem_inspect::ipc::record::run".into())
            }
            Command::Stats(args) => {
                if args.input.files.is_empty() {
                    return Err("stats needs at least one FILE".into());
                }
                Ok(Config {
                    input: Input::Files(args.input.files),
                    ports: args.input.ports,
                    view: match args.input.format {
                        Format::Json => View::StatsJson,
                        Format::Text => View::StatsText,
                    },
                    filter: Filter::default(),
                    count: None,
                    token_ms: args.token_ms,
                    knet_crypto: args.crypto.resolve()?,
                })
            }
        }
    }
}

/// A `--group` as the views print names (`escape_name`: printable ASCII, `\\`, `\xNN`), so a
/// name may be given with any byte spelled `\xNN` (`--group 'a\x00b'`, or `\x41` for `A`)
/// and still match. Text that is not valid escaped notation is kept as typed.
fn canonical_group(text: &str) -> String {
    totem_wire::exec::cpg::unescape_name(text).map_or_else(
        |_| text.to_string(),
        |bytes| totem_wire::exec::cpg::escape_name(&bytes),
    )
}
