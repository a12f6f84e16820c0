package main

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
)

// stringList collects a repeated string flag.
type stringList []string

// String returns the values, comma separated.
func (s *stringList) String() string { return strings.Join(*s, ",") }

// Set adds one value.
func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// simCounts counts what a simulation recorded.
type simCounts struct {
	Contacts    int `json:"contacts"`
	Exchanges   int `json:"syringe_exchanges"`
	Naloxone    int `json:"naloxone_handouts"`
	Reversals   int `json:"reversals"`
	Referrals   int `json:"referrals"`
	Clients     int `json:"clients"`
	Corrections int `json:"corrections"`
	Voids       int `json:"voids"`
}

// records returns how many records were created.
func (c simCounts) records() int {
	return c.Contacts + c.Exchanges + c.Naloxone + c.Reversals + c.Referrals + c.Clients
}

func (c *simCounts) add(o simCounts) {
	c.Contacts += o.Contacts
	c.Exchanges += o.Exchanges
	c.Naloxone += o.Naloxone
	c.Reversals += o.Reversals
	c.Referrals += o.Referrals
	c.Clients += o.Clients
	c.Corrections += o.Corrections
	c.Voids += o.Voids
}

// simReport is what simulate prints.
type simReport struct {
	Devices int    `json:"devices"`
	Days    int    `json:"days"`
	Seed    uint64 `json:"seed"`
	Dir     string `json:"dir,omitempty"`
	Records int    `json:"records"`
	simCounts
	// Mutations is how many changes were queued before the sync; Pushed
	// how many the server answered, Rejected how many of those it refused
	// and Pending how many are left queued.
	Mutations     int     `json:"mutations"`
	Pushed        int64   `json:"pushed"`
	Rejected      int     `json:"rejected"`
	Pending       int     `json:"pending"`
	EnrolSeconds  float64 `json:"enrol_seconds"`
	RecordSeconds float64 `json:"record_seconds"`
	SyncSeconds   float64 `json:"sync_seconds"`
	Seconds       float64 `json:"seconds"`
}

