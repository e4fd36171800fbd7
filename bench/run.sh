#!/usr/bin/env bash
# Gatehouse against HAProxy, nginx and Varnish on loopback, per core.
#
#   bench/run.sh [SCENARIO ...]    default: all of
#       pass pass8 pass128 hit1k hit100k tls handshake resume h2 zipf chain idle log
#   and on request: idle-burst idle-tls idle-h2 (see the summary's idle section), slow slow-h2
#   (SLOW_CONNS=200 readers of a 10 MiB response for SLOW_SECONDS=20, RSS SLOW_SETTLE=60 s after)
#   REPS=3 DURATION=6 WARMUP=1 CONNS=32 IDLE_CONNS=9000 ZIPF_KEYS=1000000 bench/run.sh
#
# For each scenario, targets run interleaved (A B C A B C ...), REPS times each. The proxy is
# pinned to CPU 1, the origin (nginx, fixed files) and the load generator (wrk, h2load) to
# CPU 0. The primary figure is the proxy's CPU microseconds per request (user+sys of its
# processes from /proc, before and after, over requests completed), also as a ratio to the
# origin's CPU per request in the same run. Each run records the hypervisor's steal time and
# the CPU used by other processes; a run where either exceeds 3% of the machine is marked noisy
# and left out of the medians (unless every run of that line is). `idle` (and idle-*, slow*)
# report the proxy's memory instead of CPU, REPS runs each.
# Results: stdout and bench/results/<date>-<host>[-N].md (or RESULTS=path).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
REPS=${REPS:-3}
DURATION=${DURATION:-6}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-32}
IDLE_CONNS=${IDLE_CONNS:-9000}
SLOW_CONNS=${SLOW_CONNS:-200}
SLOW_SECONDS=${SLOW_SECONDS:-20}
SLOW_SETTLE=${SLOW_SETTLE:-60}
export ZIPF_KEYS=${ZIPF_KEYS:-1000000}
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(pass pass8 pass128 hit1k hit100k tls handshake resume h2 zipf chain idle log)

scripts/install-deps.sh haproxy varnishd:varnish nginx wrk h2load:nghttp2-client \
  taskset:util-linux openssl curl python3
cargo build --release --bin gatehouse >/dev/null 2>&1 || cargo build --release --bin gatehouse
[ "$(nproc)" -ge 2 ] || { echo "needs 2 cores" >&2; exit 1; }
ulimit -n 100000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www" "$work/gh-state"
chmod 755 "$work" "$work/www" # nginx workers run as nobody: they must read the files
printf '%*s' 1024 '' | tr ' ' a > "$work/www/1k"
printf '%*s' 102400 '' | tr ' ' b > "$work/www/100k"
head -c 10485760 /dev/zero > "$work/www/10m"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat "$work/cert.pem" "$work/key.pem" > "$work/cert-key.pem"
render() { sed -e "s|__DIR__|$work|g" -e "s|__CACHE__|$2|g" "$root/bench/$1"; }

render nginx-origin.conf x > "$work/origin.conf"
taskset -c 0 nginx -c "$work/origin.conf" &
sleep 0.5
origin_pid=$(cat "$work/origin.pid")
family() { echo "$1 $(pgrep -P "$1" | tr '\n' ' ')"; } # a process and its children
uniq_pids() { tr ' ' '\n' | grep -E '^[0-9]+$' | sort -un | tr '\n' ' '; } # each pid once
origin_pids=$(family "$origin_pid")
[ "$(curl -sf -o /dev/null -w '%{size_download}' http://127.0.0.1:19001/1k)" = 1024 ] ||
  { echo "the origin does not serve /1k" >&2; exit 1; }

ticks() { # user+sys clock ticks of the given pids
  local t=0
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo $t
}
kib() { # sum of a /proc status field (VmRSS, VmHWM) over pids, in KiB
  local field=$1 t=0; shift
  for p in "$@"; do
    [ -r "/proc/$p/status" ] || continue
    t=$((t + $(awk -v f="$field:" '$1==f{print $2}' "/proc/$p/status")))
  done
  echo $t
}
machine() { awk '/^cpu /{print $2+$3+$4+$7+$8, $9}' /proc/stat; } # busy ticks, steal ticks
hz=$(getconf CLK_TCK)

