package hlc_test

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brygga/brygga/sync/hlc"
)

const maxWall = 1<<48 - 1

// fakeTime is a settable physical clock, safe for concurrent use.
type fakeTime struct{ ms atomic.Int64 }

func newFakeTime(t time.Time) *fakeTime {
	f := &fakeTime{}
	f.set(t)
	return f
}

func (f *fakeTime) set(t time.Time)         { f.ms.Store(t.UnixMilli()) }
func (f *fakeTime) advance(d time.Duration) { f.ms.Add(d.Milliseconds()) }
func (f *fakeTime) now() time.Time          { return time.UnixMilli(f.ms.Load()) }

var (
	day2024 = time.Date(2024, 3, 14, 9, 26, 53, 589_000_000, time.UTC)
	day2000 = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
)

func TestTimestampFields(t *testing.T) {
	tests := []struct {
		name    string
		ts      hlc.Timestamp
		millis  int64
		logical uint16
		text    string
		zero    bool
	}{
		{"zero", 0, 0, 0, "0000000000000000", true},
		{"logical only", hlc.New(0, 1), 0, 1, "0000000000000001", false},
		{"one millisecond", hlc.New(1, 0), 1, 0, "0000000000010000", false},
		{"2024", hlc.New(day2024.UnixMilli(), 0x2a), day2024.UnixMilli(), 0x2a, "018e3c493195002a", false},
		{"max", hlc.New(maxWall, 0xffff), maxWall, 0xffff, "ffffffffffffffff", false},
		{"negative clamps to 0", hlc.New(-5, 7), 0, 7, "0000000000000007", false},
		{"too large clamps to max", hlc.New(1<<50, 3), maxWall, 3, "ffffffffffff0003", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ts.WallMillis(); got != tt.millis {
				t.Errorf("WallMillis() = %d, want %d", got, tt.millis)
			}
			if got, want := tt.ts.Wall(), time.UnixMilli(tt.millis).UTC(); !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("Wall() = %v, want %v in UTC", got, want)
			}
			if got := tt.ts.Logical(); got != tt.logical {
				t.Errorf("Logical() = %d, want %d", got, tt.logical)
			}
			if got := tt.ts.String(); got != tt.text {
				t.Errorf("String() = %q, want %q", got, tt.text)
			}
			if got := tt.ts.IsZero(); got != tt.zero {
				t.Errorf("IsZero() = %v, want %v", got, tt.zero)
			}
		})
	}
}

