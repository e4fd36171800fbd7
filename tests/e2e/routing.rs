//! Routing by host (exact, wildcard, default) and longest path prefix.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_path_prefix_select_the_pool() {
    let default = Origin::start("default").await;
    let api = Origin::start("api").await;
    let shop = Origin::start("shop").await;
    let wild = Origin::start("wild").await;
    let body = format!(
        "{}{}{}{}\
         [[routes]]\npool = \"default\"\n\
         [[routes]]\npath_prefix = \"/api\"\npool = \"api\"\n\
         [[routes]]\nhosts = [\"shop.test\"]\npool = \"shop\"\n\
         [[routes]]\nhosts = [\"*.wild.test\"]\npool = \"wild\"\n",
        unchecked_pool("default", &[&default]),
        unchecked_pool("api", &[&api]),
        unchecked_pool("shop", &[&shop]),
        unchecked_pool("wild", &[&wild]),
    );
    let gh = boot(&body).await;
    let c = client();
    assert_eq!(get(&c, &gh.url("/")).await, (200, "default".into()));
    assert_eq!(get(&c, &gh.url("/api/users")).await, (200, "api".into()));
    assert_eq!(
        get_host(&c, &gh.url("/"), "shop.test").await,
        (200, "shop".into())
    );
    assert_eq!(
        get_host(&c, &gh.url("/x"), "SHOP.test:8080").await,
        (200, "shop".into())
    );
    // A host route has no /api prefix of its own: its "/" route takes it.
    assert_eq!(
        get_host(&c, &gh.url("/api"), "shop.test").await,
        (200, "shop".into())
    );
    assert_eq!(
        get_host(&c, &gh.url("/"), "a.wild.test").await,
        (200, "wild".into())
    );
    assert_eq!(
        get_host(&c, &gh.url("/"), "wild.test").await,
        (200, "default".into())
    );
    assert_eq!(
        get_host(&c, &gh.url("/api"), "other.test").await,
        (200, "api".into())
    );
    assert_eq!(
        (default.hits(), api.hits(), shop.hits(), wild.hits()),
        (2, 2, 3, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_host_without_default_route_is_404() {
    let o = Origin::start("o").await;
    let body = format!(
        "{}[[routes]]\nhosts = [\"known.test\"]\npool = \"web\"\n",
        unchecked_pool("web", &[&o])
    );
    let gh = boot(&body).await;
    let c = client();
    let (status, text) = get_host(&c, &gh.url("/"), "unknown.test").await;
    assert_eq!(status, 404);
    assert!(text.contains("no route"), "{text}");
    assert_eq!(get_host(&c, &gh.url("/"), "known.test").await.0, 200);
    assert_eq!(o.hits(), 1);
}