cache_for() { case $1 in hit*|zipf|chain) echo true;; *) echo false;; esac; }
conns_for() { case $1 in pass8) echo 8;; pass128) echo 128;; *) echo "$CONNS";; esac; }
targets_for() {
  case $1 in
    pass|pass8|pass128) echo "origin gatehouse haproxy nginx";;
    # The stack gatehouse replaces (nginx TLS -> Varnish -> HAProxy -> origin), CPU summed.
    chain) echo "gatehouse chain";;
    log) echo "gatehouse gatehouse+log haproxy haproxy+log";; # pass-through, one UDP record each
    hit*|zipf) echo "gatehouse nginx varnish";;
    *) echo "gatehouse haproxy nginx";;
  esac
}
url_for() { # scenario target
  local port=18080; [ "$2" = origin ] && port=19001
  case $1 in
    tls|handshake|resume|h2|chain) echo "https://127.0.0.1:18443/1k";;
    hit100k) echo "http://127.0.0.1:$port/100k";;
    zipf) echo "http://127.0.0.1:$port/";;
    *) echo "http://127.0.0.1:$port/1k";;
  esac
}

LOG_PORT=19514
# A syslog receiver on CPU 0 counting datagrams (started for the "+log" targets).
start_receiver() {
  rm -f "$work/received" "$work/received.ready"
  taskset -c 0 python3 "$root/bench/udp_count.py" "$LOG_PORT" "$work/received" &
  receiver_pid=$!
  for _ in $(seq 1 100); do [ -f "$work/received.ready" ] && return 0; sleep 0.05; done
  echo "the UDP receiver did not start" >&2; return 1
}
stop_receiver() { # prints the datagrams received
  kill "$receiver_pid" 2>/dev/null || true; wait "$receiver_pid" 2>/dev/null || true
  cat "$work/received" 2>/dev/null || echo 0
}

start_target() { # target scenario -> sets target_pids
  local cache; cache=$(cache_for "$2")
  target_pids=""
  case $1 in
    origin) return 0;;
    gatehouse|gatehouse+log)
      render gatehouse.toml "$cache" > "$work/gh.toml"
      if [ "$1" = gatehouse+log ]; then
        start_receiver
        printf '[[access_log.targets]]\ntransport = "udp"\naddress = "127.0.0.1:%s"\nformat = "rfc5424"\n' "$LOG_PORT" >> "$work/gh.toml"
      fi
      RUST_LOG=error taskset -c 1 "$root/target/release/gatehouse" run -c "$work/gh.toml" 2>/dev/null &
      target_pids=$! ;;
    haproxy|haproxy+log)
      render haproxy.cfg x > "$work/haproxy.cfg"
      if [ "$1" = haproxy+log ]; then
        start_receiver
        sed -i -e "s|^global|global\n    log 127.0.0.1:$LOG_PORT local0|" \
          -e 's|^defaults|defaults\n    log global\n    option httplog|' "$work/haproxy.cfg"
      fi
      taskset -c 1 haproxy -f "$work/haproxy.cfg" -db 2>/dev/null &
      target_pids=$! ;;
    nginx)
      local c=""; [ "$cache" = true ] && c="proxy_cache c; proxy_cache_valid 200 1h;"
      rm -rf "$work/nginx-cache" # a cold cache for every run; nginx creates it for its workers
      render nginx-proxy.conf "$c" > "$work/proxy.conf"
      taskset -c 1 nginx -c "$work/proxy.conf" &
      sleep 0.3; target_pids=$(family "$(cat "$work/proxy.pid")") ;;
    chain) # all three on the proxy's core, as gatehouse has one core
      render chain-haproxy.cfg x > "$work/chain-haproxy.cfg"
      taskset -c 1 haproxy -f "$work/chain-haproxy.cfg" -db 2>/dev/null &
      local hp=$!
      taskset -c 1 varnishd -F -a 127.0.0.1:18081 -f "$root/bench/chain-varnish.vcl" -n "$work/chain-varnish" \
        -s malloc,2g -p thread_pools=1 -p thread_pool_min=10 >/dev/null 2>&1 &
      local vp=$!
      render chain-nginx.conf x > "$work/chain-nginx.conf"
      taskset -c 1 nginx -c "$work/chain-nginx.conf" &
      sleep 1
      target_pids=$(echo "$hp $vp $(pgrep -f "varnishd.*$work/chain-varnish" | tr '\n' ' ') $(family "$(cat "$work/chain-nginx.pid")")" | uniq_pids) ;;
    varnish)
      taskset -c 1 varnishd -F -a 127.0.0.1:18080 -f "$root/bench/varnish.vcl" -n "$work/varnish" \
        -s malloc,2g -p thread_pools=1 -p thread_pool_min=10 >/dev/null 2>&1 &
      sleep 1; target_pids=$(echo "$! $(pgrep -f "varnishd.*$work/varnish" | tr '\n' ' ')" | uniq_pids) ;;
  esac
  local size
  for _ in $(seq 1 100); do
    size=$(curl -sf -m 1 -o /dev/null -w '%{size_download}' "http://127.0.0.1:18080/1k" || true)
    [ "$size" = 1024 ] && return 0
    sleep 0.05
  done
  echo "$1 did not start or does not answer GET /1k with the 1 KiB file" >&2; return 1
}
stop_target() {
  [ -n "$target_pids" ] || return 0
  kill $target_pids 2>/dev/null || true; sleep 0.5; kill -9 $target_pids 2>/dev/null || true
  wait $target_pids 2>/dev/null || true
}

