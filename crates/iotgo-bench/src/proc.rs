//! Facts about processes from `/proc`: CPU time (for "how busy was it") and resident
//! memory (for bytes per connection), plus the machine facts every report carries.

use std::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat` times.
fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions; it only reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// User + system CPU seconds used so far by `pid`.
pub(crate) fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_sec())
}

/// Resident memory of `pid` in bytes (`VmRSS`).
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The pid of a running process whose command name is `name` (e.g. `mosquitto`).
pub(crate) fn pid_of(name: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == name).then_some(pid)
    })
}

/// Measures the CPU share of a set of processes over a window.
pub(crate) struct CpuMeter {
    start: Instant,
    pids: Vec<(u32, Option<f64>)>,
}

impl CpuMeter {
    /// Starts measuring `pids` now.
    pub(crate) fn start(pids: &[u32]) -> Self {
        CpuMeter {
            start: Instant::now(),
            pids: pids.iter().map(|&p| (p, cpu_secs(p))).collect(),
        }
    }

    /// CPU use of each process since `start`, in percent of one core.
    pub(crate) fn stop(&self) -> Vec<f64> {
        let wall = self.start.elapsed().as_secs_f64().max(1e-9);
        self.pids
            .iter()
            .map(|&(p, before)| match (before, cpu_secs(p)) {
                (Some(b), Some(a)) => 100.0 * (a - b) / wall,
                _ => f64::NAN,
            })
            .collect()
    }
}

/// nproc, CPU model and kernel, for the report header.
pub(crate) fn machine() -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_owned();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("nproc {nproc}, {model}, Linux {}", kernel.trim())
}
