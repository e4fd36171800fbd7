#!/usr/bin/env bash
# Gatehouse against HAProxy, nginx and Varnish on loopback, per core.
#
#   bench/run.sh [SCENARIO ...]     scenarios: pass hit1k hit100k (default: all)
#   REPS=3 DURATION=8 bench/run.sh
#
# For each scenario, targets run interleaved (A B C A B C ...), REPS times each. The proxy is
# pinned to CPU 1, the origin (nginx, fixed files) and the load generator (wrk) to CPU 0. The
# primary figure is the proxy's CPU microseconds per request (user+sys of its processes from
# /proc, before and after, over requests completed), also as a ratio to the origin's CPU per
# request in the same run. Hypervisor steal time is recorded per run. Results go to stdout and
# bench/results/<date>-<host>.md (medians and spread over REPS).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
REPS=${REPS:-3}
DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(pass hit1k hit100k)

scripts/install-deps.sh haproxy varnishd:varnish nginx wrk taskset:util-linux
cargo build --release --bin gatehouse >/dev/null 2>&1 || cargo build --release --bin gatehouse
[ "$(nproc)" -ge 2 ] || { echo "needs 2 cores" >&2; exit 1; }

work=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www" "$work/gh-state" "$work/nginx-cache"
printf '%*s' 1024 '' | tr ' ' a > "$work/www/1k"
printf '%*s' 102400 '' | tr ' ' b > "$work/www/100k"
render() { sed -e "s|__DIR__|$work|g" -e "s|__CACHE__|$2|g" "$root/bench/$1"; }

render nginx-origin.conf x > "$work/origin.conf"
taskset -c 0 nginx -c "$work/origin.conf" &
sleep 0.5
origin_pid=$(cat "$work/origin.pid")
origin_pids() { echo "$origin_pid $(pgrep -P "$origin_pid" | tr '\n' ' ')"; }

cpu_ticks() { # user+sys clock ticks of the given pids
  local t=0
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo $t
}
steal() { awk '/^cpu /{print $9}' /proc/stat; }
hz=$(getconf CLK_TCK)

start_target() { # target scenario -> sets target_pids
  local cache=false; [[ $2 == hit* ]] && cache=true
  case $1 in
    gatehouse)
      render gatehouse.toml "$cache" > "$work/gh.toml"
      RUST_LOG=error taskset -c 1 "$root/target/release/gatehouse" run -c "$work/gh.toml" 2>/dev/null &
      target_pids=$! ;;
    haproxy)
      taskset -c 1 haproxy -f "$root/bench/haproxy.cfg" -db 2>/dev/null &
      target_pids=$! ;;
    nginx)
      local c=""; [ "$cache" = true ] && c="proxy_cache c; proxy_cache_valid 200 1h;"
      render nginx-proxy.conf "$c" > "$work/proxy.conf"
      taskset -c 1 nginx -c "$work/proxy.conf" &
      sleep 0.3; local p; p=$(cat "$work/proxy.pid"); target_pids="$p $(pgrep -P "$p" | tr '\n' ' ')" ;;
    varnish)
      taskset -c 1 varnishd -F -a 127.0.0.1:18080 -f "$root/bench/varnish.vcl" -n "$work/varnish" \
        -s malloc,256m -p thread_pools=1 -p thread_pool_min=10 >/dev/null 2>&1 &
      sleep 1; target_pids="$! $(pgrep -f "varnishd.*$work/varnish" | tr '\n' ' ')" ;;
  esac
  for _ in $(seq 1 100); do curl -s -m 1 -o /dev/null "http://127.0.0.1:18080/1k" && return 0; sleep 0.05; done
  echo "$1 did not start" >&2; return 1
}
stop_target() { kill $target_pids 2>/dev/null || true; sleep 0.5; kill -9 $target_pids 2>/dev/null || true; wait $target_pids 2>/dev/null || true; }

targets_for() { case $1 in pass) echo "gatehouse haproxy nginx";; *) echo "gatehouse nginx varnish";; esac; }
path_for() { case $1 in hit100k) echo /100k;; *) echo /1k;; esac; }

