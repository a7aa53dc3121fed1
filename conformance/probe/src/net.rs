//! `loopback`: whether the network namespace's loopback device is up and carries traffic.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use serde_json::{Value, json};

use crate::io_err;

/// `lo`'s interface flags (IFF_UP is bit 0) and a TCP round trip over 127.0.0.1, as a server
/// listening on localhost and its client see it.
pub fn loopback() -> Value {
    let flags = std::fs::read_to_string("/sys/class/net/lo/flags")
        .map_err(|e| io_err(&e))
        .and_then(|s| u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).map_err(|e| json!(e.to_string())));
    let up = flags.as_ref().ok().map(|f| f & 1 == 1);
    json!({
        "flags": flags.clone().map_or_else(|e| e, Value::from),
        "up": up,
        "tcp_roundtrip": tcp_roundtrip().map_or_else(|e| e, |()| json!({"ok": true})),
    })
}

fn tcp_roundtrip() -> Result<(), Value> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| stage("bind", &e))?;
    let addr = listener.local_addr().map_err(|e| stage("local_addr", &e))?;
    let mut client = TcpStream::connect(addr).map_err(|e| stage("connect", &e))?;
    let (mut server, _) = listener.accept().map_err(|e| stage("accept", &e))?;
    client.write_all(b"ping").map_err(|e| stage("write", &e))?;
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).map_err(|e| stage("read", &e))?;
    if &buf == b"ping" { Ok(()) } else { Err(json!({"ok": false, "stage": "read", "got": buf.to_vec()})) }
}

fn stage(name: &str, e: &std::io::Error) -> Value {
    let mut v = io_err(e);
    v["ok"] = json!(false);
    v["stage"] = json!(name);
    v
}