# h2_percentiles LOG: p50 and p99 latency of an h2load request log ("- -" when empty).
h2_percentiles() {
  taskset -c 0 awk -F'\t' '{print $3}' "$1" | taskset -c 0 sort -n | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "- -"; exit }
      a = int(NR * 0.5); if (a < 1) a = 1; b = int(NR * 0.99); if (b < 1) b = 1
      printf "%.2fms %.2fms\n", v[a] / 1000, v[b] / 1000
    }'
}

# load SCENARIO URL SECONDS: runs the load generator on CPU 0; sets reqs errors rps p50 p99
# lg_ticks (its CPU).
load() {
  local s=$1 url=$2 secs=$3 out
  case $s in
    resume)
      # Resumed TLS 1.2 handshakes (session tickets), one connection at a time, no request:
      # openssl s_time marks each connection 'r' (resumed) or '*' (full); a full one after
      # the first counts as an error. (s_time cannot resume TLS 1.3: it keeps the session
      # before the post-handshake ticket arrives.)
      ( taskset -c 0 openssl s_time -connect 127.0.0.1:18443 -reuse -tls1_2 -time "$secs" > "$work/load.out" 2>&1; times > "$work/times" ) || true
      out=$(cat "$work/load.out")
      reqs=$(awk '/connections in .* real seconds/{n=$1} END{print n+0}' <<<"$out")
      errors=$(($(tr -cd '*' < "$work/load.out" | wc -c)))
      rps=$(awk -v n="$reqs" -v s="$secs" 'BEGIN{printf "%.0f", n / s}')
      p50=-; p99=-
      ;;
    h2)
      rm -f "$work/h2.log"
      # The percentiles are computed inside the measured subshell: sorting a run's request log
      # is the load generator's work, not noise on the machine (it used to flag h2 runs noisy).
      ( taskset -c 0 h2load -c"$CONNS" -m10 -D"$secs" --log-file="$work/h2.log" "$url" > "$work/load.out" 2>&1
        h2_percentiles "$work/h2.log" > "$work/h2.pct"; times > "$work/times" ) || true
      out=$(cat "$work/load.out")
      reqs=$(awk '/^requests:/{print $8}' <<<"$out")
      errors=$(awk '/^requests:/{print $2 - $8}' <<<"$out")
      rps=$(awk '/^finished in/{print $4}' <<<"$out")
      read -r p50 p99 < "$work/h2.pct"
      ;;
    *)
      local extra=()
      [ "$s" = handshake ] && extra=(-H "Connection: close")
      [ "$s" = zipf ] && extra=(-s "$root/bench/zipf.lua")
      ( taskset -c 0 wrk -t1 -c"$(conns_for "$s")" -d"${secs}s" --latency "${extra[@]}" "$url" > "$work/load.out" 2>&1; times > "$work/times" ) || true
      out=$(cat "$work/load.out")
      reqs=$(awk '/requests in/{print $1}' <<<"$out")
      rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
      p50=$(awk '$1=="50%"{print $2}' <<<"$out"); p99=$(awk '$1=="99%"{print $2}' <<<"$out")
      errors=$(awk '/Non-2xx/{e+=$NF} /Socket errors/{gsub(",", ""); e+=$4+$6+$8+$10} END{print e+0}' <<<"$out")
      ;;
  esac
  # `times`, second line: children's user and system time, e.g. "0m5.120s 0m1.010s".
  lg_ticks=$(awk -v hz="$hz" 'NR==2 { t=0; for (i=1;i<=2;i++) { split($i, a, /[ms]/); t+=a[1]*60+a[2] }; printf "%d", t*hz }' "$work/times")
  [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || { echo "no requests completed: $out" >&2; reqs=1; }
}

