//! corosync.conf files as corosync 3.1.7 reads them: real ones (Debian's shipped file, the
//! conformance backend's template), warnings and errors with file and line, the nodeid of
//! this host, and the timings handed to the engine.

use std::net::IpAddr;

use totemd::config::{
    parse_str, ConfigError, KnetInterface, KnetSettings, LinkMode, LocalHost, Priority, Timestamp,
    Transport,
};

/// `/etc/corosync/corosync.conf` of Debian 12's corosync 3.1.7-1+deb12u2, comments and all.
const DEBIAN_DEFAULT: &str = "# Please read the corosync.conf.5 manual page
totem {
\tversion: 2

\t# Corosync itself works without a cluster name, but DLM needs one.
\tcluster_name: debian

\t# crypto works only with knet transport
\tcrypto_cipher: none
\tcrypto_hash: none
}

logging {
\tfileline: off
\tto_stderr: yes
\tto_logfile: yes
\tlogfile: /var/log/corosync/corosync.log
\tto_syslog: yes
\tdebug: off
\t#timestamp: hires
\tlogger_subsys {
\t\tsubsys: QUORUM
\t\tdebug: off
\t}
}

quorum {
\tprovider: corosync_votequorum
}

nodelist {
\tnode {
\t\tname: node1
\t\tnodeid: 1
\t\tring0_addr: 127.0.0.1
\t\t#ring1_addr: 192.168.1.1
\t}
}
";

fn host(addrs: &[&str]) -> LocalHost {
    LocalHost {
        nodename: "not-in-any-nodelist".into(),
        addrs: addrs.iter().map(|a| a.parse::<IpAddr>().unwrap()).collect(),
    }
}

fn key_error(r: Result<totemd::config::Loaded, ConfigError>) -> (u32, String, String) {
    match r {
        Err(ConfigError::Key(d)) => (d.line, d.key, d.message),
        other => panic!("expected a key error, got {other:?}"),
    }
}

// Reference: totemconfig.c::totem_config_read — TOTEM_TRANSPORT_KNET is the default.
#[test]
fn debians_default_file_is_knet_with_knets_netmtu() {
    let c = parse_str(DEBIAN_DEFAULT, "corosync.conf").unwrap().config;
    assert_eq!(c.totem.transport, Transport::Knet);
    // totem_config_validate: knet's net_mtu is KNET_MAX_PACKET_SIZE.
    assert_eq!(c.totem.netmtu, 65536);
    assert_eq!(c.totem.knet, KnetSettings::default());
}

// Reference: totemconfig.c (knet needs explicit nodeids below KNET_MAX_HOST), spec §1.2;
// what totemd's knet cannot do (compression, sctp) is an error.
#[test]
fn knet_keys_are_read_and_what_totemds_knet_cannot_do_is_refused() {
    let base = rendered_template(2, "").replacen("transport: udpu", "transport: knet", 1);
    let text = base.replacen(
        "cluster_name: totem-conform",
        "cluster_name: x\n\tknet_mtu: 1400\n\tknet_compression_model: none\n\tinterface {\n\t\tlinknumber: 0\n\t\tknet_ping_interval: 200\n\t\tknet_ping_timeout: 900\n\t\tknet_pong_count: 3\n\t\tknet_transport: udp\n\t}",
        1,
    );
    let c = parse_str(&text, "c").unwrap().config;
    assert_eq!(c.totem.transport, Transport::Knet);
    let mut expected = KnetSettings {
        mtu: Some(1400),
        ..KnetSettings::default()
    };
    expected.interfaces[0] = KnetInterface {
        ping_interval_ms: Some(200),
        ping_timeout_ms: Some(900),
        pong_count: Some(3),
        priority: None,
    };
    assert_eq!(c.totem.knet, expected);
    let cases = [
        (
            "cluster_name: totem-conform",
            "cluster_name: x\n\tknet_compression_model: zlib",
            "totem.knet_compression_model",
            "compression",
        ),
        (
            "nodeid: 2",
            "nodeid: 70000",
            "nodelist.node.nodeid",
            "Knet requires nodeid to be less than 65536",
        ),
        (
            "\t\tnodeid: 2\n",
            "",
            "nodelist.node.nodeid",
            "Knet requires an explicit nodeid",
        ),
        (
            "ring0_addr: 10.200.0.12",
            "ring0_addr: 10.200.0.12\n\t\tring8_addr: 10.1.0.12",
            "nodelist.node.ring8_addr",
            "bigger than allowed maximum 7",
        ),
        (
            "cluster_name: totem-conform",
            "cluster_name: x\n\tinterface {\n\t\tlinknumber: 8\n\t}",
            "totem.interface.linknumber",
            "bigger than allowed maximum 7",
        ),
        (
            "cluster_name: totem-conform",
            "cluster_name: x\n\tlink_mode: fastest",
            "totem.link_mode",
            "It must be active, passive or rr",
        ),
        (
            "cluster_name: totem-conform",
            "cluster_name: x\n\tinterface {\n\t\tknet_transport: sctp\n\t}",
            "totem.interface.knet_transport",
            "sctp",
        ),
    ];
    for (from, to, key, words) in cases {
        assert!(base.contains(from), "{from}");
        let (_, got, message) = key_error(parse_str(&base.replacen(from, to, 1), "c"));
        assert_eq!(got, key, "{to}: {message}");
        assert!(message.contains(words), "{to}: {message}");
    }
}

