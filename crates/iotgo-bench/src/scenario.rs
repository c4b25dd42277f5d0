//! The scenarios: each runs its load against the chosen targets in turn (Mosquitto, the
//! reference server, iotgo), one fresh server per target, and writes one report with
//! the ratios the targets are stated in.

use crate::Common;
use crate::cluster::Cluster;
use crate::fanout::{self, Aim, Outcome, Shape};
use crate::report::Report;
use crate::setup::{self, Fleet};
use crate::target::{Launch, Server};
use crate::{http_update, idle, mqtt};
use std::net::SocketAddr;
use std::time::Duration;

fn launch(c: &Common) -> Launch {
    Launch {
        iotgo: c.iotgo.clone(),
        cpus: c.server_cpus.clone(),
        database_url: c.database_url.clone(),
        env: c.server_env.clone(),
        ws_queue_len: c.ws_queue_len,
    }
}

fn wants(c: &Common, name: &str) -> bool {
    c.targets.iter().any(|t| t == name)
}

fn iotgo(c: &Common) -> anyhow::Result<Server> {
    match &c.url {
        Some(url) => Server::external(url),
        None => Server::iotgo(&launch(c)),
    }
}

fn finish(c: &Common, report: Report, scenario: &str) -> anyhow::Result<bool> {
    let dir = (!c.no_report).then_some(c.out.as_path());
    report.finish(dir, scenario, c.label.as_deref())
}

fn ratio(report: &mut Report, what: &str, a: Option<f64>, b: Option<f64>) {
    if let (Some(a), Some(b)) = (a, b) {
        report.line(&format!("- {what}: **{:.2}×**", a / b.max(1e-9)));
    }
}

/// A cluster for `ws-fanout --nodes N`.
#[derive(Clone, Debug)]
pub(crate) struct Nodes {
    /// Nodes to start (2 or more).
    pub n: usize,
    /// A NATS server to use instead of starting one.
    pub nats_url: Option<String>,
}

/// What an iotgo target gave: flat-out delivered pushes/s and, paced at half, the p99.
struct Own {
    delivered: f64,
    p99_half: Option<f64>,
}

/// Runs the fan-out flat out at `aim`, then (with `half`) paced at half the acked rate;
/// one row each, and a note of the commits under the table.
async fn iotgo_rows(
    report: &mut Report,
    notes: &mut Vec<String>,
    name: &str,
    aim: &Aim,
    fleet: &Fleet,
    shape: &Shape,
    half: bool,
) -> anyhow::Result<Own> {
    let o = fanout::run(aim, fleet, shape).await?;
    report.row(name, &o, shape.apps);
    if let Some(c) = &o.committed {
        let how = if shape.rate.is_none() {
            "flat out"
        } else {
            "paced"
        };
        notes.push(format!("- {name}, {how}: {c}"));
    }
    let mut own = Own {
        delivered: o.delivered_rate(),
        p99_half: None,
    };
    if half && shape.rate.is_none() {
        let rate = o.acked_rate() / 2.0 / shape.devices as f64;
        let half_shape = Shape {
            rate: Some(rate),
            ..shape.clone()
        };
        let p = fanout::run(aim, fleet, &half_shape).await?;
        let row = format!(
            "{name} paced at half ({:.0} updates/s)",
            o.acked_rate() / 2.0
        );
        report.row(&row, &p, shape.apps);
        own.p99_half = Some(p.latency.p99_ms());
    }
    Ok(own)
}

