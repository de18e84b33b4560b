//! Limits on what one client address may hold or ask for (docs/security.md
//! §5.1, §5.9, §5.14): open connections, WebSocket upgrades not yet
//! authenticated, and the rate of the unauthenticated entry points that cost
//! an Argon2 verification or write a row (console and portal sign-in,
//! SSO-OIDC `RegisterClient` and `StartDeviceAuthorization`).
//!
//! **Which address.** The TCP peer's, or the client a trusted reverse proxy
//! names (`trusted_proxies`, [`crate::http::client_address`]). Otherwise
//! `X-Forwarded-For` and similar headers are never read: anyone can write
//! them, so trusting them would let a client pick a fresh address for every
//! request. Connections are counted at accept, so those caps stay the
//! proxy's. IPv6 peers are counted by their /64 prefix (one host usually
//! owns a whole /64), IPv4-mapped IPv6 addresses as the IPv4 address.
//!
//! Memory is bounded: connection and upgrade counters keep an entry only
//! while an address holds something, and each rate limiter tracks at most
//! [`RateSettings::max_tracked`] addresses (idle ones are pruned).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// `[limits]`: connection and request limits per client address.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Seconds a connection has to deliver a complete request head, counted
    /// from the moment it is ready for one: when it opens, and after each
    /// response. So this is also how long an idle keep-alive connection
    /// stays open. 0 turns it off.
    pub header_read_timeout_secs: u64,
    /// Seconds a request body has before any of it counts (see
    /// [`crate::http::body_deadline`]). 0 turns the body deadline off.
    pub body_read_timeout_secs: u64,
    /// Bytes of body that buy one more second on top of
    /// `body_read_timeout_secs`: the least rate a long upload must keep.
    /// 0: the timeout is all any body gets.
    pub body_min_rate_bytes: u64,
    /// Open connections in all.
    pub max_connections: usize,
    /// Open connections from one client address.
    pub max_connections_per_address: usize,
    /// Data-channel WebSockets from one address that have not yet presented
    /// a valid token (they have [`crate::gateway::OPEN_TIMEOUT`] to do so).
    pub max_pending_upgrades_per_address: usize,
    /// Console sign-in (`POST /signin`, `POST /signin/password`) and the
    /// portal's (`POST /start/signin`), per address (`[limits.signin]`).
    pub signin: RateSettings,
    /// SSO-OIDC `RegisterClient` and `StartDeviceAuthorization`, per address
    /// (`[limits.sso_oidc]`).
    pub sso_oidc: RateSettings,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            header_read_timeout_secs: 20,
            body_read_timeout_secs: 20,
            body_min_rate_bytes: 500,
            max_connections: 8192,
            // Generous for one address: a load test or a NAT of many users
            // opens hundreds of data channels from a single address.
            max_connections_per_address: 1024,
            max_pending_upgrades_per_address: 1024,
            signin: RateSettings::default(),
            sso_oidc: RateSettings::default(),
        }
    }
}

impl LimitSettings {
    /// Refuses values that would make the server unusable.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("limits.max_connections", self.max_connections),
            (
                "limits.max_connections_per_address",
                self.max_connections_per_address,
            ),
            (
                "limits.max_pending_upgrades_per_address",
                self.max_pending_upgrades_per_address,
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        self.signin.validate("limits.signin")?;
        self.sso_oidc.validate("limits.sso_oidc")
    }

    /// The header read (and keep-alive idle) timeout, if on.
    pub fn header_read_timeout(&self) -> Option<Duration> {
        (self.header_read_timeout_secs > 0)
            .then(|| Duration::from_secs(self.header_read_timeout_secs))
    }

    /// The request body deadline, if on.
    pub fn body_deadline(&self) -> Option<crate::http::body_deadline::BodyDeadline> {
        (self.body_read_timeout_secs > 0).then(|| crate::http::body_deadline::BodyDeadline {
            grace: Duration::from_secs(self.body_read_timeout_secs),
            min_rate_bytes: self.body_min_rate_bytes,
        })
    }
}

/// A token bucket per client address.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateSettings {
    /// Requests an address may make at once.
    pub burst: u32,
    /// Requests per minute it gets back afterwards.
    pub per_minute: u32,
    /// Addresses tracked at most; when that many are active at once, the
    /// entry point refuses everyone until idle ones can be pruned (bounded
    /// memory before availability during a flood from many addresses).
    pub max_tracked: usize,
}

