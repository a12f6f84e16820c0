package wire_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/wire"
)

func codeOf(err error) wire.Code {
	var e *wire.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func pushBody(n int, first int64) string {
	var ms []string
	for i := range n {
		ms = append(ms, fmt.Sprintf(`{"seq":%d,"kind":"contacts","id":"0190f000-0000-7000-8000-00000000000%d","version":"018e3a5f0c000001","fields":{"voided":true}}`,
			first+int64(i), i%10))
	}
	return fmt.Sprintf(`{"protocol":2,"schema":%d,"clock":"018e3a5f0c000001","mutations":[%s]}`, schema.Version, strings.Join(ms, ","))
}

func TestDecodePushRequest(t *testing.T) {
	tests := []struct {
		name string
		body string
		code wire.Code
	}{
		{"valid", pushBody(3, 1), ""},
		{"empty batch", pushBody(0, 1), ""},
		{"full batch", pushBody(wire.MaxMutations, 1), ""},
		{"too many", pushBody(wire.MaxMutations+1, 1), wire.CodeBatchTooLarge},
		{"old protocol", strings.Replace(pushBody(1, 1), `"protocol":2`, `"protocol":0`, 1), wire.CodeUnsupportedVersion},
		{"newer schema", strings.Replace(pushBody(1, 1), fmt.Sprintf(`"schema":%d`, schema.Version), `"schema":99`, 1), wire.CodeUnsupportedVersion},
		{"unknown field", strings.Replace(pushBody(1, 1), `"clock"`, `"name":"x","clock"`, 1), wire.CodeMalformed},
		{"trailing data", pushBody(1, 1) + `{}`, wire.CodeMalformed},
		{"not json", `mutations please`, wire.CodeMalformed},
		{"seq zero", pushBody(2, 0), wire.CodeMalformed},
		{"seq gap", strings.Replace(pushBody(2, 1), `"seq":2`, `"seq":3`, 1), wire.CodeMalformed},
		{"bad id", strings.Replace(pushBody(1, 1), `0190f000-0000-7000-8000-000000000000`, `robert`, 1), wire.CodeMalformed},
		{"bad version", strings.Replace(pushBody(1, 1), `"version":"018e3a5f0c000001"`, `"version":"yesterday"`, 1), wire.CodeMalformed},
		{"protocol 1", strings.Replace(pushBody(1, 1), `"protocol":2`, `"protocol":1`, 1), wire.CodeUnsupportedVersion},
		{"no clock", strings.Replace(pushBody(1, 1), `"clock":"018e3a5f0c000001",`, ``, 1), wire.CodeMalformed},
		{"clock null", strings.Replace(pushBody(1, 1), `"clock":"018e3a5f0c000001"`, `"clock":null`, 1), wire.CodeMalformed},
		{"no mutations", fmt.Sprintf(`{"protocol":2,"schema":%d,"clock":"018e3a5f0c000001"}`, schema.Version), wire.CodeMalformed},
		{"mutations null", fmt.Sprintf(`{"protocol":2,"schema":%d,"clock":"018e3a5f0c000001","mutations":null}`, schema.Version), wire.CodeMalformed},
		{"clock last", fmt.Sprintf(`{"protocol":2,"schema":%d,"mutations":[],"clock":"018e3a5f0c000001"}`, schema.Version), ""},
		{"clock null, given again", fmt.Sprintf(`{"protocol":2,"schema":%d,"clock":"018e3a5f0c000001","mutations":[],"clock":null}`, schema.Version), wire.CodeMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := wire.DecodePushRequest(strings.NewReader(tt.body))
			if got := codeOf(err); got != tt.code {
				t.Fatalf("got %v (code %q), want code %q", err, got, tt.code)
			}
			if tt.code == "" && req == nil {
				t.Fatal("no request")
			}
			if err != nil && (errors.As(err, new(*wire.Error)) && err.Error() == "") {
				t.Error("empty message")
			}
			var e *wire.Error
			if name, ok := strings.CutPrefix(tt.name, "no "); ok && errors.As(err, &e) && e.Field != name {
				t.Errorf("field %q, want %q", e.Field, name)
			}
		})
	}
}

