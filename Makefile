# The two commands of the README: `make demo` and `make test`. Each installs what a fresh machine
# lacks (scripts/setup.sh is idempotent) and builds once, in the dev profile (dependencies fully
# optimized, see Cargo.toml), so tests and demo share one build.
CARGO ?= cargo

.PHONY: setup demo test bench serve

setup:
	bash scripts/setup.sh

demo: setup
	$(CARGO) run -p orchestrator --bin ringwise -- demo

test: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) nextest run --workspace --no-fail-fast

bench: setup
	bash scripts/bench.sh

serve: setup
	$(CARGO) run -p orchestrator --bin ringwise -- serve
