#!/usr/bin/env bash
# Checks the upstream series in this folder: it applies in order (git am) to the pristine
# pingora 0.9.1 crates laid out as in the pingora repository, each step builds (cargo check),
# and the result equals ../pingora-* except comments, formatting and the one test patch 0003
# adjusts. Needs only crates.io, through cargo. Scratch files go to ${WORK:-/tmp/upstream-check}.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vendor=$(dirname "$here")
work=${WORK:-/tmp/upstream-check}
rm -rf "$work" && mkdir -p "$work/fetch/src" "$work/pristine"

# 1. The pristine crates, downloaded by cargo from crates.io.
cat > "$work/fetch/Cargo.toml" <<'TOML'
[package]
name = "fetch-pristine"
version = "0.1.0"
edition = "2021"
[dependencies]
pingora-core = { version = "=0.9.1", features = ["rustls"] }
pingora-proxy = { version = "=0.9.1", features = ["rustls", "upstream_modules"] }
pingora-http = "=0.9.1"
TOML
echo 'fn main() {}' > "$work/fetch/src/main.rs"
cp "$vendor/../Cargo.lock" "$work/fetch/" 2>/dev/null || true
(cd "$work/fetch" && cargo fetch -q)
# From now on the same project builds the patched copies instead (step 4).
cat >> "$work/fetch/Cargo.toml" <<'TOML'
[patch.crates-io]
pingora-core = { path = "../repo/pingora-core" }
pingora-http = { path = "../repo/pingora-http" }
pingora-proxy = { path = "../repo/pingora-proxy" }
pingora-runtime = { path = "../repo/pingora-runtime" }
TOML
cache=$(dirname "$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/pingora-core-0.9.1.crate | head -1)")
for c in pingora-core pingora-proxy pingora-http pingora-runtime; do
  tar xzf "$cache/$c-0.9.1.crate" -C "$work/pristine"
done

# 2. A git repository laid out like pingora's, at 0.9.1.
mkdir "$work/repo" && cd "$work/repo" && git init -q -b main
for c in pingora-core pingora-proxy pingora-http pingora-runtime; do
  cp -r "$work/pristine/$c-0.9.1" "$c"
  rm -f "$c/.cargo_vcs_info.json" "$c/Cargo.lock" "$c/Cargo.toml.orig"
done
git add -A && git -c user.name=check -c user.email=check@example.invalid commit -qm "pingora 0.9.1"

# 3. The series applies in order.
git -c user.name=check -c user.email=check@example.invalid am --whitespace=error-all "$here"/0*.patch

# 4. Every step builds.
for c in $(git rev-list --reverse HEAD~"$(ls "$here"/0*.patch | wc -l)"..HEAD); do
  git checkout -q "$c"
  (cd "$work/fetch" && cargo check -q --offline) || { echo "cargo check failed after: $(git log -1 --format=%s)"; exit 1; }
done
git checkout -q main

# 5. The result is the vendored code: comment-only lines, `// gatehouse patch N` markers,
#    whitespace and trailing commas (rustfmt) aside. Expected: only
#    pingora-core/src/connectors/http/v1.rs (the test 0003 adjusts) and
#    pingora-core/src/protocols/http/v2/server.rs (patch 25's pingora part, kept with the h2
#    patches in h2/ because it needs h2's part) differ.
python3 - "$work/repo" "$vendor" <<'PY'
import os, re, sys
repo, vendor = sys.argv[1:]
def code(p):
    out = []
    for line in open(p, encoding="utf-8"):
        s = line.strip()
        if s.startswith("//"):
            continue
        out.append(re.sub(r"\s*// gatehouse patch \d+.*$", "", s))
    return re.sub(r",([)\]}])", r"\1", re.sub(r"\s+", "", "".join(out)))
for crate in ("pingora-core", "pingora-proxy", "pingora-http", "pingora-runtime"):
    for root, _, files in os.walk(os.path.join(repo, crate)):
        for f in files:
            if f.endswith(".rs"):
                a = os.path.join(root, f)
                b = os.path.join(vendor, os.path.relpath(a, repo))
                if code(a) != code(b):
                    print("code differs from the vendored copy:", os.path.relpath(a, repo))
PY
echo "series applied and checked in $work/repo"
