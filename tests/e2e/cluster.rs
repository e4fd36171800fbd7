//! A fleet on real etcd: three etcd members and three gatehouse processes on loopback. One
//! command reaches every node; leader loss, quorum loss, a node restarted while etcd is down
//! and a compaction past a node's revision all end with every node agreeing; a drain under load
//! fails no request.

use crate::common::ctl::ctl;
use crate::common::etcd::Etcd;
use crate::common::process::{spawn_gatehouse, wait_listening, Load};
use crate::common::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One gatehouse process of the fleet.
struct Node {
    name: String,
    config: PathBuf,
    listen: SocketAddr,
    admin: SocketAddr,
    child: Option<Reap>,
}

impl Node {
    /// Writes the node's config: pool "web" of `origins`, `/cached/` cached, the cluster.
    fn new(name: &str, endpoints: &[String], origins: &[&Origin]) -> Node {
        Node::with(name, endpoints, origins, "")
    }

    /// Like `new`, with more `[cluster]` settings.
    fn with(name: &str, endpoints: &[String], origins: &[&Origin], cluster: &str) -> Node {
        let dir = state_dir();
        let config = dir.join("gatehouse.toml");
        let listen = free_port();
        let text = format!(
            "{}[[listeners]]\naddress = \"{listen}\"\n\n{}\
             [[routes]]\npath_prefix = \"/cached/\"\npool = \"web\"\n[routes.cache]\ndefault_ttl = \"60s\"\n\n\
             [[routes]]\npool = \"web\"\n\n\
             [cluster]\nname = \"test\"\nnode = \"{name}\"\netcd_endpoints = {endpoints:?}\n\
             request_timeout = \"5s\"\ndial_timeout = \"500ms\"\nnode_ttl = \"3s\"\n{cluster}",
            server_section_in(&dir),
            unchecked_pool("web", origins),
        );
        std::fs::write(&config, text).unwrap();
        let admin = gatehouse::Config::load(&config).unwrap().admin.address;
        Node {
            name: name.into(),
            config,
            listen,
            admin,
            child: None,
        }
    }

    async fn start(&mut self) {
        let log = self.config.with_extension("log");
        self.child = Some(Reap(spawn_gatehouse(&self.config, false, &log)));
        wait_listening(self.listen).await;
        wait_listening(self.admin).await;
    }

    /// Kills the process (no goodbye to the cluster).
    fn kill(&mut self) {
        self.child = None;
    }

    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = client()
            .request(
                method.parse().unwrap(),
                format!("http://{}{path}", self.admin),
            )
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("admin API");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn state_of(&self, server: &str) -> String {
        let (_, v) = self
            .api("GET", &format!("/api/pools/web/servers/{server}"), None)
            .await;
        v["state"].as_str().unwrap_or("?").to_string()
    }

    async fn cluster(&self) -> Value {
        self.api("GET", "/api/cluster", None).await.1
    }

    async fn request(&self, method: &str, path: &str) -> (u16, String) {
        let r = client()
            .request(
                method.parse().unwrap(),
                format!("http://{}{path}", self.listen),
            )
            .header("host", "www.test")
            .send()
            .await
            .expect("request through the node");
        let x_cache = r
            .headers()
            .get("x-cache")
            .map_or(String::new(), |v| v.to_str().unwrap().to_string());
        (r.status().as_u16(), x_cache)
    }
}

/// How long a change written through one node may take to reach every node before a test
/// fails. What the tests prove is that it arrives (through each node's watch); how fast is
/// measured and printed (a few ms on loopback), not asserted: three etcd members and three
/// gatehouse processes on a loaded 2-core machine can stall for a second.
const PROPAGATION: Duration = Duration::from_secs(10);

/// Polls `check` on every node until all pass; the time that took.
async fn all_within(
    nodes: &[Node],
    timeout: Duration,
    what: &str,
    check: impl AsyncFn(&Node) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let mut behind = Vec::new();
        for n in nodes {
            if !check(n).await {
                behind.push(n.name.as_str());
            }
        }
        if behind.is_empty() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "{what}: not on {behind:?} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn connected(n: &Node) -> bool {
    n.cluster().await["connected"] == json!(true)
}

