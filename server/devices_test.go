package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/sync/wire"
)

// newKey makes a device's key pair.
func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// enrolIn enrols the holder of priv with code in srv, with a fresh proof
// on the server's clock now.
func enrolIn(ctx context.Context, t testing.TB, srv *server.Server, code string, priv ed25519.PrivateKey, now time.Time) (*server.EnrolResponse, error) {
	t.Helper()
	proof, err := server.SignEnrolProof(priv, code, now)
	if err != nil {
		t.Fatal(err)
	}
	return srv.Enrol(ctx, code, priv.Public().(ed25519.PublicKey), proof)
}

// deviceServer is a server on a loopback port with one unit, for the
// device authentication tests.
type deviceServer struct {
	t    *testing.T
	srv  *server.Server
	base string
	db   string
	unit *schema.Unit
	// client sends the requests; nil is http.DefaultClient.
	client *http.Client
}

// from has the requests that follow come from another loopback address,
// ip (127.0.0.2 and so on), whose limits per address are its own.
func (d *deviceServer) from(ip string) {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	d.client = &http.Client{Transport: apiCheck.Transport(&http.Transport{DialContext: dialer.DialContext})}
}

func startDeviceServer(t *testing.T) *deviceServer {
	t.Helper()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "s.db")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	srv, err := server.Open(ctx, server.Config{DBPath: db, PublicURL: base})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Shutdown(ctx)
		srv.Close()
	})
	org, _ := srv.AddOrganisation(ctx, schema.OrgMunicipality, "Krokoms kommun", "23")
	unit, err := srv.AddUnit(ctx, org.ID, "Fältteamet", "2309")
	if err != nil {
		t.Fatal(err)
	}
	return &deviceServer{t: t, srv: srv, base: base, db: db, unit: unit}
}

// answer is an HTTP answer: status, error code and body.
type answer struct {
	status int
	code   wire.Code
	header http.Header
	body   []byte
}

func (d *deviceServer) post(path, token, contentType string, body []byte) answer {
	d.t.Helper()
	req, _ := http.NewRequest("POST", d.base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := d.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e struct {
		Error *wire.Error `json:"error"`
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: data}
	if json.Unmarshal(data, &e) == nil && e.Error != nil {
		a.code = e.Error.Code
	}
	return a
}

func (d *deviceServer) postJSON(path, token string, v any) answer {
	d.t.Helper()
	b, _ := json.Marshal(v)
	return d.post(path, token, "application/json", b)
}

// tablet is a device as the tests drive it: its key and what enrolment
// gave it.
type tablet struct {
	priv ed25519.PrivateKey
	server.EnrolResponse
}

func (d *deviceServer) enrol(code string, priv ed25519.PrivateKey) (*tablet, answer) {
	d.t.Helper()
	proof, err := server.SignEnrolProof(priv, code, time.Now())
	if err != nil {
		d.t.Fatal(err)
	}
	a := d.postJSON(wire.EnrolPath, "", map[string]string{"code": code,
		"public_key": base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)), "proof": proof})
	tb := &tablet{priv: priv}
	if a.status == 201 {
		if err := json.Unmarshal(a.body, &tb.EnrolResponse); err != nil {
			d.t.Fatal(err)
		}
	}
	return tb, a
}

func (d *deviceServer) newTablet() *tablet {
	d.t.Helper()
	code, err := d.srv.NewEnrolCode(context.Background(), d.unit.ID, "test")
	if err != nil {
		d.t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	tb, a := d.enrol(code.Code, priv)
	if a.status != 201 {
		d.t.Fatalf("enrol: %d %s", a.status, a.body)
	}
	return tb
}

// claims are an assertion's claims, editable by the tests.
func (tb *tablet) claims(now time.Time) jwt.MapClaims {
	sub := "device:" + tb.DeviceID.String()
	return jwt.MapClaims{"iss": sub, "sub": sub, "aud": tb.TokenAudience, "iat": now.Unix(),
		"exp": now.Add(2 * time.Minute).Unix(), "jti": uuid.NewString()}
}

func (tb *tablet) sign(c jwt.MapClaims) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(tb.priv)
	if err != nil {
		panic(err)
	}
	return s
}

func (d *deviceServer) token(assertion string) answer {
	d.t.Helper()
	return d.postJSON(wire.TokenPath, "", map[string]string{"grant_type": wire.GrantJWTBearer, "assertion": assertion})
}

