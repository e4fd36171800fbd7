//! What applying a new config to a running one takes, setting by setting: a reload applies most
//! at once; some are accepted by a reload but only take effect in a new process (pingora reads
//! them when it starts); a few need sockets opened or closed (a binary upgrade, which hands the
//! listening sockets to a new process); and one, the upgrade socket itself, a full restart.
//! `reload` refuses upgrade and restart changes and reports the deferred ones; `check
//! --running` prints all four lists.

use super::{Config, ConfigError, KeyPath};
use std::fmt::Debug;

/// The differences between a running config and a new one, by what applies them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Sections a reload applies at once.
    pub reload: Vec<String>,
    /// Settings a reload accepts but that keep their running value until the next binary
    /// upgrade or restart ("key: old → new").
    pub after_restart: Vec<String>,
    /// Changes a reload refuses: they take a binary upgrade (`run --upgrade`).
    pub upgrade: Vec<String>,
    /// Changes only a full restart applies: a binary upgrade cannot.
    pub restart: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.reload.is_empty()
            && self.after_restart.is_empty()
            && self.upgrade.is_empty()
            && self.restart.is_empty()
    }

    /// The upgrade and restart changes as errors, for a refused reload.
    pub fn refusals(&self) -> Vec<ConfigError> {
        let upgrade = self.upgrade.iter().map(|m| {
            format!("needs upgrade: {m}; run a binary upgrade (gatehouse run --upgrade) to apply")
        });
        let restart = self
            .restart
            .iter()
            .map(|m| format!("needs restart: {m}; stop and start gatehouse to apply"));
        upgrade
            .chain(restart)
            .map(|message| ConfigError {
                path: KeyPath::root(),
                line: None,
                message,
                warning: false,
            })
            .collect()
    }
}

/// Sections are compared by their `Debug` text: it shows every field, so a setting added later
/// is compared without a list to keep in step (certificates show their file and expiry).
fn differs<T: Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") != format!("{b:?}")
}

pub fn classify(old: &Config, new: &Config) -> Changes {
    let (upgrade, restart) = new_process(old, new);
    Changes {
        reload: reloaded(old, new),
        after_restart: deferred(old, new),
        upgrade,
        restart,
    }
}

/// What a reload refuses: (needs a binary upgrade, needs a restart).
fn new_process(old: &Config, new: &Config) -> (Vec<String>, Vec<String>) {
    let mut upgrade = Vec::new();
    let shape = |c: &Config| -> Vec<(String, std::net::SocketAddr, bool)> {
        c.listeners
            .iter()
            .map(|l| (l.name.clone(), l.address, l.tls.is_some()))
            .collect()
    };
    let proxy_protocol =
        |c: &Config| -> Vec<bool> { c.listeners.iter().map(|l| l.proxy_protocol).collect() };
    if shape(old) != shape(new) || proxy_protocol(old) != proxy_protocol(new) {
        upgrade.push("listeners: added, removed, or changed address, TLS or proxy_protocol".into());
    }
    if old.access_log.targets != new.access_log.targets {
        upgrade.push("access_log.targets changed".into());
    }
    if (old.admin.enabled, old.admin.address) != (new.admin.enabled, new.admin.address) {
        upgrade.push("admin: the admin listener was switched or moved".into());
    }
    let mut restart = Vec::new();
    let (o, n) = (&old.server, &new.server);
    if o.upgrade_socket != n.upgrade_socket {
        restart.push(format!(
            "server.upgrade_socket: {} → {} (a new process finds the running one through it)",
            o.upgrade_socket.display(),
            n.upgrade_socket.display()
        ));
    }
    (upgrade, restart)
}

