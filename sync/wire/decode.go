package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
)

// ParsePullResponse decodes a pull page, for clients, and checks its
// versions. A page in the form the server writes (AppendPullResponse) is
// read in one pass that copies nothing; any other form goes through
// encoding/json. Either way the result is what encoding/json makes of
// data: the fast path gives up, rather than guess, at anything it does not
// expect, such as white space, another order of keys or an escaped string.
// The page's fields alias data.
func ParsePullResponse(data []byte) (*PullResponse, error) {
	return parsePullResponse(data, true)
}

// ParsePullPage is ParsePullResponse for a reader that checks each change's
// fields itself, as replica.DecodePage does when it decodes them: in the
// server's form, fields are delimited, not checked, so that a page is not
// read twice. For a page whose fields are valid JSON the result is that of
// ParsePullResponse.
func ParsePullPage(data []byte) (*PullResponse, error) {
	return parsePullResponse(data, false)
}

func parsePullResponse(data []byte, checkFields bool) (*PullResponse, error) {
	p := &PullResponse{}
	if !(&parser{data: data, checkFields: checkFields}).page(p) {
		*p = PullResponse{}
		if err := json.Unmarshal(data, p); err != nil {
			return nil, errorf(CodeMalformed, "pull response is not a valid message: %v", err)
		}
	}
	return p, p.Versions.Check()
}

// parser reads the exact forms of AppendPullResponse and of a push
// request as encoding/json writes it. Each method reports whether what it
// expected was there.
type parser struct {
	data        []byte
	i           int
	checkFields bool
}

func (q *parser) lit(s string) bool {
	if len(q.data)-q.i < len(s) || string(q.data[q.i:q.i+len(s)]) != s {
		return false
	}
	q.i += len(s)
	return true
}

// str reads a string without escapes, of valid UTF-8.
func (q *parser) str() (string, bool) {
	s, ok := q.strBytes()
	return string(s), ok
}

