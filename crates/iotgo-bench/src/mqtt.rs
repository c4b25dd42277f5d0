//! The MQTT side of `ws-fanout` (and of `idle`): the same shape over MQTT, against
//! Mosquitto (the reference) or iotgo's own MQTT listener. Devices publish the same JSON
//! at QoS 1 (the PUBACK is the ack, `inflight` caps unacknowledged publishes), apps
//! subscribe to every device at QoS 0.

use crate::fanout::{self, Outcome, Shape};
use crate::proc::{CpuMeter, pid_of};
use crate::setup::{Fleet, sent_at, update};
use crate::stats::{Clock, Counters, Latency};
use anyhow::bail;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

/// Where Mosquitto listens.
pub(crate) const BROKER: (&str, u16) = ("127.0.0.1", 1883);

/// The pid of the broker, for its CPU and memory.
pub(crate) fn broker_pid() -> Option<u32> {
    pid_of("mosquitto")
}

/// What a run talks to.
pub(crate) enum Broker {
    /// Mosquitto on [`BROKER`]: anonymous clients, a topic per device under a root of
    /// the run's own.
    Mosquitto,
    /// iotgo's MQTT listener at this address (its pid, for its CPU): devices log in as
    /// themselves and publish on `iotgo/<deviceid>/up`, apps log in with the fleet's
    /// apikey and subscribe to `iotgo/+/state`.
    Iotgo(SocketAddr, Option<u32>),
}

impl Broker {
    fn addr(&self) -> (String, u16) {
        match self {
            Broker::Mosquitto => (BROKER.0.to_owned(), BROKER.1),
            Broker::Iotgo(addr, _) => (addr.ip().to_string(), addr.port()),
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Broker::Mosquitto => broker_pid(),
            Broker::Iotgo(_, pid) => *pid,
        }
    }
}

/// A connected MQTT client to Mosquitto (the CONNACK was received).
pub(crate) async fn client(id: String, inflight: u16) -> anyhow::Result<(AsyncClient, EventLoop)> {
    connect(&Broker::Mosquitto, id, None, inflight).await
}

/// A connected MQTT client to `broker`, logged in with `login` when given.
async fn connect(
    broker: &Broker,
    id: String,
    login: Option<(&str, &str)>,
    inflight: u16,
) -> anyhow::Result<(AsyncClient, EventLoop)> {
    let (host, port) = broker.addr();
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_keep_alive(Duration::from_secs(60))
        .set_inflight(inflight.max(1))
        .set_max_packet_size(1 << 16, 1 << 16);
    if let Some((user, password)) = login {
        opts.set_credentials(user, password);
    }
    let (client, mut el) = AsyncClient::new(opts, 1);
    loop {
        match el.poll().await? {
            Event::Incoming(Packet::ConnAck(_)) => return Ok((client, el)),
            Event::Incoming(other) => bail!("expected CONNACK, got {other:?}"),
            Event::Outgoing(_) => {}
        }
    }
}

