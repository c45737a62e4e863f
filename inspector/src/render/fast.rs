//! Allocation-free formatting for the hot path of the summary view: `core::fmt` machinery
//! was a third of the time of `decode` on a large capture (measured with perf), most of it
//! for integers and socket addresses.

use std::net::{IpAddr, SocketAddr};

/// A line being built.
#[derive(Debug, Default)]
pub struct Line {
    /// The bytes so far.
    pub buf: Vec<u8>,
}

impl Line {
    /// Appends text.
    pub fn s(&mut self, text: &str) -> &mut Self {
        self.buf.extend_from_slice(text.as_bytes());
        self
    }

    /// Appends a decimal number.
    pub fn u(&mut self, n: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let start = decimal(n, &mut digits);
        self.buf.extend_from_slice(&digits[start..]);
        self
    }

    /// Appends a signed decimal number.
    pub fn i(&mut self, n: i64) -> &mut Self {
        if n < 0 {
            self.buf.push(b'-');
        }
        self.u(n.unsigned_abs())
    }

    /// Appends a number in lower-case hex without leading zeros.
    pub fn x(&mut self, n: u64) -> &mut Self {
        let mut buf = [0u8; 16];
        let text = hex16(n, &mut buf);
        let trimmed = text.trim_start_matches('0');
        self.s(if trimmed.is_empty() { "0" } else { trimmed })
    }

    /// Appends `seconds` with six decimals, right-aligned in `width`.
    pub fn seconds(&mut self, seconds: f64, width: usize) -> &mut Self {
        let micros = (seconds * 1e6).round();
        let negative = micros < 0.0;
        let micros = micros.abs() as u64;
        // "<sign><integer>.<6 digits>", assembled right to left on the stack.
        let mut text = [0u8; 28];
        let mut frac = micros % 1_000_000;
        for slot in text[21..27].iter_mut().rev() {
            *slot = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        text[20] = b'.';
        let mut digits = [0u8; 20];
        let start = decimal(micros / 1_000_000, &mut digits);
        let int_len = 20 - start;
        text[20 - int_len..20].copy_from_slice(&digits[start..]);
        let mut first = 20 - int_len;
        if negative {
            first -= 1;
            text[first] = b'-';
        }
        self.pad_left_slice(&text[first..27], width)
    }

    /// Appends a decimal number right-aligned in `width`.
    pub fn u_width(&mut self, n: u64, width: usize) -> &mut Self {
        let mut digits = [0u8; 20];
        let start = decimal(n, &mut digits);
        self.pad_left_slice(&digits[start..], width)
    }

    fn pad_left_slice(&mut self, bytes: &[u8], width: usize) -> &mut Self {
        for _ in bytes.len()..width {
            self.buf.push(b' ');
        }
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Appends `ip:port` (IPv4 by hand; IPv6 through `Display`, as `[ip]:port`).
    pub fn addr(&mut self, addr: &SocketAddr) -> &mut Self {
        match addr.ip() {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                self.u(a.into())
                    .s(".")
                    .u(b.into())
                    .s(".")
                    .u(c.into())
                    .s(".")
                    .u(d.into());
            }
            IpAddr::V6(_) => {
                use std::io::Write;
                let _ = write!(self.buf, "{addr}");
                return self;
            }
        }
        self.s(":").u(addr.port().into())
    }

    /// Appends a list of numbers as `[1, 2, 3]`.
    pub fn list(&mut self, items: &[u32]) -> &mut Self {
        self.s("[");
        for (i, n) in items.iter().enumerate() {
            if i > 0 {
                self.s(", ");
            }
            self.u((*n).into());
        }
        self.s("]")
    }
}

/// Writes `n` in decimal at the end of `digits`; returns where it starts.
fn decimal(mut n: u64, digits: &mut [u8; 20]) -> usize {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut i = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + n as u8;
    }
    i
}

/// `v` as 16 lower-case hex digits in `buf`.
pub fn hex16(v: u64, buf: &mut [u8; 16]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, slot) in buf.iter_mut().enumerate() {
        *slot = HEX[((v >> (60 - 4 * i)) & 0xF) as usize];
    }
    // Only ASCII hex digits were written.
    std::str::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_addresses_match_core_fmt() {
        for n in [0u64, 7, 10, 99, 12345, u64::MAX] {
            let mut l = Line::default();
            l.u(n);
            assert_eq!(l.buf, n.to_string().as_bytes());
            let mut l = Line::default();
            l.x(n);
            assert_eq!(l.buf, format!("{n:x}").as_bytes());
        }
        let mut l = Line::default();
        l.i(-42);
        assert_eq!(l.buf, b"-42");
        for secs in [0.0, 0.000001, 1.5, 123.456789, 3.9999996] {
            let mut l = Line::default();
            l.seconds(secs, 11);
            assert_eq!(String::from_utf8(l.buf).unwrap(), format!("{secs:>11.6}"));
        }
        let addr: SocketAddr = "10.200.0.11:5405".parse().unwrap();
        let mut l = Line::default();
        l.addr(&addr);
        assert_eq!(l.buf, addr.to_string().as_bytes());
        let v6: SocketAddr = "[fe80::1]:5405".parse().unwrap();
        let mut l = Line::default();
        l.addr(&v6);
        assert_eq!(l.buf, v6.to_string().as_bytes());
        let mut l = Line::default();
        l.list(&[1, 2, 3]);
        assert_eq!(l.buf, b"[1, 2, 3]");
        let mut buf = [0u8; 16];
        assert_eq!(hex16(0xdead_beef, &mut buf), "00000000deadbeef");
    }
}
