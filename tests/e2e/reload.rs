//! Config reload (admin API, SIGHUP) all or nothing, under load; what survives a reload; and
//! the binary upgrade hand-off under load.

use crate::common::process::{
    exits, pool_of, signal, spawn_gatehouse, wait_listening, ConfigFile, Load,
};
use crate::common::*;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

async fn reload_via_api(admin: std::net::SocketAddr) -> (u16, serde_json::Value) {
    let r = client()
        .post(format!("http://{admin}/api/reload"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_reloads_under_load_fail_no_request() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let cf = ConfigFile::new();
    cf.write(&pool_of(&[&a], ""));
    let gh = boot_config(gatehouse::Config::load(&cf.path).unwrap()).await;
    let load = Load::start(cf.listen, 4);
    for i in 0..60 {
        let target = if i % 2 == 0 { &b } else { &a };
        cf.write(&pool_of(&[target], ""));
        if i % 2 == 0 {
            assert_eq!(reload_via_api(cf.admin()).await.0, 200);
        } else {
            gh.shared.reload_from(&cf.path).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (ok, failed) = load.finish().await;
    assert_eq!(failed, 0, "{failed} of {} failed", ok + failed);
    assert!(
        a.hits() > 0 && b.hits() > 0,
        "traffic moved: a {} b {}",
        a.hits(),
        b.hits()
    );
    assert_eq!(a.hits() + b.hits(), ok);
    assert_eq!(gh.shared.reloads_ok.load(SeqCst), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_reload_changes_nothing_and_answers_with_the_errors() {
    let a = Origin::start("a").await;
    let cf = ConfigFile::new();
    let good = pool_of(&[&a], "");
    cf.write(&good);
    let gh = boot_config(gatehouse::Config::load(&cf.path).unwrap()).await;
    let checksum = gh.shared.current().config.source.checksum.clone();
    let admin = cf.admin();
    let load = Load::start(cf.listen, 2);
    let bad_cert = format!(
        "{good}[[listeners]]\naddress = \"{}\"\n[listeners.tls]\n[[listeners.tls.certificates]]\ncert = \"/nonexistent.pem\"\nkey = \"/nonexistent.key\"\n",
        free_port()
    );
    for (bad, expect) in [
        ("[[routes]\npool = ", "TOML"),
        (
            &*format!("{good}[pools.web]\nretires = 2\n"),
            "pools.web.retires: unknown key",
        ),
        (&*bad_cert, "/nonexistent.pem"),
        (
            &*good.replace("pool = \"web\"", "pool = \"nope\""),
            "unknown pool \"nope\"",
        ),
    ] {
        cf.write(bad);
        let (status, body) = reload_via_api(admin).await;
        assert_eq!(status, 422, "{body}");
        let errors: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e.as_str())
            .collect();
        let errors = errors.join("\n");
        assert!(
            expect == "TOML" || errors.contains(expect),
            "{expect}: {errors}"
        );
        assert!(!body["errors"].as_array().unwrap().is_empty());
        assert_eq!(
            gh.shared.current().config.source.checksum,
            checksum,
            "the running config stays"
        );
    }
    let (ok, failed) = load.finish().await;
    assert_eq!(failed, 0);
    assert!(ok > 0);
    assert_eq!(gh.shared.reloads_failed.load(SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_and_drain_state_survive_a_reload_and_a_removed_server_is_forgotten() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    a.set_headers(&[("cache-control", "max-age=60")]);
    b.set_headers(&[("cache-control", "max-age=60")]);
    let cf = ConfigFile::new();
    cf.write(&pool_of(&[&a, &b], ""));
    let gh = boot_config(gatehouse::Config::load(&cf.path).unwrap()).await;
    let c = client();
    let url = format!("http://{}/cached", cf.listen);
    c.get(&url).send().await.unwrap();
    assert_eq!(
        admin_call(&gh, "POST", "/api/pools/web/servers/b/drain", Some(TOKEN))
            .await
            .0,
        200
    );
    cf.write(&pool_of(&[&a, &b], "[pools.web]\nretries = 2\n"));
    gh.shared.reload_from(&cf.path).unwrap();
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(
        r.headers()["x-cache"],
        "HIT",
        "the cache survived the reload"
    );
    let (_, s) = admin_call(&gh, "GET", "/api/pools/web/servers/b", None).await;
    assert_eq!(s["state"], "drain");
    // b leaves the config: its state goes; when it comes back it starts afresh.
    cf.write(&pool_of(&[&a], ""));
    gh.shared.reload_from(&cf.path).unwrap();
    cf.write(&pool_of(&[&a, &b], ""));
    gh.shared.reload_from(&cf.path).unwrap();
    let (_, s) = admin_call(&gh, "GET", "/api/pools/web/servers/b", None).await;
    assert_eq!(s["state"], "ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_is_survived_right_after_start() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let cf = ConfigFile::new();
    cf.write(&pool_of(&[&a], ""));
    let log = cf.path.with_extension("log");
    let child = spawn_gatehouse(&cf.path, false, &log);
    // SIGHUP as soon as the process catches it (its first act), long before it is up: it
    // must not die. /proc/PID/status lists caught signals in SigCgt (SIGHUP is bit 0).
    let status = format!("/proc/{}/status", child.id());
    for _ in 0..400 {
        let caught = std::fs::read_to_string(&status).ok().and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("SigCgt:"))?;
            u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok()
        });
        if caught.is_some_and(|mask| mask & 1 == 1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let early = tokio::net::TcpStream::connect(cf.listen).await.is_err();
    for _ in 0..3 {
        signal(&child, "-HUP");
    }
    assert!(early, "the SIGHUPs came before gatehouse was listening");
    let mut child = Reap(child);
    wait_listening(cf.listen).await;
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "survived: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let c = client();
    let url = format!("http://{}/x", cf.listen);
    assert_eq!(c.get(&url).send().await.unwrap().text().await.unwrap(), "a");
    cf.write(&pool_of(&[&b], ""));
    signal(&child.0, "-HUP");
    let mut moved = false;
    for i in 0..100 {
        if c.get(format!("{url}{i}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            == "b"
        {
            moved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(moved, "SIGHUP reloaded the config");
    assert!(child.0.try_wait().unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_upgrade_under_load_fails_no_request_and_keeps_the_drain() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let mut cf = ConfigFile::new();
    // In-flight and kept-alive connections of the old process get a grace period: requests on
    // them are answered (with Connection: close) while new connections go to the new process.
    cf.section = cf
        .section
        .replace("grace_period = \"0s\"", "grace_period = \"2s\"");
    cf.write(&pool_of(&[&a, &b], ""));
    let old = Reap(spawn_gatehouse(
        &cf.path,
        false,
        &cf.path.with_extension("old.log"),
    ));
    wait_listening(cf.listen).await;
    let admin = cf.admin();
    wait_listening(admin).await;
    let r = client()
        .post(format!("http://{admin}/api/pools/web/servers/b/drain"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let load = Load::start(cf.listen, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let new = Reap(spawn_gatehouse(
        &cf.path,
        true,
        &cf.path.with_extension("new.log"),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    eprintln!("SIGQUIT at {:?}", std::time::SystemTime::now());
    signal(&old.0, "-QUIT");
    // The old process hands its sockets over, finishes in-flight requests and exits.
    let mut old = old;
    assert!(
        exits(&mut old, Duration::from_secs(10)).await,
        "the old process exited"
    );
    eprintln!("old exited by {:?}", std::time::SystemTime::now());
    // Only the new process is left: whatever is answered from now on (but the last few in
    // flight), it answered.
    let answered_by_old = load.ok();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while load.ok() < answered_by_old + 100 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (ok, failed) = load.finish().await;
    let mut new = new;
    let running = new.0.try_wait().unwrap().is_none();
    let logs = format!(
        "old: {}\nnew: {}",
        std::fs::read_to_string(cf.path.with_extension("old.log")).unwrap_or_default(),
        std::fs::read_to_string(cf.path.with_extension("new.log")).unwrap_or_default()
    );
    assert!(
        ok >= answered_by_old + 100,
        "the new process answered {} requests in 10 s after the old one exited\n{logs}",
        ok - answered_by_old
    );
    assert!(running, "the new process is still running\n{logs}");
    assert_eq!(failed, 0, "{failed} of {} failed\n{logs}", ok + failed);
    assert!(ok > 100, "{ok}");
    let (status, s) = {
        let r = client()
            .get(format!("http://{admin}/api/pools/web/servers/b"))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<serde_json::Value>().await.unwrap())
    };
    assert_eq!(status, 200);
    assert_eq!(
        s["state"], "drain",
        "the new process restored the drain from the state file"
    );
    assert_eq!(
        b.hits(),
        0,
        "the drained server got nothing, before or after"
    );
    wait_until(|| a.in_flight() == 0).await;
    drop(new);
}

/// Every answered request has its record in the file, across a reload, a binary upgrade (two
/// processes appending to one file) and a graceful stop: batched records are written before a
/// process exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_record_is_lost_at_reload_upgrade_and_graceful_stop() {
    let a = Origin::start("a").await;
    let mut cf = ConfigFile::new();
    cf.section = cf
        .section
        .replace("grace_period = \"0s\"", "grace_period = \"1s\"");
    let log = cf.path.with_extension("access.log");
    let logging = format!(
        "[[access_log.targets]]\ntransport = \"file\"\npath = {:?}\nformat = \"json\"\n",
        log.display().to_string()
    );
    cf.write(&format!("{logging}{}", pool_of(&[&a], "")));
    let mut old = Reap(spawn_gatehouse(
        &cf.path,
        false,
        &cf.path.with_extension("old.log"),
    ));
    wait_listening(cf.listen).await;
    let load = Load::start(cf.listen, 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&old.0, "-HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut new = Reap(spawn_gatehouse(
        &cf.path,
        true,
        &cf.path.with_extension("new.log"),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(&old.0, "-QUIT");
    assert!(
        exits(&mut old, Duration::from_secs(10)).await,
        "the old process exited"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ok, failed) = load.finish().await;
    signal(&new.0, "-TERM");
    assert!(
        exits(&mut new, Duration::from_secs(10)).await,
        "the new process exited"
    );
    assert_eq!(failed, 0);
    assert!(ok > 100, "{ok}");
    let text = std::fs::read_to_string(&log).unwrap();
    let records = text
        .lines()
        .filter(|l| l.contains("\"path\":\"/load/"))
        .count();
    assert_eq!(records, ok, "one record for each answered request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_changes_the_cache_frees_the_old_one_once_unused() {
    let a = Origin::start("a").await;
    a.set_headers(&[("cache-control", "max-age=60")]);
    let cf = ConfigFile::new();
    cf.write(&pool_of(&[&a], ""));
    let gh = boot_config(gatehouse::Config::load(&cf.path).unwrap()).await;
    let c = client();
    let url = |p: &str| format!("http://{}{p}", cf.listen);
    c.get(url("/kept")).send().await.unwrap();
    let r = c.get(url("/kept")).send().await.unwrap();
    assert_eq!(r.headers()["x-cache"], "HIT");
    let old = Arc::downgrade(&gh.shared.current().cache.storage);

    // A miss still being fetched into the old storage when the reload lands.
    a.set_mode(Mode::Delay(Duration::from_millis(800)));
    let slow = tokio::spawn({
        let (c, u) = (c.clone(), url("/slow"));
        async move { c.get(u).send().await.unwrap().status() }
    });
    wait_until(|| a.in_flight() == 1).await;
    cf.write(&pool_of(&[&a], "[cache]\nmax_size = \"32MiB\"\n"));
    gh.shared.reload_from(&cf.path).unwrap();
    assert!(
        old.upgrade().is_some(),
        "still used by the request in flight"
    );
    assert_eq!(slow.await.unwrap(), 200);
    a.set_mode(Mode::Ok);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while old.upgrade().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the old cache is still alive 5 s after its last request"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The new cache starts empty and works.
    let r = c.get(url("/kept")).send().await.unwrap();
    assert_eq!(r.headers()["x-cache"], "MISS");
    let r = c.get(url("/kept")).send().await.unwrap();
    assert_eq!(r.headers()["x-cache"], "HIT");
    assert_eq!(gh.shared.current().cache.config.max_size, 32 << 20);
}
