//! `gatehouse ctl` run as an operator runs it, against an admin API with the test token.

use super::TOKEN;
use std::net::SocketAddr;

/// Runs `gatehouse ctl ARGS` against the admin API at `admin` (blocking this worker thread
/// only: the test's runtime goes on): exit code (-1: killed by a signal), stdout, stderr.
pub fn ctl(admin: SocketAddr, args: &[&str]) -> (i32, String, String) {
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["ctl", "-c", "/nonexistent.toml", "--admin"])
            .arg(admin.to_string())
            .args(["--token", TOKEN])
            .args(args)
            .output()
            .unwrap()
    });
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
