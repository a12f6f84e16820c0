// Command brygga is Brygga's field client for the command line: it records
// outreach work (contacts, syringe exchanges, naloxone, reversals and
// referrals) in a device replica, offline, and syncs it with a server.
//
//	brygga [--db FILE] enroll [--staff ID] SERVER CODE
//	brygga [--db FILE] staff [--set ID]
//	brygga [--db FILE] contact [--setting S] [--client CODE] [--gender G] [--age-band A] [--area NNNN] [--substance S] [--at RFC3339]
//	brygga [--db FILE] exchange --contact ID [--syringes N] [--needles N] [--returned N] [--supply code=N ...] [--at RFC3339]
//	brygga [--db FILE] naloxone --contact ID --doses N [--training] [--reason R] [--at RFC3339]
//	brygga [--db FILE] reversal [--contact ID] [--naloxone-used] [--doses N] [--ems-called] [--outcome O] [--at RFC3339]
//	brygga [--db FILE] refer --service CATEGORY [--to UNIT_ID] [--contact ID] [--client CODE] [--at RFC3339]
//	brygga [--db FILE] referral-status --id ID (--status STATUS | --reopen)
//	brygga [--db FILE] client new [--gender G] [--birth-year YYYY | --age-band A] [--qr]
//	brygga [--db FILE] client show CODE [--json]
//	brygga [--db FILE] void --kind KIND --id ID
//	brygga [--db FILE] sync
//	brygga [--db FILE] status [--json]
//	brygga [--db FILE] dismiss --seq N
//	brygga [--db FILE] list contacts|referrals|units [--json] [--incoming] [--limit N]
//	brygga simulate --server URL --devices N --days D [--login USER [--unit ID] < password | --code CODE ... | --codes-file FILE] [--dir DIR] [--seed N]
//
// It uses only the public API of the SDK that tablet apps embed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	qrcode "github.com/skip2/go-qrcode"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "brygga:", err)
		os.Exit(exitCode(err))
	}
}

// errUsage is matched by every error in how the command was called; such
// errors exit with status 2.
var errUsage = errors.New("usage")

// usagef returns an error matching errUsage.
func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// exitCode returns the process status for an error Run returned: 2 for a
// usage error, 1 for any other.
func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	return 1
}

const usage = `usage: brygga [--db FILE] COMMAND [flags]

Recording (offline):
  contact [--setting S] [--client CODE] [--gender G] [--age-band A] [--area NNNN] [--substance S] [--at RFC3339]
  exchange --contact ID [--syringes N] [--needles N] [--returned N] [--supply code=N ...] [--at RFC3339]
  naloxone --contact ID --doses N [--training] [--reason R] [--at RFC3339]
  reversal [--contact ID] [--naloxone-used] [--doses N] [--ems-called] [--outcome O] [--at RFC3339]
  refer --service CATEGORY [--to UNIT_ID] [--contact ID] [--client CODE] [--at RFC3339]
  referral-status --id ID (--status STATUS | --reopen)
  client new [--gender G] [--birth-year YYYY | --age-band A] [--qr]
  client show CODE [--json]
  void --kind KIND --id ID

Device and sync:
  enroll [--staff ID] SERVER CODE
  reenroll CODE              (a device the server no longer knows: keeps its records and sends them)
  staff [--set ID]
  sync
  status [--json]
  dismiss --seq N
  list contacts|referrals|units [--json] [--incoming] [--limit N]

Load testing:
  simulate --server URL --devices N --days D [--login USER [--unit ID] < password | --code CODE ... | --codes-file FILE] [--dir DIR] [--seed N]

--db is the device's replica file (default brygga.db).
Run "brygga COMMAND -h" for a command's flags.`

// errHelp ends a command whose help was asked for.
var errHelp = errors.New("help requested")

