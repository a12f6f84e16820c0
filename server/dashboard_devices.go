package server

import (
	"encoding/base64"
	"errors"
	"sort"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/brygga/brygga/schema"
)

type deviceRow struct {
	ID, Short, Name, Unit, LastSync, Enrolled string
	Stale, Revoked                            bool
	Rejected                                  int
	lifecycleRow
}

// deviceRowOf is a device as the dashboard shows it.
func deviceRowOf(d DeviceInfo, units map[uuid.UUID]string, l schema.Lang) deviceRow {
	r := deviceRow{ID: d.ID.String(), Short: d.ID.String()[24:], Name: d.Name, Unit: units[d.UnitID], Rejected: d.Rejected,
		Revoked: d.RevokedAt != nil, LastSync: text("never", l), Enrolled: formatDay(d.EnrolledAt), lifecycleRow: lifecycleRowOf(d, l)}
	if d.LastSyncAt != nil {
		r.LastSync = formatTime(*d.LastSyncAt)
	}
	return r
}

func (s *Server) dashDevices(c *fiber.Ctx) error {
	l := lang(c)
	if err := onlyParams(c, "org", "named"); err != nil {
		return err
	}
	org, err := s.dashOrg(c)
	if err != nil {
		return err
	}
	devs, err := s.DevicesOf(c.UserContext(), org.ID)
	if err != nil {
		return err
	}
	names, _, err := s.unitNames(c.UserContext(), org.ID)
	if err != nil {
		return err
	}
	var rows []deviceRow
	stale := 0
	for _, d := range devs {
		r := deviceRowOf(d, names, l)
		r.Stale = d.State == StateActive && isStale(d, s.now())
		if r.Stale {
			stale++
		}
		rows = append(rows, r)
	}
	rank := map[string]int{StateActive: 0, StateRetired: 1, StateLost: 2}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if rank[a.State] != rank[b.State] {
			return rank[a.State] < rank[b.State]
		}
		if a.Unit != b.Unit {
			return a.Unit < b.Unit
		}
		return a.Name+a.Short < b.Name+b.Short
	})
	data := map[string]any{"Devices": rows, "Stale": stale}
	if id := c.Query("named"); id != "" {
		if _, err := uuid.Parse(id); err != nil {
			return badParam(l, "named", "want_id")
		}
		data["Named"] = id
	}
	return s.render(c, "devices", l, data)
}

// dashDeviceName shows the form that names a tablet, and saves the name.
func (s *Server) dashDeviceName(c *fiber.Ctx) error {
	l := lang(c)
	p := dashPrincipal(c)
	if err := onlyParams(c, "org"); err != nil {
		return err
	}
	org, err := s.dashOrg(c)
	if err != nil {
		return err
	}
	id, err := uuid.Parse(c.Params("id"))
	if err != nil {
		return &pageError{status: fiber.StatusNotFound, msg: text("err_404", l)}
	}
	d, err := s.Device(c.UserContext(), scopeOrg(p), id)
	if err != nil {
		return err
	}
	names, _, err := s.unitNames(c.UserContext(), org.ID)
	if err != nil {
		return err
	}
	if names[d.UnitID] == "" && p.Role != RoleAdmin {
		return &pageError{status: fiber.StatusNotFound, msg: text("err_404", l)}
	}
	data := map[string]any{"Device": deviceRowOf(*d, names, l), "Value": d.Name, "Max": MaxDeviceName,
		"Title": text("name_tablet", l), "Action": dashURL(c, "/dashboard/devices/"+d.ID.String()+"/name")}
	if c.Method() == fiber.MethodPost {
		name := c.FormValue("name")
		err := s.SetDeviceName(c.UserContext(), scopeOrg(p), d.ID, name, p.Actor())
		if err == nil {
			return c.Redirect(dashURL(c, "/dashboard/devices?named="+d.ID.String()), fiber.StatusSeeOther)
		}
		if !errors.Is(err, errDeviceName) {
			return err
		}
		data["Value"], data["Error"] = name, text("name_invalid", l)
		c.Status(fiber.StatusBadRequest)
	}
	return s.render(c, "device_name", l, data)
}

func (s *Server) dashEnrol(c *fiber.Ctx) error {
	l := lang(c)
	p := dashPrincipal(c)
	if err := onlyParams(c, "org"); err != nil {
		return err
	}
	org, err := s.dashOrg(c)
	if err != nil {
		return err
	}
	names, units, err := s.unitNames(c.UserContext(), org.ID)
	if err != nil {
		return err
	}
	data := map[string]any{"Units": units}
	if c.Method() == fiber.MethodPost {
		unit, err := uuid.Parse(c.FormValue("unit_id"))
		if err != nil || names[unit] == "" {
			return badParam(l, "unit_id", "want_unit")
		}
		code, err := s.NewEnrolCode(c.UserContext(), unit, p.Actor())
		if err != nil {
			return err
		}
		png, err := qrcode.Encode(code.QRPayload, qrcode.Medium, 240)
		if err != nil {
			return err
		}
		data["UnitName"] = names[unit]
		data["Code"] = map[string]string{"Code": code.Code, "Until": code.ExpiresAt.In(stockholm).Format("15:04"),
			"PNG": base64.StdEncoding.EncodeToString(png)}
	}
	return s.render(c, "enrol", l, data)
}

// dashCards shows a sheet of fresh client cards to print: ?count= cards
// (12 unless given, at most 60).
func (s *Server) dashCards(c *fiber.Ctx) error {
	l := lang(c)
	if err := onlyParams(c, "org", "count"); err != nil {
		return err
	}
	if _, err := s.dashOrg(c); err != nil {
		return err
	}
	count := 12
	if v := c.Query("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 60 {
			return badParam(l, "count", "want_count")
		}
		count = n
	}
	cards, err := NewClientCards(count)
	if err != nil {
		return err
	}
	type card struct{ Code, PNG string }
	var out []card
	for _, k := range cards {
		out = append(out, card{Code: string(k.Code), PNG: base64.StdEncoding.EncodeToString(k.PNG)})
	}
	return s.render(c, "cards", l, map[string]any{"Cards": out, "Count": count})
}
