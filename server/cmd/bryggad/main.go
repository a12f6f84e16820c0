// Command bryggad is Brygga's sync server and its administration tool.
//
//	bryggad serve --db PATH --addr HOST:PORT [--public-url URL] [--demo]
//	bryggad demo --db PATH
//	bryggad org add --db PATH --kind municipality|region|ngo --name NAME --region NN
//	bryggad org list --db PATH
//	bryggad unit add --db PATH --org ID --name NAME --area NNNN [--services a,b]
//	bryggad unit list --db PATH [--org ID]
//	bryggad user add --db PATH --username NAME --role ROLE [--org ID] [--unit ID] --password-stdin
//	bryggad user list --db PATH
//	bryggad device list --db PATH
//	bryggad device enroll-code --db PATH --unit ID
//	bryggad device retire --db PATH --id ID [--yes]
//	bryggad device revoke --db PATH --id ID [--yes]
//	bryggad key rotate --db PATH
//	bryggad report ivo --db PATH [--year YYYY] [--region NN] [--format csv|json]
//	bryggad report deaths --db PATH [--year YYYY] [--period P] [--by B] [--format csv|json]
//	bryggad backup --db PATH --out PATH
//	bryggad restore --from PATH --db PATH
//	bryggad migrate --db PATH|postgres://...
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	neturl "net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/server/pgstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bryggad:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `usage:
  bryggad serve --db PATH|postgres://... --addr HOST:PORT [--public-url URL] [--demo]
  bryggad demo --db PATH
  bryggad org add|list ...
  bryggad unit add|list ...
  bryggad user add|list ...
  bryggad device list|enroll-code|retire|revoke ...
  bryggad key rotate --db PATH
  bryggad report ivo|deaths --db PATH [--year YYYY] [--format csv|json] ...
  bryggad backup --db PATH --out PATH
  bryggad restore --from PATH --db PATH
  bryggad migrate --db PATH|postgres://...
PATH is a SQLite file; every command but backup and restore also takes
a postgres:// URL, a database several servers may share.
run "bryggad COMMAND -h" for a command's flags`

