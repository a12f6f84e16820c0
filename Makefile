# Brygga: offline-first sync for harm-reduction outreach.

GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHTIME   ?= 1s

DB          ?= data/brygga.db
ADDR        ?= 127.0.0.1:8080

.PHONY: all build run test test-short lint bench fuzz clean

all: build

## build: compile every package and the binaries into bin/
build:
	$(GO) build ./...
	$(GO) build -o bin/ ./server/cmd/bryggad ./server/cmd/bryggaload ./client-sdk/cmd/brygga

## run: serve on ADDR with the SQLite database DB, seeding the demo region on first start
run:
	@mkdir -p $(dir $(DB))
	$(GO) run ./server/cmd/bryggad serve --db $(DB) --addr $(ADDR) --demo

## test: the whole test suite: every package with the race detector, the
## server's tests again with each server on PostgreSQL, then
## SCHEDULES random sync schedules of the convergence test,
## PG_SCHEDULES of them against three server instances on one PostgreSQL
## database (skipped, saying why, without one),
## FAULT_SCHEDULES schedules of devices syncing through network faults and
## LIFECYCLE_SCHEDULES schedules that also retire, lose, back up and restore
SCHEDULES           ?= 3000
PG_SCHEDULES        ?= 200
FAULT_SCHEDULES     ?= 100
LIFECYCLE_SCHEDULES ?= 30
test:
	$(GO) vet ./...
	@echo "PostgreSQL (BRYGGA_POSTGRES, default postgres://postgres@127.0.0.1:5432/postgres): the stores' tests on it run, or are skipped saying why:"
	@$(GO) test -count=1 -v -run '^TestPostgresAnswers$$' ./server/pgstore | grep -E '^(--- |\s+pgstore_test|\s+127|\s+set )' || true
	$(GO) test -race -short -count=1 -timeout 30m ./...
	BRYGGA_TEST_ENGINE=postgres $(GO) test -short -count=1 -timeout 30m ./server
	BRYGGA_SCHEDULES=$(SCHEDULES) $(GO) test -count=1 -timeout 30m -run '^TestConvergence$$' ./sync/replica
	BRYGGA_PG_SCHEDULES=$(PG_SCHEDULES) $(GO) test -count=1 -timeout 30m -run '^TestConvergencePostgres$$' ./sync/replica
	BRYGGA_FAULT_SCHEDULES=$(FAULT_SCHEDULES) $(GO) test -count=1 -timeout 30m -run '^TestFaultSchedules$$' ./client-sdk
	BRYGGA_LIFECYCLE_SCHEDULES=$(LIFECYCLE_SCHEDULES) $(GO) test -count=1 -timeout 30m -run '^TestLifecycleSchedules$$' ./client-sdk

## test-short: the suite without the race detector, for a quick check
test-short:
	$(GO) test -count=1 ./...

## lint: go vet and staticcheck
lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## bench: the Go benchmarks of the hot paths (HLC, wire encoding and
## decoding, apply into a million-record store, pull pages, a year's
## indicators over BENCH_EVENTS events), then bryggaload: the real server on
## loopback with this machine's raw limits as baselines, a table of figures,
## ratios and targets. See docs/BENCHMARKS.md.
BENCH_EVENTS ?= 1000000
LOADFLAGS    ?= --runs 3 --first-sync-rows 1000000 --big-rows 1000000
bench:
	BRYGGA_BENCH_EVENTS=$(BENCH_EVENTS) $(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) -timeout 60m ./...
	$(GO) run ./server/cmd/bryggaload $(LOADFLAGS)

## fuzz: run every fuzz target for FUZZTIME each; a target fails the run
## when it finds an input that fails (see .ci/fuzz)
FUZZTIME ?= 30s
FUZZ_TARGETS = ./schema:FuzzParseClientCode \
	./schema:FuzzParseClientQR \
	./schema:FuzzEachMember \
	./schema:FuzzParseWireTime \
	./schema:FuzzAppendTime \
	./schema:FuzzValidNumber \
	./sync/hlc:FuzzParse \
	./sync/wire:FuzzDecodePushRequest \
	./sync/wire:FuzzParsePushRequest \
	./sync/wire:FuzzAppendPushRequest \
	./sync/wire:FuzzAppendPushResponse \
	./sync/wire:FuzzDecodePullRequest \
	./sync/wire:FuzzParseCursor \
	./sync/wire:FuzzParsePullResponse \
	./sync/wire:FuzzParsePullPage \
	./sync/wire:FuzzParsePushResponse \
	./sync/replica:FuzzJoin
fuzz:
	GO=$(GO) bash .ci/fuzz $(FUZZTIME) $(FUZZ_TARGETS)

clean:
	rm -rf bin