func TestMutationCheck(t *testing.T) {
	ok := wire.Mutation{Seq: 1, Kind: schema.KindContact, ID: uuid.Must(uuid.NewV7()), Version: 42, Fields: json.RawMessage(`{"voided":true}`)}
	if e := ok.Check(); e != nil {
		t.Fatalf("valid mutation: %v", e)
	}
	tests := []struct {
		name string
		edit func(m *wire.Mutation)
		code wire.Code
	}{
		{"reference kind", func(m *wire.Mutation) { m.Kind = schema.KindStaff }, wire.CodeUnknownKind},
		{"unknown kind", func(m *wire.Mutation) { m.Kind = "patients" }, wire.CodeUnknownKind},
		{"no id", func(m *wire.Mutation) { m.ID = uuid.Nil }, wire.CodeInvalidRecord},
		{"no version", func(m *wire.Mutation) { m.Version = 0 }, wire.CodeMalformed},
		{"fields array", func(m *wire.Mutation) { m.Fields = json.RawMessage(`[1]`) }, wire.CodeMalformed},
		{"fields missing", func(m *wire.Mutation) { m.Fields = nil }, wire.CodeMalformed},
		{"fields huge", func(m *wire.Mutation) {
			m.Fields = json.RawMessage(`{"x":"` + strings.Repeat("a", wire.MaxFieldsBytes) + `"}`)
		}, wire.CodeInvalidRecord},
	}
	for _, tt := range tests {
		m := ok
		tt.edit(&m)
		if e := m.Check(); e == nil || e.Code != tt.code {
			t.Errorf("%s: got %v, want %s", tt.name, e, tt.code)
		}
	}
}

func TestBody(t *testing.T) {
	body := pushBody(5, 1)
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)
	zw.Write([]byte(body))
	zw.Close()
	r, err := wire.Body(&zbuf, "gzip")
	if err != nil {
		t.Fatal(err)
	}
	req, err := wire.DecodePushRequest(r)
	if err != nil || len(req.Mutations) != 5 {
		t.Fatalf("gzip body: %v", err)
	}

	if _, err := wire.Body(strings.NewReader("plain"), "gzip"); codeOf(err) != wire.CodeMalformed {
		t.Errorf("bad gzip: got %v", err)
	}
	if _, err := wire.Body(strings.NewReader(body), "br"); codeOf(err) != wire.CodeMalformed {
		t.Errorf("unsupported encoding: got %v", err)
	}

	// A gzip bomb: small on the wire, past the limit inflated.
	zbuf.Reset()
	zw = gzip.NewWriter(&zbuf)
	zw.Write([]byte(`{"protocol":2,"schema":2,"mutations":[],"clock":"` + strings.Repeat("0", wire.MaxBodyBytes) + `"}`))
	zw.Close()
	if zbuf.Len() > wire.MaxBodyBytes/100 {
		t.Fatalf("bomb is %d bytes compressed", zbuf.Len())
	}
	r, _ = wire.Body(&zbuf, "gzip")
	if _, err := wire.DecodePushRequest(r); codeOf(err) != wire.CodeBodyTooLarge {
		t.Errorf("oversized body: got %v, want body_too_large", err)
	}
}

func TestDecodePullRequest(t *testing.T) {
	v := fmt.Sprintf(`"protocol":2,"schema":%d`, schema.Version)
	req, err := wire.DecodePullRequest(strings.NewReader(`{` + v + `}`))
	if err != nil || req.Limit != wire.DefaultPullLimit || req.Cursor != "" {
		t.Fatalf("minimal pull: %+v, %v", req, err)
	}
	for body, code := range map[string]wire.Code{
		`{` + v + `,"limit":-1}`:      wire.CodeMalformed,
		`{` + v + `,"limit":5000}`:    wire.CodeMalformed,
		`{"protocol":1,"schema":1}`:   wire.CodeUnsupportedVersion,
		`{` + v + `,"cursor":12}`:     wire.CodeMalformed,
		`{` + v + `,"since":"today"}`: wire.CodeMalformed,
	} {
		if _, err := wire.DecodePullRequest(strings.NewReader(body)); codeOf(err) != code {
			t.Errorf("%s: got %v, want %s", body, err, code)
		}
	}
}

