package server_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/mattn/go-sqlite3"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// callerServer serves a fresh database on a loopback port with its log in
// a buffer and a clock the test moves.
type callerServer struct {
	srv  *server.Server
	base string
	db   string
	log  *lockedBuffer
	mu   sync.Mutex
	now  time.Time
}

func (s *callerServer) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *callerServer) advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = s.now.Add(d)
}

func serveCaller(t *testing.T) *callerServer {
	t.Helper()
	ctx := context.Background()
	cs := &callerServer{db: filepath.Join(t.TempDir(), "s.db"), log: &lockedBuffer{}, now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	srv, err := server.Open(ctx, server.Config{DBPath: cs.db, Now: cs.clock,
		Logger: slog.New(slog.NewJSONHandler(cs.log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Shutdown(ctx)
		srv.Close()
	})
	cs.srv, cs.base = srv, "http://"+ln.Addr().String()
	return cs
}

// raw sends a request over a plain connection, headers as given byte for
// byte (a Go client refuses control characters), and returns the status
// and X-Request-ID of the answer.
func (s *callerServer) raw(t *testing.T, method, path string, headers []string, body string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: brygga\r\nConnection: close\r\n", method, path)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, s.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if err := apiCheck.CheckResponse(req, resp); err != nil {
		t.Error(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Request-ID")
}

// everyText returns every text and blob value of every table of the
// database, one a line.
func everyText(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	var out strings.Builder
	for _, tb := range tables {
		rows, err := db.Query(`SELECT * FROM "` + tb + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				switch v := v.(type) {
				case string:
					out.WriteString(v + "\n")
				case []byte:
					out.Write(v)
					out.WriteString("\n")
				}
			}
		}
		rows.Close()
	}
	return out.String()
}

// TestRequestIDsAreTheServers: a caller's X-Request-ID is kept only if it
// is 1 to 64 letters, digits and hyphens; anything else (long, unicode,
// control characters, SQL) is replaced by an id of the server's, and
// reaches neither the audit log nor the server's log.
func TestRequestIDsAreTheServers(t *testing.T) {
	cs := serveCaller(t)
	hostile := []string{
		strings.Repeat("a", 65),
		strings.Repeat("x-", 1500),
		"hälsa-åäö",
		"id-\U0001F600",
		"a\x01b\x1b[31mred",
		"ab\tcd",
		"1'; DROP TABLE audit;--",
		`"}{"level":"ERROR","msg":"forged`,
		"<script>alert(1)</script>",
		"abc def",
		"../../etc/passwd",
	}
	body := `{"username":"nobody-here","password":"not the password"}`
	for _, h := range hostile {
		cs.advance(time.Hour) // no limit reached: each failed login is audited as such
		status, echoed := cs.raw(t, "POST", "/v1/auth/login", []string{"X-Request-ID: " + h}, body)
		if status != http.StatusUnauthorized {
			t.Errorf("login with X-Request-ID %.40q: status %d", h, status)
		}
		if _, err := uuid.Parse(echoed); err != nil {
			t.Errorf("X-Request-ID %.40q: the answer's id %q is not the server's", h, echoed)
		}
		// A hostile id on a path nothing serves, too.
		cs.raw(t, "GET", "/v1/no-such-endpoint", []string{"X-Request-ID: " + h}, "")
	}
	// A well-formed id is kept, and audited with the failed login.
	good := "req-2026-abc-DEF-123"
	if _, echoed := cs.raw(t, "POST", "/v1/auth/login", []string{"X-Request-ID: " + good}, body); echoed != good {
		t.Errorf("a well-formed X-Request-ID came back as %q", echoed)
	}
	entries, err := cs.srv.Audit(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if e.RequestID == good {
			found = true
		}
		if e.RequestID != good {
			if _, err := uuid.Parse(e.RequestID); err != nil && e.RequestID != "" {
				t.Errorf("audit entry %d has request id %q", e.ID, e.RequestID)
			}
		}
	}
	if !found {
		t.Errorf("the well-formed request id is not in the audit log")
	}
	tables, logs := everyText(t, cs.db), cs.log.String()
	if !strings.Contains(logs, good) {
		t.Errorf("the server's log does not name the well-formed request id")
	}
	for _, h := range hostile {
		for _, part := range []string{h, "DROP TABLE", "forged", "<script>", "\x1b[31m", "etc/passwd", "hälsa", "\U0001F600", strings.Repeat("x-", 40)} {
			if !strings.Contains(h, part) {
				continue
			}
			if strings.Contains(tables, part) {
				t.Errorf("the database holds %.40q of the X-Request-ID %.40q", part, h)
			}
			if strings.Contains(logs, part) {
				t.Errorf("the server's log holds %.40q of the X-Request-ID %.40q", part, h)
			}
		}
	}
	if strings.Contains(logs, "no-such-endpoint") {
		t.Error("the server's log holds a path a caller chose")
	}
}

// TestFailedLoginKeepsNoUsername: a failed login's username, whatever it
// is, appears in no table and not in the server's log; its failures are
// still counted and audited under a keyed hash, the same each time.
func TestFailedLoginKeepsNoUsername(t *testing.T) {
	cs := serveCaller(t)
	ctx := context.Background()
	org, _ := cs.srv.AddOrganisation(ctx, schema.OrgRegion, "Region Jämtland Härjedalen", "23")
	if _, err := cs.srv.AddUser(ctx, "uppfoljning", "ett långt lösenord", server.RoleAuthority, org.ID, uuid.Nil); err != nil {
		t.Fatal(err)
	}
	names := []string{"anna.andersson.19850101-1234", "kalle'; DROP TABLE users;--", "åsa-\U0001F600", strings.Repeat("lång", 1000), "upp\x00foljning"}
	for _, n := range names {
		body, _ := json.Marshal(map[string]string{"username": n, "password": "hemligt lösenord 42"})
		status, _ := cs.raw(t, "POST", "/v1/auth/login", nil, string(body))
		if status != http.StatusUnauthorized {
			t.Errorf("login as %.30q: status %d", n, status)
		}
	}
	// The right user with a wrong password: a known username is kept no
	// more than an unknown one.
	status, _ := cs.raw(t, "POST", "/v1/auth/login", nil, `{"username":"uppfoljning","password":"fel lösenord igen"}`)
	if status != http.StatusUnauthorized {
		t.Fatalf("wrong password: status %d", status)
	}
	tables, logs := everyText(t, cs.db), cs.log.String()
	for _, n := range names {
		for _, part := range []string{n, "anna.andersson", "19850101", "DROP TABLE", "kalle", "långlång"} {
			if !strings.Contains(n, part) {
				continue
			}
			if strings.Contains(tables, part) {
				t.Errorf("the database holds %q of a failed login's username", part)
			}
			if strings.Contains(logs, part) {
				t.Errorf("the server's log holds %q of a failed login's username", part)
			}
		}
	}
	if strings.Contains(tables, "hemligt") || strings.Contains(tables, "fel lösenord") || strings.Contains(logs, "hemligt") {
		t.Error("a tried password is stored")
	}
	entries, err := cs.srv.Audit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, e := range entries {
		if e.Action == "login_failed" {
			failed = append(failed, e.Target)
			if strings.Contains(e.Target, "uppfoljning") {
				t.Errorf("a failed login of an existing user names it: %q", e.Target)
			}
		}
	}
	if len(failed) != len(names)+1 {
		t.Fatalf("%d failed logins audited, want %d", len(failed), len(names)+1)
	}
	// Again with the same username: the same keyed name, so failures of
	// one username can be followed.
	cs.raw(t, "POST", "/v1/auth/login", nil, `{"username":"uppfoljning","password":"fel lösenord igen"}`)
	entries, _ = cs.srv.Audit(ctx, 0, 1)
	if entries[0].Target != failed[0] {
		t.Errorf("the same username audited as %q and %q", failed[0], entries[0].Target)
	}
}

// TestUnauthenticatedRateLimits: logins and enrolments from one address
// are limited a minute, per address, and a username's failures per
// username; each limit answers 429 rate_limited with Retry-After, and
// lifts once its window has passed.
func TestUnauthenticatedRateLimits(t *testing.T) {
	cs := serveCaller(t)
	ctx := context.Background()
	org, _ := cs.srv.AddOrganisation(ctx, schema.OrgMunicipality, "Krokoms kommun", "23")
	unit, _ := cs.srv.AddUnit(ctx, org.ID, "Fältgruppen", "2309")
	if _, err := cs.srv.AddUser(ctx, "chef.krokom", "ett långt lösenord", server.RoleManager, uuid.Nil, unit.ID); err != nil {
		t.Fatal(err)
	}
	post := func(path, body string) (int, string, string) {
		t.Helper()
		resp, err := http.Post(cs.base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out.Error.Code, resp.Header.Get("Retry-After")
	}
	priv := newKey(t)
	// enrolment is an enrolment request with code and a fresh proof of
	// priv on the server's clock.
	enrolment := func(code string) string {
		b, err := json.Marshal(enrolBody(code, priv, signProof(t, priv, proofClaims(priv, code, cs.clock()))))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	limited := func(what string, status int, code, retry string) {
		t.Helper()
		if status != http.StatusTooManyRequests || code != "rate_limited" {
			t.Errorf("%s: status %d code %q, want 429 rate_limited", what, status, code)
		}
		if n, err := strconv.Atoi(retry); err != nil || n < 1 || n > 15*60 {
			t.Errorf("%s: Retry-After %q", what, retry)
		}
	}

	t.Run("login per username", func(t *testing.T) {
		wrong := `{"username":"chef.krokom","password":"fel lösenord här"}`
		for i := range 5 {
			if st, _, _ := post("/v1/auth/login", wrong); st != http.StatusUnauthorized {
				t.Fatalf("failure %d: status %d", i+1, st)
			}
		}
		st, code, retry := post("/v1/auth/login", `{"username":"chef.krokom","password":"ett långt lösenord"}`)
		limited("the right password after 5 failures", st, code, retry)
		cs.advance(16 * time.Minute)
		if st, _, _ := post("/v1/auth/login", `{"username":"chef.krokom","password":"ett långt lösenord"}`); st != http.StatusOK {
			t.Errorf("after the window: status %d", st)
		}
	})

	t.Run("login per address", func(t *testing.T) {
		cs.advance(2 * time.Minute)
		n := 0
		for ; n < 100; n++ {
			body := fmt.Sprintf(`{"username":"gissning-%d","password":"gissat lösenord"}`, n)
			st, code, retry := post("/v1/auth/login", body)
			if st == http.StatusTooManyRequests {
				limited("login from one address", st, code, retry)
				break
			}
		}
		if n != 30 {
			t.Errorf("an address was limited after %d logins, want 30", n)
		}
		cs.advance(61 * time.Second)
		if st, _, _ := post("/v1/auth/login", `{"username":"chef.krokom","password":"ett långt lösenord"}`); st != http.StatusOK {
			t.Errorf("a minute later: status %d", st)
		}
	})

	t.Run("enrolment per address", func(t *testing.T) {
		n := 0
		for ; n < 100; n++ {
			st, code, retry := post("/v1/devices/enroll", enrolment("AAAA-BBBB-CCCC"))
			if st == http.StatusTooManyRequests {
				limited("enrolment from one address", st, code, retry)
				break
			}
			if code != "enrol_code_invalid" {
				t.Fatalf("enrolment %d: status %d code %q", n+1, st, code)
			}
		}
		if n != 30 {
			t.Errorf("an address was limited after %d enrolments, want 30", n)
		}
		code, err := cs.srv.NewEnrolCode(ctx, unit.ID, "test")
		if err != nil {
			t.Fatal(err)
		}
		if st, _, _ := post("/v1/devices/enroll", enrolment(code.Code)); st != http.StatusTooManyRequests {
			t.Errorf("a valid code while limited: status %d", st)
		}
		cs.advance(61 * time.Second)
		if st, _, _ := post("/v1/devices/enroll", enrolment(code.Code)); st != http.StatusCreated {
			t.Errorf("a minute later: status %d", st)
		}
	})
}
