//! regex-lite under the name `regex`.
//!
//! oci-spec (0.10) uses `regex` for one pattern: `process.execCPUAffinity`'s
//! `^(\d+(-\d+)?)(,\d+(-\d+)?)*$`, checked while a config is deserialized. The full engine (meta
//! strategies, DFAs, Unicode tables, aho-corasick) was about 580 KiB of the runtime's code;
//! regex-lite, by the same authors, implements the same syntax and API for a fraction of it,
//! without Unicode classes: `\d` is ASCII digits only, which is what a CPU list can hold anyway.
//! `regex-syntax` is not needed either. Nothing in the workspace uses regexes otherwise.

pub use regex_lite::*;
