//! Active health checks: ejection within fall × interval, restore after rise, and no traffic to a
//! new server until its first check passes.

use crate::common::*;
use std::time::{Duration, Instant};

/// Health checks of `server` in pool "web" that failed so far.
fn check_failures(gh: &Proxy, server: &str) -> u64 {
    let rt = gh.gh.shared.current();
    let s = rt.pools[0].servers.iter().find(|s| s.config.name == server);
    s.unwrap().state.check_failures()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_server_is_ejected_within_fall_times_interval_and_restored_after_rise() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let body = format!(
        "{}{}[[routes]]\npool = \"web\"\n",
        fast_health("web", 3, 3),
        servers("web", &[&a, &b])
    );
    let gh = boot(&body).await;
    gh.wait_healthy(Duration::from_secs(5)).await;

    let base = check_failures(&gh, "a");
    let failures = || check_failures(&gh, "a") - base;
    a.set_mode(Mode::Status(503));
    let failed_at = Instant::now();
    // Healthy through the first two failed checks, down at the third: watched closely, the
    // server is never seen down with fewer than three failures counted, nor still healthy a
    // while after the third (with no fourth yet).
    let took = loop {
        let (healthy, failed) = (gh.server_healthy("web", "a"), failures());
        if !healthy {
            assert!(failed >= 3, "ejected after {failed} failed checks");
            break failed_at.elapsed();
        }
        if failed >= 3 {
            // The third failure is counted just before the server is marked down.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let again = (gh.server_healthy("web", "a"), failures());
            assert_ne!(
                again,
                (true, failed),
                "still healthy after {failed} failures"
            );
        }
        assert!(
            failed_at.elapsed() < Duration::from_secs(10),
            "not ejected in 10 s: {failed} failed checks"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    // fall × interval is 300 ms; 3 s is a loaded machine's slack, and still less than the
    // 4 s that three checks at the default interval (2 s) would need at the least.
    assert!(took < Duration::from_secs(3), "ejected after {took:?}");
    let checks_when_down = a.health_hits();

    let c = client();
    a.reset();
    for _ in 0..20 {
        assert_eq!(get(&c, &gh.url("/")).await, (200, "b".into()));
    }
    assert_eq!(a.hits(), 0, "no traffic to a down server");

    a.set_mode(Mode::Ok);
    let ok_from = a.health_hits();
    wait_until(|| gh.server_healthy("web", "a")).await;
    // rise = 3: at least three passing checks were needed.
    assert!(
        a.health_hits() - ok_from >= 3,
        "restored after {} checks",
        a.health_hits() - ok_from
    );
    assert!(checks_when_down >= 3);
    let mut got_a = 0;
    for _ in 0..10 {
        if get(&c, &gh.url("/")).await.1 == "a" {
            got_a += 1;
        }
    }
    assert_eq!(got_a, 5, "a is back in rotation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_gets_no_traffic_until_its_first_check_passes() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    a.set_mode(Mode::Status(500));
    let body = format!(
        "{}{}[[routes]]\npool = \"web\"\n",
        fast_health("web", 2, 2),
        servers("web", &[&a, &b])
    );
    let gh = boot(&body).await;
    wait_until(|| gh.server_healthy("web", "b")).await;
    let c = client();
    for _ in 0..10 {
        assert_eq!(get(&c, &gh.url("/")).await, (200, "b".into()));
    }
    assert!(a.health_hits() >= 1, "a was checked");
    assert_eq!(a.hits(), 0);
    // Its first passing check brings it in at once.
    a.set_mode(Mode::Ok);
    wait_until(|| gh.server_healthy("web", "a")).await;
}
