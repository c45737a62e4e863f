//! Link, IP and UDP: from a captured frame to a UDP datagram, with IP fragment reassembly.
//! Layers are parsed with etherparse; errors name the layer and the byte offset.

use std::net::{IpAddr, SocketAddr};

use etherparse::defrag::IpDefragPool;
use etherparse::{EtherType, IpNumber, NetSlice, SlicedPacket, TransportSlice, UdpSlice};
use pcap::Linktype;
use totem_wire::{Error, ErrorKind, Layer};

/// A UDP datagram recovered from one frame (or, after reassembly, several).
#[derive(Debug)]
pub enum Datagram<'a> {
    /// Whole in this frame.
    Borrowed {
        /// Source address and port.
        src: SocketAddr,
        /// Destination address and port.
        dst: SocketAddr,
        /// UDP payload.
        payload: &'a [u8],
        /// Offset of the payload in the frame (for error offsets).
        offset: usize,
    },
    /// Completed by this frame, from IP fragments.
    Reassembled {
        /// Source.
        src: SocketAddr,
        /// Destination.
        dst: SocketAddr,
        /// UDP payload.
        payload: Vec<u8>,
    },
}

/// What a frame is at the UDP level.
#[derive(Debug)]
pub enum Layered<'a> {
    /// A datagram.
    Udp(Datagram<'a>),
    /// An IP fragment held for reassembly.
    Fragment {
        /// Source address.
        src: IpAddr,
        /// Destination address.
        dst: IpAddr,
    },
    /// Not UDP (ARP, TCP, ICMP ...): not ours.
    NotUdp(&'static str),
}

/// Bytes of a Linux cooked v2 header (`LINKTYPE_LINUX_SLL2`).
const SLL2_LEN: usize = 20;
/// Bytes of a BSD loopback header (`LINKTYPE_NULL`, `LINKTYPE_LOOP`).
const NULL_LEN: usize = 4;
/// Fragment sets held at once; beyond this the oldest are dropped (a capture of a
/// fragment flood must not exhaust memory).
const FRAGMENT_SETS_MAX: usize = 1024;

/// Turns frames into UDP datagrams.
pub struct Layers {
    linktype: Linktype,
    defrag: IpDefragPool<u64, ()>,
    fragments_pending: usize,
    frame_counter: u64,
}

impl Layers {
    /// For frames of `linktype`.
    pub fn new(linktype: Linktype) -> Layers {
        Layers {
            linktype,
            defrag: IpDefragPool::new(),
            fragments_pending: 0,
            frame_counter: 0,
        }
    }

    /// Is this a link type we can read?
    pub fn supported(linktype: Linktype) -> bool {
        matches!(
            linktype,
            Linktype::ETHERNET
                | Linktype::LINUX_SLL
                | Linktype::LINUX_SLL2
                | Linktype::NULL
                | Linktype::LOOP
                | Linktype::RAW
                | Linktype::IPV4
                | Linktype::IPV6
        ) || linktype.0 == 12
    }

    /// Peels one frame down to UDP.
    pub fn peel<'a>(&mut self, frame: &'a [u8]) -> Result<Layered<'a>, Error> {
        self.frame_counter += 1;
        let sliced = self.slice(frame)?;
        let Some(net) = &sliced.net else {
            return Ok(Layered::NotUdp("not IP"));
        };
        let (src_ip, dst_ip, fragmented, ip_number) = match net {
            NetSlice::Ipv4(v4) => (
                IpAddr::V4(v4.header().source_addr()),
                IpAddr::V4(v4.header().destination_addr()),
                v4.payload().fragmented,
                v4.payload().ip_number,
            ),
            NetSlice::Ipv6(v6) => (
                IpAddr::V6(v6.header().source_addr()),
                IpAddr::V6(v6.header().destination_addr()),
                v6.payload().fragmented,
                v6.payload().ip_number,
            ),
        };
        if fragmented {
            return self.defragment(&sliced, src_ip, dst_ip, ip_number);
        }
        match &sliced.transport {
            Some(TransportSlice::Udp(udp)) => {
                let payload = udp.payload();
                let offset = offset_in(frame, payload);
                Ok(Layered::Udp(Datagram::Borrowed {
                    src: SocketAddr::new(src_ip, udp.source_port()),
                    dst: SocketAddr::new(dst_ip, udp.destination_port()),
                    payload,
                    offset,
                }))
            }
            _ => Ok(Layered::NotUdp("not UDP")),
        }
    }

    fn slice<'a>(&self, frame: &'a [u8]) -> Result<SlicedPacket<'a>, Error> {
        let (result, base) = match self.linktype {
            Linktype::ETHERNET => (SlicedPacket::from_ethernet(frame), 0),
            Linktype::LINUX_SLL => (SlicedPacket::from_linux_sll(frame), 0),
            Linktype::LINUX_SLL2 => {
                let Some(protocol) = frame.get(0..2) else {
                    return Err(truncated(
                        Layer::Link,
                        0,
                        "sll2 header",
                        SLL2_LEN,
                        frame.len(),
                    ));
                };
                let Some(rest) = frame.get(SLL2_LEN..) else {
                    return Err(truncated(
                        Layer::Link,
                        0,
                        "sll2 header",
                        SLL2_LEN,
                        frame.len(),
                    ));
                };
                let ether_type = EtherType(u16::from_be_bytes([protocol[0], protocol[1]]));
                (SlicedPacket::from_ether_type(ether_type, rest), SLL2_LEN)
            }
            Linktype::NULL | Linktype::LOOP => {
                let Some(rest) = frame.get(NULL_LEN..) else {
                    return Err(truncated(
                        Layer::Link,
                        0,
                        "loopback header",
                        NULL_LEN,
                        frame.len(),
                    ));
                };
                (SlicedPacket::from_ip(rest), NULL_LEN)
            }
            _ => (SlicedPacket::from_ip(frame), 0),
        };
        result.map_err(|e| slice_error(&e, base))
    }

    fn defragment<'a>(
        &mut self,
        sliced: &SlicedPacket<'_>,
        src: IpAddr,
        dst: IpAddr,
        ip_number: IpNumber,
    ) -> Result<Layered<'a>, Error> {
        if ip_number != IpNumber::UDP {
            return Ok(Layered::NotUdp("fragment of a non-UDP packet"));
        }
        let now = self.frame_counter;
        let done =
            self.defrag
                .process_sliced_packet(sliced, now, ())
                .map_err(|e| {
                    Error::new(Layer::Ip, 0, ErrorKind::InvalidValue {
                field: match e {
                    etherparse::defrag::IpDefragError::UnalignedFragmentPayloadLen { .. } => {
                        "fragment payload length (not a multiple of 8)"
                    }
                    etherparse::defrag::IpDefragError::SegmentTooBig { .. } => {
                        "reassembled IP payload length"
                    }
                    etherparse::defrag::IpDefragError::ConflictingEnd { .. } => {
                        "fragment end (conflicts with an earlier fragment)"
                    }
                    _ => "fragment (could not be reassembled)",
                },
                value: 0,
            })
                })?;
        match done {
            None => {
                self.fragments_pending += 1;
                if self.fragments_pending > FRAGMENT_SETS_MAX {
                    // Drop sets that have waited for more than FRAGMENT_SETS_MAX frames.
                    let horizon = now.saturating_sub(FRAGMENT_SETS_MAX as u64);
                    self.defrag.retain(|ts| *ts >= horizon);
                    self.fragments_pending = 0;
                }
                Ok(Layered::Fragment { src, dst })
            }
            Some(whole) => {
                let udp = UdpSlice::from_slice(&whole.payload).map_err(|_| {
                    truncated(
                        Layer::Udp,
                        0,
                        "reassembled udp datagram",
                        8,
                        whole.payload.len(),
                    )
                })?;
                Ok(Layered::Udp(Datagram::Reassembled {
                    src: SocketAddr::new(src, udp.source_port()),
                    dst: SocketAddr::new(dst, udp.destination_port()),
                    payload: udp.payload().to_vec(),
                }))
            }
        }
    }
}