func (c *cli) simulate(args []string) error {
	fs := c.flags("simulate")
	server := fs.String("server", "", "the server's `URL`")
	devices := fs.Int("devices", 1, "how many devices to enrol")
	days := fs.Int("days", 7, "how many past days of field work to replay")
	var codeList stringList
	fs.Var(&codeList, "code", "a one-time enrolment `code`, repeatable: one per device")
	fs.Var(&codeList, "enroll-code", "the same as --code")
	codesFile := fs.String("codes-file", "", "a `file` of enrolment codes, one per line")
	login := fs.String("login", "", "make the codes that are missing as this manager (or admin) `username`, the password read from standard input")
	unit := fs.String("unit", "", "with --login, the unit `id` to enrol the devices in (default the manager's)")
	dir := fs.String("dir", "", "keep the devices' replicas in `dir` (default a temporary directory, removed afterwards)")
	seed := fs.Uint64("seed", 1, "the random `seed`: the same seed replays the same field work")
	parallel := fs.Int("parallel", 8, "how many devices work at once")
	asJSON := fs.Bool("json", false, "print the totals as JSON")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if u, err := url.Parse(*server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("--server %q is not an http or https URL", *server)
	}
	if *devices < 1 || *devices > 10000 {
		return usagef("--devices must be 1 to 10000")
	}
	if *days < 1 || *days > 365 {
		return usagef("--days must be 1 to 365")
	}
	if *parallel < 1 {
		return usagef("--parallel must be positive")
	}
	enrolCodes := []string(codeList)
	if *codesFile != "" {
		more, err := readCodes(*codesFile)
		if err != nil {
			return err
		}
		enrolCodes = append(enrolCodes, more...)
	}
	unitID, err := parseID("unit", *unit, false)
	if err != nil {
		return err
	}
	if missing := *devices - len(enrolCodes); missing > 0 && *login != "" {
		password, err := readPassword(c.stdin)
		if err != nil {
			return err
		}
		more, err := brygga.EnrolCodes(c.ctx, *server, *login, password, unitID, missing, nil)
		if err != nil {
			return err
		}
		enrolCodes = append(enrolCodes, more...)
	}
	if len(enrolCodes) < *devices {
		return usagef("%d devices need %d one-time enrolment codes (--login, --code or --codes-file), got %d", *devices, *devices, len(enrolCodes))
	}

	root := *dir
	if root == "" {
		tmp, err := os.MkdirTemp("", "brygga-simulate-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		root = tmp
	} else if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}

	start := time.Now()
	sims := make([]*simDevice, *devices)
	defer func() {
		for _, d := range sims {
			if d != nil && d.cl != nil {
				d.cl.Close()
			}
		}
	}()
	err = forEach(c.ctx, *devices, *parallel, func(i int) error {
		d := &simDevice{n: i + 1, rng: rand.New(rand.NewPCG(*seed, uint64(i)))}
		sims[i] = d
		return d.enrol(c.ctx, filepath.Join(root, fmt.Sprintf("device-%03d.db", i+1)), *server, enrolCodes[i])
	})
	if err != nil {
		return err
	}
	enrolled := time.Now()

	today := time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, time.Local)
	if err := forEach(c.ctx, *devices, *parallel, func(i int) error {
		return sims[i].replay(c.ctx, today, *days)
	}); err != nil {
		return err
	}
	recorded := time.Now()

	if err := forEach(c.ctx, *devices, *parallel, func(i int) error {
		return sims[i].sync(c.ctx)
	}); err != nil {
		return err
	}
	synced := time.Now()

	rep := simReport{Devices: *devices, Days: *days, Seed: *seed, Dir: *dir,
		EnrolSeconds:  enrolled.Sub(start).Seconds(),
		RecordSeconds: recorded.Sub(enrolled).Seconds(),
		SyncSeconds:   synced.Sub(recorded).Seconds(),
		Seconds:       synced.Sub(start).Seconds(),
	}
	for _, d := range sims {
		rep.simCounts.add(d.counts)
		rep.Mutations += d.mutations
		rep.Pushed += d.pushed
		rep.Rejected += d.rejected
		rep.Pending += d.pending
	}
	rep.Records = rep.simCounts.records()
	if *asJSON {
		return writeJSON(c.stdout, rep)
	}
	w := c.stdout
	fmt.Fprintf(w, "simulated %d devices over %d days (seed %d)\n", rep.Devices, rep.Days, rep.Seed)
	fmt.Fprintf(w, "  records made  %d: %d contacts, %d syringe exchanges, %d naloxone handouts, %d reversals, %d referrals, %d clients\n",
		rep.Records, rep.Contacts, rep.Exchanges, rep.Naloxone, rep.Reversals, rep.Referrals, rep.Clients)
	fmt.Fprintf(w, "  changes       %d corrections, %d voids\n", rep.Corrections, rep.Voids)
	fmt.Fprintf(w, "  synced        %d of %d mutations pushed, %d rejected, %d pending\n", rep.Pushed, rep.Mutations, rep.Rejected, rep.Pending)
	fmt.Fprintf(w, "  seconds       %.2f (enrol %.2f, record %.2f, sync %.2f)\n", rep.Seconds, rep.EnrolSeconds, rep.RecordSeconds, rep.SyncSeconds)
	if *dir != "" {
		fmt.Fprintf(w, "  replicas in   %s\n", *dir)
	}
	return nil
}

// readCodes reads enrolment codes, one per line; blank lines and lines
// starting with # are skipped.
func readCodes(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}

