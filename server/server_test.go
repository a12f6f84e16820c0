package server_test

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
)

// TestPublicURLKept: an admin command's enrolment codes point where the
// server last served, not at a default tablets cannot reach.
func TestPublicURLKept(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "s.db")
	code := func(cfg server.Config) string {
		t.Helper()
		cfg.DBPath = db
		s, err := server.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		org, _ := s.AddOrganisation(ctx, schema.OrgMunicipality, "Krokoms kommun", "23")
		unit, _ := s.AddUnit(ctx, org.ID, "Fältgruppen", "2309")
		c, err := s.NewEnrolCode(ctx, unit.ID, "test")
		if err != nil {
			t.Fatal(err)
		}
		return c.QRPayload
	}
	if qr := code(server.Config{}); !strings.HasSuffix(qr, ":http://127.0.0.1:8080") {
		t.Errorf("a database never served: QR %q", qr)
	}

	s, err := server.Open(ctx, server.Config{DBPath: db, PublicURL: "https://brygga.example.se"})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	// Serve keeps the URL before it serves: an answer shows it serves.
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; ; i++ {
		resp, err := client.Get("http://" + ln.Addr().String() + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 100 {
			t.Fatalf("the server does not serve: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	s.Close()

	if qr := code(server.Config{}); !strings.HasSuffix(qr, ":https://brygga.example.se") {
		t.Errorf("after serving at https://brygga.example.se: QR %q", qr)
	}
	if qr := code(server.Config{PublicURL: "http://10.0.0.2:8080"}); !strings.HasSuffix(qr, ":http://10.0.0.2:8080") {
		t.Errorf("a URL given: QR %q", qr)
	}
}
