//! A blocking D-Bus connection over a unix socket: the EXTERNAL handshake, method calls, and the
//! signals that arrive meanwhile, kept for [`Connection::wait_signal`]. One socket, no thread,
//! no event loop: `create` stays one single-threaded process when it clones.
//!
//! The system manager is reached on systemd's own socket, `/run/systemd/private` (root only,
//! what systemctl uses as root: no bus daemon in between, every signal delivered), else on the
//! system bus (`$DBUS_SYSTEM_BUS_ADDRESS`, default `/run/dbus/system_bus_socket`). A rootless
//! caller's user manager likewise on `$XDG_RUNTIME_DIR/systemd/private`, else the session bus
//! (`$DBUS_SESSION_BUS_ADDRESS`, `$XDG_RUNTIME_DIR/bus`).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::wire::{self, Call, Message, Value};

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot reach systemd over D-Bus (is systemd running? tried {tried})")]
    Unreachable {
        tried: String,
        #[source]
        source: io::Error,
    },
    #[error("D-Bus authentication with {address} failed: {reply:?}")]
    Auth { address: String, reply: String },
    #[error("D-Bus I/O with {address}")]
    Io {
        address: String,
        #[source]
        source: io::Error,
    },
    #[error("no answer from systemd ({address}) within {} s to {what}", timeout.as_secs())]
    Timeout { address: String, what: String, timeout: Duration },
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    #[error("{member}: {name}: {message}")]
    Remote { member: String, name: String, message: String },
    #[error("{member}: unexpected reply {found:?}")]
    UnexpectedReply { member: String, found: String },
}