func TestCursor(t *testing.T) {
	c := wire.Cursor{Store: uuid.Must(uuid.NewRandom()), Seq: 123456789}
	s := c.String()
	got, err := wire.ParseCursor(s)
	if err != nil || got != c {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	if got, err := wire.ParseCursor(""); err != nil || got != (wire.Cursor{}) {
		t.Errorf("empty cursor: %v, %v", got, err)
	}
	for _, bad := range []string{"x", "c1.", "c2." + s[3:], s[:len(s)-1], s + "A", strings.ToUpper(s), "c1." + strings.Repeat("_", 32),
		wire.Cursor{Store: uuid.Nil, Seq: 1}.String(), wire.Cursor{Store: c.Store, Seq: -1}.String()} {
		if _, err := wire.ParseCursor(bad); codeOf(err) != wire.CodeCursorInvalid {
			t.Errorf("ParseCursor(%q): got %v, want cursor_invalid", bad, err)
		}
	}
}

func FuzzDecodePushRequest(f *testing.F) {
	f.Add([]byte(pushBody(2, 1)))
	f.Add([]byte(`{"protocol":2,"schema":2,"mutations":null}`))
	f.Add([]byte(`{"protocol":2,"schema":2,"clock":"018e3a5f0c000001","mutations":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := wire.DecodePushRequest(bytes.NewReader(body))
		if err != nil {
			if codeOf(err) == "" {
				t.Fatalf("uncoded error %v", err)
			}
			return
		}
		for i := range req.Mutations {
			req.Mutations[i].Check()
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		back, err := wire.DecodePushRequest(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v\n%s", err, again)
		}
		if len(back.Mutations) != len(req.Mutations) || back.Clock != req.Clock {
			t.Fatalf("round trip changed the request")
		}
	})
}

func FuzzDecodePullRequest(f *testing.F) {
	f.Add([]byte(`{"protocol":2,"schema":2,"cursor":"c1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","limit":10}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := wire.DecodePullRequest(bytes.NewReader(body))
		if err != nil {
			if codeOf(err) == "" {
				t.Fatalf("uncoded error %v", err)
			}
			return
		}
		if req.Limit < 1 || req.Limit > wire.MaxPullLimit {
			t.Fatalf("limit %d passed", req.Limit)
		}
	})
}

func FuzzParseCursor(f *testing.F) {
	f.Add(wire.Cursor{Store: uuid.MustParse("9b2f4c1e-7d3a-4f6b-8c9d-0e1f2a3b4c5d"), Seq: 42}.String())
	f.Add("c1.")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := wire.ParseCursor(s)
		if err != nil {
			if codeOf(err) != wire.CodeCursorInvalid {
				t.Fatalf("error %v is not cursor_invalid", err)
			}
			return
		}
		if s != "" && c.String() != s {
			t.Fatalf("ParseCursor(%q) = %v, which encodes as %q", s, c, c.String())
		}
	})
}

// TestBodySizeHint reads bodies held in memory, as the server holds them,
// whose gzip trailers state their length truly, short of the whole (of
// the last member only), or falsely (a sender chooses it, and the buffer
// is sized by it): the first two read as the request, the false ones are refused as malformed (gzip checks the
// length at the end), and a bomb still fails at the limit.
func TestBodySizeHint(t *testing.T) {
	body := pushBody(300, 1)
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)
	zw.Write([]byte(body))
	zw.Close()
	gz := zbuf.Bytes()
	withSize := func(n uint32) []byte {
		b := bytes.Clone(gz)
		b[len(b)-4], b[len(b)-3], b[len(b)-2], b[len(b)-1] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
		return b
	}
	// Two gzip members: the trailer states the second's length only.
	var two bytes.Buffer
	for _, part := range []string{body[:len(body)-10], body[len(body)-10:]} {
		zw := gzip.NewWriter(&two)
		zw.Write([]byte(part))
		zw.Close()
	}
	for _, tt := range []struct {
		name, encoding string
		data           []byte
		code           wire.Code
	}{
		{"identity", "", []byte(body), ""},
		{"true length", "gzip", gz, ""},
		{"two members", "gzip", two.Bytes(), ""},
		{"short length", "gzip", withSize(10), wire.CodeMalformed},
		{"no length", "gzip", withSize(0), wire.CodeMalformed},
		{"long length", "gzip", withSize(1 << 31), wire.CodeMalformed},
	} {
		r, err := wire.Body(bytes.NewReader(tt.data), tt.encoding)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		req, err := wire.DecodePushRequest(r)
		if codeOf(err) != tt.code || tt.code == "" && err != nil {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.code)
			continue
		}
		if tt.code == "" && (len(req.Mutations) != 300 || req.Mutations[299].Seq != 300 || string(req.Mutations[299].Fields) != `{"voided":true}`) {
			t.Errorf("%s: read %d mutations, not the body's 300", tt.name, len(req.Mutations))
		}
	}

	zbuf.Reset()
	zw = gzip.NewWriter(&zbuf)
	zw.Write([]byte(`{"protocol":2,"schema":2,"mutations":[],"clock":"` + strings.Repeat("0", wire.MaxBodyBytes) + `"}`))
	zw.Close()
	r, _ := wire.Body(bytes.NewReader(zbuf.Bytes()), "gzip")
	if _, err := wire.DecodePushRequest(r); codeOf(err) != wire.CodeBodyTooLarge {
		t.Errorf("oversized body: got %v, want body_too_large", err)
	}
}
