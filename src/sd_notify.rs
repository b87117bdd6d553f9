//! systemd's notify protocol (`Type=notify`, `WatchdogSec=`): datagrams to
//! `$NOTIFY_SOCKET`. Without the variable every call is a no-op.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The notify socket heat inherited, if any.
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` (the watchdog
    /// is heat's only when the pid is unset or heat's own).
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let addr = address(path.as_encoded_bytes())?;
            let sock = UnixDatagram::unbound().ok()?;
            Some((sock, addr))
        });
        let ours = std::env::var("WATCHDOG_PID")
            .map_or(true, |p| p.trim().parse::<u32>().ok() == Some(std::process::id()));
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&us| us > 0 && ours)
            .map(Duration::from_micros);
        let watchdog = watchdog.filter(|_| socket.is_some());
        Notifier { socket, watchdog }
    }

    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to ping the watchdog: half its timeout, as systemd advises.
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    pub fn reloading(&self) {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    fn send(&self, msg: &str) {
        if let Some((sock, addr)) = &self.socket
            && let Err(e) = sock.send_to_addr(msg.as_bytes(), addr)
        {
            tracing::debug!("cannot notify systemd: {e}");
        }
    }
}

/// A path, or `@name` for an abstract socket.
fn address(raw: &[u8]) -> Option<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    match raw.first() {
        Some(b'@') => SocketAddr::from_abstract_name(&raw[1..]).ok(),
        Some(b'/') => SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(raw)).ok(),
        _ => None,
    }
}

fn monotonic_usec() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC);
    ts.map_or(0, |t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_paths_or_abstract_names() {
        assert!(address(b"/run/systemd/notify").unwrap().as_pathname().is_some());
        use std::os::linux::net::SocketAddrExt;
        assert_eq!(address(b"@heat-test").unwrap().as_abstract_name(), Some(&b"heat-test"[..]));
        assert!(address(b"relative").is_none());
        assert!(address(b"").is_none());
    }

    #[test]
    fn messages_reach_the_socket() {
        let dir = std::env::temp_dir().join(format!("heat-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            socket: Some((
                UnixDatagram::unbound().unwrap(),
                address(path.as_os_str().as_encoded_bytes()).unwrap(),
            )),
            watchdog: Some(Duration::from_secs(10)),
        };
        n.ready("1 probe");
        n.reloading();
        n.watchdog();
        n.stopping();
        let mut buf = [0u8; 256];
        let mut got = Vec::new();
        for _ in 0..4 {
            let len = server.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
        assert_eq!(got[0], "READY=1\nSTATUS=1 probe");
        assert!(got[1].starts_with("RELOADING=1\nMONOTONIC_USEC="), "{}", got[1]);
        assert!(
            got[1].trim_start_matches("RELOADING=1\nMONOTONIC_USEC=").parse::<u64>().unwrap() > 0
        );
        assert_eq!(got[2..], ["WATCHDOG=1", "STOPPING=1"]);
        assert_eq!(n.watchdog_every(), Some(Duration::from_secs(5)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
