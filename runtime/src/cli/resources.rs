//! pause, resume, ps, events, update.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use super::{EventsArgs, ListFormat, PsArgs, UpdateArgs, parse_id};
use crate::cgroup::parse_resources;
use crate::container::resources as ops;
use crate::error::{Error, ErrorKind};

pub fn pause(root: &Path, id: &str) -> Result<(), Error> {
    ops::pause(root, &parse_id(id)?)
}

pub fn resume(root: &Path, id: &str) -> Result<(), Error> {
    ops::resume(root, &parse_id(id)?)
}

fn out(text: &str) -> Result<(), Error> {
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes()).and_then(|()| o.flush()).map_err(|e| Error::new(ErrorKind::Other, e))
}

/// `ps --format json`: the host pids (`null` when there are none, as runc prints). The table
/// is `ps` (default `-ef`) cut down to the container's processes.
pub fn ps(root: &Path, a: &PsArgs) -> Result<(), Error> {
    let pids = ops::pids(root, &parse_id(&a.id)?)?;
    if a.format == ListFormat::Json {
        let text = if pids.is_empty() { "null".to_owned() } else { serde_json::to_string(&pids).unwrap_or_default() };
        return out(&format!("{text}\n"));
    }
    let args: Vec<String> = if a.ps_args.is_empty() { vec!["-ef".into()] } else { a.ps_args.clone() };
    let output = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| crate::container::state::io_error(ErrorKind::Other, "run ps".into(), e))?;
    if !output.status.success() {
        return Err(Error::msg(
            ErrorKind::Other,
            format!("ps {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()),
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(column) = header.split_whitespace().position(|c| c == "PID") else {
        return Err(Error::msg(ErrorKind::InvalidSpec, "ps output has no PID column"));
    };
    let mut table = format!("{header}\n");
    for line in lines {
        let pid = line.split_whitespace().nth(column).and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            table.push_str(line);
            table.push('\n');
        }
    }
    out(&table)
}

/// Go-style durations as runc takes them: "5s", "500ms", "1m", "1m30s".
fn parse_duration(s: &str) -> Result<Duration, Error> {
    let bad = || Error::msg(ErrorKind::InvalidSpec, format!("invalid --interval {s:?}"));
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(bad)?;
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::from_secs_f64(value * scale);
        rest = &rest[unit_len..];
    }
    if total.is_zero() { Err(bad()) } else { Ok(total) }
}

pub fn events(root: &Path, a: &EventsArgs) -> Result<(), Error> {
    let interval = parse_duration(&a.interval)?;
    ops::events(root, &parse_id(&a.id)?, interval, a.stats)
}

pub fn update(root: &Path, a: &UpdateArgs) -> Result<(), Error> {
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        return Err(Error::msg(
            ErrorKind::Unsupported,
            "Intel RDT (--l3-cache-schema, --mem-bw-schema) is not supported",
        ));
    }
    let resources = match a.resources.as_deref() {
        Some(path) => {
            let mut bytes = Vec::new();
            let read = if path == "-" {
                std::io::stdin().read_to_end(&mut bytes)
            } else {
                std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes))
            };
            read.map_err(|e| {
                crate::container::state::io_error(ErrorKind::InvalidSpec, format!("read resources {path}"), e)
            })?;
            parse_resources(&bytes).map_err(Error::from)?
        }
        None => a.flags.to_resources().map_err(Error::from)?,
    };
    ops::update(root, &parse_id(&a.id)?, &resources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        for bad in ["", "5", "s", "5x", "0s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
