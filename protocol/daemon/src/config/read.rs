//! The reader and the `totem` and `nodelist` sections: which keys corosync 3.1.7 reads, with the value
//! checks of `coroparse.c::main_config_parser_cb` and `totemconfig.c`.

use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;

use totem_knet::crypto::{
    CryptoCipher, CryptoHash, CryptoModel, KnetCrypto, MAX_KEY_LEN, MIN_KEY_LEN,
};
use totem_knet::{LinkMode, KNET_MAX_LINK};
use totem_srp::SrpConfigBuilder;

use super::reader::{join, Reader, Result};
use super::sections;
use super::{
    generate_nodeid, ConfigError, CorosyncConf, IpVersion, KnetSettings, Loaded, Logging,
    NodeEntry, Priority, Quorum, System, Timestamp, Totem, Transport, UidGid, DEFAULT_KEYFILE,
    DEFAULT_MCASTPORT, DEFAULT_STATE_DIR, KNET_NETMTU, UDP_NETMTU,
};

/// `KNET_MAX_HOST`: knet host ids are 16 bits.
const KNET_MAX_HOST: u32 = 65536;
use crate::conf_parse::{Item, Section};

/// Totem keys that `totem_volatile_config_read` reads as u32, and whether 0 is a value
/// (`allow_zero_value`) rather than "use the default".
const TOTEM_U32_KEYS: &[(&str, bool)] = &[
    ("token", false),
    ("token_coefficient", true),
    ("token_retransmit", false),
    ("token_warning", true),
    ("hold", false),
    ("token_retransmits_before_loss_const", false),
    ("join", false),
    ("send_join", true),
    ("consensus", false),
    ("merge", false),
    ("downcheck", false),
    ("fail_recv_const", false),
    ("seqno_unchanged_const", false),
    ("heartbeat_failures_allowed", true),
    ("max_network_delay", false),
    ("window_size", false),
    ("max_messages", false),
    ("miss_count_const", false),
];

/// Keys corosync reads only for knet (or obsolete since 3.0): accepted, ignored, warned.
/// (`knet_mtu` and `knet_compression_model` are read for knet.)
const TOTEM_KNET_ONLY: &[&str] = &[
    "knet_pmtud_interval",
    "knet_compression_threshold",
    "knet_compression_level",
    "threads",
    "rrp_token_expired_timeout",
    "rrp_problem_count_timeout",
    "rrp_problem_count_threshold",
    "rrp_problem_count_mcast_threshold",
    "rrp_autorecovery_check_timeout",
];

/// Reads the root section of a parsed file.
pub(super) fn read(root: &Section, file: &str) -> Result<Loaded> {
    let mut r = Reader::new(file);
    for item in &root.items {
        r.unknown_key("", item);
    }
    let mut totem_sections = Vec::new();
    let mut node_sections = Vec::new();
    let mut logging = Logging {
        to_stderr: true,
        to_logfile: false,
        logfile: None,
        logfile_priority: Priority::Info,
        debug: false,
        timestamp: Timestamp::Hires,
        debug_subsys: Vec::new(),
    };
    let mut quorum = Quorum::default();
    let mut system = System {
        state_dir: PathBuf::from(DEFAULT_STATE_DIR),
        qb_ipc_type: None,
        sched_rr: true,
    };
    let mut uidgid = UidGid::default();
    for s in &root.sections {
        match s.name.as_str() {
            "totem" => totem_sections.push(s),
            "nodelist" => {
                for item in &s.items {
                    r.unknown_key("nodelist", item);
                }
                for n in &s.sections {
                    if n.name == "node" {
                        node_sections.push(n);
                    } else {
                        r.unknown_section("nodelist", n);
                    }
                }
            }
            "logging" => sections::read_logging(&mut r, s, &mut logging)?,
            "quorum" => sections::read_quorum(&mut r, s, &mut quorum)?,
            "system" => sections::read_system(&mut r, s, &mut system)?,
            "uidgid" => sections::read_uidgid(&r, s, &mut uidgid)?,
            "resources" | "nozzle" | "pload" => {
                r.warn(&s.name, s.line, "ignored: totemd has no such service")
            }
            _ => r.unknown_section("", s),
        }
    }
    let (totem, totem_lines, bindnetaddr) = read_totem(&mut r, &totem_sections)?;
    let nodes = read_nodes(&mut r, &node_sections, &totem)?;
    if let Some(line) = bindnetaddr {
        // totem_config_read: TOTEM_CONFIG_BINDNETADDR_NODELIST_SET.
        r.warn(
            "totem.interface.bindnetaddr",
            line,
            "interface section bindnetaddr is used together with nodelist. Nodelist one is going to be used.",
        );
    }
    // Sections are read in an order of their own: report in file order.
    r.warnings.sort_by_key(|d| d.line);
    Ok(Loaded {
        config: CorosyncConf {
            file: file.to_owned(),
            totem,
            nodes,
            logging,
            quorum,
            system,
            uidgid,
            totem_lines,
            root: root.clone(),
        },
        warnings: r.warnings,
    })
}