results="$work/results.tsv"
run_one() { # scenario target rep
  local s=$1 t=$2 rep=$3 url; url=$(url_for "$s" "$t")
  start_target "$t" "$s"
  load "$s" "$url" "$WARMUP"
  local warm=$reqs rpids=""
  case $t in *+log) rpids=$receiver_pid;; esac
  local p0 o0 m0 st0 p1 o1 m1 st1 r0 r1
  p0=$(ticks $target_pids); o0=$(ticks $origin_pids); r0=$(ticks $rpids); read -r m0 st0 < <(machine)
  load "$s" "$url" "$DURATION"
  p1=$(ticks $target_pids); o1=$(ticks $origin_pids); r1=$(ticks $rpids); read -r m1 st1 < <(machine)
  local hwm; hwm=$(kib VmHWM $target_pids)
  stop_target
  # Records received per request answered (warm-up included); "-" without a log.
  local received=-
  case $t in *+log) received=$(awk -v r="$(stop_receiver)" -v n="$((warm + reqs))" 'BEGIN { printf "%.4f", r / n }');; esac
  local proxy=$((p1 - p0)) origin=$((o1 - o0)) steal=$((st1 - st0))
  # The syslog receiver's CPU is part of the setup, not noise.
  local others=$((m1 - m0 - proxy - origin - lg_ticks - (r1 - r0))); [ $others -ge 0 ] || others=0
  local budget=$((DURATION * hz * 2 * 3 / 100)) noisy=0
  { [ $steal -gt $budget ] || [ $others -gt $budget ]; } && noisy=1
  [ $((errors * 100)) -gt "$reqs" ] && noisy=2 # over 1% failed requests: not a valid run
  awk -v s="$s" -v t="$t" -v rep="$rep" -v p="$proxy" -v o="$origin" -v n="$reqs" -v hz="$hz" \
      -v rps="$rps" -v p50="$p50" -v p99="$p99" -v st="$steal" -v ot="$others" -v noisy="$noisy" -v hwm="$hwm" -v err="$errors" -v rcv="$received" \
    'BEGIN { us = p*1e6/hz/n; ous = o*1e6/hz/n
             printf "%s\t%s\t%s\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%.0f\t%d\t%s\n", s, t, rep, us, ous,
               (ous > 0 && t != "origin") ? sprintf("%.2f", us/ous) : "-", rps, p50, p99, st, ot, noisy, hwm/1024, err, rcv }' \
    | tee -a "$results"
}

