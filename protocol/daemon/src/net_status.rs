//! What the transport knows about each node, for cfg's NODESTATUSGET
//! (`totempg_nodestatus_get`, behind `corosync-cfgtool -s` and `-n`): shared between the
//! runtime, which owns the link layer and keeps the link states current, and the cfg
//! service, which answers from it.
//!
//! * **udpu** (`totemudpu_nodestatus_get`): a node of the nodelist is reachable when it is
//!   in the current ring (totemsrp fills that in); link 0 is enabled, connected when
//!   reachable, its MTU the ring's net_mtu after `totemsrp_net_mtu_adjust` (1500 − 90 =
//!   1410) and its "source" address the node's own; a node not in the nodelist is answered
//!   CS_OK with nothing set.
//! * **knet** (`totemknet_nodestatus_get` → `knet_host_get_status`, `knet_link_get_status`):
//!   reachable when a link to the host is up (`remote` and `external` stay 0: libknet 1.25
//!   leaves them so for the static hosts corosync adds, as a 3.1.7 ring shows); each
//!   configured link enabled, connected when up, its MTU knet's data MTU, source and
//!   destination the two ends' addresses. This node's own link is knet's loopback: always
//!   connected. A host knet does not know is CS_ERR_FAILED_OPERATION. The on-wire version
//!   fields stay 0: Debian's corosync is built without `HAVE_KNET_ONWIRE_VER`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::rc::Rc;

use totem_knet::HostStatus;
use totem_wire::ipc::cfg::{LinkStatus, NodeStatus};
use totem_wire::ipc::CsError;

/// `totemsrp_net_mtu_adjust`: two MCAST headers' worth.
const SRP_MTU_ADJUST: u32 = 90;

/// The transport, as NODESTATUSGET tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetKind {
    /// udpu with this `totem.netmtu`.
    Udpu {
        /// `totem.netmtu`.
        netmtu: u32,
    },
    /// knet with this data MTU.
    Knet {
        /// What libknet reports as each link's MTU.
        data_mtu: u32,
    },
}

/// The transport's view of every node.
#[derive(Debug, Clone)]
pub struct NetView {
    kind: NetKind,
    local: u32,
    /// Each node's link addresses: (link number, address), ring0 first.
    addrs: BTreeMap<u32, Vec<(u8, IpAddr)>>,
    /// What knet last said about each host (`knet_host_get_status`, `knet_link_get_status`).
    knet_hosts: BTreeMap<u32, HostStatus>,
}

impl NetView {
    /// Every node of the nodelist with its link addresses; no knet link up yet.
    pub fn new(kind: NetKind, local: u32, addrs: BTreeMap<u32, Vec<(u8, IpAddr)>>) -> NetView {
        NetView {
            kind,
            local,
            addrs,
            knet_hosts: BTreeMap::new(),
        }
    }

    /// knet's view of every other host, after a link changed state.
    pub fn set_knet_hosts(&mut self, hosts: &[HostStatus]) {
        self.knet_hosts = hosts
            .iter()
            .map(|h| (u32::from(h.host), h.clone()))
            .collect();
    }

    /// NODESTATUSGET's answer for `nodeid`, given the current ring's members.
    pub fn node_status(&self, nodeid: u32, members: &[u32]) -> Result<NodeStatus, CsError> {
        let mut status = NodeStatus {
            nodeid,
            ..NodeStatus::default()
        };
        let addrs = self.addrs.get(&nodeid);
        match self.kind {
            NetKind::Udpu { netmtu } => {
                let Some((_, addr)) = addrs.and_then(|a| a.first()) else {
                    return Ok(status);
                };
                status.reachable = members.contains(&nodeid);
                status.links[0] = LinkStatus {
                    enabled: true,
                    connected: status.reachable,
                    dynconnected: false,
                    mtu: netmtu.saturating_sub(SRP_MTU_ADJUST),
                    src_ipaddr: addr.to_string(),
                    dst_ipaddr: String::new(),
                };
            }
            NetKind::Knet { data_mtu } => {
                if nodeid == self.local {
                    // Our own host: knet's loopback, every configured link connected, its
                    // addresses ours (as the other hosts' links see them).
                    let mut locals: BTreeMap<u8, String> = addrs
                        .map(|a| a.iter().map(|(l, ip)| (*l, ip.to_string())).collect())
                        .unwrap_or_default();
                    for h in self.knet_hosts.values() {
                        for l in &h.links {
                            if let Some(src) = l.src {
                                locals.insert(l.link, src.ip().to_string());
                            }
                        }
                    }
                    status.reachable = true;
                    for (link, ip) in locals {
                        if let Some(slot) = status.links.get_mut(usize::from(link)) {
                            *slot = LinkStatus {
                                enabled: true,
                                connected: true,
                                dynconnected: false,
                                mtu: data_mtu,
                                src_ipaddr: ip.clone(),
                                dst_ipaddr: ip,
                            };
                        }
                    }
                } else if let Some(h) = self.knet_hosts.get(&nodeid) {
                    status.reachable = h.reachable;
                    for l in &h.links {
                        if let Some(slot) = status.links.get_mut(usize::from(l.link)) {
                            *slot = LinkStatus {
                                enabled: l.enabled,
                                connected: l.connected,
                                dynconnected: false,
                                mtu: l.mtu as u32,
                                src_ipaddr: l.src.map(|a| a.ip().to_string()).unwrap_or_default(),
                                dst_ipaddr: l.dst.ip().to_string(),
                            };
                        }
                    }
                } else {
                    // Configured, and knet has said nothing yet: every link down.
                    let Some(addrs) = addrs else {
                        return Err(CsError::FailedOperation);
                    };
                    let local = self.addrs.get(&self.local);
                    for (link, addr) in addrs {
                        let Some(slot) = status.links.get_mut(usize::from(*link)) else {
                            continue;
                        };
                        *slot = LinkStatus {
                            enabled: true,
                            connected: false,
                            dynconnected: false,
                            mtu: data_mtu,
                            src_ipaddr: local
                                .and_then(|l| l.iter().find(|(m, _)| m == link))
                                .map(|(_, ip)| ip.to_string())
                                .unwrap_or_default(),
                            dst_ipaddr: addr.to_string(),
                        };
                    }
                }
            }
        }
        Ok(status)
    }
}

