//! Property tests (bounded): nothing in the config loader or the cache key and policy code may
//! panic, whatever the input.

use proptest::prelude::*;

const VALID: &str =
    "[[listeners]]\naddress = \"127.0.0.1:8080\"\n[pools.web.health]\npath = \"/h\"\n\
[[pools.web.servers]]\nname = \"a\"\naddress = \"127.0.0.1:8001\"\nweight = 2\n\
[[routes]]\nhosts = [\"*.example.com\"]\npool = \"web\"\n[routes.cache]\ndefault_ttl = \"1m\"\n\
[cache]\nmax_size = \"1m\"\n[limits]\nmax_headers = 50\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_a_config_or_a_list_of_errors(text in "\\PC{0,400}") {
        if let Err(e) = gatehouse::Config::from_toml(&text, "fuzz") {
            prop_assert!(!e.errors.is_empty());
            let _ = e.to_string();
        }
    }

    #[test]
    fn a_mutated_valid_config_never_panics(pos in 0usize..400, insert in "[\\x00-\\x7f]{0,8}", cut in 0usize..20) {
        let mut text = VALID.to_string();
        let pos = pos.min(text.len());
        let pos = (0..=pos).rev().find(|p| text.is_char_boundary(*p)).unwrap_or(0);
        let end = (pos + cut).min(text.len());
        let end = (end..=text.len()).find(|p| text.is_char_boundary(*p)).unwrap_or(text.len());
        text.replace_range(pos..end, &insert);
        if let Err(e) = gatehouse::Config::from_toml(&text, "fuzz") {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn cache_keys_and_policy_never_panic(
        host in "\\PC{0,60}",
        path in "/[!-~]{0,80}",
        cc in "[ -~]{0,60}",
        vary in "[ -~]{0,40}",
        ae in "[ -~]{0,40}",
    ) {
        let config = gatehouse::Config::from_toml(VALID, "fuzz").unwrap();
        let rules = config.routes[0].cache.clone().unwrap();
        if let Ok(uri) = path.parse::<http::Uri>() {
            let _ = gatehouse::cache::Cache::key(false, &host, &uri, &rules);
        }
        let _ = gatehouse::cache::key::normalize_accept_encoding(ae.as_bytes());
        let mut resp = pingora::http::ResponseHeader::build(200, None).unwrap();
        if let Ok(v) = http::HeaderValue::from_str(&cc) {
            resp.insert_header("cache-control", v).unwrap();
        }
        if let Ok(v) = http::HeaderValue::from_str(&vary) {
            resp.insert_header("vary", v).unwrap();
        }
        let _ = gatehouse::cache::policy::response(&resp, &rules, 1 << 20, None, std::time::Duration::ZERO);
    }
}
