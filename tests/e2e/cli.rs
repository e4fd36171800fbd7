//! The binary's command line: `check` on shipped configs and on broken ones.

use crate::common::check;
use std::process::Command;

fn gatehouse() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
}

#[test]
fn every_shipped_config_passes_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = check(&path);
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("ok:"));
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

#[test]
fn a_bad_config_prints_every_error_with_key_and_line() {
    let path = crate::common::state_dir().join("bad.toml");
    std::fs::write(
        &path,
        "[[listeners]]\naddress = \"0.0.0.0:8080\"\n\
         [timeouts]\nconnect = \"soon\"\n\
         [pools.web]\nbalance = \"fastest\"\n\
         [[pools.web.servers]]\nname = \"a\"\naddress = \"10.0.0.300:80\"\nwieght = 2\n\
         [[routes]]\npool = \"api\"\n",
    )
    .unwrap();
    let out = check(&path);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "line 4: timeouts.connect: not a duration: \"soon\"",
        "line 6: pools.web.balance: unknown balance \"fastest\"",
        "line 9: pools.web.servers[0].address: not a socket address: \"10.0.0.300:80\"",
        "line 10: pools.web.servers[0].wieght: unknown key",
        "line 12: routes[0].pool: unknown pool \"api\" (pools are: web)",
        "5 errors",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn a_type_error_names_its_key_and_line() {
    let path = crate::common::state_dir().join("type.toml");
    std::fs::write(&path, "[server]\nthreads = \"two\"\n").unwrap();
    let out = check(&path);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2: server.threads: invalid type"),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = check(std::path::Path::new("/nonexistent/gatehouse.toml"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read file"));
}

/// `run` on an address something else holds: exit 1 naming the key, for the proxy's listener
/// and for the admin API's (which pingora would otherwise find taken only deep in its start).
#[test]
fn a_taken_address_is_refused_at_start_naming_its_key() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap();
    for (key, listener, admin) in [
        ("listeners[0].address", taken, crate::common::free_port()),
        ("admin.address", crate::common::free_port(), taken),
    ] {
        let dir = crate::common::state_dir();
        let path = dir.join("gatehouse.toml");
        std::fs::write(
            &path,
            format!(
                "[server]\nstate_dir = {:?}\n[admin]\naddress = \"{admin}\"\n\
                 [[listeners]]\naddress = \"{listener}\"\n\
                 [[pools.web.servers]]\nname = \"a\"\naddress = \"127.0.0.1:9\"\n\
                 [[routes]]\npool = \"web\"\n",
                dir.display().to_string()
            ),
        )
        .unwrap();
        let log = dir.join("stderr");
        let mut child = gatehouse()
            .args(["run", "-c"])
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let err = std::fs::read_to_string(&log).unwrap();
        assert_eq!(status.and_then(|s| s.code()), Some(1), "{key}: {err}");
        assert!(
            err.contains(&format!("{key}: cannot listen on {taken}")),
            "{key}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn version_is_printed() {
    let out = gatehouse().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("gatehouse "));
}

/// A test whose tool is missing fails, naming the package (unless GATEHOUSE_TEST_SKIP names it).
#[test]
#[should_panic(expected = "apt-get install some-package")]
fn a_missing_tool_fails_the_test_naming_its_package() {
    crate::common::tool("nothing-here", &["/nonexistent/tool"], "some-package");
}

/// A test whose requirement is not met (e.g. root) fails the same way, naming its skip.
#[test]
#[should_panic(
    expected = "needs root, or skip it explicitly with GATEHOUSE_TEST_SKIP=nothing-here"
)]
fn a_missing_requirement_fails_the_test_naming_its_skip() {
    crate::common::required("nothing-here", false, "root", "needs root");
}

#[test]
fn completions_and_man_pages_come_from_the_command_definitions() {
    let run = |args: &[&str]| {
        let out = gatehouse().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = run(&["completions", "bash"]);
    assert!(bash.contains("complete -F _gatehouse"), "{bash}");
    for sub in ["ctl", "check", "drain", "--running"] {
        assert!(bash.contains(sub), "bash completion lacks {sub}");
    }
    assert!(run(&["completions", "zsh"]).starts_with("#compdef gatehouse"));
    assert!(run(&["completions", "fish"]).contains("complete -c gatehouse"));
    let man = run(&["man"]);
    assert!(man.contains(".TH gatehouse 1"), "{man}");
    assert!(man.contains("gatehouse\\-ctl(1)"), "{man}");
    let dir = crate::common::state_dir();
    run(&["man", "--dir", dir.to_str().unwrap()]);
    let drain = std::fs::read_to_string(dir.join("gatehouse-ctl-drain.1")).unwrap();
    assert!(drain.contains("\\-\\-wait"), "{drain}");
    let bad = gatehouse().args(["completions", "tcsh"]).output().unwrap();
    assert!(!bad.status.success());
}
