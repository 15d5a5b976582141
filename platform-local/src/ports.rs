//! Free loopback ports for bots (`BOT_PORT`).

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a port handed to a bot is not handed out again: the kernel may
/// offer it again as soon as we release it, before the bot has bound it.
/// A bot that has bound its port keeps it from the kernel's offers anyway.
const HANDED_OUT_FOR: Duration = Duration::from_secs(60);

/// Tries before giving up: each try asks the kernel for a port, and only a
/// port handed out in the last minute is refused.
const TRIES: usize = 64;

/// Hands out free ports on 127.0.0.1, never the same one twice within a
/// minute.
#[derive(Debug, Default)]
pub(crate) struct PortPicker {
    handed_out: Mutex<VecDeque<(Instant, u16)>>,
}

impl PortPicker {
    /// A port nobody listens on right now: asks the kernel for one (bind to
    /// port 0) and releases it for the bot to bind.
    pub(crate) fn pick(&self) -> io::Result<u16> {
        for _ in 0..TRIES {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
                .local_addr()?
                .port();
            let mut handed_out = self
                .handed_out
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            while handed_out
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > HANDED_OUT_FOR)
            {
                handed_out.pop_front();
            }
            if handed_out.iter().all(|(_, p)| *p != port) {
                handed_out.push_back((now, port));
                return Ok(port);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "the kernel kept offering loopback ports that were just given to other bots",
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ports_are_free_and_distinct() {
        let picker = PortPicker::default();
        let ports: Vec<u16> = (0..200).map(|_| picker.pick().unwrap()).collect();
        let distinct: HashSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len());
        // The port is free: a bot can bind it.
        TcpListener::bind((Ipv4Addr::LOCALHOST, ports[0])).unwrap();
    }
}
