//! HAProxy PROXY protocol (v1 text and v2 binary) header parsing, without I/O.
//!
//! Contract: [`parse`] looks at the bytes received so far on a connection from a load
//! balancer. It answers `Ok(Some((header, consumed)))` once a complete header is present
//! (`consumed` bytes belong to the header; the rest is the proxied stream), `Ok(None)` if more
//! bytes are needed, and `Err` if the bytes cannot be a PROXY header. A connection on a
//! PROXY-enabled listener that does not start with a valid header must be dropped: trusting
//! the socket address instead would let anyone behind the balancer bypass IP allow-lists.
//!
//! Spec: <https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use thiserror::Error;

/// The v2 signature (12 bytes).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 header, CRLF included.
pub const V1_MAX: usize = 107;

/// What the proxy told us about the original connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// The proxied client and the address it connected to.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// `PROXY UNKNOWN` / v2 `LOCAL`: a connection made by the proxy itself (health checks);
    /// use the socket's own addresses.
    Local,
}

/// Why bytes are not a valid PROXY header.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProxyError {
    #[error("not a PROXY protocol header")]
    NotProxy,
    #[error("malformed PROXY v1 header: {0}")]
    BadV1(&'static str),
    #[error("malformed PROXY v2 header: {0}")]
    BadV2(&'static str),
}

/// Parse a PROXY header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] == b'P' {
        let want = b"PROXY ";
        let n = buf.len().min(want.len());
        if buf[..n] != want[..n] {
            return Err(ProxyError::NotProxy);
        }
        return parse_v1(buf);
    }
    if buf[0] == b'\r' {
        let n = buf.len().min(V2_SIGNATURE.len());
        if buf[..n] != V2_SIGNATURE[..n] {
            return Err(ProxyError::NotProxy);
        }
        return parse_v2(buf);
    }
    Err(ProxyError::NotProxy)
}

fn parse_v1(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let end = match buf.windows(2).position(|w| w == b"\r\n") {
        Some(p) => p,
        None if buf.len() >= V1_MAX => return Err(ProxyError::BadV1("no CRLF within 107 bytes")),
        None => return Ok(None),
    };
    if end + 2 > V1_MAX {
        return Err(ProxyError::BadV1("longer than 107 bytes"));
    }
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| ProxyError::BadV1("not ASCII"))?;
    let parts: Vec<&str> = line.split(' ').collect();
    let consumed = end + 2;
    match parts.get(1).copied() {
        Some("UNKNOWN") => Ok(Some((ProxyHeader::Local, consumed))),
        Some(proto @ ("TCP4" | "TCP6")) => {
            if parts.len() != 6 {
                return Err(ProxyError::BadV1("expected 6 fields"));
            }
            let src: IpAddr = parts[2]
                .parse()
                .map_err(|_| ProxyError::BadV1("bad source address"))?;
            let dst: IpAddr = parts[3]
                .parse()
                .map_err(|_| ProxyError::BadV1("bad destination address"))?;
            let v4 = proto == "TCP4";
            if src.is_ipv4() != v4 || dst.is_ipv4() != v4 {
                return Err(ProxyError::BadV1("address family does not match protocol"));
            }
            let sp = port(parts[4]).ok_or(ProxyError::BadV1("bad source port"))?;
            let dp = port(parts[5]).ok_or(ProxyError::BadV1("bad destination port"))?;
            Ok(Some((
                ProxyHeader::Proxied {
                    source: SocketAddr::new(src, sp),
                    destination: SocketAddr::new(dst, dp),
                },
                consumed,
            )))
        }
        _ => Err(ProxyError::BadV1("unknown protocol")),
    }
}

fn port(s: &str) -> Option<u16> {
    // No sign, no leading zeros (spec), 0..=65535.
    if s.is_empty()
        || s.len() > 5
        || (s.len() > 1 && s.starts_with('0'))
        || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

fn parse_v2(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let ver_cmd = buf[12];
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::BadV2("version is not 2"));
    }
    let fam = buf[13];
    let len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    let total = 16 + len;
    if buf.len() < total {
        return Ok(None);
    }
    let body = &buf[16..total];
    match ver_cmd & 0x0F {
        0 => return Ok(Some((ProxyHeader::Local, total))),
        1 => {}
        _ => return Err(ProxyError::BadV2("unknown command")),
    }
    let header = match fam {
        // TCP over IPv4 / UDP over IPv4
        0x11 | 0x12 => {
            if body.len() < 12 {
                return Err(ProxyError::BadV2("IPv4 address block too short"));
            }
            let src = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let dst = Ipv4Addr::new(body[4], body[5], body[6], body[7]);
            let sp = u16::from_be_bytes([body[8], body[9]]);
            let dp = u16::from_be_bytes([body[10], body[11]]);
            ProxyHeader::Proxied {
                source: SocketAddr::new(IpAddr::V4(src), sp),
                destination: SocketAddr::new(IpAddr::V4(dst), dp),
            }
        }
        0x21 | 0x22 => {
            if body.len() < 36 {
                return Err(ProxyError::BadV2("IPv6 address block too short"));
            }
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&body[0..16]);
            d.copy_from_slice(&body[16..32]);
            let sp = u16::from_be_bytes([body[32], body[33]]);
            let dp = u16::from_be_bytes([body[34], body[35]]);
            ProxyHeader::Proxied {
                source: SocketAddr::new(IpAddr::V6(Ipv6Addr::from(s)), sp),
                destination: SocketAddr::new(IpAddr::V6(Ipv6Addr::from(d)), dp),
            }
        }
        // UNSPEC or UNIX sockets: no usable client address.
        0x00 | 0x31 | 0x32 => ProxyHeader::Local,
        _ => return Err(ProxyError::BadV2("unknown address family")),
    };
    Ok(Some((header, total)))
}

