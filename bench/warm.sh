#!/usr/bin/env bash
# A cache that stays warm (issue 34): a Zipf workload (bench/zipf.lua, ZIPF_KEYS objects of
# 1 KiB from the nginx origin) through gatehouse, and the cache's hit ratio and origin fetches
# (misses) in the WINDOW seconds after each event, against the WINDOW seconds before it:
#
#   restart   SIGTERM, then a new process on the same state_dir (snapshot on, then off)
#   upgrade   a new process with --upgrade, then SIGQUIT to the old one (snapshot on, then off)
#   failover  the load moves from an active node to a hot spare (as keepalived moves the
#             address), the spare kept warm from the active node (`warm = true`) or not
#   siblings  three nodes under the same load at once, with and without `siblings = true`:
#             origin fetches per distinct object fetched
#   upgrade under load: failed requests, and the new process's origin fetches
#
#   bench/warm.sh            ZIPF_KEYS=20000 WINDOW=10 bench/warm.sh
#   PARTS="siblings" bench/warm.sh   (some of: restart upgrade failover siblings under_load)
#
# Needs wrk, nginx, curl. The counts come from gatehouse's own metrics (cache events). About
# three minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export ZIPF_KEYS=${ZIPF_KEYS:-20000}
WINDOW=${WINDOW:-10}
WARMUP=${WARMUP:-20}
PARTS=${PARTS:-restart upgrade failover siblings under_load}
want() { [[ " $PARTS " == *" $1 "* ]]; }
bin=${BIN:-$root/target/release/gatehouse}
scripts/install-deps.sh wrk nginx curl
[ -n "${BIN:-}" ] || cargo build --release --bin gatehouse >/dev/null 2>&1
work=$(mktemp -d /tmp/gatehouse-warm.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www"
chmod 755 "$work" "$work/www"
printf '%*s' 1024 '' | tr ' ' a > "$work/www/1k"
sed -e "s|__DIR__|$work|g" bench/nginx-origin.conf > "$work/origin.conf"
nginx -c "$work/origin.conf" >/dev/null 2>&1 &
sleep 0.5

source bench/warm-common.sh
conf() { # name listen admin extra-cache-lines: a config with its own state_dir
  mkdir -p "$work/$1"
  gh_toml "$work/$1" "127.0.0.1:$2" "127.0.0.1:$3" "$4" > "$work/$1/gh.toml"
}
start() { # name [--upgrade] → pid
  RUST_LOG=warn "$bin" run -c "$work/$1/gh.toml" ${2:-} >/dev/null 2>>"$work/$1/gh.log" &
  echo $!
}
wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; }
# hits misses of the node whose admin port is $1
counts() {
  curl -s "http://127.0.0.1:$1/metrics" | awk '
    /^gatehouse_cache_events_total\{event="hit"\}/ { h = $2 }
    /^gatehouse_cache_events_total\{event="miss"\}/ { m = $2 }
    END { printf "%d %d\n", h, m }'
}
load() { # port seconds
  wrk -t1 -c8 -d"${2}s" -s bench/zipf.lua "http://127.0.0.1:$1/" >/dev/null 2>&1
}
gone() { for p in "$@"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done; }

printf 'event\tsnapshot\tsteady_hit_ratio\tafter_hit_ratio\tafter_vs_steady\tsteady_misses\tafter_misses\n'
for event in restart upgrade; do
  want "$event" || continue
  for snapshot in on-stop off; do
    name="$event-$snapshot"
    conf "$name" 18080 19901 "snapshot = \"$snapshot\""
    pid=$(start "$name"); wait_port 18080; wait_port 19901
    load 18080 "$WARMUP"
    read -r h0 m0 < <(counts 19901)
    load 18080 "$WINDOW"
    read -r h1 m1 < <(counts 19901)
    if [ "$event" = restart ]; then
      kill -TERM "$pid"; gone "$pid"
      pid=$(start "$name"); wait_port 18080; wait_port 19901
      sleep 0.5 # the snapshot is read in the background: give it its moment
    else
      new=$(start "$name" --upgrade); sleep 1
      kill -QUIT "$pid"; gone "$pid"
      pid=$new; wait_port 19901; sleep 0.5
    fi
    read -r h2 m2 < <(counts 19901)
    load 18080 "$WINDOW"
    read -r h3 m3 < <(counts 19901)
    report "$event" "$snapshot" "$h0" "$m0" "$h1" "$m1" "$h2" "$m2" "$h3" "$m3"
    kill -TERM "$pid"; gone "$pid"
    sleep 0.5
  done
done