// TestDeviceAssertions: a device gets access tokens with assertions signed
// by its own key; every assertion that is not exactly right is refused
// with its code, and one that is works once.
func TestDeviceAssertions(t *testing.T) {
	d := startDeviceServer(t)
	tb := d.newTablet()
	other := d.newTablet()
	now := time.Now()

	good := tb.sign(tb.claims(now))
	a := d.token(good)
	if a.status != 200 {
		t.Fatalf("a good assertion: %d %s", a.status, a.body)
	}
	var tok server.AccessToken
	json.Unmarshal(a.body, &tok)
	pull, _ := http.NewRequest("GET", d.base+wire.PullPath("", 10), nil)
	pull.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if resp, err := http.DefaultClient.Do(pull); err != nil || resp.StatusCode != 200 {
		t.Fatalf("pull with the token: %v %v", resp, err)
	}
	if ms, err := strconv.ParseInt(a.header.Get(wire.HeaderServerTime), 10, 64); err != nil || time.Since(time.UnixMilli(ms)).Abs() > time.Minute {
		t.Errorf("server time header %q", a.header.Get(wire.HeaderServerTime))
	}

	edit := func(f func(jwt.MapClaims)) string {
		c := tb.claims(now)
		f(c)
		return tb.sign(c)
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, tb.claims(now)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, tb.claims(now)).SignedString([]byte(tb.priv.Public().(ed25519.PublicKey)))
	wrongKey := &tablet{priv: other.priv, EnrolResponse: tb.EnrolResponse}
	for _, c := range []struct {
		name      string
		assertion string
		code      wire.Code
	}{
		{"replayed", good, wire.CodeAssertionReplayed},
		{"signed by another device's key", wrongKey.sign(tb.claims(now)), wire.CodeUnauthorized},
		{"alg none", none, wire.CodeUnauthorized},
		{"alg HS256 with the public key", hs, wire.CodeUnauthorized},
		{"wrong aud", edit(func(c jwt.MapClaims) { c["aud"] = "https://elsewhere.example/v1/auth/token" }), wire.CodeUnauthorized},
		{"no aud", edit(func(c jwt.MapClaims) { delete(c, "aud") }), wire.CodeUnauthorized},
		{"two auds", edit(func(c jwt.MapClaims) { c["aud"] = []string{tb.TokenAudience, "x"} }), wire.CodeUnauthorized},
		{"iss not sub", edit(func(c jwt.MapClaims) { c["iss"] = "device:" + other.DeviceID.String() }), wire.CodeUnauthorized},
		{"another device as sub", edit(func(c jwt.MapClaims) {
			c["sub"], c["iss"] = "device:"+other.DeviceID.String(), "device:"+other.DeviceID.String()
		}), wire.CodeUnauthorized},
		{"unknown device", edit(func(c jwt.MapClaims) {
			c["sub"], c["iss"] = "device:"+uuid.NewString(), "device:"+uuid.NewString()
		}), wire.CodeUnauthorized},
		{"unknown device, iss and sub the same", edit(func(c jwt.MapClaims) {
			id := "device:" + uuid.NewString()
			c["sub"], c["iss"] = id, id
		}), wire.CodeDeviceUnknown},
		{"a user as sub", edit(func(c jwt.MapClaims) { c["sub"], c["iss"] = "user:"+uuid.NewString(), "user:"+uuid.NewString() }), wire.CodeUnauthorized},
		{"no jti", edit(func(c jwt.MapClaims) { delete(c, "jti") }), wire.CodeUnauthorized},
		{"long jti", edit(func(c jwt.MapClaims) { c["jti"] = string(bytes.Repeat([]byte("j"), 200)) }), wire.CodeUnauthorized},
		{"no exp", edit(func(c jwt.MapClaims) { delete(c, "exp") }), wire.CodeUnauthorized},
		{"no iat", edit(func(c jwt.MapClaims) { delete(c, "iat") }), wire.CodeUnauthorized},
		{"exp a string", edit(func(c jwt.MapClaims) { c["exp"] = strconv.FormatInt(now.Add(time.Minute).Unix(), 10) }), wire.CodeUnauthorized},
		{"iat a string", edit(func(c jwt.MapClaims) { c["iat"] = strconv.FormatInt(now.Unix(), 10) }), wire.CodeUnauthorized},
		{"nbf a string", edit(func(c jwt.MapClaims) { c["nbf"] = strconv.FormatInt(now.Unix(), 10) }), wire.CodeUnauthorized},
		{"lives an hour", edit(func(c jwt.MapClaims) { c["exp"] = now.Add(time.Hour).Unix() }), wire.CodeUnauthorized},
		{"expires before issue", edit(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Second).Unix() }), wire.CodeUnauthorized},
		{"expired", edit(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(-10*time.Minute).Unix(), now.Add(-8*time.Minute).Unix()
		}), wire.CodeClockSkew},
		{"issued in three days", edit(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(72*time.Hour).Unix(), now.Add(72*time.Hour+time.Minute).Unix()
		}), wire.CodeClockSkew},
		{"exp too far ahead", edit(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(50*time.Second).Unix(), now.Add(50*time.Second+5*time.Minute).Unix()
		}), wire.CodeClockSkew},
		{"not before in an hour", edit(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }), wire.CodeClockSkew},
		{"not a JWT", "abc.def", wire.CodeUnauthorized},
	} {
		a := d.token(c.assertion)
		want := 401
		if c.code == wire.CodeDeviceUnknown {
			want = 403
		}
		if a.status != want || a.code != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, a.status, a.body, want, c.code)
		}
		if c.code == wire.CodeClockSkew && a.header.Get(wire.HeaderServerTime) == "" {
			t.Errorf("%s: no server time in the answer", c.name)
		}
	}
	for _, c := range []struct {
		name string
		body string
		code wire.Code
	}{
		{"no grant type", `{"assertion":"x"}`, wire.CodeMalformed},
		{"another grant type", `{"grant_type":"refresh_token","assertion":"x"}`, wire.CodeMalformed},
		{"no assertion", `{"grant_type":"` + wire.GrantJWTBearer + `"}`, wire.CodeMalformed},
		{"unknown field", `{"grant_type":"` + wire.GrantJWTBearer + `","assertion":"x","refresh_token":"y"}`, wire.CodeMalformed},
	} {
		if a := d.post(wire.TokenPath, "", "application/json", []byte(c.body)); a.status != 400 || a.code != c.code {
			t.Errorf("%s: %d %s", c.name, a.status, a.body)
		}
	}
	if a := d.post(wire.TokenPath, "", "application/x-www-form-urlencoded", []byte("grant_type=x&assertion="+good)); a.status != 415 {
		t.Errorf("a form: %d %s", a.status, a.body)
	}

	// One jti, sent many times at once: exactly one token.
	same := tb.sign(tb.claims(now))
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := d.token(same)
			mu.Lock()
			codes[a.status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[200] != 1 || codes[401] != 15 {
		t.Errorf("one assertion sent 16 times at once: %v", codes)
	}

	// Revoked: device_revoked, whatever the assertion.
	if err := d.srv.RevokeDevice(context.Background(), tb.DeviceID, "test"); err != nil {
		t.Fatal(err)
	}
	if a := d.token(tb.sign(tb.claims(now))); a.status != 403 || a.code != wire.CodeDeviceRevoked {
		t.Errorf("revoked device: %d %s", a.status, a.body)
	}
	// The other device is untouched.
	if a := d.token(other.sign(other.claims(now))); a.status != 200 {
		t.Errorf("the other device after a revocation: %d %s", a.status, a.body)
	}
}

