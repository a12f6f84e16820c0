package server

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
)

// defaultWaitDays is how long a referral may wait for an answer before
// the dashboard flags it, unless the manager chooses otherwise.
const defaultWaitDays = 14

// referralRow is a referral as the follow-up lists show it.
type referralRow struct {
	ID, Date, From, To, Service, Status, StatusCode string
	Days                                            int
	Waiting, Open                                   bool
	Next                                            []choice
	at                                              time.Time
}

type choice struct{ Code, Label string }

// nextStatuses are the statuses a referral of status cur may move on to:
// later in its lifecycle, and closed only once attended. A closed
// referral has none.
func nextStatuses(cur schema.ReferralStatus, l schema.Lang) []choice {
	var out []choice
	for _, o := range schema.ReferralStatusEnum.Options {
		next := schema.ReferralStatus(o.Code)
		if next.Rank() > cur.Rank() && (next != schema.StatusClosed || cur.Closes()) {
			out = append(out, choice{Code: o.Code, Label: o.Label(l)})
		}
	}
	return out
}

// open reports whether a referral still waits for the receiving side.
func openStatus(st schema.ReferralStatus) bool {
	return st == schema.StatusSent || st == schema.StatusReceived
}

// unitLabels names every unit with its organisation, for referrals that
// cross organisations.
func (s *Server) unitLabels(ctx context.Context) (map[uuid.UUID]string, error) {
	orgs, err := s.Organisations(ctx)
	if err != nil {
		return nil, err
	}
	orgName := map[uuid.UUID]string{}
	for _, o := range orgs {
		orgName[o.ID] = o.Name
	}
	units, err := s.Units(ctx, uuid.Nil)
	if err != nil {
		return nil, err
	}
	out := map[uuid.UUID]string{}
	for _, u := range units {
		out[u.ID] = u.Name + " (" + orgName[u.OrgID] + ")"
	}
	return out, nil
}

func (s *Server) dashReferrals(c *fiber.Ctx) error {
	l := lang(c)
	ctx := c.UserContext()
	if err := onlyParams(c, "org", "days", "waiting", "changed"); err != nil {
		return err
	}
	org, err := s.dashOrg(c)
	if err != nil {
		return err
	}
	days := defaultWaitDays
	if v := c.Query("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 365 {
			return badParam(l, "days", "want_days")
		}
		days = n
	}
	onlyWaiting := false
	switch c.Query("waiting") {
	case "":
	case "1":
		onlyWaiting = true
	default:
		return badParam(l, "waiting", "want_waiting")
	}
	_, units, err := s.unitNames(ctx, org.ID)
	if err != nil {
		return err
	}
	labels, err := s.unitLabels(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	row := func(r *schema.Referral, incoming bool) referralRow {
		age := int(now.Sub(r.OccurredAt).Hours() / 24)
		row := referralRow{ID: r.ID.String(), Date: formatDay(r.OccurredAt), From: labels[r.UnitID], To: labels[r.ToUnitID],
			Service: schema.ServiceCategoryEnum.Label(string(r.Service), l), Status: schema.ReferralStatusEnum.Label(string(r.Status), l),
			StatusCode: string(r.Status), Days: age, Open: openStatus(r.Status), at: r.OccurredAt}
		row.Waiting = row.Open && age > days
		if incoming {
			row.Next = nextStatuses(r.Status, l)
		}
		return row
	}
	var in, out []referralRow
	summary := map[string]int{}
	for _, u := range units {
		recs, err := s.referralsOf(ctx, "to_unit_id", u.ID)
		if err != nil {
			return err
		}
		for _, r := range recs {
			in = append(in, row(r, true))
		}
		recs, err = s.referralsOf(ctx, "unit_id", u.ID)
		if err != nil {
			return err
		}
		for _, r := range recs {
			out = append(out, row(r, false))
			summary[string(r.Status)]++
		}
	}
	// Open ones first, the oldest first; then the others, the newest first.
	order := func(rows []referralRow) {
		sort.SliceStable(rows, func(i, j int) bool {
			a, b := rows[i], rows[j]
			if a.Open != b.Open {
				return a.Open
			}
			if a.Open {
				return a.at.Before(b.at)
			}
			return a.at.After(b.at)
		})
	}
	order(in)
	order(out)
	waitingIn, waitingOut := 0, 0
	for _, r := range in {
		if r.Open {
			waitingIn++
		}
	}
	shown := out[:0:0]
	for _, r := range out {
		if r.Waiting {
			waitingOut++
		}
		if r.Waiting || !onlyWaiting {
			shown = append(shown, r)
		}
	}
	var statusSummary []choice
	for _, o := range schema.ReferralStatusEnum.Options {
		statusSummary = append(statusSummary, choice{Code: strconv.Itoa(summary[o.Code]), Label: o.Label(l)})
	}
	data := map[string]any{"Incoming": in, "Outgoing": shown, "Days": days, "WaitingIn": waitingIn, "WaitingOut": waitingOut,
		"StatusSummary": statusSummary, "Sent": len(out), "OnlyWaiting": onlyWaiting}
	if id := c.Query("changed"); id != "" {
		if _, err := uuid.Parse(id); err != nil {
			return badParam(l, "changed", "want_id")
		}
		data["Changed"] = id
	}
	return s.render(c, "referrals", l, data)
}

