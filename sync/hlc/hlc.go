package hlc

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrMalformed is wrapped by the errors of Parse and Timestamp.UnmarshalText
// for text that is not exactly 16 lowercase hex digits.
var ErrMalformed = errors.New("malformed timestamp")

const (
	logicalBits = 16
	// maxWall is the largest wall time a Timestamp can hold, in Unix
	// milliseconds: some time in the year 10889.
	maxWall = 1<<(64-logicalBits) - 1
	// maxTimestamp is the largest Timestamp.
	maxTimestamp = Timestamp(1<<64 - 1)
	// textLen is the length of a Timestamp's text form.
	textLen = 16
)

// Timestamp is a hybrid logical clock value: the upper 48 bits are Unix
// milliseconds (the wall time), the lower 16 bits a logical counter that
// orders events within one millisecond. Timestamps compare with the usual
// integer operators. The zero Timestamp is the Unix epoch with a logical
// counter of 0 and stands for "no time". A Timestamp is a plain value and is
// safe for concurrent use.
type Timestamp uint64

// New returns the Timestamp with the given wall time in Unix milliseconds
// and logical counter. wallMillis should be in [0, 2^48); a value below that
// range is taken as 0 and one above it as 2^48-1, so New never panics and
// preserves the order of its inputs.
func New(wallMillis int64, logical uint16) Timestamp {
	return Timestamp(clampWall(wallMillis))<<logicalBits | Timestamp(logical)
}

// FromTime returns the Timestamp of t truncated to the millisecond, with a
// logical counter of 0. Times before the Unix epoch or after the largest
// representable wall time are clamped as by New.
func FromTime(t time.Time) Timestamp {
	return New(t.UnixMilli(), 0)
}

// clampWall limits ms to the range a Timestamp can hold.
func clampWall(ms int64) uint64 {
	switch {
	case ms < 0:
		return 0
	case ms > maxWall:
		return maxWall
	}
	return uint64(ms)
}

// Wall returns the wall time of t in UTC, at millisecond precision.
func (t Timestamp) Wall() time.Time {
	return time.UnixMilli(t.WallMillis()).UTC()
}

// WallMillis returns the wall time of t in Unix milliseconds.
func (t Timestamp) WallMillis() int64 {
	return int64(t >> logicalBits)
}

// Logical returns the logical counter of t.
func (t Timestamp) Logical() uint16 {
	return uint16(t)
}

// IsZero reports whether t is the zero Timestamp.
func (t Timestamp) IsZero() bool {
	return t == 0
}

const hexDigits = "0123456789abcdef"

// String returns t as exactly 16 lowercase hex digits, zero-padded, so that
// the string order of encoded timestamps is their numeric order.
func (t Timestamp) String() string {
	var b [textLen]byte
	t.encode(&b)
	return string(b[:])
}

// encode writes the text form of t to b.
func (t Timestamp) encode(b *[textLen]byte) {
	for i := textLen - 1; i >= 0; i-- {
		b[i] = hexDigits[t&0xf]
		t >>= 4
	}
}

// MarshalText implements encoding.TextMarshaler with the form of String.
func (t Timestamp) MarshalText() ([]byte, error) {
	var b [textLen]byte
	t.encode(&b)
	return b[:], nil
}

// AppendText implements encoding.TextAppender with the form of String.
func (t Timestamp) AppendText(b []byte) ([]byte, error) {
	var e [textLen]byte
	t.encode(&e)
	return append(b, e[:]...), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with the strict form of
// Parse. On error *t is left unchanged.
func (t *Timestamp) UnmarshalText(text []byte) error {
	v, err := parse(text)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// Parse decodes the text form made by Timestamp.String: exactly 16
// lowercase hex digits, with no sign, prefix, space or upper case. Anything
// else returns an error wrapping ErrMalformed.
func Parse(s string) (Timestamp, error) {
	return parse(s)
}

// parse is Parse for both strings and byte slices, without copying.
func parse[T string | []byte](s T) (Timestamp, error) {
	if len(s) != textLen {
		return 0, malformed(s, fmt.Sprintf("length %d, want 16 lowercase hex digits", len(s)))
	}
	var v Timestamp
	for i := 0; i < textLen; i++ {
		c := s[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, malformed(s, fmt.Sprintf("byte %q at %d, want 16 lowercase hex digits", c, i))
		}
		v = v<<4 | Timestamp(d)
	}
	return v, nil
}

// maxQuoted is how much of a malformed input an error message repeats.
const maxQuoted = 40

// malformed returns the error for input s, which has the given problem.
func malformed[T string | []byte](s T, problem string) error {
	q := string(s)
	if len(q) > maxQuoted {
		q = q[:maxQuoted] + "..."
	}
	return fmt.Errorf("hlc: parse %q: %s: %w", q, problem, ErrMalformed)
}

// Clock issues hybrid logical clock timestamps. Each timestamp it returns,
// from Now or Observe, is greater than every timestamp it returned or
// observed before, however its physical time source moves. A Clock is safe
// for concurrent use; it must be made with NewClock.
//
// The one exception to strict growth is saturation: once the clock reaches
// the largest Timestamp (a wall time in the year 10889, reachable only by
// observing such a timestamp) it stays there. Callers that accept remote
// timestamps bound them before observing them.
type Clock struct {
	now func() time.Time

	mu   sync.Mutex
	last Timestamp
}

// NewClock returns a Clock that reads physical time from now and issues
// timestamps greater than last, typically the value of Last persisted
// before a restart. A nil now means time.Now. now must be safe for
// concurrent use if the Clock is used concurrently; it is called without
// the Clock's lock held.
func NewClock(now func() time.Time, last Timestamp) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{now: now, last: last}
}

// physical returns the current physical time as a Timestamp with a logical
// counter of 0.
func (c *Clock) physical() Timestamp {
	return FromTime(c.now())
}

// Now returns a timestamp for a local or send event: the physical time if
// it is ahead of the last timestamp, otherwise the last timestamp with its
// logical counter incremented. When the counter would pass 65535 the wall
// time advances by a millisecond and the counter restarts at 0.
func (c *Clock) Now() Timestamp {
	pt := c.physical()
	c.mu.Lock()
	defer c.mu.Unlock()
	// With the counter in the low bits, incrementing the whole value is
	// the HLC rule for an unchanged wall time, carrying into the wall on
	// overflow; a physical time ahead of the last wall has counter 0.
	c.last = max(inc(c.last), pt)
	return c.last
}

// Observe records a timestamp received from another node and returns a
// timestamp for the receive event, greater than both the last timestamp and
// remote. Its wall time is the greatest of the last wall time, remote's
// wall time and physical time; its logical counter is one more than the
// greatest counter among those at that wall time, or 0 if physical time
// alone is ahead, with the same overflow rule as Now.
func (c *Clock) Observe(remote Timestamp) Timestamp {
	pt := c.physical()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = max(inc(c.last), inc(remote), pt)
	return c.last
}

// Last returns the last timestamp the clock issued, for persisting so that
// a restarted clock continues above it. It issues nothing itself.
func (c *Clock) Last() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// inc returns the timestamp following t, or t itself if it is the largest.
func inc(t Timestamp) Timestamp {
	if t == maxTimestamp {
		return t
	}
	return t + 1
}
