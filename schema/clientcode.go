package schema

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// ClientCode is the pseudonym of a client: a random code printed on a QR card
// that the person keeps. It carries no information about the person.
//
// The canonical form is nine symbols of Crockford's base-32 alphabet
// (0123456789ABCDEFGHJKMNPQRSTVWXYZ) grouped 4-4-1 with hyphens, for example
// "7K3M-QX2D-V". The first eight symbols hold 40 random bits; the ninth is a
// check symbol drawn from the same alphabet.
//
// # Check symbol
//
// Each symbol value v is read as an element of the finite field GF(32),
// represented as a 5-bit polynomial modulo x^5 + x^2 + 1; addition is XOR.
// Let α be the element x. With the symbols numbered v₁ … v₉ (v₉ the check
// symbol), a code is valid exactly when its syndrome
//
//	S = α⁸·v₁ + α⁷·v₂ + … + α¹·v₈ + α⁰·v₉
//
// is zero, so the check symbol is v₉ = α⁸·v₁ + … + α¹·v₈ (in characteristic
// two, minus is plus). Because x^5 + x^2 + 1 is irreducible and 31 is prime,
// α has multiplicative order 31, so the nine weights α⁸ … α⁰ are distinct and
// nonzero. That guarantees:
//
//   - Any single substitution, v_i → v_i + e with e ≠ 0, changes S by
//     α^(9-i)·e, which is nonzero because a field has no zero divisors. This
//     includes the check symbol itself.
//   - Any transposition of two different symbols v_i ≠ v_j (adjacent or not,
//     including one with the check symbol) changes S by
//     (α^(9-i) + α^(9-j))·(v_i + v_j), a product of two nonzero factors.
//
// Crockford's own mod-37 check would need the extra symbols *~$=U, which are
// awkward on a card, and a plain "value mod 31" check would miss swapping 0
// for Z (0 ≡ 31). The GF(32) check needs no extra symbols and misses neither.
type ClientCode string

// ClientQRPrefix starts the payload of every client card QR code. The
// version tag lets a later card format be told apart from this one.
const ClientQRPrefix = "BRYGGA:C1:"

// ErrInvalidClientCode is matched, with errors.Is, by every error that
// ParseClientCode and ParseClientQR return.
var ErrInvalidClientCode = errors.New("invalid client code")

// ErrClientCodeLength means the input does not hold exactly nine symbols.
// It matches ErrInvalidClientCode.
var ErrClientCodeLength = fmt.Errorf("%w: wrong number of symbols", ErrInvalidClientCode)

// ErrClientCodeSymbol means the input holds a character outside the client
// code alphabet; the returned error names the character and its position.
// It matches ErrInvalidClientCode.
var ErrClientCodeSymbol = fmt.Errorf("%w: character not allowed", ErrInvalidClientCode)

// ErrClientCodeCheck means every character is allowed but the check symbol
// does not match the other eight, so the code was mistyped or misread.
// It matches ErrInvalidClientCode.
var ErrClientCodeCheck = fmt.Errorf("%w: check character does not match: mistyped or misread code", ErrInvalidClientCode)

// ErrClientQRFormat means a scanned payload is not a client card QR code: it
// does not start with ClientQRPrefix. It matches ErrInvalidClientCode.
var ErrClientQRFormat = fmt.Errorf("%w: not a client card QR code", ErrInvalidClientCode)

const (
	clientCodeData     = 8                  // data symbols
	clientCodeSymbols  = clientCodeData + 1 // data symbols and the check symbol
	clientCodeLen      = 11                 // canonical form: XXXX-XXXX-C
	clientCodeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	clientCodeNone     = 0xFF // marks a byte outside the alphabet in the tables below
)

// clientCodeStrict maps the 32 upper-case alphabet bytes to their values and
// every other byte to clientCodeNone.
var clientCodeStrict = func() (t [256]byte) {
	for i := range t {
		t[i] = clientCodeNone
	}
	for v := range len(clientCodeAlphabet) {
		t[clientCodeAlphabet[v]] = byte(v)
	}
	return t
}()

// clientCodeLenient extends clientCodeStrict with Crockford's reading of
// human input: lower case as upper case, I and L as 1, and O as 0.
var clientCodeLenient = func() (t [256]byte) {
	t = clientCodeStrict
	for v := range len(clientCodeAlphabet) {
		if c := clientCodeAlphabet[v]; c >= 'A' && c <= 'Z' {
			t[c-'A'+'a'] = byte(v)
		}
	}
	for _, c := range "IiLl" {
		t[c] = 1
	}
	for _, c := range "Oo" {
		t[c] = 0
	}
	return t
}()

// clientCodeMulX multiplies a by α = x in GF(32) modulo x^5 + x^2 + 1.
func clientCodeMulX(a byte) byte {
	a <<= 1
	if a&0x20 != 0 {
		a ^= 0x25
	}
	return a
}

// clientCodeSyndrome evaluates v₁·α^(n-1) + … + v_n·α⁰ by Horner's rule.
func clientCodeSyndrome(v []byte) byte {
	var s byte
	for _, x := range v {
		s = clientCodeMulX(s) ^ x
	}
	return s
}