is_idle() { case $1 in idle|idle-*) return 0;; *) return 1;; esac; }
idle_one() { # scenario target rep
  local s=$1 t=$2 rep=$3 port=18080 shape=h1 batch=500
  case $s in
    idle-tls) port=18443; shape=tls-h1;;
    idle-h2) port=18443; shape=tls-h2;;
    idle-burst) batch=0;; # every connection opened at once
  esac
  start_target "$t" idle
  for _ in 1 2 3; do curl -sk -o /dev/null "http://127.0.0.1:18080/1k"; done
  local before; before=$(kib VmRSS $target_pids)
  mkfifo "$work/hold"
  IDLE_BATCH=$batch taskset -c 0 python3 "$root/bench/idle.py" 127.0.0.1 $port "$IDLE_CONNS" $shape \
    < "$work/hold" > "$work/idle.out" &
  local holder=$!
  exec 9>"$work/hold"
  for _ in $(seq 1 600); do grep -q ready "$work/idle.out" 2>/dev/null && break; sleep 0.1; done
  sleep 1
  local after opened; after=$(kib VmRSS $target_pids); opened=$(awk '/ready/{print $2}' "$work/idle.out")
  exec 9>&-
  wait $holder 2>/dev/null || true
  sleep 4 # what the proxy gives back once they are gone (gatehouse: within 1 s + its 2 s cycle)
  local left; left=$(kib VmRSS $target_pids)
  rm -f "$work/hold"
  stop_target
  [ -n "$opened" ] && [ "$opened" -gt 0 ] || opened=1
  awk -v s="$s" -v t="$t" -v r="$rep" -v b="$before" -v a="$after" -v n="$opened" -v l="$left" \
    'BEGIN { printf "%s\t%s\t%s\t%.2f\t-\t-\t%d\t-\t-\t0\t0\t0\t%.0f\t0\t%.0f\n", s, t, r, (a-b)/n, n, a/1024, l/1024 }' | tee -a "$results"
}

# Slow readers of /10m (`slow.py`): RSS before, its peak while they read, and SLOW_SETTLE s after
# they left.
slow_one() { # scenario target rep
  local s=$1 t=$2 rep=$3 port=18080 shape=tcp
  [ "$s" = slow-h2 ] && { port=18443; shape=h2; }
  start_target "$t" slow
  for _ in 1 2 3; do curl -s -o /dev/null "http://127.0.0.1:18080/1k"; done
  local before peak now; before=$(kib VmRSS $target_pids); peak=$before
  taskset -c 0 python3 "$root/bench/slow.py" 127.0.0.1 $port "$SLOW_CONNS" "$SLOW_SECONDS" $shape \
    > "$work/slow.out" 2> "$work/slow.err" &
  local readers=$!
  while kill -0 $readers 2>/dev/null; do
    now=$(kib VmRSS $target_pids); [ "$now" -gt "$peak" ] && peak=$now
    sleep 0.2
  done
  sleep "$SLOW_SETTLE"
  now=$(kib VmRSS $target_pids)
  stop_target
  awk -v s="$s" -v t="$t" -v r="$rep" -v b="$before" -v p="$peak" -v a="$now" \
    -v n="$(awk '/started/{print $2}' "$work/slow.out")" \
    'BEGIN { printf "%s\t%s\t%s\t%.1f\t-\t-\t%d\t-\t-\t0\t0\t0\t%.1f\t0\t%.1f\n", s, t, r, b/1024, n, p/1024, a/1024 }' | tee -a "$results"
}

started=$(date +%s)
printf 'scenario\ttarget\trep\tproxy_us_per_req\torigin_us_per_req\tratio\treq_s\tp50\tp99\tsteal\tothers\tnoisy\tpeak_rss_mb\terrors\tlog_received_per_req\n'
for s in "${scenarios[@]}"; do
  if [ "$s" = slow ] || [ "$s" = slow-h2 ]; then
    for rep in $(seq 1 "$REPS"); do
      for t in $(targets_for slow); do slow_one "$s" "$t" "$rep"; done
    done
    continue
  fi
  if is_idle "$s"; then
    for rep in $(seq 1 "$REPS"); do
      for t in $(targets_for idle); do idle_one "$s" "$t" "$rep"; done
    done
    continue
  fi
  for rep in $(seq 1 "$REPS"); do
    for t in $(targets_for "$s"); do run_one "$s" "$t" "$rep"; done
  done
done
elapsed=$(( $(date +%s) - started ))

