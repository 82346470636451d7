# fintors — common tasks. `make demo` to try it, `make test` to check it.
VENV    ?= .venv
PYTHON  ?= python3
CARGO   ?= cargo
PREFIX  ?= $(HOME)/.cargo
SHARE   := $(PREFIX)/share

.PHONY: all build test lint install install-files uninstall uninstall-files demo venv clients bench bench-instructions bench-profile layout soak fuzz clean

all: build

build:
	$(CARGO) build --release

# The Python venv with the STS emulator and the real AWS clients the tests drive.
venv: $(VENV)/.installed

$(VENV)/.installed: tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

# The JS v3 client the tests drive (tests/clients/js, pinned in its package-lock.json). AWS CLI v2
# and aws-sdk-go-v2 are Debian packages (`.ci/run` installs them); the tests build the Go client.
# Without npm the JS tests say they are skipped (under CI=true they fail instead).
JS_CLIENT := tests/clients/js
clients: $(JS_CLIENT)/node_modules/.installed

$(JS_CLIENT)/node_modules/.installed: $(JS_CLIENT)/package-lock.json
	@if command -v npm >/dev/null; then \
		cd $(JS_CLIENT) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "npm is not installed: the JS v3 client tests will be skipped"; fi

# Every test process runs with AWS_EC2_METADATA_DISABLED=true: nothing may ask a real IMDS.
# A test whose client, venv or root is missing passes without running (under CI=true it fails
# instead); libtest can only call it "ok", so the end of the run names each one and why.
SKIPPED_LOG := $(abspath target/skipped-tests.txt)
test: venv clients
	@mkdir -p target && rm -f $(SKIPPED_LOG)
	@status=0; \
	AWS_EC2_METADATA_DISABLED=true FINTORS_VENV=$(abspath $(VENV)) FINTORS_SKIPPED=$(SKIPPED_LOG) \
		$(CARGO) test || status=$$?; \
	if [ -s $(SKIPPED_LOG) ]; then \
		echo "make test: $$(wc -l < $(SKIPPED_LOG)) tests passed without running:"; \
		sort $(SKIPPED_LOG) | sed 's/^/  /'; \
	fi; \
	exit $$status

# The whole workspace: fintors, the code the tests and benchmarks share, the benchmarks.
# And the docs (no broken link), and the declared rust-version against what the locked
# dependencies need (tests/msrv.py). The lint policy itself is in Cargo.toml's [lints].
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace --quiet
	$(CARGO) metadata --format-version 1 --locked \
		--filter-platform "$$(rustc -vV | sed -n 's/^host: //p')" | $(PYTHON) tests/msrv.py

# The binary (a release build: minutes), then beside it under $(PREFIX)/share: the manual pages,
# the completions where bash-completion, zsh and fish look under a prefix, and the shell helpers.
# PREFIX=/usr/local (with sudo) puts everything where every user's tools find it.
install:
	$(CARGO) install --locked --path . --root "$(PREFIX)"
	$(MAKE) install-files BIN="$(PREFIX)/bin/fintors"

# What `install` puts beside the binary, from BIN (any build of fintors).
BIN ?= $(PREFIX)/bin/fintors
install-files:
	@test -n "$(SHARE)" && test "$(SHARE)" != / || { echo "PREFIX names no directory" >&2; exit 1; }
	install -d "$(SHARE)/fintors/shell" "$(SHARE)/man/man1" "$(SHARE)/bash-completion/completions" \
		"$(SHARE)/zsh/site-functions" "$(SHARE)/fish/vendor_completions.d"
	install -m 644 shell/fintors.bash shell/fintors.zsh shell/fintors.fish "$(SHARE)/fintors/shell/"
	"$(BIN)" completions bash > "$(SHARE)/bash-completion/completions/fintors"
	"$(BIN)" completions zsh > "$(SHARE)/zsh/site-functions/_fintors"
	"$(BIN)" completions fish > "$(SHARE)/fish/vendor_completions.d/fintors.fish"
	"$(BIN)" man --dir "$(SHARE)/man/man1"
	@echo "installed; the shell helpers are in $(SHARE)/fintors/shell (see the README)"

# Everything `install` put in place, and the user service if `fintors service install` wrote
# one. `sudo fintors network down` first if it is up; the state directory and ~/.fintorc are
# yours, removed only by hand (the README's "Uninstall" lists them).
uninstall:
	-"$(PREFIX)/bin/fintors" service uninstall
	$(MAKE) uninstall-files
	$(CARGO) uninstall --root "$(PREFIX)" fintors

