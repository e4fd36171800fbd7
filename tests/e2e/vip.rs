//! A hot spare with keepalived: two gatehouse nodes in their own network namespaces, joined by
//! a bridge in a third (the client's), share a virtual IP by VRRP, each keepalived tracking its
//! node's `/health`. The active node's proxy dies: the client reaches the VIP on the spare
//! within 5 s, and requests in flight to the spare meanwhile all succeed. Needs root (network
//! namespaces); otherwise it fails, unless `GATEHOUSE_TEST_SKIP` names keepalived.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VIP: &str = "10.213.0.100";

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The three namespaces; removed (with everything in them) when dropped.
struct Net {
    names: [String; 3],
    children: Vec<Child>,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Net {
    /// `ghc…` holds the bridge and the client (10.213.0.1); `gh1…`, `gh2…` a node each.
    fn new() -> Net {
        // One at a time: the tests share the addresses and interface names they create.
        static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let tag = std::process::id() % 100_000;
        let names = [
            format!("ghc{tag}"),
            format!("gh1{tag}"),
            format!("gh2{tag}"),
        ];
        for n in &names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
            ip(&["netns", "add", n]);
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        let c = names[0].as_str();
        ip(&["-n", c, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", c, "addr", "add", "10.213.0.1/24", "dev", "br0"]);
        ip(&["-n", c, "link", "set", "br0", "up"]);
        for (i, node) in names[1..].iter().enumerate() {
            let port = format!("p{}", i + 1);
            ip(&[
                "link", "add", &port, "netns", c, "type", "veth", "peer", "name", "eth0", "netns",
                node,
            ]);
            ip(&["-n", c, "link", "set", &port, "master", "br0", "up"]);
            let addr = format!("10.213.0.1{}/24", i + 1);
            ip(&["-n", node, "addr", "add", &addr, "dev", "eth0"]);
            ip(&["-n", node, "link", "set", "eth0", "up"]);
        }
        Net {
            names,
            children: Vec::new(),
            _serial: serial,
        }
    }

    /// Starts `cmd` inside namespace `i`, output to `log`.
    fn spawn(&mut self, i: usize, cmd: &[&str], log: &Path) -> usize {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.names[i]])
            .args(cmd)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        self.children.push(child);
        self.children.len() - 1
    }

    fn kill(&mut self, child: usize) {
        let _ = self.children[child].kill();
        let _ = self.children[child].wait();
    }

    /// curl from the client namespace with `args`: what it wrote.
    fn run_curl(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.names[0],
                "curl",
                "-s",
                "--max-time",
                "5",
            ])
            .args(args)
            .output()
            .expect("ip netns exec curl");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// One request from the client namespace: (status, X-Served-By), or None.
    fn get(&self, url: &str) -> Option<(u16, String)> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.names[0],
                "curl",
                "-s",
                "-o",
                "/dev/null",
            ])
            .args([
                "--max-time",
                "5",
                "-w",
                "%{http_code} %header{x-served-by}",
                url,
            ])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (code, by) = text.split_once(' ')?;
        Some((
            code.parse().ok().filter(|c| *c != 0)?,
            by.trim().to_string(),
        ))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

fn demo_origin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/demo-origin");
    assert!(
        path.exists(),
        "{} not built (cargo test builds examples)",
        path.display()
    );
    path
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

/// Node `i` (1 or 2): gatehouse on 0.0.0.0:8080 in front of demo origin server `web{i}`, its cluster's
/// etcd unreachable (the health endpoint must not care), keepalived tracking `/health`.
fn node_files(dir: &Path, i: usize) -> (PathBuf, PathBuf) {
    node_files_with(dir, i, "127.0.0.1", "")
}

/// `node_files` with the admin API on `admin_ip` and `extra` TOML at the end.
fn node_files_with(dir: &Path, i: usize, admin_ip: &str, extra: &str) -> (PathBuf, PathBuf) {
    let gh = dir.join(format!("gatehouse{i}.toml"));
    std::fs::write(
        &gh,
        format!(
            "[server]\nthreads = 1\nstate_dir = {:?}\ngrace_period = \"0s\"\nshutdown_timeout = \"1s\"\n\
             [admin]\naddress = \"{admin_ip}:9100\"\ntoken = \"{TOKEN}\"\n\
             [[listeners]]\naddress = \"0.0.0.0:8080\"\n\
             [pools.web]\nservers = [{{ name = \"origin\", address = \"127.0.0.1:800{i}\" }}]\n\
             [[routes]]\npool = \"web\"\n\
             [cluster]\nname = \"vip\"\nnode = \"n{i}\"\netcd_endpoints = [\"http://127.0.0.1:1\"]\n{extra}",
            dir.join(format!("state{i}")).display().to_string()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join(format!("state{i}"))).unwrap();
    let ka = dir.join(format!("keepalived{i}.conf"));
    std::fs::write(
        &ka,
        format!(
            "global_defs {{\n  router_id gh{i}\n  script_user root\n  enable_script_security\n}}\n\
             vrrp_script gatehouse {{\n  script \"/usr/bin/curl -fs -m 1 -o /dev/null http://127.0.0.1:9100/health\"\n  \
             interval 1\n  fall 1\n  rise 1\n}}\n\
             vrrp_instance front {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
             priority {}\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n  \
             track_script {{\n    gatehouse\n  }}\n}}\n",
            if i == 1 { 150 } else { 100 }
        ),
    )
    .unwrap();
    (gh, ka)
}

