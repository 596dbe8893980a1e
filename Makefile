# Two commands for a fresh Debian/Ubuntu machine:
#   make run    installs what is missing, builds, starts Authsome (the tray app
#               when a display is present, the headless daemon otherwise)
#   make test   installs what is missing, checks formatting and lints, runs every test
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test deps build lint bench fuzz package package-test

deps:
	@./scripts/install-deps.sh

build: deps
	$(CARGO) build --workspace --bins

run: build
	@./scripts/run.sh

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: lint build
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  ./scripts/with-session.sh $(CARGO) nextest run --workspace --run-ignored all --no-fail-fast; \
	else \
	  ./scripts/with-session.sh $(CARGO) test --workspace --no-fail-fast -- --include-ignored; \
	fi

bench: build
	$(CARGO) build --release --bins
	python3 scripts/bench_get.py
	python3 scripts/bench_proxy.py
	python3 scripts/bench_run.py
	python3 scripts/bench_moving.py
	./scripts/bench_tray_rss.sh
	python3 scripts/load.py

# Each fuzz target for FUZZ_SECONDS (default 600); see scripts/fuzz.sh.
fuzz: deps
	./scripts/fuzz.sh

# A .deb with both programs (target/debian/); see scripts/package.sh.
package: deps
	./scripts/package.sh

# Installs that .deb, runs both programs, removes it (needs root or sudo).
package-test: package
	./scripts/package-test.sh