func TestFromTime(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		want hlc.Timestamp
	}{
		{"epoch", time.Unix(0, 0), 0},
		{"truncates to the millisecond", day2024.Add(999 * time.Microsecond), hlc.New(day2024.UnixMilli(), 0)},
		{"zone does not matter", day2024.In(time.FixedZone("CET", 3600)), hlc.New(day2024.UnixMilli(), 0)},
		{"before the epoch clamps to 0", time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC), 0},
		{"zero time clamps to 0", time.Time{}, 0},
		{"far future clamps to max wall", time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC), hlc.New(maxWall, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hlc.FromTime(tt.in); got != tt.want {
				t.Errorf("FromTime(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	if got := hlc.FromTime(day2024).Wall(); !got.Equal(day2024) {
		t.Errorf("FromTime(%v).Wall() = %v", day2024, got)
	}
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	values := []hlc.Timestamp{0, 1, 0xffff, 0x10000, 1<<64 - 1}
	for range 1000 {
		values = append(values, hlc.Timestamp(r.Uint64()))
	}
	for _, ts := range values {
		s := ts.String()
		if len(s) != 16 {
			t.Fatalf("String() of %d = %q, want 16 digits", uint64(ts), s)
		}
		got, err := hlc.Parse(s)
		if err != nil || got != ts {
			t.Fatalf("Parse(%q) = %d, %v; want %d", s, uint64(got), err, uint64(ts))
		}
		text, err := ts.MarshalText()
		if err != nil || string(text) != s {
			t.Fatalf("MarshalText() of %d = %q, %v; want %q", uint64(ts), text, err, s)
		}
		var u hlc.Timestamp
		if err := u.UnmarshalText(text); err != nil || u != ts {
			t.Fatalf("UnmarshalText(%q) = %d, %v; want %d", text, uint64(u), err, uint64(ts))
		}
		if back := hlc.New(ts.WallMillis(), ts.Logical()); back != ts {
			t.Fatalf("New(WallMillis, Logical) of %d = %d", uint64(ts), uint64(back))
		}
	}
}

func TestJSON(t *testing.T) {
	type msg struct {
		Clock hlc.Timestamp `json:"clock"`
	}
	in := msg{Clock: hlc.New(day2024.UnixMilli(), 3)}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"clock":"` + in.Clock.String() + `"}`; string(b) != want {
		t.Fatalf("json.Marshal = %s, want %s", b, want)
	}
	var out msg
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Fatalf("json.Unmarshal(%s) = %+v, %v; want %+v", b, out, err, in)
	}
	if err := json.Unmarshal([]byte(`{"clock":"018E3C493195002A"}`), &out); !errors.Is(err, hlc.ErrMalformed) {
		t.Fatalf("json.Unmarshal of upper case: err = %v, want ErrMalformed", err)
	}
	if out != in {
		t.Fatalf("failed UnmarshalText changed the value to %v", out.Clock)
	}
}

func TestStringOrderIsNumericOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pairs := [][2]hlc.Timestamp{{0, 1}, {0xf, 0x10}, {0xffff, 0x10000}, {1<<63 - 1, 1 << 63}}
	for range 10000 {
		a := hlc.Timestamp(r.Uint64())
		// Mix in values that share long prefixes or are small, where
		// missing zero padding would show.
		b := a ^ hlc.Timestamp(r.Uint64()>>r.IntN(64))
		if r.IntN(4) == 0 {
			a >>= r.IntN(64)
		}
		pairs = append(pairs, [2]hlc.Timestamp{a, b}, [2]hlc.Timestamp{b, a})
	}
	for _, p := range pairs {
		a, b := p[0], p[1]
		if got, want := strings.Compare(a.String(), b.String()), cmp(a, b); got != want {
			t.Fatalf("Compare(%q, %q) = %d, numeric order is %d", a.String(), b.String(), got, want)
		}
	}
}

func cmp(a, b hlc.Timestamp) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"too short", "000000000000000"},
		{"too long", "00000000000000000"},
		{"short digits", "1"},
		{"upper case", "018E3C493195002A"},
		{"one upper case digit", "000000000000000A"},
		{"non-hex letter", "000000000000000g"},
		{"non-hex symbol", "00000000-0000000"},
		{"leading space", " 000000000000000"},
		{"trailing space", "000000000000000 "},
		{"padded with spaces", " 0000000000000000 "},
		{"trailing newline", "0000000000000000\n"},
		{"plus sign", "+000000000000000"},
		{"minus sign", "-000000000000000"},
		{"0x prefix", "0x00000000000000"},
		{"NUL byte", "000000000000000\x00"},
		{"non-ASCII digit", "00000000000000٣"},
		{"invalid UTF-8", "000000000000000\xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := hlc.Parse(tt.in)
			if !errors.Is(err, hlc.ErrMalformed) {
				t.Fatalf("Parse(%q) = %v, %v; want ErrMalformed", tt.in, got, err)
			}
			if got != 0 {
				t.Errorf("Parse(%q) returned %v with its error, want 0", tt.in, got)
			}
			if !strings.HasPrefix(err.Error(), "hlc: parse ") {
				t.Errorf("Parse(%q) error %q lacks the hlc: parse prefix", tt.in, err)
			}
			u := hlc.Timestamp(42)
			if err := u.UnmarshalText([]byte(tt.in)); !errors.Is(err, hlc.ErrMalformed) || u != 42 {
				t.Errorf("UnmarshalText(%q) = %v leaving %d; want ErrMalformed leaving 42", tt.in, err, uint64(u))
			}
		})
	}
}

func TestParseErrorMessage(t *testing.T) {
	_, err := hlc.Parse("xyz")
	want := `hlc: parse "xyz": length 3, want 16 lowercase hex digits: malformed timestamp`
	if err == nil || err.Error() != want {
		t.Errorf("Parse(\"xyz\") error = %v, want %s", err, want)
	}
	_, err = hlc.Parse(strings.Repeat("z", 1<<20))
	if err == nil || len(err.Error()) > 200 {
		t.Errorf("Parse of a 1 MiB string: error of %d bytes, want a short one", len(err.Error()))
	}
}

// wantIncreasing fails t unless each timestamp in got is greater than the one
// before it and than floor.
func wantIncreasing(t *testing.T, floor hlc.Timestamp, got []hlc.Timestamp) {
	t.Helper()
	prev := floor
	for i, ts := range got {
		if ts <= prev {
			t.Fatalf("timestamp %d is %v, not after %v", i, ts, prev)
		}
		prev = ts
	}
}

func TestClockNowFixedTime(t *testing.T) {
	ft := newFakeTime(day2024)
	c := hlc.NewClock(ft.now, 0)
	var got []hlc.Timestamp
	for range 5 {
		got = append(got, c.Now())
	}
	wall := day2024.UnixMilli()
	for i, ts := range got {
		if want := hlc.New(wall, uint16(i)); ts != want {
			t.Errorf("Now() #%d = %v (wall %d, logical %d), want %v", i, ts, ts.WallMillis(), ts.Logical(), want)
		}
	}
	if c.Last() != got[len(got)-1] {
		t.Errorf("Last() = %v, want %v", c.Last(), got[len(got)-1])
	}
	ft.advance(time.Millisecond)
	if ts, want := c.Now(), hlc.New(wall+1, 0); ts != want {
		t.Errorf("Now() after the time advanced = %v, want %v", ts, want)
	}
}

func TestClockNowTimeGoesBack(t *testing.T) {
	ft := newFakeTime(day2024)
	c := hlc.NewClock(ft.now, 0)
	before := c.Now()
	// The battery died and the tablet woke up in 2000.
	ft.set(day2000)
	var got []hlc.Timestamp
	for range 100 {
		got = append(got, c.Now())
		ft.advance(time.Second)
	}
	wantIncreasing(t, before, got)
	for _, ts := range got {
		if ts.WallMillis() != before.WallMillis() {
			t.Fatalf("Now() = %v with wall %v, want the wall to stay at %v", ts, ts.Wall(), before.Wall())
		}
	}
	// Someone fixes the clock: physical time takes over again.
	ft.set(day2024.Add(time.Hour))
	if ts, want := c.Now(), hlc.FromTime(day2024.Add(time.Hour)); ts != want {
		t.Errorf("Now() once time is ahead again = %v, want %v", ts, want)
	}
}

func TestClockRestart(t *testing.T) {
	// A tablet restarts with its persisted Last and a clock reset to 2000.
	last := hlc.New(day2024.UnixMilli(), 9)
	c := hlc.NewClock(newFakeTime(day2000).now, last)
	if c.Last() != last {
		t.Fatalf("Last() = %v before any event, want %v", c.Last(), last)
	}
	if ts, want := c.Now(), last+1; ts != want {
		t.Errorf("Now() = %v, want %v", ts, want)
	}
}

func TestClockOverflow(t *testing.T) {
	ft := newFakeTime(day2024)
	wall := day2024.UnixMilli()
	tests := []struct {
		name  string
		last  hlc.Timestamp
		event func(*hlc.Clock) hlc.Timestamp
		want  hlc.Timestamp
	}{
		{"Now", hlc.New(wall, 0xffff), (*hlc.Clock).Now, hlc.New(wall+1, 0)},
		{"Now ahead of physical", hlc.New(wall+5, 0xffff), (*hlc.Clock).Now, hlc.New(wall+6, 0)},
		{"Observe local", hlc.New(wall, 0xffff), func(c *hlc.Clock) hlc.Timestamp { return c.Observe(hlc.New(wall, 3)) }, hlc.New(wall+1, 0)},
		{"Observe remote", hlc.New(wall, 3), func(c *hlc.Clock) hlc.Timestamp { return c.Observe(hlc.New(wall, 0xffff)) }, hlc.New(wall+1, 0)},
		{"Observe remote ahead", 0, func(c *hlc.Clock) hlc.Timestamp { return c.Observe(hlc.New(wall+9, 0xffff)) }, hlc.New(wall+10, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := hlc.NewClock(ft.now, tt.last)
			if got := tt.event(c); got != tt.want {
				t.Errorf("got %v (wall %d, logical %d), want %v", got, got.WallMillis(), got.Logical(), tt.want)
			}
			if next := c.Now(); next <= tt.want {
				t.Errorf("Now() after overflow = %v, want above %v", next, tt.want)
			}
		})
	}
}

func TestClockObserve(t *testing.T) {
	wall := day2024.UnixMilli()
	tests := []struct {
		name         string
		last, remote hlc.Timestamp
		want         hlc.Timestamp
	}{
		{"physical ahead of both", hlc.New(wall-10, 4), hlc.New(wall-5, 7), hlc.New(wall, 0)},
		{"physical equal to both", hlc.New(wall, 4), hlc.New(wall, 7), hlc.New(wall, 8)},
		{"all equal, local counter higher", hlc.New(wall+2, 9), hlc.New(wall+2, 7), hlc.New(wall+2, 10)},
		{"all equal, remote counter higher", hlc.New(wall+2, 4), hlc.New(wall+2, 7), hlc.New(wall+2, 8)},
		{"local ahead", hlc.New(wall+3, 4), hlc.New(wall+2, 70), hlc.New(wall+3, 5)},
		{"remote ahead", hlc.New(wall+2, 40), hlc.New(wall+3, 7), hlc.New(wall+3, 8)},
		{"remote in the past", hlc.New(wall, 1), hlc.New(wall-1000, 7), hlc.New(wall, 2)},
		{"zero remote", hlc.New(wall-1, 1), 0, hlc.New(wall, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := hlc.NewClock(newFakeTime(day2024).now, tt.last)
			got := c.Observe(tt.remote)
			if got != tt.want {
				t.Errorf("Observe(%v) = %v (wall %d, logical %d), want %v", tt.remote, got, got.WallMillis()-wall, got.Logical(), tt.want)
			}
			if got <= tt.last || got <= tt.remote {
				t.Errorf("Observe(%v) = %v, not above last %v and remote", tt.remote, got, tt.last)
			}
			if c.Last() != got {
				t.Errorf("Last() = %v, want %v", c.Last(), got)
			}
		})
	}
}

func TestClockObserveFarAhead(t *testing.T) {
	ft := newFakeTime(day2024)
	c := hlc.NewClock(ft.now, 0)
	c.Now()
	remote := hlc.FromTime(day2024.Add(72*time.Hour)) + 5
	got := c.Observe(remote)
	if got != remote+1 {
		t.Fatalf("Observe(%v) = %v, want %v", remote, got, remote+1)
	}
	var later []hlc.Timestamp
	for range 50 {
		ft.advance(time.Minute)
		later = append(later, c.Now())
	}
	wantIncreasing(t, got, later)
	// Physical time passes the remote's: the clock follows it again.
	ft.set(day2024.Add(73 * time.Hour))
	if ts, want := c.Now(), hlc.FromTime(day2024.Add(73*time.Hour)); ts != want {
		t.Errorf("Now() once physical time passed the remote = %v, want %v", ts, want)
	}
}

func TestClockSaturates(t *testing.T) {
	const top = hlc.Timestamp(1<<64 - 1)
	c := hlc.NewClock(newFakeTime(day2024).now, 0)
	if got := c.Observe(top); got != top {
		t.Fatalf("Observe(max) = %v, want %v", got, top)
	}
	if got := c.Now(); got != top {
		t.Fatalf("Now() at max = %v, want it to stay at %v rather than wrap", got, top)
	}
	if got := c.Observe(5); got != top {
		t.Fatalf("Observe(5) at max = %v, want %v", got, top)
	}
}

func TestNewClockNilNow(t *testing.T) {
	c := hlc.NewClock(nil, 0)
	before := time.Now().UnixMilli()
	ts := c.Now()
	after := time.Now().UnixMilli()
	if w := ts.WallMillis(); w < before || w > after {
		t.Errorf("Now() wall = %d, want within [%d, %d] of time.Now", w, before, after)
	}
}

func TestClockConcurrent(t *testing.T) {
	const goroutines, perGoroutine = 8, 1000
	// Physical time creeps forward with use, so both the physical and
	// logical paths run.
	var ticks atomic.Int64
	base := day2024.UnixMilli()
	now := func() time.Time { return time.UnixMilli(base + ticks.Add(1)/37) }
	c := hlc.NewClock(now, 0)

	results := make([][]hlc.Timestamp, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			out := make([]hlc.Timestamp, 0, perGoroutine)
			for i := range perGoroutine {
				if g == 0 && i%10 == 0 {
					out = append(out, c.Observe(hlc.New(base+int64(i)/20, uint16(i))))
					continue
				}
				out = append(out, c.Now())
			}
			results[g] = out
		})
	}
	wg.Wait()

	seen := make(map[hlc.Timestamp]int, goroutines*perGoroutine)
	for g, out := range results {
		if len(out) != perGoroutine {
			t.Fatalf("goroutine %d got %d timestamps, want %d", g, len(out), perGoroutine)
		}
		wantIncreasing(t, 0, out)
		for _, ts := range out {
			if prev, dup := seen[ts]; dup {
				t.Fatalf("timestamp %v issued to goroutines %d and %d", ts, prev, g)
			}
			seen[ts] = g
		}
	}
	var top hlc.Timestamp
	for ts := range seen {
		top = max(top, ts)
	}
	if c.Last() != top {
		t.Errorf("Last() = %v, want the greatest issued %v", c.Last(), top)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "0000000000000000", "ffffffffffffffff", "018e3c493195002a",
		"018E3C493195002A", "+000000000000000", " 000000000000000", "00000000000000000",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := hlc.Parse(s)
		var u hlc.Timestamp
		uerr := u.UnmarshalText([]byte(s))
		if (err == nil) != (uerr == nil) || ts != u {
			t.Fatalf("Parse(%q) = %v, %v but UnmarshalText gives %v, %v", s, ts, err, u, uerr)
		}
		if err != nil {
			if !errors.Is(err, hlc.ErrMalformed) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrMalformed", s, err)
			}
			if ts != 0 {
				t.Fatalf("Parse(%q) = %v with an error", s, ts)
			}
			return
		}
		if got := ts.String(); got != s {
			t.Fatalf("Parse(%q).String() = %q", s, got)
		}
	})
}

func BenchmarkClockNow(b *testing.B) {
	t := day2024
	c := hlc.NewClock(func() time.Time { return t }, 0)
	for b.Loop() {
		c.Now()
	}
}

func BenchmarkParse(b *testing.B) {
	s := hlc.New(day2024.UnixMilli(), 42).String()
	for b.Loop() {
		if _, err := hlc.Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkString(b *testing.B) {
	ts := hlc.New(day2024.UnixMilli(), 42)
	for b.Loop() {
		_ = ts.String()
	}
}
