package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/brygga/brygga/server/internal/openapitest"
)

// apiCheck checks every response the tests receive against
// docs/openapi.yaml; TestMain puts it in http.DefaultTransport, and tests
// that build their own transport wrap it with apiCheck.Transport.
var apiCheck *openapitest.Checker

func TestMain(m *testing.M) {
	if args := os.Getenv(childArgs); args != "" {
		os.Exit(runChild(strings.Split(args, "\x1f")))
	}
	os.Exit(openapitest.Main(m, &apiCheck))
}

// childArgs is the environment variable that makes the test binary run
// as bryggad with the arguments it holds (separated by \x1f), so that a
// test can run a server in a process of its own and kill it.
const childArgs = "BRYGGAD_TEST_CHILD_ARGS"

func runChild(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, args, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bryggad:", err)
		return 1
	}
	return 0
}
