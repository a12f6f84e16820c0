package wire

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
)

// AppendPullResponse appends the JSON encoding of p to dst, byte for byte
// what encoding/json makes of it, without its cost: the changes' fields are
// JSON the server encoded itself and are copied as they are, not parsed
// again. It is the encoding of the largest messages, a first sync's pages.
func AppendPullResponse(dst []byte, p *PullResponse) []byte {
	dst = slices.Grow(dst, encodedLen(p))
	dst = append(dst, `{"protocol":`...)
	dst = strconv.AppendInt(dst, int64(p.Protocol), 10)
	dst = append(dst, `,"schema":`...)
	dst = strconv.AppendInt(dst, int64(p.Schema), 10)
	dst = append(dst, `,"since":`...)
	dst = schema.AppendJSONString(dst, p.Since)
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
	dst = schema.AppendJSONString(dst, p.Cursor)
	dst = append(dst, `,"has_more":`...)
	dst = strconv.AppendBool(dst, p.HasMore)
	dst = append(dst, `,"head":`...)
	dst = strconv.AppendInt(dst, p.Head, 10)
	dst = append(dst, `,"clock":`...)
	dst = schema.AppendJSONString(dst, p.Clock.String())
	return append(dst, '}')
}

// encodedLen is about the length of p's encoding, for strings without
// escapes: what AppendPullResponse makes room for at once.
func encodedLen(p *PullResponse) int {
	n := 160 + len(p.Since) + len(p.Cursor)
	for i := range p.Changes {
		c := &p.Changes[i]
		n += 100 + len(c.Kind) + len(c.Fields) + len(c.V)
		for name, v := range c.CV {
			n += 6 + len(name) + len(v)
		}
	}
	return n
}

func appendChange(dst []byte, c *Change) []byte {
	dst = append(dst, `{"kind":`...)
	dst = schema.AppendJSONString(dst, string(c.Kind))
	dst = append(dst, `,"id":"`...)
	dst = schema.AppendUUID(dst, c.ID)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendInt(dst, c.Seq, 10)
	dst = append(dst, `,"fields":`...)
	if c.Fields == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, c.Fields...)
	}
	dst = append(dst, `,"v":`...)
	dst = schema.AppendJSONString(dst, c.V)
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
			dst = schema.AppendJSONString(dst, name)
			dst = append(dst, ':')
			dst = schema.AppendJSONString(dst, c.CV[name])
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// AppendPushRequestStart appends what AppendPushRequest writes of a
// request with versions v and clock before its mutations' array: the
// request up to `"mutations":`.
func AppendPushRequestStart(dst []byte, v Versions, clock hlc.Timestamp) []byte {
	dst = append(dst, `{"protocol":`...)
	dst = strconv.AppendInt(dst, int64(v.Protocol), 10)
	dst = append(dst, `,"schema":`...)
	dst = strconv.AppendInt(dst, int64(v.Schema), 10)
	dst = append(dst, `,"clock":"`...)
	dst, _ = clock.AppendText(dst)
	return append(dst, `","mutations":`...)
}

// AppendPushRequest appends the JSON encoding of p to dst in one pass: the
// form ParsePushRequest reads fastest. The mutations' fields are copied as
// they are, not compacted again, so that for fields in encoding/json's
// compact form (as a device stores them) the result is byte for byte what
// encoding/json makes of p; any other valid JSON fields give a request
// that reads the same. Fields must be valid JSON (or nil, written null).
func AppendPushRequest(dst []byte, p *PushRequest) []byte {
	n := 96
	for i := range p.Mutations {
		n += 120 + len(p.Mutations[i].Kind) + len(p.Mutations[i].Fields)
	}
	dst = AppendPushRequestStart(slices.Grow(dst, n), p.Versions, p.Clock)
	if p.Mutations == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range p.Mutations {
			if i > 0 {
				dst = append(dst, ',')
			}
			m := &p.Mutations[i]
			dst = append(dst, `{"seq":`...)
			dst = strconv.AppendInt(dst, m.Seq, 10)
			dst = append(dst, `,"kind":`...)
			dst = schema.AppendJSONString(dst, string(m.Kind))
			dst = append(dst, `,"id":"`...)
			dst = schema.AppendUUID(dst, m.ID)
			dst = append(dst, `","version":"`...)
			dst, _ = m.Version.AppendText(dst)
			dst = append(dst, `","fields":`...)
			if m.Fields == nil {
				dst = append(dst, "null"...)
			} else {
				dst = append(dst, m.Fields...)
			}
			if m.Base != 0 {
				dst = append(dst, `,"base":`...)
				dst = strconv.AppendInt(dst, m.Base, 10)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// AppendPushResponse appends the JSON encoding of p to dst, byte for byte
// what encoding/json makes of it. A response whose results are all applied
// or duplicates, the answer to most pushes, is written in one pass; one
// with an error or a record in a result goes through encoding/json.
func AppendPushResponse(dst []byte, p *PushResponse) ([]byte, error) {
	for i := range p.Results {
		if p.Results[i].Error != nil || p.Results[i].Current != nil {
			b, err := json.Marshal(p)
			return append(dst, b...), err
		}
	}
	dst = slices.Grow(dst, 96+64*len(p.Results))
	dst = append(dst, `{"protocol":`...)
	dst = strconv.AppendInt(dst, int64(p.Protocol), 10)
	dst = append(dst, `,"schema":`...)
	dst = strconv.AppendInt(dst, int64(p.Schema), 10)
	dst = append(dst, `,"last_seq":`...)
	dst = strconv.AppendInt(dst, p.LastSeq, 10)
	dst = append(dst, `,"clock":"`...)
	dst, _ = p.Clock.AppendText(dst)
	dst = append(dst, `","results":`...)
	if p.Results == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range p.Results {
			if i > 0 {
				dst = append(dst, ',')
			}
			r := &p.Results[i]
			dst = append(dst, `{"seq":`...)
			dst = strconv.AppendInt(dst, r.Seq, 10)
			dst = append(dst, `,"status":`...)
			dst = schema.AppendJSONString(dst, string(r.Status))
			if r.Version != 0 {
				dst = append(dst, `,"version":"`...)
				dst, _ = r.Version.AppendText(dst)
				dst = append(dst, '"')
			}
			if r.Change != 0 {
				dst = append(dst, `,"change":`...)
				dst = strconv.AppendInt(dst, r.Change, 10)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), nil
}