#[test]
fn debians_default_file_with_udpu_is_read_whole() {
    let text = DEBIAN_DEFAULT.replace("\tversion: 2\n", "\tversion: 2\n\ttransport: udpu\n");
    let loaded = parse_str(&text, "corosync.conf").unwrap();
    let c = &loaded.config;
    assert_eq!(c.totem.cluster_name.as_deref(), Some("debian"));
    assert_eq!(c.nodes.len(), 1);
    assert_eq!(
        (c.nodes[0].nodeid, c.nodes[0].name.as_deref()),
        (1, Some("node1"))
    );
    assert_eq!(c.quorum.provider.as_deref(), Some("corosync_votequorum"));
    assert!(c.logging.to_stderr && c.logging.to_logfile && !c.logging.debug);
    assert_eq!(
        c.logging.timestamp,
        Timestamp::Hires,
        "libqb's hires default"
    );
    assert_eq!(c.logging.logfile_priority, Priority::Info);
    // to_syslog: yes is the only thing totemd ignores in this file: a warning with its line.
    let warned: Vec<(u32, &str)> = loaded
        .warnings
        .iter()
        .map(|w| (w.line, w.key.as_str()))
        .collect();
    assert_eq!(warned, [(19, "logging.to_syslog")], "{:?}", loaded.warnings);
    // The local node is found by its address.
    let me = c.local_node(None, &host(&["127.0.0.1"])).unwrap();
    assert_eq!(me.nodeid, 1);
}

/// The conformance backend's template, rendered as `Corosync::render_conf` renders it.
fn rendered_template(nodes: u32, timings: &str) -> String {
    let template = include_str!("../../../fixtures/corosync/corosync.conf.tmpl");
    let mut nodelist = String::new();
    for n in 1..=nodes {
        nodelist.push_str(&format!(
            "\tnode {{\n\t\tring0_addr: 10.200.0.{}\n\t\tnodeid: {n}\n\t}}\n",
            10 + n
        ));
    }
    template
        .replace("{{transport}}", "udpu")
        .replace("{{totem_timings}}", timings)
        .replace("{{nodelist}}", &nodelist)
        .replace("{{logfile}}", "/tmp/x/corosync.log")
        .replace("{{state_dir}}", "/tmp/x/state")
        .replace("{{ipc}}", "shm")
}