// forEach runs fn for 0..n-1, at most parallel at once, and returns every
// failure joined.
func forEach(ctx context.Context, n, parallel int, fn func(i int) error) error {
	sem := make(chan struct{}, parallel)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := ctx.Err(); err != nil {
				errs[i] = err
				return
			}
			if err := fn(i); err != nil {
				errs[i] = fmt.Errorf("device %d: %w", i+1, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// simDevice is one simulated tablet.
type simDevice struct {
	n       int
	rng     *rand.Rand
	cl      *brygga.Client
	unit    *schema.Unit
	staff   []*schema.Staff
	targets []*schema.Unit // units it refers to
	offers  map[uuid.UUID][]schema.ServiceCategory
	clients []*schema.Client

	counts    simCounts
	mutations int   // queued before the sync
	pushed    int64 // as the sync's progress reported
	rejected  int
	pending   int
}

// enrol enrols the device with code and fetches the reference data.
func (d *simDevice) enrol(ctx context.Context, path, server, code string) error {
	opts := &brygga.Options{OnProgress: func(p brygga.Progress) {
		if p.Phase == "push" {
			d.pushed = p.Done
		}
	}}
	cl, err := brygga.Open(ctx, path, opts)
	if err != nil {
		return err
	}
	d.cl = cl
	if err := cl.Enroll(ctx, server, code); err != nil {
		return err
	}
	if err := cl.Sync(ctx); err != nil {
		return err
	}
	units, err := cl.Units(ctx)
	if err != nil {
		return err
	}
	for _, u := range units {
		if u.ID == cl.UnitID() {
			d.unit = u
		}
	}
	if d.unit == nil {
		return fmt.Errorf("the unit %s is not in the reference data", cl.UnitID())
	}
	// Referrals go to another organisation's units if there are any, as
	// they do in the field; otherwise to any other unit.
	var others []*schema.Unit
	for _, u := range units {
		if u.ID == d.unit.ID {
			continue
		}
		if u.OrgID != d.unit.OrgID {
			d.targets = append(d.targets, u)
		}
		others = append(others, u)
	}
	if len(d.targets) == 0 {
		d.targets = others
	}
	services, err := cl.Services(ctx)
	if err != nil {
		return err
	}
	d.offers = map[uuid.UUID][]schema.ServiceCategory{}
	for _, s := range services {
		d.offers[s.UnitID] = append(d.offers[s.UnitID], s.Category)
	}
	if d.staff, err = cl.StaffList(ctx); err != nil {
		return err
	}
	if len(d.staff) == 0 {
		return fmt.Errorf("the unit %s has no active staff to record as", d.unit.Name)
	}
	return nil
}

// replay records days of field work, ending yesterday.
func (d *simDevice) replay(ctx context.Context, today time.Time, days int) error {
	for k := days; k >= 1; k-- {
		if err := d.day(ctx, today.AddDate(0, 0, -k)); err != nil {
			return err
		}
	}
	return nil
}

// Working hours of a simulated day.
const (
	workStart = 8 * time.Hour
	workHours = 9 * time.Hour
)

// day records one working day that starts at midnight.
func (d *simDevice) day(ctx context.Context, midnight time.Time) error {
	if err := d.cl.SetStaff(ctx, d.staff[d.rng.IntN(len(d.staff))].ID); err != nil {
		return err
	}
	times := make([]time.Time, 5+d.rng.IntN(26))
	for i := range times {
		times[i] = midnight.Add(workStart + time.Duration(d.rng.Int64N(int64(workHours))))
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for _, t := range times {
		if err := d.visit(ctx, t.UTC().Truncate(time.Millisecond)); err != nil {
			return err
		}
	}
	return nil
}

// choice is an option with its weight.
type choice[T any] struct {
	v T
	w float64
}

// pick returns one of the options, drawn by weight.
func pick[T any](r *rand.Rand, cs []choice[T]) T {
	var total float64
	for _, c := range cs {
		total += c.w
	}
	x := r.Float64() * total
	for _, c := range cs {
		if x < c.w {
			return c.v
		}
		x -= c.w
	}
	return cs[len(cs)-1].v
}

// Distributions of the simulated field work, roughly those of Swedish
// needle exchange and outreach programmes.
var (
	genders = []choice[schema.Gender]{
		{schema.GenderMan, 62}, {schema.GenderWoman, 30}, {schema.GenderOther, 3}, {schema.GenderNotStated, 5},
	}
	ageBands = []choice[schema.AgeBand]{
		{schema.AgeUnder18, 1}, {schema.Age18to24, 9}, {schema.Age25to29, 14}, {schema.Age30to39, 31},
		{schema.Age40to49, 24}, {schema.Age50to64, 16}, {schema.Age65Plus, 2}, {schema.AgeNotStated, 3},
	}
	settings = []choice[schema.Setting]{
		{schema.SettingStreet, 45}, {schema.SettingFixedSite, 30}, {schema.SettingMobileUnit, 12},
		{schema.SettingShelter, 8}, {schema.SettingHomeVisit, 3}, {schema.SettingOther, 2},
	}
	substances = []choice[schema.Substance]{
		{"", 12}, {schema.SubstanceOpioids, 38}, {schema.SubstanceStimulants, 26}, {schema.SubstanceCannabis, 5},
		{schema.SubstanceAlcohol, 8}, {schema.SubstancePrescription, 7}, {schema.SubstanceOther, 2}, {schema.SubstanceNotStated, 2},
	}
	reasons = []choice[schema.NaloxoneReason]{
		{schema.NaloxoneFirstKit, 50}, {schema.NaloxoneUsed, 25}, {schema.NaloxoneLost, 15}, {schema.NaloxoneExpired, 10},
	}
	outcomes = []choice[schema.ReversalOutcome]{
		{schema.OutcomeRecovered, 60}, {schema.OutcomeHospital, 30}, {schema.OutcomeUnknown, 6},
		{schema.OutcomeDied, 1}, {schema.OutcomeNotReported, 3},
	}
	categories = []choice[schema.ServiceCategory]{
		{schema.ServiceAddictionClinic, 30}, {schema.ServiceSocialServices, 20}, {schema.ServiceInfectionClinic, 15},
		{schema.ServiceOpioidSubstitution, 10}, {schema.ServicePrimaryCare, 8}, {schema.ServicePsychiatry, 7},
		{schema.ServiceHousing, 5}, {schema.ServiceDental, 3}, {schema.ServiceOther, 2},
	}
)

// Probabilities per contact.
const (
	pClient       = 0.35 // the person shows a client card
	pNewClient    = 0.20 // of those, a newly registered client
	pExchange     = 0.60
	pNaloxone     = 0.15
	pReversal     = 0.015
	pReferral     = 0.05
	pCorrection   = 0.03 // a contact or an exchange is corrected afterwards
	pVoid         = 0.01 // a contact or an exchange is voided
	pBirthYear    = 0.60 // a new client gives the birth year, not the age band
	pReportedAt   = 0.70 // a reversal reported at a contact
	pNaloxoneUsed = 0.85 // naloxone was used in a reversal
)

// visit records one contact at t and what came of it.
func (d *simDevice) visit(ctx context.Context, t time.Time) error {
	r := d.rng
	con := &schema.Contact{Header: schema.Header{OccurredAt: t}, Setting: pick(r, settings),
		AreaCode: d.unit.AreaCode, Substance: pick(r, substances)}
	if r.Float64() < pClient {
		cl, err := d.client(ctx, t)
		if err != nil {
			return err
		}
		con.ClientCode, con.Gender, con.AgeBand = cl.Code, cl.Gender, cl.AgeBand
		if cl.BirthYear != 0 {
			con.AgeBand = schema.AgeBandOf(cl.BirthYear, t.Year())
		}
	} else {
		con.Gender, con.AgeBand = pick(r, genders), pick(r, ageBands)
	}
	if err := d.add(ctx, con, &d.counts.Contacts); err != nil {
		return err
	}
	if r.Float64() < pCorrection {
		con.Substance = pick(r, substances[1:])
		if err := d.correct(ctx, con, "substance"); err != nil {
			return err
		}
	}

	if r.Float64() < pExchange {
		out := 5 * (1 + r.IntN(10))
		x := &schema.SyringeExchange{Header: schema.Header{OccurredAt: t.Add(time.Minute)}, ContactID: con.ID,
			SyringesOut: out, NeedlesOut: out + 5*r.IntN(4), SyringesReturned: r.IntN(out + 1)}
		x.Supplies = d.supplies(out)
		if err := d.add(ctx, x, &d.counts.Exchanges); err != nil {
			return err
		}
		if r.Float64() < pCorrection {
			x.SyringesReturned = r.IntN(out + 1)
			if err := d.correct(ctx, x, "syringes_returned"); err != nil {
				return err
			}
		}
		if r.Float64() < pVoid {
			if err := d.void(ctx, x.Kind(), x.ID); err != nil {
				return err
			}
		}
	}

	if r.Float64() < pNaloxone {
		reason := pick(r, reasons)
		n := &schema.NaloxoneHandout{Header: schema.Header{OccurredAt: t.Add(2 * time.Minute)}, ContactID: con.ID,
			Doses: 2 * (1 + r.IntN(2)), Reason: reason, TrainingGiven: reason == schema.NaloxoneFirstKit && r.Float64() < 0.8}
		if err := d.add(ctx, n, &d.counts.Naloxone); err != nil {
			return err
		}
	}

	if r.Float64() < pReversal {
		rev := &schema.Reversal{Header: schema.Header{OccurredAt: t.Add(3 * time.Minute)}, EMSCalled: r.Float64() < 0.5,
			Outcome: pick(r, outcomes)}
		if r.Float64() < pReportedAt {
			rev.ContactID = con.ID
		}
		if r.Float64() < pNaloxoneUsed {
			rev.NaloxoneUsed, rev.DosesUsed = true, 1+r.IntN(3)
		}
		if err := d.add(ctx, rev, &d.counts.Reversals); err != nil {
			return err
		}
	}

	if r.Float64() < pReferral && len(d.targets) > 0 {
		to := d.targets[r.IntN(len(d.targets))]
		service := pick(r, categories)
		if offered := d.offers[to.ID]; len(offered) > 0 {
			service = offered[r.IntN(len(offered))]
		}
		ref := &schema.Referral{Header: schema.Header{OccurredAt: t.Add(4 * time.Minute)}, ContactID: con.ID,
			ClientCode: con.ClientCode, Service: service, ToUnitID: to.ID, Status: schema.StatusSent}
		if err := d.add(ctx, ref, &d.counts.Referrals); err != nil {
			return err
		}
	}

	if r.Float64() < pVoid {
		return d.void(ctx, con.Kind(), con.ID)
	}
	return nil
}

// client returns a client for a contact at t: a known one of the device
// or, sometimes, one registered now.
func (d *simDevice) client(ctx context.Context, t time.Time) (*schema.Client, error) {
	r := d.rng
	if len(d.clients) > 0 && r.Float64() >= pNewClient {
		return d.clients[r.IntN(len(d.clients))], nil
	}
	code, err := schema.NewClientCode(crand.Reader)
	if err != nil {
		return nil, err
	}
	cl := &schema.Client{Header: schema.Header{OccurredAt: t}, Code: code, Gender: pick(r, genders)}
	if r.Float64() < pBirthYear {
		cl.BirthYear = t.Year() - 18 - r.IntN(45)
	} else {
		cl.AgeBand = pick(r, ageBands)
	}
	if err := d.add(ctx, cl, &d.counts.Clients); err != nil {
		return nil, err
	}
	d.clients = append(d.clients, cl)
	return cl, nil
}

// supplies returns the other supplies handed out with out syringes.
func (d *simDevice) supplies(out int) schema.Supplies {
	r := d.rng
	s := schema.Supplies{}
	if r.Float64() < 0.7 {
		s[schema.SupplySwabs] = out
	}
	if r.Float64() < 0.4 {
		s[schema.SupplyFilters] = max(out/2, 1)
	}
	if r.Float64() < 0.3 {
		s[schema.SupplyCookers] = 1 + r.IntN(5)
	}
	if r.Float64() < 0.3 {
		s[schema.SupplyWater] = 1 + r.IntN(10)
	}
	if r.Float64() < 0.15 {
		s[schema.SupplySharpsContainer] = 1
	}
	if r.Float64() < 0.2 {
		s[schema.SupplyCondoms] = 2 + r.IntN(9)
	}
	if r.Float64() < 0.1 {
		s[schema.SupplyTestStrips] = 1 + r.IntN(5)
	}
	if r.Float64() < 0.1 {
		s[schema.SupplyFoil] = 1 + r.IntN(5)
	}
	if len(s) == 0 {
		return nil
	}
	return s
}

func (d *simDevice) add(ctx context.Context, rec schema.Record, count *int) error {
	if err := d.cl.Add(ctx, rec); err != nil {
		return err
	}
	*count++
	return nil
}

func (d *simDevice) correct(ctx context.Context, rec schema.Record, field string) error {
	if err := d.cl.Correct(ctx, rec, field); err != nil {
		return err
	}
	d.counts.Corrections++
	return nil
}

func (d *simDevice) void(ctx context.Context, k schema.Kind, id uuid.UUID) error {
	if err := d.cl.Void(ctx, k, id); err != nil {
		return err
	}
	d.counts.Voids++
	return nil
}

// sync pushes what the device recorded and notes the outcome.
func (d *simDevice) sync(ctx context.Context) error {
	before, err := d.cl.Status(ctx)
	if err != nil {
		return err
	}
	d.mutations, d.pushed = before.Pending, 0
	if err := d.cl.Sync(ctx); err != nil {
		return err
	}
	after, err := d.cl.Status(ctx)
	if err != nil {
		return err
	}
	d.pending, d.rejected = after.Pending, len(after.Rejected)-len(before.Rejected)
	return nil
}

// readPassword reads a password from the first line of r.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	if line = strings.TrimRight(line, "\r\n"); line == "" {
		return "", usagef("--login reads the password from standard input: none was given")
	}
	return line, nil
}
