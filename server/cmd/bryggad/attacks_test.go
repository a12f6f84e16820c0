package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

// This file attacks a running bryggad from the outside: forged tokens,
// stolen and revoked credentials, devices and staff reaching beyond their
// scope, brute force, oversized and hostile bodies. docs/SECURITY.md names
// the probes here as the evidence of each defence.

// reply is an HTTP answer: its status, its error (for 4xx and 5xx) and
// its body.
type reply struct {
	status int
	err    *wire.Error
	body   []byte
}

// do makes a request with a raw body. hdr holds header name and value
// pairs; a body is sent as application/json unless hdr says otherwise.
func (b *bryggad) do(t *testing.T, method, path, token string, body []byte, hdr ...string) reply {
	t.Helper()
	req := b.request(t, method, path, token, body, hdr...)
	if len(body) > wire.MaxBodyBytes {
		return b.doOversized(t, req)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return readReply(t, req, resp)
}

// request builds the request do sends.
func (b *bryggad) request(t *testing.T, method, path, token string, body []byte, hdr ...string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, b.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

// doOversized sends a request whose body is over the limit. The server
// answers it from the headers and closes the connection while the body is
// still on its way, so the answer is read while the body is written (which
// http.Client does not do: it reports the failed write instead).
func (b *bryggad) doOversized(t *testing.T, req *http.Request) reply {
	t.Helper()
	conn, err := net.DialTimeout("tcp", req.URL.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	go req.Write(conn) // fails once the server closes: that is expected
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	if err := apiCheck.CheckResponse(req, resp); err != nil {
		t.Error(err)
	}
	return readReply(t, req, resp)
}

// readReply reads resp and its error body.
func readReply(t *testing.T, req *http.Request, resp *http.Response) reply {
	t.Helper()
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	rep := reply{status: resp.StatusCode, body: data}
	if resp.StatusCode >= 400 {
		var e struct{ Error *wire.Error }
		if err := json.Unmarshal(data, &e); err != nil || e.Error == nil {
			t.Errorf("%s %s: status %d without an error body: %.200q", req.Method, req.URL.Path, resp.StatusCode, data)
		}
		rep.err = e.Error
	}
	return rep
}

func getAs(b *bryggad, path, token string) func(*testing.T) reply {
	return func(t *testing.T) reply { return b.do(t, "GET", path, token, nil) }
}

func postAs(b *bryggad, path, token string, body any, hdr ...string) func(*testing.T) reply {
	return func(t *testing.T) reply {
		switch v := body.(type) {
		case nil:
			return b.do(t, "POST", path, token, nil, hdr...)
		case string:
			return b.do(t, "POST", path, token, []byte(v), hdr...)
		case []byte:
			return b.do(t, "POST", path, token, v, hdr...)
		default:
			data, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			return b.do(t, "POST", path, token, data, hdr...)
		}
	}
}

// probe is one row of a table of attacks: what to send and what must come
// back. status 0 accepts any status below 500; check looks further.
type probe struct {
	name   string
	send   func(*testing.T) reply
	status int
	code   wire.Code
	check  func(*testing.T, reply)
}

func runProbes(t *testing.T, probes []probe) {
	t.Helper()
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			r := p.send(t)
			if r.status >= 500 {
				t.Fatalf("server error %d: %.300s", r.status, r.body)
			}
			if p.status != 0 && r.status != p.status {
				t.Errorf("status %d (%v), want %d", r.status, r.err, p.status)
			}
			if p.code != "" && (r.err == nil || r.err.Code != p.code) {
				t.Errorf("error %v, want code %s", r.err, p.code)
			}
			if p.check != nil {
				p.check(t, r)
			}
		})
	}
}

// account is a staff login's answer.
type account struct {
	AccessToken string    `json:"access_token"`
	Role        string    `json:"role"`
	OrgID       uuid.UUID `json:"org_id"`
	UnitID      uuid.UUID `json:"unit_id"`
}

func (b *bryggad) account(t *testing.T, role string) account {
	t.Helper()
	user, pw, _ := strings.Cut(b.accounts[role], ":")
	var a account
	if st, e := b.call(t, "POST", "/v1/auth/login", "", map[string]string{"username": user, "password": pw}, &a); e != nil {
		t.Fatalf("login %s: %d %v", role, st, e)
	}
	return a
}

// tablet is an enrolled device with the staff of its unit, its clock and
// the number of its next mutation.
type tablet struct {
	enrolment
	staff []uuid.UUID
	clock *hlc.Clock
	next  int64
}

// enrol enrols a device for unit with a code made by token's user, and
// pulls its first scope to learn its unit's staff.
func (b *bryggad) enrol(t *testing.T, token string, unit uuid.UUID) *tablet {
	t.Helper()
	d := &tablet{clock: hlc.NewClock(nil, 0), next: 1}
	var st int
	var e *wire.Error
	if d.enrolment, st, e = b.enrolDevice(t, b.enrolCode(t, token, unit)); e != nil || st != 201 {
		t.Fatalf("enrol: %d %v", st, e)
	}
	for _, c := range pullAll(t, b, d.AccessToken) {
		var st schema.Staff
		if c.Kind == schema.KindStaff && json.Unmarshal(c.Fields, &st) == nil && st.UnitID == unit {
			d.staff = append(d.staff, st.ID)
		}
	}
	if len(d.staff) < 2 {
		t.Fatalf("unit %s has %d staff", unit, len(d.staff))
	}
	return d
}

func (d *tablet) header() schema.Header {
	return schema.Header{ID: uuid.Must(uuid.NewV7()), UnitID: d.UnitID, DeviceID: d.DeviceID, StaffID: d.staff[0],
		OccurredAt: time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)}
}

func (d *tablet) contact(code schema.ClientCode, area string) *schema.Contact {
	return &schema.Contact{Header: d.header(), ClientCode: code, Gender: schema.GenderWoman, AgeBand: schema.Age30to39,
		Setting: schema.SettingStreet, AreaCode: area}
}

// mut is a mutation to push: fields is its raw JSON, whatever bytes it
// holds.
type mut struct {
	kind   string
	id     string
	fields string
}