// clientCodeFormat renders nine symbol values in canonical form.
func clientCodeFormat(v *[clientCodeSymbols]byte) ClientCode {
	var b [clientCodeLen]byte
	j := 0
	for i, x := range v {
		if i == 4 || i == 8 {
			b[j] = '-'
			j++
		}
		b[j] = clientCodeAlphabet[x]
		j++
	}
	return ClientCode(b[:])
}

// NewClientCode returns a new client code whose 40 data bits are the next
// five bytes of r. Production code passes crypto/rand.Reader.
func NewClientCode(r io.Reader) (ClientCode, error) {
	var buf [5]byte
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return "", fmt.Errorf("new client code: read randomness: %w", err)
	}
	var n uint64
	for _, b := range buf {
		n = n<<8 | uint64(b)
	}
	var v [clientCodeSymbols]byte
	for i := range clientCodeData {
		v[i] = byte(n>>(5*(clientCodeData-1-i))) & 0x1F
	}
	v[clientCodeData] = clientCodeMulX(clientCodeSyndrome(v[:clientCodeData]))
	return clientCodeFormat(&v), nil
}

// clientCodeDecode reads the symbols of s with table. If skip is true,
// hyphens and ASCII white space are ignored. Positions in errors are
// 1-based character positions in s plus offset. The first character that is
// not allowed is reported before a wrong length.
func clientCodeDecode(s string, table *[256]byte, skip bool, offset int) (ClientCode, error) {
	var v [clientCodeSymbols]byte
	n, pos := 0, offset
	for _, r := range s {
		pos++
		if skip && (r == '-' || r == ' ' || r == '\t' || r == '\r' || r == '\n') {
			continue
		}
		x := byte(clientCodeNone)
		if r < 0x80 {
			x = table[r]
		}
		if x == clientCodeNone {
			return "", fmt.Errorf("%w: %q at position %d", ErrClientCodeSymbol, r, pos)
		}
		if n < clientCodeSymbols {
			v[n] = x
		}
		n++
	}
	if n != clientCodeSymbols {
		return "", fmt.Errorf("%w: got %d, want %d", ErrClientCodeLength, n, clientCodeSymbols)
	}
	if clientCodeSyndrome(v[:]) != 0 {
		return "", ErrClientCodeCheck
	}
	return clientCodeFormat(&v), nil
}

// ParseClientCode reads a client code as a person typed or read it aloud and
// returns it in canonical form. It is lenient the way Crockford's base 32 is:
// letters may be in either case, hyphens and white space are ignored, I and L
// are read as 1 and O as 0. It is strict about the rest: exactly nine
// symbols must remain, all from the alphabet (U is not), and the check symbol
// must match. Errors wrap ErrClientCodeSymbol, ErrClientCodeLength or
// ErrClientCodeCheck, and all of them match ErrInvalidClientCode.
func ParseClientCode(s string) (ClientCode, error) {
	return clientCodeDecode(s, &clientCodeLenient, true, 0)
}

// ParseClientQR reads the payload of a client card QR code. Being machine
// written, the payload must be exactly ClientQRPrefix followed by nine
// upper-case symbols with no separators and a matching check symbol; none of
// ParseClientCode's leniency applies. A payload without the prefix gives an
// error wrapping ErrClientQRFormat; otherwise errors are those of
// ParseClientCode. All match ErrInvalidClientCode.
func ParseClientQR(payload string) (ClientCode, error) {
	body, ok := strings.CutPrefix(payload, ClientQRPrefix)
	if !ok {
		return "", fmt.Errorf("%w: payload does not start with %q", ErrClientQRFormat, ClientQRPrefix)
	}
	return clientCodeDecode(body, &clientCodeStrict, false, len(ClientQRPrefix))
}

// String returns c as stored, which for a valid code is the canonical form.
func (c ClientCode) String() string { return string(c) }

// Valid reports whether c is a client code in canonical form (XXXX-XXXX-C,
// upper case) with a matching check symbol. The zero value is not valid.
func (c ClientCode) Valid() bool {
	if len(c) != clientCodeLen || c[4] != '-' || c[9] != '-' {
		return false
	}
	var s byte
	for i := range clientCodeLen {
		if i == 4 || i == 9 {
			continue
		}
		x := clientCodeStrict[c[i]]
		if x == clientCodeNone {
			return false
		}
		s = clientCodeMulX(s) ^ x
	}
	return s == 0
}

// QRPayload returns the text to encode in the QR code on the client's card:
// ClientQRPrefix followed by the nine symbols without hyphens, for example
// "BRYGGA:C1:7K3MQX2DV". Every character is in the QR alphanumeric set, so
// the code stays in the compact alphanumeric mode. QRPayload returns the
// empty string if c is not valid, so a bad code is never printed.
func (c ClientCode) QRPayload() string {
	if !c.Valid() {
		return ""
	}
	s := string(c)
	return ClientQRPrefix + s[0:4] + s[5:9] + s[10:]
}
