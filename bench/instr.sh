#!/usr/bin/env bash
# Instructions per request under callgrind: the stable A/B figure on a VM whose time drifts.
# For each scenario, gatehouse runs twice under `valgrind --tool=callgrind`, serving N then 2N
# requests (h2load, 8 connections, after a 50-request warm-up); (Ir(2N) - Ir(N)) / N is the
# marginal cost of one request, start-up and shutdown cancelling out. HAProxy is measured the
# same way on pass, tls and h2, as their anchor.
#
#   bench/instr.sh [SCENARIO ...]     default: pass hit1k tls h2      N=2000 bench/instr.sh
#   (and on request: close, plain HTTP/1.1 with a new connection per request)
#
# BIN=path measures another gatehouse binary (an A/B against an earlier build): both built
# the same way (`cargo build --release` without CARGO_INCREMENTAL: an incremental build's code
# runs thousands of instructions more per request).
# STREAMS=10 runs h2 with 10 concurrent streams per connection (as `bench/run.sh` does); the
# default is one.
# GH_EXTRA=file appends that TOML to gatehouse's config (e.g. access rules that never refuse,
# bench/access-rules.toml, to measure what checking them costs).
#
# Needs valgrind, h2load (nghttp2-client), haproxy, nginx (the origin). About a minute per run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
N=${N:-2000}
bin=${BIN:-$root/target/release/gatehouse}
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(pass hit1k tls h2)
scripts/install-deps.sh valgrind h2load:nghttp2-client haproxy nginx openssl curl
cargo build --release --bin gatehouse >/dev/null 2>&1 || cargo build --release --bin gatehouse

work=$(mktemp -d /tmp/gatehouse-instr.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www" "$work/gh-state"
chmod 755 "$work" "$work/www"
printf '%*s' 1024 '' | tr ' ' a > "$work/www/1k"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat "$work/cert.pem" "$work/key.pem" > "$work/cert-key.pem"
render() { sed -e "s|__DIR__|$work|g" -e "s|__CACHE__|$2|g" "$root/bench/$1"; }
render nginx-origin.conf x > "$work/origin.conf"
nginx -c "$work/origin.conf" &
sleep 0.5

# ir REQUESTS URL PROTO COMMAND...: total instructions of COMMAND serving REQUESTS requests.
ir() {
  local reqs=$1 url=$2 proto=$3 out="$work/cg.$RANDOM" pid port
  shift 3
  port=$(sed -E 's#^[a-z]+://[^:]+:([0-9]+).*#\1#' <<<"$url")
  valgrind --tool=callgrind --callgrind-out-file="$out" "$@" > "$work/vg.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.2; done
  h2load $proto -n 50 -c 1 "$url" > /dev/null 2>&1 || true
  h2load $proto -n "$reqs" -c 8 "$url" > "$work/load.out" 2>&1
  grep -q " $reqs succeeded" "$work/load.out" || { echo "not every request succeeded:" >&2; cat "$work/load.out" >&2; }
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'
}

per_request() { # URL PROTO COMMAND...
  local a b
  a=$(ir "$N" "$@"); b=$(ir $((2 * N)) "$@")
  awk -v a="$a" -v b="$b" -v n="$N" 'BEGIN { printf "%.0f", (b - a) / n }'
}

printf 'scenario\ttarget\tinstructions_per_request\n'
for s in "${scenarios[@]}"; do
  cache=false; url=http://127.0.0.1:18080/1k; proto=--h1
  case $s in
    hit1k) cache=true ;;
    tls) url=https://127.0.0.1:18443/1k ;;
    h2) url=https://127.0.0.1:18443/1k; proto="-m ${STREAMS:-1}" ;;
    close) proto="--h1 -H connection:close" ;; # a new connection per request
  esac
  render gatehouse.toml "$cache" > "$work/gh.toml"
  [ -z "${GH_EXTRA:-}" ] || cat "$GH_EXTRA" >> "$work/gh.toml"
  printf '%s\tgatehouse\t%s\n' "$s" "$(RUST_LOG=error per_request "$url" "$proto" "$bin" run -c "$work/gh.toml")"
  if [ "$s" != hit1k ]; then # HAProxy: the anchor of pass, tls and h2
    render haproxy.cfg x > "$work/haproxy.cfg"
    printf '%s\thaproxy\t%s\n' "$s" "$(per_request "$url" "$proto" haproxy -f "$work/haproxy.cfg" -db)"
  fi
done
