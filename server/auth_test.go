package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
)

// TestKeyRotation: after a rotation, tokens signed by the old key still
// verify until they expire, new tokens carry the new key id, and the key
// set lists both.
func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	srv, base, login := serveWithUser(t, server.Config{DBPath: testDB(t)})
	get := func(path, token string) int {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	kid := func(token string) string {
		var h struct {
			Kid string `json:"kid"`
		}
		part, _, _ := strings.Cut(token, ".")
		b, _ := decodeSegment(part)
		json.Unmarshal(b, &h)
		return h.Kid
	}
	old := login()
	newKid, err := srv.RotateKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fresh := login()
	if kid(old) == newKid || kid(fresh) != newKid {
		t.Errorf("key ids: old token %s, new token %s, rotated to %s", kid(old), kid(fresh), newKid)
	}
	for _, tok := range []string{old, fresh} {
		if st := get("/v1/units", tok); st != 200 {
			t.Errorf("token of key %s: status %d", kid(tok), st)
		}
	}
	resp, _ := http.Get(base + "/.well-known/jwks.json")
	var set struct {
		Keys []struct{ Kid, Alg, Crv string } `json:"keys"`
	}
	json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if len(set.Keys) != 2 {
		t.Errorf("key set has %d keys, want 2", len(set.Keys))
	}
	// A token signed with no algorithm, or with a forged signature, is
	// refused.
	header, rest, _ := strings.Cut(fresh, ".")
	claims, _, _ := strings.Cut(rest, ".")
	none := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + claims + "."
	forged := header + "." + claims + ".AAAA"
	for _, tok := range []string{none, forged, "", "x.y.z"} {
		if st := get("/v1/units", tok); st != 401 {
			t.Errorf("token %.20q: status %d, want 401", tok, st)
		}
	}
}

func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}

// TestKeyRotationByAnotherProcess rotates the key with a second handle on
// the database, as `bryggad key rotate` does while the server runs: within
// a minute the running server signs with the new key, and its tokens are
// accepted. (That a retired key's later tokens are refused is
// TestAttacksRetiredKey's.)
func TestKeyRotationByAnotherProcess(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "s.db")
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	_, base, loginToken := serveWithUser(t, server.Config{DBPath: db, Now: clock})
	login := func() (string, string) {
		token := loginToken()
		part, _, _ := strings.Cut(token, ".")
		b, _ := decodeSegment(part)
		var h struct {
			Kid string `json:"kid"`
		}
		json.Unmarshal(b, &h)
		return token, h.Kid
	}
	_, first := login()

	admin, err := server.Open(ctx, server.Config{DBPath: db})
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := admin.RotateKey(ctx)
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	tok, kid := login()
	if kid != rotated || kid == first {
		t.Errorf("the running server signs with key %s; the rotation made %s (the first was %s)", kid, rotated, first)
	}
	req, _ := http.NewRequest("GET", base+"/v1/units", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("a token of the new key: status %d", resp.StatusCode)
	}
}

// serveWithUser serves cfg on a loopback port until the test ends, with an
// authority user, and returns the server, its URL and a function that
// logs the user in and returns the access token.
func serveWithUser(t *testing.T, cfg server.Config) (*server.Server, string, func() string) {
	t.Helper()
	ctx := context.Background()
	srv, err := server.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Shutdown(ctx)
		srv.Close()
	})
	base := "http://" + ln.Addr().String()
	org, _ := srv.AddOrganisation(ctx, schema.OrgRegion, "Region Jämtland Härjedalen", "23")
	if _, err := srv.AddUser(ctx, "uppfoljning", "ett långt lösenord", server.RoleAuthority, org.ID, uuid.Nil); err != nil {
		t.Fatal(err)
	}
	return srv, base, func() string {
		resp, err := http.Post(base+"/v1/auth/login", "application/json", strings.NewReader(`{"username":"uppfoljning","password":"ett långt lösenord"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			AccessToken string `json:"access_token"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		return out.AccessToken
	}
}
