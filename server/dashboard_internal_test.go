package server

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brygga/brygga/server/stats"
)

func TestShiftAndBuckets(t *testing.T) {
	d := func(s string) time.Time {
		t, err := time.ParseInLocation("2006-01-02", s, stockholm)
		if err != nil {
			panic(err)
		}
		return t
	}
	for _, c := range []struct{ from, to, prevFrom, prevTo, nextFrom, nextTo string }{
		{"2026-12-01", "2026-12-05", "2026-11-01", "2026-11-30", "2027-01-01", "2027-01-31"},
		{"2026-01-01", "2026-12-05", "2025-01-01", "2025-12-31", "2027-01-01", "2027-12-31"},
		{"2026-03-01", "2026-03-31", "2026-02-01", "2026-02-28", "2026-04-01", "2026-04-30"},
		{"2026-03-10", "2026-03-16", "2026-03-03", "2026-03-09", "2026-03-17", "2026-03-23"},
		{"2026-03-28", "2026-03-30", "2026-03-25", "2026-03-27", "2026-03-31", "2026-04-02"}, // across the change to summer time
	} {
		pf, pt := shift(d(c.from), d(c.to), -1)
		nf, nt := shift(d(c.from), d(c.to), 1)
		if got := formatDay(pf) + " " + formatDay(pt) + " " + formatDay(nf) + " " + formatDay(nt); got != c.prevFrom+" "+c.prevTo+" "+c.nextFrom+" "+c.nextTo {
			t.Errorf("shift %s – %s: %s", c.from, c.to, got)
		}
	}
	for _, c := range []struct {
		p        stats.Period
		from, to string
		want     []string
	}{
		{stats.Week, "2026-12-28", "2027-01-11", []string{"2026-W53", "2027-W01", "2027-W02"}},
		{stats.Month, "2026-01-31", "2026-03-01", []string{"2026-01", "2026-02", "2026-03"}},
		{stats.Quarter, "2026-03-31", "2026-10-01", []string{"2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"}},
		{stats.Year, "2025-12-31", "2026-01-01", []string{"2025", "2026"}},
	} {
		var got []string
		for _, b := range buckets(c.p, d(c.from), d(c.to)) {
			got = append(got, b.Key)
		}
		if len(got) != len(c.want) {
			t.Errorf("%s %s – %s: %v, want %v", c.p, c.from, c.to, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s %s – %s: %v, want %v", c.p, c.from, c.to, got, c.want)
				break
			}
		}
	}
	for key, want := range map[string]string{"2026-W05": "v. 5 2026", "2026-03": "mars 2026", "2026-Q2": "kv. 2 2026", "2026": "2026"} {
		if got := periodLabel(key, "sv"); got != want {
			t.Errorf("%s reads %q, want %q", key, got, want)
		}
	}
	if got := formatInt(1234567, "sv"); got != "1\u00a0234\u00a0567" {
		t.Errorf("1234567 in Swedish: %q", got)
	}
	if got := formatInt(-1234, "en"); got != "−1,234" {
		t.Errorf("-1234 in English: %q", got)
	}
	for name, ok := range map[string]bool{"Van 1": true, "Bil-2 Åre": true, "": true, " Van": false, "Van  1": false, "Van_1": false, "a;b": false, "Van-": false} {
		if ValidDeviceName(name) != ok {
			t.Errorf("ValidDeviceName(%q) = %v", name, !ok)
		}
	}
}

// TestTicks checks that a chart's axis is marked at whole, evenly spaced
// values from 0 to its top, so that no two ticks read the same.
func TestTicks(t *testing.T) {
	for top, want := range map[int64]string{1: "0 1", 2: "0 1 2", 5: "0 1 2 3 4 5", 10: "0 2 4 6 8 10", 20: "0 4 8 12 16 20",
		50: "0 10 20 30 40 50", 500: "0 100 200 300 400 500", 1000: "0 200 400 600 800 1000"} {
		var got []string
		for _, v := range ticks(top) {
			got = append(got, strconv.FormatInt(v, 10))
		}
		if s := strings.Join(got, " "); s != want {
			t.Errorf("ticks(%d) = %s, want %s", top, s, want)
		}
	}
}
