# debship — the two commands of the README are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
export PATH := /usr/local/go/bin:$(PATH)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# -s -w: no symbol table or DWARF, as any packaged binary (lintian:
# unstripped-binary); -buildmode=pie for ASLR (lintian: hardening-no-pie).
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN := bin/debship

# Debian packages debship needs to build and check packages (make demo) ...
BUILD_DEPS := python3 python3-venv python3-pip python3-setuptools python3-wheel \
	python3-pip-whl python3-setuptools-whl python3-wheel-whl git dpkg-dev lintian
# ... and what the test suite needs on top (the chroot, the lab, the oracles,
# the docker job's image and registry).
TEST_DEPS := $(BUILD_DEPS) python3-packaging python3-dev gcc debootstrap \
	systemd-container systemd zstd xz-utils openssh-client iproute2 \
	procps psmisc curl util-linux tcpdump python3-urllib3 iptables shellcheck \
	buildah podman runc docker-registry apache2-utils

.PHONY: all build demo test test-unit test-lab lab-prepare-trixie lab-prepare-bookworm deps test-deps vet shellcheck fmt deb clean bench

all: build

build:
	$(GO) build -trimpath -buildmode=pie -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/debship

# Install missing Debian packages (needs root; does nothing when all are there).
define apt_install
	@missing=""; for p in $(1); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing; install them with: sudo apt-get install$$missing" >&2; exit 1; fi; \
		echo "installing Debian packages:$$missing" >&2; \
		export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef
deps:
	$(call apt_install,$(BUILD_DEPS))
test-deps:
	$(call apt_install,$(TEST_DEPS))

# Build debship, package the example, show what is in the package. The
# example has no dependencies: --no-index builds it offline, with setuptools
# from Debian's python3-setuptools-whl.
demo: deps build
	$(BIN) build examples/hello-web --output dist --no-index
	$(BIN) inspect --check dist/hello-web_*.deb

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

# The shell scripts that are not Go templates (those are rendered and
# checked by the tests of the package that renders them).
SH_FILES = .ci/run $(wildcard bench/*.sh) templates/files/lab/cgroup-exec.sh \
	templates/files/lab/policy-rc.d templates/files/cluster/tinc-down
shellcheck:
	shellcheck $(SH_FILES)

# The packages whose tests boot the lab. They run one package at a time,
# after the others and with the machine to themselves: their deploy and
# failover bounds are about debship, not about a loaded machine. The lab
# tests start from snapshots of an applied cluster (labtest.Applied), made
# once per code version, unless what they test is the apply itself.
LAB_PKGS := ./cluster/lab ./cluster/setup ./cluster/deploy
# The IP move's tests time real connections in network namespaces: they
# run alone too, before the lab packages, under the race detector.
ALONE_PKGS := ./cluster/ipmove
UNIT_PKGS = $(shell $(GO) list ./... | grep -v -x -e '.*/cluster/lab' -e '.*/cluster/setup' -e '.*/cluster/deploy' -e '.*/cluster/ipmove')

# The whole test suite: every other package under the race detector, in
# parallel, while the lab's base roots are built (the CPU-heavy part, all
# at once); then the lab packages. Tests that need root, the chroot or the
# lab fail (not skip) when CI=true and a prerequisite is missing.
test: test-deps vet shellcheck
	$(MAKE) --no-print-directory -j 3 test-unit lab-prepare-trixie lab-prepare-bookworm
	$(MAKE) --no-print-directory test-lab

lab-prepare-trixie lab-prepare-bookworm: build
	$(BIN) lab prepare --release $(subst lab-prepare-,,$@)

# TESTFLAGS: more go test flags, e.g. make test TESTFLAGS=-v for every
# test's log and duration.
TESTFLAGS ?=
test-unit:
	$(GO) test $(TESTFLAGS) -count=1 -race -timeout 20m $(UNIT_PKGS)

test-lab:
	$(GO) test $(TESTFLAGS) -count=1 -race -timeout 10m $(ALONE_PKGS)
	$(GO) test $(TESTFLAGS) -count=1 -p 1 -timeout 60m $(LAB_PKGS)

bench: build
	./bench/build.sh

clean:
	rm -rf bin dist examples/hello-web/dist

# debship's own .deb: /usr/bin/debship, a man page made from its --help,
# bash completion (packaging/debship-deb; the last line is the .deb's path).
DEB_OUT ?= dist
deb: build
	$(GO) run ./packaging/debship-deb --binary $(BIN) --version $(VERSION) --output $(DEB_OUT)