// One default for every bucket, so a section that sets some keys gets the
// same defaults for the others whichever bucket it is.
impl Default for RateSettings {
    fn default() -> Self {
        RateSettings {
            burst: 30,
            per_minute: 30,
            max_tracked: 100_000,
        }
    }
}

impl RateSettings {
    fn validate(&self, name: &str) -> Result<(), String> {
        if self.burst == 0 || self.per_minute == 0 || self.max_tracked == 0 {
            return Err(format!(
                "{name}: burst, per_minute and max_tracked must each be at least 1"
            ));
        }
        Ok(())
    }
}

/// The key an address is counted under: IPv4 as is, IPv6 by its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Counts what each address holds (connections, pending upgrades), with a
/// cap per address and one in all.
#[derive(Debug)]
pub struct Holdings {
    total_cap: usize,
    per_address_cap: usize,
    held: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Why [`Holdings::acquire`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The cap in all is reached.
    Total,
    /// This address's cap is reached.
    Address,
}

impl Holdings {
    /// Counters with these caps.
    pub fn new(total_cap: usize, per_address_cap: usize) -> Arc<Holdings> {
        Arc::new(Holdings {
            total_cap,
            per_address_cap,
            held: Mutex::new(Counts::default()),
        })
    }

    /// One more for `ip`, released when the permit drops.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refused> {
        let key = client_key(ip);
        // A poisoned lock only means another thread panicked mid-update of
        // two integers; the counts stay usable.
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.total >= self.total_cap {
            return Err(Refused::Total);
        }
        let mine = held.by_address.entry(key).or_insert(0);
        if *mine >= self.per_address_cap {
            return Err(Refused::Address);
        }
        *mine += 1;
        held.total += 1;
        Ok(Permit {
            holdings: self.clone(),
            key,
        })
    }

    /// What `ip` holds now.
    pub fn held_by(&self, ip: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.by_address.get(&client_key(ip)).copied().unwrap_or(0)
    }

    /// What all addresses hold now.
    pub fn held(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

/// One unit held by an address; dropping it gives it back.
#[derive(Debug)]
pub struct Permit {
    holdings: Arc<Holdings>,
    key: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut held = self.holdings.held.lock().unwrap_or_else(|p| p.into_inner());
        held.total = held.total.saturating_sub(1);
        if let Some(mine) = held.by_address.get_mut(&self.key) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                // Addresses holding nothing take no memory.
                held.by_address.remove(&self.key);
            }
        }
    }
}

/// A token bucket per client address (GCRA, by `governor`).
#[derive(Debug)]
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    max_tracked: usize,
    /// When idle addresses were last pruned (ms since `epoch`).
    last_prune_ms: AtomicU64,
    epoch: std::time::Instant,
}

impl RateLimit {
    /// A limiter with these settings.
    pub fn new(settings: &RateSettings) -> RateLimit {
        let burst = NonZeroU32::new(settings.burst).unwrap_or(NonZeroU32::MIN);
        let per_minute = NonZeroU32::new(settings.per_minute).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        let clock = DefaultClock::default();
        RateLimit {
            limiter: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            clock,
            max_tracked: settings.max_tracked,
            last_prune_ms: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
        }
    }

    /// Takes a token for `ip`; `Err(wait)` says how long until the next one.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.limiter.len() >= self.max_tracked {
            self.prune(Duration::from_secs(1));
            if self.limiter.len() >= self.max_tracked {
                tracing::warn!(
                    tracked = self.limiter.len(),
                    "rate limiter full: refusing every address until idle ones can be pruned"
                );
                return Err(Duration::from_secs(1));
            }
        }
        self.limiter
            .check_key(&client_key(ip))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets addresses whose bucket is full again, at most once per
    /// `every`.
    pub fn prune(&self, every: Duration) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_prune_ms.load(Ordering::Relaxed);
        let every_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX);
        if now.saturating_sub(last) < every_ms && last != 0 {
            return;
        }
        if self
            .last_prune_ms
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return; // Another request is pruning.
        }
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

/// The per-address limits handlers consult.
#[derive(Debug)]
pub struct Limits {
    /// Data-channel upgrades not yet authenticated.
    pub pending_upgrades: Arc<Holdings>,
    /// Console and portal sign-in.
    pub signin: RateLimit,
    /// SSO-OIDC client registration and device authorization.
    pub sso_oidc: RateLimit,
}