// Reference: totem_volatile_config_read — the token coefficient applies beyond 2 nodes
// (corosync-lab.md: hold 685 ms with 3 nodes); the derivation is totem_srp's.
#[test]
fn the_conformance_template_gives_corosyncs_timings() {
    let loaded = parse_str(&rendered_template(3, ""), "corosync.conf").unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = &loaded.config;
    assert_eq!(
        c.nodes.iter().map(|n| n.nodeid).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(c.system.state_dir.to_str(), Some("/tmp/x/state"));
    assert_eq!(c.totem.mcastport, 5405);
    let me = c
        .local_node(None, &host(&["127.0.0.1", "10.200.0.12"]))
        .unwrap();
    assert_eq!(me.nodeid, 2);
    let nc = c.node_config(2, 41).unwrap();
    assert_eq!(
        (nc.srp.token_ms, nc.srp.hold_ms, nc.srp.consensus_ms),
        (3650, 685, 4380)
    );
    assert_eq!(
        (nc.net_mtu, nc.stored_ring_seq, nc.nodeinfo.expected_votes),
        (1500, 41, 3)
    );

    let timed = rendered_template(
        3,
        "\ttoken: 1000\n\ttoken_coefficient: 0\n\twindow_size: 0\n",
    );
    let nc = parse_str(&timed, "c")
        .unwrap()
        .config
        .node_config(1, 0)
        .unwrap();
    // window_size 0 means "default" for corosync (allow_zero_value = 0).
    assert_eq!(
        (nc.srp.token_ms, nc.srp.consensus_ms, nc.srp.window_size),
        (1000, 1200, 50)
    );
}

#[test]
fn unknown_keys_and_sections_are_warnings_with_their_line() {
    let template = rendered_template(2, "\ttokn: 1000\n");
    let end = template.lines().count();
    let text = template + "frobnicate {\n\tx: 1\n}\nsystem {\n\trun_dir: /run\n}\n";
    let loaded = parse_str(&text, "/etc/c.conf").unwrap();
    let shown: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "/etc/c.conf:9: totem.tokn: unknown key, ignored".to_owned(),
            format!(
                "/etc/c.conf:{}: frobnicate: unknown section, ignored",
                end + 1
            ),
            format!(
                "/etc/c.conf:{}: system.run_dir: unknown key, ignored",
                end + 5
            ),
        ],
        "{text}"
    );
}

#[test]
fn keys_totemd_cannot_honour_are_errors_with_their_line() {
    let base = rendered_template(2, "");
    let cases = [
        ("transport: udpu", "transport: udp", "totem.transport"),
        (
            "crypto_cipher: none",
            "crypto_cipher: aes256",
            "totem.crypto_cipher",
        ),
        (
            "crypto_hash: none",
            "crypto_hash: sha1",
            "totem.crypto_hash",
        ),
        (
            "crypto_hash: none",
            "crypto_hash: rot13",
            "totem.crypto_hash",
        ),
        ("version: 2", "version: 1", "totem.version"),
        ("nodeid: 2", "nodeid: 1", "nodelist.node.nodeid"),
        (
            "ring0_addr: 10.200.0.12",
            "ring0_addr: 10.200.0.12\n\t\tring1_addr: 10.1.0.12",
            "nodelist.node.ring1_addr",
        ),
        (
            "provider: corosync_votequorum",
            "provider: corosync_votequorum\n\tdevice {\n\t}",
            "quorum.device",
        ),
        (
            "cluster_name: totem-conform",
            "cluster_name: x\n\theartbeat_failures_allowed: 3",
            "totem.heartbeat_failures_allowed",
        ),
        (
            "cluster_name: totem-conform",
            "cluster_name: x\n\ttoken: fast",
            "totem.token",
        ),
    ];
    for (from, to, key) in cases {
        assert!(base.contains(from), "{from}");
        let text = base.replacen(from, to, 1);
        let (line, got, message) = key_error(parse_str(&text, "c"));
        assert_eq!(got, key, "{to}: {message}");
        let want_line = text
            .lines()
            .position(|l| l.contains(to.split('\n').next_back().unwrap().trim()))
            .unwrap() as u32
            + 1;
        if key != "nodelist.node.nodeid" && key != "quorum.device" {
            assert_eq!(line, want_line, "{to}: {message}");
        }
    }
    // corosync's own words where it has them.
    let text = base.replacen("crypto_cipher: none", "crypto_cipher: aes256", 1);
    assert_eq!(
        key_error(parse_str(&text, "c")).2,
        "crypto_cipher requires crypto_hash with value other than none"
    );
    let text = base.replacen("cluster_name: totem-conform", "token: fast", 1);
    assert_eq!(
        key_error(parse_str(&text, "c")).2,
        "Value of key \"totem.token\" is expected to be integer in range (0..4294967295), but \"fast\" was given"
    );
}

