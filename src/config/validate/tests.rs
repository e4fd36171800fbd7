//! Table tests of the validation rules: a TOML snippet added to a minimal valid file, and the
//! `key.path: message` it must produce. Plus the check that `conf/gatehouse.toml`'s
//! `# default ...` comments say what the code does.

use super::super::Config;

/// The smallest valid file; each case appends its own sections (TOML merges nothing, so cases
/// use sections this base leaves out, or replace it whole with `REPLACE`).
const BASE: &str = r#"
[server]
state_dir = "/tmp/gatehouse-validate-tests"
[[listeners]]
address = "127.0.0.1:18080"
[pools.web]
[[pools.web.servers]]
address = "127.0.0.1:18001"
[[routes]]
pool = "web"
"#;

fn errors_of(snippet: &str) -> Vec<String> {
    let text = match snippet.strip_prefix("REPLACE") {
        Some(whole) => whole.to_string(),
        None => format!("{BASE}{snippet}"),
    };
    let problems = match Config::from_toml(&text, "test.toml") {
        Ok(c) => c.warnings,
        Err(e) => e.errors,
    };
    problems
        .iter()
        .map(|e| {
            let w = if e.warning { "warning " } else { "" };
            format!("{w}{}: {}", e.path, e.message)
        })
        .collect()
}

#[test]
fn the_base_is_valid() {
    assert_eq!(errors_of(""), Vec::<String>::new());
}

#[test]
fn client_address_rules_name_their_key_and_line() {
    let snippet = "[[listeners]]\naddress = \"127.0.0.1:18081\"\nproxy_protocol = true\n";
    let text = format!("{BASE}{snippet}");
    let e = Config::from_toml(&text, "test.toml").unwrap_err().errors;
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].path.to_string(), "listeners[1].proxy_protocol");
    assert_eq!(e[0].line, Some(13), "the line of proxy_protocol");
    assert!(e[0].message.contains("client_address.trusted_proxies"));
    for (snippet, expected) in [
        (
            "[client_address]\ntrusted_proxies = [\"10.0.0.300\"]",
            "client_address.trusted_proxies[0]: not an address or CIDR: \"10.0.0.300\"",
        ),
        (
            "[client_address]\nheader = \"X-Real-IP\"",
            "client_address.header: unknown header \"X-Real-IP\": use \"X-Forwarded-For\", \"Forwarded\" or \"none\"",
        ),
    ] {
        assert_eq!(errors_of(snippet), [expected], "{snippet}");
    }
    let ok = format!("{snippet}[client_address]\ntrusted_proxies = [\"10.0.0.0/8\"]\n");
    assert_eq!(errors_of(&ok), Vec::<String>::new());
}

#[test]
fn server_timeouts_limits_and_admin_rules_name_their_key() {
    let cases: &[(&str, &str)] = &[
        (
            "[timeouts]\nconnect = \"0s\"",
            "timeouts.connect: must be greater than zero",
        ),
        (
            "[timeouts]\nclient_idle = \"soon\"",
            "timeouts.client_idle: not a duration: \"soon\"",
        ),
        (
            "[limits]\nmax_headers = 300",
            "limits.max_headers: must be between 1 and 256",
        ),
        (
            "[limits]\nmax_connections = 0",
            "limits.max_connections: must be at least 1",
        ),
        (
            "[limits]\nkeepalive_requests = 0",
            "limits.keepalive_requests: must be at least 1",
        ),
        (
            "[limits]\nmax_body_size = \"12q\"",
            "limits.max_body_size: not a size: \"12q\"",
        ),
        (
            "[admin]\ntoken = \"short\"",
            "admin.token: too short: use at least 16 characters",
        ),
        (
            "[cache]\npeer_token = \"short\"",
            "cache.peer_token: too short: use at least 16 characters",
        ),
        (
            "[cache]\nsibling_wait = \"later\"",
            "cache.sibling_wait: not a duration: \"later\"",
        ),
        (
            "[admin]\naddress = \"10.1.2.3:9901\"",
            "admin.address: 10.1.2.3:9901 is not a loopback address",
        ),
        (
            "[admin]\ntoken = \"0123456789abcdef\"\ntoken_file = \"/x\"",
            "admin.token_file: set token or token_file, not both",
        ),
    ];
    check(cases);
}