// strBytes is str without a copy: the string's bytes in data.
func (q *parser) strBytes() ([]byte, bool) {
	if q.i >= len(q.data) || q.data[q.i] != '"' {
		return nil, false
	}
	ascii := true
	for j := q.i + 1; j < len(q.data); j++ {
		switch b := q.data[j]; {
		case b == '"':
			s := q.data[q.i+1 : j]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			q.i = j + 1
			return s, true
		case b == '\\' || b < 0x20:
			return nil, false
		case b >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// int reads an integer as JSON writes it: no leading zeros, no fraction.
func (q *parser) int() (int64, bool) {
	j := q.i
	if j < len(q.data) && q.data[j] == '-' {
		j++
	}
	start := j
	for j < len(q.data) && q.data[j] >= '0' && q.data[j] <= '9' {
		j++
	}
	if j == start || q.data[start] == '0' && j-start > 1 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(q.data[q.i:j]), 10, 64)
	if err != nil {
		return 0, false
	}
	q.i = j
	return n, true
}

// maxDepth is the deepest nesting the parser reads. Fields are flat, and
// encoding/json, which decides past it, refuses nesting past 10000 levels
// in all.
const maxDepth = 100

// object reads a JSON object. If the parser checks fields, it reads it
// as schema.EachMemberBytes does, in the same pass that finds its end;
// else it looks no further inside it than for its end.
func (q *parser) object() ([]byte, bool) {
	if q.i >= len(q.data) || q.data[q.i] != '{' {
		return nil, false
	}
	if q.checkFields {
		end, err := schema.ObjectEnd(q.data, q.i, maxDepth)
		if err != nil {
			return nil, false // perhaps still JSON, which encoding/json decides
		}
		v := q.data[q.i:end:end]
		q.i = end
		return v, true
	}
	depth := 0
	for j := q.i; j < len(q.data); j++ {
		switch q.data[j] {
		case '"':
			for j++; j < len(q.data) && q.data[j] != '"'; j++ {
				if q.data[j] == '\\' {
					j++
				}
			}
		case '{', '[':
			if depth++; depth > maxDepth {
				return nil, false
			}
		case '}', ']':
			depth--
			if depth == 0 {
				v := q.data[q.i : j+1 : j+1]
				q.i = j + 1
				return v, true
			}
		}
	}
	return nil, false
}

func (q *parser) page(p *PullResponse) bool {
	var ok bool
	if !q.versions(&p.Versions) {
		return false
	}
	if !q.lit(`,"since":`) {
		return false
	}
	if p.Since, ok = q.str(); !ok || !q.lit(`,"changes":`) {
		return false
	}
	// Room for as many changes as the page could hold at 256 bytes a
	// change (they take about 500), so that they are seldom moved.
	if !array(q, &p.Changes, min((len(q.data)-q.i)/256+1, MaxPullLimit), (*parser).change) || !q.lit(`,"cursor":`) {
		return false
	}
	if p.Cursor, ok = q.str(); !ok || !q.lit(`,"has_more":`) {
		return false
	}
	switch {
	case q.lit("true"):
		p.HasMore = true
	case q.lit("false"):
	default:
		return false
	}
	if !q.lit(`,"head":`) {
		return false
	}
	if p.Head, ok = q.int(); !ok || !q.lit(`,"clock":`) {
		return false
	}
	clock, ok := q.str()
	if !ok || p.Clock.UnmarshalText([]byte(clock)) != nil {
		return false
	}
	return q.lit("}") && q.i == len(q.data)
}

func (q *parser) change(c *Change) bool {
	var ok bool
	if !q.lit(`{"kind":`) {
		return false
	}
	kind, ok := q.strBytes()
	if !ok || !q.lit(`,"id":`) {
		return false
	}
	c.Kind = schema.KindOf(kind)
	id, ok := q.strBytes()
	if !ok {
		return false
	}
	var err error
	if c.ID, err = uuid.ParseBytes(id); err != nil || !q.lit(`,"seq":`) {
		return false
	}
	if c.Seq, ok = q.int(); !ok || !q.lit(`,"fields":`) {
		return false
	}
	if q.lit("null") {
		c.Fields = json.RawMessage("null") // as encoding/json has it
	} else if c.Fields, ok = q.object(); !ok {
		return false
	}
	if !q.lit(`,"v":`) {
		return false
	}
	if c.V, ok = q.str(); !ok {
		return false
	}
	if q.lit(`,"cv":{`) {
		c.CV = map[string]string{}
		for first := true; !q.lit("}"); first = false {
			if !first && !q.lit(",") {
				return false
			}
			name, ok := q.str()
			if !ok || !q.lit(":") {
				return false
			}
			if c.CV[name], ok = q.str(); !ok {
				return false
			}
		}
	}
	return q.lit("}")
}

// push reads a push request in the form encoding/json writes it.
func (q *parser) push(p *PushRequest) bool {
	if !q.versions(&p.Versions) {
		return false
	}
	// A null for mutations is left to encoding/json, whose reader names
	// the missing member.
	if !q.lit(`,"clock":`) || !q.timestamp(&p.Clock) || !q.lit(`,"mutations":`) || q.lit("null") {
		return false
	}
	// Room for as many mutations as the push could hold at 256 bytes a
	// mutation (a record's take about 400), so that they are seldom moved.
	return array(q, &p.Mutations, min((len(q.data)-q.i)/256+1, MaxMutations), (*parser).mutation) && q.lit("}") && q.i == len(q.data)
}

func (q *parser) mutation(m *Mutation) bool {
	var ok bool
	if !q.lit(`{"seq":`) {
		return false
	}
	if m.Seq, ok = q.int(); !ok || !q.lit(`,"kind":`) {
		return false
	}
	kind, ok := q.strBytes()
	if !ok || !q.lit(`,"id":`) {
		return false
	}
	m.Kind = schema.KindOf(kind)
	id, ok := q.strBytes()
	if !ok {
		return false
	}
	var err error
	if m.ID, err = uuid.ParseBytes(id); err != nil || !q.lit(`,"version":`) || !q.timestamp(&m.Version) || !q.lit(`,"fields":`) {
		return false
	}
	if q.lit("null") {
		m.Fields = json.RawMessage("null") // as encoding/json has it
	} else if m.Fields, ok = q.object(); !ok {
		return false
	}
	if q.lit(`,"base":`) {
		if m.Base, ok = q.int(); !ok {
			return false
		}
	}
	return q.lit("}")
}

// versions reads the opening of a message up to its versions.
func (q *parser) versions(v *Versions) bool {
	var ok bool
	var n int64
	if !q.lit(`{"protocol":`) {
		return false
	}
	if n, ok = q.int(); !ok || int64(int(n)) != n {
		return false
	}
	v.Protocol = int(n)
	if !q.lit(`,"schema":`) {
		return false
	}
	if n, ok = q.int(); !ok || int64(int(n)) != n {
		return false
	}
	v.Schema = int(n)
	return true
}

// array reads null, leaving *s nil, or an array whose elements elem
// reads into *s, made with room for capHint.
func array[T any](q *parser, s *[]T, capHint int, elem func(*parser, *T) bool) bool {
	if q.lit("null") {
		return true
	}
	if !q.lit("[") {
		return false
	}
	*s = make([]T, 0, capHint)
	for first := true; !q.lit("]"); first = false {
		if !first && !q.lit(",") {
			return false
		}
		var zero T
		*s = append(*s, zero)
		if !elem(q, &(*s)[len(*s)-1]) {
			return false
		}
	}
	return true
}

// timestamp reads a string that is a clock reading.
func (q *parser) timestamp(t *hlc.Timestamp) bool {
	s, ok := q.strBytes()
	return ok && t.UnmarshalText(s) == nil
}

// readBody reads all of r, a body from Body, into a buffer of the size the
// body says it is, where it says: a push's body, decompressed, is some
// hundred kilobytes, which io.ReadAll reaches by a dozen copies.
func readBody(r io.Reader) ([]byte, error) {
	lr, ok := r.(*limitedReader)
	if !ok || lr.size <= 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, lr.size+1) // one more: the read that finds the end
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) { // the hint was short
			b = append(b, 0)[:len(b)]
		}
	}
}