#[test]
fn syntax_errors_are_coroparses() {
    let err = parse_str("totem {\n\tversion: 2\n", "/etc/c.conf").unwrap_err();
    assert_eq!(
        err.to_string(),
        "parser error: /etc/c.conf:2: Missing closing brace"
    );
}

// Reference: totemconfig.c::totem_volatile_config_validate via totem_srp.
#[test]
fn timings_corosync_refuses_are_refused_with_the_keys_line() {
    let text = rendered_template(2, "\tjoin: 500\n\tconsensus: 400\n");
    let c = parse_str(&text, "c").unwrap().config;
    match c.node_config(1, 0) {
        Err(ConfigError::Key(d)) => {
            assert_eq!((d.key.as_str(), d.line), ("totem.consensus", 10));
            assert!(
                d.message.contains("may not be less than join timeout"),
                "{}",
                d.message
            );
        }
        other => panic!("{other:?}"),
    }
}

// Reference: totemconfig.c::find_local_node and put_nodelist_members_to_config
// (generate_nodeid for udpu entries without one).
#[test]
fn nodeids_are_found_generated_or_given() {
    let text = "totem {\n\tversion: 2\n\ttransport: udpu\n}\nnodelist {\n\
                \tnode {\n\t\tring0_addr: 192.168.7.1\n\t}\n\
                \tnode {\n\t\tring0_addr: 192.168.7.2\n\t\tnodeid: 7\n\t}\n}\n";
    let c = parse_str(text, "c").unwrap().config;
    assert_eq!(
        c.nodes[0].nodeid, 0xC0A8_0701,
        "generated from the IPv4 address"
    );
    let me = c.local_node(None, &host(&["192.168.7.2"])).unwrap();
    assert_eq!(me.nodeid, 7);
    assert!(
        c.local_node(None, &host(&["10.0.0.1"])).is_err(),
        "no local address listed"
    );
    assert_eq!(
        c.local_node(Some(0xC0A8_0701), &host(&[]))
            .unwrap()
            .ring0_addr,
        "192.168.7.1"
    );
    assert!(c.local_node(Some(9), &host(&[])).is_err());
    let by_name = LocalHost {
        nodename: "db2".into(),
        addrs: vec![],
    };
    let named = text.replace(
        "ring0_addr: 192.168.7.2",
        "ring0_addr: 192.168.7.2\n\t\tname: db2",
    );
    let c = parse_str(&named, "c").unwrap().config;
    assert_eq!(
        c.local_node(None, &by_name).unwrap().nodeid,
        7,
        "uname matches `name`"
    );
}

// Reference: coroparse.c uid_determine / gid_determine: a number as is, else a name looked
// up (getpwnam_r / getgrnam_r), an unknown name stops corosync with this message.
#[test]
fn uidgid_entries_are_numbers_or_names() {
    let u = totemd::config::UidGid {
        uids: vec!["root".into(), "1234".into()],
        gids: vec!["root".into(), "77".into()],
    };
    assert_eq!(u.resolve(), Ok((vec![0, 1234], vec![0, 77])));
    let bad = totemd::config::UidGid {
        uids: vec!["no-such-user-here".into()],
        gids: vec![],
    };
    assert_eq!(
        bad.resolve(),
        Err("The 'no-such-user-here' user is not found in /etc/passwd, please read the documentation.".into())
    );
    let bad = totemd::config::UidGid {
        uids: vec![],
        gids: vec!["no-such-group".into()],
    };
    assert!(bad
        .resolve()
        .unwrap_err()
        .contains("group is not found in /etc/group"));
    // As read from a file, in file order.
    let text = "totem {\n\tversion: 2\n\ttransport: udpu\n}\nnodelist {\n\tnode {\n\t\tring0_addr: 10.0.0.1\n\t\tnodeid: 1\n\t}\n}\nuidgid {\n\tuid: 5\n\tgid: root\n}\n";
    let c = parse_str(text, "c").unwrap().config;
    assert_eq!(c.uidgid.resolve(), Ok((vec![5], vec![0])));
}