/// Runs the fan-out shape through `broker`.
pub(crate) async fn run(broker: &Broker, fleet: &Fleet, shape: &Shape) -> anyhow::Result<Outcome> {
    let clock = Clock::start();
    let run_id = format!("{}-{}", std::process::id(), clock_id());
    let topic_root = format!("iotgo-bench/{run_id}");
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop) = watch::channel(false);
    let deadline_ns = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let mut apps = Vec::new();
    let key = fleet.apikey.as_str();
    let (app_login, filter) = match broker {
        Broker::Mosquitto => (None, format!("{topic_root}/#")),
        Broker::Iotgo(..) => (Some((key, key)), "iotgo/+/state".to_owned()),
    };
    for i in 0..shape.apps {
        let id = format!("bench-app-{run_id}-{i}");
        let (c, mut el) = connect(broker, id, app_login, 16).await?;
        c.subscribe(filter.clone(), QoS::AtMostOnce).await?;
        loop {
            if let Event::Incoming(Packet::SubAck(_)) = el.poll().await? {
                break;
            }
        }
        let (cs, stop, dl) = (counters.clone(), stop.clone(), deadline_ns.clone());
        apps.push(tokio::spawn(app(c, el, clock, cs, stop, dl)));
    }
    let mut pubs = Vec::new();
    for (i, id) in fleet.devices.iter().enumerate() {
        let (login, topic) = match broker {
            Broker::Mosquitto => (None, format!("{topic_root}/{id}")),
            Broker::Iotgo(..) => (Some((id.as_str(), key)), format!("iotgo/{id}/up")),
        };
        let client_id = format!("bench-dev-{run_id}-{i}");
        let (c, el) = connect(broker, client_id, login, shape.inflight as u16).await?;
        pubs.push((c, el, topic, id.clone()));
    }
    let start = Instant::now();
    let deadline = start + shape.duration;
    deadline_ns.store(
        clock.now_ns() + shape.duration.as_nanos() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    let meter = CpuMeter::start(&[std::process::id(), broker.pid().unwrap_or(0)]);
    let mut tasks = Vec::new();
    for (i, (c, el, topic, id)) in pubs.into_iter().enumerate() {
        let offset = shape
            .rate
            .map(|r| Duration::from_secs_f64(i as f64 / r / shape.devices as f64));
        let apikey = fleet.apikey.clone();
        let (cs, sh) = (counters.clone(), shape.clone());
        tasks.push(tokio::spawn(acks(el, deadline, cs.clone())));
        tasks.push(tokio::spawn(async move {
            let period = Duration::from_secs_f64(1.0 / sh.rate.unwrap_or(1.0));
            let mut tick =
                tokio::time::interval_at(Instant::now() + offset.unwrap_or_default(), period);
            while Instant::now() < deadline {
                let body = update(&id, &apikey, clock.now_ns());
                if sh.rate.is_some() {
                    tick.tick().await;
                    if c.try_publish(&topic, QoS::AtLeastOnce, false, body).is_ok() {
                        cs.sent.add(1);
                    }
                } else if c
                    .publish(&topic, QoS::AtLeastOnce, false, body)
                    .await
                    .is_ok()
                {
                    cs.sent.add(1);
                }
            }
        }));
    }
    sleep_until(deadline).await;
    let cpu = meter.stop();
    Ok(fanout::finish(tasks, apps, stop_tx, counters, shape, cpu).await)
}

fn clock_id() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A publisher's event loop: counts PUBACKs until every publish is answered after the
/// deadline (or 5 s past it).
async fn acks(mut el: EventLoop, deadline: Instant, c: Arc<Counters>) {
    let give_up = deadline + Duration::from_secs(5);
    let mut unanswered = 0i64;
    loop {
        if Instant::now() >= deadline && unanswered == 0 {
            break;
        }
        tokio::select! {
            ev = el.poll() => match ev {
                Ok(Event::Outgoing(rumqttc::Outgoing::Publish(_))) => unanswered += 1,
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    unanswered -= 1;
                    c.acked_total.add(1);
                    if Instant::now() < deadline {
                        c.acked_window.add(1);
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    c.errors.add(1);
                    return;
                }
            },
            _ = sleep_until(deadline), if unanswered == 0 => {}
            _ = sleep_until(give_up) => {
                c.errors.add(unanswered.max(0) as u64);
                break;
            }
        }
    }
}

/// A subscriber's event loop: counts pushes and their latency until told to stop.
async fn app(
    _client: AsyncClient,
    mut el: EventLoop,
    clock: Clock,
    c: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
    deadline_ns: Arc<std::sync::atomic::AtomicU64>,
) -> Latency {
    let mut lat = Latency::default();
    loop {
        tokio::select! {
            ev = el.poll() => match ev {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let Some(t0) = std::str::from_utf8(&p.payload).ok().and_then(sent_at) else {
                        continue;
                    };
                    let now = clock.now_ns();
                    lat.record(now.saturating_sub(t0));
                    c.delivered_total.add(1);
                    if now < deadline_ns.load(std::sync::atomic::Ordering::Relaxed) {
                        c.delivered_window.add(1);
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    c.errors.add(1);
                    break;
                }
            },
            _ = stop.changed() => break,
        }
    }
    lat
}