impl Limits {
    /// Limits with these settings.
    pub fn new(settings: &LimitSettings) -> Limits {
        Limits {
            // Pending upgrades are also connections, so the total is
            // already capped by the connection limit.
            pending_upgrades: Holdings::new(usize::MAX, settings.max_pending_upgrades_per_address),
            signin: RateLimit::new(&settings.signin),
            sso_oidc: RateLimit::new(&settings.sso_oidc),
        }
    }

    /// Prunes idle addresses from the rate limiters (the server calls this
    /// every minute).
    pub fn prune(&self) {
        self.signin.prune(Duration::ZERO);
        self.sso_oidc.prune(Duration::ZERO);
    }
}

/// `Retry-After` seconds for a wait: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Refuses connections beyond the caps, before TLS or HTTP spend anything on
/// them: the socket is closed at once.
#[derive(Debug, Clone)]
pub struct ConnectionLimit<A> {
    inner: A,
    holdings: Arc<Holdings>,
    refused_total: Counter,
    refused_address: Counter,
}

impl<A> ConnectionLimit<A> {
    /// Wraps `inner` (which sees only the connections let in).
    pub fn new(
        inner: A,
        holdings: Arc<Holdings>,
        refused_total: Counter,
        refused_address: Counter,
    ) -> Self {
        ConnectionLimit {
            inner,
            holdings,
            refused_total,
            refused_address,
        }
    }
}

impl<A, S> Accept<TcpStream, S> for ConnectionLimit<A>
where
    A: Accept<TcpStream, S>,
    A::Future: Send + 'static,
    A::Stream: 'static,
    S: 'static,
{
    type Stream = Held<A::Stream>;
    type Service = A::Service;
    type Future = Pin<
        Box<
            dyn std::future::Future<Output = std::io::Result<(Self::Stream, Self::Service)>> + Send,
        >,
    >;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let peer = match stream.peer_addr() {
            Ok(peer) => peer,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let permit = match self.holdings.acquire(peer.ip()) {
            Ok(permit) => permit,
            Err(why) => {
                match why {
                    Refused::Total => self.refused_total.inc(),
                    Refused::Address => self.refused_address.inc(),
                };
                tracing::debug!(%peer, ?why, "connection refused");
                drop(stream);
                return Box::pin(async move {
                    Err(std::io::Error::other(format!(
                        "connection refused: {why:?}"
                    )))
                });
            }
        };
        let inner = self.inner.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = inner.await?;
            Ok((
                Held {
                    inner: stream,
                    _permit: permit,
                },
                service,
            ))
        })
    }
}

/// A connection that holds its place under the caps until it closes.
#[derive(Debug)]
pub struct Held<S> {
    inner: S,
    _permit: Permit,
}

impl<S: AsyncRead + Unpin> AsyncRead for Held<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Held<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(
            client_key(mapped),
            "192.0.2.7".parse::<IpAddr>().expect("ip")
        );
    }

    #[test]
    fn holdings_cap_per_address_and_in_all_and_forget_empty_addresses() {
        let h = Holdings::new(3, 2);
        let one: IpAddr = "192.0.2.1".parse().expect("ip");
        let two: IpAddr = "192.0.2.2".parse().expect("ip");
        let a = h.acquire(one).expect("first");
        let _b = h.acquire(one).expect("second");
        assert_eq!(h.acquire(one).expect_err("third"), Refused::Address);
        let _c = h.acquire(two).expect("other address");
        assert_eq!(h.acquire(two).expect_err("all"), Refused::Total);
        drop(a);
        assert_eq!(h.held_by(one), 1);
        assert!(h.acquire(two).is_ok());
        drop(_b);
        assert_eq!(h.held_by(one), 0);
        assert!(!h.held.lock().expect("lock").by_address.contains_key(&one));
    }

    #[test]
    fn rate_limit_refuses_beyond_the_burst_per_address_and_tracks_a_bounded_number() {
        let r = RateLimit::new(&RateSettings {
            burst: 3,
            per_minute: 1,
            max_tracked: 2,
        });
        let one: IpAddr = "192.0.2.1".parse().expect("ip");
        let two: IpAddr = "192.0.2.2".parse().expect("ip");
        for _ in 0..3 {
            r.check(one).expect("within the burst");
        }
        let wait = r.check(one).expect_err("beyond the burst");
        assert!(wait > Duration::from_secs(50), "{wait:?}");
        r.check(two).expect("another address has its own bucket");
        // Two addresses tracked, the cap: a third is refused (fail closed).
        let three: IpAddr = "192.0.2.3".parse().expect("ip");
        assert!(r.check(three).is_err());
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }
}