async fn fleet(endpoints: &[Vec<String>], origins: &[&Origin]) -> Vec<Node> {
    let mut nodes = Vec::new();
    for (i, e) in endpoints.iter().enumerate() {
        let mut n = Node::new(&format!("n{i}"), e, origins);
        n.start().await;
        nodes.push(n);
    }
    all_within(&nodes, Duration::from_secs(10), "connected", connected).await;
    // Each node's record reaches the others through their watchers, a moment after that node
    // is connected: tests (and `ctl --wait`) count on every node knowing every other.
    let count = nodes.len();
    let lists_all =
        async |n: &Node| n.cluster().await["nodes"].as_array().map(Vec::len) == Some(count);
    all_within(
        &nodes,
        Duration::from_secs(5),
        "every node listed",
        lists_all,
    )
    .await;
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_reaches_every_node() {
    let Some(etcd) = Etcd::start(3).await else {
        return;
    };
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let nodes = fleet(&vec![etcd.endpoints(); 3], &[&a, &b]).await;
    // The cluster view lists every node (`fleet` waited for it).
    let view = nodes[1].cluster().await;
    assert_eq!(view["nodes"].as_array().map(Vec::len), Some(3), "{view}");
    let metrics = metrics_text(nodes[1].admin).await;
    assert!(
        metrics.contains("gatehouse_cluster_connected{cluster=\"test\",node=\"n1\"} 1"),
        "{metrics}"
    );

    // A drain through one node's API: every node stops sending b new requests.
    let started = Instant::now();
    let (status, answer) = nodes[0]
        .api("POST", "/api/pools/web/servers/b/drain", None)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["cluster"]["applied_here"], json!(true), "{answer}");
    all_within(&nodes, PROPAGATION, "drain", async |n| {
        n.state_of("b").await == "drain"
    })
    .await;
    let drain_ms = started.elapsed().as_millis();
    let before = b.hits();
    for n in &nodes {
        for _ in 0..10 {
            assert_eq!(n.request("GET", "/page").await.0, 200);
        }
    }
    assert_eq!(
        b.hits(),
        before,
        "a node sent requests to the drained server"
    );

    // Read-only on, through another node: every node refuses writes; off again with ctl.
    let started = Instant::now();
    let (status, _) = nodes[1]
        .api(
            "POST",
            "/api/readonly",
            Some(json!({"enabled": true, "reason": "migration"})),
        )
        .await;
    assert_eq!(status, 200);
    all_within(&nodes, PROPAGATION, "read-only", async |n| {
        n.request("POST", "/form").await.0 == 503
    })
    .await;
    let readonly_ms = started.elapsed().as_millis();
    let (code, _, err) = ctl(nodes[2].admin, &["readonly", "off", "--wait"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("applied on every node (n0, n1, n2)"), "{err}");
    for n in &nodes {
        assert_eq!(n.request("POST", "/form").await.0, 200);
    }

    // A purge through the third node empties that URL on every node.
    for n in &nodes {
        n.request("GET", "/cached/x").await;
        assert_eq!(n.request("GET", "/cached/x").await.1, "HIT");
    }
    let started = Instant::now();
    let (status, answer) = nodes[2]
        .api(
            "POST",
            "/api/cache/purge",
            Some(json!({"host": "www.test", "path": "/cached/x"})),
        )
        .await;
    assert_eq!((status, &answer["removed"]), (200, &json!(1)), "{answer}");
    let revision = answer["cluster"]["revision"].as_i64().unwrap();
    all_within(&nodes, PROPAGATION, "purge", async move |n| {
        n.cluster().await["applied_revision"].as_i64() >= Some(revision)
    })
    .await;
    let purge_ms = started.elapsed().as_millis();
    for n in &nodes {
        assert_eq!(n.request("GET", "/cached/x").await.1, "MISS", "{}", n.name);
    }
    // ctl --wait names every node; `--local` changes one node only.
    let (code, _, err) = ctl(nodes[0].admin, &["ready", "web", "b", "--wait"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("applied on every node (n0, n1, n2)"), "{err}");
    let (code, _, _) = ctl(nodes[0].admin, &["--local", "maint", "web", "a"]);
    assert_eq!(code, 0);
    assert_eq!(nodes[0].state_of("a").await, "maint");
    assert_eq!(nodes[1].state_of("a").await, "ready");

    // A block set on one node (this test's own address) refuses on the other two; unblocked
    // with ctl, every node serves again.
    let (code, _, err) = ctl(
        nodes[0].admin,
        &[
            "block",
            "127.0.0.1",
            "--for",
            "1h",
            "--reason",
            "test",
            "--wait",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("applied on every node (n0, n1, n2)"), "{err}");
    for n in &nodes {
        assert_eq!(n.request("GET", "/page").await.0, 403, "{}", n.name);
        let (_, listed) = n.api("GET", "/api/blocks", None).await;
        assert_eq!(listed["blocks"][0]["cidr"], "127.0.0.1/32", "{listed}");
        assert_eq!(listed["blocks"][0]["reason"], "test", "{listed}");
    }
    let (code, _, err) = ctl(nodes[1].admin, &["unblock", "127.0.0.1", "--wait"]);
    assert_eq!(code, 0, "{err}");
    for n in &nodes {
        assert_eq!(n.request("GET", "/page").await.0, 200, "{}", n.name);
    }
    eprintln!("propagation to 3 nodes: drain {drain_ms} ms, read-only {readonly_ms} ms, purge {purge_ms} ms");
}

/// A TCP relay a test can cut: a node's only way to etcd, to part it from the cluster.
struct Gate {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Gate {
    async fn to(target: String) -> Gate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let target = target.trim_start_matches("http://").to_string();
        let (o, t) = (open.clone(), tasks.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !o.load(SeqCst) {
                    continue;
                }
                let target = target.clone();
                t.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                }));
            }
        });
        Gate { addr, open, tasks }
    }

    fn cut(&self) {
        self.open.store(false, SeqCst);
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn mend(&self) {
        self.open.store(true, SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_rides_out_etcd_faults() {
    let Some(mut etcd) = Etcd::start(3).await else {
        return;
    };
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    // n2 reaches etcd only through a relay the test can cut.
    let gate = Gate::to(etcd.endpoint(0)).await;
    let all = etcd.endpoints();
    let endpoints = [
        all.clone(),
        all.clone(),
        vec![format!("http://{}", gate.addr)],
    ];
    let mut nodes = fleet(&endpoints, &[&a, &b]).await;

    // Compaction past a node's revision: n2 is cut off, misses changes that are then
    // compacted away; mended, it reads everything again and converges.
    let full_reads = nodes[2].cluster().await["full_reads"].as_u64().unwrap();
    gate.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ctl --wait names the node that lags (n2's record lives on until its lease runs out).
    let (code, _, err) = ctl(nodes[0].admin, &["drain", "web", "a", "--wait", "1s"]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("not applied on: n2 (at revision"), "{err}");
    assert_eq!(
        nodes[0]
            .api("POST", "/api/pools/web/servers/a/ready", None)
            .await
            .0,
        200
    );
    assert_eq!(
        nodes[1]
            .api("POST", "/api/pools/web/servers/b/maint", None)
            .await
            .0,
        200
    );
    etcd.compact().await;
    assert_eq!(nodes[2].state_of("b").await, "ready", "n2 is cut off");
    gate.mend();
    all_within(
        &nodes,
        Duration::from_secs(8),
        "after compaction",
        async |n| n.state_of("b").await == "maint" && n.state_of("a").await == "ready",
    )
    .await;
    let after = nodes[2].cluster().await["full_reads"].as_u64().unwrap();
    assert!(after > full_reads, "n2 did not read the state again");

    // The leader killed: commands still propagate.
    let leader = etcd.leader().await;
    etcd.kill(leader);
    let written = Instant::now();
    let (status, answer) = nodes[1]
        .api("POST", "/api/pools/web/servers/b/drain", None)
        .await;
    assert_eq!(status, 200, "{answer}");
    let write_ms = written.elapsed().as_millis();
    let survivors: Vec<&Node> = nodes
        .iter()
        .filter(|n| leader != 0 || n.name != "n2")
        .collect();
    let started = Instant::now();
    for n in &survivors {
        while n.state_of("b").await != "drain" {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{} missed the drain",
                n.name
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    eprintln!(
        "leader killed: the write took {write_ms} ms; then the drain was on every surviving node after {} ms",
        started.elapsed().as_millis()
    );
    etcd.restart(leader);
    etcd.wait_writable(Duration::from_secs(10)).await;
    all_within(
        &nodes,
        Duration::from_secs(8),
        "after the leader's return",
        async |n| n.state_of("b").await == "drain",
    )
    .await;

    // Two of three members gone: no quorum. Nodes keep their state and serve; a write's
    // outcome is unknown; once quorum is back every node converges on what etcd holds.
    let alive = (leader + 1) % 3;
    for i in (0..3).filter(|i| *i != alive) {
        etcd.kill(i);
    }
    let asked = Instant::now();
    let (code, _, err) = ctl(nodes[0].admin, &["ready", "web", "b"]);
    eprintln!(
        "no quorum: ctl answered after {} ms",
        asked.elapsed().as_millis()
    );
    assert_ne!(code, 0, "a write without quorum succeeded");
    assert!(err.contains("outcome unknown"), "{err}");
    for n in &nodes {
        assert_eq!(
            n.request("GET", "/page").await.0,
            200,
            "{} stopped serving",
            n.name
        );
        assert_eq!(n.state_of("b").await, "drain");
    }
    for i in (0..3).filter(|i| *i != alive) {
        etcd.restart(i);
    }
    etcd.wait_writable(Duration::from_secs(15)).await;
    all_within(&nodes, Duration::from_secs(15), "reconnected", connected).await;
    let held = etcd
        .get_when_ready(
            "/gatehouse/test/state/servers/web/b",
            Duration::from_secs(15),
        )
        .await;
    let held: Value = serde_json::from_slice(held.kvs()[0].value()).unwrap();
    // The record says who asked and when.
    assert!(held["by"].as_str().is_some_and(|b| !b.is_empty()), "{held}");
    assert!(
        held["at"].as_u64().is_some_and(|t| t > 1_700_000_000),
        "{held}"
    );
    let held = held["state"].as_str().unwrap().to_string();
    all_within(
        &nodes,
        Duration::from_secs(10),
        "after quorum returned",
        async |n| n.state_of("b").await == held,
    )
    .await;
    let (status, answer) = nodes[2]
        .api("POST", "/api/pools/web/servers/b/drain", None)
        .await;
    assert_eq!(status, 200, "a write after recovery: {answer}");
    all_within(
        &nodes,
        Duration::from_secs(2),
        "a write after recovery",
        async |n| n.state_of("b").await == "drain",
    )
    .await;

    // etcd entirely down and a node restarted: it comes up from its state file, b drained.
    for i in 0..3 {
        etcd.kill(i);
    }
    nodes[0].kill();
    nodes[0].start().await;
    assert_eq!(nodes[0].state_of("b").await, "drain");
    let before = b.hits();
    for _ in 0..10 {
        assert_eq!(nodes[0].request("GET", "/page").await.0, 200);
    }
    assert_eq!(
        b.hits(),
        before,
        "the restarted node sent requests to a drained server"
    );
    assert_eq!(nodes[0].cluster().await["connected"], json!(false));
    for i in 0..3 {
        etcd.restart(i);
    }
    all_within(&nodes, Duration::from_secs(15), "reconnected", connected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_under_load_on_every_node_fails_no_request() {
    let Some(etcd) = Etcd::start(3).await else {
        return;
    };
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    b.set_mode(Mode::Delay(Duration::from_millis(50)));
    let nodes = fleet(&vec![etcd.endpoints(); 3], &[&a, &b]).await;
    let loads: Vec<Load> = nodes.iter().map(|n| Load::start(n.listen, 3)).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, _, err) = ctl(nodes[1].admin, &["drain", "web", "b", "--wait", "10s"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("nothing in flight on any node"), "{err}");
    let drained_at = b.hits();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.hits(), drained_at, "b got requests after the drain");
    assert_eq!(ctl(nodes[2].admin, &["ready", "web", "b", "--wait"]).0, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut total = (0, 0);
    for l in loads {
        let (ok, failed) = l.finish().await;
        total = (total.0 + ok, total.1 + failed);
    }
    assert_eq!(
        total.1,
        0,
        "{} of {} requests failed",
        total.1,
        total.0 + total.1
    );
    assert!(total.0 > 100, "too little load: {}", total.0);
    assert!(b.hits() > drained_at, "b took no traffic after ready");
}

#[test]
fn the_shipped_cluster_examples_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/cluster");
    // gatehouse: the [cluster] example validates (its token file exists only on a real node).
    let text = std::fs::read_to_string(dir.join("gatehouse-cluster.toml")).unwrap();
    let text = text.replace(
        "token_file = \"/etc/gatehouse/admin-token\"",
        &format!("token = \"{TOKEN}\""),
    );
    let config = gatehouse::Config::from_toml(&text, "example").unwrap_or_else(|e| panic!("{e}"));
    let cluster = config.cluster.expect("a [cluster] section");
    assert_eq!(
        (cluster.name.as_str(), cluster.etcd_endpoints.len()),
        ("front", 3)
    );
    // keepalived: its own configuration test.
    if let Some(keepalived) = tool("keepalived", &["/usr/sbin/keepalived"], "keepalived") {
        let out = std::process::Command::new(keepalived)
            .arg("-t")
            .arg("-f")
            .arg(dir.join("keepalived.conf"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // etcd: every ETCD_* setting of the example is a flag etcd knows.
    if let Some(etcd) = tool("etcd", &["/usr/bin/etcd"], "etcd-server") {
        let help = std::process::Command::new(etcd)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout).to_string()
            + &String::from_utf8_lossy(&help.stderr);
        let env = std::fs::read_to_string(dir.join("etcd.env")).unwrap();
        let mut seen = 0;
        for line in env.lines().filter(|l| l.starts_with("ETCD_")) {
            let var = line.split('=').next().unwrap();
            let flag = format!(
                "--{}",
                var["ETCD_".len()..].to_lowercase().replace('_', "-")
            );
            assert!(help.contains(&flag), "etcd has no {flag} (from {var})");
            seen += 1;
        }
        assert!(seen >= 10, "only {seen} settings in etcd.env");
    }
}

/// Starts `node`, waits until it watches etcd, and drains `a` through it: the round trip.
async fn round_trip(mut node: Node) {
    node.start().await;
    let nodes = [node];
    all_within(&nodes, Duration::from_secs(10), "connected", connected).await;
    let (status, answer) = nodes[0]
        .api("POST", "/api/pools/web/servers/a/drain", None)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["cluster"]["applied_here"], json!(true));
    assert_eq!(nodes[0].state_of("a").await, "drain");
}

/// Starts `node`, which etcd refuses: it stays disconnected, serves, and its last error comes
/// to name `reason` (within 20 s of retries: a refused client certificate reaches the client
/// as an alert, or as a connection closed after the handshake, depending on timing).
async fn refused(mut node: Node, reason: &str) {
    node.start().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let view = node.cluster().await;
        assert_eq!(view["connected"], json!(false), "{view}");
        let error = view["last_error"].as_str().unwrap_or_default().to_string();
        if error.contains(reason) {
            break;
        }
        seen.insert(error);
        assert!(
            Instant::now() < deadline,
            "no error about {reason:?} in 20 s; seen: {seen:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(node.request("GET", "/").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_over_tls_with_a_client_certificate() {
    let dir = state_dir();
    let ca = crate::common::certs::Ca::new();
    let server = ca.issue(&dir, "etcd", &["127.0.0.1", "localhost"]);
    let client_cert = ca.issue(&dir, "gatehouse", &["gatehouse"]);
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let Some(etcd) = Etcd::start_tls(ca_file.clone(), server.cert, server.key).await else {
        return;
    };
    let origin = Origin::start("a").await;
    let tls = format!(
        "ca_file = {:?}\ncert_file = {:?}\nkey_file = {:?}\n",
        ca_file.display().to_string(),
        client_cert.cert.display().to_string(),
        client_cert.key.display().to_string()
    );
    round_trip(Node::with("tls", &etcd.endpoints(), &[&origin], &tls)).await;

    // Without a client certificate etcd refuses the node: it says so and stays disconnected.
    let ca_only = format!("ca_file = {:?}\n", ca_file.display().to_string());
    refused(
        Node::with("bare", &etcd.endpoints(), &[&origin], &ca_only),
        "BadCertificate",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_added_by_reload_takes_the_state_the_cluster_holds() {
    let Some(etcd) = Etcd::start(1).await else {
        return;
    };
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let mut n0 = Node::new("n0", &etcd.endpoints(), &[&a, &b]);
    let mut n1 = Node::new("n1", &etcd.endpoints(), &[&a]);
    n0.start().await;
    n1.start().await;
    let nodes = [n0, n1];
    all_within(&nodes, Duration::from_secs(10), "connected", connected).await;
    let (status, _) = nodes[0]
        .api("POST", "/api/pools/web/servers/b/drain", None)
        .await;
    assert_eq!(status, 200);
    // n1 has no server b yet; its config gains b and is reloaded: b comes in drained.
    let text = std::fs::read_to_string(&nodes[1].config).unwrap().replace(
        &unchecked_pool("web", &[&a]),
        &unchecked_pool("web", &[&a, &b]),
    );
    std::fs::write(&nodes[1].config, text).unwrap();
    let (status, answer) = nodes[1].api("POST", "/api/reload", None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(nodes[1].state_of("b").await, "drain");
    let before = b.hits();
    for _ in 0..5 {
        assert_eq!(nodes[1].request("GET", "/page").await.0, 200);
    }
    assert_eq!(b.hits(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_with_authentication() {
    let Some(etcd) = Etcd::start(1).await else {
        return;
    };
    // Authentication on: root, and a user allowed the gatehouse prefix only.
    let mut admin = etcd.client().await;
    admin.user_add("root", "root-pw", None).await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.user_add("gh", "gh-pw", None).await.unwrap();
    admin.role_add("gatehouse").await.unwrap();
    let perm = etcd_client::Permission::read_write("/gatehouse/").with_prefix();
    admin
        .role_grant_permission("gatehouse", perm)
        .await
        .unwrap();
    admin.user_grant_role("gh", "gatehouse").await.unwrap();
    admin.auth_enable().await.unwrap();

    let dir = state_dir();
    let (good, bad) = (dir.join("good"), dir.join("bad"));
    std::fs::write(&good, "gh-pw\n").unwrap();
    std::fs::write(&bad, "wrong\n").unwrap();
    let origin = Origin::start("a").await;
    let creds = |f: &std::path::Path| {
        format!(
            "user = \"gh\"\npassword_file = {:?}\n",
            f.display().to_string()
        )
    };
    round_trip(Node::with(
        "auth",
        &etcd.endpoints(),
        &[&origin],
        &creds(&good),
    ))
    .await;
    // A wrong password: refused, said, and the node still serves.
    refused(
        Node::with("wrong", &etcd.endpoints(), &[&origin], &creds(&bad)),
        "authentication failed",
    )
    .await;
}