// Run runs the brygga command line with args (without the program name)
// and returns the error to report, if any.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	global := flag.NewFlagSet("brygga", flag.ContinueOnError)
	global.SetOutput(stderr)
	global.Usage = func() { fmt.Fprintln(stderr, usage) }
	db := global.String("db", "brygga.db", "the device's replica `file`")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if global.NArg() == 0 {
		fmt.Fprintln(stderr, usage)
		return usagef("no command given")
	}
	c := &cli{ctx: ctx, db: *db, stdin: stdin, stdout: stdout, stderr: stderr}
	cmd, rest := global.Arg(0), global.Args()[1:]
	commands := map[string]func([]string) error{
		"enroll":          c.enroll,
		"reenroll":        c.reenroll,
		"staff":           c.staff,
		"contact":         c.contact,
		"exchange":        c.exchange,
		"naloxone":        c.naloxone,
		"reversal":        c.reversal,
		"refer":           c.refer,
		"referral-status": c.referralStatus,
		"client":          c.client,
		"void":            c.void,
		"sync":            c.sync,
		"status":          c.status,
		"dismiss":         c.dismiss,
		"list":            c.list,
		"simulate":        c.simulate,
	}
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		fmt.Fprintln(stdout, usage)
		return nil
	}
	run, ok := commands[cmd]
	if !ok {
		fmt.Fprintln(stderr, usage)
		return usagef("unknown command %q", cmd)
	}
	err := run(rest)
	if errors.Is(err, errHelp) {
		return nil
	}
	return explain(err)
}

// cli holds what every command needs.
type cli struct {
	ctx            context.Context
	db             string
	stdin          io.Reader
	stdout, stderr io.Writer
}

// flags returns a flag set for the command name.
func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("brygga "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}

// parse parses args with fs, allowing flags after positional arguments,
// and returns the positional arguments. An argument "--" ends the flags.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseNone parses args that must hold flags only.
func parseNone(fs *flag.FlagSet, args []string) error {
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	return nil
}

// open opens the device's replica.
func (c *cli) open(opts *brygga.Options) (*brygga.Client, error) {
	return brygga.Open(c.ctx, c.db, opts)
}

// openEnrolled opens the device's replica and fails unless the device is
// enrolled.
func (c *cli) openEnrolled(opts *brygga.Options) (*brygga.Client, error) {
	cl, err := c.open(opts)
	if err != nil {
		return nil, err
	}
	if !cl.Enrolled() {
		cl.Close()
		return nil, fmt.Errorf("%s: %w", c.db, brygga.ErrNotEnrolled)
	}
	return cl, nil
}

// parseID parses the id given to the flag name; an empty value is the nil
// id unless required.
func parseID(name, s string, required bool) (uuid.UUID, error) {
	if s == "" {
		if required {
			return uuid.Nil, usagef("--%s is required", name)
		}
		return uuid.Nil, nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, usagef("--%s %q is not an id", name, s)
	}
	return id, nil
}

// parseClientCode reads a client code as typed (forgiving case and
// look-alike characters) or as scanned from a card's QR code. An invalid
// code is a *schema.FieldError of the field client_code of kind.
func parseClientCode(kind schema.Kind, s string) (schema.ClientCode, error) {
	if s == "" {
		return "", nil
	}
	var code schema.ClientCode
	var err error
	if strings.HasPrefix(s, schema.ClientQRPrefix) {
		code, err = schema.ParseClientQR(s)
	} else {
		code, err = schema.ParseClientCode(s)
	}
	if err != nil {
		return "", &schema.FieldError{Kind: kind, Field: "client_code", Rule: schema.RuleClientCode, Message: err.Error()}
	}
	return code, nil
}

// atFlag defines the --at flag of a record made at a contact: by default
// it happened when the contact did, or now if there is none.
func atFlag(fs *flag.FlagSet) *string {
	return fs.String("at", "", "when it happened, RFC 3339 `time` (default the contact's time, or now)")
}

// occurredAt is when a record made at con happened: --at if given, else
// the contact's time (zero, meaning now, without a contact).
func occurredAt(at string, con *schema.Contact) (time.Time, error) {
	if at != "" || con == nil {
		return parseAt(at)
	}
	return con.OccurredAt, nil
}

// parseAt parses the --at flag: empty means now.
func parseAt(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("--at %q is not an RFC 3339 time such as 2025-03-01T14:30:00+01:00", s)
	}
	return t.UTC().Truncate(time.Millisecond), nil
}

// codes returns an enumeration's codes for a flag's help text.
func codes(e *schema.Enumeration) string { return strings.Join(e.Codes(), ", ") }

// requireContact parses the --contact flag and checks that the device
// holds the contact.
func (c *cli) requireContact(cl *brygga.Client, s string, required bool) (*schema.Contact, error) {
	id, err := parseID("contact", s, required)
	if err != nil || id == uuid.Nil {
		return nil, err
	}
	rec, err := cl.Get(c.ctx, schema.KindContact, id)
	if errors.Is(err, brygga.ErrLeaseExpired) {
		// Recording stays possible offline; the server checks the contact.
		return &schema.Contact{Header: schema.Header{ID: id}}, nil
	}
	if errors.Is(err, brygga.ErrNotFound) {
		return nil, fmt.Errorf("contact %s is not on this device: %w", id, err)
	}
	if err != nil {
		return nil, err
	}
	return rec.(*schema.Contact), nil
}