/// keepalived, if this machine can run the VIP tests (root, the tools); else the test fails
/// (or is skipped, when `GATEHOUSE_TEST_SKIP` names keepalived).
fn vip_tools() -> Option<PathBuf> {
    // Network namespaces need root: not root fails like a missing tool, unless skipped.
    let root = is_root();
    let why = "this test needs root (network namespaces for keepalived): run it as root";
    if !required("keepalived", root, "needs root for network namespaces", why) {
        return None;
    }
    let keepalived = tool("keepalived", &["/usr/sbin/keepalived"], "keepalived")?;
    tool("curl", &["/usr/bin/curl"], "curl");
    Some(keepalived)
}

/// Both nodes (`files`: each one's gatehouse and keepalived configs) with their demo origins
/// and keepalived; the gatehouse processes' handles in `net`.
fn start_nodes(
    net: &mut Net,
    dir: &Path,
    keepalived: &Path,
    files: &[(PathBuf, PathBuf); 2],
) -> Vec<usize> {
    let gatehouse = env!("CARGO_BIN_EXE_gatehouse");
    let origin = demo_origin();
    let mut proxies = Vec::new();
    for (i, (gh, ka)) in (1..=2).zip(files) {
        // Both servers in each namespace; node i proxies to port 800i, which answers
        // `X-Served-By: web{i}`: the client tells the nodes apart.
        let o = origin.to_str().unwrap();
        net.spawn(i, &[o, "8001", "8002"], &dir.join(format!("origin{i}.log")));
        proxies.push(net.spawn(
            i,
            &[gatehouse, "run", "-c", gh.to_str().unwrap()],
            &dir.join(format!("gatehouse{i}.log")),
        ));
        let pid = |name: &str| dir.join(format!("{name}{i}.pid")).display().to_string();
        net.spawn(
            i,
            &[
                keepalived.to_str().unwrap(),
                "--dont-fork",
                "--log-console",
                "--vrrp",
                "-f",
                ka.to_str().unwrap(),
                "-p",
                &pid("keepalived"),
                "-r",
                &pid("vrrp"),
            ],
            &dir.join(format!("keepalived{i}.log")),
        );
    }
    proxies
}

/// Waits until the VIP answers from `node` ("web1", "web2"); how long it took.
fn wait_vip_on(net: &Net, node: &str, within: Duration) -> Duration {
    let vip = format!("http://{VIP}:8080/health");
    let started = Instant::now();
    while net.get(&vip).map(|(_, by)| by) != Some(node.into()) {
        assert!(
            started.elapsed() < within,
            "the VIP did not answer from {node} within {within:?}: {:?}",
            net.get(&vip)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

#[test]
fn the_spare_takes_the_address_within_five_seconds() {
    let Some(keepalived) = vip_tools() else {
        return;
    };
    let dir = state_dir();
    let mut net = Net::new();
    let files = [node_files(&dir, 1), node_files(&dir, 2)];
    let proxies = start_nodes(&mut net, &dir, &keepalived, &files);
    let spare = "http://10.213.0.12:8080/slow?ms=1500";
    // The preferred node answers on the VIP.
    wait_vip_on(&net, "web1", Duration::from_secs(20));
    // Slow requests in flight to the spare while the active proxy dies.
    let in_flight: Vec<_> = (0..4)
        .map(|_| {
            let ns = net.names[0].clone();
            std::thread::spawn(move || {
                let out = Command::new("ip")
                    .args(["netns", "exec", &ns, "curl", "-s", "-o", "/dev/null"])
                    .args(["--max-time", "10", "-w", "%{http_code}", spare])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout).to_string()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    net.kill(proxies[0]);
    let moved = wait_vip_on(&net, "web2", Duration::from_secs(5));
    for t in in_flight {
        assert_eq!(
            t.join().unwrap(),
            "200",
            "a request in flight to the spare failed"
        );
    }
    eprintln!(
        "the VIP answered from the spare {} ms after the active proxy died",
        moved.as_millis()
    );
}

/// A warmed spare (`[cache] warm`, issue 34): it copies the active node's hottest objects
/// from it, so when the address moves, the spare answers them from its cache, still as
/// the active node's server made them (`X-Served-By: web1`), its own server untouched.
#[test]
fn a_warmed_spare_answers_from_the_active_nodes_copies_after_failover() {
    let Some(keepalived) = vip_tools() else {
        return;
    };
    let dir = state_dir();
    let mut net = Net::new();
    let warm = "[cache]\npeers = [\"10.213.0.11:9100\"]\nwarm = true\nwarm_interval = \"200ms\"\n";
    let files = [
        node_files_with(&dir, 1, "0.0.0.0", ""),
        node_files_with(&dir, 2, "0.0.0.0", warm),
    ];
    let proxies = start_nodes(&mut net, &dir, &keepalived, &files);
    wait_vip_on(&net, "web1", Duration::from_secs(20));
    // Hot on the active node: each asked three times (a miss, then hits). The demo origin's
    // page is fresh for 10 s: the rest of the test fits in it.
    let pages: Vec<String> = (1..=5)
        .map(|k| format!("http://{VIP}:8080/?k={k}"))
        .collect();
    for page in &pages {
        for _ in 0..3 {
            assert_eq!(net.get(page).map(|(code, _)| code), Some(200));
        }
    }
    // The spare has copied them.
    let metrics = "http://10.213.0.12:9100/metrics";
    let copied = || {
        net.run_curl(&["-H", &format!("authorization: Bearer {TOKEN}"), metrics])
            .lines()
            .find(|l| l.starts_with("gatehouse_cache_events_total{event=\"warmed\"}"))
            .and_then(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let started = Instant::now();
    while copied() < 5.0 {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the spare copied {} of 5",
            copied()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    net.kill(proxies[0]);
    wait_vip_on(&net, "web2", Duration::from_secs(5));
    for page in &pages {
        let got = net.run_curl(&[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %header{x-served-by} %header{x-cache}",
            page,
        ]);
        assert_eq!(got.trim(), "200 web1 HIT", "{page}: the spare's answer");
    }
}
