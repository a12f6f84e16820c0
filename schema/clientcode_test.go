package schema_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/brygga/brygga/schema"
)

// clientCodeAlphabet is Crockford's base-32 alphabet, as printed on cards.
const clientCodeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// clientCodeRand returns a deterministic source of random bytes.
func clientCodeRand(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// clientCodeSymbols returns the nine symbols of a canonical client code.
func clientCodeSymbols(c schema.ClientCode) []byte {
	return []byte(strings.ReplaceAll(c.String(), "-", ""))
}

// isCanonicalClientCode reports whether s has the form XXXX-XXXX-C with
// every X and C in the alphabet.
func isCanonicalClientCode(s string) bool {
	if len(s) != 11 {
		return false
	}
	for i := range len(s) {
		if i == 4 || i == 9 {
			if s[i] != '-' {
				return false
			}
		} else if !strings.ContainsRune(clientCodeAlphabet, rune(s[i])) {
			return false
		}
	}
	return true
}

func TestParseClientCode(t *testing.T) {
	tests := []struct {
		in   string
		want schema.ClientCode
		err  error
	}{
		{in: "7K3M-QX2D-V", want: "7K3M-QX2D-V"},
		{in: "7k3m-qx2d-v", want: "7K3M-QX2D-V"},
		{in: "7K3MQX2DV", want: "7K3M-QX2D-V"},
		{in: "7K3M QX2D V", want: "7K3M-QX2D-V"},
		{in: "  7k3m--qx2d -v\n", want: "7K3M-QX2D-V"},
		{in: "7-K-3-M-Q-X-2-D-V", want: "7K3M-QX2D-V"},
		{in: "10AB-1C0D-4", want: "10AB-1C0D-4"},
		{in: "IOAB-LCOD-4", want: "10AB-1C0D-4"},
		{in: "loab-icod-4", want: "10AB-1C0D-4"},
		{in: "0L1O-oiIl-Y", err: schema.ErrClientCodeCheck},
		{in: "0L1O-0000-Y", want: "0110-0000-Y"},
		{in: "0000-0000-0", want: "0000-0000-0"},
		{in: "zzzz-zzzz-3", want: "ZZZZ-ZZZZ-3"},

		{in: "", err: schema.ErrClientCodeLength},
		{in: "- -", err: schema.ErrClientCodeLength},
		{in: "7K3M-QX2D", err: schema.ErrClientCodeLength},
		{in: "7K3M-QX2D-VV", err: schema.ErrClientCodeLength},
		{in: "7K3M-QX2D-V0000", err: schema.ErrClientCodeLength},
		{in: "7K3M-QX2D-U", err: schema.ErrClientCodeSymbol},
		{in: "7K3M-QX2D-u", err: schema.ErrClientCodeSymbol},
		{in: "7K3M-QX2D-*", err: schema.ErrClientCodeSymbol},
		{in: "7K3M-QX2D-~", err: schema.ErrClientCodeSymbol},
		{in: "7K3M_QX2D_V", err: schema.ErrClientCodeSymbol},
		{in: "7K3M.QX2D.V", err: schema.ErrClientCodeSymbol},
		{in: "7K3M-QX2D-V!", err: schema.ErrClientCodeSymbol},
		{in: "ÅK3M-QX2D-V", err: schema.ErrClientCodeSymbol},
		{in: "7K3M-QX2D-V\x00", err: schema.ErrClientCodeSymbol},
		{in: "7K3M-QX2D-\xff", err: schema.ErrClientCodeSymbol},
		{in: "BRYGGA:C1:7K3MQX2DV", err: schema.ErrClientCodeSymbol},
		{in: "7K3M-QX2D-W", err: schema.ErrClientCodeCheck},
		{in: "K73M-QX2D-V", err: schema.ErrClientCodeCheck},
		{in: "ABCD-EFGH-J", err: schema.ErrClientCodeCheck},
	}
	for _, tt := range tests {
		got, err := schema.ParseClientCode(tt.in)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("ParseClientCode(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if !errors.Is(err, schema.ErrInvalidClientCode) {
				t.Errorf("ParseClientCode(%q) error %v does not match ErrInvalidClientCode", tt.in, err)
			}
			if got != "" {
				t.Errorf("ParseClientCode(%q) = %q with an error, want empty", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseClientCode(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if !got.Valid() {
			t.Errorf("ParseClientCode(%q) = %q, which is not Valid", tt.in, got)
		}
	}
}

func TestParseClientCodeErrorsAreDistinct(t *testing.T) {
	sentinels := []error{schema.ErrClientCodeLength, schema.ErrClientCodeSymbol, schema.ErrClientCodeCheck, schema.ErrClientQRFormat}
	inputs := []string{"7K3M", "7K3M-QX2D-U", "7K3M-QX2D-W"}
	for i, in := range inputs {
		_, err := schema.ParseClientCode(in)
		for j, s := range sentinels {
			if errors.Is(err, s) != (i == j) {
				t.Errorf("ParseClientCode(%q) error %v: errors.Is(%v) = %v", in, err, s, i != j)
			}
		}
	}
	for _, s := range sentinels {
		if !errors.Is(s, schema.ErrInvalidClientCode) {
			t.Errorf("%v does not match ErrInvalidClientCode", s)
		}
	}
}

func TestParseClientCodeSymbolErrorNamesCharacter(t *testing.T) {
	tests := []struct{ in, want string }{
		{"7K3M-QX2D-U", "'U' at position 11"},
		{"7k3m qx2d u", "'u' at position 11"},
		{"7K3M-QX!D-V", "'!' at position 8"},
		{"ÅK3M-QX2D-V", "'Å' at position 1"},
		{"7ÅK3M", "'Å' at position 2"},
	}
	for _, tt := range tests {
		_, err := schema.ParseClientCode(tt.in)
		if !errors.Is(err, schema.ErrClientCodeSymbol) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseClientCode(%q) error = %v, want ErrClientCodeSymbol naming %s", tt.in, err, tt.want)
		}
	}
}

func TestParseClientCodeCheckMessage(t *testing.T) {
	_, err := schema.ParseClientCode("7K3M-QX2D-W")
	if err == nil || !strings.Contains(err.Error(), "check character does not match: mistyped or misread code") {
		t.Errorf("error = %v, want the check character message", err)
	}
}

func TestNewClientCodeKnownValues(t *testing.T) {
	tests := []struct {
		in   []byte
		want schema.ClientCode
	}{
		{[]byte{0, 0, 0, 0, 0}, "0000-0000-0"},
		{[]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, "ZZZZ-ZZZZ-3"},
		{[]byte{0x08, 0x42, 0x10, 0x00, 0x00, 0xAA}, "1111-0000-P"},
	}
	for _, tt := range tests {
		got, err := schema.NewClientCode(bytes.NewReader(tt.in))
		if err != nil || got != tt.want {
			t.Errorf("NewClientCode(% x) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestNewClientCodeShortRead(t *testing.T) {
	for _, in := range [][]byte{nil, {1, 2, 3, 4}} {
		c, err := schema.NewClientCode(bytes.NewReader(in))
		if err == nil || c != "" {
			t.Errorf("NewClientCode(% x) = %q, %v; want an error", in, c, err)
		}
		if errors.Is(err, schema.ErrInvalidClientCode) {
			t.Errorf("NewClientCode(% x) error %v matches ErrInvalidClientCode, want a read error", in, err)
		}
	}
}

func TestNewClientCodeDeterministic(t *testing.T) {
	a, b := clientCodeRand(7), clientCodeRand(7)
	for range 100 {
		ca, err := schema.NewClientCode(a)
		if err != nil {
			t.Fatal(err)
		}
		cb, err := schema.NewClientCode(b)
		if err != nil {
			t.Fatal(err)
		}
		if ca != cb {
			t.Fatalf("same seed gave %q and %q", ca, cb)
		}
	}
}

func TestNewClientCodeRoundTrip(t *testing.T) {
	r := clientCodeRand(1)
	seen := make(map[schema.ClientCode]bool, 10000)
	for range 10000 {
		c, err := schema.NewClientCode(r)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Valid() || !isCanonicalClientCode(c.String()) {
			t.Fatalf("NewClientCode gave %q, which is not valid and canonical", c)
		}
		if seen[c] {
			t.Fatalf("NewClientCode gave %q twice", c)
		}
		seen[c] = true
		for _, in := range []string{c.String(), strings.ToLower(c.String()), string(clientCodeSymbols(c))} {
			if got, err := schema.ParseClientCode(in); err != nil || got != c {
				t.Fatalf("ParseClientCode(%q) = %q, %v; want %q", in, got, err, c)
			}
		}
		if got, err := schema.ParseClientQR(c.QRPayload()); err != nil || got != c {
			t.Fatalf("ParseClientQR(%q) = %q, %v; want %q", c.QRPayload(), got, err, c)
		}
	}
}

// TestClientCodeDetectsTypingErrors checks, for 2000 random codes, that every
// single-symbol substitution and every transposition of two different
// symbols (adjacent or not, check symbol included) is rejected.
func TestClientCodeDetectsTypingErrors(t *testing.T) {
	r := clientCodeRand(2)
	var substitutions, adjacent, other int
	for range 2000 {
		c, err := schema.NewClientCode(r)
		if err != nil {
			t.Fatal(err)
		}
		sym := clientCodeSymbols(c)
		for i := range sym {
			for _, s := range []byte(clientCodeAlphabet) {
				if s == sym[i] {
					continue
				}
				m := bytes.Clone(sym)
				m[i] = s
				if _, err := schema.ParseClientCode(string(m)); !errors.Is(err, schema.ErrClientCodeCheck) {
					t.Fatalf("substitution %s -> %s: error = %v, want ErrClientCodeCheck", sym, m, err)
				}
				substitutions++
			}
		}
		for i := range sym {
			for j := i + 1; j < len(sym); j++ {
				if sym[i] == sym[j] {
					continue
				}
				m := bytes.Clone(sym)
				m[i], m[j] = m[j], m[i]
				if _, err := schema.ParseClientCode(string(m)); !errors.Is(err, schema.ErrClientCodeCheck) {
					t.Fatalf("transposition %s -> %s: error = %v, want ErrClientCodeCheck", sym, m, err)
				}
				if j == i+1 {
					adjacent++
				} else {
					other++
				}
			}
		}
	}
	t.Logf("rejected %d substitutions, %d adjacent and %d other transpositions", substitutions, adjacent, other)
	if substitutions != 2000*9*31 {
		t.Errorf("tried %d substitutions, want %d", substitutions, 2000*9*31)
	}
}

func TestClientCodeValid(t *testing.T) {
	tests := []struct {
		c    schema.ClientCode
		want bool
	}{
		{"7K3M-QX2D-V", true},
		{"0000-0000-0", true},
		{"ZZZZ-ZZZZ-3", true},
		{"", false},
		{"7k3m-qx2d-v", false},
		{"7K3MQX2DV", false},
		{"7K3M-QX2DV-", false},
		{"7K3M QX2D V", false},
		{"7K3M-QX2D-W", false},
		{"7K3M-QX2D-U", false},
		{"IK3M-QX2D-V", false},
		{"7K3M-QX2D-V ", false},
		{"ABCD-EFGH-J", false},
	}
	for _, tt := range tests {
		if got := tt.c.Valid(); got != tt.want {
			t.Errorf("ClientCode(%q).Valid() = %v, want %v", tt.c, got, tt.want)
		}
		if got := tt.c.String(); got != string(tt.c) {
			t.Errorf("ClientCode(%q).String() = %q", tt.c, got)
		}
	}
}

func TestClientQRPayload(t *testing.T) {
	c := schema.ClientCode("7K3M-QX2D-V")
	if got, want := c.QRPayload(), "BRYGGA:C1:7K3MQX2DV"; got != want {
		t.Errorf("QRPayload() = %q, want %q", got, want)
	}
	const qrAlphanumeric = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
	r := clientCodeRand(3)
	for range 1000 {
		c, err := schema.NewClientCode(r)
		if err != nil {
			t.Fatal(err)
		}
		p := c.QRPayload()
		if !strings.HasPrefix(p, schema.ClientQRPrefix) || len(p) != len(schema.ClientQRPrefix)+9 {
			t.Fatalf("QRPayload() = %q", p)
		}
		for _, ch := range p {
			if !strings.ContainsRune(qrAlphanumeric, ch) {
				t.Fatalf("QRPayload() = %q holds %q, outside the QR alphanumeric set", p, ch)
			}
		}
	}
	for _, bad := range []schema.ClientCode{"", "7k3m-qx2d-v", "7K3M-QX2D-W", "7K3MQX2DV"} {
		if p := bad.QRPayload(); p != "" {
			t.Errorf("ClientCode(%q).QRPayload() = %q, want empty", bad, p)
		}
	}
}

func TestParseClientQR(t *testing.T) {
	tests := []struct {
		in   string
		want schema.ClientCode
		err  error
	}{
		{in: "BRYGGA:C1:7K3MQX2DV", want: "7K3M-QX2D-V"},
		{in: "BRYGGA:C1:10AB1C0D4", want: "10AB-1C0D-4"},

		{in: "", err: schema.ErrClientQRFormat},
		{in: "7K3MQX2DV", err: schema.ErrClientQRFormat},
		{in: "7K3M-QX2D-V", err: schema.ErrClientQRFormat},
		{in: "brygga:c1:7K3MQX2DV", err: schema.ErrClientQRFormat},
		{in: "BRYGGA:C2:7K3MQX2DV", err: schema.ErrClientQRFormat},
		{in: "BRYGGA:7K3MQX2DV", err: schema.ErrClientQRFormat},
		{in: " BRYGGA:C1:7K3MQX2DV", err: schema.ErrClientQRFormat},
		{in: "BRYGGA:C1:", err: schema.ErrClientCodeLength},
		{in: "BRYGGA:C1:7K3MQX2D", err: schema.ErrClientCodeLength},
		{in: "BRYGGA:C1:7K3MQX2DVV", err: schema.ErrClientCodeLength},
		{in: "BRYGGA:C1:7k3mqx2dv", err: schema.ErrClientCodeSymbol},
		{in: "BRYGGA:C1:7K3M-QX2D-V", err: schema.ErrClientCodeSymbol},
		{in: "BRYGGA:C1:7K3M QX2D V", err: schema.ErrClientCodeSymbol},
		{in: "BRYGGA:C1:7K3MQX2DV ", err: schema.ErrClientCodeSymbol},
		{in: "BRYGGA:C1:7K3MQX2DV\n", err: schema.ErrClientCodeSymbol},
		{in: "BRYGGA:C1:IOAB1C0D4", err: schema.ErrClientCodeSymbol},
		{in: "BRYGGA:C1:10ABLC0D4", err: schema.ErrClientCodeSymbol},
		{in: "BRYGGA:C1:7K3MQX2DU", err: schema.ErrClientCodeSymbol},
		{in: "BRYGGA:C1:7K3MQX2DW", err: schema.ErrClientCodeCheck},
		{in: "BRYGGA:C1:K73MQX2DV", err: schema.ErrClientCodeCheck},
	}
	for _, tt := range tests {
		got, err := schema.ParseClientQR(tt.in)
		if tt.err != nil {
			if !errors.Is(err, tt.err) || !errors.Is(err, schema.ErrInvalidClientCode) {
				t.Errorf("ParseClientQR(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if got != "" {
				t.Errorf("ParseClientQR(%q) = %q with an error, want empty", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseClientQR(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseClientCode(f *testing.F) {
	for _, s := range []string{"7K3M-QX2D-V", "7k3m qx2d v", "IOAB-LCOD-4", "7K3M-QX2D-U", "7K3M-QX2D-W", "", "ÅK3M-QX2D-V"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := schema.ParseClientCode(s)
		if err != nil {
			if !errors.Is(err, schema.ErrInvalidClientCode) {
				t.Fatalf("ParseClientCode(%q) error %v does not match ErrInvalidClientCode", s, err)
			}
			if c != "" {
				t.Fatalf("ParseClientCode(%q) = %q with an error", s, c)
			}
			return
		}
		if !c.Valid() || !isCanonicalClientCode(c.String()) {
			t.Fatalf("ParseClientCode(%q) = %q, not valid and canonical", s, c)
		}
		if again, err := schema.ParseClientCode(c.String()); err != nil || again != c {
			t.Fatalf("ParseClientCode(%q) = %q, %v; want %q", c.String(), again, err, c)
		}
		if qr, err := schema.ParseClientQR(c.QRPayload()); err != nil || qr != c {
			t.Fatalf("ParseClientQR(%q) = %q, %v; want %q", c.QRPayload(), qr, err, c)
		}
	})
}

func FuzzParseClientQR(f *testing.F) {
	for _, s := range []string{"BRYGGA:C1:7K3MQX2DV", "BRYGGA:C1:7k3mqx2dv", "BRYGGA:C1:7K3M-QX2D-V", "brygga:c1:7K3MQX2DV", "BRYGGA:C1:", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := schema.ParseClientQR(s)
		if err != nil {
			if !errors.Is(err, schema.ErrInvalidClientCode) {
				t.Fatalf("ParseClientQR(%q) error %v does not match ErrInvalidClientCode", s, err)
			}
			if c != "" {
				t.Fatalf("ParseClientQR(%q) = %q with an error", s, c)
			}
			return
		}
		if p := c.QRPayload(); p != s {
			t.Fatalf("ParseClientQR(%q) = %q, whose QRPayload is %q", s, c, p)
		}
		if again, err := schema.ParseClientCode(strings.TrimPrefix(s, schema.ClientQRPrefix)); err != nil || again != c {
			t.Fatalf("ParseClientCode of the QR body = %q, %v; want %q", again, err, c)
		}
	})
}

func BenchmarkParseClientCode(b *testing.B) {
	for b.Loop() {
		if _, err := schema.ParseClientCode("7k3m-qx2d-v"); err != nil {
			b.Fatal(err)
		}
	}
}
