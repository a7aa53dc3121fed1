//! How the command line shows progress: a live display on a terminal (one line per blob with
//! bytes, rate and total, redrawn at most ten times a second), JSON lines with `--json`, or
//! nothing (`--quiet`, or stderr not a terminal).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use strata_rootfs::progress::{Event, Progress, Silent};

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

/// The progress display the global flags ask for.
pub fn progress(quiet: bool, json: bool) -> std::sync::Arc<dyn Progress> {
    if json && !quiet {
        std::sync::Arc::new(JsonLines::default())
    } else if !quiet && std::io::stderr().is_terminal() {
        std::sync::Arc::new(Terminal::default())
    } else {
        std::sync::Arc::new(Silent)
    }
}

/// One blob being worked on.
#[derive(Debug)]
struct Line {
    id: String,
    what: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
}

impl Line {
    fn render(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.2 { format!(" {}/s", human((self.done as f64 / secs) as u64)) } else { String::new() };
        let of = self.total.map(|t| format!(" / {}", human(t))).unwrap_or_default();
        format!("{} {}: {}{of}{rate}", self.what, self.id, human(self.done))
    }
}

#[derive(Debug, Default)]
struct Screen {
    active: Vec<Line>,
    /// Bytes of the blobs finished, and the sizes announced so far (for the total line).
    finished: u64,
    expected: u64,
    /// Lines drawn below the finished ones last time (to move back over).
    drawn: usize,
    last: Option<Instant>,
}

/// A live display on stderr.
#[derive(Debug, Default)]
pub struct Terminal(Mutex<Screen>);

impl Screen {
    /// Move back over the live lines, print `finished` lines for good, redraw the live ones.
    fn redraw(&mut self, finished: Option<String>) {
        let mut out = String::new();
        if self.drawn > 0 {
            out.push_str(&format!("\x1b[{}A", self.drawn));
        }
        out.push('\r');
        if let Some(f) = finished {
            out.push_str(&format!("\x1b[K{f}\n"));
        }
        for l in &self.active {
            out.push_str(&format!("\x1b[K{}\n", l.render()));
        }
        let mut drawn = self.active.len();
        if !self.active.is_empty() {
            let done = self.finished + self.active.iter().map(|l| l.done).sum::<u64>();
            out.push_str(&format!("\x1b[Ktotal: {} / {}\n", human(done), human(self.expected)));
            drawn += 1;
        }
        out.push_str("\x1b[J");
        self.drawn = drawn;
        self.last = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        // Progress is cosmetic: a failed write to stderr changes nothing.
        err.write_all(out.as_bytes()).unwrap_or(());
        err.flush().unwrap_or(());
    }
}

impl Progress for Terminal {
    fn event(&self, event: &Event<'_>) {
        let mut s = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match *event {
            Event::Start { id, what, total } => {
                s.expected += total.unwrap_or(0);
                s.active.push(Line { id: id.into(), what: what.into(), total, done: 0, started: Instant::now() });
                s.redraw(None);
            }
            Event::Bytes { id, done } => {
                if let Some(l) = s.active.iter_mut().find(|l| l.id == id) {
                    l.done = done;
                }
                if s.last.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
                    s.redraw(None);
                }
            }
            Event::Done { id, what, status } => {
                let line = match s.active.iter().position(|l| l.id == id) {
                    Some(i) => {
                        let l = s.active.remove(i);
                        s.finished += l.done;
                        let secs = l.started.elapsed().as_secs_f64();
                        format!("{} {}: {status} ({} in {secs:.1} s)", l.what, l.id, human(l.done))
                    }
                    None => format!("{what} {id}: {status}"),
                };
                s.redraw(Some(line));
            }
        }
    }
}

/// `--json`: one JSON object per event on stderr (byte counts at most ten times a second per blob).
#[derive(Debug, Default)]
pub struct JsonLines(Mutex<Vec<(String, Instant)>>);

impl Progress for JsonLines {
    fn event(&self, event: &Event<'_>) {
        if let Event::Bytes { id, .. } = event {
            let mut last = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match last.iter_mut().find(|(i, _)| i == id) {
                Some((_, t)) if t.elapsed() < Duration::from_millis(100) => return,
                Some((_, t)) => *t = Instant::now(),
                None => last.push((id.to_string(), Instant::now())),
            }
        }
        let line = serde_json::to_string(event).unwrap_or_default();
        let mut err = std::io::stderr().lock();
        // Progress is cosmetic: a failed write to stderr changes nothing.
        writeln!(err, "{line}").unwrap_or(());
    }
}