uninstall-files:
	@test -n "$(SHARE)" && test "$(SHARE)" != / || { echo "PREFIX names no directory" >&2; exit 1; }
	rm -rf "$(SHARE)/fintors"
	rm -f "$(SHARE)/bash-completion/completions/fintors" "$(SHARE)/zsh/site-functions/_fintors" \
		"$(SHARE)/fish/vendor_completions.d/fintors.fish" "$(SHARE)/man/man1/fintors.1" \
		"$(SHARE)"/man/man1/fintors-*.1

# Starts the STS emulator and fintors on 127.0.0.1 with examples/fintorc.json; Ctrl-C stops both.
# A debug build: a demo needs no fat-LTO release build (minutes), and `make test` shares it.
# FINTORS_DEMO_PORT / FINTORS_DEMO_ECS_PORT / FINTORS_DEMO_STS_PORT pick other ports.
demo: venv
	$(CARGO) build
	VENV=$(abspath $(VENV)) FINTORS=$(abspath target/debug/fintors) bash examples/demo.sh

# Benchmarks against a bare-hyper ceiling (bench/); installs wrk, valgrind (instruction counts)
# and a font for the plot if missing. Not part of `make test`: these machines are shared and
# timing assertions would flake. `make bench-instructions` is the instruction count alone.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BENCH_ARGS ?=
bench:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }
	@command -v callgrind_control >/dev/null || $(SUDO) apt-get install -y -qq valgrind
	@[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || $(SUDO) apt-get install -y -qq fonts-dejavu-core
	$(CARGO) build --release
	$(CARGO) build --profile bench-tool -p fintors-bench
	target/bench-tool/fintors-bench run --fintors target/release/fintors --out bench/results $(BENCH_ARGS)

bench-instructions:
	@command -v callgrind_control >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq valgrind; }
	$(CARGO) build --release
	$(CARGO) build --profile bench-tool -p fintors-bench
	target/bench-tool/fintors-bench instructions --fintors target/release/fintors --out bench/results

# The same count on a release build that keeps its symbols (in target/profiling), leaving
# callgrind's dumps in target/callgrind for callgrind_annotate; the results stay out of bench/.
bench-profile:
	@command -v callgrind_control >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq valgrind; }
	FINTORS_KEEP_SYMBOLS=1 CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
		$(CARGO) build --release --target-dir target/profiling
	$(CARGO) build --profile bench-tool -p fintors-bench
	rm -rf target/callgrind
	target/bench-tool/fintors-bench instructions --fintors target/profiling/release/fintors \
		--out target/callgrind --dumps target/callgrind
	@echo "annotate one with: callgrind_annotate --inclusive=yes target/callgrind/callgrind.fintors.PID.N"

# The order the release build links fintors's functions in (bench/layout.order, read by build.rs):
# those a daemon runs from exec to serving, side by side, so start-up maps few pages of code.
# From a twin of the release build that keeps its symbols (the same names; not bench-profile's,
# whose debug info changes them). Again when a release build warns that the list was made for
# another Cargo.lock or rustc: a stale list only costs memory.
layout:
	@command -v callgrind_control >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq valgrind; }
	FINTORS_KEEP_SYMBOLS=1 $(CARGO) build --release --target-dir target/layout
	$(CARGO) build --profile bench-tool -p fintors-bench
	target/bench-tool/fintors-bench layout --fintors target/layout/release/fintors --out bench/layout.order

# Token flood, 10,000 idle connections, then SOAK_MINUTES of mixed traffic with role switches and
# forced refreshes; loopback only, bounded in time, exits non-zero if a verdict fails.
SOAK_MINUTES ?= 5
soak:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }
	$(CARGO) build --release
	$(CARGO) build --profile bench-tool -p fintors-bench
	target/bench-tool/fintors-bench soak --fintors target/release/fintors --minutes $(SOAK_MINUTES) --out bench/results

# Fuzzing (cargo-fuzz on nightly; not in CI): each target for FUZZ_SECONDS, seeded from fuzz/seeds/.
# No leak detection: the HTTP targets share one daemon whose tasks outlive each input, and
# libFuzzer would rescan the whole heap after every such input (100x slower).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= config_json aws_config_import roles_api_body router
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
	@failed=; for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$t && cp fuzz/seeds/$$t/* fuzz/corpus/$$t/ && \
		AWS_EC2_METADATA_DISABLED=true $(CARGO) +nightly fuzz run $$t fuzz/corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -detect_leaks=0 \
			|| failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed (inputs in fuzz/artifacts/)"; exit 1; fi

clean:
	$(CARGO) clean
	rm -rf $(VENV) $(JS_CLIENT)/node_modules