fn offset_in(frame: &[u8], inner: &[u8]) -> usize {
    (inner.as_ptr() as usize).saturating_sub(frame.as_ptr() as usize)
}

fn truncated(
    layer: Layer,
    offset: usize,
    field: &'static str,
    needed: usize,
    available: usize,
) -> Error {
    Error::new(
        layer,
        offset,
        ErrorKind::Truncated {
            field,
            needed,
            available,
        },
    )
}

/// Maps etherparse's error to ours: the layer and, for length errors, the offset and sizes.
fn slice_error(e: &etherparse::err::packet::SliceError, base: usize) -> Error {
    use etherparse::err::packet::SliceError as E;
    use etherparse::err::Layer as L;
    match e {
        E::Len(len) => {
            let layer = match len.layer {
                L::Ethernet2Header | L::LinuxSllHeader | L::VlanHeader => Layer::Link,
                L::UdpHeader | L::UdpPayload => Layer::Udp,
                _ => Layer::Ip,
            };
            truncated(
                layer,
                base + len.layer_start_offset,
                layer_field(len.layer),
                len.required_len,
                len.len,
            )
        }
        E::LinuxSll(_) => Error::new(
            Layer::Link,
            base,
            ErrorKind::InvalidValue {
                field: "linux sll header",
                value: 0,
            },
        ),
        E::Ip(_) | E::Ipv4(_) | E::Ipv6(_) | E::Ipv4Exts(_) | E::Ipv6Exts(_) => Error::new(
            Layer::Ip,
            base,
            ErrorKind::InvalidValue {
                field: "ip header",
                value: 0,
            },
        ),
        _ => Error::new(
            Layer::Udp,
            base,
            ErrorKind::InvalidValue {
                field: "transport header",
                value: 0,
            },
        ),
    }
}

fn layer_field(layer: etherparse::err::Layer) -> &'static str {
    use etherparse::err::Layer as L;
    match layer {
        L::Ethernet2Header => "ethernet header",
        L::LinuxSllHeader => "linux sll header",
        L::VlanHeader => "vlan header",
        L::Ipv4Header => "ipv4 header",
        L::Ipv4Packet => "ipv4 packet",
        L::Ipv6Header => "ipv6 header",
        L::Ipv6Packet => "ipv6 packet",
        L::UdpHeader => "udp header",
        L::UdpPayload => "udp payload",
        _ => "header",
    }
}
