//! A real etcd cluster for tests: Debian's `etcd-server`, members on 127.0.0.1 ephemeral ports,
//! each a child process that a test can kill and start again on its data directory.

use super::{free_port, state_dir, tool};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Member {
    name: String,
    client: SocketAddr,
    peer: SocketAddr,
    child: Option<Child>,
}

pub struct Etcd {
    bin: PathBuf,
    dir: PathBuf,
    members: Vec<Member>,
    initial: String,
    /// Client TLS: (CA file, server certificate, key); clients must show a certificate.
    tls: Option<(PathBuf, PathBuf, PathBuf)>,
}

impl Etcd {
    /// Starts `n` members and waits until the cluster takes writes; None when skipped.
    pub async fn start(n: usize) -> Option<Etcd> {
        Etcd::start_with(n, None).await
    }

    /// One member serving its clients over TLS with client certificates required.
    pub async fn start_tls(ca: PathBuf, cert: PathBuf, key: PathBuf) -> Option<Etcd> {
        Etcd::start_with(1, Some((ca, cert, key))).await
    }

    /// Starts the members; a member that exits at once (a port taken meanwhile by another
    /// test) means a fresh set of ports, up to three times.
    async fn start_with(n: usize, tls: Option<(PathBuf, PathBuf, PathBuf)>) -> Option<Etcd> {
        let bin = tool("etcd", &["/usr/bin/etcd"], "etcd-server")?;
        let mut attempt = 1;
        loop {
            let mut etcd = Etcd::new(bin.clone(), n, tls.clone());
            for i in 0..n {
                etcd.restart(i);
            }
            match etcd.wait_ready(Duration::from_secs(20)).await {
                Ok(()) => return Some(etcd),
                Err(why) if attempt < 3 => eprintln!("etcd did not start, new ports: {why}"),
                Err(why) => panic!("etcd did not start: {why}"),
            }
            attempt += 1;
        }
    }

    fn new(bin: PathBuf, n: usize, tls: Option<(PathBuf, PathBuf, PathBuf)>) -> Etcd {
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{i}"),
                client: free_port(),
                peer: free_port(),
                child: None,
            })
            .collect();
        let initial = members
            .iter()
            .map(|m| format!("{}=http://{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        Etcd {
            bin,
            dir: state_dir(),
            members,
            initial,
            tls,
        }
    }

    /// Until the cluster takes a write (with TLS: until the member listens).
    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let exited = self.members.iter_mut().find_map(|m| {
                let status = m.child.as_mut()?.try_wait().ok()??;
                Some(format!("{} exited ({status})", m.name))
            });
            if let Some(exited) = exited {
                return Err(format!("{exited}: {}", self.log_tail()));
            }
            let ready = match self.tls {
                Some(_) => tokio::net::TcpStream::connect(self.members[0].client)
                    .await
                    .is_ok(),
                None => self
                    .client()
                    .await
                    .put("/gatehouse-test/ping", "1", None)
                    .await
                    .is_ok(),
            };
            if ready {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(format!("not ready within {timeout:?}: {}", self.log_tail()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    pub fn endpoint(&self, i: usize) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.members[i].client)
    }

    /// Kills member `i` (SIGKILL: no goodbye to its peers).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` (again) on its data directory.
    pub fn restart(&mut self, i: usize) {
        let m = &self.members[i];
        let data = self.dir.join(&m.name);
        let log = std::fs::File::create(self.dir.join(format!("{}.log", m.name))).unwrap();
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut cmd = Command::new(&self.bin);
        if let Some((ca, cert, key)) = &self.tls {
            cmd.arg(format!("--trusted-ca-file={}", ca.display()))
                .arg(format!("--cert-file={}", cert.display()))
                .arg(format!("--key-file={}", key.display()))
                .arg("--client-cert-auth");
        }
        let child = cmd
            .arg(format!("--name={}", m.name))
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls={scheme}://{}", m.client))
            .arg(format!("--advertise-client-urls={scheme}://{}", m.client))
            .arg(format!("--listen-peer-urls=http://{}", m.peer))
            .arg(format!("--initial-advertise-peer-urls=http://{}", m.peer))
            .arg(format!("--initial-cluster={}", self.initial))
            .arg("--initial-cluster-state=new")
            .arg("--initial-cluster-token=gatehouse-test")
            // Elections in about half a second rather than one to two.
            .args(["--heartbeat-interval=50", "--election-timeout=500"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd did not start");
        self.members[i].child = Some(child);
    }

    /// A client on every member.
    pub async fn client(&self) -> etcd_client::Client {
        let options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(1))
            .with_timeout(Duration::from_secs(3));
        etcd_client::Client::connect(self.endpoints(), Some(options))
            .await
            .unwrap()
    }

    /// Waits until a write succeeds (a leader is elected and a quorum is up).
    pub async fn wait_writable(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut client = self.client().await;
        loop {
            if client.put("/gatehouse-test/ping", "1", None).await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd not writable within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `key` as etcd holds it, asked until a member answers within `timeout`: right after
    /// quorum returns, a member that has just restarted may still be catching up, and a read
    /// it receives times out.
    pub async fn get_when_ready(&self, key: &str, timeout: Duration) -> etcd_client::GetResponse {
        let deadline = Instant::now() + timeout;
        loop {
            let mut client = self.client().await;
            match client.get(key, None).await {
                Ok(r) => return r,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "etcd did not answer a read within {timeout:?}: {e}{}",
                    self.log_tail()
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The end of every member's log, for a failure message.
    fn log_tail(&self) -> String {
        let mut out = String::new();
        for m in &self.members {
            let log = std::fs::read_to_string(self.dir.join(format!("{}.log", m.name)))
                .unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(8)..].join("\n");
            out.push_str(&format!("\n--- {} ---\n{tail}", m.name));
        }
        out
    }

    /// The index of the member that leads now.
    pub async fn leader(&self) -> usize {
        for i in 0..self.members.len() {
            let Ok(mut c) = etcd_client::Client::connect([self.endpoint(i)], None).await else {
                continue;
            };
            if let Ok(s) = c.status().await {
                if s.leader() == s.header().map_or(0, |h| h.member_id()) {
                    return i;
                }
            }
        }
        panic!("no etcd member leads");
    }

    /// Compacts the history up to the current revision; answers it.
    pub async fn compact(&self) -> i64 {
        let mut c = self.client().await;
        let rev = c
            .get("/gatehouse-test/ping", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        c.compact(rev, None).await.unwrap();
        rev
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
