#!/usr/bin/env bash
# Rolling deploy behind gatehouse, one web server at a time, with no failed request:
#   1. drain the server and wait until its in-flight requests are done,
#   2. deploy (copy files, restart the app: your command),
#   3. put it back; gatehouse sends it traffic again only once its health check passes.
#
# Usage: GATEHOUSE_TOKEN=... packaging/deploy-example.sh POOL "SERVER1 SERVER2 ..." 'DEPLOY COMMAND'
# The deploy command sees $SERVER (e.g. 'ssh "$SERVER" sudo systemctl restart app').
# The admin address and token come from /etc/gatehouse/gatehouse.toml unless
# GATEHOUSE_CONFIG, --admin or GATEHOUSE_TOKEN say otherwise.
set -euo pipefail

pool=${1:?usage: $0 POOL "SERVERS..." 'DEPLOY COMMAND'}
servers=${2:?list the servers of the pool to deploy, in order}
deploy=${3:?give the deploy command; it sees \$SERVER}
config=${GATEHOUSE_CONFIG:-/etc/gatehouse/gatehouse.toml}
ctl() { gatehouse ctl -c "$config" "$@"; }

for SERVER in $servers; do
  echo "== $pool/$SERVER: draining"
  # Fails (exit 1) if requests are still in flight after the wait: stop before deploying.
  ctl drain "$pool" "$SERVER" --wait 60s
  echo "== $pool/$SERVER: deploying"
  SERVER=$SERVER bash -c "$deploy"
  echo "== $pool/$SERVER: back in rotation once healthy"
  ctl ready "$pool" "$SERVER"
  # Wait for the health check to bring it up before touching the next server.
  for _ in $(seq 1 120); do
    if ctl --json status | grep -A12 "\"name\": \"$SERVER\"" | grep -q '"usable": true'; then
      break
    fi
    sleep 1
  done
done
ctl status
