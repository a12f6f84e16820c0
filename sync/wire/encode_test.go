package wire_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

// TestAppendPullResponse checks the pull page encoder against
// encoding/json.
func TestAppendPullResponse(t *testing.T) {
	for i, p := range testPages() {
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := wire.AppendPullResponse(nil, p); !bytes.Equal(got, want) {
			t.Fatalf("page %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// testPages returns pull pages of every shape, strings that need escaping
// among them.
func testPages() []*wire.PullResponse {
	rng := rand.New(rand.NewPCG(1, 2))
	clock := hlc.NewClock(time.Now, 0)
	odd := []string{"", "plain", `quote " and \ backslash`, "tab\tnew\nline\r", "<&>", "åäö ÅÄÖ", "\u2028\u2029", "\x00\x1f", "bad \xff utf-8"}
	pages := []*wire.PullResponse{
		{Versions: wire.Current()},
		{Versions: wire.Current(), Changes: []wire.Change{}, Since: "a", Cursor: "b", HasMore: true, Head: 7, Clock: clock.Now()},
	}
	plain := []string{"", "plain", "åäö ÅÄÖ", "018e3a5f0c000001@0190f000-0000-7000-8000-000000000001"}
	all := odd
	for i := range 50 {
		odd := all
		if i%2 == 0 {
			odd = plain // a page as the server writes them
		}
		p := &wire.PullResponse{Versions: wire.Current(), Since: odd[rng.IntN(len(odd))], Cursor: odd[rng.IntN(len(odd))],
			HasMore: rng.IntN(2) == 0, Head: rng.Int64(), Clock: clock.Now()}
		for range rng.IntN(20) {
			c := wire.Change{Kind: schema.KindContact, ID: uuid.Must(uuid.NewV7()), Seq: rng.Int64N(1 << 40), V: odd[rng.IntN(len(odd))],
				Fields: json.RawMessage(`{"setting":"street","voided":false}`)}
			if rng.IntN(3) == 0 {
				c.Fields = nil
			}
			if n := rng.IntN(4); n > 0 {
				c.CV = map[string]string{}
				for range n {
					c.CV[odd[rng.IntN(len(odd))]] = odd[rng.IntN(len(odd))]
				}
			}
			p.Changes = append(p.Changes, c)
		}
		pages = append(pages, p)
	}
	return pages
}

// aliases reports whether b lies within data.
func aliases(b, data []byte) bool {
	start := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= start && p < start+uintptr(len(data))
}

// equalPages compares two decoded pages field by field.
func equalPages(a, b *wire.PullResponse) bool {
	return reflect.DeepEqual(a, b)
}

// TestParsePullResponse reads what AppendPullResponse writes, and the
// same pages reformatted, and gets what encoding/json gets.
func TestParsePullResponse(t *testing.T) {
	plain := 0
	defer func() {
		if plain < 5 {
			t.Errorf("only %d pages without escapes: the fast path is barely tested", plain)
		}
	}()
	for i, p := range testPages() {
		data := wire.AppendPullResponse(nil, p)
		var indented bytes.Buffer
		json.Indent(&indented, data, "", " ")
		for _, form := range [][]byte{data, indented.Bytes()} {
			var want wire.PullResponse
			if err := json.Unmarshal(form, &want); err != nil {
				t.Fatal(err)
			}
			got, err := wire.ParsePullResponse(form)
			if err != nil {
				t.Fatalf("page %d: %v", i, err)
			}
			if !equalPages(got, &want) {
				t.Fatalf("page %d:\n got %+v\nwant %+v", i, got, &want)
			}
		}
		// The server's own form is read in place, the fields aliasing it,
		// unless a string in it is escaped.
		if bytes.ContainsRune(data, '\\') || !utf8.Valid(data) {
			continue
		}
		plain++
		got, _ := wire.ParsePullResponse(data)
		for _, c := range got.Changes {
			if len(c.Fields) > 0 && string(c.Fields) != "null" && !aliases(c.Fields, data) {
				t.Fatalf("page %d: the fields were copied: the page was not read in place", i)
			}
		}
	}
	for _, bad := range []string{``, `{}`, `{"protocol":2`, `[]`, `{"protocol":99,"schema":1,"since":"","changes":null,"cursor":"","has_more":false,"head":0,"clock":"0000000000000000"}`} {
		if _, err := wire.ParsePullResponse([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// FuzzParsePullResponse checks that the fast reader never accepts what
// encoding/json refuses, and agrees with it on what both accept.
func FuzzParsePullResponse(f *testing.F) {
	for _, p := range testPages()[:8] {
		f.Add(wire.AppendPullResponse(nil, p))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := wire.ParsePullResponse(data)
		agreeWithJSON(t, data, got, err)
	})
}

// FuzzParsePullPage holds the reader that leaves fields to be checked to
// encoding/json, for every page whose fields are valid JSON: what it
// accepts, encoding/json accepts alike; what encoding/json accepts, it
// accepts.
func FuzzParsePullPage(f *testing.F) {
	for _, p := range testPages()[:8] {
		f.Add(wire.AppendPullResponse(nil, p))
	}
	f.Add([]byte(`{"protocol":2,"schema":2,"since":"","changes":[{"kind":"contacts","id":"0190f000-0000-7000-8000-00000000000a","seq":1,"fields":{"a":x},"v":"k"}],"cursor":"c","has_more":false,"head":1,"clock":"0000000000000001"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := wire.ParsePullPage(data)
		if err == nil {
			for _, c := range got.Changes {
				if !json.Valid(c.Fields) {
					return // the caller's to refuse
				}
			}
		}
		agreeWithJSON(t, data, got, err)
	})
}

// agreeWithJSON checks a reader's result for data, got or err, against
// encoding/json's.
func agreeWithJSON(t *testing.T, data []byte, got *wire.PullResponse, err error) {
	t.Helper()
	var want wire.PullResponse
	stdErr := json.Unmarshal(data, &want)
	if stdErr == nil {
		stdErr = want.Versions.Check()
	}
	switch {
	case stdErr != nil && err == nil:
		t.Fatalf("accepted what encoding/json refuses (%v): %q", stdErr, data)
	case stdErr == nil && err != nil:
		t.Fatalf("refused what encoding/json accepts: %v: %q", err, data)
	case err == nil && !equalPages(got, &want):
		t.Fatalf("differs from encoding/json:\n got %+v\nwant %+v", got, &want)
	}
}

// testPushes are push requests as the SDK marshals them, with fields that
// need escapes and fields that do not.
func testPushes() []wire.PushRequest {
	rng := rand.New(rand.NewPCG(3, 4))
	clock := hlc.NewClock(time.Now, 0)
	fields := []string{`{"setting":"street","voided":false}`, `{"area_code":"2380","age_band":"25-29","count":12,"ratio":1.5e3,"x":null,"a":[1,{"b":[]}]}`,
		`{"odd":"quote \" backslash \\ tab \t åäö \u2028 <&>"}`, `{}`}
	reqs := []wire.PushRequest{{Versions: wire.Current(), Mutations: []wire.Mutation{}}, {Versions: wire.Current(), Clock: clock.Now(), Mutations: []wire.Mutation{}}}
	for range 30 {
		req := wire.PushRequest{Versions: wire.Current(), Clock: clock.Now()}
		for i := range rng.IntN(30) + 1 {
			m := wire.Mutation{Seq: int64(i + 1), Kind: schema.FieldKinds[rng.IntN(len(schema.FieldKinds))], ID: uuid.Must(uuid.NewV7()),
				Version: clock.Now(), Fields: json.RawMessage(fields[rng.IntN(len(fields))])}
			if rng.IntN(8) == 0 {
				m.Fields = nil
			}
			if rng.IntN(3) == 0 {
				m.Base = rng.Int64N(1<<40) + 1
			}
			req.Mutations = append(req.Mutations, m)
		}
		reqs = append(reqs, req)
	}
	return reqs
}

// TestParsePushRequest reads pushes as the SDK sends them in one pass, and
// the same pushes reformatted through encoding/json, and gets what
// encoding/json gets either way.
func TestParsePushRequest(t *testing.T) {
	fast := 0
	for i, req := range testPushes() {
		data, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var indented bytes.Buffer
		json.Indent(&indented, data, "", " ")
		for _, form := range [][]byte{data, indented.Bytes()} {
			var want wire.PushRequest
			if err := wire.DecodeJSON(bytes.NewReader(form), &want); err != nil {
				t.Fatal(err)
			}
			got, err := wire.ParsePushRequest(form)
			if err != nil {
				t.Fatalf("push %d: %v", i, err)
			}
			if !reflect.DeepEqual(got, &want) {
				t.Fatalf("push %d differs from encoding/json:\n got %+v\nwant %+v", i, got, &want)
			}
			for _, m := range got.Mutations {
				if m.Fields != nil && string(m.Fields) != "null" && aliases(m.Fields, form) != (&form[0] == &data[0]) {
					t.Fatalf("push %d: fields alias the body %v, want only in the SDK's form", i, aliases(m.Fields, form))
				}
			}
			if &form[0] == &data[0] && len(got.Mutations) > 0 {
				fast++
			}
		}
	}
	if fast < 20 {
		t.Errorf("only %d pushes read in one pass", fast)
	}
}

// FuzzParsePushRequest checks that whatever a push request's reader
// accepts, encoding/json accepts alike, refusing unknown fields and
// trailing data as the reader does.
func FuzzParsePushRequest(f *testing.F) {
	for _, req := range testPushes()[:8] {
		req.Mutations = req.Mutations[:min(len(req.Mutations), 3)] // small seeds fuzz faster
		data, err := json.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := wire.ParsePushRequest(data)
		var want wire.PushRequest
		wantErr := wire.DecodeJSON(bytes.NewReader(data), &want)
		if err != nil {
			if codeOf(err) == "" {
				t.Fatalf("uncoded error %v", err)
			}
			// What encoding/json takes, in this version, within the
			// limits and numbered right, is refused only for a required
			// member that is missing or null.
			if wantErr == nil && want.Versions.Check() == nil && len(want.Mutations) <= wire.MaxMutations && consecutive(want.Mutations) {
				var present struct{ Clock, Mutations *json.RawMessage }
				json.Unmarshal(data, &present)
				if present.Clock != nil && present.Mutations != nil {
					t.Fatalf("refused what encoding/json takes (%v): %q", err, data)
				}
			}
			return
		}
		if wantErr != nil {
			t.Fatalf("accepted what encoding/json refuses (%v): %q", wantErr, data)
		}
		if want.Mutations == nil {
			t.Fatalf("accepted a request without mutations: %q", data)
		}
		if !reflect.DeepEqual(got, &want) {
			t.Fatalf("differs from encoding/json:\n got %+v\nwant %+v", got, &want)
		}
	})
}

// consecutive reports whether mutations are numbered 1 or more, one after
// another, as a push request's must be.
func consecutive(ms []wire.Mutation) bool {
	for i, m := range ms {
		if m.Seq < 1 || i > 0 && m.Seq != ms[i-1].Seq+1 {
			return false
		}
	}
	return true
}

// TestParsePushRequestDeep: nesting deeper than the one-pass reader reads
// is left to encoding/json, which takes some and refuses the deepest.
func TestParsePushRequestDeep(t *testing.T) {
	for _, depth := range []int{1, 99, 101, 5000, 9998, 10000} {
		data := []byte(strings.Replace(pushBody(1, 1), `{"voided":true}`, `{"a":`+strings.Repeat("[", depth)+strings.Repeat("]", depth)+`}`, 1))
		var want wire.PushRequest
		wantErr := wire.DecodeJSON(bytes.NewReader(data), &want)
		got, err := wire.ParsePushRequest(data)
		switch {
		case (err == nil) != (wantErr == nil):
			t.Errorf("depth %d: got error %v, encoding/json %v", depth, err, wantErr)
		case err != nil && codeOf(err) != wire.CodeMalformed:
			t.Errorf("depth %d: got %v, want malformed_request", depth, err)
		case err == nil && !reflect.DeepEqual(got, &want):
			t.Errorf("depth %d: differs from encoding/json", depth)
		}
		if depth == 10000 && err == nil {
			t.Errorf("depth %d: accepted", depth)
		}
	}
}