// Run runs bryggad with args, until ctx is cancelled for serve.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, stdout, stderr)
	case "demo":
		return demo(ctx, rest, stdout, stderr)
	case "backup":
		return backup(ctx, rest, stdout, stderr)
	case "restore":
		return restore(ctx, rest, stdout, stderr)
	case "migrate":
		return migrate(ctx, rest, stdout, stderr)
	case "report":
		if len(rest) == 0 {
			fmt.Fprintln(stderr, usage)
			return errUsage
		}
		return report(ctx, cmd+" "+rest[0], rest[1:], stdout, stderr)
	case "org", "unit", "user", "device", "key":
		if len(rest) == 0 {
			fmt.Fprintln(stderr, usage)
			return errUsage
		}
		if cmd == "device" && (rest[0] == "list" || rest[0] == "retire" || rest[0] == "revoke") {
			return device(ctx, cmd+" "+rest[0], rest[1:], stdin, stdout, stderr)
		}
		return admin(ctx, cmd+" "+rest[0], rest[1:], stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	fmt.Fprintln(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("bryggad "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "brygga.db", "the server's `database`: a SQLite file, or a postgres:// URL")
	return fs, db
}

// shown is the database db as messages name it: a URL without its
// password.
func shown(db string) string {
	if !pgstore.IsURL(db) {
		return db
	}
	u, err := neturl.Parse(db)
	if err != nil {
		return "the PostgreSQL database"
	}
	return u.Redacted()
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

func open(ctx context.Context, path string, cfg server.Config) (*server.Server, error) {
	cfg.DBPath = path
	return server.Open(ctx, cfg)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("serve", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen `address`")
	public := fs.String("public-url", "", "the `URL` devices reach the server at (default http://ADDR)")
	withDemo := fs.Bool("demo", false, "seed the demo region if the database is empty")
	if err := parse(fs, args); err != nil {
		return err
	}
	// A SQLite file is served by one server at a time; a PostgreSQL
	// database by as many as share it.
	if !pgstore.IsURL(*db) {
		release, err := lockDB(*db)
		if err != nil {
			return err
		}
		defer release()
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	if *public == "" {
		*public = url
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := open(ctx, *db, server.Config{PublicURL: *public, Logger: logger})
	if err != nil {
		ln.Close()
		return err
	}
	defer s.Close()
	if *withDemo {
		has, err := s.HasData(ctx)
		if err != nil {
			ln.Close()
			return err
		}
		if !has {
			d, err := s.SeedDemo(ctx)
			if err != nil {
				ln.Close()
				return err
			}
			printDemo(stdout, d, shown(*db), *public)
		} else {
			fmt.Fprintf(stdout, "The database already holds data; the demo logins were printed on its first start (delete %s to start afresh).\n", shown(*db))
		}
	}
	fmt.Fprintf(stdout, "bryggad listening on %s (database %s)\n", url, shown(*db))
	fmt.Fprintf(stdout, "  health %s/healthz, metrics %s/metrics, signing keys %s/.well-known/jwks.json\n", url, url, url)
	fmt.Fprintf(stdout, "  units and their ids: %s unit list --db %s\n", invocation(), shown(*db))
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Shutdown(shutdown); err != nil {
		return err
	}
	return <-errc
}

// invocation returns how to run this program again from where it was
// started: "go run ./server/cmd/bryggad" when go run (or go test) built it
// into a temporary directory, the name it was started by otherwise.
func invocation() string {
	if exe := os.Args[0]; !strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return exe
	}
	return "go run ./server/cmd/bryggad"
}

func printDemo(w io.Writer, d *server.Demo, db, public string) {
	fmt.Fprintln(w, "Seeded the demo region (Region Jämtland Härjedalen and three municipalities).")
	fmt.Fprintln(w, "Logins (POST /v1/auth/login); the passwords are shown this once:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, a := range d.Accounts {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", a.Role, a.Username, a.Password)
	}
	tw.Flush()
	fmt.Fprintf(w, "Make an enrolment code for a tablet of %s (%s), in another terminal:\n  %s device enroll-code --db %s --unit %s\n",
		d.OutreachUnit.Name, d.OutreachUnit.ID, invocation(), db, d.OutreachUnit.ID)
	for _, a := range d.Accounts {
		if a.Role == server.RoleManager && public != "" {
			fmt.Fprintf(w, "The dashboard: %s/dashboard/ (log in as %s)\n", public, a.Username)
		}
	}
}

func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("demo", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := open(ctx, *db, server.Config{})
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := s.SeedDemo(ctx)
	if err != nil {
		return err
	}
	printDemo(stdout, d, shown(*db), "")
	return nil
}

func parseID(name, s string) (uuid.UUID, error) {
	if s == "" {
		return uuid.Nil, nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, fmt.Errorf("%w: --%s %q is not an id", errUsage, name, s)
	}
	return id, nil
}

func admin(ctx context.Context, cmd string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, db := newFlags(cmd, stderr)
	var (
		kind     = new(string)
		name     = new(string)
		region   = new(string)
		org      = new(string)
		unit     = new(string)
		area     = new(string)
		services = new(string)
		username = new(string)
		role     = new(string)
		id       = new(string)
		pwStdin  = new(bool)
	)
	switch cmd {
	case "org add":
		fs.StringVar(kind, "kind", "", "municipality, region or ngo")
		fs.StringVar(name, "name", "", "the organisation's public `name`")
		fs.StringVar(region, "region", "", "two-digit county `code` (länskod)")
	case "unit add":
		fs.StringVar(org, "org", "", "organisation `id`")
		fs.StringVar(name, "name", "", "the unit's `name`")
		fs.StringVar(area, "area", "", "four-digit municipality `code` (kommunkod)")
		fs.StringVar(services, "services", "", "comma-separated service `categories` the unit receives referrals for")
	case "unit list":
		fs.StringVar(org, "org", "", "only units of this organisation `id`")
	case "user add":
		fs.StringVar(username, "username", "", "login `name`")
		fs.StringVar(role, "role", "", "outreach, manager, authority or admin")
		fs.StringVar(org, "org", "", "organisation `id`")
		fs.StringVar(unit, "unit", "", "unit `id`")
		fs.BoolVar(pwStdin, "password-stdin", false, "read the password from standard input")
	case "device enroll-code":
		fs.StringVar(unit, "unit", "", "unit `id` to enrol a device for")
		fs.StringVar(id, "public-url", "", "the `URL` devices reach the server at (default the one the server last served at)")
	case "org list", "user list", "key rotate":
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg := server.Config{}
	if cmd == "device enroll-code" {
		cfg.PublicURL = *id
	}
	s, err := open(ctx, *db, cfg)
	if err != nil {
		return err
	}
	defer s.Close()

	orgID, err := parseID("org", *org)
	if err != nil {
		return err
	}
	unitID, err := parseID("unit", *unit)
	if err != nil {
		return err
	}
	switch cmd {
	case "org add":
		o, err := s.AddOrganisation(ctx, schema.OrgKind(*kind), *name, *region)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, o.ID)
	case "org list":
		orgs, err := s.Organisations(ctx)
		if err != nil {
			return err
		}
		for _, o := range orgs {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", o.ID, o.OrgKind, o.RegionCode, o.Name)
		}
	case "unit add":
		var cats []schema.ServiceCategory
		for _, c := range strings.Split(*services, ",") {
			if c = strings.TrimSpace(c); c != "" {
				if !schema.ServiceCategoryEnum.Has(c) {
					return fmt.Errorf("%w: %q is not a service category (%s)", errUsage, c, strings.Join(schema.ServiceCategoryEnum.Codes(), ", "))
				}
				cats = append(cats, schema.ServiceCategory(c))
			}
		}
		u, err := s.AddUnit(ctx, orgID, *name, *area, cats...)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, u.ID)
	case "unit list":
		units, err := s.Units(ctx, orgID)
		if err != nil {
			return err
		}
		for _, u := range units {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", u.ID, u.OrgID, u.AreaCode, u.Name)
		}
	case "user add":
		if !*pwStdin {
			return fmt.Errorf("%w: give the password on standard input with --password-stdin", errUsage)
		}
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		u, err := s.AddUser(ctx, *username, strings.TrimRight(line, "\r\n"), server.Role(*role), orgID, unitID)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, u.ID)
	case "user list":
		users, err := s.Users(ctx)
		if err != nil {
			return err
		}
		for _, u := range users {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Username, u.Role, idOrDash(u.OrgID), idOrDash(u.UnitID))
		}
	case "device enroll-code":
		if unitID == uuid.Nil {
			return fmt.Errorf("%w: --unit is required", errUsage)
		}
		code, err := s.NewEnrolCode(ctx, unitID, "admin:cli")
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, code.Code)
		qr, err := qrcode.New(code.QRPayload, qrcode.Medium)
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, qr.ToSmallString(false))
		fmt.Fprintf(stdout, "valid until %s; a device enrols with POST %s/v1/devices/enroll {\"code\":\"%s\"}\n",
			code.ExpiresAt.Format(time.RFC3339), publicURLOf(code.QRPayload), code.Code)
	case "key rotate":
		kid, err := s.RotateKey(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, kid)
	}
	return nil
}

func idOrDash(id uuid.UUID) string {
	if id == uuid.Nil {
		return "-"
	}
	return id.String()
}

// publicURLOf returns the server URL of an enrolment QR payload.
func publicURLOf(payload string) string {
	parts := strings.SplitN(payload, ":", 4)
	if len(parts) == 4 {
		return parts[3]
	}
	return ""
}
