# h2scope — see README.md. `make test` is the test command CI runs.

GO      ?= go
BIN     := bin/h2scope
BIG     ?= /tmp/h2scope-big.pcap
BIG_SIZE ?= 500MB
BIG_H2  ?= /tmp/h2scope-big-h2.pcap
H2_BASE := testdata/pcaps/grpc-streaming-h2c
BENCH_GRPC ?= /tmp/h2scope-bench-grpc.pcapng
BENCH_CALLS ?= 40000
CONNS_250K ?= /tmp/h2scope-conns-250k.pcap
CONNS_FLOOD ?= /tmp/h2scope-synflood-1m.pcap
CONNS_1M ?= /tmp/h2scope-conns-1m.pcap
H2_PORT = $(shell grep -o '"server": *"[^"]*"' $(H2_BASE).truth.json | head -1 | sed 's/.*://; s/"//g')
FUZZTIME ?= 30s

.PHONY: all build test conformance bench bench-conns pgo bench-more bench-go testdata testdata-one testdata-stacks fuzz lint clean beam test-beam bench-beam

all: build

build:
	$(GO) build -o $(BIN) ./cmd/h2scope

# Unit tests, golden files and the committed fuzz corpora: quick.
test:
	$(GO) test ./...

# h2scope against tshark (the oracle) and the truth files, on testdata/pcaps
# and ../shared/corpus. Slow; needs tshark.
conformance:
	$(GO) test -tags conformance -count=1 -v ./conformance

# Issue 7's comparison, on real grpc-go traffic (40,000 unary calls on 4
# h2c connections, about 500 MB; captured once, as root): h2scope analyze
# --json against the bare gopacket loop and tshark -T fields -e http2.type
# (default and --disable-protocol grpc), times, ratios, max RSS, and
# BenchmarkAnalyze's allocations per packet.
bench: build $(BENCH_GRPC)
	$(GO) run ./tools/bench -h2scope $(BIN) -analyze $(BENCH_GRPC)

$(BENCH_GRPC):
	$(GO) run ./tools/capgen -grpc-bench $@ -calls $(BENCH_CALLS)

# The CPU profile go build optimises the binary with (profile-guided
# optimisation): analyze --json on the gRPC bench capture, the many-
# connection captures and the project's own, once each.
pgo: $(BENCH_GRPC) $(CONNS_250K) $(CONNS_FLOOD)
	H2SCOPE_PGO="$(abspath $(BENCH_GRPC)):$(abspath $(CONNS_250K)):$(abspath $(CONNS_FLOOD)):$$(ls $(CURDIR)/testdata/pcaps/*.pcapng $(CURDIR)/testdata/pcaps/*/*.pcapng | tr '\n' ':' | sed 's/:$$//')" \
		$(GO) test -run '^$$' -bench BenchmarkProfile -benchtime 1x -cpuprofile cmd/h2scope/default.pgo -o /tmp/h2scope-pgo.test ./cmd/h2scope

# Issue 13's comparison, on synthetic captures of many connections (seeded,
# generated once, no root): 250k short HTTP/1.1 connections (~127 MB), 1M
# unanswered SYNs from spoofed sources (~59 MB), 1M short connections
# (~509 MB). For each: analyze --json against the bare loop (same run),
# max RSS, the JSON report's size, conns --json's max RSS; and the gRPC
# bench's analyze figures.
bench-conns: build $(CONNS_250K) $(CONNS_FLOOD) $(CONNS_1M) $(BENCH_GRPC)
	$(GO) run ./tools/bench -h2scope $(BIN) -conns -grpc $(BENCH_GRPC) $(CONNS_250K) $(CONNS_FLOOD) $(CONNS_1M)

$(CONNS_250K):
	$(GO) run ./tools/capgen -conns $@ -kind short -n 250k

$(CONNS_FLOOD):
	$(GO) run ./tools/capgen -conns $@ -kind syn-flood -n 1M

$(CONNS_1M):
	$(GO) run ./tools/capgen -conns $@ -kind short -n 1M

# The older comparisons: conns --json on tiled HTTP/1.1, frames --json on
# tiled gRPC streaming, and the package benchmarks.
bench-more: build $(BIG) $(BIG_H2) bench-go
	$(GO) run ./tools/bench -h2scope $(BIN) $(BIG)
	$(GO) run ./tools/bench -h2scope $(BIN) -h2port $(H2_PORT) $(BIG_H2)

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./dissect/...
	H2SCOPE_BENCH_FILE=$(BIG_H2) $(GO) test -run '^$$' -bench BenchmarkRun -benchtime 3x ./dissect

