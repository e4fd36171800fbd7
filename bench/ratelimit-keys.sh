#!/usr/bin/env bash
# A rate limit's table under a million distinct keys: gatehouse counts every request under its
# X-Key header (a new key each time, none ever drains: the worst case for the table's bound),
# and its RSS is read before and after KEYS requests, once with the default max_keys and once
# with max_keys above KEYS (what an unbounded table would hold).
#
#   bench/ratelimit-keys.sh          KEYS=1000000 bench/ratelimit-keys.sh
#
# Needs wrk, nginx (the origin), openssl and curl. A few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
KEYS=${KEYS:-1000000}
bin=${BIN:-$root/target/release/gatehouse}
scripts/install-deps.sh wrk nginx openssl curl
[ -n "${BIN:-}" ] || cargo build --release --bin gatehouse >/dev/null 2>&1
work=$(mktemp -d /tmp/gatehouse-keys.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www" "$work/gh-state"
chmod 755 "$work" "$work/www"
printf '%*s' 1024 '' | tr ' ' a > "$work/www/1k"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
sed -e "s|__DIR__|$work|g" -e "s|__CACHE__|x|g" bench/nginx-origin.conf > "$work/origin.conf"
nginx -c "$work/origin.conf" &
sleep 0.5
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

printf 'max_keys\tkeys_sent\trss_before_kib\trss_after_kib\tgrowth_kib\trefused\tevicted\n'
for max_keys in 100000 $((KEYS * 2)); do
  # bench's config, with the admin API on (for the counters).
  sed -e "s|__DIR__|$work|g" -e "s|__CACHE__|false|g" \
    -e '/^\[admin\]/{n;s/enabled = false/address = "127.0.0.1:19901"/}' \
    bench/gatehouse.toml > "$work/gh.toml"
  cat >> "$work/gh.toml" <<TOML
[access]
rate_limits = ["per-key"]
[[rate_limits]]
name = "per-key"
key = "header:X-Key"
rate = "1/1h"
max_keys = $max_keys
TOML
  RUST_LOG=error "$bin" run -c "$work/gh.toml" 2> "$work/gh.log" &
  gh=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/18080) 2>/dev/null && break; sleep 0.1; done
  curl -sf -o /dev/null -H 'X-Key: warm' http://127.0.0.1:18080/1k || { cat "$work/gh.log"; exit 1; }
  sleep 2
  before=$(rss_kib $gh)
  # wrk runs for time, not count: long enough for KEYS requests at the rate it reaches, then
  # the keys sent are read from its summary.
  out=$(wrk -t1 -c8 -d"$(( KEYS / 15000 + 5 ))s" -s bench/distinct-keys.lua http://127.0.0.1:18080/1k)
  sent=$(awk '/requests in/ { print $1 }' <<<"$out")
  sleep 2
  after=$(rss_kib $gh)
  metrics=$(curl -s http://127.0.0.1:19901/metrics)
  refused=$(awk -F' ' '/gatehouse_rate_limited_total\{limit="per-key",outcome="refused"\}/ { print $2 }' <<<"$metrics")
  evicted=$(awk -F' ' '/gatehouse_rate_limited_total\{limit="per-key",outcome="evicted"\}/ { print $2 }' <<<"$metrics")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$max_keys" "$sent" "$before" "$after" $((after - before)) "${refused:-0}" "${evicted:-0}"
  kill -TERM $gh; wait $gh 2>/dev/null || true
done
