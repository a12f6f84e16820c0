package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/server/stats"
)

// report runs "bryggad report ivo|deaths": the authority's reports from
// the database, as GET /v1/reports/ivo and /v1/reports/deaths give them,
// in CSV or JSON on stdout.
func report(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags(cmd, stderr)
	year := fs.Int("year", time.Now().In(stockholm()).Year()-1, "the calendar `year` (for period week, the ISO year)")
	format := fs.String("format", "csv", "csv or json")
	var region, period, by *string
	switch cmd {
	case "report ivo":
		region = fs.String("region", "", "the two-digit county `code` (default the server's organisations')")
	case "report deaths":
		period = fs.String("period", string(stats.Year), "week, month, quarter or year")
		by = fs.String("by", "total", "total, gender, age_band, unit, municipality or organisation")
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *format != "csv" && *format != "json" {
		return fmt.Errorf("%w: --format must be csv or json", errUsage)
	}
	if *year < 2000 || *year > time.Now().In(stockholm()).Year() {
		return fmt.Errorf("%w: --year must be from 2000 to the current one", errUsage)
	}
	s, err := open(ctx, *db, server.Config{})
	if err != nil {
		return err
	}
	defer s.Close()
	var out interface{ WriteCSV(io.Writer) error }
	switch cmd {
	case "report ivo":
		rep, err := s.IVOReport(ctx, *region, *year)
		if err != nil {
			return err
		}
		out = rep
	case "report deaths":
		p, d := stats.Period(*period), stats.Dim(*by)
		if d == "total" {
			d = stats.ByTotal
		}
		if !p.Valid() || !d.Valid() {
			return fmt.Errorf("%w: --period must be week, month, quarter or year; --by total, gender, age_band, unit, municipality or organisation", errUsage)
		}
		f, err := s.DeathFollowUp(ctx, p, *year, d)
		if err != nil {
			return err
		}
		out = f
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	return out.WriteCSV(stdout)
}

// stockholm is the zone reports' years are cut in.
func stockholm() *time.Location {
	if loc, err := time.LoadLocation("Europe/Stockholm"); err == nil {
		return loc
	}
	return time.UTC
}