$(BIG):
	$(GO) run ./tools/capgen -big $(BIG) -size $(BIG_SIZE) -from testdata/pcaps/http1-keepalive.pcapng

# gRPC over h2c, tiled: HTTP/2 frames/s against tshark.
$(BIG_H2):
	$(GO) run ./tools/capgen -big $(BIG_H2) -size 200MB -from $(H2_BASE).pcapng

# The Apache Beam pipeline (beam/, its own module): build, test, bench.
BEAM_BIN := bin/h2scope-beam
beam:
	cd beam && $(GO) build -o ../$(BEAM_BIN) ./cmd/h2scope-beam

test-beam:
	cd beam && $(GO) vet ./... && $(GO) test ./...

bench-beam:
	beam/bench.sh

# Regenerate the committed captures from real Go clients and servers (root:
# captures on lo). One scenario: make testdata-one NAME=http1-keepalive
testdata:
	$(GO) run ./tools/capgen -out testdata/pcaps

testdata-one:
	$(GO) run ./tools/capgen -out testdata/pcaps -only $(NAME)

# Regenerate only the stack captures (testdata/pcaps/stacks: nginx, h2o,
# haproxy, nghttp2, curl, openssl, python, grpcio; root, and the Debian
# packages capgen names when one is missing), one scenario after another.
testdata-stacks:
	$(GO) build -o bin/capgen ./tools/capgen
	for n in $$(bin/capgen -list | awk '/live, stacks\//{print $$1}'); do bin/capgen -out testdata/pcaps -only $$n || exit 1; done

# Run every fuzz target for FUZZTIME each; crashers land in testdata/fuzz.
# FuzzAnalyze's inputs are whole captures: minimising each new one for the
# default minute would leave it no time to fuzz.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzRead -fuzztime $(FUZZTIME) ./dissect/capture
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./dissect/layer
	$(GO) test -run '^$$' -fuzz FuzzTracker -fuzztime $(FUZZTIME) ./dissect/tcp
	$(GO) test -run '^$$' -fuzz FuzzDetect -fuzztime $(FUZZTIME) ./dissect/sniff
	$(GO) test -run '^$$' -fuzz FuzzHTTP1 -fuzztime $(FUZZTIME) ./dissect/http1
	$(GO) test -run '^$$' -fuzz FuzzFrames -fuzztime $(FUZZTIME) ./dissect/http2
	$(GO) test -run '^$$' -fuzz FuzzHPACK -fuzztime $(FUZZTIME) ./dissect/http2
	$(GO) test -run '^$$' -fuzz FuzzRecordRoundTrip -fuzztime $(FUZZTIME) ./dissect/http2
	$(GO) test -run '^$$' -fuzz FuzzMessages -fuzztime $(FUZZTIME) ./dissect/grpc
	$(GO) test -run '^$$' -fuzz FuzzCallRoundTrip -fuzztime $(FUZZTIME) ./dissect/grpc
	$(GO) test -run '^$$' -fuzz FuzzRecords -fuzztime $(FUZZTIME) ./dissect/tls
	$(GO) test -run '^$$' -fuzz FuzzDecrypt -fuzztime $(FUZZTIME) ./dissect/tls
	$(GO) test -run '^$$' -fuzz FuzzKeyLog -fuzztime $(FUZZTIME) ./dissect/tls
	$(GO) test -run '^$$' -fuzz FuzzAnalyze -fuzztime $(FUZZTIME) -fuzzminimizetime 3s ./analyze
	$(GO) test -run '^$$' -fuzz FuzzTimelineStore -fuzztime $(FUZZTIME) ./report
	$(GO) test -run '^$$' -fuzz FuzzSource -fuzztime $(FUZZTIME) -fuzzminimizetime 3s ./slice
	$(GO) test -run '^$$' -fuzz FuzzFramer -fuzztime $(FUZZTIME) ./slice
	$(GO) test -run '^$$' -fuzz FuzzResumptions -fuzztime $(FUZZTIME) ./slice

lint:
	@test -z "$$(gofmt -l . | grep -v '^testdata/')" || (gofmt -l . ; exit 1)
	$(GO) vet ./...
	$(GO) vet -tags conformance ./conformance

clean:
	rm -rf bin
