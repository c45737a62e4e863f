//! Network namespaces for an N-node ring on one machine.
//!
//! Layout (corosync-lab.md): one namespace per node with `eth0` = 10.200.0.1N/24, its veth
//! peer in a hub namespace where a bridge joins them; with a second knet link, `eth1` =
//! 10.201.0.1N/24 on a second bridge. Nothing is created in the host's
//! namespace, so no traffic can leave the machine. Partitions are blackhole routes inside the
//! node namespaces (iptables/nft are not part of the base image, tc qdiscs may be missing).

use std::process::{Command, Stdio};

use super::{BResult, BackendError};

/// Every namespace this crate creates starts with this, so leftovers can be found.
pub const NS_PREFIX: &str = "tcf-";

pub fn addr(node: u32) -> String {
    link_addr(0, node)
}

/// Node `node`'s address on knet link `link`'s network (link 0: [`addr`]).
pub fn link_addr(link: u32, node: u32) -> String {
    format!("10.{}.0.{}", 200 + link, 10 + node)
}

/// Runs a command to completion; a non-zero exit is an error carrying its stderr.
pub fn run(args: &[&str]) -> BResult<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BackendError(format!("{}: {e}", args[0])))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(BackendError(format!(
            "`{}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

pub struct Net {
    pub prefix: String,
    pub nodes: u32,
    /// MTU of every node's eth0 and its bridge port (`None`: the veth default, 1500).
    pub link_mtu: Option<u32>,
    /// Networks (knet links): `eth<L>` on bridge `br<L>` for each.
    pub links: u32,
    created: Vec<String>,
}

impl Net {
    pub fn new(prefix: String, nodes: u32) -> Self {
        Self {
            prefix,
            nodes,
            link_mtu: None,
            links: 1,
            created: Vec::new(),
        }
    }

    pub fn hub(&self) -> String {
        format!("{}h", self.prefix)
    }

    pub fn node_ns(&self, n: u32) -> String {
        format!("{}n{n}", self.prefix)
    }

    fn add_ns(&mut self, name: &str) -> BResult<()> {
        run(&["ip", "netns", "add", name])?;
        self.created.push(name.to_owned());
        run(&["ip", "-n", name, "link", "set", "lo", "up"])?;
        Ok(())
    }

    pub fn create(&mut self) -> BResult<()> {
        let hub = self.hub();
        self.add_ns(&hub)?;
        for n in 1..=self.nodes {
            let ns = self.node_ns(n);
            self.add_ns(&ns)?;
        }
        for link in 0..self.links.max(1) {
            self.create_link(link)?;
        }
        Ok(())
    }

    /// Link `link`'s network: bridge `br<link>` in the hub, `eth<link>` in every node.
    fn create_link(&mut self, link: u32) -> BResult<()> {
        let hub = self.hub();
        let bridge = format!("br{link}");
        let dev = format!("eth{link}");
        run(&["ip", "-n", &hub, "link", "add", &bridge, "type", "bridge"])?;
        run(&["ip", "-n", &hub, "link", "set", &bridge, "up"])?;
        for n in 1..=self.nodes {
            let ns = self.node_ns(n);
            let peer = if link == 0 {
                format!("v{n}")
            } else {
                format!("v{n}l{link}")
            };
            run(&[
                "ip", "-n", &ns, "link", "add", &dev, "type", "veth", "peer", "name", &peer,
                "netns", &hub,
            ])?;
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", link_addr(link, n)),
                "dev",
                &dev,
            ])?;
            if let Some(mtu) = self.link_mtu {
                let mtu = mtu.to_string();
                run(&["ip", "-n", &ns, "link", "set", &dev, "mtu", &mtu])?;
                run(&["ip", "-n", &hub, "link", "set", &peer, "mtu", &mtu])?;
            }
            run(&["ip", "-n", &ns, "link", "set", &dev, "up"])?;
            // totemd hands runs of multicasts to the kernel as one UDP GSO send. A veth
            // passes such a send along uncut, so the capture on the bridge would show one
            // oversized frame per run; a NIC without UDP segmentation offload cuts it
            // before the wire. Make the device such a NIC, so the pcap holds the datagrams
            // as they are received (best effort: without ethtool the capture keeps them
            // uncut).
            let _ = run(&[
                "ip",
                "netns",
                "exec",
                &ns,
                "ethtool",
                "-K",
                &dev,
                "tx-udp-segmentation",
                "off",
            ]);
            run(&["ip", "-n", &hub, "link", "set", &peer, "master", &bridge])?;
            run(&["ip", "-n", &hub, "link", "set", &peer, "up"])?;
        }
        Ok(())
    }

    /// Takes node `node`'s interface on link `link` down (a cut at the node: neither
    /// direction passes) or up again.
    pub fn set_link(&self, node: u32, link: u32, up: bool) -> BResult<()> {
        if link >= self.links.max(1) || !(1..=self.nodes).contains(&node) {
            return Err(BackendError(format!(
                "no link {link} on node {node} (links: {}, nodes: {})",
                self.links, self.nodes
            )));
        }
        let state = if up { "up" } else { "down" };
        run(&[
            "ip",
            "-n",
            &self.node_ns(node),
            "link",
            "set",
            &format!("eth{link}"),
            state,
        ])
        .map(|_| ())
    }

    /// Cuts traffic between nodes of different sets, in both directions, with blackhole
    /// routes for the other side's /32s in each node's namespace (more specific than the
    /// on-link /24, and needs no tc/netfilter kernel modules, which the CI kernel may lack).
    pub fn partition(&self, sets: &[Vec<u32>]) -> BResult<()> {
        self.heal();
        for (i, set) in sets.iter().enumerate() {
            let others: Vec<u32> = sets
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, s)| s.iter().copied())
                .collect();
            for &a in set {
                let ns = self.node_ns(a);
                for &b in &others {
                    // Every link's network is cut between them.
                    for link in 0..self.links.max(1) {
                        let dst = format!("{}/32", link_addr(link, b));
                        run(&["ip", "-n", &ns, "route", "add", "blackhole", &dst])?;
                    }
                }
            }
        }
        Ok(())
    }

    pub fn heal(&self) {
        for n in 1..=self.nodes {
            // Nothing to flush (never partitioned) is not an error worth reporting.
            let _ = run(&[
                "ip",
                "-n",
                &self.node_ns(n),
                "route",
                "flush",
                "type",
                "blackhole",
            ]);
        }
    }

    pub fn destroy(&mut self) {
        for ns in self.created.drain(..).rev() {
            let _ = run(&["ip", "netns", "del", &ns]);
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.destroy();
    }
}

/// Namespaces left by earlier runs (killed runner), for `totem-conform cleanup`.
pub fn leftover_namespaces() -> Vec<String> {
    run(&["ip", "netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(NS_PREFIX))
        .map(str::to_owned)
        .collect()
}

/// Kills every process still inside `ns` (by pid, from `ip netns pids`) and deletes it.
pub fn purge(ns: &str) {
    for pid in run(&["ip", "netns", "pids", ns])
        .unwrap_or_default()
        .lines()
    {
        if let Ok(p) = pid.trim().parse::<i32>() {
            crate::sys::kill(p, libc::SIGKILL);
        }
    }
    let _ = run(&["ip", "netns", "del", ns]);
}
