package openapitest_test

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brygga/brygga/server/internal/openapitest"
	"github.com/brygga/brygga/sync/wire"
)

// TestLoad checks that docs/openapi.yaml loads, resolves its references
// and validates as an OpenAPI 3 document, and that a broken one does not.
func TestLoad(t *testing.T) {
	ctx := context.Background()
	doc, err := openapitest.Load(ctx, openapitest.DocPath())
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi = %q, want 3.1 or later", doc.OpenAPI)
	}
	if doc.Paths.Len() == 0 {
		t.Error("the document has no paths")
	}

	data, err := os.ReadFile(openapitest.DocPath())
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string][2]string{
		"dangling reference": {`"$ref": "#/components/schemas/Status"`, `"$ref": "#/components/schemas/NoSuchSchema"`},
		"bad type":           {`"type": "object"`, `"type": "record"`},
	} {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(string(data), edit[0]) {
				t.Fatalf("the document has no %s", edit[0])
			}
			path := filepath.Join(t.TempDir(), "openapi.yaml")
			if err := os.WriteFile(path, []byte(strings.Replace(string(data), edit[0], edit[1], 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := openapitest.Load(ctx, path); err == nil {
				t.Errorf("a document with a %s loads", name)
			}
		})
	}
}

// impostor serves answers that a test chooses on a loopback port.
func impostor(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// answer writes a response with a request id, as the server does.
func answer(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Request-ID", "3f1c2a9e")
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// gzipped answers like answer, its body compressed.
func gzipped(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Request-ID", "3f1c2a9e")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(status)
		zw := gzip.NewWriter(w)
		io.WriteString(zw, body)
		zw.Close()
	}
}

// TestTransport sends requests through a checking transport to a server
// whose answers are right or deliberately wrong, and sees the wrong ones
// refused and recorded.
func TestTransport(t *testing.T) {
	cases := []struct {
		name   string
		method string
		path   string
		h      http.HandlerFunc
		ok     bool
	}{
		{"documented answer", "GET", "/healthz", answer(200, "application/json", `{"status":"ok"}`), true},
		{"documented error", "GET", "/healthz", answer(500, "application/json", `{"error":{"code":"internal","message":"the server failed"}}`), true},
		{"unknown path, not_found", "GET", "/v1/nowhere", answer(404, "application/json", `{"error":{"code":"not_found","message":"no such path"}}`), true},
		{"undeclared status", "GET", "/healthz", answer(418, "application/json", `{"status":"ok"}`), false},
		{"undeclared content type", "GET", "/healthz", answer(200, "text/plain", `ok`), false},
		{"body without a required member", "GET", "/healthz", answer(200, "application/json", `{"state":"ok"}`), false},
		{"body with a member the document does not name", "GET", "/healthz", answer(200, "application/json", `{"status":"ok","uptime":7}`), false},
		{"body of the wrong type", "GET", "/healthz", answer(200, "application/json", `{"status":7}`), false},
		{"body that is not JSON", "GET", "/healthz", answer(200, "application/json", `ok`), false},
		{"error code not in the enum", "GET", "/healthz", answer(500, "application/json", `{"error":{"code":"oops","message":"m"}}`), false},
		{"no request id", "GET", "/healthz", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"status":"ok"}`)
		}, false},
		{"unknown path, another status", "GET", "/v1/nowhere", answer(200, "application/json", `{"status":"ok"}`), false},
		{"unknown path, another code", "GET", "/v1/nowhere", answer(404, "application/json", `{"error":{"code":"forbidden","message":"m"}}`), false},
		{"undocumented method", "DELETE", "/healthz", answer(404, "application/json", `{"error":{"code":"not_found","message":"m"}}`), false},
		{"unknown dashboard page", "GET", "/dashboard/nowhere", answer(404, "text/html; charset=utf-8", `<!doctype html>`), true},
		{"unknown dashboard page, JSON", "GET", "/dashboard/nowhere", answer(404, "application/json", `{"error":{"code":"not_found","message":"m"}}`), false},
		{"redirect with a body", "GET", "/", answer(303, "text/html", `<a href="/dashboard/">`), false},
		{"compressed answer", "GET", "/healthz", gzipped(200, `{"status":"ok"}`), true},
		{"compressed wrong answer", "GET", "/healthz", gzipped(200, `{"status":false}`), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := openapitest.New(context.Background(), openapitest.DocPath())
			if err != nil {
				t.Fatal(err)
			}
			client := &http.Client{Transport: c.Transport(&http.Transport{}), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			req, err := http.NewRequest(tc.method, impostor(t, tc.h)+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Asked for explicitly, a compressed answer comes as it was sent.
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err := client.Do(req)
			if tc.ok {
				if err != nil {
					t.Fatalf("a right answer is refused: %v", err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if len(body) == 0 {
					t.Error("the checked body is not handed on")
				}
				if c.Checked() != 1 || len(c.Failures()) != 0 {
					t.Errorf("checked %d, failures %v; want 1 and none", c.Checked(), c.Failures())
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("a wrong answer (%d) passes", resp.StatusCode)
			}
			if !errors.Is(err, openapitest.ErrMismatch) {
				t.Errorf("err = %v, want ErrMismatch", err)
			}
			if c.Checked() != 0 || len(c.Failures()) != 1 {
				t.Errorf("checked %d, failures %v; want 0 and one", c.Checked(), c.Failures())
			}
			t.Log(err)
		})
	}
}

// TestRequestID: every response carries X-Request-ID, a 413 to a request
// whose Content-Length is over the limit, which the server answers before
// its handlers see the request, as much as any other.
func TestRequestID(t *testing.T) {
	ctx := context.Background()
	c, err := openapitest.New(ctx, openapitest.DocPath())
	if err != nil {
		t.Fatal(err)
	}
	tooLarge := []byte(`{"error":{"code":"body_too_large","message":"body exceeds 8388608 bytes"}}`)
	for _, tc := range []struct {
		name   string
		length int64
		id     string
	}{
		{"an oversized request", wire.MaxBodyBytes + 1, ""},
		{"a request within the limit", 100, ""},
		{"an oversized request answered with an id", wire.MaxBodyBytes + 1, "0b7f9f0e-5d3a-4c1e-9a51-3f1f2b6c7d8e"},
	} {
		req, err := http.NewRequest("POST", "http://127.0.0.1:1/v1/sync/push", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = tc.length
		header := http.Header{"Content-Type": {"application/json"}}
		if tc.id != "" {
			header.Set("X-Request-ID", tc.id)
		}
		err = c.Check(ctx, req, http.StatusRequestEntityTooLarge, header, tooLarge)
		if tc.id != "" && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if tc.id == "" && !errors.Is(err, openapitest.ErrMismatch) {
			t.Errorf("%s: a 413 without a request id: %v, want ErrMismatch", tc.name, err)
		}
	}
}