type TotemRead = (Totem, Vec<(&'static str, u32)>, Option<u32>);

fn read_totem(r: &mut Reader<'_>, sections: &[&Section]) -> Result<TotemRead> {
    let mut totem = Totem {
        version: 0,
        cluster_name: None,
        config_version: None,
        srp: SrpConfigBuilder::default(),
        netmtu: UDP_NETMTU,
        mcastport: DEFAULT_MCASTPORT,
        ip_version: IpVersion::V6Then4,
        clear_node_high_bit: false,
        transport: Transport::Knet,
        knet: KnetSettings::default(),
        second_link_line: None,
        link_mcastport: [None; KNET_MAX_LINK],
        interface_links: Vec::new(),
        crypto: None,
    };
    let mut netmtu_set = false;
    let mut knet_only: Vec<&Item> = Vec::new();
    let section_line = sections.first().map_or(0, |s| s.line);
    let mut lines: Vec<(&'static str, u32)> = vec![("", section_line)];
    let mut transport: Option<&Item> = None;
    let mut bindnetaddr = None;
    let mut crypto: Vec<&Item> = Vec::new();
    let mut link_mode: Option<&Item> = None;
    for s in sections {
        for item in &s.items {
            let key = item.key.as_str();
            if let Some((name, allow_zero)) = TOTEM_U32_KEYS.iter().find(|(k, _)| *k == key) {
                let v = r.u32("totem", item)?;
                lines.push((name, item.line));
                let v = if v == 0 && !allow_zero { None } else { Some(v) };
                set_timing(&mut totem.srp, name, v);
                if *name == "heartbeat_failures_allowed" && v.is_some_and(|v| v > 0) {
                    return Err(r.error(
                        "totem.heartbeat_failures_allowed",
                        item.line,
                        "the heartbeat is not implemented by totemd; use 0 or leave it out",
                    ));
                }
                continue;
            }
            match key {
                "version" => totem.version = r.u32("totem", item)?,
                "cluster_name" => totem.cluster_name = Some(item.value.clone()),
                "config_version" => {
                    totem.config_version = Some(r.uint("totem", item, u64::MAX)?);
                }
                "transport" => transport = Some(item),
                "netmtu" => {
                    totem.netmtu = r.u32("totem", item)?;
                    netmtu_set = true;
                }
                "knet_mtu" => totem.knet.mtu = Some(r.u32("totem", item)?),
                "knet_compression_model" => knet_only.push(item),
                "link_mode" => link_mode = Some(item),
                "ip_version" => {
                    totem.ip_version = match item.value.as_str() {
                        "ipv4" => IpVersion::V4,
                        "ipv6" => IpVersion::V6,
                        "ipv4-6" => IpVersion::V4Then6,
                        "ipv6-4" => IpVersion::V6Then4,
                        _ => {
                            return Err(r.error("totem.ip_version", item.line, "Invalid ip_version type"))
                        }
                    }
                }
                "crypto_model" | "crypto_cipher" | "crypto_hash" => {
                    // coroparse.c::main_config_parser_cb checks these values as it reads them.
                    check_crypto_value(r, item)?;
                    crypto.push(item);
                }
                "secauth" | "keyfile" | "key" => crypto.push(item),
                "block_unlisted_ips" | "cancel_token_hold_on_retransmit" => {
                    // totem_volatile_config_set_boolean_value: only "yes" and "no" count.
                    let v = match item.value.as_str() {
                        "yes" => Some(true),
                        "no" => Some(false),
                        _ => {
                            r.warn(&join("totem", key), item.line, "neither yes nor no: default used");
                            None
                        }
                    };
                    if key == "block_unlisted_ips" {
                        totem.srp.block_unlisted_ips = v;
                    } else {
                        totem.srp.cancel_token_hold_on_retransmit = v;
                    }
                }
                "clear_node_high_bit" => totem.clear_node_high_bit = item.value == "yes",
                "nodeid" => r.warn(
                    "totem.nodeid",
                    item.line,
                    "nodeid in totem section is deprecated and ignored. Nodelist (or autogenerated) nodeid is going to be used.",
                ),
                k if TOTEM_KNET_ONLY.contains(&k) => knet_only.push(item),
                _ => r.unknown_key("totem", item),
            }
        }
        for sub in &s.sections {
            if sub.name == "interface" {
                read_interface(r, sub, &mut totem, &mut bindnetaddr)?;
            } else {
                r.unknown_section("totem", sub);
            }
        }
    }
    totem.transport = check_transport(r, transport)?;
    totem.crypto = read_crypto(r, &crypto, section_line, totem.transport)?;
    for item in knet_only {
        match (totem.transport, item.key.as_str()) {
            // totem_config_read: any model but "none" turns compression on, which totemd
            // does not implement.
            (Transport::Knet, "knet_compression_model") if item.value != "none" => {
                return Err(r.error(
                    "totem.knet_compression_model",
                    item.line,
                    format!(
                        "knet compression ({}) is not supported by totemd: use none",
                        item.value
                    ),
                ))
            }
            (Transport::Knet, "knet_compression_model") => {}
            (Transport::Knet, _) => r.ignored("totem", item, "not used by totemd's knet"),
            (Transport::Udpu, _) => r.ignored("totem", item, "not used by udpu"),
        }
    }
    match (totem.transport, totem.second_link_line) {
        (Transport::Udpu, Some(line)) => {
            return Err(r.error(
                "totem.interface.linknumber",
                line,
                one_link_only(totem.transport),
            ))
        }
        (Transport::Udpu, None) => {
            if let Some(item) = link_mode {
                r.ignored("totem", item, "not used by udpu");
            }
        }
        (Transport::Knet, _) => {
            if let Some(item) = link_mode {
                // totem_config_validate.
                totem.knet.link_mode = LinkMode::from_name(&item.value).ok_or_else(|| {
                    r.error(
                        "totem.link_mode",
                        item.line,
                        format!(
                            "The Knet link mode \"{}\" specified is invalid.  It must be active, passive or rr.",
                            item.value
                        ),
                    )
                })?;
            }
        }
    }
    if !netmtu_set && totem.transport == Transport::Knet {
        // totem_config_validate: knet's net_mtu is KNET_MAX_PACKET_SIZE; knet fragments.
        totem.netmtu = KNET_NETMTU;
    }
    if totem.version != 2 {
        return Err(r.error(
            "totem.version",
            lines_of(sections, "version").unwrap_or(section_line),
            "This totem parser can only parse version 2 configurations.",
        ));
    }
    Ok((totem, lines, bindnetaddr))
}

fn lines_of(sections: &[&Section], key: &str) -> Option<u32> {
    sections
        .iter()
        .flat_map(|s| &s.items)
        .filter(|i| i.key == key)
        .map(|i| i.line)
        .next_back()
}

fn set_timing(b: &mut SrpConfigBuilder, key: &str, v: Option<u32>) {
    let field = match key {
        "token" => &mut b.token_ms,
        "token_coefficient" => &mut b.token_coefficient_ms,
        "token_retransmit" => &mut b.token_retransmit_ms,
        "token_warning" => &mut b.token_warning_percent,
        "hold" => &mut b.hold_ms,
        "token_retransmits_before_loss_const" => &mut b.token_retransmits_before_loss,
        "join" => &mut b.join_ms,
        "send_join" => &mut b.send_join_ms,
        "consensus" => &mut b.consensus_ms,
        "merge" => &mut b.merge_ms,
        "downcheck" => &mut b.downcheck_ms,
        "fail_recv_const" => &mut b.fail_recv_const,
        "seqno_unchanged_const" => &mut b.seqno_unchanged_const,
        "heartbeat_failures_allowed" => &mut b.heartbeat_failures_allowed,
        "max_network_delay" => &mut b.max_network_delay_ms,
        "window_size" => &mut b.window_size,
        "max_messages" => &mut b.max_messages,
        "miss_count_const" => &mut b.miss_count_const,
        _ => return,
    };
    *field = v;
}

/// Why a second link is refused: corosync's own message for udpu, ours for knet.
fn one_link_only(transport: Transport) -> &'static str {
    match transport {
        Transport::Udpu => "2 is too many configured interfaces for non-Knet transport.",
        Transport::Knet => "totemd's knet runs one link (link 0) only",
    }
}

/// `totem_config_read`: knet is the default transport of 3.x; udp (multicast) is not ours.
fn check_transport(r: &Reader<'_>, transport: Option<&Item>) -> Result<Transport> {
    let Some(item) = transport else {
        return Ok(Transport::Knet);
    };
    match item.value.as_str() {
        "udpu" => Ok(Transport::Udpu),
        "knet" => Ok(Transport::Knet),
        "udp" => Err(r.error(
            "totem.transport",
            item.line,
            "transport udp (multicast) is not supported by totemd: use udpu or knet",
        )),
        _ => Err(r.error(
            "totem.transport",
            item.line,
            "Invalid transport type. Should be udpu, udp or knet",
        )),
    }
}

/// coroparse's checks of the crypto values (`handle_crypto_model` lists the models libknet
/// 1.25 on Debian 12 has: nss and openssl).
fn check_crypto_value(r: &Reader<'_>, item: &Item) -> Result<()> {
    let v = item.value.as_str();
    let (ok, message) = match item.key.as_str() {
        "crypto_model" => (
            CryptoModel::from_name(v).is_some(),
            "Invalid crypto model. Should be nss or openssl",
        ),
        "crypto_cipher" => (
            CryptoCipher::from_name(v).is_some(),
            "Invalid cipher type. Should be none, aes256, aes192 or aes128",
        ),
        _ => (
            CryptoHash::from_name(v).is_some(),
            "Invalid hash type. Should be none, md5, sha1, sha256, sha384 or sha512",
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(r.error(&join("totem", &item.key), item.line, message))
    }
}

/// `totemconfig.c::totem_get_crypto`, `totem_config_keyread` and `totem_config_validate`'s
/// "only knet has crypto", in corosync's order and words. `secauth: on` means
/// aes256/sha256 (any other value changes nothing); `crypto_cipher` and `crypto_hash`
/// override it wherever they stand; the model defaults to nss. With crypto on, the key is
/// `keyfile`'s first 4096 bytes, else `key` (its bytes and the terminating NUL, as cmap
/// stores a string), else /etc/corosync/authkey.
fn read_crypto(
    r: &mut Reader<'_>,
    items: &[&Item],
    section_line: u32,
    transport: Transport,
) -> Result<Option<KnetCrypto>> {
    let last = |key: &str| items.iter().rev().find(|i| i.key == key).copied();
    let model = last("crypto_model")
        .and_then(|i| CryptoModel::from_name(&i.value))
        .unwrap_or_default();
    let mut cipher = (CryptoCipher::None, None::<&Item>);
    let mut hash = (CryptoHash::None, None::<&Item>);
    if let Some(item) = last("secauth") {
        match item.value.as_str() {
            "on" => {
                cipher = (CryptoCipher::Aes256, Some(item));
                hash = (CryptoHash::Sha256, Some(item));
            }
            "off" => {}
            _ => r.warn(
                "totem.secauth",
                item.line,
                "neither on nor off: crypto is not turned on by it",
            ),
        }
    }
    if let Some(item) = last("crypto_cipher") {
        cipher = (
            CryptoCipher::from_name(&item.value).unwrap_or_default(),
            Some(item),
        );
    }
    if let Some(item) = last("crypto_hash") {
        hash = (
            CryptoHash::from_name(&item.value).unwrap_or_default(),
            Some(item),
        );
    }
    // Where a message about the whole setting points: what turned crypto on.
    let (path, line) = cipher
        .1
        .filter(|_| cipher.0 != CryptoCipher::None)
        .or(hash.1.filter(|_| hash.0 != CryptoHash::None))
        .map_or(("totem".to_owned(), section_line), |i| {
            (join("totem", &i.key), i.line)
        });
    if cipher.0 != CryptoCipher::None && hash.0 == CryptoHash::None {
        return Err(r.error(
            &path,
            line,
            "crypto_cipher requires crypto_hash with value other than none",
        ));
    }
    if cipher.0 == CryptoCipher::None && hash.0 == CryptoHash::None {
        // totem_config_keyread returns before reading any key.
        for item in items
            .iter()
            .filter(|i| i.key == "keyfile" || i.key == "key")
        {
            r.ignored("totem", item, "crypto_cipher and crypto_hash are none");
        }
        return Ok(None);
    }
    let key = if let Some(item) = last("keyfile") {
        read_keyfile(r, &item.value, "totem.keyfile", item.line)?
    } else if let Some(item) = last("key") {
        let mut key = item.value.as_bytes().to_vec();
        key.push(0);
        if key.len() > MAX_KEY_LEN {
            return Err(r.error("totem.key", item.line, "key is too long"));
        }
        if key.len() < MIN_KEY_LEN {
            return Err(r.error("totem.key", item.line, "key is too short"));
        }
        key
    } else {
        read_keyfile(r, DEFAULT_KEYFILE, &path, line)?
    };
    if transport != Transport::Knet {
        return Err(r.error(
            &path,
            line,
            "crypto_cipher & crypto_hash are only valid for the Knet transport.",
        ));
    }
    KnetCrypto::new(model, cipher.0, hash.0, &key)
        .map(Some)
        .map_err(|e| r.error(&path, line, e.to_string()))
}

/// `totemconfig.c::read_keyfile`: one read(2) of at most 4096 bytes, at least 128 of them.
fn read_keyfile(r: &Reader<'_>, location: &str, path: &str, line: u32) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::File::open(location).map_err(|e| {
        r.error(
            path,
            line,
            format!("Could not open {location}: {}", strerror(&e)),
        )
    })?;
    let mut key = vec![0; MAX_KEY_LEN];
    let n = file.read(&mut key).map_err(|e| {
        r.error(
            path,
            line,
            format!("Could not read {location}: {}", strerror(&e)),
        )
    })?;
    if n < MIN_KEY_LEN {
        return Err(r.error(
            path,
            line,
            format!(
                "Could only read {} bits of minimum {} bits from {location}.",
                n * 8,
                MIN_KEY_LEN * 8
            ),
        ));
    }
    key.truncate(n);
    Ok(key)
}

/// The C library's text for an error (`qb_strerror_r`), without Rust's " (os error N)".
fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// `totemconfig.c::totem_config_read`'s reading of one `interface` section: its keys
/// belong to the link its `linknumber` names (0 when absent, wherever in the section it
/// stands).
fn read_interface(
    r: &mut Reader<'_>,
    s: &Section,
    totem: &mut Totem,
    bindnetaddr: &mut Option<u32>,
) -> Result<()> {
    const P: &str = "totem.interface";
    let mut link = 0u8;
    if let Some(item) = s.items.iter().rev().find(|i| i.key == "linknumber") {
        let n = r.uint(P, item, u64::from(u8::MAX))?;
        if n >= KNET_MAX_LINK as u64 {
            return Err(r.error(
                "totem.interface.linknumber",
                item.line,
                format!(
                    "parse error in config: interface ring number {n} is bigger than allowed maximum {}",
                    KNET_MAX_LINK - 1
                ),
            ));
        }
        link = n as u8;
        if link != 0 {
            totem.second_link_line.get_or_insert(item.line);
        }
    }
    if !totem.interface_links.contains(&link) {
        totem.interface_links.push(link);
    }
    let keys = &mut totem.knet.interfaces[usize::from(link)];
    for item in &s.items {
        match item.key.as_str() {
            "linknumber" => {}
            "mcastport" => {
                let port = r.uint(P, item, u64::from(u16::MAX))? as u16;
                totem.link_mcastport[usize::from(link)] = Some(port);
                if link == 0 {
                    totem.mcastport = port;
                }
            }
            "bindnetaddr" => *bindnetaddr = Some(item.line),
            "ttl" => {
                if r.uint(P, item, u64::from(u8::MAX))? != 1 {
                    return Err(r.error(
                        "totem.interface.ttl",
                        item.line,
                        "Can only set ttl on multicast transport types for interface 0",
                    ));
                }
            }
            "mcastaddr" | "broadcast" => r.ignored(P, item, "udp (multicast) only"),
            "knet_ping_interval" => keys.ping_interval_ms = Some(r.u32(P, item)?),
            "knet_ping_timeout" => keys.ping_timeout_ms = Some(r.u32(P, item)?),
            "knet_pong_count" => keys.pong_count = Some(r.u32(P, item)?),
            // icmap_get_uint8: the priority is a u8.
            "knet_link_priority" => {
                keys.priority = Some(r.uint(P, item, u64::from(u8::MAX))? as u8);
            }
            "knet_transport" if item.value != "udp" => {
                return Err(r.error(
                    "totem.interface.knet_transport",
                    item.line,
                    format!(
                        "knet transport {} is not supported by totemd: use udp",
                        item.value
                    ),
                ))
            }
            "knet_transport" => {}
            k if k.starts_with("knet_") => r.ignored(P, item, "not used by totemd's knet"),
            _ => r.unknown_key(P, item),
        }
    }
    for sub in &s.sections {
        if sub.name == "member" {
            r.warn(
                "totem.interface.member",
                sub.line,
                "ignored: member section is deprecated, the nodelist is used",
            );
        } else {
            r.unknown_section(P, sub);
        }
    }
    Ok(())
}

fn read_nodes(r: &mut Reader<'_>, sections: &[&Section], totem: &Totem) -> Result<Vec<NodeEntry>> {
    const P: &str = "nodelist.node";
    let mut nodes: Vec<NodeEntry> = Vec::new();
    for s in sections {
        let mut ring0: Option<&Item> = None;
        let mut rings: Vec<(u8, &Item)> = Vec::new();
        let mut nodeid = None;
        let mut name = None;
        let mut votes = 1;
        for item in &s.items {
            match item.key.as_str() {
                "ring0_addr" => ring0 = Some(item),
                "nodeid" => nodeid = Some(r.u32(P, item)?),
                "name" => name = Some(item.value.clone()),
                "quorum_votes" => votes = r.u32(P, item)?,
                k if ring_number(k).is_some() => {
                    let n = ring_number(k).unwrap_or(0);
                    if totem.transport != Transport::Knet {
                        return Err(r.error(
                            &join(P, k),
                            item.line,
                            one_link_only(totem.transport),
                        ));
                    }
                    if n >= KNET_MAX_LINK as u64 {
                        return Err(r.error(
                            &join(P, k),
                            item.line,
                            format!(
                                "parse error in config: interface ring number {n} is bigger than allowed maximum {}",
                                KNET_MAX_LINK - 1
                            ),
                        ));
                    }
                    rings.retain(|(l, _)| u64::from(*l) != n);
                    rings.push((n as u8, item));
                }
                _ => r.unknown_key(P, item),
            }
        }
        for sub in &s.sections {
            r.unknown_section(P, sub);
        }
        let Some(ring0) = ring0 else {
            return Err(r.error(
                "nodelist.node.ring0_addr",
                s.line,
                "missing: udpu needs every node's ring0_addr",
            ));
        };
        let addr = resolve(&ring0.value, totem.ip_version).ok_or_else(|| {
            r.error(
                "nodelist.node.ring0_addr",
                ring0.line,
                format!("cannot resolve \"{}\"", ring0.value),
            )
        })?;
        let nodeid = match nodeid {
            Some(id) if id != 0 => id,
            // put_nodelist_members_to_config: knet needs them written out.
            _ if totem.transport == Transport::Knet => {
                return Err(r.error(
                    "nodelist.node.nodeid",
                    s.line,
                    format!(
                        "Knet requires an explicit nodeid to be specified for address '{}'.",
                        ring0.value
                    ),
                ))
            }
            // udpu generates the missing ones.
            _ => generate_nodeid(addr, totem.clear_node_high_bit).ok_or_else(|| {
                r.error(
                    "nodelist.node.nodeid",
                    s.line,
                    format!(
                        "An IPV6 network requires that a node ID be specified for address '{}'.",
                        ring0.value
                    ),
                )
            })?,
        };
        if totem.transport == Transport::Knet && nodeid >= KNET_MAX_HOST {
            return Err(r.error(
                "nodelist.node.nodeid",
                s.line,
                format!(
                    "Knet requires nodeid to be less than {KNET_MAX_HOST} for address '{}'.",
                    ring0.value
                ),
            ));
        }
        // check_for_duplicate_nodeids.
        if nodes.iter().any(|n| n.nodeid == nodeid) {
            return Err(r.error(
                "nodelist.node.nodeid",
                s.line,
                format!("Nodeid {nodeid} appears twice in corosync.conf"),
            ));
        }
        let mut links = Vec::with_capacity(rings.len());
        for (n, item) in rings {
            let a = resolve(&item.value, totem.ip_version).ok_or_else(|| {
                r.error(
                    &join(P, &item.key),
                    item.line,
                    format!("cannot resolve \"{}\"", item.value),
                )
            })?;
            links.push((n, a));
        }
        links.sort_by_key(|(n, _)| *n);
        nodes.push(NodeEntry {
            line: s.line,
            ring0_addr: ring0.value.clone(),
            addr,
            nodeid,
            name,
            quorum_votes: votes,
            links,
        });
    }
    if nodes.is_empty() {
        return Err(ConfigError::Invalid(
            "No interfaces defined (udpu needs a nodelist)".into(),
        ));
    }
    check_links(r, &nodes, totem)?;
    Ok(nodes)
}

/// `totem_config_validate` on several links: a link is configured by an `interface`
/// section or a `ring<N>_addr`; with more than one, every node needs a `name` and every
/// link an address of every node; and one link's addresses are of one IP family.
fn check_links(r: &Reader<'_>, nodes: &[NodeEntry], totem: &Totem) -> Result<()> {
    let mut configured: Vec<u8> = totem.interface_links.clone();
    for n in nodes {
        configured.extend(n.link_ids());
    }
    configured.sort_unstable();
    configured.dedup();
    if configured.len() <= 1 {
        return Ok(());
    }
    let line = nodes[0].line;
    if let Some(n) = nodes.iter().find(|n| n.name.is_none()) {
        return Err(r.error(
            "nodelist.node.name",
            n.line,
            "for a multi-link configuration, all nodes must have a 'name' attribute",
        ));
    }
    for link in &configured {
        let addrs: Vec<IpAddr> = nodes.iter().filter_map(|n| n.link_addr(*link)).collect();
        if addrs.len() != nodes.len() {
            return Err(r.error(
                "nodelist.node",
                line,
                "Not all nodes have the same number of links",
            ));
        }
        if let Some(other) = addrs.iter().find(|a| a.is_ipv4() != addrs[0].is_ipv4()) {
            return Err(r.error(
                "nodelist.node",
                line,
                format!(
                    "Nodes for link {link} have different IP families (compared {other} with {})",
                    addrs[0]
                ),
            ));
        }
    }
    Ok(())
}

/// `N` of a `ring<N>_addr` key.
fn ring_number(key: &str) -> Option<u64> {
    let n = key.strip_prefix("ring")?.strip_suffix("_addr")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(n.parse().unwrap_or(u64::MAX))
}

/// `totemip_parse` with the `ip_version` preference: literals first, then the resolver.
fn resolve(host: &str, pref: IpVersion) -> Option<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    let all: Vec<IpAddr> = (host, 0).to_socket_addrs().ok()?.map(|a| a.ip()).collect();
    let v4 = all.iter().find(|a| a.is_ipv4()).copied();
    let v6 = all.iter().find(|a| a.is_ipv6()).copied();
    match pref {
        IpVersion::V4 => v4,
        IpVersion::V6 => v6,
        IpVersion::V4Then6 => v4.or(v6),
        IpVersion::V6Then4 => v6.or(v4),
    }
}
