# ferry: build, run and test on Debian 12. `make run` and `make test` install
# what is missing first (as root), so a fresh machine needs nothing else.

SHELL   := /bin/bash
GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN     := bin
CONFIG  ?=
# make install: DESTDIR for a staging root, PREFIX for the binaries.
DESTDIR ?=
PREFIX  ?= /usr/local
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X ferry/cmd/internal/cli.Version=$(VERSION) -X ferry/cmd/internal/cli.Commit=$(COMMIT)
PKGS_PURE := ./netaddr/... ./internal/... ./cache/... ./fib/... ./pipeline/... ./conf/...

# Go code for the x86-64 level of this CPU, as -march=native is for C: at
# v3 (AVX2, BMI2; every x86 server since 2013) popcounts and shifts are
# single instructions instead of calls behind a CPU check. A CPU (or a
# virtual machine) without one of v3's features gets v2, which DPDK's own
# x86 build (SSE4.2, POPCNT) needs anyway: popcounts stay single
# instructions, about 5% of a forwarded packet's cycles on a 900k table.
# (The FIB's bulk walk, fib/walk_amd64.s, checks for what it uses at run
# time.) A binary for older CPUs: make build GOAMD64=v1.
GOAMD64 ?= $(shell for x in avx2 bmi1 bmi2 fma f16c movbe abm popcnt; do \
	grep -qw $$x /proc/cpuinfo 2>/dev/null || { \
	for y in popcnt sse4_2 ssse3 cx16; do grep -qw $$y /proc/cpuinfo 2>/dev/null || { echo v1; exit; }; done; \
	echo v2; exit; }; done; echo v3)
export GOAMD64

# Debian packages the build, the router and the tests need.
DEB_PKGS := dpdk dpdk-dev libdpdk-dev dpdk-doc pkg-config gcc make iproute2 \
            iputils-ping traceroute netcat-openbsd ethtool python3 gnuplot-nox bird2

.PHONY: all deps build run test test-unit test-e2e bench bench-table bench-micro fmt lint clean print-goamd64 install tidy-check

all: build

deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "make deps: missing packages: $$missing"; \
			echo "make deps: run as root (or: sudo apt-get install -y $$missing)"; exit 1; \
		fi; \
		echo "make deps: installing $$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@test -x "$(GO)" || { echo "make deps: Go not found (looked for 'go' on PATH and /usr/local/go/bin/go)"; exit 1; }

build: deps
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ferryd ./cmd/ferryd
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ferryctl ./cmd/ferryctl
	$(GO) build -o $(BIN)/ferry-pktgen ./cmd/ferry-pktgen
	$(GO) build -o $(BIN)/ferry-bench ./cmd/ferry-bench

run: build
	$(BIN)/ferryd $(if $(CONFIG),--config $(CONFIG),--demo)

# Binaries, the systemd unit, the hugepage helper and an example
# /etc/ferry/ferry.yaml (an existing one is kept). DESTDIR stages it.
install: build
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/libexec/ferry \
		$(DESTDIR)/etc/systemd/system $(DESTDIR)/etc/ferry $(DESTDIR)$(PREFIX)/share/doc/ferry
	install -m 0755 $(BIN)/ferryd $(DESTDIR)$(PREFIX)/sbin/ferryd
	install -m 0755 $(BIN)/ferryctl $(DESTDIR)$(PREFIX)/bin/ferryctl
	install -m 0755 deploy/reserve-hugepages $(DESTDIR)$(PREFIX)/libexec/ferry/reserve-hugepages
	sed 's#/usr/local/#$(PREFIX)/#g' deploy/ferryd.service > $(DESTDIR)/etc/systemd/system/ferryd.service
	chmod 0644 $(DESTDIR)/etc/systemd/system/ferryd.service
	test -e $(DESTDIR)/etc/ferry/ferry.yaml || install -m 0640 deploy/ferry.yaml $(DESTDIR)/etc/ferry/ferry.yaml
	install -m 0644 docs/deploy.md README.md $(DESTDIR)$(PREFIX)/share/doc/ferry/

# go.mod and go.sum say exactly what the code imports.
tidy-check:
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run 'go mod tidy'"; $(GO) mod tidy -diff; exit 1; }

test: build tidy-check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) test -count=1 $(PKGS_PURE)
	$(GO) test -count=1 -race $(PKGS_PURE)
	$(GO) test -count=1 ./cmd/...
	$(GO) test -count=1 -v -timeout 20m ./dpdk/... ./e2e/...

test-unit: deps
	CGO_ENABLED=0 $(GO) test -count=1 $(PKGS_PURE)

test-e2e: build
	$(GO) test -count=1 -v -timeout 20m ./e2e/...

# The forwarding benchmark: source limit, ferryd and DPDK's l3fwd side by
# side over memif (results in bench/results/). BENCH_ARGS passes options.
bench: build
	$(BIN)/ferry-bench $(BENCH_ARGS)

# A full table in ferryd: load, route show and replace times, and memory.
bench-table: build
	bench/full-table.sh

# Go micro-benchmarks of the FIB, caches and packet path.
bench-micro: deps
	CGO_ENABLED=0 $(GO) test -run '^$$' -bench . -benchmem -benchtime 2s $(PKGS_PURE)

fmt:
	gofmt -w $$(git ls-files '*.go')

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf $(BIN)

# The x86-64 level the Go code is built for (for scripts).
print-goamd64:
	@echo $(GOAMD64)