// Reference: ipc.md §1.3 (libqb clients take the server's IPC type); exec/ipc_glue.c
// cs_get_ipc_type reads system.qb_ipc_type: native (the default) and shm are shared
// memory, socket is sockets. totemd serves both, so none of them is a warning.
#[test]
fn qb_ipc_type_selects_the_servers_transport() {
    use totemd::ipc::ServerIpcType;
    let base = "totem {\n\tversion: 2\n\ttransport: udpu\n}\nnodelist {\n\tnode {\n\t\tring0_addr: 10.0.0.1\n\t\tnodeid: 1\n\t}\n}\n";
    for (ipc, kind) in [
        ("socket", ServerIpcType::Socket),
        ("shm", ServerIpcType::Shm),
        ("native", ServerIpcType::Shm),
    ] {
        let text = format!("{base}system {{\n\tqb_ipc_type: {ipc}\n\tsched_rr: no\n}}\n");
        let loaded = parse_str(&text, "c").unwrap();
        assert_eq!(loaded.config.system.qb_ipc_type.as_deref(), Some(ipc));
        assert_eq!(
            ServerIpcType::from_config(loaded.config.system.qb_ipc_type.as_deref()),
            Some(kind)
        );
        assert!(!loaded.config.system.sched_rr);
        let w: Vec<String> = loaded.warnings.iter().map(|d| d.to_string()).collect();
        assert!(!w.iter().any(|d| d.contains("qb_ipc_type")), "{ipc}: {w:?}");
    }
    assert_eq!(ServerIpcType::from_config(None), Some(ServerIpcType::Shm));
    let loaded = parse_str(base, "c").unwrap();
    assert!(loaded.config.system.sched_rr, "corosync's default");
    assert!(parse_str(&format!("{base}system {{\n\tqb_ipc_type: pipe\n}}\n"), "c").is_err());
}

/// A key file of `len` bytes in `dir`.
fn key_file(dir: &std::path::Path, name: &str, len: usize) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        (0..len).map(|i| (i * 31 + 7) as u8).collect::<Vec<u8>>(),
    )
    .unwrap();
    path.display().to_string()
}

/// The conformance template on knet with these lines in place of its crypto lines.
fn knet_with(crypto: &str) -> String {
    rendered_template(2, "")
        .replacen("transport: udpu", "transport: knet", 1)
        .replacen("\tcrypto_cipher: none\n\tcrypto_hash: none\n", crypto, 1)
}

