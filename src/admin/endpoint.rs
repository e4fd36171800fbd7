//! The admin API's endpoints: each one's method and path, built here for `gatehouse ctl` and
//! matched here for the router, so a path is written once (re-exported by `api`, beside the
//! bodies the endpoints take and give).

use crate::balance::AdminState;
use http::Method;
use std::fmt;
use std::time::Duration;

/// An endpoint of the API, its path parameters borrowed from the request or the command line.
///
/// ```text
/// GET  /api/pools                                   every pool and server
/// GET  /api/pools/{pool}                            one pool
/// GET  /api/pools/{pool}/servers/{server}           one server
/// POST /api/pools/{pool}/servers/{server}/drain     [?wait=30s] answer once nothing is in flight
/// POST /api/pools/{pool}/servers/{server}/maint
/// POST /api/pools/{pool}/servers/{server}/ready
/// POST /api/reload                                  reload the config file (all or nothing)
/// POST /api/config/check  {file, text}               what a reload of that text would do
/// GET  /api/config                                  checksum, load time and file of the config
/// GET  /api/tls                                     TLS listeners: protocol, certificates
/// GET  /api/cluster                                 the etcd link, applied revision, every node
/// GET  /health                                      200 while serving (keepalived; no token)
/// GET  /api/cache                                   cache counters and size
/// POST /api/cache/purge  {"host": "www.example.com", "path": "/a?b=1"}   every variant
/// POST /api/cache/ban    {"host": "...", "prefix": "/img/"} or {"regex": "\\.css$"}
/// GET  /api/cache/hot                               the hottest objects' keys [?limit=1000] (peers)
/// GET  /api/cache/objects/{key}                     one fresh object, for a peer (binary)
/// GET  /metrics                                     Prometheus text format
/// GET  /                                            the status page
/// GET  /api/readonly                                read-only mode: on/off, since, why, until
/// POST /api/readonly     {"enabled": true, "reason": "db migration", "for": "2h"}
/// GET  /api/blocks                                  address blocks in force
/// POST /api/blocks       {"cidr": "203.0.113.0/24", "for": "1h", "reason": "scraper"}
/// DELETE /api/blocks/{cidr}                         end a block (e.g. /api/blocks/203.0.113.0/24)
/// ```
/// Every state-changing call goes to every node through etcd when clustered (`?local=1`: this
/// node alone, see `Query`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    Pools,
    Pool {
        pool: &'a str,
    },
    Server {
        pool: &'a str,
        server: &'a str,
    },
    /// Drain, maint or ready (`Endpoint::drain`...).
    ServerAction {
        pool: &'a str,
        server: &'a str,
        state: AdminState,
    },
    Reload,
    ConfigCheck,
    Config,
    Tls,
    Cluster,
    Health,
    Cache,
    Purge,
    Ban,
    /// For peers (`cache::peers`); the token is needed on every address.
    CacheHot,
    CacheObject {
        key: &'a str,
    },
    Metrics,
    StatusPage,
    Readonly,
    SetReadonly,
    Blocks,
    Block,
    Unblock {
        cidr: &'a str,
    },
}

/// A request that names no endpoint, as the router answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss<'a> {
    /// `POST /api/pools/{pool}/servers/{server}/{action}` with an action not drain, maint or
    /// ready (404).
    UnknownAction(&'a str),
    /// A known path with another method (405).
    MethodNotAllowed,
    /// No such path (404).
    NotFound,
}

impl<'a> Endpoint<'a> {
    pub fn drain(pool: &'a str, server: &'a str) -> Self {
        Self::server_action(pool, server, AdminState::Drain)
    }

    pub fn maint(pool: &'a str, server: &'a str) -> Self {
        Self::server_action(pool, server, AdminState::Maint)
    }

    pub fn ready(pool: &'a str, server: &'a str) -> Self {
        Self::server_action(pool, server, AdminState::Ready)
    }

    pub fn server_action(pool: &'a str, server: &'a str, state: AdminState) -> Self {
        Endpoint::ServerAction {
            pool,
            server,
            state,
        }
    }

    pub fn method(&self) -> Method {
        use Endpoint as E;
        match self {
            E::ServerAction { .. } | E::Reload | E::ConfigCheck | E::Purge | E::Ban => Method::POST,
            E::SetReadonly | E::Block => Method::POST,
            E::Unblock { .. } => Method::DELETE,
            _ => Method::GET,
        }
    }

