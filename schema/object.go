package schema

import (
	"bytes"
	"encoding/json"
	"errors"
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
	if p >= len(data) || data[p] != '{' {
		return errObject
	}
	p = skipSpace(data, p+1)
	if p < len(data) && data[p] == '}' {
		if skipSpace(data, p+1) != len(data) {
			return errObject
		}
		return nil
	}
	for {
		if p >= len(data) || data[p] != '"' {
			return errObject
		}
		end, err := scanString(data, p)
		if err != nil {
			return err
		}
		key, err := unquoteBytes(data[p:end])
		if err != nil {
			return err
		}
		p = skipSpace(data, end)
		if p >= len(data) || data[p] != ':' {
			return errObject
		}
		p = skipSpace(data, p+1)
		vend, err := scanValue(data, p)
		if err != nil {
			return err
		}
		if err := fn(key, data[p:vend]); err != nil {
			return err
		}
		p = skipSpace(data, vend)
		if p >= len(data) {
			return errObject
		}
		switch data[p] {
		case ',':
			p = skipSpace(data, p+1)
		case '}':
			if skipSpace(data, p+1) != len(data) {
				return errObject
			}
			return nil
		default:
			return errObject
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

// scanValue returns the end (exclusive) of the JSON value starting at p.
func scanValue(data []byte, p int) (int, error) {
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
				depth++
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