impl BusError {
    /// The D-Bus error name systemd answered with, if it did.
    pub(crate) fn remote_name(&self) -> Option<&str> {
        match self {
            Self::Remote { name, .. } => Some(name),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Connection {
    stream: UnixStream,
    address: String,
    serial: u32,
    /// Through a bus daemon (Hello, a destination, match rules), not systemd's own socket.
    via_bus: bool,
    signals: VecDeque<Message>,
}

/// How long any single exchange with systemd may take.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(30);

const SYSTEMD: &str = "org.freedesktop.systemd1";

/// The addresses tried for the system manager, in order: (socket path, through a bus daemon).
pub(crate) fn system_addresses() -> Vec<(String, bool)> {
    let bus = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
        .ok()
        .and_then(|a| a.split(';').find_map(unix_path))
        .unwrap_or_else(|| "/run/dbus/system_bus_socket".to_owned());
    vec![("/run/systemd/private".to_owned(), false), (bus, true)]
}

/// The addresses tried for the caller's own user manager (a rootless container), in order.
pub(crate) fn user_addresses() -> Vec<(String, bool)> {
    let runtime_dir = std::env::var("XDG_RUNTIME_DIR").ok().filter(|d| !d.is_empty());
    let session = std::env::var("DBUS_SESSION_BUS_ADDRESS").ok().and_then(|a| a.split(';').find_map(unix_path));
    let mut addresses = Vec::new();
    if let Some(dir) = &runtime_dir {
        addresses.push((format!("{dir}/systemd/private"), false));
    }
    if let Some(path) = session {
        addresses.push((path, true));
    }
    if let Some(dir) = &runtime_dir {
        addresses.push((format!("{dir}/bus"), true));
    }
    addresses
}

/// "unix:path=/x,guid=..." → "/x" (abstract sockets and other transports are not used).
fn unix_path(address: &str) -> Option<String> {
    let rest = address.strip_prefix("unix:")?;
    rest.split(',').find_map(|kv| kv.strip_prefix("path=")).map(str::to_owned)
}

impl Connection {
    /// Connect to the first address that answers, authenticate, and subscribe to the
    /// manager's signals.
    pub(crate) fn open(candidates: &[(String, bool)]) -> Result<Self, BusError> {
        let mut last = None;
        for (path, via_bus) in candidates {
            match UnixStream::connect(path) {
                Ok(stream) => {
                    let mut c =
                        Self { stream, address: path.clone(), serial: 0, via_bus: *via_bus, signals: VecDeque::new() };
                    c.handshake()?;
                    return Ok(c);
                }
                Err(e) => last = Some(e),
            }
        }
        let tried = if candidates.is_empty() {
            "no address: XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS are unset".to_owned()
        } else {
            candidates.iter().map(|(p, _)| format!("unix:path={p}")).collect::<Vec<_>>().join(", ")
        };
        Err(BusError::Unreachable { tried, source: last.unwrap_or_else(|| io::ErrorKind::NotFound.into()) })
    }

    fn io(&self, source: io::Error) -> BusError {
        if matches!(source.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
            return BusError::Timeout {
                address: self.address.clone(),
                what: "a request".into(),
                timeout: CALL_TIMEOUT,
            };
        }
        BusError::Io { address: self.address.clone(), source }
    }

    fn handshake(&mut self) -> Result<(), BusError> {
        self.stream.set_read_timeout(Some(CALL_TIMEOUT)).map_err(|e| self.io(e))?;
        // The uid the server sees on the socket: in a user namespace (rootless podman runs us as
        // its uid 0), the one our euid maps to outside.
        let euid = nix::unistd::geteuid().as_raw();
        let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
        let uid = uid_outside(&map, euid).unwrap_or(euid).to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        // BEGIN is sent with AUTH in one write, as sd-bus clients do: systemd's own server does
        // not look at a message that arrives in the same read as a separate BEGIN until more
        // data comes (the first call then waits for ever).
        let hello = format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n");
        self.stream.write_all(hello.as_bytes()).map_err(|e| self.io(e))?;
        let reply = self.read_line()?;
        if !reply.starts_with("OK ") {
            return Err(BusError::Auth { address: self.address.clone(), reply });
        }
        if self.via_bus {
            self.call_bus("/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", &[])?;
            let rule = "type='signal',sender='org.freedesktop.systemd1',\
                        interface='org.freedesktop.systemd1.Manager',member='JobRemoved'";
            self.call_bus("/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", &[Value::str(rule)])?;
        }
        // Only subscribed clients get JobRemoved on the bus (systemd's own socket gets all).
        self.call_manager("Subscribe", &[])?;
        Ok(())
    }

    /// One line of the authentication exchange, read byte by byte (nothing may be read past it).
    fn read_line(&mut self) -> Result<String, BusError> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            if line.len() > 512 {
                break;
            }
            match self.stream.read(&mut byte) {
                Ok(0) => break,
                Ok(_) => line.push(byte[0]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(e)),
            }
        }
        Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
    }

    fn call_bus(&mut self, path: &str, interface: &str, member: &str, args: &[Value]) -> Result<Message, BusError> {
        self.call(&Call { destination: Some("org.freedesktop.DBus"), path, interface, member, args })
    }

    /// A property of org.freedesktop.systemd1.Manager that is a string ("ControlGroup").
    pub(crate) fn manager_string_property(&mut self, name: &str) -> Result<String, BusError> {
        let reply = self.call(&Call {
            destination: Some(SYSTEMD),
            path: "/org/freedesktop/systemd1",
            interface: "org.freedesktop.DBus.Properties",
            member: "Get",
            args: &[Value::str("org.freedesktop.systemd1.Manager"), Value::str(name)],
        })?;
        let args = reply.args()?;
        let value = args.first().and_then(|a| match a {
            Value::Variant(v) => v.as_str(),
            _ => None,
        });
        value.map(str::to_owned).ok_or_else(|| BusError::UnexpectedReply {
            member: format!("Get {name}"),
            found: format!("{:?}", args.first()),
        })
    }

    /// A method of org.freedesktop.systemd1.Manager.
    pub(crate) fn call_manager(&mut self, member: &str, args: &[Value]) -> Result<Message, BusError> {
        self.call(&Call {
            destination: Some(SYSTEMD),
            path: "/org/freedesktop/systemd1",
            interface: "org.freedesktop.systemd1.Manager",
            member,
            args,
        })
    }

    /// Send `call` and wait for its reply; signals read meanwhile are kept.
    pub(crate) fn call(&mut self, call: &Call<'_>) -> Result<Message, BusError> {
        self.serial = self.serial.wrapping_add(1).max(1);
        let serial = self.serial;
        let raw = call.encode(serial);
        self.stream.write_all(&raw).map_err(|e| self.io(e))?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let m = self.receive(deadline, call.member)?;
            match m.kind {
                wire::METHOD_RETURN | wire::ERROR if m.reply_serial == Some(serial) => {
                    if m.kind == wire::ERROR {
                        let message = m.args().ok().and_then(|a| a.first().and_then(|v| v.as_str().map(str::to_owned)));
                        return Err(BusError::Remote {
                            member: call.member.to_owned(),
                            name: m.error_name,
                            message: message.unwrap_or_default(),
                        });
                    }
                    return Ok(m);
                }
                wire::SIGNAL => self.keep_signal(m),
                _ => {}
            }
        }
    }