// ownUnit returns the device's unit from the reference data, or nil if
// the device has not received it yet.
func ownUnit(ctx context.Context, cl *brygga.Client) (*schema.Unit, error) {
	units, err := cl.Units(ctx)
	if err != nil {
		return nil, err
	}
	for _, u := range units {
		if u.ID == cl.UnitID() {
			return u, nil
		}
	}
	return nil, nil
}

func (c *cli) enroll(args []string) error {
	fs := c.flags("enroll")
	staff := fs.String("staff", "", "the staff member `id` to record as (needed if the unit has several)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("enroll needs SERVER and CODE, for example: brygga enroll https://brygga.example.org 7K3M-QX2D-V4TB")
	}
	server, code := pos[0], pos[1]
	if u, err := url.Parse(server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("SERVER %q is not an http or https URL", server)
	}
	staffID, err := parseID("staff", *staff, false)
	if err != nil {
		return err
	}
	cl, err := c.open(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Enroll(c.ctx, server, code); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "device %s\n", cl.DeviceID())
	if err := cl.Sync(c.ctx); err != nil {
		fmt.Fprintf(c.stdout, "unit   %s\n", cl.UnitID())
		return fmt.Errorf("enrolled, but fetching the reference data failed (run brygga sync): %w", err)
	}
	unit, err := ownUnit(c.ctx, cl)
	if err != nil {
		return err
	}
	if unit != nil {
		fmt.Fprintf(c.stdout, "unit   %s %s (area %s)\n", unit.ID, unit.Name, unit.AreaCode)
	} else {
		fmt.Fprintf(c.stdout, "unit   %s\n", cl.UnitID())
	}
	staffs, err := cl.StaffList(c.ctx)
	if err != nil {
		return err
	}
	switch {
	case staffID != uuid.Nil:
	case len(staffs) == 1:
		staffID = staffs[0].ID
	default:
		fmt.Fprintf(c.stdout, "the unit has %d staff members; choose who records with: brygga --db %s staff --set ID\n", len(staffs), c.db)
		printStaff(c.stdout, staffs)
		return nil
	}
	if err := cl.SetStaff(c.ctx, staffID); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "staff  %s\n", staffID)
	return nil
}

func printStaff(w io.Writer, staffs []*schema.Staff) {
	for _, s := range staffs {
		fmt.Fprintf(w, "%s\t%s\n", s.ID, s.Role)
	}
}