/// Encode a v1 header (for tests and clients).
pub fn encode_v1(source: SocketAddr, destination: SocketAddr) -> String {
    let proto = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {proto} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    )
}

/// Encode a v2 PROXY header (for tests and clients).
pub fn encode_v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x21);
    match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => a,
            };
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(s).octets());
            out.extend_from_slice(&v6(d).octets());
        }
    }
    out.extend_from_slice(&source.port().to_be_bytes());
    out.extend_from_slice(&destination.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_tcp4_and_tcp6() {
        let h = b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 25\r\nEHLO x\r\n";
        let (hdr, n) = parse(h).unwrap().unwrap();
        assert_eq!(&h[n..], b"EHLO x\r\n");
        assert_eq!(
            hdr,
            ProxyHeader::Proxied {
                source: sa("203.0.113.7:51234"),
                destination: sa("10.0.0.1:25")
            }
        );
        let (hdr, _) = parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 587\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            hdr,
            ProxyHeader::Proxied {
                source: sa("[2001:db8::1]:4000"),
                destination: sa("[2001:db8::2]:587")
            }
        );
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n").unwrap().unwrap().0,
            ProxyHeader::Local
        );
    }

    #[test]
    fn v1_needs_more_and_rejects_garbage() {
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4").unwrap(), None);
        assert_eq!(parse(b"PRO").unwrap(), None);
        assert_eq!(parse(b"EHLO example.com\r\n"), Err(ProxyError::NotProxy));
        assert!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 25\r\n").is_err());
        assert!(parse(b"PROXY TCP4 ::1 5.6.7.8 1 25\r\n").is_err());
        assert!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 01 25\r\n").is_err());
        assert!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n").is_err());
        assert!(parse(&[b'P'; 200][..]).is_err());
        let long = format!("PROXY TCP4 {}\r\n", "1".repeat(120));
        assert!(parse(long.as_bytes()).is_err());
    }

    #[test]
    fn v2_round_trips_and_local() {
        for (s, d) in [
            ("198.51.100.9:40000", "192.0.2.1:25"),
            ("[2001:db8::9]:1", "[2001:db8::1]:465"),
        ] {
            let mut b = encode_v2(sa(s), sa(d));
            let hl = b.len();
            b.extend_from_slice(b"EHLO");
            let (hdr, n) = parse(&b).unwrap().unwrap();
            assert_eq!(n, hl);
            assert_eq!(
                hdr,
                ProxyHeader::Proxied {
                    source: sa(s),
                    destination: sa(d)
                }
            );
            // Every strict prefix asks for more bytes.
            for cut in 1..hl {
                assert_eq!(parse(&b[..cut]).unwrap(), None, "prefix {cut}");
            }
        }
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(parse(&local).unwrap().unwrap(), (ProxyHeader::Local, 16));
    }

    #[test]
    fn v2_rejects_bad_version_command_and_short_blocks() {
        let mut b = encode_v2(sa("1.2.3.4:5"), sa("5.6.7.8:25"));
        b[12] = 0x31;
        assert!(parse(&b).is_err());
        let mut b = encode_v2(sa("1.2.3.4:5"), sa("5.6.7.8:25"));
        b[12] = 0x2F;
        assert!(parse(&b).is_err());
        let mut b = V2_SIGNATURE.to_vec();
        b.extend_from_slice(&[0x21, 0x11, 0, 4, 1, 2, 3, 4]);
        assert!(parse(&b).is_err());
    }

    #[test]
    fn v1_encoder_matches_parser() {
        let h = encode_v1(sa("192.0.2.5:1234"), sa("192.0.2.1:25"));
        let (hdr, n) = parse(h.as_bytes()).unwrap().unwrap();
        assert_eq!(n, h.len());
        assert_eq!(
            hdr,
            ProxyHeader::Proxied {
                source: sa("192.0.2.5:1234"),
                destination: sa("192.0.2.1:25")
            }
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u64 = 0x9E3779B97F4A7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 64) as usize;
            let mut buf: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8).collect();
            if x.is_multiple_of(3) {
                let mut v = V2_SIGNATURE.to_vec();
                v.append(&mut buf);
                buf = v;
            } else if x % 3 == 1 {
                let mut v = b"PROXY ".to_vec();
                v.append(&mut buf);
                buf = v;
            }
            let _ = parse(&buf);
        }
    }
}
