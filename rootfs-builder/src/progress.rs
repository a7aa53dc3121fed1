//! Progress lines on a terminal (stderr) for long pulls: one line per layer, bytes read so far.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
}

pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

impl Progress {
    /// Shown only when stderr is a terminal and not `--quiet`/`--json`.
    pub fn new(wanted: bool) -> Self {
        Self { enabled: wanted && std::io::stderr().is_terminal() }
    }

    pub fn disabled() -> Self {
        Self { enabled: false }
    }

    /// A callback for a layer's running byte count, redrawing at most ten times a second.
    pub fn layer(&self, label: String, total: Option<u64>) -> Option<Box<dyn FnMut(u64) + Send>> {
        if !self.enabled {
            return None;
        }
        let mut last = Instant::now() - Duration::from_secs(1);
        Some(Box::new(move |done| {
            let now = Instant::now();
            if now.duration_since(last) < Duration::from_millis(100) && total != Some(done) {
                return;
            }
            last = now;
            let of = total.map(|t| format!(" / {}", human(t))).unwrap_or_default();
            eprint!("\r\x1b[K{label}: {}{of}", human(done));
            // Progress is cosmetic: a failed flush of stderr changes nothing.
            std::io::stderr().flush().unwrap_or(());
        }))
    }

    /// The final line for a layer.
    pub fn done(&self, label: &str, status: &str) {
        if self.enabled {
            eprintln!("\r\x1b[K{label}: {status}");
        }
    }
}
