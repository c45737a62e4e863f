//! `--status-file PATH`: the node's ring as one JSON line, rewritten atomically (a temporary
//! file in the same directory, then rename(2)) after every membership state change, new
//! ring and completed sync, so that a test runner can poll it (totemd has no cmap for
//! `corosync-cmapctl runtime.members` or `corosync-quorumtool`):
//!
//! ```json
//! {"nodeid":1,"state":"operational","ring":{"rep":1,"seq":8},"members":[1,2,3],"synced":true}
//! ```
//!
//! `state` is the Totem membership state (`gather`, `commit`, `recovery`, `operational`);
//! `ring` and `members` are the installed ring's; `synced` is true once every sync round of
//! that ring completed ("Completed service synchronization") and the node is operational
//! on it. With knet crypto on, `knet_crypto_dropped` counts the received datagrams that did
//! not verify (updated at most once a second). With knet, `knet` lists every host's links
//! as libknet reports them (updated on every link change):
//! `"knet":[{"host":2,"reachable":true,"links":[{"link":0,"connected":true,"data":true,"priority":1}]}]`
//! (`data`: the link carries data to the host under the link mode). The file is removed
//! when the daemon stops cleanly.

use std::io::Write;
use std::path::{Path, PathBuf};

use totem_cpg::{Node, NodeEvent};
use totem_knet::HostStatus;
use totem_srp::{Instant, MembState};
use totem_wire::srp::RingId;

use crate::logf;
use crate::runtime::EventSource;

/// The line for a node's current state.
pub fn status_line(node: &Node, synced_ring: Option<RingId>) -> String {
    let state = match node.state() {
        MembState::Operational => "operational",
        MembState::Gather => "gather",
        MembState::Commit => "commit",
        MembState::Recovery => "recovery",
    };
    let ring = node.ring_id();
    let synced =
        node.state() == MembState::Operational && !node.syncing() && synced_ring == Some(ring);
    let members: Vec<String> = node.members().iter().map(u32::to_string).collect();
    format!(
        "{{\"nodeid\":{},\"state\":\"{state}\",\"ring\":{{\"rep\":{},\"seq\":{}}},\"members\":[{}],\"synced\":{synced}}}\n",
        node.nodeid(),
        ring.rep,
        ring.seq,
        members.join(",")
    )
}

/// Writes `text` to `path` through `path.tmp` and a rename, so a reader sees the old or
/// the new content, never a part.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// The status file as an [`EventSource`]: it has no descriptors, only a deadline ("now")
/// after each event that changes what it shows.
pub struct StatusFile {
    path: PathBuf,
    synced_ring: Option<RingId>,
    due: Option<Instant>,
    written: String,
    failing: bool,
    crypto_dropped: Option<u64>,
    knet: Option<String>,
}

impl StatusFile {
    /// Written at the loop's first turn, then on changes.
    pub fn new(path: PathBuf) -> StatusFile {
        StatusFile {
            path,
            synced_ring: None,
            due: Some(Instant::ZERO),
            written: String::new(),
            failing: false,
            crypto_dropped: None,
            knet: None,
        }
    }

    /// Where it is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, now: Instant, node: &Node) {
        let mut line = status_line(node, self.synced_ring);
        if let Some(d) = self.crypto_dropped {
            // status_line ends with "}\n".
            line.truncate(line.len() - 2);
            line.push_str(&format!(",\"knet_crypto_dropped\":{d}}}\n"));
        }
        if let Some(knet) = &self.knet {
            line.truncate(line.len() - 2);
            line.push_str(&format!(",\"knet\":{knet}}}\n"));
        }
        if line == self.written {
            return;
        }
        match write_atomically(&self.path, &line) {
            Ok(()) => {
                self.written = line;
                self.failing = false;
            }
            Err(e) => {
                // Once per run of failures, not at every change.
                if !self.failing {
                    logf!(
                        Main,
                        Warning,
                        "cannot write the status file {}: {e}",
                        self.path.display()
                    );
                }
                self.failing = true;
                // Tried again in a second even if nothing changes meanwhile.
                self.due = Some(now + totem_srp::Duration::from_millis(1000));
            }
        }
    }
}

impl EventSource for StatusFile {
    fn pollfds(&self, _fds: &mut Vec<libc::pollfd>) {}

    fn process_ready(&mut self, _now: Instant, _ready: &[libc::pollfd], _node: &mut Node) {}

    fn node_event(&mut self, now: Instant, event: &NodeEvent) {
        match event {
            NodeEvent::SyncCompleted(ring) => {
                self.synced_ring = Some(*ring);
                self.due = Some(now);
            }
            NodeEvent::StateChanged { .. } | NodeEvent::Configuration { .. } => {
                self.due = Some(now);
            }
            NodeEvent::Client(_) | NodeEvent::StoreRingId(_) => {}
        }
    }

    fn knet_crypto_dropped(&mut self, now: Instant, dropped: u64) {
        if self.crypto_dropped == Some(dropped) {
            return;
        }
        // The first value at once, later ones at most once a second: a node with the wrong
        // key drops datagrams all the time.
        let wait = if self.crypto_dropped.is_none() {
            totem_srp::Duration::from_millis(0)
        } else {
            totem_srp::Duration::from_millis(1000)
        };
        self.crypto_dropped = Some(dropped);
        if self.due.is_none() {
            self.due = Some(now + wait);
        }
    }

    fn knet_links(&mut self, now: Instant, hosts: &[HostStatus]) {
        self.knet = Some(knet_json(hosts));
        self.due = Some(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.due
    }

    fn handle_timeout(&mut self, now: Instant, node: &mut Node) {
        self.due = None;
        self.write(now, node);
    }

    fn shutdown(&mut self, _node: &mut Node) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The `knet` field: each host's reachability and links.
pub fn knet_json(hosts: &[HostStatus]) -> String {
    let hosts: Vec<String> = hosts
        .iter()
        .map(|h| {
            let links: Vec<String> = h
                .links
                .iter()
                .map(|l| {
                    format!(
                        "{{\"link\":{},\"connected\":{},\"data\":{},\"priority\":{}}}",
                        l.link, l.connected, l.carries_data, l.priority
                    )
                })
                .collect();
            format!(
                "{{\"host\":{},\"reachable\":{},\"links\":[{}]}}",
                h.host,
                h.reachable,
                links.join(",")
            )
        })
        .collect();
    format!("[{}]", hosts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use totem_knet::{LinkStats, LinkStatus};

    #[test]
    fn the_knet_field_lists_each_hosts_links_as_json() {
        let link = |link: u8, connected: bool, data: bool| LinkStatus {
            link,
            enabled: true,
            connected,
            carries_data: data,
            priority: 1 + link,
            src: None,
            dst: format!("10.20{link}.0.11:540{}", 5 + link).parse().unwrap(),
            mtu: 1446,
            latency_us: 0,
            stats: LinkStats::default(),
        };
        let hosts = [HostStatus {
            host: 1,
            reachable: true,
            links: vec![link(0, false, false), link(1, true, true)],
        }];
        let text = knet_json(&hosts);
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            v,
            serde_json::json!([{"host": 1, "reachable": true, "links": [
                {"link": 0, "connected": false, "data": false, "priority": 1},
                {"link": 1, "connected": true, "data": true, "priority": 2},
            ]}])
        );
    }
}