// fieldsWith encodes rec's fields as a JSON object, with the raw values
// of set replacing (or, for names the record lacks, added to) them; an
// empty value leaves the field out.
func fieldsWith(rec schema.Record, set map[string]string) string {
	var parts []string
	seen := map[string]bool{}
	for _, f := range rec.Fields() {
		seen[f.Name] = true
		v, ok := set[f.Name]
		if !ok {
			data, _ := f.MarshalJSON()
			v = string(data)
		}
		if v != "" {
			parts = append(parts, jsonString(f.Name)+":"+v)
		}
	}
	var extra []string
	for k := range set {
		if !seen[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		parts = append(parts, `"`+k+`":`+set[k]) // raw: the name may hold any bytes
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func jsonString(s string) string {
	data, _ := json.Marshal(s)
	return string(data)
}

// create is the mutation that creates rec, with raw values replacing some
// of its fields.
func create(rec schema.Record, set map[string]string) mut {
	return mut{kind: string(rec.Kind()), id: rec.RecordID().String(), fields: fieldsWith(rec, set)}
}

// pushJSON is a push request of ms numbered from next on.
func (d *tablet) pushJSON(next int64, ms []mut) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, `{"protocol":%d,"schema":%d,"clock":"%s","mutations":[`, wire.Protocol, schema.Version, d.clock.Now())
	for i, m := range ms {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"seq":%d,"kind":%s,"id":%s,"version":"%s","fields":%s}`, next+int64(i), jsonString(m.kind), jsonString(m.id), d.clock.Now(), m.fields)
	}
	sb.WriteString("]}")
	return sb.String()
}

// sendPush pushes the body build makes from the next mutation number; on
// a 200 the device's next number moves past what the server processed.
func (d *tablet) sendPush(b *bryggad, build func(next int64) string, hdr ...string) func(*testing.T) reply {
	return func(t *testing.T) reply {
		r := b.do(t, "POST", "/v1/sync/push", d.AccessToken, []byte(build(d.next)), hdr...)
		if r.status == 200 {
			var resp wire.PushResponse
			if err := json.Unmarshal(r.body, &resp); err != nil {
				t.Fatalf("push answer: %v", err)
			}
			d.next = resp.LastSeq + 1
		}
		return r
	}
}

func (d *tablet) push(b *bryggad, ms ...mut) func(*testing.T) reply {
	return d.sendPush(b, func(next int64) string { return d.pushJSON(next, ms) })
}

// mustPush pushes records that must all be applied.
func (d *tablet) mustPush(t *testing.T, b *bryggad, recs ...schema.Record) {
	t.Helper()
	var ms []mut
	for _, rec := range recs {
		ms = append(ms, create(rec, nil))
	}
	r := d.push(b, ms...)(t)
	if r.status != 200 {
		t.Fatalf("push: %d %v", r.status, r.err)
	}
	var resp wire.PushResponse
	json.Unmarshal(r.body, &resp)
	for i, res := range resp.Results {
		if res.Status != wire.Applied {
			t.Fatalf("push of %s %s: %s %v", recs[i].Kind(), recs[i].RecordID(), res.Status, res.Error)
		}
	}
}

// results checks a push's answer mutation by mutation. Each want is a
// status ("applied", "duplicate") or a rejection's code, optionally with
// "/rule" and ":field", such as "invalid_record/type:syringes_out".
func results(want ...string) func(*testing.T, reply) {
	return func(t *testing.T, r reply) {
		t.Helper()
		var resp wire.PushResponse
		if err := json.Unmarshal(r.body, &resp); err != nil {
			t.Fatalf("push answer: %v: %.200s", err, r.body)
		}
		if len(resp.Results) != len(want) {
			t.Fatalf("%d results, want %d: %.300s", len(resp.Results), len(want), r.body)
		}
		for i, w := range want {
			res := resp.Results[i]
			if w == string(wire.Applied) || w == string(wire.Duplicate) {
				if string(res.Status) != w {
					t.Errorf("mutation %d: %s %v, want %s", i+1, res.Status, res.Error, w)
				}
				continue
			}
			w, field, _ := strings.Cut(w, ":")
			code, rule, _ := strings.Cut(w, "/")
			e := res.Error
			if res.Status != wire.Rejected || e == nil {
				t.Errorf("mutation %d: %s, want rejected with %s", i+1, res.Status, code)
				continue
			}
			if !documentedCode(e.Code) {
				t.Errorf("mutation %d: code %q is not in docs/errors.md", i+1, e.Code)
			}
			if string(e.Code) != code || rule != "" && string(e.Rule) != rule || field != "" && e.Field != field {
				t.Errorf("mutation %d: rejected %s/%s:%s (%s), want %s/%s:%s", i+1, e.Code, e.Rule, e.Field, e.Message, code, rule, field)
			}
		}
	}
}

// documentedCode reports whether docs/errors.md lists code.
func documentedCode(code wire.Code) bool {
	switch code {
	case wire.CodeMalformed, wire.CodeUnsupportedVersion, wire.CodeBatchTooLarge, wire.CodeBodyTooLarge, wire.CodeSeqGap,
		wire.CodeCursorInvalid, wire.CodeUnauthorized, wire.CodeAssertionReplayed, wire.CodeClockSkew, wire.CodeEnrolCodeInvalid,
		wire.CodeMethodNotAllowed, wire.CodeUnsupportedMedia, wire.CodeForbidden, wire.CodeDeviceRevoked,
		wire.CodeRateLimited, wire.CodeInternal, wire.CodeInvalidRecord, wire.CodeImmutable, wire.CodeUnknownKind,
		wire.CodeNotFound, wire.CodeOutOfScope, wire.CodeSeqReused:
		return true
	}
	return false
}

// scope pulls everything a device may see: the changes by id.
func scope(t *testing.T, b *bryggad, d *tablet) map[uuid.UUID]wire.Change {
	t.Helper()
	out := map[uuid.UUID]wire.Change{}
	for _, c := range pullAll(t, b, d.AccessToken) {
		out[c.ID] = c
	}
	return out
}

// auditLog returns the newest 1000 entries of the audit log.
type auditEntry struct {
	Actor   string `json:"actor"`
	Action  string `json:"action"`
	Target  string `json:"target"`
	Outcome string `json:"outcome"`
	Rows    int64  `json:"rows"`
}

func auditLog(t *testing.T, b *bryggad, admin string) []auditEntry {
	t.Helper()
	var log struct {
		Entries []auditEntry `json:"entries"`
	}
	if st, e := b.call(t, "GET", "/v1/audit?limit=1000", admin, nil, &log); e != nil {
		t.Fatalf("audit: %d %v", st, e)
	}
	return log.Entries
}

func countAudit(entries []auditEntry, match func(auditEntry) bool) int {
	n := 0
	for _, e := range entries {
		if match(e) {
			n++
		}
	}
	return n
}

// tokenClaims are the claims of a forged access token.
type tokenClaims struct {
	jwt.RegisteredClaims
	Role string `json:"role,omitempty"`
	Org  string `json:"org,omitempty"`
	Unit string `json:"unit,omitempty"`
}

// adminClaims are the claims of an admin's access token, as the server
// would issue them now.
func adminClaims() tokenClaims {
	now := time.Now()
	return tokenClaims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: "brygga", Audience: jwt.ClaimStrings{"brygga-api"}, Subject: "user:" + uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
		ExpiresAt: jwt.NewNumericDate(now.Add(10 * time.Minute)), ID: uuid.NewString(),
	}, Role: "admin"}
}

// with returns the claims changed by edit.
func (c tokenClaims) with(edit func(*tokenClaims)) tokenClaims {
	edit(&c)
	return c
}

func sign(t *testing.T, method jwt.SigningMethod, kid string, key any, c tokenClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unsigned is a token with the header {"alg":"none"} and no signature.
func unsigned(t *testing.T, header string, c tokenClaims) string {
	t.Helper()
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString(payload) + "."
}

// signingKey reads the server's signing key from its database, as anyone
// who can read the database file can.
func signingKey(t *testing.T, db string, retired bool) (string, ed25519.PrivateKey) {
	t.Helper()
	h, err := replicaOpen(db)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	q := `SELECT kid, private_key FROM signing_keys WHERE retired_at IS NULL`
	if retired {
		q = `SELECT kid, private_key FROM signing_keys WHERE retired_at IS NOT NULL`
	}
	var kid string
	var seed []byte
	if err := h.QueryRow(q).Scan(&kid, &seed); err != nil {
		t.Fatalf("signing key: %v", err)
	}
	return kid, ed25519.NewKeyFromSeed(seed)
}

// gzipped compresses data.
func gzipped(data []byte) []byte {
	var zb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zb, gzip.BestCompression)
	zw.Write(data)
	zw.Close()
	return zb.Bytes()
}

// bomb is a push that is a few kilobytes gzip-compressed and twice the
// body limit decompressed.
func bomb() []byte {
	return gzipped([]byte(`{"protocol":2,"schema":2,"clock":"` + strings.Repeat("0", 2*wire.MaxBodyBytes) + `","mutations":[]}`))
}

var uuidPattern = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// TestAttacks attacks a running server as an outsider with forged tokens,
// as a device beyond its unit, as a manager beyond the organisation, as
// the authority after row-level data, by brute force and by size, and
// checks the audit log's account of it.
func TestAttacks(t *testing.T) {
	b := startBryggad(t)
	manager := b.account(t, "manager")
	authority := b.account(t, "authority")
	admin := b.account(t, "admin")

	var units struct {
		Units []schema.Unit `json:"units"`
	}
	b.call(t, "GET", "/v1/units", admin.AccessToken, nil, &units)
	unitA := b.outreach
	var unitB, orgB uuid.UUID
	known := map[string]bool{} // the ids of reference data: units and organisations
	for _, u := range units.Units {
		known[u.ID.String()], known[u.OrgID.String()] = true, true
		if u.Name == "Mobila teamet Åre" {
			unitB, orgB = u.ID, u.OrgID
		}
	}
	if unitB == uuid.Nil || orgB == manager.OrgID {
		t.Fatalf("no unit of another organisation: %+v", units.Units)
	}

	// Two units of two organisations record contacts of clients with
	// client codes.
	devA := b.enrol(t, manager.AccessToken, unitA)
	devA2 := b.enrol(t, manager.AccessToken, unitA)
	devB := b.enrol(t, admin.AccessToken, unitB)
	var recordIDs []uuid.UUID // every record the devices created
	var codes []schema.ClientCode
	rowsOf := map[uuid.UUID][]uuid.UUID{} // unit -> its records
	contactsA := 0
	var contactB *schema.Contact
	for _, d := range []*tablet{devA, devB} {
		area := map[uuid.UUID]string{unitA: "2380", unitB: "2321"}[d.UnitID]
		var recs []schema.Record
		for range 6 {
			code, err := schema.NewClientCode(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			codes = append(codes, code)
			cl := &schema.Client{Header: d.header(), Code: code, Gender: schema.GenderMan, AgeBand: schema.Age25to29}
			c := d.contact(code, area)
			x := &schema.SyringeExchange{Header: d.header(), ContactID: c.ID, SyringesOut: 10, NeedlesOut: 10, SyringesReturned: 7}
			recs = append(recs, cl, c, x)
			if d == devA {
				contactsA++
			} else {
				contactB = c
			}
		}
		d.mustPush(t, b, recs...)
		for _, r := range recs {
			recordIDs = append(recordIDs, r.RecordID())
			rowsOf[d.UnitID] = append(rowsOf[d.UnitID], r.RecordID())
		}
	}

	// Forged tokens: the server's own key signs the control.
	kid, key := signingKey(t, b.db, false)
	var jwks struct {
		Keys []struct{ Kid, X string } `json:"keys"`
	}
	b.call(t, "GET", "/.well-known/jwks.json", "", nil, &jwks)
	var public []byte
	for _, k := range jwks.Keys {
		if k.Kid == kid {
			public, _ = base64.RawURLEncoding.DecodeString(k.X)
		}
	}
	if len(public) != ed25519.PublicKeySize {
		t.Fatalf("jwks lacks the signing key %s: %+v", kid, jwks)
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	valid := adminClaims()
	ago := func(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(time.Now().Add(-d)) }
	tampered := func() string {
		parts := strings.Split(manager.AccessToken, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		payload = bytes.Replace(payload, []byte(`"role":"manager"`), []byte(`"role":"admin"`), 1)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
	}()
	forged := func(name, token string) probe {
		return probe{name: "jwt: " + name, send: getAs(b, "/v1/audit?limit=1", token), status: 401, code: wire.CodeUnauthorized}
	}

	// A device to revoke, and one whose assertion is copied on the way.
	devRevoked := b.enrol(t, manager.AccessToken, unitA)
	devStolen := b.enrol(t, manager.AccessToken, unitA)
	stolen := devStolen.assertion(nil)

	// What devices must never see or store.
	var bad []uuid.UUID // records pushed out of scope: the server must not hold them
	outOfScope := func(rec schema.Record) schema.Record { bad = append(bad, rec.RecordID()); return rec }
	cA := outOfScope(devA.contact("", "2380"))
	staffB := devB.staff[0]

	var probes []probe
	probes = append(probes,
		probe{name: "jwt: control, the server's own key", send: getAs(b, "/v1/audit?limit=1", sign(t, jwt.SigningMethodEdDSA, kid, key, valid)), status: 200},
		forged("alg none", unsigned(t, `{"alg":"none","typ":"JWT"}`, valid)),
		forged("alg none with the server's kid", unsigned(t, `{"alg":"none","typ":"JWT","kid":"`+kid+`"}`, valid)),
		forged("alg None with a signature", unsigned(t, `{"alg":"None","kid":"`+kid+`"}`, valid)+"c2lnbmF0dXJl"),
		forged("HS256 keyed with the server's public key", sign(t, jwt.SigningMethodHS256, kid, public, valid)),
		forged("unknown kid", sign(t, jwt.SigningMethodEdDSA, uuid.NewString(), stranger, valid)),
		forged("a stranger's key under the server's kid", sign(t, jwt.SigningMethodEdDSA, kid, stranger, valid)),
		forged("no kid", sign(t, jwt.SigningMethodEdDSA, "", key, valid)),
		forged("expired", sign(t, jwt.SigningMethodEdDSA, kid, key, valid.with(func(c *tokenClaims) {
			c.IssuedAt, c.NotBefore, c.ExpiresAt = ago(20*time.Minute), ago(21*time.Minute), ago(time.Minute)
		}))),
		forged("not yet valid", sign(t, jwt.SigningMethodEdDSA, kid, key, valid.with(func(c *tokenClaims) { c.NotBefore = ago(-10 * time.Minute) }))),
		forged("issued in the future", sign(t, jwt.SigningMethodEdDSA, kid, key, valid.with(func(c *tokenClaims) { c.IssuedAt = ago(-10 * time.Minute) }))),
		forged("wrong audience", sign(t, jwt.SigningMethodEdDSA, kid, key, valid.with(func(c *tokenClaims) { c.Audience = jwt.ClaimStrings{"brygga-dashboard"} }))),
		forged("no audience", sign(t, jwt.SigningMethodEdDSA, kid, key, valid.with(func(c *tokenClaims) { c.Audience = nil }))),
		forged("wrong issuer", sign(t, jwt.SigningMethodEdDSA, kid, key, valid.with(func(c *tokenClaims) { c.Issuer = "brygga-evil" }))),
		forged("no issuer", sign(t, jwt.SigningMethodEdDSA, kid, key, valid.with(func(c *tokenClaims) { c.Issuer = "" }))),
		forged("no expiry", sign(t, jwt.SigningMethodEdDSA, kid, key, valid.with(func(c *tokenClaims) { c.ExpiresAt = nil }))),
		forged("no subject", sign(t, jwt.SigningMethodEdDSA, kid, key, valid.with(func(c *tokenClaims) { c.Subject = "admin" }))),
		forged("manager token with its role changed to admin", tampered),
		forged("truncated signature", manager.AccessToken[:len(manager.AccessToken)-4]),
		probe{name: "jwt: a device's token on a staff endpoint", send: getAs(b, "/v1/audit", devA.AccessToken), status: 403, code: wire.CodeForbidden},
		probe{name: "jwt: a manager's token on pull", send: getAs(b, fmt.Sprintf("/v1/sync/pull?protocol=%d&schema=%d", wire.Protocol, schema.Version), manager.AccessToken), status: 403, code: wire.CodeForbidden},

		// A revoked device keeps a valid access token for minutes: it is
		// refused and told to wipe, whatever it presents.
		probe{name: "revocation: unconfirmed, it is refused and says what would happen", send: postAs(b, "/v1/devices/"+devRevoked.DeviceID.String()+"/revoke", manager.AccessToken, nil), status: 409, code: wire.CodeConfirmationRequired},
		probe{name: "revocation: the manager revokes a device", send: postAs(b, "/v1/devices/"+devRevoked.DeviceID.String()+"/revoke", manager.AccessToken, map[string]bool{"confirm": true}), status: 200},
		probe{name: "revocation: push with the revoked device's valid token", send: devRevoked.push(b, create(devRevoked.contact("", "2380"), nil)), status: 403, code: wire.CodeDeviceRevoked},
		probe{name: "revocation: pull with the revoked device's valid token", send: getAs(b, fmt.Sprintf("/v1/sync/pull?protocol=%d&schema=%d", wire.Protocol, schema.Version), devRevoked.AccessToken), status: 403, code: wire.CodeDeviceRevoked},
		probe{name: "revocation: a token for the revoked device's assertion", send: postAs(b, wire.TokenPath, "", devRevoked.assertion(nil)), status: 403, code: wire.CodeDeviceRevoked},

		// A copied assertion. The tablet used it; the copy is refused, and
		// the tablet's next assertion works: nothing ends its access.
		probe{name: "assertion: the tablet's own use", send: postAs(b, wire.TokenPath, "", stolen), status: 200},
		probe{name: "assertion: the copy replayed", send: postAs(b, wire.TokenPath, "", stolen), status: 401, code: wire.CodeAssertionReplayed},
		probe{name: "assertion: the tablet's next one", send: postAs(b, wire.TokenPath, "", devStolen.assertion(nil)), status: 200},
		probe{name: "assertion: the claims of the tablet signed by another device's key", send: func(t *testing.T) reply {
			forged := devStolen.enrolment
			forged.key = devA.key
			return postAs(b, wire.TokenPath, "", forged.assertion(nil))(t)
		}, status: 401, code: wire.CodeUnauthorized},
		probe{name: "assertion: alg none", send: postAs(b, wire.TokenPath, "", map[string]string{"grant_type": wire.GrantJWTBearer,
			"assertion": unsigned(t, `{"alg":"none","typ":"JWT"}`, tokenClaims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "device:" + devStolen.DeviceID.String(),
				Subject: "device:" + devStolen.DeviceID.String(), Audience: jwt.ClaimStrings{devStolen.TokenAudience}, IssuedAt: ago(0), ExpiresAt: ago(-time.Minute), ID: uuid.NewString()}})}),
			status: 401, code: wire.CodeUnauthorized},

		// A device pushing for another unit, device or staff member: each
		// mutation is rejected, the rest of the batch goes on.
		probe{name: "push: a contact of another unit", send: devA.push(b, create(outOfScope(devA.contact("", "2380")), map[string]string{"unit_id": jsonString(unitB.String())})),
			status: 200, check: results("out_of_scope:unit_id")},
		probe{name: "push: a contact of another device", send: devA.push(b, create(outOfScope(devA.contact("", "2380")), map[string]string{"device_id": jsonString(devA2.DeviceID.String())})),
			status: 200, check: results("out_of_scope:device_id")},
		probe{name: "push: a contact by staff of another unit", send: devA.push(b, create(outOfScope(devA.contact("", "2380")), map[string]string{"staff_id": jsonString(staffB.String())})),
			status: 200, check: results("not_found:staff_id")},
		probe{name: "push: a contact of another unit, device and staff member", send: devA.push(b, create(outOfScope(devA.contact("", "2321")), map[string]string{
			"unit_id": jsonString(unitB.String()), "device_id": jsonString(devB.DeviceID.String()), "staff_id": jsonString(staffB.String())})),
			status: 200, check: results("out_of_scope:unit_id")},
		probe{name: "push: an exchange at another unit's contact", send: devA.push(b, create(outOfScope(&schema.SyringeExchange{Header: devA.header(), ContactID: contactB.ID, SyringesOut: 5}), nil)),
			status: 200, check: results("not_found:contact_id")},
		probe{name: "push: a contact under another unit's contact id", send: devA.push(b, create(cA, map[string]string{"id": jsonString(contactB.ID.String())})),
			status: 200, check: results("invalid_record/consistency:id")},
		probe{name: "push: a contact that takes another unit's contact id", send: devA.push(b, mut{kind: "contacts", id: contactB.ID.String(),
			fields: fieldsWith(cA, map[string]string{"id": jsonString(contactB.ID.String())})}),
			status: 200, check: results("out_of_scope:id")},
		probe{name: "push: voiding another unit's contact", send: devA.push(b, mut{kind: "contacts", id: contactB.ID.String(), fields: `{"voided":true}`}),
			status: 200, check: results("not_found:id")},
		probe{name: "push: correcting another unit's contact", send: devA.push(b, mut{kind: "contacts", id: contactB.ID.String(), fields: `{"area_code":"2380","client_code":null}`}),
			status: 200, check: results("not_found:id")},
		probe{name: "push: moving an own contact to another unit", send: devA.push(b, mut{kind: "contacts", id: rowsOf[unitA][1].String(), fields: `{"unit_id":"` + unitB.String() + `"}`}),
			status: 200, check: results("immutable_field/immutable:unit_id")},
		probe{name: "push: a mixed batch", send: devA.push(b,
			create(outOfScope(devA.contact("", "2380")), map[string]string{"unit_id": jsonString(unitB.String())}),
			mut{kind: "contacts", id: contactB.ID.String(), fields: `{"voided":true}`},
			create(outOfScope(&schema.NaloxoneHandout{Header: devA.header(), ContactID: contactB.ID, Doses: 2, Reason: schema.NaloxoneFirstKit}), nil),
			create(outOfScope(&schema.Referral{Header: devA.header(), ToUnitID: unitB, Service: schema.ServiceSocialServices, Status: schema.StatusSent, ContactID: contactB.ID}), nil)),
			status: 200, check: results("out_of_scope:unit_id", "not_found:id", "not_found:contact_id", "not_found:contact_id")},

		// Pulls: a unit sees its own records and reference data, never
		// another unit's records.
		probe{name: "pull: unit A never receives unit B's records", send: func(t *testing.T) reply {
			return reply{status: 200, body: mustJSON(pullAll(t, b, devA.AccessToken))}
		}, status: 200, check: pulledOnly(unitA, rowsOf[unitA], rowsOf[unitB])},
		probe{name: "pull: unit B never receives unit A's records", send: func(t *testing.T) reply {
			return reply{status: 200, body: mustJSON(pullAll(t, b, devB.AccessToken))}
		}, status: 200, check: pulledOnly(unitB, rowsOf[unitB], rowsOf[unitA])},
		probe{name: "pull: a second device of unit A sees unit A only", send: func(t *testing.T) reply {
			return reply{status: 200, body: mustJSON(pullAll(t, b, devA2.AccessToken))}
		}, status: 200, check: pulledOnly(unitA, rowsOf[unitA], rowsOf[unitB])},

		// A manager reaching into another organisation.
		probe{name: "manager: stats of another organisation", send: getAs(b, "/v1/stats?period=year&org="+orgB.String(), manager.AccessToken), status: 200,
			check: func(t *testing.T, r reply) {
				var st struct {
					OrgID uuid.UUID `json:"org_id"`
					Rows  []struct {
						Group      string           `json:"group"`
						Indicators map[string]int64 `json:"indicators"`
					} `json:"rows"`
				}
				json.Unmarshal(r.body, &st)
				var contacts int64
				for _, row := range st.Rows {
					if row.Group == "total" {
						contacts += row.Indicators["contacts"]
					}
				}
				if st.OrgID != manager.OrgID || contacts != int64(contactsA) {
					t.Errorf("stats of org %s with %d contacts, want own org %s with %d", st.OrgID, contacts, manager.OrgID, contactsA)
				}
			}},
		probe{name: "manager: stats by unit of another organisation", send: getAs(b, "/v1/stats?period=year&by=unit&org="+orgB.String(), manager.AccessToken), status: 200,
			check: func(t *testing.T, r reply) {
				if bytes.Contains(r.body, []byte(unitB.String())) {
					t.Errorf("stats show unit B: %.300s", r.body)
				}
			}},
		probe{name: "manager: devices of the own organisation only", send: getAs(b, "/v1/devices", manager.AccessToken), status: 200,
			check: func(t *testing.T, r reply) {
				if !bytes.Contains(r.body, []byte(devA.DeviceID.String())) || bytes.Contains(r.body, []byte(devB.DeviceID.String())) {
					t.Errorf("device list: %s", r.body)
				}
			}},
		probe{name: "manager: revoke another organisation's device", send: postAs(b, "/v1/devices/"+devB.DeviceID.String()+"/revoke", manager.AccessToken, nil), status: 404, code: wire.CodeNotFound},
		probe{name: "manager: that device still syncs", send: getAs(b, fmt.Sprintf("/v1/sync/pull?protocol=%d&schema=%d", wire.Protocol, schema.Version), devB.AccessToken), status: 200},
		probe{name: "manager: enrolment code for another organisation's unit", send: postAs(b, "/v1/devices/enroll-codes", manager.AccessToken, map[string]any{"unit_id": unitB}), status: 404, code: wire.CodeNotFound},
		probe{name: "manager: the audit log", send: getAs(b, "/v1/audit", manager.AccessToken), status: 403, code: wire.CodeForbidden},
		probe{name: "manager: the authority's report", send: getAs(b, "/v1/reports/indicators", manager.AccessToken), status: 403, code: wire.CodeForbidden},

		// The authority gets aggregates, never rows.
		probe{name: "authority: pull", send: getAs(b, fmt.Sprintf("/v1/sync/pull?protocol=%d&schema=%d", wire.Protocol, schema.Version), authority.AccessToken), status: 403, code: wire.CodeForbidden},
		probe{name: "authority: push", send: postAs(b, "/v1/sync/push", authority.AccessToken, devA.pushJSON(1, nil)), status: 403, code: wire.CodeForbidden},
		probe{name: "authority: stats", send: getAs(b, "/v1/stats?period=year", authority.AccessToken), status: 403, code: wire.CodeForbidden},
		probe{name: "authority: stats of an organisation", send: getAs(b, "/v1/stats?period=year&org="+orgB.String(), authority.AccessToken), status: 403, code: wire.CodeForbidden},
		probe{name: "authority: devices", send: getAs(b, "/v1/devices", authority.AccessToken), status: 403, code: wire.CodeForbidden},
		probe{name: "authority: client cards", send: getAs(b, "/v1/client-cards?count=1", authority.AccessToken), status: 403, code: wire.CodeForbidden},
		probe{name: "authority: the audit log", send: getAs(b, "/v1/audit", authority.AccessToken), status: 403, code: wire.CodeForbidden},
		probe{name: "authority: a report by client", send: getAs(b, "/v1/reports/indicators?by=client_code", authority.AccessToken), status: 400, code: wire.CodeMalformed},
		probe{name: "authority: a report by device", send: getAs(b, "/v1/reports/indicators?by=device", authority.AccessToken), status: 400, code: wire.CodeMalformed},
	)
	reports := 0
	for _, format := range []string{"json", "csv"} {
		for _, by := range []string{"", "unit", "municipality", "organisation", "gender", "age_band"} {
			for _, period := range []string{"week", "year"} {
				reports++
				probes = append(probes, probe{name: fmt.Sprintf("authority: report format=%s by=%s period=%s", format, by, period),
					send:   getAs(b, fmt.Sprintf("/v1/reports/indicators?format=%s&by=%s&period=%s", format, by, period), authority.AccessToken),
					status: 200, check: func(t *testing.T, r reply) {
						aggregatesOnly(t, r.body, known, codes)
						if !bytes.Contains(r.body, []byte("contacts")) {
							t.Errorf("a report without contacts: %.300s", r.body)
						}
					}})
			}
		}
	}

	// Brute force: five failures lock the username, even against the
	// right password.
	user, pw, _ := strings.Cut(b.accounts["manager"], ":")
	for i := range 5 {
		probes = append(probes, probe{name: fmt.Sprintf("login: wrong password %d", i+1),
			send: postAs(b, "/v1/auth/login", "", map[string]string{"username": user, "password": fmt.Sprintf("guess number %d", i)}), status: 401, code: wire.CodeUnauthorized})
	}
	probes = append(probes,
		probe{name: "login: the right password after 5 failures", send: postAs(b, "/v1/auth/login", "", map[string]string{"username": user, "password": pw}), status: 429, code: wire.CodeRateLimited},
		probe{name: "login: still locked", send: postAs(b, "/v1/auth/login", "", map[string]string{"username": user, "password": pw}), status: 429, code: wire.CodeRateLimited},

		// Bodies beyond 8 MiB, plain or as a gzip bomb.
		probe{name: "size: push over 8 MiB", send: postAs(b, "/v1/sync/push", devA.AccessToken, bigPush(devA)), status: 413, code: wire.CodeBodyTooLarge},
		probe{name: "size: login over 8 MiB", send: postAs(b, "/v1/auth/login", "", `{"username":"`+strings.Repeat("a", wire.MaxBodyBytes)+`","password":"x"}`), status: 413, code: wire.CodeBodyTooLarge},
		probe{name: "size: gzip bomb push", send: postAs(b, "/v1/sync/push", devA.AccessToken, bomb(), "Content-Encoding", "gzip"), status: 413, code: wire.CodeBodyTooLarge},
		probe{name: "size: gzip bomb login", send: postAs(b, "/v1/auth/login", "", gzipped([]byte(`{"username":"`+strings.Repeat("a", 2*wire.MaxBodyBytes)+`","password":"x"}`)), "Content-Encoding", "gzip"), status: 413, code: wire.CodeBodyTooLarge},
		probe{name: "size: gzip bomb enrolment", send: postAs(b, "/v1/devices/enroll", "", gzipped([]byte(`{"code":"`+strings.Repeat("A", 2*wire.MaxBodyBytes)+`"}`)), "Content-Encoding", "gzip"), status: 413, code: wire.CodeBodyTooLarge},
		probe{name: "size: gzip bomb token", send: postAs(b, wire.TokenPath, "", gzipped([]byte(`{"grant_type":"`+wire.GrantJWTBearer+`","assertion":"`+strings.Repeat("A", 2*wire.MaxBodyBytes)+`"}`)), "Content-Encoding", "gzip"), status: 413, code: wire.CodeBodyTooLarge},
		probe{name: "size: a push of 1001 mutations", send: devA.sendPush(b, func(next int64) string {
			ms := make([]mut, wire.MaxMutations+1)
			for i := range ms {
				ms[i] = mut{kind: "contacts", id: uuid.NewString(), fields: `{"voided":true}`}
			}
			return devA.pushJSON(next, ms)
		}), status: 413, code: wire.CodeBatchTooLarge},
	)
	runProbes(t, probes)

	// Nothing pushed out of scope reached the server: neither unit holds
	// it, and unit B's contact is as B recorded it.
	scopeA, scopeB := scope(t, b, devA), scope(t, b, devB)
	for _, id := range bad {
		if _, ok := scopeA[id]; ok {
			t.Errorf("record %s pushed out of scope is in unit A", id)
		}
		if _, ok := scopeB[id]; ok {
			t.Errorf("record %s pushed out of scope is in unit B", id)
		}
	}
	if c, ok := scopeB[contactB.ID]; !ok {
		t.Error("unit B lost its contact")
	} else {
		var got schema.Contact
		json.Unmarshal(c.Fields, &got)
		if got.Voided || got.AreaCode != contactB.AreaCode || got.UnitID != unitB || got.ClientCode != contactB.ClientCode {
			t.Errorf("unit B's contact was changed by unit A: %s", c.Fields)
		}
	}
	if c, ok := scopeA[rowsOf[unitA][1]]; !ok || !bytes.Contains(c.Fields, []byte(unitA.String())) {
		t.Errorf("unit A's contact moved: %v", c)
	}
	for _, id := range recordIDs {
		if _, ok := scopeA[id]; !ok {
			if _, ok := scopeB[id]; !ok {
				t.Errorf("record %s lost", id)
			}
		}
	}

	// The audit log tells the story.
	log := auditLog(t, b, admin.AccessToken)
	// Failed logins are audited under a keyed hash of the username, the
	// same for each attempt, never under the username.
	failures := map[string][2]int{} // target -> unauthorized, rate limited
	for _, e := range log {
		if e.Action != "login_failed" {
			continue
		}
		if strings.Contains(e.Target, user) {
			t.Errorf("audit: a failed login names the username: %q", e.Target)
		}
		n := failures[e.Target]
		switch e.Outcome {
		case string(wire.CodeUnauthorized):
			n[0]++
		case string(wire.CodeRateLimited):
			n[1]++
		}
		failures[e.Target] = n
	}
	if n := countAudit(log, func(e auditEntry) bool { return e.Action == "login_failed" }); n == 0 || failures[""] != [2]int{} {
		t.Errorf("audit: failed logins without a target: %v", failures)
	}
	locked := false
	for _, n := range failures {
		locked = locked || n == [2]int{5, 2}
	}
	if !locked {
		t.Errorf("audit: no username with 5 failed and 2 refused logins: %v", failures)
	}
	if n := countAudit(log, func(e auditEntry) bool {
		return e.Action == "token" && e.Target == "device:"+devStolen.DeviceID.String() && e.Outcome == string(wire.CodeAssertionReplayed)
	}); n != 1 {
		t.Errorf("audit: %d replays of the copied assertion, want 1", n)
	}
	if n := countAudit(log, func(e auditEntry) bool {
		return e.Action == "revoke" && e.Actor == "user:"+idOf(t, manager.AccessToken) && e.Target == "device:"+devRevoked.DeviceID.String()
	}); n != 1 {
		t.Errorf("audit: %d revocations of the revoked device by the manager, want 1", n)
	}
	if n := countAudit(log, func(e auditEntry) bool { return e.Action == "revoke" && e.Target == "device:"+devB.DeviceID.String() }); n != 0 {
		t.Errorf("audit: the other organisation's device was revoked %d times", n)
	}
	if n := countAudit(log, func(e auditEntry) bool {
		return e.Action == "pull" && e.Actor == "device:"+devRevoked.DeviceID.String() && e.Outcome == string(wire.CodeDeviceRevoked)
	}); n != 1 {
		t.Errorf("audit: %d refused pulls of the revoked device, want 1", n)
	}
	if n := countAudit(log, func(e auditEntry) bool {
		return e.Action == "pull" && e.Actor == "device:"+devA.DeviceID.String() && e.Target == "unit:"+unitA.String() && e.Outcome == "ok" && e.Rows > 0
	}); n == 0 {
		t.Error("audit: no pulls of device A")
	}
	if n := countAudit(log, func(e auditEntry) bool {
		return e.Action == "report" && e.Actor == "user:"+idOf(t, authority.AccessToken) && e.Outcome == "ok"
	}); n != reports {
		t.Errorf("audit: %d reports of the authority, want %d", n, reports)
	}
	if n := countAudit(log, func(e auditEntry) bool { return e.Action == "stats" && e.Target == "org:"+orgB.String() }); n != 0 {
		t.Errorf("audit: %d stats of the other organisation", n)
	}
	if n := countAudit(log, func(e auditEntry) bool {
		return e.Action == "push" && e.Actor == "device:"+devRevoked.DeviceID.String() && e.Outcome == string(wire.CodeDeviceRevoked)
	}); n != 1 {
		t.Errorf("audit: %d refused pushes of the revoked device, want 1", n)
	}
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}

// idOf returns the id in an access token's subject.
func idOf(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Sub string `json:"sub"`
	}
	json.Unmarshal(payload, &c)
	_, id, _ := strings.Cut(c.Sub, ":")
	return id
}

// pulledOnly checks pulled changes: every record of own is there, none of
// others, and every record pulled belongs to unit (or is a referral to it).
func pulledOnly(unit uuid.UUID, own, others []uuid.UUID) func(*testing.T, reply) {
	return func(t *testing.T, r reply) {
		var changes []wire.Change
		if err := json.Unmarshal(r.body, &changes); err != nil {
			t.Fatal(err)
		}
		got := map[uuid.UUID]bool{}
		for _, c := range changes {
			got[c.ID] = true
			if !schema.IsFieldKind(c.Kind) {
				continue
			}
			var h struct {
				UnitID   uuid.UUID `json:"unit_id"`
				ToUnitID uuid.UUID `json:"to_unit_id"`
			}
			json.Unmarshal(c.Fields, &h)
			if h.UnitID != unit && h.ToUnitID != unit {
				t.Errorf("pulled %s %s of unit %s", c.Kind, c.ID, h.UnitID)
			}
		}
		for _, id := range others {
			if got[id] {
				t.Errorf("pulled another unit's record %s", id)
			}
		}
		for _, id := range own {
			if !got[id] {
				t.Errorf("own record %s not pulled", id)
			}
		}
	}
}

// aggregatesOnly checks that a report names no record, device or staff
// member, only units and organisations, and holds no client code.
func aggregatesOnly(t *testing.T, body []byte, known map[string]bool, codes []schema.ClientCode) {
	t.Helper()
	for _, id := range uuidPattern.FindAll(body, -1) {
		if !known[strings.ToLower(string(id))] {
			t.Errorf("report holds the id %s, which is not a unit's or an organisation's", id)
		}
	}
	upper := bytes.ToUpper(body)
	for _, c := range codes {
		if bytes.Contains(upper, []byte(c)) || bytes.Contains(upper, []byte(strings.ReplaceAll(string(c), "-", ""))) {
			t.Errorf("report holds the client code %s", c)
		}
	}
}

// bigPush is a well-formed push one byte over the body limit.
func bigPush(d *tablet) []byte {
	head := d.pushJSON(d.next, []mut{{kind: "contacts", id: uuid.NewString(), fields: `{"area_code":"`}})
	head = strings.TrimSuffix(head, "]}")
	head = head[:len(head)-1] // the fields object
	tail := `"}}]}`
	pad := wire.MaxBodyBytes + 1 - len(head) - len(tail)
	return []byte(head + strings.Repeat("9", pad) + tail)
}

// TestAttacksRetiredKey checks what a rotation does to the key it
// retires: tokens it signed before stay valid until they expire, but it
// signs nothing new. An operator rotates after a key may have leaked (an
// old backup, a copied database); the leaked key must not mint tokens
// after that.
func TestAttacksRetiredKey(t *testing.T) {
	db := filepath.Join(t.TempDir(), "brygga.db")
	first, stop := serveOn(t, db, true)
	issued := first.account(t, "admin").AccessToken
	stop()
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"key", "rotate", "--db", db}, nil, &out, io.Discard); err != nil {
		t.Fatalf("key rotate: %v", err)
	}
	// Times of issue have whole seconds: what is signed from the next
	// second on is surely signed after the rotation.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	b, stop := serveOn(t, db, false)
	defer stop()
	b.accounts = first.accounts
	kid, key := signingKey(t, db, true)
	newKid, _ := signingKey(t, db, false)
	if kid == newKid || strings.TrimSpace(out.String()) != newKid {
		t.Fatalf("rotation: retired %s, signing %s, printed %q", kid, newKid, out.String())
	}
	runProbes(t, []probe{
		{name: "a token issued before the rotation", send: getAs(b, "/v1/audit?limit=1", issued), status: 200},
		{name: "a token issued after the rotation", send: getAs(b, "/v1/audit?limit=1", b.login(t, "admin")), status: 200},
		{name: "a token the retired key signs after the rotation", send: getAs(b, "/v1/audit?limit=1", sign(t, jwt.SigningMethodEdDSA, kid, key, adminClaims())), status: 401, code: wire.CodeUnauthorized},
		{name: "a token the retired key signs for a year", send: getAs(b, "/v1/audit?limit=1", sign(t, jwt.SigningMethodEdDSA, kid, key, adminClaims().with(func(c *tokenClaims) {
			c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(365 * 24 * time.Hour))
		}))), status: 401, code: wire.CodeUnauthorized},
	})
}

