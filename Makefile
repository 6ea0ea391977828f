# zviz build, demo, test and bench entry points. `sudo make demo` and
# `sudo make test` set up a fresh Debian 12 machine themselves (hack/setup.sh).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
# sudo's secure_path drops Go's directory.
export PATH := /usr/local/go/bin:$(PATH)
export GOTOOLCHAIN := local
# encoding/json on the v2 implementation (Go 1.25+ experiment): decoding
# config.json cold (first use of its types, i.e. every zviz process) costs
# ~0.35 ms instead of ~1.2 ms, on the parent's and the init's paths.
export GOEXPERIMENT := jsonv2

GO        ?= go
BIN       := bin/zviz
VERSION   := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# A static binary: the init is exec'd on every create, and skipping the
# dynamic loader saves about 0.8 ms each time.
LDFLAGS   := -s -w -extldflags -static -X main.version=$(VERSION)
TESTFLAGS ?= -v
TEST_USER ?= zviztest

.PHONY: all build setup host-setup demo test test-host test-vm check-fmt vet depcheck lint bench clean

all: build

# setup must finish before build (libseccomp-dev), even under make -j.
.NOTPARALLEL:

build:
	CGO_ENABLED=1 $(GO) build -tags osusergo,netgo -trimpath -buildvcs=false -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/zviz

setup:
	hack/setup.sh

# test and bench also work unprivileged, without the host set-up (tests that
# need it then skip, naming what is missing).
host-setup:
	@if [[ $$(id -u) -eq 0 ]]; then hack/setup.sh; else echo "make: not root: skipping hack/setup.sh"; fi

# What an unprivileged user sees inside `zviz sandbox`: run as $(TEST_USER)
# from a scratch directory it owns, with a copy of the binary it can reach.
DEMO_SCRIPT := \
	echo "== who am I: $$(whoami 2>&1)"; id; \
	echo "== hostname: $$(hostname)"; \
	echo "== network interfaces (this network namespace):"; \
	ip -brief link 2>/dev/null || tail -n +3 /proc/net/dev | cut -d: -f1; \
	echo "== touch /zviz-demo (the root is read-only):"; \
	if touch /zviz-demo 2>&1; then echo "UNEXPECTED: / is writable"; else echo "refused, as it should be"; fi; \
	echo "== touch ./zviz-demo (the working directory is writable):"; \
	touch ./zviz-demo && ls -l ./zviz-demo; \
	echo "== capabilities, no_new_privs, seccomp:"; \
	grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp)" /proc/self/status; \
	echo "== unshare --user (refused; --log-denials shows the call):"; \
	unshare --user true 2>&1 || true; \
	echo "== ls ~/.ssh (credentials hidden):"; \
	ls -A ~/.ssh 2>&1 | head -3 || true

demo: setup build
	@dir=$$(mktemp -d /tmp/zviz-demo.XXXXXX); trap 'rm -rf "$$dir"' EXIT; \
	chmod 0755 "$$dir"; install -m 0755 $(BIN) "$$dir/zviz"; \
	install -d -o $(TEST_USER) -g $(TEST_USER) "$$dir/work"; \
	uid=$$(id -u $(TEST_USER)); cd "$$dir/work"; \
	echo "+ (as $(TEST_USER)) zviz sandbox -- sh -c '...'"; \
	setpriv --reuid=$(TEST_USER) --regid=$(TEST_USER) --init-groups --reset-env \
		env XDG_RUNTIME_DIR=/run/user/$$uid \
		"$$dir/zviz" --log-denials sandbox -- sh -c '$(DEMO_SCRIPT)'

check-fmt:
	@files=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path './bin/*' -print0 | xargs -0 -r gofmt -l); \
	if [[ -n "$$files" ]]; then echo "gofmt needed:"; echo "$$files"; exit 1; fi

vet:
	$(GO) vet ./...

depcheck:
	hack/depcheck.sh

# Everything: the host tests, then the VM stage (below) on its own, since
# the VM takes both cores.
test: host-setup build check-fmt vet depcheck
	$(GO) test -count=1 -timeout 30m $(TESTFLAGS) ./...
	ZVIZ_TEST_VM=1 $(GO) test -count=1 -timeout 40m $(TESTFLAGS) ./tests/vm/

# The host tests alone (skips the VM stage).
test-host: host-setup build check-fmt vet depcheck
	$(GO) test -count=1 -timeout 30m $(TESTFLAGS) ./...

# The VM stage (hack/vm.sh, tests/vm): a Debian guest under qemu (TCG) with
# systemd as PID 1, for real cgroup v2 limits (zviz's own memory, pids and
# cpu limits, update, pause) and AppArmor. It builds its image the first
# time (a few minutes; cached in /var/cache/zviz-test) and boots it (about a
# minute). Needs root; skipped otherwise.
test-vm: host-setup
	ZVIZ_TEST_VM=1 $(GO) test -count=1 -timeout 40m $(TESTFLAGS) ./tests/vm/

lint:
	hack/lint.sh

bench: host-setup
	hack/bench.sh

clean:
	rm -rf bin
