#!/usr/bin/env bash
# Builds gatehouse_<version>_<arch>.deb with dpkg-deb from the release binary: the binary, the
# systemd unit, the default config in /etc/gatehouse (a conffile), the state directory, and the
# docs. Usage: packaging/build-deb.sh [OUTPUT_DIR]   (default: target/deb)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/deb}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
# GATEHOUSE_PREBUILT=1 (set by `make test`): package the binary the tests just built.
[ -n "${GATEHOUSE_PREBUILT:-}" ] || cargo build --release --bin gatehouse >&2

root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT
install -D -s -m 0755 target/release/gatehouse "$root/usr/bin/gatehouse"
install -D -m 0644 packaging/gatehouse.service "$root/lib/systemd/system/gatehouse.service"
install -D -m 0644 packaging/gatehouse.toml "$root/etc/gatehouse/gatehouse.toml"
install -D -m 0644 conf/gatehouse.toml "$root/usr/share/doc/gatehouse/gatehouse.example.toml"
install -D -m 0644 README.md "$root/usr/share/doc/gatehouse/README.md"
install -D -m 0644 packaging/grafana-dashboard.json "$root/usr/share/doc/gatehouse/grafana-dashboard.json"
install -D -m 0755 packaging/deploy-example.sh "$root/usr/share/doc/gatehouse/deploy-example.sh"
install -d -m 0750 "$root/var/lib/gatehouse" "$root/var/log/gatehouse"
install -d "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<CONTROL
Package: gatehouse
Version: $version
Architecture: $arch
Maintainer: gatehouse developers <gatehouse@localhost>
Section: net
Priority: optional
Depends: adduser
Description: edge proxy: TLS termination, cache, read-only mode, load balancing
 One binary doing the work of nginx (TLS), Varnish (cache) and HAProxy (balancing,
 health checks, admin API), with per-request timing logs to syslog and Prometheus metrics.
CONTROL
echo "/etc/gatehouse/gatehouse.toml" > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  if ! getent passwd gatehouse >/dev/null; then
    adduser --system --group --home /var/lib/gatehouse --no-create-home gatehouse
  fi
  chown gatehouse:gatehouse /var/lib/gatehouse /var/log/gatehouse
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
    systemctl enable gatehouse.service >/dev/null || true
  fi
fi
POSTINST
cat > "$root/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
  systemctl stop gatehouse.service >/dev/null || true
fi
PRERM
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm"
mkdir -p "$out"
deb="$out/gatehouse_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
