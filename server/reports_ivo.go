package server

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/brygga/brygga/server/stats"
	"github.com/brygga/brygga/sync/wire"
)

// ErrRegion means a report was asked for a region the server does not
// hold, or of a server that holds organisations of several regions (the
// publication covers every organisation of the server).
var ErrRegion = &wire.Error{Code: wire.CodeMalformed, Field: "region", Message: "region must be the two-digit county code of the server's organisations"}

// region returns the county code of the server's organisations: asked, if
// it is theirs, or theirs if asked is empty. It is ErrRegion if they are
// of several regions, none, or another.
func (s *Server) region(ctx context.Context, asked string) (string, error) {
	codes, err := s.store.RegionCodes(ctx)
	if err != nil {
		return "", err
	}
	if len(codes) != 1 || asked != "" && asked != codes[0] {
		return "", ErrRegion
	}
	return codes[0], nil
}

// IVOReport returns the quantitative part of the region's yearly report
// to IVO for year (SOSFS 2007:2, 13-14 §§), read from the authority's
// publication, which it builds if the records changed. region is the
// county code, or "" for the server's. It is ErrRegion for a region the
// server does not hold.
func (s *Server) IVOReport(ctx context.Context, region string, year int) (*stats.IVOReport, error) {
	code, err := s.region(ctx, region)
	if err != nil {
		return nil, err
	}
	pub, err := s.store.Publication(ctx, &s.reports, s.now(), s.cfg.K)
	if err != nil {
		return nil, err
	}
	return pub.IVO(code, year), nil
}

// DeathFollowUp returns the drug-death follow-up of the periods of kind
// period in year, by by, read from the authority's publication.
func (s *Server) DeathFollowUp(ctx context.Context, period stats.Period, year int, by stats.Dim) (*stats.FollowUp, error) {
	pub, err := s.store.Publication(ctx, &s.reports, s.now(), s.cfg.K)
	if err != nil {
		return nil, err
	}
	return pub.FollowUp(period, year, by), nil
}

// reportFormat reads format: json or csv.
func reportFormat(c *fiber.Ctx) (string, error) {
	format := c.Query("format", "json")
	if format != "json" && format != "csv" {
		return "", &wire.Error{Code: wire.CodeMalformed, Field: "format", Message: "format must be csv or json"}
	}
	return format, nil
}

// getIVOReport serves GET /v1/reports/ivo?year=&region=&format=.
func (s *Server) getIVOReport(c *fiber.Ctx) error {
	p, _ := s.principal(c)
	for _, name := range []string{"from", "to", "day", "date", "period", "by"} {
		if c.Query(name) != "" {
			return &wire.Error{Code: wire.CodeMalformed, Field: name, Message: "the IVO report covers a calendar year: ask for year (and region) only"}
		}
	}
	current := s.now().In(stockholm).Year()
	year, err := queryInt(c, "year", current-1)
	if err != nil {
		return err
	}
	if year < 2000 || year > current {
		return &wire.Error{Code: wire.CodeMalformed, Field: "year", Message: "year must be from 2000 to the current one, " + strconv.Itoa(current)}
	}
	format, err := reportFormat(c)
	if err != nil {
		return err
	}
	rep, err := s.IVOReport(c.UserContext(), c.Query("region"), year)
	if err != nil {
		return err
	}
	s.audit(c.UserContext(), p.Actor(), "report", "ivo "+strconv.Itoa(year)+" region "+rep.Region, "ok", int64(len(rep.Items)), requestID(c))
	if format == "csv" {
		var buf bytes.Buffer
		if err := rep.WriteCSV(&buf); err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="brygga-ivo-%s-%d.csv"`, rep.Region, year))
		return c.Send(buf.Bytes())
	}
	return c.JSON(rep)
}

// getDeathFollowUp serves GET /v1/reports/deaths?period=&year=&by=&format=.
func (s *Server) getDeathFollowUp(c *fiber.Ctx) error {
	p, _ := s.principal(c)
	period, year, by, err := s.reportQuery(c)
	if err != nil {
		return err
	}
	format, err := reportFormat(c)
	if err != nil {
		return err
	}
	f, err := s.DeathFollowUp(c.UserContext(), period, year, by)
	if err != nil {
		return err
	}
	s.audit(c.UserContext(), p.Actor(), "report", "deaths "+string(period)+" "+strconv.Itoa(year)+" by "+byName(by), "ok", int64(len(f.Rows)), requestID(c))
	if format == "csv" {
		var buf bytes.Buffer
		if err := f.WriteCSV(&buf); err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		c.Set(fiber.HeaderContentDisposition, `attachment; filename="brygga-deaths.csv"`)
		return c.Send(buf.Bytes())
	}
	return c.JSON(f)
}
