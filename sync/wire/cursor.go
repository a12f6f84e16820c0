package wire

import (
	"encoding/base64"
	"encoding/binary"
	"strings"

	"github.com/google/uuid"
)

// Cursor is where a pull continues: a position in one server database's
// change sequence. A cursor of another database (restored from backup,
// replaced) or past the end of this one's sequence is invalid, and the
// device starts over: re-pulling is safe because applying a change twice
// changes nothing.
type Cursor struct {
	// Store identifies the server database the cursor belongs to.
	Store uuid.UUID
	// Seq is the change sequence number of the last change delivered.
	Seq int64
	// Mark names the span of the database's history the cursor was made
	// in (the database's current mark when the page was served), so that
	// a server put back to an older copy of its database without a new
	// epoch recognises a cursor of a history it does not have. Zero for
	// none (cursors of the first form).
	Mark uint64
}

const (
	cursorPrefix       = "c1."
	markedCursorPrefix = "c2."
)

var cursorEncoding = base64.RawURLEncoding

// String encodes the cursor as an opaque, URL-safe string.
func (c Cursor) String() string {
	var b [32]byte
	copy(b[:16], c.Store[:])
	binary.BigEndian.PutUint64(b[16:], uint64(c.Seq))
	if c.Mark == 0 {
		return cursorPrefix + cursorEncoding.EncodeToString(b[:24])
	}
	binary.BigEndian.PutUint64(b[24:], c.Mark)
	return markedCursorPrefix + cursorEncoding.EncodeToString(b[:])
}

// ParseCursor decodes a cursor made by Cursor.String. Anything else returns
// an *Error with CodeCursorInvalid. The empty string is the start.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	invalid := &Error{Code: CodeCursorInvalid, Field: "cursor", Message: "cursor is malformed: start over with an empty cursor"}
	size := 24
	rest, ok := strings.CutPrefix(s, cursorPrefix)
	if !ok {
		rest, ok = strings.CutPrefix(s, markedCursorPrefix)
		size = 32
	}
	if !ok || len(rest) != cursorEncoding.EncodedLen(size) {
		return Cursor{}, invalid
	}
	b, err := cursorEncoding.DecodeString(rest)
	if err != nil || len(b) != size {
		return Cursor{}, invalid
	}
	var c Cursor
	copy(c.Store[:], b[:16])
	c.Seq = int64(binary.BigEndian.Uint64(b[16:24]))
	if size == 32 {
		c.Mark = binary.BigEndian.Uint64(b[24:])
	}
	if c.Seq < 0 || c.Store == uuid.Nil || c.String() != s {
		return Cursor{}, invalid
	}
	return c, nil
}
