//! Active health checks: ejection within fall × interval, restore after rise, and no traffic to a
//! new server until its first check passes.

use crate::balancing::wait_until;
use crate::common::*;
use std::time::{Duration, Instant};

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

    a.set_mode(Mode::Status(503));
    let failed_at = Instant::now();
    wait_until(|| !gh.server_healthy("web", "a")).await;
    let took = failed_at.elapsed();
    // fall = 3 checks at 100 ms: ejected after the third failure, at most ~300 ms plus one
    // interval of phase; allow scheduling slack but not a fourth and fifth check.
    assert!(took < Duration::from_millis(650), "ejected after {took:?}");
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