    /// The path, as `parse` reads it back.
    pub fn path(&self) -> String {
        use Endpoint as E;
        match self {
            E::Pools => "/api/pools".into(),
            E::Pool { pool } => format!("/api/pools/{pool}"),
            E::Server { pool, server } => format!("/api/pools/{pool}/servers/{server}"),
            E::ServerAction {
                pool,
                server,
                state,
            } => format!("/api/pools/{pool}/servers/{server}/{}", state.as_str()),
            E::Reload => "/api/reload".into(),
            E::ConfigCheck => "/api/config/check".into(),
            E::Config => "/api/config".into(),
            E::Tls => "/api/tls".into(),
            E::Cluster => "/api/cluster".into(),
            E::Health => "/health".into(),
            E::Cache => "/api/cache".into(),
            E::Purge => "/api/cache/purge".into(),
            E::Ban => "/api/cache/ban".into(),
            E::CacheHot => "/api/cache/hot".into(),
            E::CacheObject { key } => format!("/api/cache/objects/{key}"),
            E::Metrics => "/metrics".into(),
            E::StatusPage => "/".into(),
            E::Readonly | E::SetReadonly => "/api/readonly".into(),
            E::Blocks | E::Block => "/api/blocks".into(),
            E::Unblock { cidr } => format!("/api/blocks/{cidr}"),
        }
    }

    /// The path and its query.
    pub fn uri(&self, query: &Query) -> String {
        format!("{}{query}", self.path())
    }

    /// Whether the call changes state that a cluster shares, so `Query::local` applies.
    pub fn clustered(&self) -> bool {
        use Endpoint as E;
        matches!(
            self,
            E::ServerAction { .. }
                | E::Purge
                | E::Ban
                | E::SetReadonly
                | E::Block
                | E::Unblock { .. }
        )
    }

    /// The endpoint a request names. The pages outside `/api` match their path exactly; under
    /// `/api` slashes at either end do not count.
    pub fn parse(method: &Method, path: &'a str) -> Result<Self, Miss<'a>> {
        use Endpoint as E;
        match (method, path) {
            (&Method::GET, "/health") => return Ok(E::Health),
            (&Method::GET, "/metrics") => return Ok(E::Metrics),
            (&Method::GET, "/") => return Ok(E::StatusPage),
            _ => {}
        }
        let segments: Vec<&'a str> = path.trim_matches('/').split('/').collect();
        let endpoint = match (method, segments.as_slice()) {
            (&Method::GET, &["api", "pools"]) => E::Pools,
            (&Method::GET, &["api", "pools", pool]) => E::Pool { pool },
            (&Method::GET, &["api", "pools", pool, "servers", server]) => {
                E::Server { pool, server }
            }
            (&Method::POST, &["api", "pools", pool, "servers", server, action]) => {
                match AdminState::parse(action) {
                    Some(state) => E::server_action(pool, server, state),
                    None => return Err(Miss::UnknownAction(action)),
                }
            }
            (&Method::GET, &["api", "readonly"]) => E::Readonly,
            (&Method::POST, &["api", "readonly"]) => E::SetReadonly,
            (&Method::GET, &["api", "config"]) => E::Config,
            (&Method::POST, &["api", "reload"]) => E::Reload,
            (&Method::POST, &["api", "config", "check"]) => E::ConfigCheck,
            (&Method::GET, &["api", "cache"]) => E::Cache,
            (&Method::GET, &["api", "tls"]) => E::Tls,
            (&Method::GET, &["api", "cluster"]) => E::Cluster,
            (&Method::POST, &["api", "cache", "purge"]) => E::Purge,
            (&Method::POST, &["api", "cache", "ban"]) => E::Ban,
            (&Method::GET, &["api", "cache", "hot"]) => E::CacheHot,
            (&Method::GET, &["api", "cache", "objects", key]) => E::CacheObject { key },
            (&Method::GET, &["api", "blocks"]) => E::Blocks,
            (&Method::POST, &["api", "blocks"]) => E::Block,
            // The network keeps its '/': everything after `blocks/`.
            (&Method::DELETE, &["api", "blocks", _] | &["api", "blocks", _, _]) => E::Unblock {
                cidr: path.trim_matches('/').trim_start_matches("api/blocks/"),
            },
            (_, &["api", "readonly"] | &["api", "pools", ..] | &["api", "blocks", ..]) => {
                return Err(Miss::MethodNotAllowed)
            }
            _ => return Err(Miss::NotFound),
        };
        Ok(endpoint)
    }
}

/// The query of a call: `wait` (a drain or maint answers once nothing is in flight, up to
/// this long) and `local` (this node alone, not the cluster). Written `?wait=30s&local=1`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Query {
    pub wait: Option<Duration>,
    pub local: bool,
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = '?';
        if let Some(wait) = self.wait {
            write!(f, "{sep}wait={}", duration_text(wait))?;
            sep = '&';
        }
        if self.local {
            write!(f, "{sep}local=1")?;
        }
        Ok(())
    }
}