/// A [`NetView`] shared by the runtime and the cfg service.
#[derive(Debug, Clone)]
pub struct NetStatus(Rc<RefCell<NetView>>);

impl NetStatus {
    /// Shares `view`.
    pub fn new(view: NetView) -> NetStatus {
        NetStatus(Rc::new(RefCell::new(view)))
    }

    /// See [`NetView::set_knet_hosts`].
    pub fn set_knet_hosts(&self, hosts: &[HostStatus]) {
        self.0.borrow_mut().set_knet_hosts(hosts);
    }

    /// See [`NetView::node_status`].
    pub fn node_status(&self, nodeid: u32, members: &[u32]) -> Result<NodeStatus, CsError> {
        self.0.borrow().node_status(nodeid, members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> BTreeMap<u32, Vec<(u8, IpAddr)>> {
        (1..=3)
            .map(|n| (n, vec![(0, format!("10.0.0.{n}").parse().unwrap())]))
            .collect()
    }

    /// What corosync 3.1.7 answered on a 2-node udpu ring (`corosync-cfgtool -n` printed
    /// "LINK: 0  (10.201.0.12) enabled connected mtu: 1410" for its peer).
    #[test]
    fn udpu_reports_the_ring_and_the_adjusted_mtu() {
        let v = NetView::new(NetKind::Udpu { netmtu: 1500 }, 1, addrs());
        let s = v.node_status(2, &[1, 2]).unwrap();
        assert!(s.reachable && !s.remote);
        assert_eq!(
            (s.links[0].enabled, s.links[0].connected, s.links[0].mtu),
            (true, true, 1410)
        );
        assert_eq!(
            (
                s.links[0].src_ipaddr.as_str(),
                s.links[0].dst_ipaddr.as_str()
            ),
            ("10.0.0.2", "")
        );
        let s = v.node_status(3, &[1, 2]).unwrap();
        assert!(!s.reachable && s.links[0].enabled && !s.links[0].connected);
        // Not in the nodelist: OK, all zero but the id.
        let s = v.node_status(9, &[1, 2]).unwrap();
        assert_eq!(
            s,
            NodeStatus {
                nodeid: 9,
                ..NodeStatus::default()
            }
        );
    }

    /// What corosync 3.1.7 answered on a 2-node knet ring ("LINK: 0 udp
    /// (10.201.0.11->10.201.0.12) enabled connected mtu: 1446"); the states come from the
    /// knet engine's own host status.
    #[test]
    fn knet_reports_each_links_state() {
        let mut v = NetView::new(NetKind::Knet { data_mtu: 1446 }, 1, addrs());
        let s = v.node_status(2, &[1]).unwrap();
        assert!(!s.reachable && !s.remote && s.links[0].enabled && !s.links[0].connected);
        let link = |link: u8, connected: bool, n: u32| totem_knet::LinkStatus {
            link,
            enabled: true,
            connected,
            carries_data: connected,
            priority: 1,
            src: Some(format!("10.{link}.0.1:5405").parse().unwrap()),
            dst: format!("10.{link}.0.{n}:5405").parse().unwrap(),
            mtu: 1446,
            latency_us: 0,
            stats: Default::default(),
        };
        v.set_knet_hosts(&[HostStatus {
            host: 2,
            reachable: true,
            links: vec![link(0, false, 2), link(1, true, 2)],
        }]);
        let s = v.node_status(2, &[1]).unwrap();
        assert!(s.reachable && !s.links[0].connected && s.links[1].connected);
        assert_eq!(
            (
                s.links[1].src_ipaddr.as_str(),
                s.links[1].dst_ipaddr.as_str(),
                s.links[1].mtu
            ),
            ("10.1.0.1", "10.1.0.2", 1446)
        );
        assert!(!s.links[2].enabled);
        let me = v.node_status(1, &[1]).unwrap();
        assert!(me.reachable && me.links[0].connected && me.links[1].connected);
        assert_eq!(me.links[1].src_ipaddr, "10.1.0.1");
        assert_eq!(v.node_status(9, &[1]), Err(CsError::FailedOperation));
    }
}