# A section of the summary for the raw lines starting with PREFIX, if there are any: its
# title, its table's header row, the lines of text before it, and summary.awk's MODE rows.
optional_section() { # prefix mode title header [text line...]
  local prefix=$1 mode=$2 title=$3 header=$4
  shift 4
  grep -q "^$prefix" "$results" || return 0
  printf '\n## %s\n\n' "$title"
  [ $# -eq 0 ] || printf '%s\n' "$@" ''
  echo "$header"
  sed -E 's/[^|]+/---/g' <<<"$header"
  awk -F'\t' -f "$root/bench/summary.awk" -v mode="$mode" "$results"
}

host=$(hostname -s 2>/dev/null || echo host)
# RESULTS=path names the file; by default one per day and host, never overwriting an earlier
# run of the same day (a suffix -2, -3... is added).
file=${RESULTS:-bench/results/$(date +%F)-$host.md}
if [ -z "${RESULTS:-}" ]; then
  n=2; base=${file%.md}
  while [ -e "$file" ]; do file="$base-$n.md"; n=$((n + 1)); done
fi
{
  echo "# gatehouse bench, $(date -u +%FT%TZ), $host"
  echo
  echo "Command: \`REPS=$REPS DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS IDLE_CONNS=$IDLE_CONNS ZIPF_KEYS=$ZIPF_KEYS bench/run.sh ${scenarios[*]}\` ($((elapsed / 60)) min $((elapsed % 60)) s)"
  echo "Machine: $(nproc) cores, $(awk '/model name/{$1=$2=$3="";print;exit}' /proc/cpuinfo | xargs), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo)."
  echo "Versions: $("$root/target/release/gatehouse" --version); $(haproxy -v 2>/dev/null | head -1 | cut -d' ' -f1-3); $(nginx -v 2>&1); $(varnishd -V 2>&1 | head -1 | cut -d' ' -f1-2); wrk $(wrk --version 2>&1 | head -1 | awk '{print $2}'); $(h2load --version 2>&1 | head -1)"
  echo
  echo "Proxy pinned to CPU 1; origin (nginx, 1 worker) and the load generator (wrk 1 thread or"
  echo "h2load, $CONNS connections; h2: 10 streams each) on CPU 0. Medians over $REPS interleaved runs"
  echo "of ${DURATION} s after ${WARMUP} s of warm-up, noisy runs left out; spread = max-min of the"
  echo "proxy CPU µs/request over the runs kept."
  echo
  echo "## Gatehouse / best anchor (proxy CPU µs per request, medians)"
  echo
  echo "| scenario | gatehouse | best anchor | ratio | gatehouse p99 | anchor p99 |"
  echo "|---|---|---|---|---|---|"
  awk -F'\t' -f "$root/bench/summary.awk" -v mode=ratios "$results"
  echo
  echo "## Every line"
  echo
  echo "| scenario | target | proxy CPU µs/req | spread | origin CPU µs/req | proxy/origin | req/s | p50 | p99 | peak RSS MB | runs kept |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  awk -F'\t' -f "$root/bench/summary.awk" -v mode=lines "$results"
  optional_section log log "Cost of the timing log (one UDP syslog record per request)" \
    "| proxy | without log µs/req | with log µs/req | log costs µs/req | received per request |" \
    "Added proxy CPU per request = median with the log − median without, same run; records" \
    "received per request answered, counted at the receiver (warm-up included)."
  optional_section idle idle "Idle connections (KiB of proxy RSS per connection held, medians)" \
    "| scenario | target | connections held | KiB per connection | spread | RSS with them, MB | RSS 4 s after they closed, MB |" \
    "idle: plain HTTP/1.1 after one request, opened 500 at a time; idle-burst: the same, all" \
    "opened at once; idle-tls: HTTP/1.1 over TLS after one request; idle-h2: HTTP/2 over TLS," \
    "preface and SETTINGS exchanged, no request."
  optional_section slow slow "Slow readers (proxy RSS, MB, medians)" \
    "| scenario | target | readers | RSS before | peak RSS | RSS after they left |" \
    "slow: $SLOW_CONNS HTTP/1.1 readers of a 10 MiB response, 4 KiB receive buffer, 4 KiB read" \
    "every 100 ms; slow-h2: as many HTTP/2 streams over TLS with a window of 0. They leave after" \
    "$SLOW_SECONDS s; the last column is $SLOW_SETTLE s later."
  echo
  echo "## Raw runs"
  echo
  echo '```'
  printf 'scenario\ttarget\trep\tproxy_us\torigin_us\tratio\treq_s\tp50\tp99\tsteal\tothers\tnoisy\tpeak_rss_mb\terrors\tlog_received\n'
  cat "$results"
  echo '```'
} > "$file"
echo "wrote $file"
cat "$file"
