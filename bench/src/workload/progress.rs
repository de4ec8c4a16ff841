//! The live progress bar: one line on stderr per phase, redrawn every
//! `PROGRESS_TICK` from the phase's [`Live`] totals. Drawn only when stderr
//! is a terminal, so CI logs get nothing from it.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::limits::PROGRESS_TICK;
use crate::stats::Live;
use crate::units::rate;

pub struct Progress {
    enabled: bool,
}

/// The bar of one running phase; [`PhaseBar::finish`] clears it.
pub struct PhaseBar {
    bar: Option<ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Enabled when stderr is a terminal.
    pub fn for_stderr() -> Progress {
        Progress {
            enabled: std::io::stderr().is_terminal(),
        }
    }

    #[cfg(test)]
    pub fn disabled() -> Progress {
        Progress { enabled: false }
    }

    /// Starts a bar for a phase of `total` operations or `duration`; must be
    /// called on the runtime.
    pub fn phase(
        &self,
        label: &str,
        total: Option<u64>,
        duration: Option<Duration>,
        live: Arc<Live>,
    ) -> PhaseBar {
        if !self.enabled {
            return PhaseBar {
                bar: None,
                ticker: None,
            };
        }
        // Count-bound phases show operations; time-bound ones show seconds.
        let by_time = total.is_none();
        let length = match (total, duration) {
            (Some(total), _) => total,
            (None, Some(d)) => d.as_secs().max(1),
            (None, None) => 0,
        };
        let bar = ProgressBar::new(length);
        let unit = if by_time { "s" } else { "ops" };
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{prefix:.bold}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}}"
            ))
            .expect("constant template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        let ticking = bar.clone();
        let ticker = tokio::spawn(async move {
            let started = Instant::now();
            let mut interval = tokio::time::interval(PROGRESS_TICK);
            loop {
                interval.tick().await;
                let elapsed = started.elapsed().as_secs_f64();
                let bytes = live.bytes.load(Ordering::Relaxed);
                let ok = live.ok.load(Ordering::Relaxed);
                let failed = live.failed.load(Ordering::Relaxed);
                let position = if by_time {
                    elapsed as u64
                } else {
                    live.requests.load(Ordering::Relaxed)
                };
                ticking.set_position(position.min(length));
                let speed = if elapsed > 0.0 {
                    bytes as f64 / elapsed
                } else {
                    0.0
                };
                ticking.set_message(format!("{}  {ok} ok  {failed} failed", rate(speed)));
            }
        });
        PhaseBar {
            bar: Some(bar),
            ticker: Some(ticker),
        }
    }
}

impl PhaseBar {
    pub fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
        }
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
