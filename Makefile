# Brygga: offline-first sync for harm-reduction outreach.

GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHTIME   ?= 1s

.PHONY: all build run test test-short lint bench fuzz clean

all: build

## build: compile every package and the binaries into bin/
build:
	$(GO) build ./...

## test: the whole test suite, with the race detector
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...

## test-short: the suite without the race detector, for a quick check
test-short:
	$(GO) test -count=1 ./...

## lint: go vet and staticcheck
lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## bench: the Go benchmarks (figures on stdout)
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./...

## fuzz: run every fuzz target for FUZZTIME each
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParseClientCode$$' -fuzztime=$(FUZZTIME) ./schema
	$(GO) test -run='^$$' -fuzz='^FuzzParseClientQR$$' -fuzztime=$(FUZZTIME) ./schema
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./sync/hlc

clean:
	rm -rf bin
