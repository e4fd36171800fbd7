//! The access log's datagram targets when their receiver restarts: records sent after it is
//! back arrive, whatever the socket learnt about the ones sent while it was away.

use crate::common::syslog::record_text;
use crate::common::*;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::net::UdpSocket;

/// (sent, dropped) of the first target.
fn counted(gh: &Proxy) -> (u64, u64) {
    let stats = gh.gh.shared.access_log.stats();
    (
        stats[0].1.sent.load(Relaxed),
        stats[0].1.dropped.load(Relaxed),
    )
}

async fn until_counted(gh: &Proxy, n: u64) {
    for _ in 0..200 {
        let (sent, dropped) = counted(gh);
        if sent + dropped >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{n} records were never counted: {:?}", counted(gh));
}

/// The record of `path` from the sink, within 5 s.
async fn record_of(sink: &UdpSocket, path: &str) -> String {
    let record = record_text(sink).await;
    assert!(record.contains(&format!("path=\"{path}\"")), "{record}");
    record
}

/// rsyslog restarting: the record sent while nobody listened is refused by the kernel (ICMP
/// port unreachable), and the connected socket reports that refusal on its next send. The
/// next record, sent once the receiver is back, must still arrive, and nothing is counted as
/// dropped for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_receiver_back_from_a_restart_gets_the_next_record() {
    let o = Origin::start("o").await;
    let addr = free_port();
    let sink = UdpSocket::bind(addr).await.unwrap();
    let body = format!(
        "[[access_log.targets]]\ntransport = \"udp\"\naddress = \"{addr}\"\nformat = \"rfc5424\"\n{}",
        one_route(&[&o])
    );
    let gh = boot(&body).await;
    let c = client();
    assert_eq!(get(&c, &gh.url("/before")).await.0, 200);
    record_of(&sink, "/before").await;

    drop(sink);
    assert_eq!(get(&c, &gh.url("/while-away")).await.0, 200);
    until_counted(&gh, 2).await;
    // The refusal of that datagram reaches the writer's socket (loopback: at once).
    tokio::time::sleep(Duration::from_millis(200)).await;

    let sink = UdpSocket::bind(addr).await.unwrap();
    assert_eq!(get(&c, &gh.url("/after")).await.0, 200);
    record_of(&sink, "/after").await;
    until_counted(&gh, 3).await;
    assert_eq!(
        counted(&gh),
        (3, 0),
        "(sent, dropped): the record after the restart is not lost"
    );
}
