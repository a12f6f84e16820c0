// Command brygga is Brygga's field client for the command line: it records
// outreach work (contacts, syringe exchanges, naloxone, reversals,
// referrals, infection tests, vaccinations and deaths) in a device replica, offline, and syncs it with a server.
//
//	brygga [--db FILE] enroll [--staff ID] [--json] SERVER CODE
//	brygga [--db FILE] staff [--set ID] [--json]
//	brygga [--db FILE] contact [--setting S] [--client CODE] [--gender G] [--age-band A] [--area NNNN] [--substance S] [--at RFC3339]
//	brygga [--db FILE] exchange --contact ID [--syringes N] [--needles N] [--returned N] [--supply code=N ...] [--at RFC3339]
//	brygga [--db FILE] naloxone --contact ID --doses N [--training] [--reason R] [--at RFC3339]
//	brygga [--db FILE] reversal [--contact ID] [--naloxone-used] [--doses N] [--ems-called] [--outcome O] [--at RFC3339]
//	brygga [--db FILE] refer --service CATEGORY [--to UNIT_ID] [--contact ID] [--client CODE] [--at RFC3339]
//	brygga [--db FILE] referral-status --id ID (--status STATUS | --reopen)
//	brygga [--db FILE] test --contact ID --test T --outcome O [--result R] [--client CODE] [--at RFC3339]
//	brygga [--db FILE] test-result --id ID --result R
//	brygga [--db FILE] vaccinate --contact ID --vaccine V --dose N [--client CODE] [--at RFC3339]
//	brygga [--db FILE] death --client CODE --date YYYY-MM-DD --source S
//	brygga [--db FILE] client new [--gender G] [--birth-year YYYY | --age-band A] [--qr] [--json]
//	brygga [--db FILE] client show CODE [--json]
//	brygga [--db FILE] void --kind KIND --id ID
//	brygga [--db FILE] sync [--json]
//	brygga [--db FILE] status [--json]
//	brygga [--db FILE] dismiss --seq N
//	brygga [--db FILE] list contacts|referrals|units|pending-tests [--json] [--incoming] [--limit N]
//	brygga simulate --server URL --devices N --days D [--login USER [--unit ID] < password | --code CODE ... | --codes-file FILE] [--dir DIR] [--seed N]
//
// Every command that prints takes --json for scripts (recording commands
// print the new record's id). Times are shown in the device's local zone,
// with the zone. An error is printed once, after "brygga: ", on standard
// error; the exit status is 0 on success, 1 on an error, 2 on a usage error
// and 3 when the server could not be reached (nothing recorded is lost: it
// waits on the device for the next sync).
//
// It uses only the public API of the SDK that tablet apps embed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	brygga "github.com/brygga/brygga/client-sdk"
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

// errOffline is matched by the error of a command that could not reach
// the server; such errors exit with status 3.
var errOffline = errors.New("offline")

// The process statuses.
const (
	exitOK      = 0
	exitError   = 1
	exitUsage   = 2
	exitOffline = 3
)

// exitCode returns the process status for an error Run returned: 2 for a
// usage error, 3 when the server could not be reached, 1 for any other.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, errOffline) || brygga.Unreachable(err):
		return exitOffline
	}
	return exitError
}

const usage = `usage: brygga [--db FILE] COMMAND [flags]

Recording (offline):
  contact [--setting S] [--client CODE] [--gender G] [--age-band A] [--area NNNN] [--substance S] [--at RFC3339]
  exchange --contact ID [--syringes N] [--needles N] [--returned N] [--supply code=N ...] [--at RFC3339]
  naloxone --contact ID --doses N [--training] [--reason R] [--at RFC3339]
  reversal [--contact ID] [--naloxone-used] [--doses N] [--ems-called] [--outcome O] [--at RFC3339]
  refer --service CATEGORY [--to UNIT_ID] [--contact ID] [--client CODE] [--at RFC3339]
  referral-status --id ID (--status STATUS | --reopen)
  test --contact ID --test T --outcome O [--result R] [--client CODE] [--at RFC3339]
  test-result --id ID --result R
  vaccinate --contact ID --vaccine V --dose N [--client CODE] [--at RFC3339]
  death --client CODE --date YYYY-MM-DD --source S
  client new [--gender G] [--birth-year YYYY | --age-band A] [--qr] [--json]
  client show CODE [--json]
  void --kind KIND --id ID

Device and sync:
  enroll [--staff ID] [--json] SERVER CODE
  reenroll CODE              (a device the server no longer knows: keeps its records and sends them)
  staff [--set ID] [--json]
  sync [--json]
  status [--json]
  dismiss --seq N
  list contacts|referrals|units|pending-tests [--json] [--incoming] [--limit N]

Load testing:
  simulate --server URL --devices N --days D [--login USER [--unit ID] < password | --code CODE ... | --codes-file FILE] [--dir DIR] [--seed N]

--db is the device's replica file (default brygga.db).
Run "brygga COMMAND -h" for a command's flags.
Exit status: 0 done, 1 error, 2 usage error, 3 the server could not be reached.`

// errHelp ends a command whose help was asked for.
var errHelp = errors.New("help requested")

// Run runs the brygga command line with args (without the program name)
// and returns the error to report, if any, without a "brygga: " prefix:
// main prints it once. exitCode gives the process status for it. ctx
// bounds every call to the server.
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
		"test":            c.test,
		"test-result":     c.testResult,
		"vaccinate":       c.vaccinate,
		"death":           c.death,
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
	return c.explain(err)
}

// cli holds what every command needs.
type cli struct {
	ctx            context.Context
	db             string
	stdin          io.Reader
	stdout, stderr io.Writer
}

// invocation returns how to run this program again on the same replica:
// "go run ./client-sdk/cmd/brygga" when go run (or go test) built it into
// a temporary directory, the name it was started by otherwise, with the
// --db flag.
func (c *cli) invocation() string {
	prog := os.Args[0]
	if strings.Contains(prog, string(filepath.Separator)+"go-build") {
		prog = "go run ./client-sdk/cmd/brygga"
	}
	return prog + " --db " + c.db
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
