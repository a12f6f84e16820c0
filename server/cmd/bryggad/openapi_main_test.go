package main

import (
	"os"
	"testing"

	"github.com/brygga/brygga/server/internal/openapitest"
)

// apiCheck checks every response the tests receive against
// docs/openapi.yaml; TestMain puts it in http.DefaultTransport, and tests
// that build their own transport wrap it with apiCheck.Transport.
var apiCheck *openapitest.Checker

func TestMain(m *testing.M) {
	os.Exit(openapitest.Main(m, &apiCheck))
}
