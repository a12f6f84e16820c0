package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/server/internal/openapitest"
)

// apiCheck checks every response the tests receive against
// docs/openapi.yaml; TestMain puts it in http.DefaultTransport, and tests
// that build their own transport wrap it with apiCheck.Transport.
var apiCheck *openapitest.Checker

func TestMain(m *testing.M) {
	os.Exit(openapitest.Main(m, &apiCheck))
}

// TestOpenAPITamperedAnswers takes real answers of a server and shows the
// check that every test's answers go through takes them as they are and
// refuses each when it is changed in one way: status, content type, a
// member's value, a member the document does not name.
func TestOpenAPITamperedAnswers(t *testing.T) {
	ctx := context.Background()
	s, err := server.Open(ctx, server.Config{DBPath: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	defer func() {
		s.Shutdown(ctx)
		<-done
		s.Close()
	}()
	check, err := openapitest.New(ctx, openapitest.DocPath())
	if err != nil {
		t.Fatal(err)
	}
	// A plain transport: the answers are checked here, by hand.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	base := "http://" + ln.Addr().String()
	for _, path := range []string{"/healthz", "/v1/units"} { // a 200 and a 401
		req, err := http.NewRequest("GET", base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := check.Check(ctx, req, resp.StatusCode, resp.Header, body); err != nil {
			t.Fatalf("GET %s as the server answered: %v", path, err)
		}
		var value map[string]any
		if err := json.Unmarshal(body, &value); err != nil {
			t.Fatal(err)
		}
		edit := func(change func(map[string]any)) []byte {
			var v map[string]any
			json.Unmarshal(body, &v)
			change(v)
			b, _ := json.Marshal(v)
			return b
		}
		textPlain := resp.Header.Clone()
		textPlain.Set("Content-Type", "text/plain")
		for name, tampered := range map[string]struct {
			status int
			header http.Header
			body   []byte
		}{
			"another status":       {http.StatusTeapot, resp.Header, body},
			"another content type": {resp.StatusCode, textPlain, body},
			"a member's value": {resp.StatusCode, resp.Header, edit(func(v map[string]any) {
				for k := range v {
					v[k] = 42
				}
			})},
			"an unnamed member": {resp.StatusCode, resp.Header, edit(func(v map[string]any) { v["extra"] = true })},
			"no body":           {resp.StatusCode, resp.Header, nil},
		} {
			if err := check.Check(ctx, req, tampered.status, tampered.header, tampered.body); !errors.Is(err, openapitest.ErrMismatch) {
				t.Errorf("GET %s with %s: %v, want ErrMismatch", path, name, err)
			}
		}
	}
	if check.Checked() != 2 || len(check.Failures()) != 10 {
		t.Errorf("%d answers passed and %d failed, want 2 and 10", check.Checked(), len(check.Failures()))
	}
}