#[test]
fn access_rules_name_their_key() {
    let ok = "[access]\nrules = [\"a\"]\n[[access_rules]]\nname = \"a\"\ndeny_cidrs = [\"10.0.0.0/8\", \"::1\"]\n";
    assert_eq!(errors_of(ok), Vec::<String>::new());
    let rule = "[[access_rules]]\nname = \"a\"\n";
    let cases: Vec<(String, &str)> = vec![
        ("[[access_rules]]\nmethods = [\"GET\"]".into(), "access_rules[0].name: every access rule needs a name"),
        (format!("{rule}deny_cidrs = [\"10.0.0.300/8\"]"), "access_rules[0].deny_cidrs[0]: not an address or CIDR: \"10.0.0.300/8\""),
        (format!("{rule}allow_cidrs = [\"10.0.0.0/33\"]"), "access_rules[0].allow_cidrs[0]: not an address or CIDR"),
        (format!("{rule}deny_cidrs_file = \"/nonexistent/blocked.lst\""), "access_rules[0].deny_cidrs_file: /nonexistent/blocked.lst: No such file"),
        (format!("{rule}deny_cidrs = [\"10.0.0.1\"]\nallow_cidrs = [\"10.0.0.2\"]"), "access_rules[0].allow_cidrs: a rule has a deny list or an allow list, not both"),
        (format!("{rule}path_regex = \"(unclosed\""), "access_rules[0].path_regex: bad regex"),
        (format!("{rule}header = \"x\"\nheader_regex = \"[z-a]\""), "access_rules[0].header_regex: bad regex"),
        (format!("{rule}header_value = \"x\""), "access_rules[0].header: missing"),
        (format!("{rule}header = \"bad header\""), "access_rules[0].header: not a header name"),
        (format!("{rule}methods = [\"GE T\"]"), "access_rules[0].methods[0]: not a method"),
        (format!("{rule}path_prefixes = [\"admin\"]"), "access_rules[0].path_prefixes[0]: \"admin\" must start with '/'"),
        (format!("{rule}action = \"tarpit\""), "access_rules[0].action: \"tarpit\": use \"deny\" or \"drop\""),
        (format!("{rule}action = \"drop\"\nstatus = 403"), "access_rules[0].status: a rule with action = \"drop\" sends no answer"),
        (format!("{rule}status = 204"), "access_rules[0].status: 204 is not a status from 400 to 599"),
        (format!("{rule}{rule}"), "access_rules[1].name: another access rule is already named \"a\""),
        ("[access]\nrules = [\"nope\"]".into(), "access.rules[0]: unknown access rule \"nope\""),
        ("[[routes]]\npool = \"web\"\npath_prefix = \"/r\"\naccess = [\"nope\"]".into(), "routes[1].access[0]: unknown access rule \"nope\""),
        (format!("{rule}[[routes]]\npool = \"web\"\npath_prefix = \"/r\"\n[[routes.access_rules]]\nname = \"a\""), "routes[1].access_rules[0].name: another access rule is already named \"a\""),
    ];
    let owned: Vec<(&str, &str)> = cases.iter().map(|(s, e)| (s.as_str(), *e)).collect();
    check(&owned);
}

#[test]
fn access_rules_compile_in_order_with_their_routes() {
    let text = format!(
        "{BASE}path_prefix = \"/\"\naccess = [\"b\", \"a\"]\n[[routes.access_rules]]\nname = \"own\"\n\
         [access]\nrules = [\"a\"]\n[[access_rules]]\nname = \"a\"\n[[access_rules]]\nname = \"b\"\n"
    );
    let c = Config::from_toml(&text, "t").unwrap();
    let names: Vec<&str> = c.access.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "own"]);
    assert_eq!(
        (c.access.global.as_slice(), c.routes[0].access.as_slice()),
        (&[0][..], &[1, 0, 2][..])
    );
}

