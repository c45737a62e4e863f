//! Which nodelist entry is this host, as `totemconfig.c::find_local_node` decides, and the
//! nodeid udpu generates for an entry without one (`totemconfig.c::generate_nodeid`).

use std::net::{IpAddr, ToSocketAddrs};

use super::NodeEntry;

/// What `find_local_node` looks at: the uname node name and the interface addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalHost {
    /// `uname().nodename`.
    pub nodename: String,
    /// Every address of every local interface (`getifaddrs`).
    pub addrs: Vec<IpAddr>,
}

impl LocalHost {
    /// This machine (in this network namespace).
    pub fn current() -> std::io::Result<LocalHost> {
        // /proc/sys/kernel/hostname is uname's nodename (both read the UTS namespace).
        let nodename = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Ok(LocalHost {
            nodename,
            addrs: crate::sys::local_addresses()?,
        })
    }
}

/// `generate_nodeid`: the IPv4 address as a host-order number (IPv6 has none), with the high
/// bit cleared when `clear_node_high_bit: yes`.
pub fn generate_nodeid(addr: IpAddr, clear_high_bit: bool) -> Option<u32> {
    let IpAddr::V4(v4) = addr else { return None };
    let id = u32::from(v4);
    Some(if clear_high_bit { id & 0x7FFF_FFFF } else { id })
}

/// The names `nodelist_byname` compares, in its icmap order: node positions sorted as the
/// decimal strings of their keys ("10" before "2"), `name` before `ring0_addr`.
fn names_in_icmap_order(nodes: &[NodeEntry]) -> Vec<(usize, &str)> {
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_by_key(|i| i.to_string());
    let mut out = Vec::new();
    for i in order {
        if let Some(name) = &nodes[i].name {
            out.push((i, name.as_str()));
        }
        out.push((i, nodes[i].ring0_addr.as_str()));
    }
    out
}

/// `nodelist_byname(find_name, strip_domain)`.
fn by_name(nodes: &[NodeEntry], find: &str, strip_domain: bool) -> Option<usize> {
    names_in_icmap_order(nodes)
        .into_iter()
        .find(|(_, name)| {
            let name = if strip_domain {
                name.split('.').next().unwrap_or(name)
            } else {
                name
            };
            name == find
        })
        .map(|(i, _)| i)
}

/// `find_local_node`: the uname name, then shorter and shorter versions of it, then the
/// interface addresses written numerically, then every entry's name resolved and compared
/// with the interface addresses. The reverse-DNS names of the interface addresses
/// (`getnameinfo` without `NI_NUMERICHOST`) are not tried: a nodelist naming hosts only by
/// reverse DNS is matched by the last step anyway when forward and reverse DNS agree.
pub fn find_local_node(nodes: &[NodeEntry], host: &LocalHost) -> Option<usize> {
    if !host.nodename.is_empty() {
        let mut name = host.nodename.as_str();
        if let Some(i) = by_name(nodes, name, false) {
            return Some(i);
        }
        while let Some((shorter, _)) = name.rsplit_once('.') {
            name = shorter;
            if let Some(i) = by_name(nodes, name, false) {
                return Some(i);
            }
        }
        if let Some(i) = by_name(nodes, name, true) {
            return Some(i);
        }
    }
    for addr in &host.addrs {
        if let Some(i) = by_name(nodes, &addr.to_string(), false) {
            return Some(i);
        }
    }
    names_in_icmap_order(nodes)
        .into_iter()
        .find(|(_, name)| {
            let resolved: Vec<IpAddr> = match name.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => (*name, 0)
                    .to_socket_addrs()
                    .map(|it| it.map(|a| a.ip()).collect())
                    .unwrap_or_default(),
            };
            resolved.iter().any(|a| host.addrs.contains(a))
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(addr: &str, nodeid: u32, name: Option<&str>) -> NodeEntry {
        NodeEntry {
            line: 0,
            ring0_addr: addr.to_owned(),
            addr: addr.parse().unwrap(),
            nodeid,
            name: name.map(str::to_owned),
            quorum_votes: 1,
            links: Vec::new(),
        }
    }

    #[test]
    fn generated_nodeids_are_the_ipv4_address() {
        let a: IpAddr = "10.200.0.11".parse().unwrap();
        assert_eq!(generate_nodeid(a, false), Some(0x0AC8_000B));
        let b: IpAddr = "192.168.1.1".parse().unwrap();
        assert_eq!(generate_nodeid(b, true), Some(0x40A8_0101));
        assert_eq!(generate_nodeid("::1".parse().unwrap(), false), None);
    }

    #[test]
    fn the_uname_name_and_its_shorter_forms_match_first() {
        let nodes = [
            node("10.0.0.1", 1, Some("alpha")),
            node("10.0.0.2", 2, Some("beta.example.com")),
        ];
        let host = |n: &str| LocalHost {
            nodename: n.into(),
            addrs: vec!["10.0.0.1".parse().unwrap()],
        };
        assert_eq!(find_local_node(&nodes, &host("beta.example.com")), Some(1));
        // "alpha.lab" -> "alpha".
        assert_eq!(find_local_node(&nodes, &host("alpha.lab")), Some(0));
        // strip_domain on the nodelist side: "beta" matches "beta.example.com".
        assert_eq!(find_local_node(&nodes, &host("beta")), Some(1));
        // No name matches: the interface address does.
        assert_eq!(find_local_node(&nodes, &host("gamma")), Some(0));
    }

    #[test]
    fn no_local_address_means_no_local_node() {
        let nodes = [node("10.0.0.1", 1, None), node("10.0.0.2", 2, None)];
        let host = LocalHost {
            nodename: "x".into(),
            addrs: vec!["127.0.0.1".parse().unwrap()],
        };
        assert_eq!(find_local_node(&nodes, &host), None);
        let host = LocalHost {
            nodename: "x".into(),
            addrs: vec!["127.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()],
        };
        assert_eq!(find_local_node(&nodes, &host), Some(1));
    }
}
