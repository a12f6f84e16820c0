package server_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/brygga/brygga/sync/wire"
)

// proofClaims are the claims of a valid enrolment proof of priv for code,
// issued at now.
func proofClaims(priv ed25519.PrivateKey, code string, now time.Time) jwt.MapClaims {
	iss := wire.EnrolIssuerPrefix + wire.KeyThumbprint(priv.Public().(ed25519.PublicKey))
	return jwt.MapClaims{"iss": iss, "sub": iss, "aud": wire.EnrolAudience, "code": wire.EnrolCodeHash(code),
		"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": uuid.NewString()}
}

func signProof(t *testing.T, priv ed25519.PrivateKey, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// enrolBody is an enrolment request with the given proof.
func enrolBody(code string, priv ed25519.PrivateKey, proof string) map[string]string {
	return map[string]string{"code": code, "public_key": base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)), "proof": proof}
}

// TestEnrolProof: an enrolment proves possession of the key with a fresh
// proof that is taken once. Every forged, replayed or stale proof is
// refused with its code and enrols nothing; a retry with a new proof is
// the same enrolment.
func TestEnrolProof(t *testing.T) {
	d := startDeviceServer(t)
	ctx := context.Background()
	code, err := d.srv.NewEnrolCode(ctx, d.unit.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	priv, other := newKey(t), newKey(t)
	now := time.Now()
	edit := func(f func(jwt.MapClaims)) string {
		c := proofClaims(priv, code.Code, now)
		f(c)
		return signProof(t, priv, c)
	}
	otherIss := wire.EnrolIssuerPrefix + wire.KeyThumbprint(other.Public().(ed25519.PublicKey))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, proofClaims(priv, code.Code, now)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, proofClaims(priv, code.Code, now)).SignedString([]byte("secret"))
	for _, c := range []struct {
		name  string
		proof string
		st    int
		code  wire.Code
	}{
		{"signed with another key", signProof(t, other, proofClaims(priv, code.Code, now)), 401, wire.CodeUnauthorized},
		{"another key's proof, its own thumbprint", signProof(t, other, proofClaims(other, code.Code, now)), 401, wire.CodeUnauthorized},
		{"alg none", none, 401, wire.CodeUnauthorized},
		{"alg HS256", hs, 401, wire.CodeUnauthorized},
		{"not a JWT", "proof", 401, wire.CodeUnauthorized},
		{"a tampered payload", func() string {
			p := strings.Split(edit(func(jwt.MapClaims) {}), ".")
			p[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"x"}`))
			return strings.Join(p, ".")
		}(), 401, wire.CodeUnauthorized},
		{"iss of another key", edit(func(c jwt.MapClaims) { c["iss"], c["sub"] = otherIss, otherIss }), 401, wire.CodeUnauthorized},
		{"sub differs from iss", edit(func(c jwt.MapClaims) { c["sub"] = "device:" + uuid.NewString() }), 401, wire.CodeUnauthorized},
		{"aud the token endpoint", edit(func(c jwt.MapClaims) { c["aud"] = d.base + wire.TokenPath }), 401, wire.CodeUnauthorized},
		{"two audiences", edit(func(c jwt.MapClaims) { c["aud"] = []string{wire.EnrolAudience, "x"} }), 401, wire.CodeUnauthorized},
		{"another code's hash", edit(func(c jwt.MapClaims) { c["code"] = wire.EnrolCodeHash("AAAA-BBBB-CCCC") }), 401, wire.CodeUnauthorized},
		{"the code in clear", edit(func(c jwt.MapClaims) { c["code"] = code.Code }), 401, wire.CodeUnauthorized},
		{"no code claim", edit(func(c jwt.MapClaims) { delete(c, "code") }), 401, wire.CodeUnauthorized},
		{"no exp", edit(func(c jwt.MapClaims) { delete(c, "exp") }), 401, wire.CodeUnauthorized},
		{"no iat", edit(func(c jwt.MapClaims) { delete(c, "iat") }), 401, wire.CodeUnauthorized},
		{"exp as a string", edit(func(c jwt.MapClaims) { c["exp"] = "9999999999" }), 401, wire.CodeUnauthorized},
		{"lives an hour", edit(func(c jwt.MapClaims) { c["exp"] = now.Add(time.Hour).Unix() }), 401, wire.CodeUnauthorized},
		{"no jti", edit(func(c jwt.MapClaims) { delete(c, "jti") }), 401, wire.CodeUnauthorized},
		{"a 200-byte jti", edit(func(c jwt.MapClaims) { c["jti"] = strings.Repeat("j", 200) }), 401, wire.CodeUnauthorized},
		{"expired", edit(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(-10*time.Minute).Unix(), now.Add(-8*time.Minute).Unix()
		}), 401, wire.CodeClockSkew},
		{"issued an hour ahead", edit(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(time.Hour).Unix(), now.Add(time.Hour+2*time.Minute).Unix()
		}), 401, wire.CodeClockSkew},
	} {
		a := d.postJSON(wire.EnrolPath, "", enrolBody(code.Code, priv, c.proof))
		if a.status != c.st || a.code != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, a.status, a.body, c.st, c.code)
		}
		if c.code == wire.CodeClockSkew && a.header.Get(wire.HeaderServerTime) == "" {
			t.Errorf("%s: no %s header", c.name, wire.HeaderServerTime)
		}
	}
	if devs, _ := d.srv.DevicesOf(ctx, uuid.Nil); len(devs) != 0 {
		t.Fatalf("%d devices enrolled by refused proofs", len(devs))
	}

	// A valid proof enrols; the same request again, sixteen times at
	// once (someone who saw it, or a duplicating network), is refused:
	// no access token leaves for it. They come from another address than
	// the refused proofs, which took most of the enrolments one address
	// may try a minute.
	d.from("127.0.0.2")
	proof := signProof(t, priv, proofClaims(priv, code.Code, now))
	first := d.postJSON(wire.EnrolPath, "", enrolBody(code.Code, priv, proof))
	if first.status != 201 {
		t.Fatalf("a valid proof: %d %s", first.status, first.body)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[wire.Code]int{}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := d.postJSON(wire.EnrolPath, "", enrolBody(code.Code, priv, proof))
			mu.Lock()
			codes[a.code]++
			mu.Unlock()
			if a.status == 201 || strings.Contains(string(a.body), "access_token") {
				t.Errorf("a replayed proof got %d %s", a.status, a.body)
			}
		}()
	}
	wg.Wait()
	if codes[wire.CodeAssertionReplayed] != 16 {
		t.Errorf("a proof replayed 16 times: %v", codes)
	}
	// A fresh proof of the same key and code (an answer lost) is the same
	// enrolment.
	tb, again := d.enrol(code.Code, priv)
	if again.status != 201 || tb.DeviceID.String() != jsonField(t, first.body, "device_id") {
		t.Errorf("a retry with a fresh proof: %d %s", again.status, again.body)
	}
	// A proof for this code made with another key is refused as ever: the
	// code is the first key's.
	if _, a := d.enrol(code.Code, other); a.status != 401 || a.code != wire.CodeEnrolCodeInvalid {
		t.Errorf("the code with another key's valid proof: %d %s", a.status, a.body)
	}
	// A proof taken once stays taken for a code unused yet too.
	code2, _ := d.srv.NewEnrolCode(ctx, d.unit.ID, "test")
	p2 := signProof(t, other, proofClaims(other, code2.Code, now))
	if a := d.postJSON(wire.EnrolPath, "", enrolBody(code2.Code, other, p2)); a.status != 201 {
		t.Fatalf("second code: %d %s", a.status, a.body)
	}
	if a := d.postJSON(wire.EnrolPath, "", enrolBody(code2.Code, other, p2)); a.status != 401 || a.code != wire.CodeAssertionReplayed {
		t.Errorf("second code, proof again: %d %s", a.status, a.body)
	}
	if devs, _ := d.srv.DevicesOf(ctx, uuid.Nil); len(devs) != 2 {
		t.Errorf("%d devices, want 2", len(devs))
	}
}

// jsonField returns a string member of a JSON object.
func jsonField(t *testing.T, body []byte, name string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	s, _ := m[name].(string)
	return s
}