#[test]
fn rate_limits_name_their_key() {
    let l = "[[rate_limits]]\nname = \"l\"\n";
    let cases: Vec<(String, &str)> = vec![
        ("[[rate_limits]]\nrate = \"1/1s\"".into(), "rate_limits[0].name: every rate limit needs a name"),
        (l.into(), "rate_limits[0].rate: missing"),
        (format!("{l}rate = \"ten/1s\""), "rate_limits[0].rate: not a rate: \"ten/1s\""),
        (format!("{l}rate = \"0/1s\""), "rate_limits[0].rate: not a rate"),
        (format!("{l}rate = \"5/0s\""), "rate_limits[0].rate: not a rate"),
        (format!("{l}rate = \"5/1s\"\nburst = 0"), "rate_limits[0].burst: at least 1"),
        (format!("{l}rate = \"5/1s\"\nkey = \"ip\""), "rate_limits[0].key: \"ip\" is not a key"),
        (format!("{l}rate = \"5/1s\"\nkey = \"header:bad name\""), "rate_limits[0].key: \"header:bad name\" is not a key"),
        (format!("{l}rate = \"5/1s\"\nkey = \"cookie:a=b\""), "rate_limits[0].key: \"cookie:a=b\" is not a key"),
        (format!("{l}rate = \"5/1s\"\nkey = \"header:x\"\nipv6_prefix = 64"), "rate_limits[0].key: ipv4_prefix and ipv6_prefix apply to key = \"client\" only"),
        (format!("{l}rate = \"5/1s\"\nipv4_prefix = 33"), "rate_limits[0].ipv4_prefix: 33 is not a prefix length"),
        (format!("{l}rate = \"5/1s\"\naction = \"tarpit\""), "rate_limits[0].action: \"tarpit\" is not an action"),
        (format!("{l}rate = \"5/1s\"\nmax_delay = \"1s\""), "rate_limits[0].max_delay: only with action = \"delay\""),
        (format!("{l}rate = \"5/1s\"\naction = \"delay\"\nmax_delay = \"soon\""), "rate_limits[0].max_delay: not a duration"),
        (format!("{l}rate = \"5/1s\"\naction = \"close\"\nstatus = 429"), "rate_limits[0].status: action = \"close\" answers nothing"),
        (format!("{l}rate = \"5/1s\"\nstatus = 302"), "rate_limits[0].status: 302 is not a status from 400 to 599"),
        (format!("{l}rate = \"5/1s\"\nrat = 1"), "rate_limits[0].rat: unknown key"),
        (format!("{l}rate = \"5/1s\"\n{l}rate = \"5/1s\""), "rate_limits[1].name: another rate limit is already named \"l\""),
        ("[access]\nrate_limits = [\"nope\"]".into(), "access.rate_limits[0]: unknown rate limit \"nope\""),
        ("[[routes]]\npool = \"web\"\npath_prefix = \"/r\"\nrate_limits = [\"nope\"]".into(), "routes[1].rate_limits[0]: unknown rate limit \"nope\""),
        ("[[routes]]\npool = \"web\"\npath_prefix = \"/r\"\nrate_limits = [{ name = \"own\", rate = \"1/1s\", burts = 2 }]".into(), "routes[1].rate_limits[0].burts: unknown key"),
        (format!("{l}rate = \"5/1s\"\n[[routes]]\npool = \"web\"\npath_prefix = \"/r\"\nrate_limits = [\"l\", \"l\"]"), "routes[1].rate_limits: rate limit \"l\" listed twice"),
        (format!("{l}rate = \"5/1s\"\n[access]\nrate_limits = [\"l\"]\n[[routes]]\npool = \"web\"\npath_prefix = \"/r\"\nrate_limits = [\"l\"]"), "routes[1].rate_limits: rate limit \"l\" is in [access] rate_limits too"),
    ];
    let owned: Vec<(&str, &str)> = cases.iter().map(|(s, e)| (s.as_str(), *e)).collect();
    check(&owned);
    let text = format!(
        "{BASE}rate_limits = [\"b\", {{ name = \"own\", rate = \"3/1m\", key = \"cookie:sid\" }}]\n\
         [access]\nrate_limits = [\"a\"]\n[[rate_limits]]\nname = \"a\"\nrate = \"100/10s\"\n\
         [[rate_limits]]\nname = \"b\"\nrate = \"5/s\"\nburst = 1\naction = \"delay\"\n"
    );
    let c = Config::from_toml(&text, "t").unwrap();
    let r = &c.rate_limits;
    let names: Vec<&str> = r.limits.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "own"]);
    assert_eq!(
        (r.global.as_slice(), c.routes[0].rate_limits.as_slice()),
        (&[0][..], &[1, 2][..])
    );
    assert_eq!(
        (r.limits[0].rate.interval_ns, r.limits[0].rate.burst),
        (100_000_000, 100)
    );
    assert_eq!(
        (r.limits[1].rate.interval_ns, r.limits[1].rate.burst),
        (200_000_000, 1)
    );
    assert_eq!(r.limits[2].rate.interval_ns, 20_000_000_000);
}