/// A duration as the API reads it (humantime, without spaces: "1m30s", "250ms").
pub fn duration_text(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each endpoint.
    fn every_endpoint() -> Vec<Endpoint<'static>> {
        use Endpoint as E;
        vec![
            E::Pools,
            E::Pool { pool: "web" },
            E::Server {
                pool: "web",
                server: "a",
            },
            E::drain("web", "a"),
            E::maint("web", "a"),
            E::ready("web", "a"),
            E::Reload,
            E::ConfigCheck,
            E::Config,
            E::Tls,
            E::Cluster,
            E::Health,
            E::Cache,
            E::Purge,
            E::Ban,
            E::CacheHot,
            E::CacheObject {
                key: "00112233445566778899aabbccddeeff",
            },
            E::Metrics,
            E::StatusPage,
            E::Readonly,
            E::SetReadonly,
            E::Blocks,
            E::Block,
            E::Unblock {
                cidr: "203.0.113.0/24",
            },
            E::Unblock { cidr: "192.0.2.7" },
        ]
    }

    #[test]
    fn every_endpoint_is_routed_back_to_itself() {
        for e in every_endpoint() {
            let path = e.path();
            assert_eq!(Endpoint::parse(&e.method(), &path), Ok(e), "{path}");
        }
    }

    #[test]
    fn the_constructors_write_the_paths_operators_know() {
        let drain = Endpoint::drain("web", "a");
        assert_eq!(
            (drain.method(), drain.path()),
            (Method::POST, "/api/pools/web/servers/a/drain".to_string())
        );
        assert_eq!(
            Endpoint::maint("web", "a").path(),
            "/api/pools/web/servers/a/maint"
        );
        let ready = Endpoint::ready("db", "b-1");
        assert_eq!(ready.path(), "/api/pools/db/servers/b-1/ready");
        assert_eq!(ready.method(), Method::POST);
        assert_eq!(Endpoint::Readonly.method(), Method::GET);
        assert_eq!(Endpoint::SetReadonly.method(), Method::POST);
    }

    /// The table in `Endpoint`'s doc lists every endpoint, each as `method()` and `path()` write
    /// it, so the table cannot drift from the router.
    #[test]
    fn the_doc_table_lists_every_endpoint() {
        let table: Vec<(Method, String)> = include_str!("endpoint.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("/// "))
            .filter_map(|l| {
                let (method, rest) = l.split_once(' ')?;
                let method = match method {
                    "GET" => Method::GET,
                    "POST" => Method::POST,
                    "DELETE" => Method::DELETE,
                    _ => return None,
                };
                let path = rest.split_whitespace().next()?;
                let path = path.replace("{pool}", "web").replace("{server}", "a");
                let path = path.replace("{cidr}", "203.0.113.0/24");
                let path = path.replace("{key}", "00112233445566778899aabbccddeeff");
                Some((method, path))
            })
            .collect();
        let expected: Vec<(Method, String)> = every_endpoint()
            .iter()
            .map(|e| (e.method(), e.path()))
            .collect();
        for row in &table {
            assert!(expected.contains(row), "the doc lists {row:?}: no endpoint");
        }
        for row in expected.iter().filter(|(_, p)| !p.ends_with("192.0.2.7")) {
            assert!(table.contains(row), "the doc table lacks {row:?}");
        }
    }

    #[test]
    fn a_request_naming_no_endpoint_is_told_why() {
        let parse = |m: Method, p: &'static str| Endpoint::parse(&m, p);
        assert_eq!(
            parse(Method::POST, "/api/pools/web/servers/a/bogus"),
            Err(Miss::UnknownAction("bogus"))
        );
        for (m, p) in [
            (Method::DELETE, "/api/readonly"),
            (Method::POST, "/api/pools"),
            (Method::GET, "/api/pools/web/servers/a/drain"),
            (Method::GET, "/api/pools/web/servers/a/drain/x"),
        ] {
            assert_eq!(parse(m, p), Err(Miss::MethodNotAllowed), "{p}");
        }
        for (m, p) in [
            (Method::GET, "/nope"),
            (Method::GET, "/metrics/"),
            (Method::HEAD, "/health"),
            (Method::POST, "/"),
            (Method::GET, "/api/cache/purge"),
        ] {
            assert_eq!(parse(m, p), Err(Miss::NotFound), "{p}");
        }
        assert_eq!(parse(Method::GET, "/api/pools/"), Ok(Endpoint::Pools));
    }

    #[test]
    fn the_query_carries_wait_and_local_as_the_router_reads_them() {
        let drain = Endpoint::drain("web", "a");
        assert_eq!(
            drain.uri(&Query::default()),
            "/api/pools/web/servers/a/drain"
        );
        let both = Query {
            wait: Some(Duration::from_secs(90)),
            local: true,
        };
        assert_eq!(
            drain.uri(&both),
            "/api/pools/web/servers/a/drain?wait=1m30s&local=1"
        );
        let local = Query {
            wait: None,
            local: true,
        };
        assert_eq!(Endpoint::SetReadonly.uri(&local), "/api/readonly?local=1");
        assert!(drain.clustered() && Endpoint::Ban.clustered());
        assert!(!Endpoint::Reload.clustered() && !Endpoint::Pools.clustered());
    }

    #[test]
    fn durations_are_written_as_humantime_reads_them() {
        for ms in [0, 1, 250, 30_000, 90_000, 5_400_000, 7_200_500] {
            let d = Duration::from_millis(ms);
            let text = duration_text(d);
            assert!(!text.contains(' '), "{text}");
            assert_eq!(humantime::parse_duration(&text), Ok(d), "{text}");
        }
        assert_eq!(duration_text(Duration::from_secs(30)), "30s");
        assert_eq!(duration_text(Duration::from_secs(7200)), "2h");
    }
}
