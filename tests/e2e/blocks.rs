//! Address blocks set at runtime (issue 32): `POST /api/blocks` and `gatehouse ctl block`
//! refuse a client address or network with 403 before anything else, others pass; a block
//! ends at its time or by `DELETE` / `ctl unblock`; it is listed, logged (`block:NETWORK`),
//! counted, and kept in the state file. (Shared by every node of a cluster: `cluster.rs`.)

use crate::common::ctl::ctl;
use crate::common::raw::Wire;
use crate::common::syslog::{json_record, json_sink};
use crate::common::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpSocket;

async fn get_from(source: [u8; 4], to: SocketAddr) -> u16 {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from((source, 0))).unwrap();
    let mut wire = Wire::over(sock.connect(to).await.unwrap());
    assert!(
        wire.send(b"GET /b HTTP/1.1\r\nHost: site.test\r\n\r\n")
            .await
    );
    wire.response(false, Duration::from_secs(5))
        .await
        .unwrap()
        .status()
}

async fn call(gh: &Proxy, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = client()
        .request(
            method.parse().unwrap(),
            format!("http://{}{path}", gh.admin_address()),
        )
        .bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_refuses_its_network_until_it_ends_and_is_logged_listed_and_kept() {
    let o = Origin::start("o").await;
    let (log, targets) = json_sink().await;
    let gh = boot(&format!("[access_log]\n{targets}{}", one_route(&[&o]))).await;
    let block = json!({"cidr": "127.0.0.2/31", "for": "2s", "reason": "scraper"});
    let (status, answer) = call(&gh, "POST", "/api/blocks", Some(block)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["blocks"][0]["cidr"], "127.0.0.2/31", "{answer}");
    assert_eq!(get_from([127, 0, 0, 3], gh.addr).await, 403);
    let rec = json_record(&log).await;
    assert_eq!(rec["termination"], "denied", "{rec}");
    assert_eq!(rec["error"], "block:127.0.0.2/31", "{rec}");
    assert_eq!(get_from([127, 0, 0, 4], gh.addr).await, 200);
    assert_eq!(o.hits(), 1, "the blocked request reached no server");
    let metrics = parse_metrics(&metrics_text(gh.admin_address()).await);
    assert_eq!(metrics.get("gatehouse_blocked_total"), Some(&1.0));
    assert_eq!(metrics.get("gatehouse_blocks"), Some(&1.0));
    // Kept in the state file, which a restart reads back.
    let state_file = gh.gh.shared.state_path();
    let saved: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(saved["blocks"][0]["reason"], "scraper", "{saved}");
    // It ends by itself.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(get_from([127, 0, 0, 3], gh.addr).await, 200);
    assert_eq!(
        call(&gh, "GET", "/api/blocks", None).await.1["blocks"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_blocks_and_unblocks_and_bad_calls_are_refused() {
    let o = Origin::start("o").await;
    let gh = boot(&one_route(&[&o])).await;
    let admin = gh.admin_address();
    let (code, out, err) = ctl(
        admin,
        &["block", "127.0.0.5", "--for", "1h", "--reason", "abuse"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("127.0.0.5/32") && out.contains("abuse"),
        "{out}"
    );
    assert_eq!(get_from([127, 0, 0, 5], gh.addr).await, 403);
    let (code, out, _) = ctl(admin, &["blocks"]);
    assert_eq!(code, 0);
    assert!(out.contains("127.0.0.5/32"), "{out}");
    let (code, _, err) = ctl(admin, &["unblock", "127.0.0.5"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(get_from([127, 0, 0, 5], gh.addr).await, 200);
    let (code, _, err) = ctl(admin, &["unblock", "127.0.0.5"]);
    assert_eq!(code, 1);
    assert!(err.contains("no block of 127.0.0.5/32"), "{err}");
    for body in [
        json!({"cidr": "10.0.0.300", "for": "1h"}),
        json!({"cidr": "10.0.0.0/8", "for": "soon"}),
        json!({"cidr": "10.0.0.0/8"}),
        json!({"cidr": "10.0.0.0/8", "for": "1h", "until": 5}),
    ] {
        let (status, answer) = call(&gh, "POST", "/api/blocks", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
    }
    // Changes need the token.
    let r = client()
        .post(format!("http://{admin}/api/blocks"))
        .json(&json!({"cidr": "10.0.0.0/8", "for": "1h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}
