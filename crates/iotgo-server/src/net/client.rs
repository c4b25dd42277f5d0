//! The client address of a request ([`ClientIp`]): the TCP peer, or behind a trusted
//! reverse proxy the address that proxy saw, from `X-Forwarded-For`.

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The address of the client that sent a request, for limits that key on the client
/// (throttles) and for the request's log span. Every request served by
/// [`App::serve`](crate::App::serve) carries it as an extension; as an extractor it
/// answers 500 where it is missing (a router served some other way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no client address on the request")))
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed (`trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// The proxies of the configuration.
    pub(crate) fn new(nets: &[IpNet]) -> TrustedProxies {
        TrustedProxies(nets.to_vec())
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request from `peer` with `headers`: `peer` itself unless it is a
    /// trusted proxy; then the right-most address of `X-Forwarded-For` (each proxy
    /// appends the address it saw) that is not a trusted proxy. Addresses left of it
    /// were written by the client and prove nothing. A list of trusted proxies only, or
    /// one that stops at an entry that is not an address, gives its last address read.
    pub(crate) fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if self.0.is_empty() || !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .flat_map(|v| v.to_str().unwrap_or_default().rsplit(','));
        for hop in hops {
            let Some(ip) = parse_hop(hop.trim()) else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, or an address and port (`1.2.3.4:5`,
/// `[::1]:5`, as some proxies write).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(proxies: &[&str], peer: &str, xff: &[&str]) -> String {
        let nets: Vec<IpNet> = proxies.iter().map(|p| p.parse().unwrap()).collect();
        let mut headers = HeaderMap::new();
        for v in xff {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        TrustedProxies::new(&nets)
            .client(peer.parse().unwrap(), &headers)
            .to_string()
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let proxies = ["10.0.0.0/8"];
        // An untrusted peer's header is ignored.
        assert_eq!(
            client(&proxies, "203.0.113.1", &["198.51.100.2"]),
            "203.0.113.1"
        );
        assert_eq!(client(&[], "203.0.113.1", &["198.51.100.2"]), "203.0.113.1");
        // A forged left part is skipped; trusted hops are walked through.
        let xff = ["6.6.6.6, 198.51.100.2, 10.0.0.5"];
        assert_eq!(client(&proxies, "10.0.0.1", &xff), "198.51.100.2");
        let split = ["6.6.6.6", "198.51.100.2:4711", "10.0.0.5"];
        assert_eq!(client(&proxies, "10.0.0.1", &split), "198.51.100.2");
        // Only proxies, or garbage: the last address read.
        assert_eq!(client(&proxies, "10.0.0.1", &["10.0.0.9"]), "10.0.0.9");
        assert_eq!(client(&proxies, "10.0.0.1", &["1.2.3.4, junk"]), "10.0.0.1");
        assert_eq!(client(&proxies, "10.0.0.1", &[]), "10.0.0.1");
        assert_eq!(
            client(&["::1/128"], "::1", &["[2001:db8::1]:80"]),
            "2001:db8::1"
        );
    }
}
