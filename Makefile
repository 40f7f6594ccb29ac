# quayctl — build, run and test. GNU make.
#
#   make build        bin/quayctl (static, CGO_ENABLED=0)
#   make run          build, then quayctl serve on the embedded default (http://localhost:8080)
#   make test         install what tests need (scripts/install-test-deps.sh), run every test
#   make test-short   quick tests only (go test -short)
#   make bench        benchmarks
#   make bench-s3     the 1 GiB push/pull benchmarks on S3 storage (versitygw on loopback) alone
#   make conformance  the OCI distribution conformance suite against quayctl serve
#   make lint         go vet + gofmt
#   make image        podman image quayctl:dev from the Containerfile
#   make clean        remove bin/ and results/ (keeps ./quay-data)

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
MAKEFLAGS += --no-print-directory

GO ?= go

# Pure-Go build everywhere (SQLite is modernc.org/sqlite); the tags let the
# podman v5 bindings build without cgo or btrfs/devicemapper/gpgme headers.
GO_TAGS := remote exclude_graphdriver_btrfs btrfs_noversion exclude_graphdriver_devicemapper containers_image_openpgp
export CGO_ENABLED := 0

comma := ,
empty :=
space := $(empty) $(empty)
GO_TAGS_FLAG := -tags '$(subst $(space),$(comma),$(strip $(GO_TAGS)))'

VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/quayctl/quayctl/internal/version.Version=$(VERSION)

BIN_DIR := $(CURDIR)/bin
RESULTS_DIR := $(CURDIR)/results
PKGS ?= ./...

TEST_TIMEOUT ?= 40m
TEST_PARALLEL ?= 2
TEST_FLAGS ?=
TEST_LOG := $(RESULTS_DIR)/go-test.log
BENCH ?= .
BENCH_FLAGS ?=

# `make run` serves the embedded default: SQLite + local blobs in ./quay-data.
RUN_ARGS ?= --listen :8080 --data-dir ./quay-data

# The conformance e2e test finds the suite's binary here (built by
# scripts/install-test-deps.sh).
export QUAYCTL_CONFORMANCE_BIN := $(BIN_DIR)/conformance
# The S3 tests run against versitygw (also built by install-test-deps.sh);
# under make they must run, not skip.
export QUAYCTL_VERSITYGW_BIN := $(BIN_DIR)/versitygw
export QUAYCTL_REQUIRE_S3 := 1

IMAGE ?= quayctl:dev

.PHONY: all build run deps test test-short bench conformance lint fmt image clean help

all: build

help:
	@sed -n 's/^#   make /make /p' $(firstword $(MAKEFILE_LIST))

build:
	$(GO) build $(GO_TAGS_FLAG) -ldflags "$(LDFLAGS)" -o $(BIN_DIR)/quayctl ./cmd/quayctl

run: build
	$(BIN_DIR)/quayctl serve $(RUN_ARGS)

# Installs only what is missing: PostgreSQL 15, podman, runc, skopeo,
# redis-server (apt), bin/conformance and bin/versitygw (go install). Quiet
# when all present.
deps:
	@bash scripts/install-test-deps.sh

# Runs every package (2 at a time), saves go test's output to
# results/go-test.log, prints a summary and fails when go test fails.
test: deps
	@mkdir -p $(RESULTS_DIR)
	@echo "go test $(GO_TAGS_FLAG) -count=1 -timeout $(TEST_TIMEOUT) -p $(TEST_PARALLEL) $(TEST_FLAGS) $(PKGS)"
	@set +e; \
	start=$$(date +%s); \
	$(GO) test $(GO_TAGS_FLAG) -count=1 -timeout $(TEST_TIMEOUT) -p $(TEST_PARALLEL) $(TEST_FLAGS) $(PKGS) 2>&1 | tee $(TEST_LOG); \
	rc=$${PIPESTATUS[0]}; \
	secs=$$(( $$(date +%s) - start )); \
	ok=$$(grep -cE '^ok[[:space:]]' $(TEST_LOG)); \
	failed=$$(grep -cE '^FAIL[[:space:]]+[^[:space:]]' $(TEST_LOG)); \
	notests=$$(grep -cE '^\?[[:space:]].*\[no test files\]' $(TEST_LOG)); \
	echo; \
	echo "==== go test summary ($${secs}s, log: $(TEST_LOG)) ===="; \
	grep -E '^(ok|FAIL)[[:space:]]+[^[:space:]]|^--- FAIL' $(TEST_LOG); \
	echo "packages: $$ok ok, $$failed failed, $$notests without tests"; \
	if [ $$rc -ne 0 ]; then echo "make test: FAILED (go test exit status $$rc)"; exit $$rc; fi; \
	echo "make test: PASSED"

test-short:
	$(GO) test $(GO_TAGS_FLAG) -short -count=1 -timeout $(TEST_TIMEOUT) -p $(TEST_PARALLEL) $(TEST_FLAGS) $(PKGS)

bench: deps
	$(GO) test $(GO_TAGS_FLAG) -run '^$$' -bench '$(BENCH)' -benchmem -timeout $(TEST_TIMEOUT) $(BENCH_FLAGS) $(PKGS)

# The S3 benchmarks (registry/e2e/s3bench_test.go) also run in `make bench`.
.PHONY: bench-s3
bench-s3: deps
	$(GO) test $(GO_TAGS_FLAG) -run '^$$' -bench '^BenchmarkS3(Push|Pull)1GiB$$' -benchmem -timeout $(TEST_TIMEOUT) $(BENCH_FLAGS) ./registry/e2e/

conformance: deps
	$(GO) test $(GO_TAGS_FLAG) -count=1 -timeout $(TEST_TIMEOUT) -v -run TestConformance ./registry/e2e/...

# Go files outside testdata/, vendor/, bin/ and hidden or _ directories.
GO_FILES_CMD := find . \( -name testdata -o -name vendor -o -path ./bin -o -name '.?*' -o -name '_*' \) -prune -o -name '*.go' -type f -print

lint:
	@rc=0; \
	unformatted=$$($(GO_FILES_CMD) | xargs -r gofmt -l); \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run: make fmt):"; echo "$$unformatted" | sed 's/^/  /'; rc=1; \
	fi; \
	echo "go vet $(GO_TAGS_FLAG) $(PKGS)"; \
	$(GO) vet $(GO_TAGS_FLAG) $(PKGS) || rc=1; \
	exit $$rc

fmt:
	@$(GO_FILES_CMD) | xargs -r gofmt -w

# runc + cgroupfs + ulimits the sandbox accepts, unless CONTAINERS_CONF is set.
image: build
	@test -f Containerfile || { echo "make image: no Containerfile in $(CURDIR) yet"; exit 1; }
	@# A scratch image has no shell to mkdir/chown: ship the directory skeleton.
	@rm -rf $(BIN_DIR)/image-root
	@install -d -m 0775 $(BIN_DIR)/image-root/conf/stack $(BIN_DIR)/image-root/datastorage
	@install -d -m 1777 $(BIN_DIR)/image-root/tmp
	CONTAINERS_CONF=$${CONTAINERS_CONF:-$(CURDIR)/scripts/containers.conf} podman build -t $(IMAGE) -f Containerfile .

clean:
	rm -rf $(BIN_DIR) $(RESULTS_DIR)
