# hybridscore — see README.md.
#
#   make run     the whole mission on the embedded default (no external service)
#   make test    every test: vet, unit and real-NATS/real-Redis tests,
#                Prometheus/Alertmanager checks, and the container suite
#                when Docker is there (CI forces every suite on)
#   make bench   the engine's benchmarks
#   make bin/nats-server   a nats-server binary (the module's version), for
#                `bin/publisher bench --nats-url` against a server in its own process
#   make images  container images, built locally (deployments/images.mk)

GO ?= go
GOTESTFLAGS ?= -count=1 -timeout 20m
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all build run test vet unit fuzz-short ops containers race bench fuzz fmt tidy clean

all: build

build:
	$(GO) build -ldflags "-X github.com/hybridscore/hybridscore/internal/server.Version=$(VERSION)" -o bin/ ./worker ./publisher

run: build
	./bin/publisher demo

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

unit:
	$(GO) test $(GOTESTFLAGS) ./...

ops:
	deployments/check-ops.sh

# The container suite (integration/, build tag "containers") needs Docker and
# the images of `make images`; it skips without Docker unless REQUIRE_DOCKER=1.
containers:
	@if [ ! -d integration ]; then echo "skip: no integration suite"; \
	elif [ "$$REQUIRE_DOCKER" = 1 ] || docker info >/dev/null 2>&1; then \
	  out=$$(mktemp); rc=0; \
	  TESTCONTAINERS_RYUK_DISABLED=true $(GO) test -tags containers $(GOTESTFLAGS) -v ./integration/... >"$$out" 2>&1 || rc=$$?; \
	  if [ $$rc -ne 0 ]; then cat "$$out"; \
	  else grep -E '^integration: ' "$$out"; n=$$(grep -c -- '--- SKIP' "$$out"); \
	    [ "$$n" -eq 0 ] || echo "integration: $$n tests SKIPPED: $$(grep -- '--- SKIP' "$$out" | sed 's/.*SKIP: \([^ ]*\).*/\1/' | tr '\n' ' ')"; \
	    grep -E '^(ok|FAIL)' "$$out"; fi; \
	  rm -f "$$out"; exit $$rc; \
	else echo "skip: Docker not available (REQUIRE_DOCKER=1 makes this fail)"; fi

test: vet unit fuzz-short ops containers

race:
	$(GO) test -race -count=1 ./internal/semcache ./internal/consumer ./internal/resultstore ./internal/scoring ./internal/server

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./pkg/... ./internal/...

# The nats-server of go.mod, as a program: `publisher bench --nats-url`
# compares the worker with the raw JetStream loop on a server in its own
# process, e.g. bin/nats-server -js -sd /tmp/bench-js -p 4333.
bin/nats-server: go.mod go.sum
	$(GO) build -o bin/nats-server github.com/nats-io/nats-server/v2

# Every fuzz target for a few seconds, beyond its committed corpus (make test).
# A count, not a duration: Go 1.26's fuzz coordinator can fail a run limited
# by time at its very end with "context deadline exceeded" and no crasher
# (go.dev/issue/75804, fixed in Go 1.27); a count has no deadline to race.
# 20,000 inputs take 1–5 s a target on this project's 2-core machine.
FUZZ_SHORT ?= 20000x
fuzz-short:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZ_SHORT) ./pkg/job
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeMatchesReference$$' -fuzztime $(FUZZ_SHORT) ./pkg/job
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZ_SHORT) ./internal/langextract
	$(GO) test -run '^$$' -fuzz '^FuzzAnalyze$$' -fuzztime $(FUZZ_SHORT) ./internal/analyzer
	$(GO) test -run '^$$' -fuzz '^FuzzFeaturesDecode$$' -fuzztime $(FUZZ_SHORT) ./internal/similarity
	$(GO) test -run '^$$' -fuzz '^FuzzScoreNeverPanics$$' -fuzztime $(FUZZ_SHORT) ./internal/scoring

# Each fuzz target for a short while (the committed corpora run in `make test`).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./internal/langextract
	$(GO) test -run '^$$' -fuzz FuzzAnalyze -fuzztime 30s ./internal/analyzer
	$(GO) test -run '^$$' -fuzz FuzzFeaturesDecode -fuzztime 30s ./internal/similarity
	$(GO) test -run '^$$' -fuzz FuzzScoreNeverPanics -fuzztime 30s ./internal/scoring

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	$(GO) mod tidy

clean:
	rm -rf bin

include deployments/images.mk
