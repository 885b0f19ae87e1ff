# adaptfs — build, test, demo, bench.  `make help` lists the targets.

GO                := go
PREFIX            ?= /usr/local
# mount(8) looks for its helpers in /sbin only.
SBINDIR           ?= /sbin
VERSITYGW_VERSION := v1.8.0
VERSITYGW_PKG     := github.com/versity/versitygw/cmd/versitygw

.PHONY: help build deps demo test reftest bench bench-smoke vet clean install uninstall fuzz fuzz-short soak

help:
	@echo "make build         bin/adaptfs"
	@echo "make bin/versitygw the pinned local S3 test server ($(VERSITYGW_VERSION))"
	@echo "make deps          check (as root: install) fuse3, rsync, tar"
	@echo "make demo          mount a local bucket and copy a data set in"
	@echo "make test          all tests, end to end included"
	@echo "make reftest       the model-based test for 20 minutes (ADAPTFS_REFTEST_SECONDS, ADAPTFS_REFTEST_SEED)"
	@echo "make bench         all benchmarks: loopback copy vs the SDK, every emulated-link scenario (long)"
	@echo "make bench-smoke   one 30 s scenario, one run (CI runs it inside make test)"
	@echo "make soak          ADAPTFS_SOAK_GB GiB (default 20) through a wandering faulty link, RSS and goroutines watched"
	@echo "make fuzz          each fuzz target for FUZZTIME (default 5m; make test runs each for 20000 executions)"
	@echo "make vet           gofmt check + go vet"
	@echo "make install       PREFIX/bin/adaptfs (PREFIX=$(PREFIX)) and SBINDIR/mount.adaptfs (SBINDIR=$(SBINDIR)) for fstab"
	@echo "make uninstall     remove what make install put there"
	@echo "make clean         remove bin/adaptfs, demo/, bench-results/ (keeps bin/versitygw)"

VERSION           ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/adaptfs ./cmd/adaptfs

install: build
	install -D -m 0755 bin/adaptfs $(DESTDIR)$(PREFIX)/bin/adaptfs
	install -d $(DESTDIR)$(SBINDIR)
	ln -sf $(PREFIX)/bin/adaptfs $(DESTDIR)$(SBINDIR)/mount.adaptfs

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/adaptfs $(DESTDIR)$(SBINDIR)/mount.adaptfs

bin/versitygw:
	GOBIN=$(CURDIR)/bin $(GO) install $(VERSITYGW_PKG)@$(VERSITYGW_VERSION)

deps:
	@missing=""; \
	for c in fusermount3 rsync tar ip jq tmux zstd; do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -z "$$missing" ]; then \
		echo "deps: fusermount3, rsync, tar, ip, jq, tmux and zstd are installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "deps: missing$$missing; running apt-get install -y fuse3 rsync tar iproute2 jq tmux zstd"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y fuse3 rsync tar iproute2 jq tmux zstd; \
	else \
		echo "deps: missing$$missing; install them with: sudo apt-get install fuse3 rsync tar iproute2 jq tmux zstd" >&2; exit 1; \
	fi
	@[ -e /dev/fuse ] || echo "deps: warning: /dev/fuse is missing, mounts will fail" >&2

demo: deps build bin/versitygw
	$(GO) run ./test/cmd/demo --adaptfs bin/adaptfs --versitygw bin/versitygw --dir demo

# -p 1: packages one at a time; the emulated-link tests measure rates and
# must not share the two cores with the end-to-end copies.
test: deps build bin/versitygw
	$(GO) test ./... -p 1 -count=1 -timeout 40m
	$(MAKE) fuzz-short

# Fuzz targets: the config file and option parsers, the manifest decoder,
# the seek table parser. `make test` runs each for FUZZ_SHORT executions: a
# count, because a duration-bound run can fail at its deadline with
# "context deadline exceeded" on Go 1.26 (golang/go#75804). The seed corpus
# in testdata/fuzz always runs with go test. `make fuzz` runs each for
# FUZZTIME.
FUZZ_TARGETS = ./cmd/adaptfs/config:FuzzLoad ./cmd/adaptfs/config:FuzzApplyOptions \
	./cmd/adaptfs/config:FuzzCredentialsNotEchoed ./stage:FuzzDecodeManifest ./zseek:FuzzParseSeekTable
FUZZ_SHORT ?= 20000x
FUZZTIME ?= 5m
fuzz-short:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $$t for $(FUZZ_SHORT)"; \
		out=$$($(GO) test $${t%%:*} -run XXX -fuzz "^$${t##*:}$$" -fuzztime $(FUZZ_SHORT) 2>&1) || { echo "$$out"; exit 1; }; \
	done
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $$t for $(FUZZTIME)"; \
		$(GO) test $${t%%:*} -run XXX -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

# The model-based test (test/reftest_test.go) for a long time; make test runs
# a bounded number of sequences (ADAPTFS_REFTEST_CHECKS, default 6).
# Environment: ADAPTFS_REFTEST_SECONDS (default 1200), ADAPTFS_REFTEST_SEED
# (default random, printed).
ADAPTFS_REFTEST_SECONDS ?= 1200
reftest: deps build bin/versitygw
	ADAPTFS_REFTEST_SECONDS=$(ADAPTFS_REFTEST_SECONDS) $(GO) test ./test/ -run 'TestReference$$' -count=1 -v -timeout $$(( $(ADAPTFS_REFTEST_SECONDS) + 900 ))s

bench: deps build bin/versitygw
	$(GO) test ./test/ -run XXX -bench . -benchtime 1x -timeout 600m

# The soak (not in CI): ADAPTFS_SOAK_GB GiB (default 20) through a wandering
# emulated link and a faulty proxy, RSS and goroutines watched.
ADAPTFS_SOAK_GB ?= 20
soak: deps build bin/versitygw
	ADAPTFS_SOAK=1 ADAPTFS_SOAK_GB=$(ADAPTFS_SOAK_GB) $(GO) test ./test/ -run 'TestSoak$$' -count=1 -v -timeout 300m

bench-smoke: deps build bin/versitygw
	ADAPTFS_BENCH_OUT=$(CURDIR)/bench-results $(GO) test ./test/ -run TestBenchSmoke -count=1 -v -timeout 20m

vet:
	@bad=$$(gofmt -l $$(find . -name '*.go' -not -path './bin/*' -not -path './demo/*')); \
	if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...

clean:
	@if grep -qF ' $(CURDIR)/demo/mnt ' /proc/self/mountinfo; then umount -l demo/mnt; fi
	rm -rf bin/adaptfs demo bench-results