func (c *cli) staff(args []string) error {
	fs := c.flags("staff")
	set := fs.String("set", "", "make the staff member `id` the one who records on this device")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	id, err := parseID("set", *set, false)
	if err != nil {
		return err
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	if id != uuid.Nil {
		if err := cl.SetStaff(c.ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "staff %s\n", id)
		return nil
	}
	staffs, err := cl.StaffList(c.ctx)
	if err != nil {
		return err
	}
	printStaff(c.stdout, staffs)
	return nil
}

func (c *cli) contact(args []string) error {
	fs := c.flags("contact")
	setting := fs.String("setting", string(schema.SettingStreet), "where it happened: "+codes(schema.SettingEnum))
	client := fs.String("client", "", "the client's `code` or card QR payload; none for an anonymous contact")
	gender := fs.String("gender", string(schema.GenderNotStated), codes(schema.GenderEnum))
	band := fs.String("age-band", string(schema.AgeNotStated), codes(schema.AgeBandEnum))
	area := fs.String("area", "", "four-digit municipality `code` (default the unit's)")
	substance := fs.String("substance", "", "optional: "+codes(schema.SubstanceEnum))
	at := fs.String("at", "", "when it happened, RFC 3339 `time` (default now)")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	when, err := parseAt(*at)
	if err != nil {
		return err
	}
	code, err := parseClientCode(schema.KindContact, *client)
	if err != nil {
		return err
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	if *area == "" {
		unit, err := ownUnit(c.ctx, cl)
		if err != nil && !errors.Is(err, brygga.ErrLeaseExpired) {
			return err
		}
		if unit == nil || unit.AreaCode == "" {
			return fmt.Errorf("the unit's area code is not known yet: run brygga sync, or give --area")
		}
		*area = unit.AreaCode
	}
	rec := &schema.Contact{
		Header:     schema.Header{OccurredAt: when},
		ClientCode: code,
		Gender:     schema.Gender(*gender),
		AgeBand:    schema.AgeBand(*band),
		Setting:    schema.Setting(*setting),
		AreaCode:   *area,
		Substance:  schema.Substance(*substance),
	}
	if err := cl.Add(c.ctx, rec); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, rec.ID)
	return nil
}

// supplyFlag collects repeated --supply code=N flags.
type supplyFlag schema.Supplies

// String returns the supplies as code=N pairs.
func (s supplyFlag) String() string {
	var parts []string
	for k, n := range s {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// Set adds one code=N pair.
func (s supplyFlag) Set(v string) error {
	k, n, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want code=N, got %q", v)
	}
	count, err := strconv.Atoi(n)
	if err != nil {
		return fmt.Errorf("want code=N with a whole number, got %q", v)
	}
	s[schema.Supply(k)] += count
	return nil
}

func (c *cli) exchange(args []string) error {
	fs := c.flags("exchange")
	contact := fs.String("contact", "", "the contact's `id`")
	syringes := fs.Int("syringes", 0, "syringes handed out")
	needles := fs.Int("needles", 0, "needles handed out")
	returned := fs.Int("returned", 0, "used syringes taken back")
	supplies := supplyFlag{}
	fs.Var(supplies, "supply", "other supplies handed out, code=N, repeatable; codes: "+codes(schema.SupplyEnum))
	at := atFlag(fs)
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if _, err := parseID("contact", *contact, true); err != nil {
		return err
	}
	if _, err := parseAt(*at); err != nil {
		return err
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	con, err := c.requireContact(cl, *contact, true)
	if err != nil {
		return err
	}
	when, err := occurredAt(*at, con)
	if err != nil {
		return err
	}
	rec := &schema.SyringeExchange{Header: schema.Header{OccurredAt: when}, ContactID: con.ID,
		SyringesOut: *syringes, NeedlesOut: *needles, SyringesReturned: *returned}
	if len(supplies) > 0 {
		rec.Supplies = schema.Supplies(supplies)
	}
	if err := cl.Add(c.ctx, rec); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, rec.ID)
	return nil
}

func (c *cli) naloxone(args []string) error {
	fs := c.flags("naloxone")
	contact := fs.String("contact", "", "the contact's `id`")
	doses := fs.Int("doses", 0, "doses handed out (a kit of two is 2)")
	training := fs.Bool("training", false, "training was given")
	reason := fs.String("reason", string(schema.NaloxoneFirstKit), codes(schema.NaloxoneReasonEnum))
	at := atFlag(fs)
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if _, err := parseID("contact", *contact, true); err != nil {
		return err
	}
	if _, err := parseAt(*at); err != nil {
		return err
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	con, err := c.requireContact(cl, *contact, true)
	if err != nil {
		return err
	}
	when, err := occurredAt(*at, con)
	if err != nil {
		return err
	}
	rec := &schema.NaloxoneHandout{Header: schema.Header{OccurredAt: when}, ContactID: con.ID,
		Doses: *doses, TrainingGiven: *training, Reason: schema.NaloxoneReason(*reason)}
	if err := cl.Add(c.ctx, rec); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, rec.ID)
	return nil
}

func (c *cli) reversal(args []string) error {
	fs := c.flags("reversal")
	contact := fs.String("contact", "", "the contact's `id`, if the report came at one")
	used := fs.Bool("naloxone-used", false, "naloxone was used")
	doses := fs.Int("doses", 0, "doses of naloxone used")
	ems := fs.Bool("ems-called", false, "an ambulance was called")
	outcome := fs.String("outcome", string(schema.OutcomeNotReported), codes(schema.ReversalOutcomeEnum))
	at := atFlag(fs)
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if _, err := parseID("contact", *contact, false); err != nil {
		return err
	}
	if _, err := parseAt(*at); err != nil {
		return err
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	rec := &schema.Reversal{NaloxoneUsed: *used, DosesUsed: *doses, EMSCalled: *ems, Outcome: schema.ReversalOutcome(*outcome)}
	con, err := c.requireContact(cl, *contact, false)
	if err != nil {
		return err
	}
	if con != nil {
		rec.ContactID = con.ID
	}
	if rec.OccurredAt, err = occurredAt(*at, con); err != nil {
		return err
	}
	if err := cl.Add(c.ctx, rec); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, rec.ID)
	return nil
}

func (c *cli) refer(args []string) error {
	fs := c.flags("refer")
	service := fs.String("service", "", "service `category`: "+codes(schema.ServiceCategoryEnum))
	to := fs.String("to", "", "the receiving unit's `id` (default the only other unit offering the service)")
	contact := fs.String("contact", "", "the contact's `id` the referral was made at")
	client := fs.String("client", "", "the client's `code` (default the contact's)")
	at := atFlag(fs)
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if _, err := parseAt(*at); err != nil {
		return err
	}
	if *service == "" {
		return usagef("--service is required: %s", codes(schema.ServiceCategoryEnum))
	}
	toID, err := parseID("to", *to, false)
	if err != nil {
		return err
	}
	if _, err := parseID("contact", *contact, false); err != nil {
		return err
	}
	code, err := parseClientCode(schema.KindReferral, *client)
	if err != nil {
		return err
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	rec := &schema.Referral{Service: schema.ServiceCategory(*service), ClientCode: code, Status: schema.StatusSent}
	con, err := c.requireContact(cl, *contact, false)
	if err != nil {
		return err
	}
	if con != nil {
		rec.ContactID = con.ID
		if rec.ClientCode == "" {
			rec.ClientCode = con.ClientCode
		}
	}
	if rec.OccurredAt, err = occurredAt(*at, con); err != nil {
		return err
	}
	units, err := cl.Units(c.ctx)
	if errors.Is(err, brygga.ErrLeaseExpired) && toID != uuid.Nil {
		// Recording stays possible offline; the server checks the unit.
		units, err = nil, nil
	}
	if err != nil {
		return err
	}
	if toID == uuid.Nil {
		if toID, err = c.serviceUnit(cl, units, rec.Service); err != nil {
			return err
		}
	} else if units != nil && !slices.ContainsFunc(units, func(u *schema.Unit) bool { return u.ID == toID }) {
		return fmt.Errorf("unit %s is not an active unit in the reference data (brygga list units): %w", toID, brygga.ErrNotFound)
	}
	rec.ToUnitID = toID
	if err := cl.Add(c.ctx, rec); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, rec.ID)
	return nil
}

// serviceUnit returns the only unit other than the device's own that
// offers the service category, or a usage error naming the choices.
func (c *cli) serviceUnit(cl *brygga.Client, units []*schema.Unit, cat schema.ServiceCategory) (uuid.UUID, error) {
	services, err := cl.Services(c.ctx)
	if err != nil {
		return uuid.Nil, err
	}
	var ids []uuid.UUID
	for _, s := range services {
		if s.Category == cat && s.UnitID != cl.UnitID() && !slices.Contains(ids, s.UnitID) {
			ids = append(ids, s.UnitID)
		}
	}
	if len(ids) == 1 {
		return ids[0], nil
	}
	names := make([]string, 0, len(ids))
	for _, id := range ids {
		name := id.String()
		for _, u := range units {
			if u.ID == id {
				name += " (" + u.Name + ")"
			}
		}
		names = append(names, name)
	}
	if len(ids) == 0 {
		return uuid.Nil, usagef("--to is required: no other unit lists the service %q (brygga list units)", cat)
	}
	return uuid.Nil, usagef("--to is required: %d units offer %q: %s", len(ids), cat, strings.Join(names, ", "))
}

func (c *cli) referralStatus(args []string) error {
	fs := c.flags("referral-status")
	id := fs.String("id", "", "the referral's `id`")
	status := fs.String("status", "", "the new status: "+codes(schema.ReferralStatusEnum))
	reopen := fs.Bool("reopen", false, "reopen the referral: its status goes back to sent")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	refID, err := parseID("id", *id, true)
	if err != nil {
		return err
	}
	if (*status == "") == !*reopen {
		return usagef("give either --status or --reopen")
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	if *reopen {
		if err := cl.ReopenReferral(c.ctx, refID); err != nil {
			return err
		}
	} else if err := cl.SetReferralStatus(c.ctx, refID, schema.ReferralStatus(*status)); err != nil {
		return err
	}
	rec, err := cl.Get(c.ctx, schema.KindReferral, refID)
	if err != nil {
		return err
	}
	ref := rec.(*schema.Referral)
	fmt.Fprintf(c.stdout, "%s %s\n", ref.ID, ref.Status)
	return nil
}

func (c *cli) client(args []string) error {
	if len(args) == 0 || (args[0] != "new" && args[0] != "show") {
		return usagef("client needs a subcommand: new or show")
	}
	if args[0] == "show" {
		return c.clientShow(args[1:])
	}
	fs := c.flags("client new")
	gender := fs.String("gender", string(schema.GenderNotStated), codes(schema.GenderEnum))
	birth := fs.Int("birth-year", 0, "the client's birth `year`")
	band := fs.String("age-band", "", "the client's age band, instead of the birth year: "+codes(schema.AgeBandEnum))
	qr := fs.Bool("qr", false, "also draw the card's QR code")
	if err := parseNone(fs, args[1:]); err != nil {
		return err
	}
	if *birth != 0 && *band != "" {
		return usagef("give --birth-year or --age-band, not both")
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	rec, err := cl.NewClient(c.ctx, schema.Gender(*gender), *birth, schema.AgeBand(*band))
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, rec.Code)
	fmt.Fprintln(c.stdout, rec.Code.QRPayload())
	if *qr {
		q, err := qrcode.New(rec.Code.QRPayload(), qrcode.Medium)
		if err != nil {
			return err
		}
		fmt.Fprint(c.stdout, q.ToSmallString(false))
	}
	return nil
}

func (c *cli) clientShow(args []string) error {
	fs := c.flags("client show")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("client show needs one client CODE")
	}
	code, err := parseClientCode(schema.KindClient, pos[0])
	if err != nil {
		return err
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	h, err := cl.ClientHistory(c.ctx, string(code))
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, h)
	}
	if h.Client != nil {
		fmt.Fprintf(c.stdout, "client %s registered %s, gender %s", h.Client.Code, h.Client.OccurredAt.Local().Format("2006-01-02"), h.Client.Gender)
		if h.Client.BirthYear != 0 {
			fmt.Fprintf(c.stdout, ", born %d", h.Client.BirthYear)
		}
		if h.Client.AgeBand != "" {
			fmt.Fprintf(c.stdout, ", age %s", h.Client.AgeBand)
		}
		fmt.Fprintln(c.stdout)
	} else {
		fmt.Fprintf(c.stdout, "client %s is not registered in this unit\n", code)
	}
	fmt.Fprintf(c.stdout, "%d contacts, %d referrals\n", len(h.Contacts), len(h.Referrals))
	units, _ := cl.Units(c.ctx)
	printContacts(c.stdout, h.Contacts)
	printReferrals(c.stdout, h.Referrals, units, false)
	return nil
}

// kinds maps the names void accepts to record kinds.
var kinds = map[string]schema.Kind{
	"client": schema.KindClient, "contact": schema.KindContact, "exchange": schema.KindSyringeExchange,
	"syringe_exchange": schema.KindSyringeExchange, "naloxone": schema.KindNaloxone,
	"naloxone_handout": schema.KindNaloxone, "reversal": schema.KindReversal, "referral": schema.KindReferral,
}

func init() {
	for _, k := range []schema.Kind{schema.KindClient, schema.KindContact, schema.KindSyringeExchange,
		schema.KindNaloxone, schema.KindReversal, schema.KindReferral} {
		kinds[string(k)] = k
	}
}

func (c *cli) void(args []string) error {
	fs := c.flags("void")
	kind := fs.String("kind", "", "the record's `kind`: contact, exchange, naloxone, reversal, referral or client")
	id := fs.String("id", "", "the record's `id`")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	k, ok := kinds[*kind]
	if !ok {
		return usagef("--kind %q is not a kind of record: contact, exchange, naloxone, reversal, referral or client", *kind)
	}
	recID, err := parseID("id", *id, true)
	if err != nil {
		return err
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Void(c.ctx, k, recID); err != nil {
		if errors.Is(err, brygga.ErrNotFound) {
			return fmt.Errorf("%s %s is not on this device: %w", k, recID, err)
		}
		return err
	}
	fmt.Fprintf(c.stdout, "voided %s %s\n", k, recID)
	return nil
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws a sync's progress on a terminal, one line per phase.
type progressBar struct {
	w     io.Writer
	phase string
	width int
}

// update redraws the bar for p.
func (b *progressBar) update(p brygga.Progress) {
	if b.phase != "" && b.phase != p.Phase {
		fmt.Fprintln(b.w)
	}
	b.phase = p.Phase
	fmt.Fprint(b.w, "\r"+renderBar(p, b.width)+"\x1b[K")
}

// finish ends the last line.
func (b *progressBar) finish() {
	if b.phase != "" {
		fmt.Fprintln(b.w)
		b.phase = ""
	}
}

// renderBar returns one line of progress: the phase, a bar width wide and
// the counts.
func renderBar(p brygga.Progress, width int) string {
	frac := 1.0
	if p.Total > 0 {
		frac = float64(min(max(p.Done, 0), p.Total)) / float64(p.Total)
	}
	n := int(frac*float64(width) + 0.5)
	return fmt.Sprintf("%-4s [%s%s] %d/%d", p.Phase, strings.Repeat("#", n), strings.Repeat(".", width-n), p.Done, p.Total)
}

// syncCounts records what a sync's progress reports said.
type syncCounts struct {
	pushed, pulled int64
}

func (s *syncCounts) observe(p brygga.Progress) {
	switch p.Phase {
	case "push":
		s.pushed = p.Done
	case "pull":
		s.pulled = p.Done
	}
}

func (c *cli) sync(args []string) error {
	fs := c.flags("sync")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	var counts syncCounts
	var bar *progressBar
	if isTerminal(c.stdout) {
		bar = &progressBar{w: c.stdout, width: 30}
	}
	opts := &brygga.Options{OnProgress: func(p brygga.Progress) {
		counts.observe(p)
		if bar != nil {
			bar.update(p)
		}
	}}
	cl, err := c.openEnrolled(opts)
	if err != nil {
		return err
	}
	defer cl.Close()
	before, err := cl.Status(c.ctx)
	if err != nil {
		return err
	}
	err = cl.Sync(c.ctx)
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return err
	}
	after, err := cl.Status(c.ctx)
	if err != nil {
		return err
	}
	fresh := len(after.Rejected) - len(before.Rejected)
	fmt.Fprintf(c.stdout, "pushed %d, pulled %d; %d pending, %d rejected\n", counts.pushed, counts.pulled, after.Pending, max(fresh, 0))
	for _, r := range after.Rejected[:max(fresh, 0)] {
		fmt.Fprintf(c.stdout, "  rejected %s %s: %s\n", r.Kind, r.ID, rejection(string(r.Error.Code), r.Error.Field, r.Error.Message))
	}
	return nil
}

// rejection describes why the server rejected a record.
func rejection(code, field, message string) string {
	if field != "" {
		return fmt.Sprintf("%s (%s): %s", field, code, message)
	}
	return fmt.Sprintf("%s: %s", code, message)
}

func (c *cli) status(args []string) error {
	fs := c.flags("status")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	cl, err := c.open(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	st, err := cl.Status(c.ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.stdout, st)
	}
	if !st.Enrolled {
		fmt.Fprintf(c.stdout, "%s is not enrolled: brygga --db %s enroll SERVER CODE\n", c.db, c.db)
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "device\t%s\n", st.DeviceID)
	unit := st.UnitID.String()
	if u, err := ownUnit(c.ctx, cl); err == nil && u != nil {
		unit += " " + u.Name
	}
	fmt.Fprintf(tw, "unit\t%s\n", unit)
	fmt.Fprintf(tw, "server\t%s\n", st.Server)
	fmt.Fprintf(tw, "pending\t%d\n", st.Pending)
	last := "never"
	if st.LastSync != nil {
		last = st.LastSync.Local().Format(time.RFC3339)
	}
	fmt.Fprintf(tw, "last sync\t%s\n", last)
	if st.LastError != "" {
		fmt.Fprintf(tw, "last error\t%s\n", st.LastError)
	}
	fmt.Fprintf(tw, "rejected\t%d\n", len(st.Rejected))
	for _, r := range st.Rejected {
		fmt.Fprintf(tw, "\t%d %s %s: %s\n", r.Seq, r.Kind, r.ID, rejection(string(r.Error.Code), r.Error.Field, r.Error.Message))
		fmt.Fprintf(tw, "\t  wrote %s\n", r.Fields)
	}
	return tw.Flush()
}

func (c *cli) dismiss(args []string) error {
	fs := c.flags("dismiss")
	seq := fs.Int64("seq", 0, "the rejected mutation's `number`, as status shows it")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *seq <= 0 {
		return usagef("--seq is required: the number status shows before a rejection")
	}
	cl, err := c.open(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.DismissRejection(c.ctx, *seq); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "dismissed %d\n", *seq)
	return nil
}

func (c *cli) list(args []string) error {
	fs := c.flags("list")
	asJSON := fs.Bool("json", false, "print JSON")
	incoming := fs.Bool("incoming", false, "referrals: those addressed to the unit instead of those it made")
	limit := fs.Int("limit", 100, "contacts: the most to list, newest first")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || !slices.Contains([]string{"contacts", "referrals", "units"}, pos[0]) {
		return usagef("list needs one of: contacts, referrals, units")
	}
	if *limit <= 0 {
		return usagef("--limit must be positive")
	}
	cl, err := c.openEnrolled(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	units, err := cl.Units(c.ctx)
	if err != nil {
		return err
	}
	switch pos[0] {
	case "contacts":
		recs, err := cl.Contacts(c.ctx, *limit)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c.stdout, recs)
		}
		printContacts(c.stdout, recs)
	case "referrals":
		var recs []*schema.Referral
		if *incoming {
			recs, err = cl.IncomingReferrals(c.ctx)
		} else {
			recs, err = cl.OutgoingReferrals(c.ctx)
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c.stdout, recs)
		}
		printReferrals(c.stdout, recs, units, *incoming)
	case "units":
		services, err := cl.Services(c.ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c.stdout, map[string]any{"units": units, "services": services})
		}
		tw := tabwriter.NewWriter(c.stdout, 2, 4, 2, ' ', 0)
		for _, u := range units {
			var cats []string
			for _, s := range services {
				if s.UnitID == u.ID {
					cats = append(cats, string(s.Category))
				}
			}
			own := ""
			if u.ID == cl.UnitID() {
				own = "\t(this device's unit)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s%s\n", u.ID, u.AreaCode, u.Name, strings.Join(cats, ","), own)
		}
		return tw.Flush()
	}
	return nil
}

