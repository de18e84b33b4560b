//! The client's address behind a reverse proxy the operator trusts
//! (`trusted_proxies`).
//!
//! Everything that counts or records a client address — the sign-in and
//! SSO-OIDC buckets, the lockout, pending WebSocket upgrades, the metrics'
//! address list, `sourceIPAddress` in the trail — reads axum's
//! `ConnectInfo`. Without trusted proxies that is the TCP peer and
//! `X-Forwarded-For` is never read: anyone can write it. With them, a
//! request whose peer is one of them has `ConnectInfo` replaced by the
//! address the proxies were reached from: `X-Forwarded-For` read from the
//! right, skipping trusted hops, since only the entries the trusted proxies
//! appended can be believed and a client can put anything to their left.
//!
//! The limit on connections per address is counted at accept, before any
//! header, so it stays the proxy's.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

/// The header the proxies append to.
const FORWARDED_FOR: &str = "x-forwarded-for";

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    blocks: Arc<Vec<IpNet>>,
}

/// A trusted proxy sent an `X-Forwarded-For` that names no address.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("X-Forwarded-For entry {0:?} from a trusted proxy is not an IP address")]
pub struct Malformed(String);

impl TrustedProxies {
    /// Parses the configured CIDR blocks.
    pub fn parse(blocks: &[String]) -> Result<TrustedProxies, String> {
        let blocks = blocks
            .iter()
            .map(|b| {
                b.parse::<IpNet>().map_err(|_| {
                    format!("trusted_proxies: {b:?} is not a CIDR block like 10.0.0.0/8")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedProxies {
            blocks: Arc::new(blocks),
        })
    }

    /// The configured blocks.
    pub fn blocks(&self) -> &[IpNet] {
        &self.blocks
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.blocks.iter().any(|b| b.contains(&ip))
    }

    /// The client's address: `peer` itself unless it is a trusted proxy,
    /// else the rightmost `X-Forwarded-For` entry that is not one (or the
    /// leftmost, when every entry is trusted; or `peer`, without the
    /// header).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> Result<IpAddr, Malformed> {
        if !self.trusts(peer) {
            return Ok(peer);
        }
        let mut client = peer;
        // Several headers are one list, in order.
        let entries: Vec<&str> = headers
            .get_all(FORWARDED_FOR)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("\u{0}").split(','))
            .collect();
        for entry in entries.iter().rev() {
            let ip = parse_entry(entry.trim()).ok_or_else(|| Malformed(entry.trim().into()))?;
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        Ok(client.to_canonical())
    }
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, with a port
/// `192.0.2.1:4711` or `[2001:db8::1]:4711`, or bracketed `[2001:db8::1]`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse().ok())
        })
}

/// Middleware: puts the client's address in `ConnectInfo` for everything
/// behind it; 400 for a trusted proxy's unreadable header.
pub async fn resolve(proxies: TrustedProxies, mut req: Request, next: Next) -> Response {
    let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
        return next.run(req).await;
    };
    match proxies.client(peer.ip(), req.headers()) {
        Ok(ip) if ip == peer.ip() => next.run(req).await,
        Ok(ip) => {
            tracing::trace!(proxy = %peer.ip(), client = %ip, "client behind a trusted proxy");
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(ip, peer.port())));
            next.run(req).await
        }
        Err(e) => {
            tracing::warn!(proxy = %peer.ip(), error = %e, "refusing a request");
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(FORWARDED_FOR, v.parse().expect("header"));
        }
        h
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::parse(&["10.0.0.0/8".into(), "2001:db8:ff::/48".into()]).expect("valid")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_writes() {
        let p = proxies();
        let h = headers(&["203.0.113.9"]);
        assert_eq!(p.client(ip("192.0.2.7"), &h), Ok(ip("192.0.2.7")));
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1"), &h),
            Ok(ip("10.0.0.1"))
        );
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let p = proxies();
        // A client that writes its own header gets only its real address
        // believed: the proxy appended that one on the right.
        let h = headers(&["198.51.100.1, 192.0.2.7"]);
        assert_eq!(p.client(ip("10.1.2.3"), &h), Ok(ip("192.0.2.7")));
        // Trusted hops are skipped, across several headers.
        let h = headers(&["192.0.2.7, 10.9.9.9", "2001:db8:ff::5"]);
        assert_eq!(p.client(ip("10.1.2.3"), &h), Ok(ip("192.0.2.7")));
        // Ports, brackets and IPv4-mapped IPv6 are understood.
        let h = headers(&["[2001:db8:1::7]:4711"]);
        assert_eq!(p.client(ip("10.1.2.3"), &h), Ok(ip("2001:db8:1::7")));
        let h = headers(&["192.0.2.7:4711"]);
        assert_eq!(p.client(ip("::ffff:10.1.2.3"), &h), Ok(ip("192.0.2.7")));
        let h = headers(&["::ffff:192.0.2.7"]);
        assert_eq!(p.client(ip("10.1.2.3"), &h), Ok(ip("192.0.2.7")));
    }

    #[test]
    fn without_the_header_or_with_only_proxies_the_nearest_is_used() {
        let p = proxies();
        assert_eq!(
            p.client(ip("10.1.2.3"), &HeaderMap::new()),
            Ok(ip("10.1.2.3"))
        );
        let h = headers(&["10.7.7.7, 10.8.8.8"]);
        assert_eq!(p.client(ip("10.1.2.3"), &h), Ok(ip("10.7.7.7")));
    }

    #[test]
    fn garbage_from_a_trusted_proxy_is_refused_but_garbage_beyond_the_client_is_not_read() {
        let p = proxies();
        let h = headers(&["192.0.2.7, unknown"]);
        assert_eq!(
            p.client(ip("10.1.2.3"), &h),
            Err(Malformed("unknown".into()))
        );
        let h = headers(&["not an address, 192.0.2.7"]);
        assert_eq!(p.client(ip("10.1.2.3"), &h), Ok(ip("192.0.2.7")));
    }

    #[test]
    fn blocks_must_be_cidr() {
        let e = TrustedProxies::parse(&["10.0.0.0/33".into()]).expect_err("invalid");
        assert!(e.contains("trusted_proxies"), "{e}");
    }
}
