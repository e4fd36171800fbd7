//! The status page in a real headless browser (Debian's chromium driven over WebDriver by
//! chromedriver): it loads, shows both servers, and its "drain" button drains a server.

use crate::common::*;
use base64::Engine;
use serde_json::{json, Value};
use std::time::Duration;

/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: std::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_servers_and_its_drain_button_drains() {
    let (chromium, chromedriver) = ("/usr/bin/chromium", "/usr/bin/chromedriver");
    if tool("browser", &[chromium], "chromium").is_none()
        || tool("browser", &[chromedriver], "chromium-driver").is_none()
    {
        return; // skipped by the user, and recorded
    }
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let gh = boot(&one_route(&[&a, &b])).await;
    let admin = gh.gh.shared.current().config.admin.address;

    let port = free_port().port();
    let child = std::process::Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver {
        child,
        base: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
    };
    for _ in 0..100 {
        if driver
            .http
            .get(format!("{}/status", driver.base))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let profile = state_dir().join("chromium-profile");
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": chromium, "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--window-size=1200,700",
            format!("--user-data-dir={}", profile.display())
        ]}
    }}});
    let session = driver
        .call(reqwest::Method::POST, "/session", Some(caps))
        .await;
    let id = session["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {session}"))
        .to_string();
    let s = |p: &str| format!("/session/{id}{p}");
    driver
        .call(
            reqwest::Method::POST,
            &s("/url"),
            Some(json!({"url": format!("http://{admin}/")})),
        )
        .await;

    // Both servers appear.
    let find = |sel: &str| json!({"using": "css selector", "value": sel});
    let mut button = Value::Null;
    for _ in 0..100 {
        button = driver
            .call(
                reqwest::Method::POST,
                &s("/element"),
                Some(find("#drain-web-b")),
            )
            .await;
        if button.get(ELEMENT).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if button.get(ELEMENT).is_none() {
        let source = driver.call(reqwest::Method::GET, &s("/source"), None).await;
        panic!("no drain button: {button}\npage: {source}");
    }
    let button_id = button[ELEMENT].as_str().unwrap().to_string();
    let source = driver.call(reqwest::Method::GET, &s("/source"), None).await;
    let html = source.as_str().unwrap();
    assert!(
        html.contains("server-web-a") && html.contains("server-web-b"),
        "both servers shown"
    );
    assert!(
        html.contains(r#"<div id="tls">no TLS listener</div>"#),
        "the TLS section, filled from /api/tls"
    );

    // Type the token, click "drain" on b.
    let token = driver
        .call(reqwest::Method::POST, &s("/element"), Some(find("#token")))
        .await;
    let token_id = token[ELEMENT].as_str().unwrap().to_string();
    driver
        .call(
            reqwest::Method::POST,
            &s(&format!("/element/{token_id}/value")),
            Some(json!({"text": TOKEN})),
        )
        .await;
    driver
        .call(
            reqwest::Method::POST,
            &s(&format!("/element/{button_id}/click")),
            Some(json!({})),
        )
        .await;
    let shared = gh.gh.shared.clone();
    wait_until(move || {
        shared.current().pools[0].servers[1].state.admin_state()
            == gatehouse::balance::AdminState::Drain
    })
    .await;
    let (_, server) = gh.admin("GET", "/api/pools/web/servers/b", None).await;
    assert_eq!(server["state"], "drain", "checked through the API");

    // Let the page refresh, then keep a screenshot under target/ (never in the source tree:
    // docs/status-page.png is a copy made on purpose).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let shot = driver
        .call(reqwest::Method::GET, &s("/screenshot"), None)
        .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot.as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target").join("test-output");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("status-page.png"), &png).unwrap();
    driver
        .call(reqwest::Method::DELETE, &format!("/session/{id}"), None)
        .await;
}