func printContacts(w io.Writer, recs []*schema.Contact) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, r := range recs {
		client := string(r.ClientCode)
		if client == "" {
			client = "anonymous"
		}
		voided := ""
		if r.Voided {
			voided = "\tvoided"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s%s\n", r.ID, r.OccurredAt.Local().Format("2006-01-02 15:04"),
			r.Setting, r.Gender, r.AgeBand, r.AreaCode, client, orDash(string(r.Substance)), voided)
	}
	tw.Flush()
}

func printReferrals(w io.Writer, recs []*schema.Referral, units []*schema.Unit, incoming bool) {
	name := func(id uuid.UUID) string {
		for _, u := range units {
			if u.ID == id {
				return u.Name
			}
		}
		return id.String()
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, r := range recs {
		other := "to " + name(r.ToUnitID)
		if incoming {
			other = "from " + name(r.UnitID)
		}
		status := string(r.Status)
		if r.Reopened > 0 {
			status += fmt.Sprintf(" (reopened %d)", r.Reopened)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.OccurredAt.Local().Format("2006-01-02 15:04"),
			r.Service, other, status, orDash(string(r.ClientCode)))
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// hintError is an error with a clearer message for a person, still
// matching the error it explains.
type hintError struct {
	msg string
	err error
}

// Error returns the explanation.
func (e *hintError) Error() string { return e.msg }

// Unwrap returns the explained error.
func (e *hintError) Unwrap() error { return e.err }

// explain turns the errors a field worker meets into sentences that say
// what to do: a validation error names the record, the field and the rule.
func explain(err error) error {
	if err == nil || errors.Is(err, errUsage) {
		return err
	}
	var fe *schema.FieldError
	if errors.As(err, &fe) {
		what := "input"
		if fe.Kind != "" {
			what = string(fe.Kind) + " record"
		}
		msg := fmt.Sprintf("invalid %s: field %s breaks the rule %q: %s", what, fe.Field, fe.Rule, fe.Message)
		if fe.Field == "staff_id" && fe.Rule == schema.RuleRequired {
			msg = "no staff member is set on this device: list them with brygga staff, then choose with brygga staff --set ID"
		}
		return &hintError{msg: msg, err: err}
	}
	hints := []struct {
		target error
		hint   string
	}{
		{brygga.ErrNotEnrolled, "enrol it first: brygga --db FILE enroll SERVER CODE"},
		{brygga.ErrLeaseExpired, "run: brygga sync"},
		{brygga.ErrSessionEnded, "ask for a new enrolment code and enrol again"},
		{brygga.ErrRevoked, "the device was revoked; ask for a new enrolment code"},
		{brygga.ErrRetired, "the device was retired: everything it held was sent"},
		{brygga.ErrSealed, "the device was retired: run brygga sync to send what it holds"},
		{brygga.ErrUnknownDevice, "ask for a new enrolment code of the unit, then: brygga --db FILE reenroll CODE"},
		{brygga.ErrEnrolCode, "ask for a new enrolment code"},
		{brygga.ErrStatusBackwards, "reopen it with --reopen"},
	}
	for _, h := range hints {
		if errors.Is(err, h.target) {
			return &hintError{msg: err.Error() + "; " + h.hint, err: err}
		}
	}
	return err
}
