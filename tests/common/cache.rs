//! A caching gatehouse, and a GET that reads what its cache said (X-Cache, Age).

use super::{boot, one_route, Origin, Proxy};

/// Boots gatehouse caching `origin` on one route with `route_cache` rules and `[cache]` options.
pub async fn cached(origin: &Origin, route_cache: &str, cache: &str) -> Proxy {
    boot(&format!(
        "[cache]\n{cache}\n{}[routes.cache]\n{route_cache}\n",
        one_route(&[origin])
    ))
    .await
}

/// What a GET got, and what the cache said of it.
pub struct Got {
    pub status: u16,
    pub x_cache: String,
    pub age: Option<u64>,
    pub body: String,
}

/// GET `url` with `headers`.
pub async fn fetch(c: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = c.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
    Got {
        status: r.status().as_u16(),
        x_cache: r
            .headers()
            .get("x-cache")
            .map_or(String::new(), |v| v.to_str().unwrap().into()),
        age: r
            .headers()
            .get("age")
            .and_then(|v| v.to_str().ok()?.parse().ok()),
        body: r.text().await.unwrap(),
    }
}
