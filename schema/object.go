package schema

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
	"unicode/utf8"
)

// errObject is returned by EachMember for anything but a JSON object.
var errObject = errors.New("want a JSON object")

// EachMember calls fn with the key and the raw value of each member of the
// JSON object in data, in order. It fails on anything that is not a
// well-formed object.
func EachMember(data []byte, fn func(key string, value []byte) error) error {
	return EachMemberBytes(data, func(key, value []byte) error { return fn(string(key), value) })
}

// EachMemberBytes is EachMember with the key as bytes, valid only during
// the call, which costs no allocation for a key without escapes. It is the
// fast path of decoding a record's fields, which the sync engine does for
// every pushed mutation and every pulled change.
func EachMemberBytes(data []byte, fn func(key, value []byte) error) error {
	p := skipSpace(data, 0)
	end, err := members(data, p, -1, fn)
	if err != nil {
		return err
	}
	if skipSpace(data, end) != len(data) {
		return errObject
	}
	return nil
}

// ObjectEnd returns the end (exclusive) of the JSON object that starts at
// data[p], if EachMemberBytes accepts data[p:end] and no value in it nests
// deeper than maxDepth (the object itself is depth 1); otherwise an error.
// It is EachMemberBytes for a reader that only checks an object within a
// larger message and looks for its end, in one pass.
func ObjectEnd(data []byte, p, maxDepth int) (int, error) {
	if maxDepth < 1 {
		return 0, errObject
	}
	return members(data, p, maxDepth-1, nil)
}

// members reads the object that starts at data[p], calling fn, if it is
// not nil, with each member, and returns the end of the object. A value
// may nest at most maxDepth deep; -1 is no limit.
func members(data []byte, p, maxDepth int, fn func(key, value []byte) error) (int, error) {
	if p >= len(data) || data[p] != '{' {
		return 0, errObject
	}
	p = skipSpace(data, p+1)
	if p < len(data) && data[p] == '}' {
		return p + 1, nil
	}
	for {
		if p >= len(data) || data[p] != '"' {
			return 0, errObject
		}
		// Most keys are plain ASCII: read in place, nothing to check.
		end := p + 1
		for end < len(data) && plainASCII[data[end]] {
			end++
		}
		var key []byte
		if end < len(data) && data[end] == '"' {
			end++
			key = data[p+1 : end-1]
		} else {
			var err error
			if end, err = scanString(data, p); err != nil {
				return 0, err
			}
			if key, err = unquoteBytes(data[p:end]); err != nil {
				return 0, err
			}
		}
		p = skipSpace(data, end)
		if p >= len(data) || data[p] != ':' {
			return 0, errObject
		}
		p = skipSpace(data, p+1)
		vend, err := scanValue(data, p, maxDepth)
		if err != nil {
			return 0, err
		}
		if fn != nil {
			if err := fn(key, data[p:vend]); err != nil {
				return 0, err
			}
		}
		p = skipSpace(data, vend)
		if p >= len(data) {
			return 0, errObject
		}
		switch data[p] {
		case ',':
			p = skipSpace(data, p+1)
		case '}':
			return p + 1, nil
		default:
			return 0, errObject
		}
	}
}

func skipSpace(data []byte, p int) int {
	for p < len(data) {
		switch data[p] {
		case ' ', '\t', '\n', '\r':
			p++
		default:
			return p
		}
	}
	return p
}

// scanString returns the end (exclusive) of the string starting at p,
// checking its escapes.
func scanString(data []byte, p int) (int, error) {
	for i := p + 1; i < len(data); i++ {
		// Eight bytes at a time up to the first that is not plain.
		for i+8 <= len(data) {
			m := notPlain(binary.LittleEndian.Uint64(data[i:]))
			if m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(data) {
			break
		}
		if plainByte[data[i]] {
			continue
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			i++
			if i >= len(data) {
				return 0, errObject
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(data) || !isHex4(data[i+1:i+5]) {
					return 0, errObject
				}
				i += 4
			default:
				return 0, errObject
			}
		case c < 0x20:
			return 0, errObject
		}
	}
	return 0, errObject
}

// notPlain returns a mask whose lowest set bit, if any, is the high bit of
// the first byte of the eight in x (little-endian) that is not a plainByte:
// a control character, the quote or the backslash. Bits above it may be
// set for bytes that are plain.
func notPlain(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(v uint64) uint64 { return (v - ones) &^ v & highs }
	return (x-0x20*ones)&^x&highs | zero(x^'"'*ones) | zero(x^'\\'*ones)
}

// plainASCII tells the bytes a JSON string holds as they are that are
// also valid UTF-8 by themselves: printable ASCII but the quote and the
// backslash.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainByte tells the bytes a JSON string holds as they are: all but the
// quote, the backslash and control characters.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// scanValue returns the end (exclusive) of the JSON value starting at p,
// an array or object of which may nest at most maxDepth deep (-1: no
// limit).
func scanValue(data []byte, p, maxDepth int) (int, error) {
	if p >= len(data) {
		return 0, errObject
	}
	switch c := data[p]; {
	case c == '"':
		return scanString(data, p)
	case c == '{' || c == '[':
		// Nested values are rare (supplies): find the end, then let
		// encoding/json check them.
		depth := 0
		for i := p; i < len(data); i++ {
			switch data[i] {
			case '"':
				end, err := scanString(data, i)
				if err != nil {
					return 0, err
				}
				i = end - 1
			case '{', '[':
				if depth++; maxDepth >= 0 && depth > maxDepth {
					return 0, errObject
				}
			case '}', ']':
				depth--
				if depth == 0 {
					if !json.Valid(data[p : i+1]) {
						return 0, errObject
					}
					return i + 1, nil
				}
			}
		}
		return 0, errObject
	case c == 't':
		return literal(data, p, "true")
	case c == 'f':
		return literal(data, p, "false")
	case c == 'n':
		return literal(data, p, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		i := p
		for i < len(data) && (data[i] == '-' || data[i] == '+' || data[i] == '.' || data[i] == 'e' || data[i] == 'E' || (data[i] >= '0' && data[i] <= '9')) {
			i++
		}
		if !validNumber(data[p:i]) {
			return 0, errObject
		}
		return i, nil
	}
	return 0, errObject
}

func literal(data []byte, p int, lit string) (int, error) {
	if bytes.HasPrefix(data[p:], []byte(lit)) {
		return p + len(lit), nil
	}
	return 0, errObject
}

// unquoteBytes returns the content of the quoted JSON string s: s's own
// bytes if it has no escapes.
func unquoteBytes(s []byte) ([]byte, error) {
	inner := s[1 : len(s)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		if !utf8.Valid(inner) {
			return nil, errObject
		}
		return inner, nil
	}
	out, err := unquote(s)
	return []byte(out), err
}

// unquote returns the content of the quoted JSON string s.
func unquote(s []byte) (string, error) {
	inner := s[1 : len(s)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		if !utf8.Valid(inner) {
			return "", errObject
		}
		return string(inner), nil
	}
	var out string
	if err := json.Unmarshal(s, &out); err != nil {
		return "", errObject
	}
	return out, nil
}
