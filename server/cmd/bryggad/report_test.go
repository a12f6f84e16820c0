package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestReportCommands runs bryggad report ivo and deaths on a database:
// CSV with its header and the items it cannot answer, JSON that decodes,
// and usage errors for what is not a report.
func TestReportCommands(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "b.db")
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := Run(ctx, args, strings.NewReader(""), &out, io.Discard)
		return out.String(), err
	}
	if _, err := run("org", "add", "--db", db, "--kind", "region", "--name", "Region Jämtland Härjedalen", "--region", "23"); err != nil {
		t.Fatal(err)
	}
	year := strconv.Itoa(time.Now().Year())
	out, err := run("report", "ivo", "--db", db, "--year", year)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(lines) < 2 || strings.Join(lines[0], ",") != "region,year,status,item,indicator,by,group,value,withheld,revised,note" {
		t.Fatalf("ivo csv: %v %q", err, out)
	}
	gaps := 0
	for _, l := range lines[1:] {
		if l[0] != "23" || l[1] != year {
			t.Errorf("line %q", l)
		}
		if l[4] == "" && l[10] != "" {
			gaps++
		}
	}
	if gaps == 0 {
		t.Error("no item the report cannot answer")
	}
	out, err = run("report", "deaths", "--db", db, "--year", year, "--period", "quarter", "--by", "gender", "--format", "json")
	var f struct {
		Rows []struct {
			Period, Group string
		}
	}
	if err != nil || json.Unmarshal([]byte(out), &f) != nil || len(f.Rows) != 4*5 {
		t.Errorf("deaths json: %v, %d rows: %.200q", err, len(f.Rows), out)
	}
	for _, args := range [][]string{
		{"report", "ivo", "--db", db, "--format", "xml"},
		{"report", "ivo", "--db", db, "--year", "1999"},
		{"report", "deaths", "--db", db, "--period", "day"},
		{"report", "births", "--db", db},
	} {
		if _, err := run(args...); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	if _, err := run("report", "ivo", "--db", db, "--region", "01"); err == nil {
		t.Error("a report of another region")
	}
}