#[test]
fn cluster_rules_name_their_key() {
    let ok = "[cluster]\nname = \"front\"\nnode = \"lb1\"\netcd_endpoints = [\"http://10.0.0.1:2379\"]\n";
    assert_eq!(errors_of(ok), Vec::<String>::new());
    let cases: &[(&str, &str)] = &[
        (
            "[cluster]\nnode = \"lb1\"\netcd_endpoints = [\"http://e:2379\"]",
            "cluster.name: required in [cluster]",
        ),
        (
            "[cluster]\nname = \"f\"\nnode = \"lb 1\"\netcd_endpoints = [\"http://e:2379\"]",
            "cluster.node: \"lb 1\": use letters, digits, '-', '_' and '.'",
        ),
        (
            "[cluster]\nname = \"f\"\nnode = \"a\"",
            "cluster.etcd_endpoints: list at least one etcd endpoint",
        ),
        (
            "[cluster]\nname = \"f\"\nnode = \"a\"\netcd_endpoints = [\"10.0.0.1:2379\"]",
            "cluster.etcd_endpoints[0]: \"10.0.0.1:2379\": must start with http:// or https://",
        ),
        (
            "[cluster]\nname = \"f\"\nnode = \"a\"\netcd_endpoints = [\"http://e\"]",
            "cluster.etcd_endpoints[0]: \"http://e\": give the port",
        ),
        (
            "[cluster]\nname = \"f\"\nnode = \"a\"\netcd_endpoints = [\"https://e:2379\"]",
            "cluster.ca_file: https endpoints need ca_file",
        ),
        (
            "[cluster]\nname = \"f\"\nnode = \"a\"\netcd_endpoints = [\"http://e:2379\"]\nprefix = \"gh/\"",
            "cluster.prefix: \"gh/\": write a key path",
        ),
        (
            "[cluster]\nname = \"f\"\nnode = \"a\"\netcd_endpoints = [\"http://e:2379\"]\nnode_ttl = \"1s\"",
            "cluster.node_ttl: must be at least 3s",
        ),
        (
            "[cluster]\nname = \"f\"\nnode = \"a\"\netcd_endpoints = [\"http://e:2379\"]\nuser = \"gh\"",
            "cluster.user: set user and password_file together",
        ),
        (
            "[cluster]\nname = \"f\"\nnode = \"a\"\netcd_endpoints = [\"http://e:2379\"]\nrequest_timeout = \"0s\"",
            "cluster.request_timeout: must be more than 0",
        ),
    ];
    check(cases);
}

