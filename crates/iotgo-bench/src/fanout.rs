//! `ws-fanout` against a WebSocket server (iotgo or the reference): D device sockets
//! send updates, flat out with a cap on in-flight updates or at a given rate; A app
//! sockets subscribed to the owner receive every push. Acks, pushes, latency (send time
//! carried in the payload) and losses are counted.

use crate::cluster::Commits;
use crate::proc::CpuMeter;
use crate::setup::{Fleet, sent_at, update};
use crate::stats::{Clock, Counters, Latency};
use crate::ws::{self, Ws};
use futures_util::{SinkExt, StreamExt, stream};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, sleep_until};
use tokio_tungstenite::tungstenite::Message;

/// The shape of a fan-out run.
#[derive(Clone, Debug)]
pub(crate) struct Shape {
    /// Device connections (publishers).
    pub devices: usize,
    /// App connections (subscribers to all devices).
    pub apps: usize,
    /// Most updates a device has unanswered.
    pub inflight: usize,
    /// Updates per second per device; `None` is flat out.
    pub rate: Option<f64>,
    /// How long devices send.
    pub duration: Duration,
}

/// What a fan-out run measured.
pub(crate) struct Outcome {
    /// Counters (see [`Counters`]).
    pub counters: Arc<Counters>,
    /// Send-to-push latency over every delivered push.
    pub latency: Latency,
    /// Seconds devices were sending.
    pub secs: f64,
    /// CPU use in percent of a core: load generator, then server (NaN if unknown).
    pub cpu: (f64, f64),
    /// The servers' commits over the window, from their `/metrics`, when counted.
    pub committed: Option<String>,
}

impl Outcome {
    /// Acked updates per second.
    pub(crate) fn acked_rate(&self) -> f64 {
        self.counters.acked_window.get() as f64 / self.secs
    }

    /// Delivered pushes per second.
    pub(crate) fn delivered_rate(&self) -> f64 {
        self.counters.delivered_window.get() as f64 / self.secs
    }

    /// Pushes owed for acked updates that never arrived.
    pub(crate) fn lost(&self, apps: usize) -> i64 {
        let c = &self.counters;
        (c.acked_total.get() * apps as u64) as i64 - c.delivered_total.get() as i64
    }
}

/// What a run is aimed at: where the device and the app sockets connect (one server, or
/// for a cluster devices on one node and apps on another, so that every push crosses
/// between them), whose CPU use is the server's, and whose `/metrics` say what was
/// committed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Aim {
    /// Where the device sockets connect.
    pub devices: Option<SocketAddr>,
    /// Where the app sockets connect.
    pub apps: Option<SocketAddr>,
    /// Pids whose CPU use is summed as the server's (every node and the NATS server).
    pub pids: Vec<u32>,
    /// iotgo servers whose writers' commits are counted over the window.
    pub metrics: Vec<SocketAddr>,
}

impl Aim {
    /// Devices and apps on the same server, pid `pid`.
    pub(crate) fn one(addr: SocketAddr, pid: Option<u32>) -> Aim {
        Aim {
            devices: Some(addr),
            apps: Some(addr),
            pids: pid.into_iter().collect(),
            metrics: Vec::new(),
        }
    }

    /// The same, with the server's commits counted.
    pub(crate) fn counted(mut self) -> Aim {
        self.metrics = self.devices.into_iter().collect();
        self
    }
}

/// Runs the fan-out at `aim`.
pub(crate) async fn run(aim: &Aim, fleet: &Fleet, shape: &Shape) -> anyhow::Result<Outcome> {
    let (Some(devices_at), Some(apps_at)) = (aim.devices, aim.apps) else {
        anyhow::bail!("no address to connect to");
    };
    let servers = &aim.pids;
    let clock = Clock::start();
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop) = watch::channel(false);
    let deadline_ns = Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let mut apps = Vec::new();
    for _ in 0..shape.apps {
        let ws = ws::app(apps_at, &fleet.apikey).await?;
        let (c, stop, dl) = (counters.clone(), stop.clone(), deadline_ns.clone());
        apps.push(tokio::spawn(app(ws, clock, c, stop, dl)));
    }
    let sockets: Vec<anyhow::Result<Ws>> = stream::iter(0..shape.devices)
        .map(|_| ws::connect(devices_at, None))
        .buffered(64)
        .collect()
        .await;
    let sockets = sockets.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let committed_before = Commits::read(&aim.metrics).await;
    let start = Instant::now();
    let deadline = start + shape.duration;
    deadline_ns.store(
        clock.now_ns() + shape.duration.as_nanos() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    let pids: Vec<u32> = std::iter::once(std::process::id())
        .chain(servers.iter().copied())
        .collect();
    let meter = CpuMeter::start(&pids);
    let devices: Vec<_> = sockets
        .into_iter()
        .zip(&fleet.devices)
        .enumerate()
        .map(|(i, (ws, id))| {
            let msg = Device {
                id: id.clone(),
                apikey: fleet.apikey.clone(),
                clock,
                deadline,
                offset: shape
                    .rate
                    .map(|r| Duration::from_secs_f64(i as f64 / r / shape.devices as f64)),
            };
            tokio::spawn(msg.run(ws, shape.clone(), counters.clone()))
        })
        .collect();
    sleep_until(deadline).await;
    let cpu = meter.stop();
    let server_cpu = if servers.is_empty() {
        f64::NAN
    } else {
        cpu[1..].iter().sum()
    };
    let cpu = vec![cpu[0], server_cpu];
    let committed = match (committed_before, Commits::read(&aim.metrics).await) {
        (Some(a), Some(b)) => Some(a.rate_since(&b, shape.duration.as_secs_f64())),
        _ => None,
    };
    let mut outcome = finish(devices, apps, stop_tx, counters, shape, cpu).await;
    outcome.committed = committed;
    Ok(outcome)
}

