package wire

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// AppendPullResponse appends the JSON encoding of p to dst, byte for byte
// what encoding/json makes of it, without its cost: the changes' fields are
// JSON the server encoded itself and are copied as they are, not parsed
// again. It is the encoding of the largest messages, a first sync's pages.
func AppendPullResponse(dst []byte, p *PullResponse) []byte {
	dst = append(dst, `{"protocol":`...)
	dst = strconv.AppendInt(dst, int64(p.Protocol), 10)
	dst = append(dst, `,"schema":`...)
	dst = strconv.AppendInt(dst, int64(p.Schema), 10)
	dst = append(dst, `,"since":`...)
	dst = appendString(dst, p.Since)
	dst = append(dst, `,"changes":`...)
	if p.Changes == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range p.Changes {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendChange(dst, &p.Changes[i])
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"cursor":`...)
	dst = appendString(dst, p.Cursor)
	dst = append(dst, `,"has_more":`...)
	dst = strconv.AppendBool(dst, p.HasMore)
	dst = append(dst, `,"head":`...)
	dst = strconv.AppendInt(dst, p.Head, 10)
	dst = append(dst, `,"clock":`...)
	dst = appendString(dst, p.Clock.String())
	return append(dst, '}')
}

func appendChange(dst []byte, c *Change) []byte {
	dst = append(dst, `{"kind":`...)
	dst = appendString(dst, string(c.Kind))
	dst = append(dst, `,"id":"`...)
	dst = append(dst, c.ID.String()...)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendInt(dst, c.Seq, 10)
	dst = append(dst, `,"fields":`...)
	if c.Fields == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, c.Fields...)
	}
	dst = append(dst, `,"v":`...)
	dst = appendString(dst, c.V)
	if len(c.CV) > 0 {
		dst = append(dst, `,"cv":{`...)
		names := make([]string, 0, len(c.CV))
		for name := range c.CV {
			names = append(names, name)
		}
		slices.Sort(names)
		for i, name := range names {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, name)
			dst = append(dst, ':')
			dst = appendString(dst, c.CV[name])
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendString appends s as a JSON string, escaped as encoding/json
// escapes it.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			if r == utf8.RuneError {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