#[test]
fn cache_readonly_and_log_rules_name_their_key() {
    let cases: &[(&str, &str)] = &[
        (
            "[cache]\nmax_size = \"1m\"\nmax_object_size = \"2m\"",
            "cache.max_object_size: larger than max_size",
        ),
        (
            "[cache]\nstatus_header = \"bad header\"",
            "cache.status_header: not a header name: \"bad header\"",
        ),
        (
            "[readonly]\nallow_paths = [\"login\"]",
            "readonly.allow_paths[0]: \"login\" must start with '/'",
        ),
        (
            "[readonly]\npage = \"/nonexistent/page.html\"",
            "readonly.page: /nonexistent/page.html: No such file",
        ),
        (
            "[[access_log.targets]]\ntransport = \"udp\"",
            "access_log.targets[0].address: missing: IP:PORT of the receiver",
        ),
        (
            "[[access_log.targets]]\ntransport = \"carrier-pigeon\"",
            "access_log.targets[0].transport: unknown transport \"carrier-pigeon\"",
        ),
        (
            "[[access_log.targets]]\ntransport = \"stdout\"\nformat = \"xml\"",
            "access_log.targets[0].format: unknown format \"xml\"",
        ),
        (
            "[[access_log.targets]]\ntransport = \"stdout\"\nfacility = \"local9\"",
            "access_log.targets[0].facility: unknown facility \"local9\"",
        ),
        (
            "[[access_log.targets]]\ntransport = \"stdout\"\nsample = 1.5",
            "access_log.targets[0].sample: 1.5 is not in (0, 1]",
        ),
        (
            "[access_log]\ncapture_request_headers = [\"ok\", \"not ok\"]",
            "access_log.capture_request_headers[1]: not a header name",
        ),
        // unknown keys and types
        ("[cache]\nmax_sise = \"1m\"", "cache.max_sise: unknown key"),
        (
            "[limits]\nmax_headers = \"many\"",
            "limits.max_headers: invalid type",
        ),
    ];
    check(cases);
}