// referralsOf returns the live referrals whose column (unit_id: sent by
// the unit; to_unit_id: sent to it) is unit, the newest 500.
func (s *Server) referralsOf(ctx context.Context, column string, unit uuid.UUID) ([]*schema.Referral, error) {
	if column != "unit_id" && column != "to_unit_id" {
		return nil, fmt.Errorf("referrals of %s: unknown column", column)
	}
	ids, err := s.store.ReferralIDs(ctx, unit, column == "to_unit_id", 500)
	if err != nil {
		return nil, err
	}
	var out []*schema.Referral
	for _, id := range ids {
		rec, err := s.Record(ctx, schema.KindReferral, id)
		if err != nil {
			return nil, err
		}
		out = append(out, rec.(*schema.Referral))
	}
	return out, nil
}

// dashReferralStatus moves a referral addressed to one of the manager's
// units along its lifecycle, in two steps: the page says what will change
// and asks; the POST with confirm=yes changes it. Devices receive the
// change like any other.
func (s *Server) dashReferralStatus(c *fiber.Ctx) error {
	l := lang(c)
	ctx := c.UserContext()
	p := dashPrincipal(c)
	if err := onlyParams(c, "org", "status"); err != nil {
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
	rec, err := s.Record(ctx, schema.KindReferral, id)
	if err != nil {
		return err
	}
	ref := rec.(*schema.Referral)
	if err := s.unitInScope(ctx, p, ref.ToUnitID); err != nil || ref.Voided {
		return &pageError{status: fiber.StatusNotFound, msg: text("err_404", l)}
	}
	status := schema.ReferralStatus(c.FormValue("status"))
	if c.Method() == fiber.MethodGet {
		status = schema.ReferralStatus(c.Query("status"))
	}
	next := nextStatuses(ref.Status, l)
	valid := false
	for _, n := range next {
		valid = valid || n.Code == string(status)
	}
	if !valid {
		codes := make([]string, len(next))
		for i, n := range next {
			codes[i] = n.Code
		}
		if len(codes) == 0 {
			return &pageError{status: fiber.StatusBadRequest, msg: text("no_next_status", l)}
		}
		return badParam(l, "status", "want_status", strings.Join(codes, ", "))
	}
	if c.Method() == fiber.MethodPost && c.FormValue("confirm") == "yes" {
		fields, _ := json.Marshal(map[string]any{"status": status, "reopened": ref.Reopened})
		if err := s.store.Write(ctx, schema.KindReferral, id, fields); err != nil {
			return err
		}
		s.audit(ctx, p.Actor(), "referral_status", "referral:"+id.String(), "ok", 1, requestID(c))
		return c.Redirect(dashURL(c, "/dashboard/referrals?changed="+id.String()), fiber.StatusSeeOther)
	}
	labels, err := s.unitLabels(ctx)
	if err != nil {
		return err
	}
	_ = org
	return s.render(c, "referral_confirm", l, map[string]any{
		"Title": text("confirm_status", l), "ID": id.String(), "Status": string(status),
		"From": labels[ref.UnitID], "To": labels[ref.ToUnitID], "Date": formatDay(ref.OccurredAt),
		"Service": schema.ServiceCategoryEnum.Label(string(ref.Service), l),
		"Old":     schema.ReferralStatusEnum.Label(string(ref.Status), l), "New": schema.ReferralStatusEnum.Label(string(status), l),
		"Action": dashURL(c, "/dashboard/referrals/"+id.String()+"/status"), "Cancel": dashURL(c, "/dashboard/referrals"),
	})
}