// maxInflation bounds how many times its size a gzip body's trailer is
// believed: pushes deflate about ten to one. The trailer is the sender's
// to choose, and a buffer of the size it states is taken before a byte is
// inflated; a body that does inflate further (deflate reaches about 1032
// to 1) grows the buffer as it is read.
const maxInflation = 64

// sizeHint returns the length of the unread part of a body in memory (a
// *bytes.Reader), at most MaxBodyBytes; 0 if r is not one.
func sizeHint(r io.Reader) int {
	br, ok := r.(*bytes.Reader)
	if !ok {
		return 0
	}
	return int(min(int64(br.Len()), MaxBodyBytes))
}

// gzipSizeHint returns the decompressed length that a gzip body in memory
// (a *bytes.Reader) states in its trailer, at most maxInflation times the
// body and at most MaxBodyBytes; 0 if r is not one. The trailer holds the
// length modulo 2^32 of the last member only, and the sender chose it:
// it sizes a buffer, nothing more.
func gzipSizeHint(r io.Reader) int {
	br, ok := r.(*bytes.Reader)
	if !ok || br.Size() < 18 { // a gzip header and trailer
		return 0
	}
	var trailer [4]byte
	if _, err := br.ReadAt(trailer[:], br.Size()-4); err != nil {
		return 0
	}
	n := int64(binary.LittleEndian.Uint32(trailer[:]))
	return int(min(n, br.Size()*maxInflation, MaxBodyBytes))
}
