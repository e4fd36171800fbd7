#!/usr/bin/env bash
# Builds gatehouse and the demo origin, starts the origin as two "web servers" on
# 127.0.0.1:8001 and :8002, and runs gatehouse in front of them on conf/gatehouse.toml.
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --release --bin gatehouse --example demo-origin

target/release/examples/demo-origin 8001 8002 &
origin=$!
trap 'kill $origin 2>/dev/null || true' EXIT INT TERM

target/release/gatehouse check -c conf/gatehouse.toml
cat <<'MSG'

gatehouse is starting on http://127.0.0.1:8080/ and https://localhost:8443/ in front of
web1 (:8001) and web2 (:8002). Try:
  curl -i http://127.0.0.1:8080/                 # alternates between web1 and web2
  curl -i http://127.0.0.1:8080/slow?ms=1500     # a slow page
  curl -i -X POST -d 'hello' http://127.0.0.1:8080/submit
  curl -i http://127.0.0.1:8080/private          # a private page with a cookie
  curl -ik https://localhost:8443/               # HTTP/2 over TLS (self-signed demo cert)
Stop a web server (kill the demo-origin) and watch gatehouse answer 503 after its health checks.
Ctrl-C stops everything.

MSG
target/release/gatehouse run -c conf/gatehouse.toml