#[test]
fn listener_pool_and_route_rules_name_their_key() {
    let cases: &[(&str, &str)] = &[
        ("[[listeners]]\naddress = \"127.0.0.1:18080\"", "listeners[1].address: 127.0.0.1:18080 is used by another listener"),
        ("[[listeners]]\naddress = \"nowhere\"", "listeners[1].address: not a socket address: \"nowhere\""),
        ("[[listeners]]\naddress = \"127.0.0.1:18081\"\nhsts = \"max-age=1\"", "listeners[1].hsts: only sent over HTTPS"),
        ("[[listeners]]\naddress = \"127.0.0.1:18081\"\nredirect_to_https = true", "listeners: redirect_to_https is set but no listener has tls"),
        ("[[listeners]]\naddress = \"127.0.0.1:18081\"\n[listeners.tls]", "listeners[1].tls.certificates: a TLS listener needs at least one"),
        ("[[listeners]]\naddress = \"127.0.0.1:18081\"\n[listeners.tls]\nprofile = \"old\"", "listeners[1].tls.profile: unknown profile \"old\": use \"intermediate\" or \"modern\""),
        ("[[listeners]]\naddress = \"127.0.0.1:18081\"\n[listeners.tls]\nmin_version = \"1.1\"", "listeners[1].tls.min_version: \"1.1\": use \"1.2\" or \"1.3\""),
        ("[[listeners]]\naddress = \"127.0.0.1:18081\"\n[listeners.tls]\ncipher_suites = [\"RC4-MD5\"]", "listeners[1].tls.cipher_suites: unknown \"RC4-MD5\": use TLS13_AES_128_GCM_SHA256"),
        ("[[listeners]]\naddress = \"127.0.0.1:18081\"\n[listeners.tls]\ncipher_suites = [\"TLS_AES_128_GCM_SHA256\"]", "listeners[1].tls.cipher_suites: TLS 1.2 is offered (min_version \"1.2\") but no TLS 1.2 suite is listed"),
        ("[[listeners]]\naddress = \"127.0.0.1:18081\"\n[listeners.tls]\ngroups = [\"ffdhe2048\"]", "listeners[1].tls.groups: unknown \"ffdhe2048\": use X25519, secp256r1, secp384r1"),
        ("[[listeners]]\naddress = \"127.0.0.1:18081\"\n[listeners.tls]\nticket_key_file = \"/nonexistent/keys\"", "listeners[1].tls.ticket_key_file: /nonexistent/keys: cannot read"),
        ("[[listeners]]\naddress = \"127.0.0.1:18081\"\n[listeners.tls]\nticket_rotation = \"5s\"", "listeners[1].tls.ticket_rotation: at least 1m"),
        ("[[listeners]]\naddress = \"127.0.0.1:18081\"\n[listeners.tls]\n[listeners.tls.acme]\ndomains = [\"a.test\"]", "listeners[1].tls.acme.directory: missing"),
        ("[[listeners]]\naddress = \"127.0.0.1:18081\"\n[listeners.tls]\n[listeners.tls.acme]\ndirectory = \"https://acme.test/dir\"\ndomains = [\"*.a.test\"]", "listeners[1].tls.acme.domains: \"*.a.test\" is not a DNS name"),
        ("[[listeners]]\naddress = \"127.0.0.1:18081\"\n[listeners.tls]\n[listeners.tls.acme]\ndirectory = \"https://acme.test/dir\"\ndomains = [\"a.test\"]\ncontact = [\"ops@a.test\"]", "listeners[1].tls.acme.contact: \"ops@a.test\": write \"mailto:ADDRESS\""),
        ("[[listeners]]\naddress = \"127.0.0.1:18081\"\n[listeners.tls]\n[listeners.tls.acme]\ndirectory = \"https://acme.test/dir\"\ndomains = [\"a.test\"]\nstorage = \"/proc/gatehouse-acme\"", "listeners[1].tls.acme.storage: /proc/gatehouse-acme: not writable"),
        ("REPLACE[[listeners]]\naddress = \"127.0.0.1:18443\"\n[listeners.tls]\n[listeners.tls.acme]\ndirectory = \"https://acme.test/dir\"\ndomains = [\"a.test\"]\nstorage = \"/tmp/gatehouse-acme-validate\"\n[pools.web]\n[[pools.web.servers]]\naddress = \"127.0.0.1:1\"\n[[routes]]\npool = \"web\"", "listeners[0].tls.acme.challenge: http-01 is answered on a plain-HTTP listener"),
        ("[pools.api]\nbalance = \"random\"\n[[pools.api.servers]]\naddress = \"127.0.0.1:1\"", "pools.api.balance: unknown balance \"random\""),
        ("[pools.api]\nbalance = \"hash\"\n[[pools.api.servers]]\naddress = \"127.0.0.1:1\"", "pools.api.hash_key: missing: balance = \"hash\" needs hash_key"),
        ("[pools.api]\nbalance = \"hash\"\nhash_key = \"cookie\"\n[[pools.api.servers]]\naddress = \"127.0.0.1:1\"", "pools.api.hash_key: unknown hash key \"cookie\""),
        ("[pools.api]\nretries = 11\n[[pools.api.servers]]\naddress = \"127.0.0.1:1\"", "pools.api.retries: 11 is more than 10"),
        ("[pools.api]\n[[pools.api.servers]]\naddress = \"127.0.0.1:1\"\nweight = 0", "pools.api.servers[0].weight: 0 is not between 1 and 256"),
        ("[pools.api]\n[[pools.api.servers]]\naddress = \"127.0.0.1:1\"\nbackup = true", "pools.api.servers: every server is a backup"),
        ("[pools.api]\n[[pools.api.servers]]\naddress = \"127.0.0.1:1\"\n[[pools.api.servers]]\naddress = \"127.0.0.1:1\"", "pools.api.servers[1].address: 127.0.0.1:1 is listed twice in this pool"),
        ("[pools.api]\n[pools.api.health]\ninterval = \"1s\"\ntimeout = \"2s\"\n[[pools.api.servers]]\naddress = \"127.0.0.1:1\"", "pools.api.health.timeout: must be greater than zero and at most the interval"),
        ("[pools.api]\n[pools.api.health]\nexpect_status = \"200-99\"\n[[pools.api.servers]]\naddress = \"127.0.0.1:1\"", "pools.api.health.expect_status: not a status or range: \"200-99\""),
        ("[pools.api]\n[[pools.api.servers]]\naddress = \"127.0.0.1:1\"", "warning pools.api: no route sends traffic to this pool"),
        ("[[routes]]\npool = \"nope\"\npath_prefix = \"/x\"", "routes[1].pool: unknown pool \"nope\" (pools are: web)"),
        ("[[routes]]\npool = \"web\"", "routes[1].path_prefix: a route for any host with path_prefix \"/\" already exists"),
        ("[[routes]]\npool = \"web\"\npath_prefix = \"x\"", "routes[1].path_prefix: \"x\" must start with '/'"),
        ("[[routes]]\npool = \"web\"\nhosts = [\"bad host\"]", "routes[1].hosts[0]: not a host name: \"bad host\""),
        ("[[routes]]\npool = \"web\"\npath_prefix = \"/r\"\nreadonly = \"sometimes\"", "routes[1].readonly: \"sometimes\": use \"inherit\", \"always\" or \"never\""),
        ("[[routes]]\npool = \"web\"\npath_prefix = \"/m\"\n[routes.cache]\nmin_uses = 0", "routes[1].cache.min_uses: must be at least 1"),
        ("[[routes]]\npool = \"web\"\npath_prefix = \"/c\"\n[routes.cache]\nignore_cookies = [\"a=b\"]", "routes[1].cache.ignore_cookies[0]: not a cookie name: \"a=b\""),
        ("REPLACE[pools.web]\n[[pools.web.servers]]\naddress = \"127.0.0.1:1\"\n[[routes]]\npool = \"web\"", "listeners: at least one [[listeners]] entry is needed"),
    ];
    check(cases);
}

