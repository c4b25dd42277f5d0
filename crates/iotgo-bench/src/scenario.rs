//! The scenarios: each runs its load against the chosen targets in turn (Mosquitto, the
//! reference server, iotgo), one fresh server per target, and writes one report with
//! the ratios the targets are stated in.

use crate::Common;
use crate::fanout::{self, Outcome, Shape};
use crate::report::Report;
use crate::setup::{self, Fleet};
use crate::target::{Launch, Server};
use crate::{http_update, idle, mqtt};
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

/// `ws-fanout`; with `half`, iotgo runs again paced at half its flat-out rate.
pub(crate) async fn ws_fanout(c: &Common, shape: Shape, half: bool) -> anyhow::Result<bool> {
    let mut report = Report::new("ws-fanout", c.server_cpus.as_deref());
    let pace = match shape.rate {
        Some(r) => format!("{r}/s per device"),
        None => format!("flat out, {} in flight per device", shape.inflight),
    };
    report.line(&format!(
        "{} devices × {} apps (each app watches every device), {pace}, {} s per target; \
         iotgo stores on {}.\n",
        shape.devices,
        shape.apps,
        shape.duration.as_secs_f64(),
        if c.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
    ));
    report.table();
    let fake = setup::fake_fleet(shape.devices, &c.device_type);
    let (mut mosq, mut refr, mut own) = (None, None, None);
    if wants(c, "mosquitto") {
        match mqtt::run(&fake, &shape).await {
            Ok(o) => {
                report.row("Mosquitto (MQTT QoS 1 in, QoS 0 out)", &o, shape.apps);
                mosq = Some(o.delivered_rate());
            }
            Err(e) => report.line(&format!("| Mosquitto | failed: {e} |")),
        }
    }
    if wants(c, "ref") {
        let server = Server::reference(&launch(c))?;
        let o = fanout::run(server.addr, &fake, &shape, server.pid()).await?;
        report.row("in-memory reference", &o, shape.apps);
        refr = Some(o.delivered_rate());
    }
    let mut paced = None;
    if wants(c, "iotgo") {
        let server = iotgo(c)?;
        let fleet = setup::fleet(server.addr, shape.devices, &c.device_type).await?;
        let o = fanout::run(server.addr, &fleet, &shape, server.pid()).await?;
        report.row("iotgo", &o, shape.apps);
        own = Some(o.delivered_rate());
        if half && shape.rate.is_none() {
            let rate = o.acked_rate() / 2.0 / shape.devices as f64;
            let half_shape = Shape {
                rate: Some(rate),
                ..shape.clone()
            };
            let p = fanout::run(server.addr, &fleet, &half_shape, server.pid()).await?;
            let name = format!(
                "iotgo paced at half ({:.0} updates/s)",
                o.acked_rate() / 2.0
            );
            report.row(&name, &p, shape.apps);
            paced = Some(p.latency.p99_ms());
        }
    }
    report.line("");
    ratio(
        &mut report,
        "iotgo / Mosquitto, delivered pushes/s (target ≥ 0.5, aim ≥ 1.0)",
        own,
        mosq,
    );
    ratio(
        &mut report,
        "iotgo / in-memory reference, delivered pushes/s",
        own,
        refr,
    );
    if let Some(p99) = paced {
        report.line(&format!(
            "- iotgo p99 at half its maximum rate: **{p99:.2} ms** (target < 10 ms)"
        ));
    }
    finish(c, report, "ws-fanout")
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
