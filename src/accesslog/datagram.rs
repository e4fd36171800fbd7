//! UDP and unix-datagram output of a writer: one datagram per record, a whole batch handed to
//! the kernel with one `sendmmsg`, on a connected non-blocking socket. A receiver whose buffer
//! is full (`EAGAIN`) loses the rest of the batch, counted; a gone one (refused, no such
//! socket) is reconnected for the next batch.

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
        let Some(fd) = self.sock.as_ref().map(Sock::fd) else {
            return 0;
        };
        let mut sent = 0;
        while sent < msgs.len() {
            let chunk = &msgs[sent..msgs.len().min(sent + PER_CALL)];
            let iovs: Vec<[IoSlice<'_>; 1]> = chunk.iter().map(|m| [IoSlice::new(m)]).collect();
            let addrs = vec![None::<SockaddrStorage>; chunk.len()];
            let mut headers = MultiHeaders::preallocate(chunk.len(), None);
            match sendmmsg(fd, &mut headers, &iovs, addrs, [], MsgFlags::MSG_DONTWAIT) {
                Ok(results) => match results.count() {
                    0 => break,
                    n => sent += n,
                },
                Err(nix::errno::Errno::EAGAIN) => break, // the receiver is full: drop the rest
                Err(_) => {
                    self.sock = None; // refused or gone: reconnect for the next batch
                    break;
                }
            }
        }
        sent
    }
}