fn check(cases: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for (snippet, expected) in cases {
        let got = errors_of(snippet);
        if !got.iter().any(|g| g.starts_with(expected)) {
            failures.push(format!(
                "{snippet:?}\n  expected: {expected}\n  got: {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A literal after `default ` in a comment of the shipped file: a quoted string, `[]`, or a
/// bare number or boolean. None for prose ("default: the address").
fn default_literal(comment: &str) -> Option<String> {
    let rest = comment.split("default ").nth(1)?;
    if let Some(q) = rest.strip_prefix('"') {
        let value = &q[..q.find('"')?];
        // "route<N>" and the like describe a pattern, not a value.
        return (!value.contains('<')).then(|| format!("\"{value}\""));
    }
    if rest.starts_with("[]") {
        return Some("[]".into());
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    (word.parse::<f64>().is_ok() || word == "true" || word == "false").then_some(word)
}

/// For every `key = value  # default D` line of `conf/gatehouse.toml`, the file with the line
/// set to D and the file without the line must validate to the same config: the comment tells
/// the truth about the code's default.
#[test]
fn shipped_file_states_the_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/gatehouse.toml");
    let text = std::fs::read_to_string(&path).expect("conf/gatehouse.toml");
    let lines: Vec<&str> = text.lines().collect();
    let base = path.parent().expect("conf/");
    let render = |t: &str| {
        let c = super::from_toml(t, "conf", base).expect("valid variant of conf/gatehouse.toml");
        format!(
            "{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}{:?}",
            c.server,
            c.timeouts,
            c.listeners,
            c.pools,
            c.routes,
            c.admin,
            c.cache,
            c.readonly,
            c.access_log,
            c.limits,
            c.access,
            c.client_address
        )
    };
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((setting, comment)) = line.split_once('#') else {
            continue;
        };
        let Some((key, _)) = setting.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.starts_with('[') {
            continue;
        }
        let Some(default) = default_literal(comment) else {
            continue;
        };
        let with = |replacement: Option<String>| {
            let mut v: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            match replacement {
                Some(r) => v[i] = r,
                None => v[i] = String::new(),
            }
            v.join("\n")
        };
        let stated = render(&with(Some(format!("{key} = {default}"))));
        let omitted = render(&with(None));
        checked += 1;
        if stated != omitted {
            wrong.push(format!("line {}: {key}: the comment says {default}", i + 1));
        }
    }
    assert!(checked >= 40, "only {checked} documented defaults found");
    assert!(
        wrong.is_empty(),
        "defaults that disagree with the code:\n{}",
        wrong.join("\n")
    );
}
