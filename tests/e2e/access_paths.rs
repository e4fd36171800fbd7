//! Access rules and routing against the spellings of a path or host servers read alike
//! (issue 32, and a hostile client's review): escapes, dot segments, Tomcat's `;parameters`,
//! IIS's backslashes, `User_Agent`, lowercase methods, `Host: a.test:80:80`.

use super::access::{ask, refused};
use crate::common::*;

/// A server reads `/%61dmin`, `//admin` and `/x/../admin` as `/admin`: so do the rules (as
/// nginx's locations do), or a rule on `/admin` would be a rule on one spelling of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_are_judged_as_servers_read_them() {
    let o = Origin::start("o").await;
    let rules = "[access]\nrules = [\"admin\", \"dotfiles\"]\n\
        [[access_rules]]\nname = \"admin\"\npath_prefixes = [\"/admin\"]\n\
        [[access_rules]]\nname = \"dotfiles\"\npath_regex = '^/\\.env$'\nstatus = 404\n";
    let gh = boot(&format!("{rules}{}", one_route(&[&o]))).await;
    let from = [127, 0, 0, 1];
    let cases: &[(&str, u16)] = &[
        ("/%61dmin/users", 403),
        ("/%61%64%6D%69%6E", 403),
        ("//admin", 403),
        ("/x/../admin/", 403),
        ("/./admin", 403),
        ("/static/..%2Fadmin", 403),
        ("http://site.test/%61dmin", 403),
        ("/%2e%65nv", 404),
        ("/a/../.env?x=1", 404),
        ("/%62dmin", 200),
        ("/%2561dmin", 200), // decoded once, as servers do: "/%61dmin" is not "/admin"
        ("/x/.env", 200),
    ];
    for (path, want) in cases {
        let got = ask(from, gh.addr, ("GET", "site.test", path), "").await;
        assert_eq!(got, *want, "{path}");
    }
    assert_eq!(
        o.hits(),
        3,
        "only the three allowed requests reached the server"
    );
    assert_eq!(refused(&gh, "admin").await, 7.0);
}

/// A route's rules meet its requests however they spell the route's prefix or host: the
/// router reads the path as the rules do, and the host as nginx does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_cannot_be_dodged_by_spelling_its_path_or_host_another_way() {
    let o = Origin::start("o").await;
    let gh = boot(&format!(
        "{}[[routes]]\npath_prefix = \"/internal\"\npool = \"web\"\n\
         [[routes.access_rules]]\nname = \"closed\"\n\
         [[routes]]\nhosts = [\"admin.test\"]\npool = \"web\"\n\
         [[routes.access_rules]]\nname = \"admins\"\nallow_cidrs = [\"127.0.0.3\"]\n\
         [[routes]]\npool = \"web\"\n",
        unchecked_pool("web", &[&o])
    ))
    .await;
    let from = [127, 0, 0, 4];
    for path in [
        "/internal/x",
        "/%69nternal/x",
        "//internal/x",
        "/./internal/x",
        "/x/../internal/x",
    ] {
        let got = ask(from, gh.addr, ("GET", "www.test", path), "").await;
        assert_eq!(got, 403, "{path}");
    }
    let got = ask(from, gh.addr, ("GET", "www.test", "/internal/../x"), "").await;
    assert_eq!(
        got, 200,
        "/internal/../x is /x to servers, not the closed route"
    );
    // Read as Tomcat (`..;`) or IIS (`\\`) do, these are on the closed route; as others do,
    // on the open one: refused (400), as Spring refuses them.
    for path in [
        "/x/..;/internal/x",
        "/x\\..\\internal\\x",
        "/internal/..;/x",
    ] {
        let got = ask(from, gh.addr, ("GET", "www.test", path), "").await;
        assert_eq!(got, 400, "{path}");
    }
    for host in [
        "admin.test",
        "admin.test:80:80",
        "ADMIN.test.",
        "admin.test:8080",
    ] {
        let got = ask(from, gh.addr, ("GET", host, "/"), "").await;
        assert_eq!(got, 403, "Host: {host}");
    }
    assert_eq!(
        ask(
            [127, 0, 0, 3],
            gh.addr,
            ("GET", "admin.test:80:80", "/"),
            ""
        )
        .await,
        200
    );
    assert_eq!(o.hits(), 2);
    assert_eq!(refused(&gh, "closed").await, 5.0);
}

/// What Tomcat, IIS and CGI-style servers read differently: `;parameters` dropped, `\\` for
/// `/`, `User_Agent` for `User-Agent`; and methods in any case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readings_of_lenient_servers_are_refused_too() {
    let o = Origin::start("o").await;
    let rules = "[access]\nrules = [\"methods\", \"admin\", \"dotfiles\", \"scanner\"]\n\
        [[access_rules]]\nname = \"methods\"\nmethods = [\"TRACE\"]\nstatus = 405\n\
        [[access_rules]]\nname = \"admin\"\npath_prefixes = [\"/admin\"]\n\
        [[access_rules]]\nname = \"dotfiles\"\npath_regex = '/\\.git(/|$)'\nstatus = 404\n\
        [[access_rules]]\nname = \"scanner\"\nheader = \"User-Agent\"\nheader_regex = \"(?i)sqlmap\"\n";
    let gh = boot(&format!("{rules}{}", one_route(&[&o]))).await;
    let from = [127, 0, 0, 1];
    let cases: &[((&str, &str), &str, u16)] = &[
        (("GET", "/x/..;/admin"), "", 403),
        (("GET", "/.;/admin"), "", 403),
        (("GET", "/x/..%3b/admin"), "", 403),
        (("GET", "/x\\..\\admin"), "", 403),
        (("GET", "/%5cadmin"), "", 403),
        (("GET", "/.git;/config"), "", 404),
        (("GET", "/x"), "User_Agent: sqlmap/1.7\r\n", 403),
        (("trace", "/x"), "", 405),
        (("GET", "/x;v=1"), "", 200),
        (("GET", "/admins;x/../y"), "", 200),
    ];
    for ((method, path), extra, want) in cases {
        let got = ask(from, gh.addr, (method, "site.test", path), extra).await;
        assert_eq!(got, *want, "{method} {path} {extra:?}");
    }
    assert_eq!(o.hits(), 2);
}