/// `ws-fanout`; with `half`, iotgo runs again paced at half its flat-out rate; with
/// `nodes`, iotgo also runs as a cluster: devices on node 0, apps on node 1.
pub(crate) async fn ws_fanout(
    c: &Common,
    shape: Shape,
    half: bool,
    nodes: Option<Nodes>,
) -> anyhow::Result<bool> {
    if let Some(n) = &nodes {
        anyhow::ensure!(n.n >= 2, "--nodes: 2 or more (1 is the single-node run)");
        anyhow::ensure!(
            c.database_url.is_some() && c.url.is_none(),
            "--nodes needs --database-url (a fresh PostgreSQL database) and no --url"
        );
    }
    let mut report = Report::new("ws-fanout", c.server_cpus.as_deref());
    let pace = match shape.rate {
        Some(r) => format!("{r}/s per device"),
        None => format!("flat out, {} in flight per device", shape.inflight),
    };
    report.line(&format!(
        "{} devices × {} apps (each app watches every device), {pace}, {} s per target; \
         iotgo stores on {}.{}\n",
        shape.devices,
        shape.apps,
        shape.duration.as_secs_f64(),
        if c.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        match &nodes {
            Some(n) => format!(
                " Cluster: {} nodes on the same database and NATS ({}), devices on node 0, \
                 apps on node 1: every push crosses NATS; its server CPU is the nodes' and \
                 NATS's together.",
                n.n,
                if n.nats_url.is_some() {
                    "--nats-url"
                } else {
                    "nats-server started here"
                }
            ),
            None => String::new(),
        }
    ));
    report.table();
    let fake = setup::fake_fleet(shape.devices, &c.device_type);
    let (mut mosq, mut refr, mut own, mut clustered) = (None, None, None, None);
    let mut notes = Vec::new();
    if wants(c, "mosquitto") {
        match mqtt::run(&mqtt::Broker::Mosquitto, &fake, &shape).await {
            Ok(o) => {
                report.row("Mosquitto (MQTT QoS 1 in, QoS 0 out)", &o, shape.apps);
                mosq = Some(o.delivered_rate());
            }
            Err(e) => report.line(&format!("| Mosquitto | failed: {e} |")),
        }
    }
    if wants(c, "ref") {
        let server = Server::reference(&launch(c))?;
        let o = fanout::run(&Aim::one(server.addr, server.pid()), &fake, &shape).await?;
        report.row("in-memory reference", &o, shape.apps);
        refr = Some(o.delivered_rate());
    }
    if wants(c, "iotgo") {
        let server = iotgo(c)?;
        let fleet = setup::fleet(server.addr, shape.devices, &c.device_type).await?;
        let aim = Aim::one(server.addr, server.pid()).counted();
        let name = if nodes.is_some() {
            "iotgo, one node"
        } else {
            "iotgo"
        };
        own = Some(iotgo_rows(&mut report, &mut notes, name, &aim, &fleet, &shape, half).await?);
    }
    let mut own_mqtt = None;
    if wants(c, "iotgo-mqtt") {
        let o = iotgo_over_mqtt(c, &shape).await?;
        report.row(
            "iotgo over MQTT (QoS 1 in, acked after commit; QoS 0 out)",
            &o,
            shape.apps,
        );
        own_mqtt = Some(o.delivered_rate());
    }
    if let Some(n) = &nodes {
        let cluster = Cluster::start(&launch(c), n.n, n.nats_url.as_deref())?;
        let (n0, n1) = (cluster.nodes[0].addr, cluster.nodes[1].addr);
        let fleet = setup::fleet(n0, shape.devices, &c.device_type).await?;
        let aim = Aim {
            devices: Some(n0),
            apps: Some(n1),
            pids: cluster.pids(),
            metrics: cluster.nodes.iter().map(|s| s.addr).collect(),
        };
        let name = format!("iotgo, {} nodes (devices on n0, apps on n1)", n.n);
        clustered =
            Some(iotgo_rows(&mut report, &mut notes, &name, &aim, &fleet, &shape, half).await?);
    }
    report.line("");
    for note in notes {
        report.line(&note);
    }
    let own_rate = own.as_ref().map(|o| o.delivered);
    ratio(
        &mut report,
        "iotgo / Mosquitto, delivered pushes/s (target ≥ 0.5, aim ≥ 1.0)",
        own_rate,
        mosq,
    );
    ratio(
        &mut report,
        "iotgo over MQTT / Mosquitto, delivered pushes/s (target ≥ 0.5, aim ≥ 1.0)",
        own_mqtt,
        mosq,
    );
    ratio(
        &mut report,
        "iotgo / in-memory reference, delivered pushes/s",
        own_rate,
        refr,
    );
    ratio(
        &mut report,
        "cluster / one node, delivered pushes/s (the cross-node overhead, same run)",
        clustered.as_ref().map(|o| o.delivered),
        own_rate,
    );
    for (name, o) in [("iotgo", &own), ("cluster", &clustered)] {
        if let Some(p99) = o.as_ref().and_then(|o| o.p99_half) {
            report.line(&format!(
                "- {name} p99 at half its maximum rate: **{p99:.2} ms** (target < 10 ms)"
            ));
        }
    }
    finish(c, report, "ws-fanout")
}

