//! Results as Markdown: a header with date, commit, machine, command and pinning, then a
//! table of rows; printed and written to `bench/results/<date>-<scenario>[-label].md`.

use crate::fanout::Outcome;
use std::fmt::Write;
use std::path::Path;
use std::process::Command;

/// A report being written.
pub(crate) struct Report {
    text: String,
    /// Whether any row saw errors or lost pushes.
    pub failed: bool,
}

fn commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".into(), |s| s.trim().to_owned())
}

/// The CPUs this process may run on.
fn own_cpus() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or("?")
        .trim()
        .to_owned()
}

fn pct(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.0}%")
    }
}

impl Report {
    /// Starts a report of `scenario`; `server_cpus` is the servers' `taskset` list.
    pub(crate) fn new(scenario: &str, server_cpus: Option<&str>) -> Report {
        let args: Vec<String> = std::env::args().collect();
        let mut text = String::new();
        let _ = writeln!(text, "# {scenario}\n");
        let _ = writeln!(
            text,
            "- date: {}",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
        );
        let _ = writeln!(text, "- commit: {}", commit());
        let _ = writeln!(text, "- machine: {}", crate::proc::machine());
        let _ = writeln!(text, "- command: `{}`", args.join(" "));
        let _ = writeln!(
            text,
            "- pinning: load generator on CPUs {}, servers on {} (Mosquitto runs unpinned, single-threaded)\n",
            own_cpus(),
            server_cpus.unwrap_or("any CPU (not pinned)")
        );
        Report {
            text,
            failed: false,
        }
    }

    /// Adds free text.
    pub(crate) fn line(&mut self, s: &str) {
        let _ = writeln!(self.text, "{s}");
    }

    /// Starts a table of request/fan-out rows.
    pub(crate) fn table(&mut self) {
        self.line("| target | acked/s | delivered/s | latency p50 / p99 / max (ms) | errors | lost | generator CPU | server CPU |");
        self.line("|---|---|---|---|---|---|---|---|");
    }

    /// A row for one target; `apps` subscribers were expected to get every acked update.
    pub(crate) fn row(&mut self, name: &str, o: &Outcome, apps: usize) {
        let (errors, lost) = (o.counters.errors.get(), o.lost(apps));
        self.failed |= errors > 0 || lost > 0;
        let _ = writeln!(
            self.text,
            "| {name} | {:.0} | {:.0} | {} | {errors} | {lost} | {} | {} |",
            o.acked_rate(),
            o.delivered_rate(),
            o.latency.summary(),
            pct(o.cpu.0),
            pct(o.cpu.1)
        );
    }

    /// Prints the report and writes it under `dir` (unless `dir` is `None`).
    pub(crate) fn finish(
        self,
        dir: Option<&Path>,
        scenario: &str,
        label: Option<&str>,
    ) -> anyhow::Result<bool> {
        println!("{}", self.text);
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir)?;
            let date = chrono::Utc::now().format("%Y-%m-%d");
            let suffix = label.map(|l| format!("-{l}")).unwrap_or_default();
            let path = dir.join(format!("{date}-{scenario}{suffix}.md"));
            std::fs::write(&path, &self.text)?;
            eprintln!("wrote {}", path.display());
        }
        Ok(!self.failed)
    }
}