// Reference: totemconfig.c::totem_get_crypto (secauth, cipher and hash, the nss default,
// "cipher requires hash"), totem_config_keyread and read_keyfile (keyfile, key, the
// default file, 128..=4096 bytes, their messages), coroparse.c's value checks, and
// totem_config_validate's "only knet". Every message was checked against corosync 3.1.7's
// `corosync -t` on Debian 12.
#[test]
fn knet_crypto_is_read_as_corosync_reads_it_and_refused_in_its_words() {
    use totem_knet::crypto::{CryptoCipher, CryptoHash, CryptoModel};
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "authkey", 256);
    let long = key_file(dir.path(), "long", 5000);
    let short = key_file(dir.path(), "short", 100);
    let read = |crypto: &str| {
        parse_str(&knet_with(crypto), "c")
            .map(|l| l.config.totem.crypto)
            .map(|c| c.map(|c| (c.model(), c.cipher(), c.hash())))
    };
    let on = |m, c, h| Some((m, c, h));
    use CryptoCipher::{Aes128, Aes192, Aes256};
    use CryptoHash::{Md5, Sha1, Sha256, Sha512};
    use CryptoModel::{Nss, Openssl};
    let cases = [
        (
            format!("\tcrypto_cipher: aes256\n\tcrypto_hash: sha256\n\tkeyfile: {key}\n"),
            on(Nss, Aes256, Sha256),
        ),
        (
            format!("\tcrypto_model: openssl\n\tcrypto_cipher: aes192\n\tcrypto_hash: sha512\n\tkeyfile: {key}\n"),
            on(Openssl, Aes192, Sha512),
        ),
        (format!("\tsecauth: on\n\tkeyfile: {key}\n"), on(Nss, Aes256, Sha256)),
        // crypto_* override secauth wherever they stand.
        (
            format!("\tcrypto_hash: sha1\n\tsecauth: on\n\tkeyfile: {key}\n"),
            on(Nss, Aes256, Sha1),
        ),
        (
            format!("\tcrypto_cipher: none\n\tcrypto_hash: md5\n\tkeyfile: {key}\n"),
            on(Nss, CryptoCipher::None, Md5),
        ),
        // Only the first 4096 bytes are read.
        (
            format!("\tcrypto_cipher: aes128\n\tcrypto_hash: sha1\n\tkeyfile: {long}\n"),
            on(Nss, Aes128, Sha1),
        ),
        // cmap's string: 127 characters and the NUL make the minimum.
        (
            format!("\tsecauth: on\n\tkey: {}\n", "k".repeat(127)),
            on(Nss, Aes256, Sha256),
        ),
        ("\tsecauth: off\n\tcrypto_model: openssl\n".to_owned(), Option::None),
    ];
    for (crypto, want) in cases {
        assert_eq!(read(&crypto).unwrap(), want, "{crypto}");
    }
    // The key as libknet gets it: the file's first 4096 bytes, or the string with its NUL.
    let c = parse_str(
        &knet_with(&format!("\tsecauth: on\n\tkey: {}\n", "k".repeat(127))),
        "c",
    )
    .unwrap()
    .config
    .totem
    .crypto
    .unwrap();
    let mut want = b"k".repeat(127);
    want.push(0);
    let expected = totem_knet::crypto::KnetCrypto::new(Nss, Aes256, Sha256, &want).unwrap();
    assert_eq!(c, expected);

    // Errors: file, line (of the key that set it), key and corosync's message.
    let missing = dir.path().join("missing").display().to_string();
    let errors = [
        (
            "\tcrypto_cipher: aes256\n".to_owned(),
            "totem.crypto_cipher",
            "crypto_cipher requires crypto_hash with value other than none".to_owned(),
        ),
        (
            "\tsecauth: on\n\tcrypto_hash: none\n".to_owned(),
            "totem.secauth",
            "crypto_cipher requires crypto_hash with value other than none".to_owned(),
        ),
        (
            "\tcrypto_cipher: aes257\n".to_owned(),
            "totem.crypto_cipher",
            "Invalid cipher type. Should be none, aes256, aes192 or aes128".to_owned(),
        ),
        (
            "\tcrypto_hash: sha3\n".to_owned(),
            "totem.crypto_hash",
            "Invalid hash type. Should be none, md5, sha1, sha256, sha384 or sha512".to_owned(),
        ),
        (
            "\tcrypto_model: gcrypt\n".to_owned(),
            "totem.crypto_model",
            "Invalid crypto model. Should be nss or openssl".to_owned(),
        ),
        (
            format!("\tcrypto_cipher: aes256\n\tcrypto_hash: sha1\n\tkeyfile: {short}\n"),
            "totem.keyfile",
            format!("Could only read 800 bits of minimum 1024 bits from {short}."),
        ),
        (
            format!("\tsecauth: on\n\tkeyfile: {missing}\n"),
            "totem.keyfile",
            format!("Could not open {missing}: No such file or directory"),
        ),
        (
            format!("\tsecauth: on\n\tkeyfile: {}\n", dir.path().display()),
            "totem.keyfile",
            format!("Could not read {}: Is a directory", dir.path().display()),
        ),
        (
            format!("\tsecauth: on\n\tkey: {}\n", "k".repeat(126)),
            "totem.key",
            "key is too short".to_owned(),
        ),
    ];
    for (crypto, key, message) in errors {
        let text = knet_with(&crypto);
        let (line, got_key, got) = key_error(parse_str(&text, "/etc/c.conf"));
        assert_eq!(
            (got_key.as_str(), got.as_str()),
            (key, message.as_str()),
            "{crypto}"
        );
        let want_line = text
            .lines()
            .position(|l| l.trim_start().starts_with(key.trim_start_matches("totem.")))
            .unwrap() as u32
            + 1;
        assert_eq!(line, want_line, "{crypto}");
    }
    // Crypto on udpu: the key is read first (a missing one is that error), then refused.
    let udpu = rendered_template(2, "").replacen(
        "\tcrypto_cipher: none\n\tcrypto_hash: none\n",
        &format!("\tcrypto_cipher: aes256\n\tcrypto_hash: sha256\n\tkeyfile: {key}\n"),
        1,
    );
    let err = parse_str(&udpu, "/etc/c.conf").unwrap_err().to_string();
    assert_eq!(
        err,
        "/etc/c.conf:7: totem.crypto_cipher: crypto_cipher & crypto_hash are only valid for the Knet transport."
    );
    // A key with crypto off is not read; totemd says so.
    let loaded = parse_str(&knet_with(&format!("\tkeyfile: {missing}\n")), "c").unwrap();
    assert!(loaded.config.totem.crypto.is_none());
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.key == "totem.keyfile" && w.message.contains("are none")),
        "{:?}",
        loaded.warnings
    );
}

