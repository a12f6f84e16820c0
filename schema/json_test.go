package schema

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
)

// referenceJSON is a field's wire encoding as encoding/json makes it: what
// AppendJSON must write, byte for byte.
func referenceJSON(t *testing.T, f Field) []byte {
	t.Helper()
	if f.Optional && f.IsZero() {
		return []byte("null")
	}
	var v any
	switch p := f.ptr.(type) {
	case *uuid.UUID:
		v = p.String()
	case *time.Time:
		v = p.UTC().Format(TimeLayout)
	default:
		v = f.ptr
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var awkwardStrings = []string{"", "a", "2380", "x\"y", `back\slash`, "<&>", "tab\there", "\x00\x1f", "åäö", "\u2028\u2029", "bad\xffutf8"}

// randomize sets every field of fs to a random value, often a zero or an
// awkward one.
func randomize(rng *rand.Rand, fs []Field) {
	for _, f := range fs {
		zero := rng.IntN(4) == 0
		switch p := f.ptr.(type) {
		case *uuid.UUID:
			*p = uuid.Nil
			if !zero {
				rng2 := rng.Uint64()
				for i := range p {
					p[i] = byte(rng2 >> (8 * (i % 8)))
				}
			}
		case *string:
			*p = ""
			if !zero {
				if f.Enum != nil && rng.IntN(2) == 0 {
					*p = f.Enum.Options[rng.IntN(len(f.Enum.Options))].Code
				} else {
					*p = awkwardStrings[rng.IntN(len(awkwardStrings))]
				}
			}
		case *ClientCode:
			*p = ""
			if !zero {
				*p = ClientCode(awkwardStrings[rng.IntN(len(awkwardStrings))])
			}
		case *int:
			*p = 0
			if !zero {
				*p = int(rng.Int32()) - rng.IntN(2)*int(rng.Int32())
			}
		case *bool:
			*p = !zero && rng.IntN(2) == 0
		case *time.Time:
			*p = time.Time{}
			if !zero {
				ms := rng.Int64N(1<<43) - 1<<42 // about 1830 to 2109
				if rng.IntN(8) == 0 {
					ms = rng.Int64N(1<<48) - 1<<47 // far past and future years
				}
				*p = time.UnixMilli(ms).UTC()
			}
		case *Supplies:
			*p = nil
			if !zero {
				m := Supplies{}
				for range rng.IntN(4) {
					m[Supply(awkwardStrings[rng.IntN(len(awkwardStrings))])] = rng.IntN(1000)
				}
				*p = m
			}
		}
	}
}

// TestAppendJSON holds AppendJSON to encoding/json, and AppendJSONOfSQL to
// a scan of the SQL value followed by AppendJSON, over random values of
// every field of every kind.
func TestAppendJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, k := range append(append([]Kind{}, FieldKinds...), ReferenceKinds...) {
		rec, _ := New(k)
		fs := rec.Fields()
		desc, _ := FieldsOf(k)
		prev, _ := New(k)
		pfs := prev.Fields()
		for range 2000 {
			randomize(rng, fs)
			for i, f := range fs {
				// What SameValue finds the same, SQL stores the same.
				if f.SameValue(pfs[i]) && f.SQLValue() != pfs[i].SQLValue() {
					t.Fatalf("%s.%s: SameValue, but the SQL values %#v and %#v", k, f.Name, f.SQLValue(), pfs[i].SQLValue())
				}
				if !f.SameValue(f) {
					t.Fatalf("%s.%s: a value is not the same as itself", k, f.Name)
				}
				want := referenceJSON(t, f)
				if got := f.AppendJSON([]byte("x")); !bytes.Equal(got[1:], want) || got[0] != 'x' {
					t.Fatalf("%s.%s: AppendJSON %q, encoding/json %q", k, f.Name, got, want)
				}
				// What a pull page holds is what a row read back holds.
				sqlValue := f.SQLValue()
				back, _ := New(k)
				bf := back.Fields()[i]
				if err := bf.ScanSQL(sqlValue); err != nil {
					t.Fatalf("%s.%s: scan %v: %v", k, f.Name, sqlValue, err)
				}
				got, err := desc[i].AppendJSONOfSQL(nil, sqlValue)
				if err != nil {
					t.Fatalf("%s.%s: AppendJSONOfSQL(%v): %v", k, f.Name, sqlValue, err)
				}
				if want := bf.AppendJSON(nil); !bytes.Equal(got, want) {
					t.Fatalf("%s.%s: AppendJSONOfSQL(%#v) %q, scanned %q", k, f.Name, sqlValue, got, want)
				}
			}
			if rng.IntN(2) == 0 { // the next record keeps some of these values
				prev, _ = New(k)
				pfs = prev.Fields()
				for i := range fs {
					pfs[i].ScanSQL(fs[i].SQLValue())
				}
			}
		}
	}
}

// TestAppendJSONOfSQLOddValues covers what Brygga does not store but a
// column might hold: nil in a required column, ids in other forms, values
// of the wrong type.
func TestAppendJSONOfSQLOddValues(t *testing.T) {
	for _, k := range append(append([]Kind{}, FieldKinds...), ReferenceKinds...) {
		desc, _ := FieldsOf(k)
		for i, f := range desc {
			for _, v := range []any{nil, "", "0190F000-0000-7000-8000-00000000000A", "{0190f000-0000-7000-8000-00000000000a}",
				"00000000-0000-0000-0000-000000000000", "00000000000000000000000000000000", []byte("abc"), int64(0), int64(-1), "{}", "null"} {
				rec, _ := New(k)
				rf := rec.Fields()[i]
				scanErr := rf.ScanSQL(v)
				got, err := f.AppendJSONOfSQL(nil, v)
				if (err != nil) != (scanErr != nil) {
					t.Fatalf("%s.%s of %#v: AppendJSONOfSQL error %v, ScanSQL error %v", k, f.Name, v, err, scanErr)
				}
				if err != nil {
					continue
				}
				if want := rf.AppendJSON(nil); !bytes.Equal(got, want) {
					t.Fatalf("%s.%s of %#v: AppendJSONOfSQL %q, scanned %q", k, f.Name, v, got, want)
				}
			}
		}
	}
}

// FuzzParseWireTime holds the fast time reader to time.Parse: whatever it
// accepts, time.Parse reads as the same instant; every time in the wire
// form, it accepts.
func FuzzParseWireTime(f *testing.F) {
	f.Add("2026-03-01T14:05:00.000Z")
	f.Add("2024-02-29T23:59:59.999Z")
	f.Add("2023-02-29T00:00:00.000Z")
	f.Add("2026-13-01T00:00:00.000Z")
	f.Add("2026-03-01T24:00:00.000Z")
	f.Add("2026-03-01T14:05:60.000Z")
	f.Add("0000-01-01T00:00:00.000Z")
	f.Add("2026-03-01T14:05:00.000+01:00")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseWireTime([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		if ok {
			if err != nil {
				t.Fatalf("%q: read as %v, time.Parse: %v", s, got, err)
			}
			if want = want.UTC().Truncate(time.Millisecond); got != want {
				t.Fatalf("%q: read as %v, time.Parse %v", s, got, want)
			}
			return
		}
		if err == nil && want.UTC().Format(TimeLayout) == s {
			t.Fatalf("%q: refused, a time in the wire form", s)
		}
	})
}

// FuzzAppendTime holds the fast time writer to time.Format.
func FuzzAppendTime(f *testing.F) {
	f.Add(int64(0))
	f.Add(int64(1772373900123))
	f.Add(int64(-62135596800000))
	f.Add(int64(253402300799999))
	f.Add(int64(253402300800000))
	f.Fuzz(func(t *testing.T, ms int64) {
		tm := time.UnixMilli(ms)
		want := `"` + tm.UTC().Format(TimeLayout) + `"`
		if got := appendTime(nil, tm); string(got) != want {
			t.Fatalf("%d: %s, time.Format %s", ms, got, want)
		}
	})
}

// FuzzValidNumber holds the number checker to encoding/json.
func FuzzValidNumber(f *testing.F) {
	for _, s := range []string{"0", "-0", "01", "1.", ".5", "1e5", "1E+5", "-1.5e-3", "1e", "--1", "1.2.3", "+1", "2147483648"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || bytes.ContainsAny(b, " \t\r\n") {
			return
		}
		var n json.Number
		want := (b[0] == '-' || b[0] >= '0' && b[0] <= '9') && json.Unmarshal(b, &n) == nil
		if got := validNumber(b); got != want {
			t.Fatalf("%q: validNumber %v, encoding/json %v", b, got, want)
		}
	})
}
