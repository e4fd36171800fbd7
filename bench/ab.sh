#!/usr/bin/env bash
# A/B of two gatehouse binaries on HTTP/1.1 keep-alive pass-through: CPU per request of each,
# interleaved in the same minutes (A, B, A, B...), the proxy pinned to CPU 1 and the origin
# and load generator to CPU 0. The figure for one hot-path change (a vendor/ patch) where
# `bench/run.sh` compares against HAProxy/nginx/Varnish.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY [ROUNDS]      e.g. ROUNDS=4, 40 000 requests, 32 connections
#   OLD_SERVER='direct_exchange = false' bench/ab.sh BIN BIN   one binary, two [server] settings
#   PROTO=h2 bench/ab.sh OLD NEW     HTTP/2 over TLS instead (h2load, 10 streams per connection)
#
# The route does not cache (as `bench/run.sh pass`): GETs take the direct exchange unless
# a side sets `direct_exchange = false`.
# CPU is utime+stime of the proxy process from /proc (1/CLK_TCK resolution, ~0.3% here).
# Needs h2load (nghttp2-client), taskset (util-linux) and, for h2, openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,16p' "$0"; exit 2; }
old=$(realpath "$1") new=$(realpath "$2") rounds=${3:-4} n=${N:-40000} conns=${CONNS:-32}
proto=${PROTO:-h1}
scripts/install-deps.sh h2load:nghttp2-client taskset:util-linux openssl
cargo build --release --example demo-origin >/dev/null 2>&1
work=$(mktemp -d /tmp/gatehouse-ab.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
tls="" url=http://127.0.0.1:18471/health load=(--h1)
case $proto in
  h1) ;;
  h2)
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
      -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
    tls="[[listeners.tls.certificates]]
cert = \"$work/cert.pem\"
key = \"$work/key.pem\""
    url=https://127.0.0.1:18471/health load=(-m 10) ;;
  *) echo "PROTO is h1 or h2" >&2; exit 2 ;;
esac
for side in old new; do
  extra=${OLD_SERVER:-}; [ "$side" = new ] && extra=${NEW_SERVER:-}
  cat > "$work/$side.toml" <<CONF
[server]
$extra
threads = 1
state_dir = "$work"
grace_period = "0s"
shutdown_timeout = "1s"
[admin]
address = "127.0.0.1:19471"
[[listeners]]
address = "127.0.0.1:18471"
$tls
[pools.web]
servers = [{ name = "a", address = "127.0.0.1:18472" }]
[[routes]]
pool = "web"
[routes.cache]
enabled = false
[access_log]
enabled = false
CONF
done
taskset -c 0 target/release/examples/demo-origin 18472 >/dev/null 2>&1 &
sleep 0.5
tck=$(getconf CLK_TCK)
for round in $(seq 1 "$rounds"); do
  for side in old new; do
    bin=$old; [ "$side" = new ] && bin=$new
    taskset -c 1 "$bin" run -c "$work/$side.toml" > "$work/$side.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/18471) 2>/dev/null && break; sleep 0.05; done
    kill -0 "$pid" 2>/dev/null || { echo "$side did not start:" >&2; cat "$work/$side.log" >&2; exit 1; }
    taskset -c 0 h2load "${load[@]}" -n 2000 -c "$conns" "$url" >/dev/null 2>&1   # warm-up
    a=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    taskset -c 0 h2load "${load[@]}" -n "$n" -c "$conns" "$url" > "$work/load" 2>&1
    b=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    grep -q " 0 failed" "$work/load" || { cat "$work/load" >&2; exit 1; }
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$side $(python3 -c "print(round(($b - $a) / $tck / $n * 1e6, 2))")" | tee -a "$work/results"
  done
done
python3 - "$work/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {s: statistics.median(float(v) for k, v in rows if k == s) for s in ("old", "new")}
print(f"median CPU µs per request: old {med['old']:.1f}, new {med['new']:.1f} "
      f"(new/old {med['new'] / med['old']:.3f})")
PY
