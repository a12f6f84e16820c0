package wire

import (
	"encoding/json"
	"strconv"
)

// ParsePushResponse reads the JSON of a push answer into a PushResponse,
// as encoding/json does, without its cost in the answer's common form:
// results of a mutation number, a status, and a version and change number
// if any. An answer in any other form (a rejection's error or current
// state, escapes, members it does not know) is read by encoding/json, so
// that the result is always what encoding/json makes of data. A device
// reads one such answer for every few hundred records it pushes.
func ParsePushResponse(data []byte) (*PushResponse, error) {
	p := pushResponseParser{data: data}
	if resp, ok := p.parse(); ok {
		return resp, nil
	}
	var resp PushResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// pushResponseParser reads the common form of a push answer; any other
// makes it give up (ok false).
type pushResponseParser struct {
	data []byte
	i    int
}

func (p *pushResponseParser) parse() (resp *PushResponse, ok bool) {
	resp = &PushResponse{}
	ok = p.object(func(key []byte) bool {
		switch string(key) {
		case "protocol":
			n, ok := p.int()
			resp.Protocol = int(n)
			return ok && int64(resp.Protocol) == n
		case "schema":
			n, ok := p.int()
			resp.Schema = int(n)
			return ok && int64(resp.Schema) == n
		case "last_seq":
			var ok bool
			resp.LastSeq, ok = p.int()
			return ok
		case "clock":
			s, ok := p.str()
			return ok && resp.Clock.UnmarshalText(s) == nil
		case "results":
			return p.results(resp)
		}
		return false
	})
	p.space()
	return resp, ok && p.i == len(p.data)
}

func (p *pushResponseParser) results(resp *PushResponse) bool {
	p.space()
	if p.literal("null") {
		resp.Results = nil
		return true
	}
	if !p.byte('[') {
		return false
	}
	// An element is about 48 bytes: make room for them all at once.
	resp.Results = make([]Result, 0, (len(p.data)-p.i)/40+1)
	p.space()
	if p.byte(']') {
		return true
	}
	for {
		var r Result
		ok := p.object(func(key []byte) bool {
			switch string(key) {
			case "seq":
				var ok bool
				r.Seq, ok = p.int()
				return ok
			case "status":
				s, ok := p.str()
				switch string(s) {
				case string(Applied):
					r.Status = Applied
				case string(Duplicate):
					r.Status = Duplicate
				case string(Rejected):
					r.Status = Rejected
				default:
					r.Status = Status(s)
				}
				return ok
			case "version":
				s, ok := p.str()
				return ok && r.Version.UnmarshalText(s) == nil
			case "change":
				var ok bool
				r.Change, ok = p.int()
				return ok
			}
			return false
		})
		if !ok {
			return false
		}
		resp.Results = append(resp.Results, r)
		p.space()
		if p.byte(']') {
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}

// object reads an object whose member values member reads; member is
// called with the key, at the value.
func (p *pushResponseParser) object(member func(key []byte) bool) bool {
	p.space()
	if !p.byte('{') {
		return false
	}
	p.space()
	if p.byte('}') {
		return true
	}
	for {
		p.space()
		key, ok := p.str()
		if !ok {
			return false
		}
		p.space()
		if !p.byte(':') {
			return false
		}
		p.space()
		if !member(key) {
			return false
		}
		p.space()
		if p.byte('}') {
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}

// str reads a string without escapes and returns its bytes.
func (p *pushResponseParser) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.data) {
		switch c := p.data[p.i]; {
		case c == '"':
			s := p.data[start:p.i]
			p.i++
			return s, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// int reads an integer written as encoding/json writes one.
func (p *pushResponseParser) int() (int64, bool) {
	start := p.i
	if p.i < len(p.data) && p.data[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.data) && p.data[p.i] >= '0' && p.data[p.i] <= '9' {
		p.i++
	}
	if p.i == digits || p.data[digits] == '0' && p.i-digits > 1 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(p.data[start:p.i]), 10, 64)
	return n, err == nil
}

func (p *pushResponseParser) byte(c byte) bool {
	if p.i < len(p.data) && p.data[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *pushResponseParser) literal(s string) bool {
	if len(p.data)-p.i >= len(s) && string(p.data[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

func (p *pushResponseParser) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}
