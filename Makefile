# The two commands a newcomer needs:
#   make run    build and run gatehouse on conf/gatehouse.toml in front of the demo origin
#   make test   formatting, lints, every test, and `check` on every shipped config
# Everything builds in the release profile, once. The test build is incremental (gatehouse's
# own crates only; dependencies are built once either way): a one-line change in src/ then
# rebuilds in seconds instead of a minute and a half. Benches and the .deb (`make deb`) build
# without it.

.PHONY: run test deps fmt lint layout check-configs deb bench

deb:
	packaging/build-deb.sh

bench:
	bench/run.sh

run:
	scripts/run-demo.sh

# Tools the tests use; a test whose tool is missing fails naming the package, unless skipped
# explicitly: GATEHOUSE_TEST_SKIP=browser,rsyslog,promtool,halog,nghttp,openssl,pebble,etcd,keepalived
# make test. Skips are listed at the end. The keepalived test also needs root (network
# namespaces); without root it fails saying so, unless keepalived is skipped.
TEST_TOOLS = rsyslogd:rsyslog halog:haproxy nghttp:nghttp2-client openssl pebble promtool:prometheus chromium chromedriver:chromium-driver etcd:etcd-server etcdctl:etcd-client keepalived ip:iproute2

test: deps fmt lint layout
	@rm -f target/tmp/skipped-tests && mkdir -p target/tmp
	bash -o pipefail -c 'CARGO_INCREMENTAL=1 cargo test --release 2>&1 | tee target/tmp/test-output'
	$(MAKE) check-configs PREBUILT=1
	GATEHOUSE_PREBUILT=1 packaging/check-deb.sh
	@if [ -s target/tmp/skipped-tests ]; then \
	  echo "skipped: $$(paste -sd, target/tmp/skipped-tests)"; \
	else echo "skipped: none"; fi
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "%d passed, %d failed\n", p, f }' \
	  target/tmp/test-output

# Build tools are required; test tools are installed when possible (as root with apt), and
# otherwise the tests that need them fail naming the package (or are skipped on request).
deps:
	scripts/install-deps.sh
	-scripts/install-deps.sh $(TEST_TOOLS)

fmt:
	cargo fmt --all -- --check

# Import circles between top-level modules; tests/layout.rs checks the same (and file and
# function sizes) inside `cargo test`, so a checkout without ../shared loses nothing.
layout:
	@if [ -f ../shared/tools/modcycles.py ]; then python3 ../shared/tools/modcycles.py src; \
	else echo "layout: ../shared/tools/modcycles.py is not here; tests/layout.rs runs the same check"; fi

lint:
	CARGO_INCREMENTAL=1 cargo clippy --release --all-targets -- -D warnings

# `make test` passes PREBUILT=1: `cargo test --release` has just built target/release/gatehouse,
# and a `cargo build` here would compile every dependency again (dev-dependencies unify features
# differently), so the config and .deb checks use the binary the tests ran against.
check-configs:
	@[ -n "$(PREBUILT)" ] || cargo build --release --bin gatehouse
	@for f in conf/*.toml; do target/release/gatehouse check -c "$$f" || exit 1; done
