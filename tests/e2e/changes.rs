//! `gatehouse check --running` and the reload answer: which changes a reload applies, which
//! wait for a binary upgrade or restart, which need an upgrade or a restart.

use crate::common::process::{pool_of, ConfigFile};
use crate::common::*;

fn check_running(cf: &ConfigFile) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["check", "--running", "--token", TOKEN, "-c"])
        .arg(&cf.path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_running_sorts_changes_and_the_reload_answer_lists_deferred_ones() {
    let a = Origin::start("a").await;
    let cf = ConfigFile::new();
    let base = pool_of(&[&a], "");
    cf.write(&base);
    let gh = boot_config(gatehouse::Config::load(&cf.path).unwrap()).await;

    let (code, out) = check_running(&cf);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("the same file is running: nothing to do"),
        "{out}"
    );

    // A reload applies the pool change at once; keepalive_requests waits for a new process.
    let deferred = format!("{base}[pools.web]\nretries = 3\n[limits]\nkeepalive_requests = 7\n");
    cf.write(&deferred);
    let (code, out) = check_running(&cf);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("a reload applies:\n    pools\n    limits"),
        "{out}"
    );
    assert!(out.contains("limits.keepalive_requests: 1000 → 7"), "{out}");
    assert!(out.contains("verdict: reload"), "{out}");
    let (status, body) = admin_call(&gh, "POST", "/api/reload", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["after_restart"][0], "limits.keepalive_requests: 1000 → 7",
        "{body}"
    );
    assert_eq!(
        body["changed"],
        serde_json::json!(["pools", "limits"]),
        "{body}"
    );
    assert_eq!(gh.shared.current().config.pools[0].retries, 3, "applied");

    // A new listener needs a binary upgrade: check says so (exit 2), reload refuses.
    cf.write(&format!(
        "{deferred}[[listeners]]\naddress = \"{}\"\n",
        free_port()
    ));
    let (code, out) = check_running(&cf);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("needs a binary upgrade (a reload refuses):\n    listeners"),
        "{out}"
    );
    assert!(out.contains("verdict: binary upgrade"), "{out}");
    let (status, body) = admin_call(&gh, "POST", "/api/reload", Some(TOKEN)).await;
    assert_eq!(
        (status, &body["needs_upgrade"]),
        (422, &serde_json::json!(true)),
        "{body}"
    );

    // Moving the upgrade socket takes a restart.
    let moved = std::fs::read_to_string(&cf.path).unwrap().replacen(
        "[server]\n",
        "[server]\nupgrade_socket = \"/tmp/gatehouse-moved.sock\"\n",
        1,
    );
    std::fs::write(&cf.path, moved).unwrap();
    let (code, out) = check_running(&cf);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("needs a restart"), "{out}");
    assert!(out.contains("verdict: restart"), "{out}");

    // An invalid file: exit 1 before asking anyone.
    cf.write("[[routes]\n");
    assert_eq!(check_running(&cf).0, 1);
}