// serveOn runs bryggad on the database db until stop is called.
func serveOn(t *testing.T, db string, demo bool) (b *bryggad, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	args := []string{"serve", "--db", db, "--addr", "127.0.0.1:0"}
	if demo {
		args = append(args, "--demo")
	}
	go func() { done <- Run(ctx, args, nil, out, io.Discard) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bryggad: %v", err)
		}
	}
	t.Cleanup(stop)
	re := regexp.MustCompile(`listening on (http://\S+)`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			b = &bryggad{url: m[1], db: db, out: out, accounts: map[string]string{}}
			for _, line := range strings.Split(out.String(), "\n") {
				if f := strings.Fields(line); len(f) == 3 && (f[0] == "manager" || f[0] == "authority" || f[0] == "admin") {
					b.accounts[f[0]] = f[1] + ":" + f[2]
				}
			}
			return b, stop
		}
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("bryggad stopped: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("bryggad did not start:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHostileInput sends push and the other JSON endpoints what no client
// would: wrong types, huge numbers, negative counts, unknown codes, deep
// nesting, huge strings, invalid UTF-8, SQL, missing fields, duplicated
// ids and impossible times. Each is a 4xx, or for a push a rejection with
// a documented code, never a 5xx; nothing of it is stored, and the server
// records the next contact as before.
func TestHostileInput(t *testing.T) {
	b := startBryggad(t)
	manager := b.account(t, "manager")
	admin := b.account(t, "admin")
	d := b.enrol(t, manager.AccessToken, b.outreach)
	anchor := d.contact("", "2380") // a contact to hang exchanges and handouts on
	d.mustPush(t, b, anchor)

	var bad []uuid.UUID // records that must not be stored
	contact := func(set map[string]string) mut {
		c := d.contact("", "2380")
		bad = append(bad, c.ID)
		return create(c, set)
	}
	exchange := func(set map[string]string) mut {
		x := &schema.SyringeExchange{Header: d.header(), ContactID: anchor.ID, SyringesOut: 10, NeedlesOut: 10}
		bad = append(bad, x.ID)
		return create(x, set)
	}
	naloxone := func(set map[string]string) mut {
		n := &schema.NaloxoneHandout{Header: d.header(), ContactID: anchor.ID, Doses: 2, Reason: schema.NaloxoneFirstKit}
		bad = append(bad, n.ID)
		return create(n, set)
	}
	pushWith := func(muts ...mut) func(*testing.T) reply { return d.push(b, muts...) }
	raw := func(build func(next int64) string, hdr ...string) func(*testing.T) reply {
		return d.sendPush(b, build, hdr...)
	}
	// whole replaces part of an otherwise valid push of one contact.
	whole := func(old, new string) func(*testing.T) reply {
		c := d.contact("", "2380")
		bad = append(bad, c.ID)
		return raw(func(next int64) string {
			body := d.pushJSON(next, []mut{create(c, nil)})
			if !strings.Contains(body, old) {
				t.Fatalf("%q is not in %s", old, body)
			}
			return strings.Replace(body, old, new, 1)
		})
	}
	seq := func(next int64) string { return fmt.Sprintf(`"seq":%d`, next) }
	wholeSeq := func(new string) func(*testing.T) reply {
		c := d.contact("", "2380")
		bad = append(bad, c.ID)
		return raw(func(next int64) string {
			return strings.Replace(d.pushJSON(next, []mut{create(c, nil)}), seq(next), new, 1)
		})
	}

	sql := "'; DROP TABLE contacts; --"
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	deepObj := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	mib := func(n int) string { return strings.Repeat("x", n<<20) }
	dup := d.contact("", "2380")
	otherStaff := d.staff[1]
	v := fmt.Sprintf("protocol=%d&schema=%d", wire.Protocol, schema.Version)
	bigUser := strings.Repeat("u", 1<<20)

	const (
		malformed = wire.CodeMalformed
		st400     = 400
	)
	post := func(path, token string, body any) func(*testing.T) reply { return postAs(b, path, token, body) }
	enrolPriv := newPrivateKey(t)
	publicKey := base64.RawURLEncoding.EncodeToString(enrolPriv.Public().(ed25519.PublicKey))
	proof := func(code string) string {
		p, err := server.SignEnrolProof(enrolPriv, code, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	probes := []probe{
		// Wrong types.
		{name: "push: protocol as a string", send: whole(`"protocol":2`, `"protocol":"1"`), status: st400, code: malformed},
		{name: "push: mutations as an object", send: raw(func(int64) string {
			return fmt.Sprintf(`{"protocol":2,"schema":2,"clock":"%s","mutations":{}}`, d.clock.Now())
		}), status: st400, code: malformed},
		{name: "push: seq as a string", send: wholeSeq(`"seq":"1"`), status: st400, code: malformed},
		{name: "push: id as a number", send: whole(`"id":"`, `"id":5,"x":"`), status: st400, code: malformed},
		{name: "push: clock as a number", send: whole(`"clock":"`, `"clock":1,"x":"`), status: st400, code: malformed},
		{name: "push: fields as a string", send: pushWith(mut{kind: "contacts", id: uuid.NewString(), fields: `"x"`}), status: 200, check: results("malformed_request:fields")},
		{name: "push: fields as an array", send: pushWith(mut{kind: "contacts", id: uuid.NewString(), fields: `[1]`}), status: 200, check: results("malformed_request:fields")},
		{name: "push: fields null", send: pushWith(mut{kind: "contacts", id: uuid.NewString(), fields: `null`}), status: 200, check: results("malformed_request:fields")},
		{name: "push: wrong field types", send: pushWith(
			exchange(map[string]string{"syringes_out": `"30"`}),
			contact(map[string]string{"occurred_at": `1700000000`}),
			contact(map[string]string{"voided": `"yes"`}),
			contact(map[string]string{"gender": `1`}),
			contact(map[string]string{"unit_id": `"not-a-uuid"`}),
			contact(map[string]string{"area_code": `2380`}),
			exchange(map[string]string{"supplies": `[1,2]`}),
			exchange(map[string]string{"supplies": `{"swabs":"ten"}`}),
		), status: 200, check: results("invalid_record/type:syringes_out", "invalid_record/type:occurred_at", "invalid_record/type:voided",
			"invalid_record/type:gender", "invalid_record/type:unit_id", "invalid_record/type:area_code", "invalid_record/type:supplies", "invalid_record/type:supplies")},
		{name: "login: wrong types", send: post("/v1/auth/login", "", `{"username":1,"password":true}`), status: st400, code: malformed},
		{name: "login: an array", send: post("/v1/auth/login", "", `[]`), status: st400, code: malformed},
		{name: "login: null", send: post("/v1/auth/login", "", `null`), status: st400, code: malformed},
		{name: "token: an object for the assertion", send: post(wire.TokenPath, "", `{"grant_type":"`+wire.GrantJWTBearer+`","assertion":{}}`), status: st400, code: malformed},
		{name: "enrol: a number for the code", send: post("/v1/devices/enroll", "", `{"code":123}`), status: st400, code: malformed},
		{name: "enrolment code: a number for the unit", send: post("/v1/devices/enroll-codes", manager.AccessToken, `{"unit_id":42}`), status: st400, code: malformed},

		// Huge numbers.
		{name: "push: seq 1e400", send: wholeSeq(`"seq":1e400`), status: st400, code: malformed},
		{name: "push: seq 2^63", send: wholeSeq(`"seq":9223372036854775808`), status: st400, code: malformed},
		{name: "push: seq 2^63-1", send: wholeSeq(`"seq":9223372036854775807`), status: 409, code: wire.CodeSeqGap},
		{name: "push: protocol 1e400", send: whole(`"protocol":2`, `"protocol":1e400`), status: st400, code: malformed},
		{name: "push: huge counts", send: pushWith(
			exchange(map[string]string{"syringes_out": `1e400`}),
			exchange(map[string]string{"syringes_out": `9223372036854775808`}),
			exchange(map[string]string{"syringes_out": `2147483648`}),
			exchange(map[string]string{"syringes_out": `5001`}),
			exchange(map[string]string{"syringes_out": `10.5`}),
			exchange(map[string]string{"supplies": `{"swabs":1e400}`}),
			naloxone(map[string]string{"doses": `51`}),
		), status: 200, check: results("invalid_record/type:syringes_out", "invalid_record/type:syringes_out", "invalid_record/type:syringes_out",
			"invalid_record/range:syringes_out", "invalid_record/type:syringes_out", "invalid_record/type:supplies", "invalid_record/range:doses")},
		{name: "login: a huge number", send: post("/v1/auth/login", "", `{"username":1e400,"password":"x"}`), status: st400, code: malformed},
		{name: "pull: limit 2^63", send: getAs(b, "/v1/sync/pull?"+v+"&limit=9223372036854775808", d.AccessToken), status: st400, code: malformed},
		{name: "audit: before 2^63", send: getAs(b, "/v1/audit?before=9223372036854775808", admin.AccessToken), status: st400, code: malformed},
		{name: "client cards: count 1e400", send: getAs(b, "/v1/client-cards?count=1e400", manager.AccessToken), status: st400, code: malformed},

		// Negative counts.
		{name: "push: negative seq", send: wholeSeq(`"seq":-1`), status: st400, code: malformed},
		{name: "push: negative counts", send: pushWith(
			exchange(map[string]string{"syringes_out": `-1`}),
			exchange(map[string]string{"needles_out": `-5`}),
			exchange(map[string]string{"syringes_returned": `-2147483648`}),
			exchange(map[string]string{"supplies": `{"swabs":-3}`}),
			naloxone(map[string]string{"doses": `-2`}),
		), status: 200, check: results("invalid_record/range:syringes_out", "invalid_record/range:needles_out", "invalid_record/range:syringes_returned",
			"invalid_record/range:supplies.swabs", "invalid_record/range:doses")},
		{name: "pull: negative limit", send: getAs(b, "/v1/sync/pull?"+v+"&limit=-1", d.AccessToken), status: st400, code: malformed},
		{name: "audit: negative limit", send: getAs(b, "/v1/audit?limit=-1", admin.AccessToken), status: st400, code: malformed},
		{name: "client cards: negative count", send: getAs(b, "/v1/client-cards?count=-1", manager.AccessToken), status: st400, code: malformed},

		// Unknown codes.
		{name: "push: unknown enum codes", send: pushWith(
			contact(map[string]string{"gender": `"female"`}),
			contact(map[string]string{"setting": `"moon"`}),
			contact(map[string]string{"substance": `"` + sql + `"`}),
			naloxone(map[string]string{"reason": `"` + sql + `"`}),
			exchange(map[string]string{"supplies": `{"crack_pipes":1}`}),
		), status: 200, check: results("invalid_record/enum:gender", "invalid_record/enum:setting", "invalid_record/enum:substance",
			"invalid_record/enum:reason", "invalid_record")},
		{name: "push: unknown kinds", send: pushWith(
			mut{kind: "patients", id: uuid.NewString(), fields: `{}`},
			mut{kind: "units", id: uuid.NewString(), fields: `{"name":"x"}`},
			mut{kind: "signing_keys", id: uuid.NewString(), fields: `{}`},
			mut{kind: sql, id: uuid.NewString(), fields: `{}`},
			mut{kind: "", id: uuid.NewString(), fields: `{}`},
		), status: 200, check: results("unknown_kind", "unknown_kind", "unknown_kind", "unknown_kind", "unknown_kind")},
		{name: "push: an unknown field", send: pushWith(contact(map[string]string{"name": `"Anna Andersson"`})), status: 200, check: results("invalid_record/unknown_field:name")},
		{name: "push: a free-text note", send: pushWith(contact(map[string]string{"note": `"personnummer 19800101-1234"`})), status: 200, check: results("invalid_record/unknown_field:note")},
		{name: "stats: unknown period", send: getAs(b, "/v1/stats?period="+url.QueryEscape(sql), manager.AccessToken), status: st400, code: malformed},
		{name: "stats: unknown breakdown", send: getAs(b, "/v1/stats?by=client_code", manager.AccessToken), status: st400, code: malformed},

		// Deep nesting.
		{name: "push: fields 10k levels deep", send: pushWith(mut{kind: "contacts", id: uuid.NewString(), fields: `{"setting":` + deep(10000) + `}`}), status: st400, code: malformed},
		{name: "push: body 10k objects deep", send: raw(func(int64) string { return deepObj(10001) }), status: st400, code: malformed},
		{name: "push: a field 5k levels deep", send: pushWith(contact(map[string]string{"setting": deep(5000)})), status: 200, check: results("invalid_record/type:setting")},
		{name: "push: supplies 5k levels deep", send: pushWith(exchange(map[string]string{"supplies": `{"swabs":` + deep(5000) + `}`})), status: 200, check: results("invalid_record/type:supplies")},
		{name: "login: 10k levels deep", send: post("/v1/auth/login", "", `{"username":`+deep(10000)+`,"password":"x"}`), status: st400, code: malformed},
		{name: "enrolment code: 10k levels deep", send: post("/v1/devices/enroll-codes", manager.AccessToken, `{"unit_id":`+deepObj(10000)+`}`), status: st400, code: malformed},
		{name: "token: 10k levels deep", send: post(wire.TokenPath, "", deepObj(10000)), status: st400, code: malformed},

		// Huge strings under the body limit.
		{name: "push: a 4 MiB area code", send: pushWith(contact(map[string]string{"area_code": `"` + mib(4) + `"`})), status: 200, check: results("invalid_record/range:fields")},
		{name: "push: a 2 MiB client code", send: pushWith(contact(map[string]string{"client_code": `"` + mib(2) + `"`})), status: 200, check: results("invalid_record/range:fields")},
		{name: "push: a 1 MiB field name", send: pushWith(contact(map[string]string{mib(1): `1`})), status: 200, check: results("invalid_record/range:fields")},
		{name: "push: a 12 KiB area code", send: pushWith(contact(map[string]string{"area_code": `"` + strings.Repeat("1", 12<<10) + `"`})), status: 200, check: results("invalid_record/format:area_code")},
		{name: "push: 2 MiB in the version", send: whole(`"version":"`, `"version":"`+mib(2)), status: st400, code: malformed},
		{name: "login: a 1 MiB username", send: post("/v1/auth/login", "", `{"username":"`+bigUser+`","password":"x"}`), status: 401, code: wire.CodeUnauthorized,
			check: func(t *testing.T, r reply) {
				// The username is kept in the audit log, which is never
				// pruned: an anonymous caller must not be able to write
				// megabytes into it.
				for _, e := range auditLog(t, b, admin.AccessToken) {
					if e.Action == "login_failed" && len(e.Target) > 1024 {
						t.Errorf("audit: an anonymous failed login stored a target of %d bytes", len(e.Target))
					}
				}
			}},
		{name: "login: a 4 MiB password", send: post("/v1/auth/login", "", `{"username":"admin","password":"`+mib(4)+`"}`), status: 401, code: wire.CodeUnauthorized},
		{name: "token: a 4 MiB assertion", send: post(wire.TokenPath, "", `{"grant_type":"`+wire.GrantJWTBearer+`","assertion":"`+mib(4)+`"}`), status: 401, code: wire.CodeUnauthorized},
		{name: "enrol: a 4 MiB code", send: post("/v1/devices/enroll", "", `{"code":"`+mib(4)+`","public_key":"`+publicKey+`","proof":"`+proof(mib(4))+`"}`), status: 401, code: wire.CodeEnrolCodeInvalid},
		{name: "enrol: a 4 MiB key", send: post("/v1/devices/enroll", "", `{"code":"AAAA","public_key":"`+mib(4)+`"}`), status: st400, code: malformed},

		// Invalid UTF-8.
		{name: "push: invalid UTF-8 in values and names", send: pushWith(
			contact(map[string]string{"area_code": "\"\xff\xfe12\""}),
			contact(map[string]string{"client_code": "\"7K3M-QX2D-\xc3\""}),
			contact(map[string]string{"area_code": `"\ud800\udc00\ud800"`}),
			contact(map[string]string{"g\xffnder": `"woman"`}),
		), status: 200, check: results("invalid_record/type:area_code", "invalid_record/type:client_code", "invalid_record/format:area_code", "invalid_record/type:fields")},
		{name: "push: invalid UTF-8 in the kind", send: pushWith(mut{kind: "contacts\xff", id: uuid.NewString(), fields: `{}`}), status: 200, check: results("unknown_kind")},
		{name: "login: invalid UTF-8", send: post("/v1/auth/login", "", "{\"username\":\"adm\xffin\",\"password\":\"\xfe\xff\"}"), status: 401, code: wire.CodeUnauthorized},
		{name: "enrol: invalid UTF-8", send: post("/v1/devices/enroll", "", "{\"code\":\"\xff\xff\xff\",\"public_key\":\""+publicKey+"\",\"proof\":\""+proof("\xff\xff\xff")+"\"}"), status: 401, code: wire.CodeEnrolCodeInvalid},

		// SQL.
		{name: "push: SQL as client code and area code", send: pushWith(
			contact(map[string]string{"client_code": jsonString(sql)}),
			contact(map[string]string{"area_code": jsonString(sql)}),
			contact(map[string]string{"area_code": jsonString("1' OR '1'='1")}),
		), status: 200, check: results("invalid_record/client_code:client_code", "invalid_record/format:area_code", "invalid_record/format:area_code")},
		{name: "push: SQL as an id", send: pushWith(mut{kind: "contacts", id: sql, fields: `{}`}), status: st400, code: malformed},
		{name: "login: SQL as the username", send: post("/v1/auth/login", "", map[string]string{"username": sql, "password": "x"}), status: 401, code: wire.CodeUnauthorized},
		{name: "login: SQL that matches every user", send: post("/v1/auth/login", "", map[string]string{"username": "admin' OR '1'='1", "password": "' OR '1'='1"}), status: 401, code: wire.CodeUnauthorized},
		{name: "token: SQL as the assertion", send: post(wire.TokenPath, "", map[string]string{"grant_type": wire.GrantJWTBearer, "assertion": sql}), status: 401, code: wire.CodeUnauthorized},
		{name: "enrol: SQL as the code", send: post("/v1/devices/enroll", "", map[string]string{"code": sql, "public_key": publicKey, "proof": proof(sql)}), status: 401, code: wire.CodeEnrolCodeInvalid},
		{name: "enrolment code: SQL as the unit", send: post("/v1/devices/enroll-codes", manager.AccessToken, map[string]string{"unit_id": sql}), status: st400, code: malformed},
		{name: "pull: SQL as the cursor", send: getAs(b, "/v1/sync/pull?"+v+"&cursor="+url.QueryEscape(sql), d.AccessToken), status: 410, code: wire.CodeCursorInvalid},
		{name: "revoke: SQL as the device", send: post("/v1/devices/"+url.PathEscape(sql)+"/revoke", manager.AccessToken, nil), status: st400, code: malformed},
		{name: "stats: SQL as a date", send: getAs(b, "/v1/stats?from="+url.QueryEscape(sql), manager.AccessToken), status: st400, code: malformed},

		// Missing fields.
		{name: "push: records without required fields", send: pushWith(
			contact(map[string]string{"setting": ""}),
			contact(map[string]string{"occurred_at": ""}),
			contact(map[string]string{"area_code": ""}),
			contact(map[string]string{"unit_id": ""}),
			contact(map[string]string{"staff_id": ""}),
			exchange(map[string]string{"contact_id": ""}),
			naloxone(map[string]string{"reason": `null`}),
		), status: 200, check: results("invalid_record/required:setting", "invalid_record/required:occurred_at", "invalid_record/required:area_code",
			"out_of_scope:unit_id", "not_found:staff_id", "not_found:contact_id", "invalid_record/required:reason")},
		{name: "push: mutations without id, kind, version or fields", send: raw(func(next int64) string {
			ms := []string{
				fmt.Sprintf(`{"seq":%d,"kind":"contacts","version":"%s","fields":{"voided":true}}`, next, d.clock.Now()),
				fmt.Sprintf(`{"seq":%d,"id":"%s","version":"%s","fields":{"voided":true}}`, next+1, uuid.Must(uuid.NewV7()), d.clock.Now()),
				fmt.Sprintf(`{"seq":%d,"kind":"contacts","id":"%s","fields":{"voided":true}}`, next+2, uuid.Must(uuid.NewV7())),
				fmt.Sprintf(`{"seq":%d,"kind":"contacts","id":"%s","version":"%s"}`, next+3, uuid.Must(uuid.NewV7()), d.clock.Now()),
				fmt.Sprintf(`{"seq":%d,"kind":"contacts","id":"%s","version":"%s","fields":{}}`, next+4, uuid.Must(uuid.NewV7()), d.clock.Now()),
			}
			return fmt.Sprintf(`{"protocol":2,"schema":2,"clock":"%s","mutations":[%s]}`, d.clock.Now(), strings.Join(ms, ","))
		}), status: 200, check: results("invalid_record/required:id", "unknown_kind:kind", "malformed_request:version", "malformed_request:fields", "not_found:id")},
		{name: "push: no seq", send: wholeSeq(`"x":0`), status: st400, code: malformed},
		{name: "push: no versions", send: raw(func(int64) string { return `{"mutations":[]}` }), status: 426, code: wire.CodeUnsupportedVersion},
		{name: "login: no password", send: post("/v1/auth/login", "", `{"username":"admin"}`), status: st400, code: malformed},
		{name: "token: empty object", send: post(wire.TokenPath, "", `{}`), status: st400, code: malformed},
		{name: "enrol: empty object", send: post("/v1/devices/enroll", "", `{}`), status: st400, code: malformed},
		{name: "enrolment code: empty object", send: post("/v1/devices/enroll-codes", manager.AccessToken, `{}`), status: st400, code: malformed},
		{name: "enrolment code: nil unit", send: post("/v1/devices/enroll-codes", manager.AccessToken, `{"unit_id":"00000000-0000-0000-0000-000000000000"}`), status: st400, code: malformed},
		{name: "login: empty body", send: post("/v1/auth/login", "", ``), status: st400, code: malformed},

		// Duplicated ids and numbers within one push.
		{name: "push: one id three times", send: pushWith(
			create(dup, nil),
			create(dup, map[string]string{"staff_id": jsonString(otherStaff.String())}),
			create(dup, map[string]string{"unit_id": jsonString(uuid.NewString())}),
		), status: 200, check: results("applied", "immutable_field/immutable:staff_id", "out_of_scope:unit_id")},
		{name: "push: one seq twice", send: raw(func(next int64) string {
			body := d.pushJSON(next, []mut{contact(nil), contact(nil)})
			return strings.Replace(body, seq(next+1), seq(next), 1)
		}), status: st400, code: malformed},
		{name: "push: an id in fields unlike the mutation's", send: pushWith(mut{kind: "contacts", id: uuid.Must(uuid.NewV7()).String(), fields: create(d.contact("", "2380"), nil).fields}),
			status: 200, check: results("invalid_record/consistency:id")},
		{name: "push: an id that is not a UUIDv7", send: func() func(*testing.T) reply {
			c := d.contact("", "2380")
			c.ID = uuid.New()
			bad = append(bad, c.ID)
			return pushWith(create(c, nil))
		}(), status: 200, check: results("invalid_record/id_version:id")},
		{name: "login: a duplicated key", send: post("/v1/auth/login", "", `{"username":"admin","username":"x","password":"y"}`), status: 401, code: wire.CodeUnauthorized},
		{name: "login: trailing data", send: post("/v1/auth/login", "", `{"username":"admin","password":"y"}{"username":"x"}`), status: st400, code: malformed},

		// Impossible times.
		{name: "push: far-future and ancient occurred_at", send: pushWith(
			contact(map[string]string{"occurred_at": jsonString(time.Now().Add(25 * time.Hour).UTC().Format(schema.TimeLayout))}),
			contact(map[string]string{"occurred_at": `"2100-01-01T00:00:00.000Z"`}),
			contact(map[string]string{"occurred_at": `"9999-12-31T23:59:59.999Z"`}),
			contact(map[string]string{"occurred_at": `"2019-12-31T23:59:59.999Z"`}),
			contact(map[string]string{"occurred_at": `"1970-01-01T00:00:00Z"`}),
			contact(map[string]string{"occurred_at": `"0001-01-01T00:00:00Z"`}),
			contact(map[string]string{"occurred_at": `"0000-01-01T00:00:00Z"`}),
			contact(map[string]string{"occurred_at": `"-0001-01-01T00:00:00Z"`}),
			contact(map[string]string{"occurred_at": `"+10000-01-01T00:00:00Z"`}),
			contact(map[string]string{"occurred_at": `"2026-02-30T00:00:00Z"`}),
		), status: 200, check: results("invalid_record/time:occurred_at", "invalid_record/time:occurred_at", "invalid_record/time:occurred_at",
			"invalid_record/time:occurred_at", "invalid_record/time:occurred_at", "invalid_record/required:occurred_at", "invalid_record/time:occurred_at",
			"invalid_record/type:occurred_at", "invalid_record/type:occurred_at", "invalid_record/type:occurred_at")},
		{name: "push: a malformed clock", send: whole(`"clock":"`, `"clock":"zz`), status: st400, code: malformed},
		{name: "push: a zero version", send: raw(func(next int64) string {
			c := d.contact("", "2380")
			bad = append(bad, c.ID)
			return strings.Replace(d.pushJSON(next, []mut{create(c, nil)}), `"version":"`+d.clock.Last().String()+`"`, `"version":"0000000000000000"`, 1)
		}), status: 200, check: results("malformed_request:version")},
		{name: "stats: dates far in the past", send: getAs(b, "/v1/stats?from=0001-01-01&to=0001-12-31", manager.AccessToken)},
		{name: "stats: dates far in the future", send: getAs(b, "/v1/stats?from=9999-01-01&to=9999-12-31", manager.AccessToken)},
		{name: "stats: eleven years", send: getAs(b, "/v1/stats?from=2020-01-01&to=2031-01-01", manager.AccessToken), status: st400, code: malformed},
		{name: "stats: an impossible date", send: getAs(b, "/v1/stats?from=2026-02-30", manager.AccessToken), status: st400, code: malformed},
	}
	runProbes(t, probes)

	// Nothing hostile was stored; the duplicated id kept its first state.
	got := scope(t, b, d)
	for _, id := range bad {
		if _, ok := got[id]; ok {
			t.Errorf("hostile record %s was stored", id)
		}
	}
	if c, ok := got[dup.ID]; !ok {
		t.Error("the first of the duplicated records is missing")
	} else {
		var rec schema.Contact
		json.Unmarshal(c.Fields, &rec)
		if rec.StaffID != dup.StaffID || rec.UnitID != dup.UnitID {
			t.Errorf("the duplicated record changed: %s", c.Fields)
		}
	}

	// The contacts table still works: a contact is recorded, pulled and
	// counted.
	after := d.contact("", "2380")
	d.mustPush(t, b, after)
	if _, ok := scope(t, b, d)[after.ID]; !ok {
		t.Error("a contact after the hostile input was not stored")
	}
	var st struct {
		Rows []struct {
			Group      string           `json:"group"`
			Indicators map[string]int64 `json:"indicators"`
		} `json:"rows"`
	}
	b.call(t, "GET", "/v1/stats?period=year", manager.AccessToken, nil, &st)
	var contacts int64
	for _, r := range st.Rows {
		if r.Group == "total" {
			contacts += r.Indicators["contacts"]
		}
	}
	if contacts != 3 { // the anchor, the duplicated one and the last
		t.Errorf("stats count %d contacts, want 3", contacts)
	}
	if st, e := b.call(t, "GET", "/healthz", "", nil, nil); st != 200 {
		t.Errorf("health after hostile input: %d %v", st, e)
	}
}

// TestDashboardLoginByAddress guesses at the dashboard's login form with a
// new username each time, which the per-username limit does not see: after
// 30 tries in a minute the address is refused, even with the right
// password, while the API's own limit is untouched.
func TestDashboardLoginByAddress(t *testing.T) {
	b, stop := serveOn(t, filepath.Join(t.TempDir(), "brygga.db"), true)
	defer stop()
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	form := func(user, pw string) int {
		resp, err := noRedirect.PostForm(b.url+"/dashboard/login", url.Values{"username": {user}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 30 {
		if st := form(fmt.Sprintf("guess%d", i), "a guessed password"); st != 401 {
			t.Fatalf("guess %d: status %d, want 401", i+1, st)
		}
	}
	user, pw, _ := strings.Cut(b.accounts["manager"], ":")
	if st := form(user, pw); st != 429 {
		t.Errorf("the 31st login of the minute: status %d, want 429", st)
	}
	if tok := b.login(t, "manager"); tok == "" {
		t.Error("the API login was refused")
	}
}

// newPublicKey makes a device's public key.
func newPrivateKey(t *testing.T) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}
