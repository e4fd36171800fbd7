//! UDP and unix-datagram output of a writer: one datagram per record, a whole batch handed to
//! the kernel with one `sendmmsg`, on a connected non-blocking socket. A receiver whose buffer
//! is full (`EAGAIN`) loses the rest of the batch, counted; a gone one (no such socket) is
//! reconnected for the next batch.
//!
//! A refusal (`ECONNREFUSED`) is news about the past, not about the batch being sent: a
//! connected UDP socket reports the ICMP "port unreachable" of an earlier datagram on its next
//! send (syslog restarting a moment ago), and a unix socket reports that the receiver it was
//! connected to has closed (a new one may be bound on the path). So the batch is sent again,
//! once, on a new connection, and only what that cannot deliver is lost and counted. An
//! earlier datagram that the receiver refused was counted as sent: nothing could know better
//! when it left, as with HAProxy's unconnected sends.

use nix::errno::Errno;
use nix::sys::socket::{sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use std::io::{self, IoSlice};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// At most this many datagrams per system call (Linux caps it at 1024).
const PER_CALL: usize = 256;

pub enum Dest {
    Udp(SocketAddr),
    Unix(PathBuf),
}

enum Sock {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

impl Sock {
    fn fd(&self) -> i32 {
        match self {
            Sock::Udp(s) => s.as_raw_fd(),
            Sock::Unix(s) => s.as_raw_fd(),
        }
    }
}

pub struct Datagrams {
    dest: Dest,
    sock: Option<Sock>,
}

impl Datagrams {
    pub fn new(dest: Dest) -> Datagrams {
        Datagrams { dest, sock: None }
    }

    fn connect(&self) -> io::Result<Sock> {
        match &self.dest {
            Dest::Udp(to) => {
                let bind: SocketAddr = if to.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let s = UdpSocket::bind(bind)?;
                s.connect(to)?;
                s.set_nonblocking(true)?;
                Ok(Sock::Udp(s))
            }
            Dest::Unix(path) => {
                let s = UnixDatagram::unbound()?;
                s.connect(path)?;
                s.set_nonblocking(true)?;
                Ok(Sock::Unix(s))
            }
        }
    }

    /// Sends each message as one datagram; how many left (the rest are lost).
    pub fn send(&mut self, msgs: &[&[u8]]) -> usize {
        if self.sock.is_none() {
            self.sock = self.connect().ok();
        }
        let mut sent = 0;
        let mut retried = false;
        while sent < msgs.len() {
            let Some(fd) = self.sock.as_ref().map(Sock::fd) else {
                break;
            };
            let chunk = &msgs[sent..msgs.len().min(sent + PER_CALL)];
            match send_chunk(fd, chunk) {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(Errno::EAGAIN) => break, // the receiver is full: drop the rest
                Err(Errno::ECONNREFUSED) if !retried => {
                    // An earlier datagram was refused, or the receiver was replaced: the
                    // refusal is consumed; send again once on a new connection.
                    retried = true;
                    self.sock = self.connect().ok();
                }
                Err(_) => {
                    self.sock = None; // refused again or gone: reconnect for the next batch
                    break;
                }
            }
        }
        sent
    }
}

/// One `sendmmsg` of at most `PER_CALL` datagrams; how many the kernel took.
fn send_chunk(fd: i32, chunk: &[&[u8]]) -> Result<usize, Errno> {
    let iovs: Vec<[IoSlice<'_>; 1]> = chunk.iter().map(|m| [IoSlice::new(m)]).collect();
    let addrs = vec![None::<SockaddrStorage>; chunk.len()];
    let mut headers = MultiHeaders::preallocate(chunk.len(), None);
    sendmmsg(fd, &mut headers, &iovs, addrs, [], MsgFlags::MSG_DONTWAIT).map(|r| r.count())
}