/// The fan-out shape over iotgo's own MQTT listener: a server started with
/// `mqtt_listen` on a free port (or `--url`'s, which must listen for MQTT), devices
/// publishing on their `up`, apps subscribed to `iotgo/+/state`.
async fn iotgo_over_mqtt(c: &Common, shape: &Shape) -> anyhow::Result<Outcome> {
    let server = match &c.url {
        Some(url) => Server::external(url)?,
        None => {
            let mut launch = launch(c);
            // First, so that `--server-env` still has the last word.
            launch.env.insert(0, "IOTGO_MQTT_LISTEN=127.0.0.1:0".into());
            Server::iotgo(&launch)?
        }
    };
    let fleet = setup::fleet(server.addr, shape.devices, &c.device_type).await?;
    let port = setup::mqtt_port(server.addr).await?;
    let broker = mqtt::Broker::Iotgo(SocketAddr::new(server.addr.ip(), port), server.pid());
    mqtt::run(&broker, &fleet, shape).await
}

/// `http-update`: C keep-alive connections against the reference and iotgo.
pub(crate) async fn http_update(c: &Common, conns: usize) -> anyhow::Result<bool> {
    let mut report = Report::new("http-update", c.server_cpus.as_deref());
    let duration = Duration::from_secs_f64(c.duration);
    report.line(&format!(
        "{conns} keep-alive connections, one `POST /api/http` update in flight each, {} s per target.\n",
        c.duration
    ));
    report.table();
    let mut run = async |name: &str, server: &Server, fleet: &Fleet| -> anyhow::Result<f64> {
        let o: Outcome = http_update::run(server.addr, fleet, duration, server.pid()).await?;
        report.row(name, &o, 0);
        Ok(o.acked_rate())
    };
    let (mut refr, mut own) = (None, None);
    if wants(c, "ref") {
        let server = Server::reference(&launch(c))?;
        refr = Some(
            run(
                "in-memory reference",
                &server,
                &setup::fake_fleet(conns, &c.device_type),
            )
            .await?,
        );
    }
    if wants(c, "iotgo") {
        let server = iotgo(c)?;
        let fleet = setup::fleet(server.addr, conns, &c.device_type).await?;
        own = Some(run("iotgo", &server, &fleet).await?);
    }
    report.line("");
    ratio(
        &mut report,
        "iotgo / in-memory reference, requests/s (target ≥ 0.4)",
        own,
        refr,
    );
    finish(c, report, "http-update")
}

/// `idle`: N bound devices; memory per connection of each target.
pub(crate) async fn idle(c: &Common, conns: usize) -> anyhow::Result<bool> {
    let mut report = Report::new("idle", c.server_cpus.as_deref());
    let spread = conns > 20_000;
    report.line(&format!(
        "{conns} WebSocket devices, each bound by one update, then idle; server RSS before and \
         after (VmRSS){}.\n",
        if spread {
            ", sources spread over 127.0.0.x"
        } else {
            ""
        }
    ));
    report.line(
        "| target | connections | RSS before (MiB) | RSS after (MiB) | bytes per connection |",
    );
    report.line("|---|---|---|---|---|");
    let mut row = |name: &str, o: &idle::Outcome| {
        let mib = |b: u64| b as f64 / 1048576.0;
        report.line(&format!(
            "| {name} | {} | {:.1} | {:.1} | {:.0} |",
            o.conns,
            mib(o.before),
            mib(o.after),
            o.per_conn()
        ));
        o.per_conn()
    };
    let mut own = None;
    if wants(c, "mosquitto") {
        match idle::mosquitto(conns).await {
            Ok(o) => {
                row("Mosquitto (MQTT clients)", &o);
            }
            Err(e) => eprintln!("mosquitto: {e}"),
        }
    }
    if wants(c, "ref") {
        let server = Server::reference(&launch(c))?;
        let pid = server.pid().unwrap_or(0);
        let o = idle::run(
            server.addr,
            &setup::fake_fleet(conns, &c.device_type),
            pid,
            spread,
        )
        .await?;
        row("in-memory reference", &o);
    }
    if wants(c, "iotgo") {
        let server = iotgo(c)?;
        let Some(pid) = server.pid() else {
            anyhow::bail!("idle needs a server started here (no --url): it reads its RSS");
        };
        let fleet = setup::fleet(server.addr, conns, &c.device_type).await?;
        let o = idle::run(server.addr, &fleet, pid, spread).await?;
        own = Some(row("iotgo", &o));
    }
    if let Some(b) = own {
        report.line(&format!(
            "\n- iotgo: **{:.2} KiB per idle connection** (target < 8 KiB, aim 2 KiB)",
            b / 1024.0
        ));
    }
    finish(c, report, "idle")
}