// TestAssertionsPruned: the ids of expired assertions are forgotten.
func TestAssertionsPruned(t *testing.T) {
	d := startDeviceServer(t)
	tb := d.newTablet()
	for range 5 {
		if a := d.token(tb.sign(tb.claims(time.Now()))); a.status != 200 {
			t.Fatalf("%d %s", a.status, a.body)
		}
	}
	h, err := sql.Open("sqlite3", "file:"+d.db+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	count := func() int {
		var n int
		if err := h.QueryRow(`SELECT count(*) FROM device_assertions WHERE device_id LIKE 'device:%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 5 {
		t.Fatalf("%d assertions kept, want 5", n)
	}
	// An assertion that expires in a second, then one after it has.
	c := tb.claims(time.Now())
	c["exp"] = time.Now().Add(1500 * time.Millisecond).Unix()
	if a := d.token(tb.sign(c)); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if time.Now().Unix() > c["exp"].(int64) {
			break
		}
	}
	if a := d.token(tb.sign(tb.claims(time.Now()))); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if n := count(); n != 6 {
		t.Errorf("%d assertions kept, want 6: the expired one pruned", n)
	}
}

// TestEnrolRetry: the same code from the same key is the same enrolment,
// as often as it is sent while the code is valid; another key gets
// enrol_code_invalid; nothing is left half done.
func TestEnrolRetry(t *testing.T) {
	d := startDeviceServer(t)
	ctx := context.Background()
	code, _ := d.srv.NewEnrolCode(ctx, d.unit.ID, "test")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	first, a := d.enrol(code.Code, priv)
	if a.status != 201 || first.AccessToken == "" || first.TokenAudience != d.base+wire.TokenPath {
		t.Fatalf("enrol: %d %s", a.status, a.body)
	}
	// Lost answers: the same request again, also at once from several
	// goroutines, also with the code typed differently.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := code.Code
			if i%2 == 1 {
				c = " " + string(bytes.ToLower([]byte(c)))
			}
			again, a := d.enrol(c, priv)
			if a.status != 201 || again.DeviceID != first.DeviceID || again.AccessToken == "" {
				t.Errorf("enrolment again: %d %s", a.status, a.body)
			}
		}()
	}
	wg.Wait()
	_, thief := d.enrol(code.Code, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)))
	if thief.status != 401 || thief.code != wire.CodeEnrolCodeInvalid {
		t.Errorf("the code with another key: %d %s", thief.status, thief.body)
	}
	devs, _ := d.srv.DevicesOf(ctx, uuid.Nil)
	if len(devs) != 1 {
		t.Errorf("%d devices enrolled, want 1", len(devs))
	}
	// The same key with a new code is not a second enrolment.
	code2, _ := d.srv.NewEnrolCode(ctx, d.unit.ID, "test")
	if _, a := d.enrol(code2.Code, priv); a.status != 400 || a.code != wire.CodeMalformed {
		t.Errorf("a registered key with a new code: %d %s", a.status, a.body)
	}
	// That code is not burnt: a new key enrols with it.
	if _, a := d.enrol(code2.Code, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))); a.status != 201 {
		t.Errorf("the new code after a refused key: %d %s", a.status, a.body)
	}
	// A revoked device's retry is told so.
	d.srv.RevokeDevice(ctx, first.DeviceID, "test")
	if _, a := d.enrol(code.Code, priv); a.status != 403 || a.code != wire.CodeDeviceRevoked {
		t.Errorf("retry of a revoked device: %d %s", a.status, a.body)
	}
	for _, c := range []struct {
		name string
		body string
		st   int
		code wire.Code
	}{
		{"protocol 1: no key", `{"code":"` + code.Code + `"}`, 426, wire.CodeUnsupportedVersion},
		{"a short key", `{"code":"` + code.Code + `","public_key":"AAAA"}`, 400, wire.CodeMalformed},
		{"a padded key", `{"code":"` + code.Code + `","public_key":"` + base64.URLEncoding.EncodeToString(make([]byte, 32)) + `"}`, 400, wire.CodeMalformed},
		{"no code", `{"public_key":"` + base64.RawURLEncoding.EncodeToString(make([]byte, 32)) + `"}`, 400, wire.CodeMalformed},
		{"no proof", `{"code":"` + code.Code + `","public_key":"` + base64.RawURLEncoding.EncodeToString(make([]byte, 32)) + `"}`, 400, wire.CodeMalformed},
	} {
		if a := d.post(wire.EnrolPath, "", "application/json", []byte(c.body)); a.status != c.st || a.code != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, a.status, a.body, c.st, c.code)
		}
	}
	if _, a := d.enrol("0000-0000-0000", newKey(t)); a.status != 401 || a.code != wire.CodeEnrolCodeInvalid {
		t.Errorf("unknown code: %d %s", a.status, a.body)
	}
	if a := d.post("/v1/auth/refresh", "", "application/json", []byte(`{"refresh_token":"x"}`)); a.status != 426 || a.code != wire.CodeUnsupportedVersion {
		t.Errorf("the refresh endpoint of protocol 1: %d %s", a.status, a.body)
	}
}

// TestEnrolCodeExpires: a retry after the code expired is refused, and
// leaves the enrolment as it was.
func TestEnrolCodeExpires(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv, err := server.Open(ctx, server.Config{DBPath: testDB(t), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	org, _ := srv.AddOrganisation(ctx, schema.OrgMunicipality, "Åre kommun", "23")
	unit, _ := srv.AddUnit(ctx, org.ID, "Fältgruppen", "2321")
	code, _ := srv.NewEnrolCode(ctx, unit.ID, "test")
	key := newKey(t)
	e, err := enrolIn(ctx, t, srv, code.Code, key, clock())
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(16 * time.Minute)
	mu.Unlock()
	if _, err := enrolIn(ctx, t, srv, code.Code, key, clock()); wire.ErrorCode(err) != wire.CodeEnrolCodeInvalid {
		t.Errorf("retry after expiry: %v", err)
	}
	devs, _ := srv.DevicesOf(ctx, uuid.Nil)
	if len(devs) != 1 || devs[0].ID != e.DeviceID || devs[0].RevokedAt != nil {
		t.Errorf("devices: %+v", devs)
	}
}

// TestAccessTokenClaimTypes: an access token signed with the server's own
// key whose exp, iat or nbf is a string is refused.
func TestAccessTokenClaimTypes(t *testing.T) {
	d := startDeviceServer(t)
	tb := d.newTablet()
	h, err := sql.Open("sqlite3", "file:"+d.db+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var kid string
	var seed []byte
	if err := h.QueryRow(`SELECT kid, private_key FROM signing_keys WHERE retired_at IS NULL`).Scan(&kid, &seed); err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	now := time.Now()
	mint := func(edit func(jwt.MapClaims)) string {
		c := jwt.MapClaims{"iss": "brygga", "aud": []string{"brygga-api"}, "sub": "device:" + tb.DeviceID.String(),
			"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": uuid.NewString(),
			"org": tb.OrgID.String(), "unit": tb.UnitID.String()}
		edit(c)
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	status := func(token string) int {
		req, _ := http.NewRequest("GET", d.base+wire.PullPath("", 10), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := status(mint(func(jwt.MapClaims) {})); st != 200 {
		t.Fatalf("a token as the server makes them: %d", st)
	}
	for _, name := range []string{"exp", "iat", "nbf"} {
		tok := mint(func(c jwt.MapClaims) { c[name] = strconv.FormatInt(c[name].(int64), 10) })
		if st := status(tok); st != 401 {
			t.Errorf("%s as a string: %d", name, st)
		}
	}
}

// TestJSONEndpointsTakeOnlyJSON: a multipart form, or any other content
// type, sent to a JSON endpoint is answered unsupported_media_type.
func TestJSONEndpointsTakeOnlyJSON(t *testing.T) {
	d := startDeviceServer(t)
	tb := d.newTablet()
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	mw.WriteField("code", "x")
	mw.Close()
	for _, path := range []string{"/v1/sync/push", "/v1/auth/login", wire.TokenPath, wire.EnrolPath} {
		for _, c := range []struct {
			ct   string
			body []byte
		}{
			{mw.FormDataContentType(), form.Bytes()},
			{"multipart/form-data; boundary=x", []byte("not a form")},
			{"multipart/form-data", []byte("--x\r\n")},
			{"text/plain", []byte(`{}`)},
			{"application/x-www-form-urlencoded", []byte("a=b")},
		} {
			if a := d.post(path, tb.AccessToken, c.ct, c.body); a.status != 415 || a.code != wire.CodeUnsupportedMedia {
				t.Errorf("%s as %s: %d %s", path, c.ct, a.status, a.body)
			}
		}
	}
}

// TestPushRequiresClockAndMutations: a push without clock or mutations,
// or with either null, is refused and names the field.
func TestPushRequiresClockAndMutations(t *testing.T) {
	d := startDeviceServer(t)
	tb := d.newTablet()
	v := `"protocol":` + strconv.Itoa(wire.Protocol) + `,"schema":` + strconv.Itoa(schema.Version)
	for _, c := range []struct {
		body, field string
	}{
		{`{` + v + `,"mutations":[]}`, "clock"},
		{`{` + v + `,"clock":null,"mutations":[]}`, "clock"},
		{`{` + v + `,"clock":"0190f00000000000"}`, "mutations"},
		{`{` + v + `,"clock":"0190f00000000000","mutations":null}`, "mutations"},
		{`{"mutations":[],` + v + `}`, "clock"},
	} {
		a := d.post("/v1/sync/push", tb.AccessToken, "application/json", []byte(c.body))
		var e struct {
			Error *wire.Error `json:"error"`
		}
		json.Unmarshal(a.body, &e)
		if a.status != 400 || e.Error == nil || e.Error.Code != wire.CodeMalformed || e.Error.Field != c.field {
			t.Errorf("%s: %d %s, want 400 malformed_request on %s", c.body, a.status, a.body, c.field)
		}
	}
	if a := d.post("/v1/sync/push", tb.AccessToken, "application/json", []byte(`{`+v+`,"clock":"0190f00000000000","mutations":[]}`)); a.status != 200 {
		t.Errorf("an empty push: %d %s", a.status, a.body)
	}
}
