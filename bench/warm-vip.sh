#!/usr/bin/env bash
# A hot spare that takes the virtual IP warm (issue 34), with keepalived as an operator runs
# it: two gatehouse nodes in their own network namespaces, joined by a bridge in a third (the
# client's, where wrk runs), share the VIP by VRRP, each keepalived tracking its node's
# /health (as tests/e2e/vip.rs sets it up). Zipf load (bench/zipf.lua) on the VIP; then the
# active node's gatehouse is killed, keepalived moves the VIP, and the load goes on against
# the spare. Reported: the active node's hit ratio over WINDOW seconds of steady load, and
# the spare's over the WINDOW seconds after it took the address, with the spare kept warm
# from the active node (`[cache] warm = true`) and not.
#
#   sudo bench/warm-vip.sh            ZIPF_KEYS=20000 WINDOW=10 WARMUP=20
#
# Needs root (network namespaces), keepalived, wrk, nginx, curl, iproute2. About 2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export ZIPF_KEYS=${ZIPF_KEYS:-20000}
WINDOW=${WINDOW:-10}
WARMUP=${WARMUP:-20}
VIP=10.213.0.100
bin=${BIN:-$root/target/release/gatehouse}
[ "$(id -u)" = 0 ] || { echo "warm-vip.sh needs root (network namespaces)" >&2; exit 1; }
scripts/install-deps.sh wrk nginx curl keepalived ip:iproute2
[ -n "${BIN:-}" ] || cargo build --release --bin gatehouse >/dev/null 2>&1
work=$(mktemp -d /tmp/gatehouse-warm-vip.XXXXXX)
tag=$(($$ % 100000))
ns=("ghbc$tag" "ghb1$tag" "ghb2$tag")
cleanup() {
  for n in "${ns[@]}"; do
    ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$n" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
source bench/warm-common.sh
chmod 755 "$work"

net_up() { # the bridge and client in ns[0], a node in each of ns[1], ns[2]
  local c=${ns[0]}
  for n in "${ns[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done
  ip -n "$c" link add br0 type bridge
  ip -n "$c" addr add 10.213.0.1/24 dev br0
  ip -n "$c" link set br0 up
  for i in 1 2; do
    ip link add "p$i" netns "$c" type veth peer name eth0 netns "${ns[$i]}"
    ip -n "$c" link set "p$i" master br0 up
    ip -n "${ns[$i]}" addr add "10.213.0.1$i/24" dev eth0
    ip -n "${ns[$i]}" link set eth0 up
  done
}

node_files() { # i extra-cache-lines: node i's origin, gatehouse and keepalived configs
  local d="$work/$round/n$1"
  mkdir -p "$d/www" "$d/state"
  chmod 755 "$d" "$d/www"
  printf '%*s' 1024 '' | tr ' ' a > "$d/www/1k"
  sed -e "s|__DIR__|$d|g" bench/nginx-origin.conf > "$d/origin.conf"
  gh_toml "$d/state" 0.0.0.0:8080 0.0.0.0:9100 "snapshot = \"off\"
$2" > "$d/gh.toml"
  cat > "$d/keepalived.conf" <<KA
global_defs {
  router_id gh$1
  script_user root
  enable_script_security
}
vrrp_script gatehouse {
  script "/usr/bin/curl -fs -m 1 -o /dev/null http://127.0.0.1:9100/health"
  interval 1
  fall 1
  rise 1
}
vrrp_instance front {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority $([ "$1" = 1 ] && echo 150 || echo 100)
  advert_int 1
  virtual_ipaddress {
    $VIP/24
  }
  track_script {
    gatehouse
  }
}
KA
}

in_ns() { local n=$1; shift; ip netns exec "$n" "$@"; }
start_node() { # i → gatehouse's pid
  local d="$work/$round/n$1" n=${ns[$1]}
  in_ns "$n" nginx -c "$d/origin.conf" >/dev/null 2>&1 &
  in_ns "$n" keepalived --dont-fork --log-console --vrrp -f "$d/keepalived.conf" \
    -p "$d/keepalived.pid" -r "$d/vrrp.pid" >"$d/keepalived.log" 2>&1 &
  in_ns "$n" env RUST_LOG=warn "$bin" run -c "$d/gh.toml" >/dev/null 2>>"$d/gh.log" &
  echo $!
}
counts() { # hits misses of node i
  in_ns "${ns[$1]}" curl -s -H "Authorization: Bearer bench-token-0123456789" \
    http://127.0.0.1:9100/metrics | awk '
    /^gatehouse_cache_events_total\{event="hit"\}/ { h = $2 }
    /^gatehouse_cache_events_total\{event="miss"\}/ { m = $2 }
    END { printf "%d %d\n", h, m }'
}
vip_on() { ip -n "${ns[$1]}" -4 addr show dev eth0 | grep -q "$VIP/"; }
wait_for() { # seconds command...: true once the command succeeds
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ "$SECONDS" -lt "$end" ] || return 1; sleep 0.1; done
}
load() { # seconds
  in_ns "${ns[0]}" wrk -t1 -c8 -d"${1}s" -s bench/zipf.lua "http://$VIP:8080/" >/dev/null 2>&1 || true
}
answers() { in_ns "${ns[0]}" curl -fs -m 1 -o /dev/null "http://$VIP:8080/z/1"; }

printf 'failover\twarm\ttook_vip_s\tsteady_hit_ratio\tafter_hit_ratio\tafter_vs_steady\tsteady_misses\tafter_misses\n'
for warm in false true; do
  round="warm-$warm"
  net_up
  node_files 1 ""
  node_files 2 "peers = [\"10.213.0.11:9100\"]
warm = $warm
warm_interval = \"1s\"
warm_objects = $ZIPF_KEYS"
  a=$(start_node 1)
  wait_for 20 vip_on 1 || { echo "the VIP did not come up on node 1" >&2; tail "$work/$round"/n1/*.log >&2; exit 1; }
  _=$(start_node 2)
  wait_for 20 answers || { echo "the VIP does not answer" >&2; exit 1; }
  load "$WARMUP"
  read -r h0 m0 < <(counts 1)
  load "$WINDOW"
  read -r h1 m1 < <(counts 1)
  sleep 2 # the spare's last copying round
  started=$SECONDS
  kill -9 "$(pgrep -P "$a" || echo "$a")" 2>/dev/null || true # the active proxy dies
  wait_for 30 vip_on 2 || { echo "the VIP did not move to node 2" >&2; exit 1; }
  took=$((SECONDS - started))
  wait_for 10 answers || true
  read -r h2 m2 < <(counts 2)
  load "$WINDOW"
  read -r h3 m3 < <(counts 2)
  report failover "$warm" "$took" "$h0" "$m0" "$h1" "$m1" "$h2" "$m2" "$h3" "$m3"
  for n in "${ns[@]}"; do
    ip netns pids "$n" | xargs -r kill -9 2>/dev/null || true
    ip netns del "$n"
  done
  sleep 1
done
