#!/usr/bin/env bash
# h2spec (github.com/summerwind/h2spec, HTTP/2 conformance: 146 cases, 147 with --strict)
# against gatehouse over TLS, as in bench/run.sh: the bench config, the nginx origin.
#
#   H2SPEC=/path/to/h2spec bench/h2spec.sh [extra h2spec options, e.g. --strict]
#
# h2spec is a Go program that neither Debian, PyPI nor npm packages, so it is not installed
# here: build it from its repository (`go build ./cmd/h2spec`; Debian's golang-go and its
# golang-golang-x-net-dev, golang-github-spf13-cobra-dev, golang-github-fatih-color-dev
# packages suffice in GOPATH mode) and point H2SPEC at it. Without it this script fails and
# says so; it never reports a pass it did not see. Fixed ports (18080, 18443, 19001), as the
# other bench scripts: run one at a time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/target/release/gatehouse}
h2spec=${H2SPEC:-h2spec}
command -v "$h2spec" >/dev/null ||
  { echo "h2spec not found (set H2SPEC; see the top of $0 for how to build it)" >&2; exit 2; }
[ -x "$bin" ] || { echo "no gatehouse binary at $bin (cargo build --release)" >&2; exit 2; }

work=$(mktemp -d /tmp/gatehouse-h2spec.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/www" "$work/gh-state"
chmod 755 "$work" "$work/www" # nginx workers run as nobody: they must read the files
printf '%*s' 1024 '' | tr ' ' a > "$work/www/1k"
cp "$work/www/1k" "$work/www/index.html"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
render() { sed -e "s|__DIR__|$work|g" -e "s|__CACHE__|$2|g" "$root/bench/$1"; }
render nginx-origin.conf x > "$work/origin.conf"
render gatehouse.toml false > "$work/gatehouse.toml"
nginx -c "$work/origin.conf" &
"$bin" run -c "$work/gatehouse.toml" 2> "$work/gatehouse.log" &
for _ in $(seq 1 100); do
  curl -sfk -o /dev/null https://127.0.0.1:18443/1k && break
  sleep 0.1
done
curl -sfk -o /dev/null --http2 https://127.0.0.1:18443/1k ||
  { echo "gatehouse does not answer on 18443" >&2; cat "$work/gatehouse.log" >&2; exit 1; }
out=$("$h2spec" -t -k -h 127.0.0.1 -p 18443 -P /1k "$@" 2>&1) || true
echo "$out" | grep -E '^\s+(×|✔ )' | grep -v '✔' || true
summary=$(echo "$out" | tail -n 1)
echo "$summary"
echo "$summary" | grep -Eq '^[0-9]+ tests, [0-9]+ passed, 0 skipped, 0 failed$'
