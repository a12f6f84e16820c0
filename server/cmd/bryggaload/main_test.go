package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brygga/brygga/server/pgstore/pgtest"
)

// TestMain serves instead of testing when many-devices starts this binary
// as its server process.
func TestMain(m *testing.M) {
	if child, err := childMain(); child {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// tableRow is one parsed line of the table.
type tableRow struct {
	scenario, figure, unit string
	value                  float64
	met                    string
}

// parseTable returns the rows of the table Run printed: the lines after
// the header line whose cells are separated by two or more spaces.
func parseTable(t *testing.T, out string) []tableRow {
	t.Helper()
	sep := regexp.MustCompile(`\s{2,}`)
	var rows []tableRow
	in := false
	for line := range strings.SplitSeq(out, "\n") {
		cells := sep.Split(strings.TrimSpace(line), -1)
		switch {
		case len(cells) > 0 && cells[0] == "scenario":
			in = true
		case !in:
		case len(cells) != 8:
			in = false
		default:
			v, err := strconv.ParseFloat(cells[3], 64)
			if err != nil {
				t.Fatalf("value %q of %q: %v", cells[3], line, err)
			}
			rows = append(rows, tableRow{scenario: cells[0], figure: cells[1], unit: cells[2], value: v, met: cells[7]})
		}
	}
	return rows
}

func TestRunEveryScenarioTiny(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	args := []string{"--runs", "1", "--rows", "5000", "--first-sync-rows", "5000", "--big-rows", "5000",
		"--devices", "20", "--small-syncs", "3", "--postgres", pgtest.Server(), "--instances", "2"}
	// The PostgreSQL scenarios measure where a PostgreSQL server answers,
	// and must where one is required.
	pg := postgresAnswers(ctx, &config{postgres: pgtest.Server(), stderr: io.Discard}, "")
	if !pg && os.Getenv("BRYGGA_POSTGRES_REQUIRED") == "1" {
		t.Fatalf("PostgreSQL at %s does not answer", pgtest.Redacted(pgtest.Server()))
	}
	if err := Run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("Run: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	rows := parseTable(t, out.String())
	if len(rows) == 0 {
		t.Fatalf("no table:\n%s", out.String())
	}
	for _, sc := range scenarios {
		if strings.HasSuffix(sc.name, "-postgres") && !pg {
			t.Logf("%s: no PostgreSQL answers, nothing measured", sc.name)
			continue
		}
		positive := false
		for _, r := range rows {
			if r.scenario == sc.name && r.value > 0 {
				positive = true
			}
		}
		if !positive {
			t.Errorf("scenario %s has no positive figure:\n%s", sc.name, out.String())
		}
	}
	found := false
	for _, r := range rows {
		if r.scenario == "many-devices" && r.figure == "errors" {
			found = true
			if r.value != 0 || r.met != "met" {
				t.Errorf("many-devices: %v errors (%s)\n%s", r.value, r.met, errOut.String())
			}
		}
		if r.met != "-" && r.met != "met" && r.met != "missed" {
			t.Errorf("%s %s: met? is %q", r.scenario, r.figure, r.met)
		}
	}
	if !found {
		t.Errorf("no error count of many-devices:\n%s", out.String())
	}
	// The server's memory is measured in its own process.
	if !slices.ContainsFunc(rows, func(r tableRow) bool {
		return r.scenario == "many-devices" && r.figure == "server peak RSS" && r.value > 1 && r.value < 1000
	}) {
		t.Errorf("no plausible server peak RSS of many-devices:\n%s", out.String())
	}
	for _, want := range []string{"machine", "CPUs", "extrapolated"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunOneScenarioTwice(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"--scenario", "wire-size", "--runs", "2"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	rows := parseTable(t, out.String())
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2:\n%s", len(rows), out.String())
	}
	for _, r := range rows {
		if r.scenario != "wire-size" {
			t.Errorf("row of %s", r.scenario)
		}
	}
	if rows[1].met != "met" {
		t.Errorf("gzip is not within a quarter of plain JSON:\n%s", out.String())
	}
}

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "nope"},
		{"--runs", "0"},
		{"--devices", "-1"},
		{"extra"},
	} {
		err := Run(context.Background(), args, io.Discard, io.Discard)
		if !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

func TestMedianAndPercentile(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3 values = %v", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of 4 values = %v", got)
	}
	vs := make([]float64, 100)
	for i := range vs {
		vs[i] = float64(100 - i)
	}
	if got := percentile(vs, 99); got != 99 {
		t.Errorf("p99 of 1..100 = %v", got)
	}
	if got := percentile(vs, 50); got != 50 {
		t.Errorf("p50 of 1..100 = %v", got)
	}
}

func TestSplitKeepsPairs(t *testing.T) {
	for _, rows := range []int{2, 7, 5000, 400_000} {
		total := 0
		for _, n := range split(rows, loaders) {
			if n%2 != 0 {
				t.Errorf("split(%d): odd part %d", rows, n)
			}
			total += n
		}
		if total < rows || total > rows+1 {
			t.Errorf("split(%d) sums to %d", rows, total)
		}
	}
}
