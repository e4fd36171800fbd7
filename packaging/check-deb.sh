#!/usr/bin/env bash
# Builds the .deb, checks its metadata and contents, unpacks it into a scratch root and runs
# the installed binary's `check` on the installed config. Part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(packaging/build-deb.sh)
info=$(dpkg-deb --info "$deb")
contents=$(dpkg-deb --contents "$deb")
for want in "Package: gatehouse" "Depends: adduser"; do
  grep -q "$want" <<<"$info" || { echo "deb info lacks: $want" >&2; exit 1; }
done
for want in ./usr/bin/gatehouse ./lib/systemd/system/gatehouse.service \
            ./etc/gatehouse/gatehouse.toml ./var/lib/gatehouse/ \
            ./usr/share/doc/gatehouse/gatehouse.example.toml; do
  grep -q " $want\$" <<<"$contents" || { echo "deb lacks: $want" >&2; exit 1; }
done
control_files=$(dpkg-deb --ctrl-tarfile "$deb" | tar -t)
grep -qx './conffiles' <<<"$control_files" || { echo "no conffiles" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
dpkg-deb -x "$deb" "$scratch"
"$scratch/usr/bin/gatehouse" check -c "$scratch/etc/gatehouse/gatehouse.toml"
"$scratch/usr/bin/gatehouse" --version
echo "deb ok: $deb"
