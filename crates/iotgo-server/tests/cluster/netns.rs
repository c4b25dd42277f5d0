//! A node on a host of its own: a Linux network namespace with two links to this host —
//! the cluster link (to PostgreSQL and NATS, through forwarders on this host) and the
//! client link (its devices) — so a test can cut the node off the cluster while its
//! devices still reach it. Needs root (`ip netns`); `None` otherwise.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The namespace and its links; removed when dropped.
pub(crate) struct Netns {
    /// The namespace's name (for `ip netns exec`).
    pub name: String,
    cluster_if: String,
    client_if: String,
    /// This host's end of the cluster link.
    pub cluster_host: Ipv4Addr,
    /// The namespace's end of the client link (where its node listens).
    pub client_ns: Ipv4Addr,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

impl Netns {
    /// Makes the namespace and its two /30 links (10.2xx.…); `None` without the rights.
    pub(crate) fn create() -> Option<Netns> {
        let tag = std::process::id() % 10_000;
        let name = format!("iotgo-part-{tag}");
        let (cluster_if, client_if) = (format!("igc{tag}"), format!("igd{tag}"));
        let (a, b) = ((tag / 250) as u8, (tag % 250) as u8);
        let net = |x: u8, last: u8| Ipv4Addr::new(10, 200 + a % 50, b, x * 4 + last);
        if !ip(&["netns", "add", &name]) {
            return None;
        }
        let ns = Netns {
            name,
            cluster_if,
            client_if,
            cluster_host: net(0, 1),
            client_ns: net(1, 2),
        };
        for (x, host_if) in [(0, &ns.cluster_if), (1, &ns.client_if)] {
            let peer = format!("{host_if}n");
            let (host, inner) = (net(x, 1), net(x, 2));
            let ok = ip(&[
                "link", "add", host_if, "type", "veth", "peer", "name", &peer,
            ]) && ip(&["link", "set", &peer, "netns", &ns.name])
                && ip(&["addr", "add", &format!("{host}/30"), "dev", host_if])
                && ip(&["link", "set", host_if, "up"])
                && ns.exec(&["ip", "addr", "add", &format!("{inner}/30"), "dev", &peer])
                && ns.exec(&["ip", "link", "set", &peer, "up"])
                && ns.exec(&["ip", "link", "set", "lo", "up"]);
            assert!(ok, "setting up the link {host_if}");
        }
        Some(ns)
    }

    fn exec(&self, args: &[&str]) -> bool {
        let mut all = vec!["netns", "exec", &self.name];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Cuts the cluster link: the node reaches neither PostgreSQL, NATS nor the others.
    pub(crate) fn cut(&self) {
        assert!(ip(&["link", "set", &self.cluster_if, "down"]));
    }

    /// Mends the cluster link.
    pub(crate) fn heal(&self) {
        assert!(ip(&["link", "set", &self.cluster_if, "up"]));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its ends of the links, and with them ours.
        ip(&["netns", "delete", &self.name]);
        ip(&["link", "delete", &self.cluster_if]);
        ip(&["link", "delete", &self.client_if]);
    }
}

/// Forwards TCP connections made to `listen` (port 0: any) to `to`; the address it
/// listens on, and the task (abort it to stop).
pub(crate) async fn forward(listen: SocketAddr, to: SocketAddr) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind(listen).await.expect("bind a forwarder");
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut a, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut b) = TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                }
            });
        }
    });
    (addr, task)
}
