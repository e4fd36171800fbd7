#!/usr/bin/env bash
# Compression's cost (issue 33): a 100 KiB HTML page compressed on the fly, gatehouse against
# nginx's `gzip on` at the same level (6), and gatehouse's br and zstd; then a cached
# compressed hit against an uncompressed 100 KiB hit. Method as run.sh's: the proxy pinned
# to CPU 1, the origin (nginx) and wrk (1 thread, CONNS connections) to CPU 0; targets
# interleaved REPS times, each after a 1 s warm-up, DURATION s measured; the figure is the
# proxy's CPU (user+sys ticks from /proc) per request, and the bytes on the wire per response.
#
#   bench/compress.sh            REPS=5 DURATION=6 bench/compress.sh
#
# Needs wrk, nginx, openssl and curl (installed from Debian when missing). A few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
REPS=${REPS:-5}
DURATION=${DURATION:-5}
CONNS=${CONNS:-8}
bin=${BIN:-$root/target/release/gatehouse}
scripts/install-deps.sh wrk nginx openssl curl
[ -n "${BIN:-}" ] || cargo build --release --bin gatehouse >/dev/null 2>&1
work=$(mktemp -d /tmp/gatehouse-compress.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www" "$work/gh-state"
chmod 755 "$work" "$work/www"
# 100 KiB of HTML-like rows, varied enough that gzip -6 gives about 5:1 (not 100:1).
python3 - "$work/www/page" <<'PY'
import sys
rows, i = [], 0
while sum(map(len, rows)) < 102400:
    rows.append(f'<tr class="r{i % 7}"><td>{i}</td><td><a href="/item/{i * 7919 % 100003}">'
                f'item {i * 2654435761 % 1000003}</a></td><td>{(i * 37) % 1000 / 10:.1f}</td></tr>\n')
    i += 1
open(sys.argv[1], "w").write("".join(rows)[:102400])
PY
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
sed -e "s|__DIR__|$work|g" bench/nginx-origin.conf > "$work/origin.conf"
taskset -c 0 nginx -c "$work/origin.conf" &
sleep 0.5

# gatehouse configs: bench's own, cache on or off, plus a [routes.compression] table.
gh_conf() { # name cache compression-lines...
  local name=$1 cache=$2; shift 2
  sed -e "s|__DIR__|$work|g" -e "s|__CACHE__|$cache|g" bench/gatehouse.toml > "$work/$name.toml"
  if [ $# -gt 0 ]; then
    printf '[routes.compression]\n' >> "$work/$name.toml"
    printf '%s\n' "$@" >> "$work/$name.toml"
  fi
}
gh_conf gh-gzip false 'preference = ["gzip"]' 'gzip_level = 6'
gh_conf gh-br false 'preference = ["br"]'
gh_conf gh-zstd false 'preference = ["zstd"]'
gh_conf gh-hit-gzip true 'cache_encoding = "gzip"' 'gzip_level = 6'
gh_conf gh-hit-plain true
gzip_lines='gzip on; gzip_comp_level 6; gzip_types text/plain; gzip_min_length 256; gzip_vary on;'
sed -e "s|__DIR__|$work|g" -e "s|__CACHE__|$gzip_lines|g" bench/nginx-proxy.conf > "$work/nginx-gzip.conf"

start() { # target → pid of the proxy
  case $1 in
    nginx-gzip) taskset -c 1 nginx -c "$work/nginx-gzip.conf" >/dev/null 2>&1 & ;;
    *) RUST_LOG=error taskset -c 1 "$bin" run -c "$work/$1.toml" >/dev/null 2> "$work/$1.log" & ;;
  esac
  local pid=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/18080) 2>/dev/null && break; sleep 0.1; done
  echo $pid
}
ticks() { # user+sys of a proxy and its children (nginx's workers)
  local t=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
  done
  echo $t
}
accept_of() { case $1 in *plain) echo "identity" ;; *br) echo "br" ;; *zstd) echo "zstd" ;; *) echo "gzip" ;; esac; }

targets=(nginx-gzip gh-gzip gh-br gh-zstd gh-hit-gzip gh-hit-plain)
printf 'target\trep\trequests\tcpu_us_per_req\tbytes_per_resp\tp50_ms\tp99_ms\n' > "$work/runs.tsv"
for rep in $(seq 1 "$REPS"); do
  for t in "${targets[@]}"; do
    pid=$(start "$t")
    ae=$(accept_of "$t")
    bytes=$(curl -s -o /dev/null -w '%{size_download}' -H "Accept-Encoding: $ae" http://127.0.0.1:18080/page)
    taskset -c 0 wrk -t1 -c"$CONNS" -d1s -H "Accept-Encoding: $ae" http://127.0.0.1:18080/page >/dev/null
    before=$(ticks "$pid")
    out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "Accept-Encoding: $ae" http://127.0.0.1:18080/page)
    after=$(ticks "$pid")
    reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    cpu=$(awk -v t=$((after - before)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$rep" "$reqs" "$cpu" "$bytes" "$p50" "$p99" >> "$work/runs.tsv"
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    sleep 0.3
  done
done
cat "$work/runs.tsv"
echo
echo "medians:"
for t in "${targets[@]}"; do
  awk -F'\t' -v t="$t" '$1 == t { print $4 }' "$work/runs.tsv" | sort -n |
    awk -v t="$t" '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s\t%.1f us/req\n", t, m }'
done
