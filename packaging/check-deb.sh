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
            ./usr/share/doc/gatehouse/gatehouse.example.toml \
            ./usr/share/doc/gatehouse/cluster/keepalived.conf \
            ./usr/share/man/man1/gatehouse.1.gz ./usr/share/man/man1/gatehouse-ctl-drain.1.gz \
            ./usr/share/bash-completion/completions/gatehouse \
            ./usr/share/zsh/vendor-completions/_gatehouse \
            ./usr/share/fish/vendor_completions.d/gatehouse.fish; do
  grep -q " $want\$" <<<"$contents" || { echo "deb lacks: $want" >&2; exit 1; }
done
control_files=$(dpkg-deb --ctrl-tarfile "$deb" | tar -t)
grep -qx './conffiles' <<<"$control_files" || { echo "no conffiles" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
dpkg-deb -x "$deb" "$scratch"
"$scratch/usr/bin/gatehouse" check -c "$scratch/etc/gatehouse/gatehouse.toml"
"$scratch/usr/bin/gatehouse" --version
# The completion script loads in bash and completes subcommands; the man page renders.
bash -c "source '$scratch/usr/share/bash-completion/completions/gatehouse' && COMP_WORDS=(gatehouse ct) COMP_CWORD=1 && _gatehouse gatehouse ct gatehouse && [[ \" \${COMPREPLY[*]} \" == *' ctl '* ]]" \
  || { echo "bash completion does not complete 'gatehouse ct' to ctl" >&2; exit 1; }
zcat "$scratch/usr/share/man/man1/gatehouse.1.gz" | grep -q '^\.TH gatehouse 1' \
  || { echo "gatehouse(1) is not a man page" >&2; exit 1; }
echo "deb ok: $deb"