    /// Only the manager's JobRemoved signals are kept; systemd's socket sends every signal.
    fn keep_signal(&mut self, m: Message) {
        if m.member == "JobRemoved" && m.interface == "org.freedesktop.systemd1.Manager" {
            self.signals.push_back(m);
        }
    }

    /// Wait until a kept or new signal satisfies `wanted`, at most until `deadline`.
    pub(crate) fn wait_signal(
        &mut self,
        deadline: Instant,
        what: &str,
        mut wanted: impl FnMut(&Message) -> bool,
    ) -> Result<Message, BusError> {
        if let Some(i) = self.signals.iter().position(&mut wanted) {
            return Ok(self.signals.remove(i).unwrap_or_default());
        }
        loop {
            let m = self.receive(deadline, what)?;
            if m.kind != wire::SIGNAL {
                continue;
            }
            if wanted(&m) {
                return Ok(m);
            }
            self.keep_signal(m);
        }
    }

    fn receive(&mut self, deadline: Instant, what: &str) -> Result<Message, BusError> {
        let timeout =
            || BusError::Timeout { address: self.address.clone(), what: what.to_owned(), timeout: CALL_TIMEOUT };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timeout());
        }
        self.stream.set_read_timeout(Some(left)).map_err(|e| self.io(e))?;
        let mut fixed = [0u8; 16];
        let read = self.stream.read_exact(&mut fixed).and_then(|()| {
            let rest = wire::remaining_len(&fixed).map_err(io::Error::other)?;
            let mut raw = Vec::with_capacity(16 + rest);
            raw.extend_from_slice(&fixed);
            raw.resize(16 + rest, 0);
            self.stream.read_exact(&mut raw[16..])?;
            Ok(raw)
        });
        match read {
            Ok(raw) => Ok(wire::decode(&raw)?),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Err(timeout()),
            Err(e) => Err(self.io(e)),
        }
    }
}

/// The id `inside` maps to outside the user namespace whose `uid_map` is `map`.
fn uid_outside(map: &str, inside: u32) -> Option<u32> {
    map.lines().find_map(|line| {
        let mut f = line.split_whitespace().map(|n| n.parse::<u32>().ok());
        let (Some(Some(start)), Some(Some(outside)), Some(Some(count))) = (f.next(), f.next(), f.next()) else {
            return None;
        };
        (inside >= start && inside - start < count).then(|| outside + (inside - start))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_the_outside() {
        assert_eq!(uid_outside("         0          0 4294967295\n", 0), Some(0));
        assert_eq!(uid_outside("         0       1000          1\n         1     100000      65536\n", 0), Some(1000));
        assert_eq!(uid_outside("0 1000 1\n1 100000 65536\n", 5), Some(100004));
        assert_eq!(uid_outside("0 1000 1\n", 7), None);
    }

    #[test]
    fn unix_paths_from_bus_addresses() {
        assert_eq!(unix_path("unix:path=/run/dbus/system_bus_socket").as_deref(), Some("/run/dbus/system_bus_socket"));
        assert_eq!(unix_path("unix:path=/x,guid=1").as_deref(), Some("/x"));
        assert_eq!(unix_path("unix:abstract=/x"), None);
        assert_eq!(unix_path("tcp:host=a"), None);
    }

    #[test]
    fn an_unreachable_manager_names_the_addresses_tried() {
        let dir = std::env::temp_dir().join(format!("strata-bus-test-{}", std::process::id()));
        let candidates =
            [(dir.join("private").display().to_string(), false), (dir.join("bus").display().to_string(), true)];
        let text = Connection::open(&candidates).unwrap_err().to_string();
        assert!(
            text.contains(&format!("unix:path={}/private, unix:path={}/bus", dir.display(), dir.display())),
            "{text}"
        );
        assert!(text.contains("is systemd running?"), "{text}");
    }
}
