//! `format = "haproxy"` access logs read by HAProxy's own `halog` (Debian's `haproxy`
//! package): its per-server and per-status figures must match the requests sent.

use crate::common::syslog::record_text;
use crate::common::*;
use std::collections::BTreeMap;
use tokio::net::UdpSocket;

/// Records received until `n` have arrived, with their `<PRI>` stripped, as rsyslog's
/// traditional file format stores them (what `halog` reads).
async fn collect(sink: &UdpSocket, n: usize) -> String {
    let mut text = String::new();
    for _ in 0..n {
        let line = record_text(sink).await;
        let (_, rest) = line.split_once('>').expect("a <PRI> header");
        text.push_str(rest);
        text.push('\n');
    }
    text
}

fn halog(bin: &std::path::Path, arg: &str, log: &str) -> String {
    let out = pipe_into(std::process::Command::new(bin).arg(arg), log.as_bytes());
    assert!(out.status.success(), "halog {arg}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// `halog -st` / `-tc` lines ("200 12") as code → count.
fn per_status(out: &str) -> BTreeMap<String, u64> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halog_reads_the_haproxy_format() {
    let Some(bin) = tool("halog", &["/usr/bin/halog", "/usr/sbin/halog"], "haproxy") else {
        return; // skipped by the user, and recorded
    };
    let (a, b, broken) = (
        Origin::start("a").await,
        Origin::start("b").await,
        Origin::start("broken").await,
    );
    broken.set_mode(Mode::Status(500));
    let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let body = format!(
        "[access_log]\ncapture_request_headers = [\"User-Agent\"]\n\
         [[access_log.targets]]\naddress = \"{}\"\nformat = \"haproxy\"\ntag = \"haproxy\"\n\
         {}{}[[routes]]\nhosts = [\"err.test\"]\npool = \"err\"\n\
         [[routes]]\nhosts = [\"ro.test\"]\npool = \"web\"\nreadonly = \"always\"\n\
         [[routes]]\npool = \"web\"\n",
        sink.local_addr().unwrap(),
        unchecked_pool("web", &[&a, &b]),
        unchecked_pool("err", &[&broken]),
    );
    let gh = boot(&body).await;
    let c = client();
    for i in 0..20 {
        let r = c
            .get(gh.url(&format!("/page/{i}")))
            .header("user-agent", "probe 1.0 {x|y}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for _ in 0..5 {
        assert_eq!(get_host(&c, &gh.url("/boom"), "err.test").await.0, 500);
    }
    for _ in 0..3 {
        let r = c
            .post(gh.url("/form"))
            .header("host", "ro.test")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
    }
    let log = collect(&sink, 28).await;

    let st = per_status(&halog(&bin, "-st", &log));
    let want: BTreeMap<String, u64> = [("200", 20), ("500", 5), ("503", 3)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(st, want, "halog -st on:\n{log}");

    let tc = per_status(&halog(&bin, "-tc", &log));
    let want: BTreeMap<String, u64> = [("--", 25), ("LR", 3)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(tc, want, "termination states (halog -tc) on:\n{log}");

    let srv = halog(&bin, "-srv", &log);
    let rows: BTreeMap<&str, Vec<&str>> = srv
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?, f.collect()))
        })
        .collect();
    for (name, origin, status_col) in [
        ("web/a", &a, 1),
        ("web/b", &b, 1),
        ("err/broken", &broken, 4),
    ] {
        let row = rows
            .get(name)
            .unwrap_or_else(|| panic!("{name} in halog -srv:\n{srv}"));
        let sent = origin.hits() as u64;
        assert!(sent > 0, "{name} served requests");
        // Columns: 1xx 2xx 3xx 4xx 5xx other tot_req ...
        assert_eq!(
            row[status_col].parse::<u64>().unwrap(),
            sent,
            "{name}: {srv}"
        );
        assert_eq!(row[6].parse::<u64>().unwrap(), sent, "{name}: {srv}");
    }
    assert_eq!(a.hits() + b.hits(), 20);
    let nosrv = rows
        .get("web/<NOSRV>")
        .unwrap_or_else(|| panic!("<NOSRV> row:\n{srv}"));
    assert_eq!(
        nosrv[6], "3",
        "the read-only refusals, answered by gatehouse: {srv}"
    );
}
