//! What long operations report while they run. The library only emits events; the command line
//! renders them (a live display on a terminal, JSON lines for programs, or nothing).

use serde::Serialize;

/// Receives the events of one operation, from any of its threads.
pub trait Progress: Send + Sync + std::fmt::Debug {
    fn event(&self, event: &Event<'_>);
}

/// One step of work on a blob (a layer being fetched and unpacked, a blob being pushed).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    /// Work on `id` starts; `total` bytes are expected when known.
    Start { id: &'a str, what: &'a str, total: Option<u64> },
    /// `done` bytes of `id` so far.
    Bytes { id: &'a str, done: u64 },
    /// `id` is finished: `status` says how (unpacked, already in the store, ...).
    Done { id: &'a str, what: &'a str, status: &'a str },
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: &Event<'_>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_as_json_lines() {
        let done = Event::Done { id: "abc", what: "layer 1/2", status: "unpacked" };
        assert_eq!(
            serde_json::to_string(&done).unwrap(),
            r#"{"event":"done","id":"abc","what":"layer 1/2","status":"unpacked"}"#
        );
        let start = Event::Start { id: "abc", what: "config", total: None };
        assert_eq!(
            serde_json::to_string(&start).unwrap(),
            r#"{"event":"start","id":"abc","what":"config","total":null}"#
        );
    }
}
