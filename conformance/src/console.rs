//! The receiving end of `--console-socket`: accepts the runtime's connection, takes the pty master it
//! sends with SCM_RIGHTS, and reads what the container writes to its terminal.

use std::fs::File;
use std::io::{IoSliceMut, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

use crate::fail::OrFail;

/// How long to wait for the runtime to connect (a safety net).
const CONNECT_LIMIT: Duration = Duration::from_secs(60);

/// What the runtime sent: the pty master and the message payload (runc sends `/dev/ptmx`).
#[derive(Debug)]
pub struct Received {
    pub master: File,
    pub payload: String,
}

#[derive(Debug)]
pub struct ConsoleSocket {
    pub path: PathBuf,
    accept: Option<JoinHandle<Result<Received, String>>>,
}

impl ConsoleSocket {
    /// Listens on `path` and accepts one connection in the background.
    pub fn listen(path: &Path) -> Self {
        let listener = UnixListener::bind(path).or_fail(format!("bind console socket {}", path.display()));
        listener.set_nonblocking(true).or_fail("make the console socket non-blocking");
        let accept = std::thread::spawn(move || receive(&listener));
        ConsoleSocket { path: path.to_path_buf(), accept: Some(accept) }
    }

    /// The runtime's message if it has arrived (or the connection failed) by now, without waiting.
    #[track_caller]
    pub fn try_receive(&mut self) -> Option<Received> {
        if self.accept.as_ref().is_some_and(JoinHandle::is_finished) { Some(self.receive()) } else { None }
    }

    /// Waits for the runtime's message and returns the pty master it carried.
    #[track_caller]
    pub fn receive(&mut self) -> Received {
        let handle = self.accept.take().or_fail("console socket already received");
        handle
            .join()
            .unwrap_or_else(|_| panic!("console socket thread panicked"))
            .unwrap_or_else(|e| panic!("console socket: {e}"))
    }
}

fn receive(listener: &UnixListener) -> Result<Received, String> {
    let started = Instant::now();
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if started.elapsed() > CONNECT_LIMIT {
                    return Err(format!("no connection within {CONNECT_LIMIT:?}"));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    };
    stream.set_nonblocking(false).map_err(|e| format!("set blocking: {e}"))?;
    // A runtime that connects but never sends (crun sends a seccomp listener only at start) must not
    // block the test for ever.
    stream.set_read_timeout(Some(CONNECT_LIMIT)).map_err(|e| format!("set a receive timeout: {e}"))?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(|e| format!("recvmsg (nothing received within {CONNECT_LIMIT:?}?): {e}"))?;
    let mut fds = Vec::new();
    for c in msg.cmsgs().map_err(|e| format!("control messages: {e}"))? {
        if let ControlMessageOwned::ScmRights(list) = c {
            fds.extend(list.into_iter().map(crate::sys::own_received_fd));
        }
    }
    let len = msg.bytes;
    let payload = String::from_utf8_lossy(&buf[..len]).into_owned();
    let mut fds = fds.into_iter();
    let master = fds.next().ok_or_else(|| format!("message {payload:?} carried no descriptor"))?;
    if fds.next().is_some() {
        return Err("the message carried more than one descriptor".into());
    }
    Ok(Received { master: File::from(master), payload })
}

/// Reads the pty master until the terminal's last writer closes (EIO), in the background, so a
/// container writing more than the pty buffer holds never blocks.
#[derive(Debug)]
pub struct TerminalReader {
    handle: Option<JoinHandle<Vec<u8>>>,
}

impl TerminalReader {
    pub fn start(mut master: File) -> Self {
        let handle = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match master.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    // EIO: no process has the terminal open any more.
                    Err(_) => break,
                }
            }
            out
        });
        TerminalReader { handle: Some(handle) }
    }

    /// Everything read (call after the container exited), with `\r\n` turned into `\n`.
    #[track_caller]
    pub fn output(&mut self) -> String {
        let h = self.handle.take().or_fail("terminal output already taken");
        let started = Instant::now();
        while !h.is_finished() {
            if started.elapsed() > CONNECT_LIMIT {
                panic!("the terminal was not closed within {CONNECT_LIMIT:?} (a process still holds it open)");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let bytes = h.join().unwrap_or_else(|_| panic!("terminal reader panicked"));
        String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
    }
}
