# The two commands of the README: `make demo` and `make test`. Each installs what a fresh machine
# lacks (scripts/setup.sh is idempotent) and builds once, in the dev profile (dependencies fully
# optimized, see Cargo.toml), so tests and demo share one build: both compile the workspace's
# crates through clippy-driver with the same flags (below), or each would rebuild them.
CARGO ?= cargo

.PHONY: setup demo test bench serve

setup:
	bash scripts/setup.sh

demo: setup
	$(LINTED) $(CARGO) run -p orchestrator --bin ringwise -- demo

# Clippy lints inside the one build, as the compiler of the workspace's own crates (what
# `cargo clippy` does for its check build): the dependencies are compiled once, not once more
# for a check build. Warnings are errors, as `cargo clippy -- -D warnings`. CLIPPY_ARGS is
# clippy-driver's own way of taking lint flags (the one `cargo clippy` uses).
CLIPPY_DRIVER ?= $(shell rustup which clippy-driver 2>/dev/null || command -v clippy-driver)
LINTED = RUSTC_WORKSPACE_WRAPPER="$(CLIPPY_DRIVER)" CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

test: setup
	$(CARGO) fmt --all --check
	@test -n "$(CLIPPY_DRIVER)" || { echo "clippy-driver not found: rustup component add clippy"; exit 1; }
	$(LINTED) $(CARGO) build --workspace --all-targets
	$(LINTED) $(CARGO) nextest run --workspace --no-fail-fast

bench: setup
	bash scripts/bench.sh

serve: setup
	$(LINTED) $(CARGO) run -p orchestrator --bin ringwise -- serve