/// The end of a run, shared with the MQTT reference: waits for the senders, lets the
/// pushes owed for acked updates arrive (3 s at most), stops the apps and merges their
/// latencies. `cpu` is the meter's reading: load generator, then server.
pub(crate) async fn finish(
    senders: Vec<JoinHandle<()>>,
    apps: Vec<JoinHandle<Latency>>,
    stop_apps: watch::Sender<bool>,
    counters: Arc<Counters>,
    shape: &Shape,
    cpu: Vec<f64>,
) -> Outcome {
    for s in senders {
        let _ = s.await;
    }
    let owed = counters.acked_total.get() * shape.apps as u64;
    let settle = Instant::now() + Duration::from_secs(3);
    while counters.delivered_total.get() < owed && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_apps.send(true);
    let mut latency = Latency::default();
    for a in apps {
        if let Ok(h) = a.await {
            latency.merge(&h);
        }
    }
    Outcome {
        counters,
        latency,
        secs: shape.duration.as_secs_f64(),
        cpu: (cpu[0], cpu[1]),
        committed: None,
    }
}

/// An app socket: counts pushes and their latency until told to stop.
async fn app(
    mut ws: Ws,
    clock: Clock,
    c: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
    deadline_ns: Arc<std::sync::atomic::AtomicU64>,
) -> Latency {
    let mut lat = Latency::default();
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let Some(t0) = sent_at(&t) else { continue };
                    let now = clock.now_ns();
                    lat.record(now.saturating_sub(t0));
                    c.delivered_total.add(1);
                    if now < deadline_ns.load(std::sync::atomic::Ordering::Relaxed) {
                        c.delivered_window.add(1);
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    c.errors.add(1);
                    break;
                }
                Some(Ok(_)) => {}
            },
            _ = stop.changed() => break,
        }
    }
    lat
}

/// One device socket's sending loop.
struct Device {
    id: String,
    apikey: String,
    clock: Clock,
    deadline: Instant,
    /// Start offset within the first period when paced (spreads the devices out).
    offset: Option<Duration>,
}

impl Device {
    fn frame(&self) -> Message {
        Message::text(update(&self.id, &self.apikey, self.clock.now_ns()))
    }

    async fn run(self, ws: Ws, shape: Shape, c: Arc<Counters>) {
        let (mut sink, mut stream) = ws.split();
        let mut inflight = 0usize;
        let period = Duration::from_secs_f64(1.0 / shape.rate.unwrap_or(1.0));
        let mut tick =
            tokio::time::interval_at(Instant::now() + self.offset.unwrap_or_default(), period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        if shape.rate.is_none() {
            for _ in 0..shape.inflight {
                let _ = sink.feed(self.frame()).await;
            }
            inflight = shape.inflight;
            c.sent.add(inflight as u64);
            let _ = sink.flush().await;
        }
        let give_up = self.deadline + Duration::from_secs(5);
        loop {
            let sending = Instant::now() < self.deadline;
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        inflight = inflight.saturating_sub(1);
                        if t.contains(r#""error":0"#) {
                            c.acked_total.add(1);
                            if Instant::now() < self.deadline {
                                c.acked_window.add(1);
                            }
                        } else {
                            c.errors.add(1);
                        }
                        if shape.rate.is_none() && Instant::now() < self.deadline {
                            if sink.send(self.frame()).await.is_err() {
                                c.errors.add(1);
                                break;
                            }
                            c.sent.add(1);
                            inflight += 1;
                        }
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => {
                        c.errors.add(1 + inflight as u64);
                        return;
                    }
                    Some(Ok(_)) => {}
                },
                _ = tick.tick(), if sending && shape.rate.is_some() => {
                    if inflight < shape.inflight {
                        if sink.send(self.frame()).await.is_err() {
                            c.errors.add(1);
                            break;
                        }
                        c.sent.add(1);
                        inflight += 1;
                    }
                }
                _ = sleep_until(self.deadline), if inflight == 0 => break,
                _ = sleep_until(give_up) => {
                    c.errors.add(inflight as u64);
                    break;
                }
            }
        }
        let _ = sink.close().await;
    }
}
