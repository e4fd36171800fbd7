//! UDP and unix-datagram targets: the record is formatted and sent from the thread that served
//! the request, on a non-blocking socket, as HAProxy does: no queue, no hand-off, no thread to
//! wake. A full socket buffer (`EAGAIN`) or an absent receiver drops the record and counts it;
//! nothing ever waits.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

/// An unconnected, non-blocking datagram socket and where it sends.
pub enum DatagramSink {
    Udp(UdpSocket, SocketAddr),
    Unix(UnixDatagram, PathBuf),
}

impl DatagramSink {
    pub fn udp(to: SocketAddr) -> io::Result<DatagramSink> {
        let bind: SocketAddr = if to.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(bind)?;
        sock.set_nonblocking(true)?;
        Ok(DatagramSink::Udp(sock, to))
    }

    pub fn unix(path: PathBuf) -> io::Result<DatagramSink> {
        let sock = UnixDatagram::unbound()?;
        sock.set_nonblocking(true)?;
        Ok(DatagramSink::Unix(sock, path))
    }

    /// One record, one datagram; never blocks.
    pub fn send(&self, record: &[u8]) -> io::Result<usize> {
        match self {
            DatagramSink::Udp(sock, to) => sock.send_to(record, to),
            DatagramSink::Unix(sock, path) => sock.send_to(record, path),
        }
    }
}