results="$work/results.tsv"
for s in "${scenarios[@]}"; do
  path=$(path_for "$s")
  for rep in $(seq 1 "$REPS"); do
    for t in $(targets_for "$s"); do
      start_target "$t" "$s"
      taskset -c 0 wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:18080$path" >/dev/null 2>&1 # warm-up
      p0=$(cpu_ticks $target_pids); o0=$(cpu_ticks $(origin_pids)); s0=$(steal)
      out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:18080$path")
      p1=$(cpu_ticks $target_pids); o1=$(cpu_ticks $(origin_pids)); s1=$(steal)
      stop_target
      reqs=$(awk '/requests in/{print $1}' <<<"$out")
      rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
      p50=$(awk '$1=="50%"{print $2}' <<<"$out"); p99=$(awk '$1=="99%"{print $2}' <<<"$out")
      us=$(awk -v a="$p0" -v b="$p1" -v n="$reqs" -v hz="$hz" 'BEGIN{printf "%.2f", (b-a)*1e6/hz/n}')
      ous=$(awk -v a="$o0" -v b="$o1" -v n="$reqs" -v hz="$hz" 'BEGIN{printf "%.2f", (b-a)*1e6/hz/n}')
      ratio=$(awk -v p="$us" -v o="$ous" 'BEGIN{ if (o>0) printf "%.2f", p/o; else print "-" }')
      st=$(( s1 - s0 ))
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$t" "$rep" "$us" "$ratio" "$rps" "$p50" "$p99" "$st" | tee -a "$results"
    done
  done
done

host=$(hostname -s 2>/dev/null || echo host)
file="bench/results/$(date +%F)-$host.md"
{
  echo "# gatehouse bench, $(date -u +%FT%TZ), $host"
  echo
  echo "Command: \`REPS=$REPS DURATION=$DURATION CONNS=$CONNS bench/run.sh ${scenarios[*]}\`"
  echo "Machine: $(nproc) cores, $(awk '/model name/{$1=$2=$3="";print;exit}' /proc/cpuinfo | xargs)."
  echo "Versions: $("$root/target/release/gatehouse" --version); $(haproxy -v 2>/dev/null | head -1); $(nginx -v 2>&1); $(varnishd -V 2>&1 | head -1); $(wrk --version 2>&1 | head -1 | cut -c1-40)"
  echo
  echo "Proxy pinned to CPU 1; origin (nginx, 1 worker) and wrk (1 thread, $CONNS connections) on CPU 0."
  echo "Medians over $REPS interleaved runs; spread = max-min of CPU µs/request."
  echo
  echo "| scenario | target | proxy CPU µs/req | spread | ratio to origin CPU/req | req/s | p50 | p99 | steal ticks |"
  echo "|---|---|---|---|---|---|---|---|---|"
  sort -k1,1 -k2,2 "$results" | awk -F'\t' '
    { key=$1 FS $2; n[key]++; us[key, n[key]]=$4; ra[key, n[key]]=$5; rps[key, n[key]]=$6; p50[key]=$7; p99[key]=$8; st[key]+=$9 }
    function med(arr, k, c,   i, j, t, v) { for (i=1;i<=c;i++) v[i]=arr[k,i]; for (i=1;i<=c;i++) for (j=i+1;j<=c;j++) if (v[j]+0 < v[i]+0) { t=v[i]; v[i]=v[j]; v[j]=t }; return v[int((c+1)/2)] }
    function spread(arr, k, c,   i, lo, hi) { lo=hi=arr[k,1]; for (i=2;i<=c;i++) { if (arr[k,i]+0<lo) lo=arr[k,i]; if (arr[k,i]+0>hi) hi=arr[k,i] }; return hi-lo }
    END { for (k in n) { split(k, a, FS); printf "| %s | %s | %s | %.2f | %s | %s | %s | %s | %d |\n", a[1], a[2], med(us, k, n[k]), spread(us, k, n[k]), med(ra, k, n[k]), med(rps, k, n[k]), p50[k], p99[k], st[k] } }' | sort
} > "$file"
echo "wrote $file"
cat "$file"
