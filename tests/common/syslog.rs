//! Access log receivers of the tests' own: a UDP socket gatehouse's log target points at, and
//! the records read from it one datagram at a time, each within 5 s (a record that does not
//! come fails the test).

use std::time::Duration;
use tokio::net::UdpSocket;

/// A JSON-lines access log target on a UDP socket of the test's: the socket, and the
/// `[[access_log.targets]]` entry for the config.
pub async fn json_sink() -> (UdpSocket, String) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = format!(
        "[[access_log.targets]]\ntransport = \"udp\"\naddress = \"{}\"\nformat = \"json\"\n",
        sock.local_addr().unwrap()
    );
    (sock, target)
}

/// The next record on `sink`, as text.
pub async fn record_text(sink: &UdpSocket) -> String {
    let mut buf = vec![0u8; 65536];
    let n = tokio::time::timeout(Duration::from_secs(5), sink.recv(&mut buf))
        .await
        .expect("a record within 5 s")
        .unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

/// The next record on `sink`, a JSON one.
pub async fn json_record(sink: &UdpSocket) -> serde_json::Value {
    let text = record_text(sink).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// No record comes within 300 ms.
pub async fn nothing_more(sink: &UdpSocket) {
    let mut buf = vec![0u8; 65536];
    let more = tokio::time::timeout(Duration::from_millis(300), sink.recv(&mut buf)).await;
    assert!(
        more.is_err(),
        "one record per request: got another {:?}",
        more.map(|r| r.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned()))
    );
}