/// The two-node knet template with a `ring1_addr` on 10.201.0.0/24 for every node and
/// names, as a two-link corosync.conf has them.
fn two_link_template(totem_extra: &str) -> String {
    let base = rendered_template(2, "").replacen("transport: udpu", "transport: knet", 1);
    let mut text = base.replacen(
        "cluster_name: totem-conform",
        &format!("cluster_name: x{totem_extra}"),
        1,
    );
    for n in 1..=2 {
        text = text.replacen(
            &format!("ring0_addr: 10.200.0.1{n}\n"),
            &format!(
                "ring0_addr: 10.200.0.1{n}\n\t\tring1_addr: 10.201.0.1{n}\n\t\tname: node{n}\n"
            ),
            1,
        );
    }
    text
}

// Reference: totemconfig.c::totem_config_read (interface keys per linknumber, link_mode,
// ip_port = DEFAULT_PORT + linknumber, knet_link_priority a u8 defaulting to 1) and
// totem_config_validate (names and the same links on every node).
#[test]
fn knet_reads_ring1_addr_and_each_links_interface_keys() {
    let text = two_link_template(
        "\n\tlink_mode: active\n\tinterface {\n\t\tknet_link_priority: 3\n\t\tlinknumber: 1\n\t\tknet_ping_interval: 100\n\t\tknet_pong_count: 4\n\t}",
    );
    let loaded = parse_str(&text, "c").unwrap();
    let c = loaded.config;
    assert_eq!(c.totem.knet.link_mode, LinkMode::Active);
    assert_eq!(
        c.totem.knet.interfaces[1],
        KnetInterface {
            ping_interval_ms: Some(100),
            ping_timeout_ms: None,
            pong_count: Some(4),
            priority: Some(3),
        }
    );
    assert_eq!(c.totem.knet.interfaces[0], KnetInterface::default());
    assert_eq!((c.totem.link_port(0), c.totem.link_port(1)), (5405, 5406));
    let n2 = &c.nodes[1];
    assert_eq!(n2.link_ids(), vec![0, 1]);
    assert_eq!(n2.link_addr(1), Some("10.201.0.12".parse().unwrap()));
    // A link's own mcastport.
    let text = two_link_template("\n\tinterface {\n\t\tlinknumber: 1\n\t\tmcastport: 6000\n\t}");
    let c = parse_str(&text, "c").unwrap().config;
    assert_eq!((c.totem.link_port(0), c.totem.link_port(1)), (5405, 6000));
    // What corosync refuses on two links.
    let no_name = two_link_template("").replacen("\t\tname: node2\n", "", 1);
    let (_, key, message) = key_error(parse_str(&no_name, "c"));
    assert_eq!(key, "nodelist.node.name");
    assert!(
        message.contains("all nodes must have a 'name'"),
        "{message}"
    );
    let missing = two_link_template("").replacen("\t\tring1_addr: 10.201.0.12\n", "", 1);
    let (_, _, message) = key_error(parse_str(&missing, "c"));
    assert!(
        message.contains("Not all nodes have the same number of links"),
        "{message}"
    );
    let family =
        two_link_template("").replacen("ring1_addr: 10.201.0.12", "ring1_addr: fd00::12", 1);
    let (_, _, message) = key_error(parse_str(&family, "c"));
    assert!(
        message.contains("Nodes for link 1 have different IP families"),
        "{message}"
    );
    // An interface section for a link no node has.
    let stray = two_link_template("\n\tinterface {\n\t\tlinknumber: 2\n\t}");
    let (_, _, message) = key_error(parse_str(&stray, "c"));
    assert!(
        message.contains("Not all nodes have the same number of links"),
        "{message}"
    );
}