echo
printf 'failover\twarm\tsteady_hit_ratio\tafter_hit_ratio\tafter_vs_steady\tsteady_misses\tafter_misses\n'
for warm in false true; do
  want failover || continue
  conf "active-$warm" 18080 19901 "snapshot = \"off\""
  conf "spare-$warm" 18081 19902 "peers = [\"127.0.0.1:19901\"]
warm = $warm
warm_interval = \"1s\"
warm_objects = $ZIPF_KEYS
snapshot = \"off\""
  a=$(start "active-$warm"); b=$(start "spare-$warm")
  wait_port 18080; wait_port 18081; wait_port 19901; wait_port 19902
  load 18080 "$WARMUP"
  read -r h0 m0 < <(counts 19901)
  load 18080 "$WINDOW"
  read -r h1 m1 < <(counts 19901)
  sleep 2 # the spare's last copying round
  kill -TERM "$a"; gone "$a"
  read -r h2 m2 < <(counts 19902)
  load 18081 "$WINDOW"
  read -r h3 m3 < <(counts 19902)
  report failover "$warm" "$h0" "$m0" "$h1" "$m1" "$h2" "$m2" "$h3" "$m3"
  kill -TERM "$b"; gone "$b"
  sleep 0.5
done

echo
printf 'siblings\tnodes\torigin_fetches\tobjects_on_a\tfetches_per_object\n'
for siblings in false true; do
  want siblings || continue
  # Three active nodes, each the others' sibling, each under its own share of the load.
  conf "a-$siblings" 18080 19901 "peers = [\"127.0.0.1:19902\", \"127.0.0.1:19903\"]
siblings = $siblings
snapshot = \"off\""
  conf "b-$siblings" 18081 19902 "peers = [\"127.0.0.1:19901\", \"127.0.0.1:19903\"]
siblings = $siblings
snapshot = \"off\""
  conf "c-$siblings" 18082 19903 "peers = [\"127.0.0.1:19901\", \"127.0.0.1:19902\"]
siblings = $siblings
snapshot = \"off\""
  a=$(start "a-$siblings"); b=$(start "b-$siblings"); c=$(start "c-$siblings")
  for p in 18080 18081 18082 19901 19902 19903; do wait_port $p; done
  load 18080 "$WINDOW" & la=$!
  load 18081 "$WINDOW" & lb=$!
  load 18082 "$WINDOW" & lc=$!
  wait "$la" "$lb" "$lc"
  read -r _ ma < <(counts 19901)
  read -r _ mb < <(counts 19902)
  read -r _ mc < <(counts 19903)
  # Every object a node served, fetched or copied, is stored there: A's count is the
  # distinct objects asked for (every node asks for the same keys).
  objects=$(curl -s http://127.0.0.1:19901/metrics | awk '/^gatehouse_cache_objects / { print $2 }')
  total=$((ma + mb + mc))
  printf '%s\t3\t%s\t%s\t%s\n' "$siblings" "$total" "$objects" "$(awk -v t="$total" -v a="$objects" 'BEGIN { printf "%.2f", t / a }')"
  kill -TERM "$a" "$b" "$c"; gone "$a" "$b" "$c"
  sleep 0.5
done

echo
# A binary upgrade in the middle of the load: the requests that failed (wrk's socket errors
# and non-2xx answers) and the new process's origin fetches.
printf 'upgrade_under_load\tsnapshot\trequests\tfailed\tnew_process_origin_fetches\n'
for snapshot in on-stop off; do
  want under_load || continue
  name="under-load-$snapshot"
  conf "$name" 18080 19901 "snapshot = \"$snapshot\""
  pid=$(start "$name"); wait_port 18080; wait_port 19901
  load 18080 "$WARMUP"
  wrk -t1 -c8 -d"$((WINDOW + 4))s" -s bench/zipf.lua "http://127.0.0.1:18080/" > "$work/wrk-$name.out" 2>&1 & lw=$!
  sleep 2
  new=$(start "$name" --upgrade); sleep 1
  kill -QUIT "$pid"; gone "$pid"
  wait "$lw"
  read -r _ m < <(counts 19901)
  out="$work/wrk-$name.out"
  reqs=$(awk '/requests in/ { print $1 }' "$out")
  failed=$(awk '/Socket errors/ { gsub(",", ""); n = $4 + $6 + $8 + $10 } /Non-2xx/ { n += $NF } END { print n + 0 }' "$out")
  printf 'upgrade_under_load\t%s\t%s\t%s\t%s\n' "$snapshot" "$reqs" "$failed" "$m"
  kill -TERM "$new"; gone "$new"
  sleep 0.5
done
