use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::codec::{Decoder, Encoder};
use crate::error::Result;
use crate::legacy::{LegacyVersion, INTERFACE_MAX};

/// `AF_INET` as corosync puts it on the wire (the sender's `AF_INET`, 2 on every OS).
pub const AF_INET: u16 = 2;
/// `AF_INET6` of a Linux sender (corosync writes the host's own value; BSDs use others).
pub const AF_INET6_LINUX: u16 = 10;

/// `struct totem_ip_address` (`include/corosync/totem/totemip.h`, v1.4.10 and v2.4.6):
/// `{ unsigned int nodeid; unsigned short family; unsigned char addr[TOTEMIP_ADDRLEN]; }`,
/// packed, 22 bytes. `nodeid` and `family` are in the sender's byte order
/// (`totemip_copy_endian_convert` swaps exactly those two); `addr` is the raw `in_addr` /
/// `in6_addr` in network order, an IPv4 address followed by 12 bytes that are normally zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TotemIpAddress {
    /// `nodeid`: the configured or IPv4-derived nodeid.
    pub nodeid: u32,
    /// `family`: the sender's `AF_INET` / `AF_INET6`; 0 marks an unused slot
    /// (`totemip_zero_set`).
    pub family: u16,
    /// `addr[16]`, network order, kept verbatim (including the bytes after an IPv4 address).
    pub addr: [u8; 16],
}

impl TotemIpAddress {
    /// Size on the wire (`sizeof (struct totem_ip_address)`).
    pub const LEN: usize = 22;

    /// An IPv4 address with its nodeid, as corosync fills it (`totemip_parse` + nodeid).
    pub fn ipv4(nodeid: u32, ip: Ipv4Addr) -> TotemIpAddress {
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&ip.octets());
        TotemIpAddress {
            nodeid,
            family: AF_INET,
            addr,
        }
    }

    /// The address, when `family` is `AF_INET` or Linux's `AF_INET6`.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.family {
            AF_INET => Some(IpAddr::V4(Ipv4Addr::new(
                self.addr[0],
                self.addr[1],
                self.addr[2],
                self.addr[3],
            ))),
            AF_INET6_LINUX => Some(IpAddr::V6(Ipv6Addr::from(self.addr))),
            _ => None,
        }
    }

    pub(crate) fn parse(d: &mut Decoder<'_>) -> Result<TotemIpAddress> {
        Ok(TotemIpAddress {
            nodeid: d.u32("totem_ip_address.nodeid")?,
            family: d.u16("totem_ip_address.family")?,
            addr: d.array::<16>("totem_ip_address.addr")?,
        })
    }

    pub(crate) fn emit(&self, e: &mut Encoder<'_>) {
        e.u32(self.nodeid);
        e.u16(self.family);
        e.bytes(&self.addr);
    }
}

impl fmt::Display for TotemIpAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip() {
            Some(ip) => write!(f, "{}/{}", self.nodeid, ip),
            None => write!(f, "{}/family {}", self.nodeid, self.family),
        }
    }
}

/// `struct srp_addr`: one processor, one address per redundant ring.
///
/// * 1.x (`exec/totemrrp.h` at v1.4.10): `{ struct totem_ip_address addr[INTERFACE_MAX]; }`,
///   44 bytes.
/// * 2.x (`exec/totemrrp.h` at v2.4.6; added by commit 124ff433 "Add no_addrs field in
///   srp_addr structure", first released in v2.0.0): `{ uint8_t no_addrs; struct
///   totem_ip_address addr[INTERFACE_MAX]; }`, 45 bytes. The struct is not declared packed,
///   but all its members have alignment 1, so there is no padding.
///
/// Both always carry `INTERFACE_MAX` (2) slots; an unused one has `family` 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SrpAddr {
    /// `no_addrs` (2.x only; `None` in 1.x where the field does not exist). corosync 2.x sets
    /// it to `INTERFACE_MAX` and `check_srpaddr_sanity` (v2.4.6) drops anything outside 1..=2.
    pub no_addrs: Option<u8>,
    /// `addr[INTERFACE_MAX]`: ring 0 first. `addr[0].nodeid` is the processor's nodeid.
    pub addr: [TotemIpAddress; INTERFACE_MAX],
}

impl SrpAddr {
    /// Size on the wire in `version`.
    pub fn wire_len(version: LegacyVersion) -> usize {
        match version {
            LegacyVersion::Corosync1 => 2 * TotemIpAddress::LEN,
            LegacyVersion::Corosync2 => 1 + 2 * TotemIpAddress::LEN,
        }
    }

    /// A processor with one ring (slot 1 zeroed), laid out for `version`.
    pub fn single(version: LegacyVersion, ring0: TotemIpAddress) -> SrpAddr {
        SrpAddr {
            no_addrs: match version {
                LegacyVersion::Corosync1 => None,
                LegacyVersion::Corosync2 => Some(INTERFACE_MAX as u8),
            },
            addr: [ring0, TotemIpAddress::default()],
        }
    }

    /// The processor's nodeid (`srp_addr_to_nodeid`: `addr[0].nodeid`).
    pub fn nodeid(&self) -> u32 {
        self.addr[0].nodeid
    }

    pub(crate) fn parse(d: &mut Decoder<'_>, version: LegacyVersion) -> Result<SrpAddr> {
        let no_addrs = match version {
            LegacyVersion::Corosync1 => None,
            LegacyVersion::Corosync2 => Some(d.u8("srp_addr.no_addrs")?),
        };
        Ok(SrpAddr {
            no_addrs,
            addr: [TotemIpAddress::parse(d)?, TotemIpAddress::parse(d)?],
        })
    }

    /// Writes `no_addrs` when it is `Some` (2.x), then both slots.
    pub(crate) fn emit(&self, e: &mut Encoder<'_>) {
        if let Some(n) = self.no_addrs {
            e.u8(n);
        }
        for a in &self.addr {
            a.emit(e);
        }
    }

    /// Whether the `no_addrs` field matches `version`'s layout.
    pub(crate) fn fits(&self, version: LegacyVersion) -> bool {
        self.no_addrs.is_some() == (version == LegacyVersion::Corosync2)
    }
}

/// `struct memb_ring_id` of 1.x/2.x (`include/corosync/coroapi.h` at v2.4.6,
/// `include/corosync/engine/coroapi.h` at v1.4.10): `{ struct totem_ip_address rep; unsigned
/// long long seq; }`, packed, 30 bytes. Unlike 3.x, the representative is a full address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RingId {
    /// `rep`: the representative (lowest address) of the ring.
    pub rep: TotemIpAddress,
    /// `seq`: ring sequence, +4 per new ring.
    pub seq: u64,
}

impl RingId {
    /// Size on the wire.
    pub const LEN: usize = TotemIpAddress::LEN + 8;

    pub(crate) fn parse(d: &mut Decoder<'_>) -> Result<RingId> {
        Ok(RingId {
            rep: TotemIpAddress::parse(d)?,
            seq: d.u64("ring_id.seq")?,
        })
    }

    pub(crate) fn emit(&self, e: &mut Encoder<'_>) {
        self.rep.emit(e);
        e.u64(self.seq);
    }
}

impl fmt::Display for RingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}.{:x}", self.rep.nodeid, self.seq)
    }
}