/// Settings pingora reads when the process starts: "key: old → new" for each that changed.
fn deferred(old: &Config, new: &Config) -> Vec<String> {
    let d = |v: std::time::Duration| humantime::format_duration(v).to_string();
    let (o, n) = (&old.server, &new.server);
    let pairs = [
        (
            "server.threads",
            o.threads.to_string(),
            n.threads.to_string(),
        ),
        (
            "server.pid_file",
            o.pid_file.display().to_string(),
            n.pid_file.display().to_string(),
        ),
        ("server.grace_period", d(o.grace_period), d(n.grace_period)),
        (
            "server.shutdown_timeout",
            d(o.shutdown_timeout),
            d(n.shutdown_timeout),
        ),
        (
            "limits.keepalive_requests",
            old.limits.keepalive_requests.to_string(),
            new.limits.keepalive_requests.to_string(),
        ),
        (
            "timeouts.client_idle (HTTP/2 connections; HTTP/1 applies at once)",
            d(old.timeouts.client_idle),
            d(new.timeouts.client_idle),
        ),
        (
            "access_log.queue_size",
            old.access_log.queue_size.to_string(),
            new.access_log.queue_size.to_string(),
        ),
    ];
    let mut out: Vec<String> = pairs
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(key, a, b)| format!("{key}: {a} → {b}"))
        .collect();
    if old.cluster != new.cluster {
        out.push("cluster (the etcd connection and this node's id are set up at start)".into());
    }
    // A TLS listener's protocol settings are built into it when it starts.
    for l in &new.listeners {
        let before = old.listeners.iter().find(|o| o.name == l.name);
        if let (Some(t), Some(Some(o))) = (&l.tls, before.map(|o| o.tls.as_ref())) {
            if t.acme != o.acme {
                out.push(format!(
                    "listeners {:?} tls.acme (the ACME job is set up at start)",
                    l.name
                ));
            }
            if t.protocol != o.protocol {
                out.push(format!(
                    "listeners {:?} tls (profile, versions, suites, groups, tickets, session cache): {:?} → {:?}",
                    l.name, o.protocol, t.protocol
                ));
            }
        }
    }
    out
}

/// The sections a reload applies that differ.
fn reloaded(old: &Config, new: &Config) -> Vec<String> {
    let sections: [(&str, bool); 12] = [
        ("timeouts", differs(&old.timeouts, &new.timeouts)),
        (
            "listeners (certificates, redirects, HSTS)",
            differs(&old.listeners, &new.listeners),
        ),
        ("pools", differs(&old.pools, &new.pools)),
        ("routes", differs(&old.routes, &new.routes)),
        ("cache", old.cache != new.cache),
        ("readonly", differs(&old.readonly, &new.readonly)),
        ("limits", old.limits != new.limits),
        ("access rules", differs(&old.access, &new.access)),
        ("client_address", old.client_address != new.client_address),
        ("access_log", old.access_log != new.access_log),
        ("admin.token", old.admin.token != new.admin.token),
        (
            "server.state_dir",
            old.server.state_dir != new.server.state_dir,
        ),
    ];
    sections
        .iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| name.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!(
            "[[listeners]]\naddress = \"127.0.0.1:8080\"\n[pools.web]\n[pools.web.health]\nenabled = false\n\
             [[pools.web.servers]]\naddress = \"127.0.0.1:9000\"\n[[routes]]\npool = \"web\"\n{extra}"
        );
        Config::from_toml(&text, "test").unwrap()
    }

    #[test]
    fn each_change_lands_in_its_list() {
        let base = config("");
        assert!(classify(&base, &config("")).is_empty());
        let c = classify(&base, &config("[limits]\nkeepalive_requests = 7\n"));
        assert_eq!(c.after_restart, ["limits.keepalive_requests: 1000 → 7"]);
        assert_eq!(c.reload, ["limits"]);
        let c = classify(
            &base,
            &config("[server]\nupgrade_socket = \"/tmp/x.sock\"\n"),
        );
        assert_eq!(c.restart.len(), 1, "{c:?}");
        assert_eq!(c.refusals().len(), 1);
        let moved = config("").listeners[0].address;
        let mut other = config("");
        other.listeners[0].address = std::net::SocketAddr::new(moved.ip(), moved.port() + 1);
        let c = classify(&base, &other);
        assert_eq!(c.upgrade.len(), 1, "{c:?}");
        assert!(c.refusals()[0]
            .message
            .starts_with("needs upgrade: listeners"));
        let c = classify(&base, &config("[cache]\nmax_size = \"1MiB\"\n"));
        assert_eq!(
            (c.reload.as_slice(), c.upgrade.len()),
            (&["cache".to_string()][..], 0)
        );
    }
}
