//! The client's IP, for login records and the per-IP order limit.
//!
//! Only proxies on this host are trusted (a request whose peer is loopback), and only as many
//! as `--trusted-proxies` says: each trusted proxy appends the address it saw to
//! `X-Forwarded-For`, so the client is the N-th entry from the right. Entries further left
//! were written by the client (or its own proxies) and may be forged. With no trusted proxies,
//! or a peer that is not loopback, the peer address is the client's.

use std::net::{IpAddr, SocketAddr};

use poem::{http::HeaderMap, Request};

/// How the client's address is found.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientIp {
    trusted_proxies: u8,
}

impl ClientIp {
    pub fn new(trusted_proxies: u8) -> Self {
        Self { trusted_proxies }
    }

    /// The client's address; `None` only when the connection has no IP peer.
    pub fn of(&self, req: &Request) -> Option<IpAddr> {
        let peer = req.remote_addr().as_socket_addr().map(|a| a.ip())?;
        Some(self.resolve(peer, req.headers()))
    }

    /// The client's address, from the peer's and the request's headers.
    fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = unmapped(peer);
        if self.trusted_proxies == 0 || !peer.is_loopback() {
            return peer;
        }
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .collect();
        forwarded_client(&forwarded, self.trusted_proxies).unwrap_or(peer)
    }
}

/// The entry the outermost trusted proxy wrote: the N-th from the right, or the leftmost when
/// there are fewer (every entry then came from a trusted proxy). `None` when there is none or
/// it is not an address.
fn forwarded_client(entries: &[&str], trusted_proxies: u8) -> Option<IpAddr> {
    let index = entries.len().checked_sub(1)?;
    let index = index.saturating_sub(usize::from(trusted_proxies).saturating_sub(1));
    parse_entry(entries[index])
}

/// `192.0.2.1`, `2001:db8::1`, or either with a port (`192.0.2.1:5000`, `[2001:db8::1]:80`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(unmapped)
}

/// `::ffff:192.0.2.1` is `192.0.2.1`.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    /// A peer and its request's `X-Forwarded-For` headers.
    struct Request(IpAddr, HeaderMap);

    fn request(peer: &str, forwarded: &[&str]) -> Request {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        Request(peer.parse::<SocketAddr>().unwrap().ip(), headers)
    }

    impl ClientIp {
        fn of_test(&self, req: &Request) -> Option<IpAddr> {
            Some(self.resolve(req.0, &req.1))
        }
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn the_entry_the_trusted_proxy_added_wins_over_forged_ones() {
        let one = ClientIp::new(1);
        let forged = request("127.0.0.1:5000", &["203.0.113.66, 198.51.100.7"]);
        assert_eq!(one.of_test(&forged), ip("198.51.100.7"));
        // Several headers are one list, in order.
        let split = request("127.0.0.1:5000", &["203.0.113.66", "198.51.100.7"]);
        assert_eq!(one.of_test(&split), ip("198.51.100.7"));
        // Two trusted proxies: the second entry from the right.
        let two = ClientIp::new(2);
        let chain = request("127.0.0.1:5000", &["6.6.6.6, 198.51.100.7, 10.0.0.2"]);
        assert_eq!(two.of_test(&chain), ip("198.51.100.7"));
        // Fewer entries than trusted proxies: all were written by trusted proxies.
        let short = request("127.0.0.1:5000", &["198.51.100.7"]);
        assert_eq!(two.of_test(&short), ip("198.51.100.7"));
    }

    #[test]
    fn forwarded_addresses_count_only_from_loopback_and_only_with_trusted_proxies() {
        let header = ["203.0.113.66"];
        assert_eq!(
            ClientIp::new(0).of_test(&request("127.0.0.1:5000", &header)),
            ip("127.0.0.1")
        );
        assert_eq!(
            ClientIp::new(1).of_test(&request("192.0.2.5:5000", &header)),
            ip("192.0.2.5")
        );
        assert_eq!(
            ClientIp::new(1).of_test(&request("[::1]:5000", &header)),
            ip("203.0.113.66")
        );
        assert_eq!(
            ClientIp::new(1).of_test(&request("[::ffff:127.0.0.1]:5000", &header)),
            ip("203.0.113.66")
        );
    }

    #[test]
    fn odd_entries_fall_back_to_the_peer() {
        let one = ClientIp::new(1);
        assert_eq!(
            one.of_test(&request("127.0.0.1:1", &["unknown"])),
            ip("127.0.0.1")
        );
        assert_eq!(
            one.of_test(&request("127.0.0.1:1", &[" , "])),
            ip("127.0.0.1")
        );
        assert_eq!(one.of_test(&request("127.0.0.1:1", &[])), ip("127.0.0.1"));
        assert_eq!(
            one.of_test(&request("127.0.0.1:1", &["198.51.100.7:4711"])),
            ip("198.51.100.7")
        );
        assert_eq!(
            one.of_test(&request("127.0.0.1:1", &["[2001:db8::1]:80"])),
            ip("2001:db8::1")
        );
        assert_eq!(
            one.of_test(&request("127.0.0.1:1", &["::ffff:198.51.100.7"])),
            ip("198.51.100.7")
        );
    }
}
