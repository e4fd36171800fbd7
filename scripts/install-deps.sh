#!/usr/bin/env bash
# Installs what building gatehouse needs on Debian/Ubuntu: a C compiler and cmake (pingora's
# zlib-ng, ring and zstd build C code), protoc and protobuf's standard .proto files (the etcd
# client compiles etcd's API). Uses apt when run as root; otherwise says what to run.
set -euo pipefail

missing=()
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
[ -f /usr/include/google/protobuf/descriptor.proto ] || missing+=(libprotobuf-dev)
# Extra needs as COMMAND or COMMAND:PACKAGE (e.g. rsyslogd:rsyslog).
for extra in "$@"; do
  cmd=${extra%%:*}
  pkg=${extra#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
done

if ! command -v cargo >/dev/null 2>&1; then
  echo "gatehouse needs a Rust toolchain (cargo): see https://rustup.rs" >&2
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "gatehouse needs these packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
