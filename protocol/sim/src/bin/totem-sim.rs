//! `totem-sim`: run one seed, sweep many, or check that a seed replays identically.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant as WallClock;

use clap::{Parser, Subcommand};
use totem_sim::scenario::run_seed;
use totem_sim::sweep::sweep;

/// Deterministic simulation of corosync's Totem/CPG stack (our implementation).
#[derive(Debug, Parser)]
#[command(name = "totem-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one seed and check it; prints the trace when a property breaks.
    Run {
        /// The seed (as printed by a failing sweep).
        #[arg(long)]
        seed: u64,
        /// Print the whole trace as JSON lines even when nothing broke.
        #[arg(long)]
        trace: bool,
        /// Write the simulated traffic to this pcap (decode it with totem-inspect).
        #[arg(long, value_name = "FILE")]
        pcap: Option<std::path::PathBuf>,
    },
    /// Run many seeds with random fault mixes and report violations.
    Sweep {
        /// How many seeds.
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 1)]
        start: u64,
        /// Also run every seed twice and compare the traces.
        #[arg(long)]
        determinism: bool,
        /// Summary as JSON.
        #[arg(long)]
        json: bool,
        /// Seeds run at once, one per thread [default: the number of cores]. The output is
        /// the same for any value: seeds are reported in order.
        #[arg(long, short = 'j', value_name = "N")]
        jobs: Option<usize>,
        /// Print progress to stderr every few seconds [default: when stderr is a terminal].
        #[arg(long)]
        progress: bool,
    },
    /// Run a seed twice and compare the traces event by event.
    CheckDeterminism {
        /// The seed.
        #[arg(long)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Run { seed, trace, pcap } => {
            let (report, capture) = run_seed(seed, pcap.is_some());
            let _ = writeln!(
                out,
                "SEED={seed} options={}",
                serde_json::to_string(&report.options).unwrap_or_default()
            );
            if let (Some(path), Some(bytes)) = (pcap, capture) {
                if let Err(e) = std::fs::write(&path, bytes) {
                    eprintln!("totem-sim: {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
            if trace || !report.violations.is_empty() {
                for entry in &report.trace {
                    let _ = writeln!(out, "{}", serde_json::to_string(entry).unwrap_or_default());
                }
            }
            let _ = writeln!(
                out,
                "faults={} messages={} datagrams={} lost={} replayed={} overflowed={} violations={}",
                report.faults,
                report.messages_sent,
                report.stats.datagrams,
                report.stats.lost,
                report.stats.replayed,
                report.stats.overflowed,
                report.violations.len()
            );
            let mut reasons = Vec::new();
            for v in &report.violations {
                match v.corosync_equivalent {
                    Some(why) => {
                        let _ = writeln!(
                            out,
                            "VIOLATION (corosync-equivalent) {}: {}",
                            v.checker, v.detail
                        );
                        if !reasons.contains(&why) {
                            reasons.push(why);
                        }
                    }
                    None => {
                        let _ = writeln!(out, "VIOLATION {}: {}", v.checker, v.detail);
                    }
                }
            }
            for why in reasons {
                let _ = writeln!(out, "corosync-equivalent: {why}");
            }
            if report.violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::Sweep {
            seeds,
            start,
            determinism,
            json,
            jobs,
            progress,
        } => {
            let wall = WallClock::now();
            let jobs = jobs
                .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
                .unwrap_or(1);
            let progress = progress || std::io::stderr().is_terminal();
            let mut failed = Vec::new();
            let mut open = Vec::new();
            let mut faults = 0;
            let mut messages = 0;
            let mut node_micros: u128 = 0;
            let mut overflowing = Vec::new();
            let mut nondeterministic = Vec::new();
            let mut done = 0u64;
            let mut last_progress = WallClock::now();
            sweep(start, seeds, jobs, determinism, |o| {
                done += 1;
                faults += o.faults;
                messages += o.messages;
                node_micros += o.node_micros;
                if o.overflowed {
                    overflowing.push(o.seed);
                }
                if o.nondeterministic {
                    nondeterministic.push(o.seed);
                }
                let seed = o.seed;
                if !o.violations.is_empty() {
                    let bugs: Vec<_> = o.open().collect();
                    let first = bugs.first().copied().unwrap_or(&o.violations[0]);
                    eprintln!(
                        "seed {seed}: {} violation(s), {}, first: {}: {}\n  replay: totem-sim run --seed {seed}",
                        o.violations.len(),
                        if bugs.is_empty() {
                            "all corosync-equivalent".to_string()
                        } else {
                            format!("{} open", bugs.len())
                        },
                        first.checker,
                        first.detail
                    );
                    if !bugs.is_empty() {
                        open.push(seed);
                    }
                    failed.push(seed);
                }
                if progress && last_progress.elapsed().as_secs() >= 5 {
                    last_progress = WallClock::now();
                    let rate = done as f64 / wall.elapsed().as_secs_f64().max(1e-9);
                    eprintln!(
                        "progress: {done}/{seeds} seeds, {} violating, {rate:.0} seeds/s, about {:.0} s left",
                        failed.len(),
                        (seeds - done) as f64 / rate.max(1e-9)
                    );
                }
            });
            let elapsed = wall.elapsed().as_secs_f64();
            let node_seconds = node_micros as f64 / 1e6;
            let rate = node_seconds / elapsed.max(1e-9);
            if json {
                let summary = serde_json::json!({
                    "seeds": seeds, "jobs": jobs, "faults": faults, "messages": messages,
                    "violating_seeds": failed, "open_seeds": open,
                    "nondeterministic_seeds": nondeterministic,
                    "overflowing_seeds": overflowing,
                    "simulated_node_seconds": node_seconds, "wall_seconds": elapsed,
                    "node_seconds_per_wall_second": rate,
                });
                let _ = writeln!(out, "{summary}");
            } else {
                let _ = writeln!(
                    out,
                    "seeds={seeds} jobs={jobs} faults={faults} messages={messages} violating_seeds={} (open {:?}, the rest corosync-equivalent) nondeterministic={} overflowing_seeds={:?} simulated_node_seconds={node_seconds:.0} wall_seconds={elapsed:.1} node_seconds_per_wall_second={rate:.0}",
                    failed.len(),
                    open,
                    nondeterministic.len(),
                    overflowing
                );
            }
            if failed.is_empty() && nondeterministic.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::CheckDeterminism { seed } => {
            let (a, _) = run_seed(seed, false);
            let (b, _) = run_seed(seed, false);
            if a.trace == b.trace {
                let _ = writeln!(
                    out,
                    "seed {seed}: deterministic ({} trace entries)",
                    a.trace.len()
                );
                ExitCode::SUCCESS
            } else {
                let at = a
                    .trace
                    .iter()
                    .zip(&b.trace)
                    .position(|(x, y)| x != y)
                    .unwrap_or(a.trace.len().min(b.trace.len()));
                let _ = writeln!(
                    out,
                    "seed {seed}: traces differ at entry {at}: {:?} vs {:?}",
                    a.trace.get(at),
                    b.trace.get(at)
                );
                ExitCode::FAILURE
            }
        }
    }
}
