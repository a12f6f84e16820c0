// Command bryggaload measures Brygga's sync server under load. It starts
// the real server in the same process on a loopback listener with a
// temporary database, drives it over HTTP as tablets do, and prints a table
// of figures with the raw baselines they are compared to, the ratio to each
// baseline, the target and whether it was met.
//
//	bryggaload [--scenario all|NAME[,NAME...]] [--runs N] [--rows N]
//	           [--first-sync-rows N] [--big-rows N] [--small-syncs N]
//	           [--devices N] [--conns N] [--pull-page N] [--cpuprofile FILE]
//	           [--sync-cpuprofile FILE] [--postgres URL] [--instances N]
//
// The scenarios: baseline-sqlite, baseline-device, baseline-fiber, push,
// push-one, first-sync, small-sync, many-devices and wire-size on SQLite;
// baseline-postgres, push-postgres, first-sync-postgres and
// many-devices-postgres on a database of their own on a PostgreSQL server
// (--postgres), with --instances servers; "bryggaload -h" says what each
// flag sets.
//
// Every figure is the median of --runs runs; a ratio is taken within one
// run and its median reported. A missed target is printed as "missed"; the
// exit status is non-zero only when the measurement itself fails.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/brygga/brygga/sync/wire"
)

func main() {
	if child, err := childMain(); child {
		if err != nil {
			fmt.Fprintln(os.Stderr, "bryggaload: server:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signalContext()
	defer stop()
	if err := Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bryggaload:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// signalContext is done at SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// errUsage marks errors in the command line.
var errUsage = errors.New("usage")

// Default sizes. The targets of first-sync and small-sync are stated for a
// million records; the defaults measure fewer and say so.
const (
	defaultSQLiteRows    = 200_000
	defaultPushRows      = 400_000
	defaultFirstSyncRows = 200_000
	defaultBigRows       = 200_000
	smallServerRows      = 1_000
	targetRows           = 1_000_000
	maxRows              = 10_000_000
	maxDevices           = 20_000
	maxRuns              = 50
)

// config is what the command line sets.
type config struct {
	scenarios     []string
	runs          int
	rows          int
	firstSyncRows int
	bigRows       int
	devices       int
	conns         int
	smallSyncs    int
	pullPage      int
	pushBatch     int
	cpuProfile    string
	// postgres is the PostgreSQL server of the PostgreSQL scenarios;
	// instances how many servers they run on its database.
	postgres  string
	instances int
	// syncProfile is the CPU profile of push-one's timed Sync.
	syncProfile string
	// stderr receives progress and warnings.
	stderr io.Writer
}

// sqliteRows is the row count of baseline-sqlite.
func (c *config) sqliteRows() int {
	if c.rows > 0 {
		return c.rows
	}
	return defaultSQLiteRows
}

// pushRows is the row count of baseline-fiber and push.
func (c *config) pushRows() int {
	if c.rows > 0 {
		return c.rows
	}
	return defaultPushRows
}

// Run runs bryggaload with args, writing the table to stdout and progress
// to stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	printHeader(stdout, cfg)
	var runs []*recorder
	for run := 1; run <= cfg.runs; run++ {
		rec := &recorder{}
		for _, name := range cfg.scenarios {
			sc := scenarioNamed(name)
			fmt.Fprintf(stderr, "run %d/%d: %s ...\n", run, cfg.runs, name)
			start := time.Now()
			if err := sc.run(ctx, cfg, rec); err != nil {
				return fmt.Errorf("run %d: %s: %w", run, name, err)
			}
			fmt.Fprintf(stderr, "run %d/%d: %s done in %.1f s\n", run, cfg.runs, name, time.Since(start).Seconds())
		}
		runs = append(runs, rec)
	}
	printTable(stdout, aggregate(runs))
	printNotes(stdout, cfg)
	return nil
}

// parseFlags reads the command line.
func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{stderr: stderr}
	fs := flag.NewFlagSet("bryggaload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	names := make([]string, len(scenarios))
	for i, sc := range scenarios {
		names[i] = sc.name
	}
	scenarioList := fs.String("scenario", "all", "the scenarios to run, comma separated: all or any of "+strings.Join(names, ", "))
	fs.IntVar(&cfg.runs, "runs", 3, "how many times to run each scenario; figures are medians")
	fs.IntVar(&cfg.rows, "rows", 0, fmt.Sprintf("rows of baseline-sqlite, baseline-fiber, push and push-one (0: %d for baseline-sqlite, %d for push-one, %d for the others)", defaultSQLiteRows, defaultPushRows/loaders, defaultPushRows))
	fs.IntVar(&cfg.firstSyncRows, "first-sync-rows", defaultFirstSyncRows, fmt.Sprintf("records the server holds for first-sync (the target is stated for %d)", targetRows))
	fs.IntVar(&cfg.bigRows, "big-rows", defaultBigRows, fmt.Sprintf("records the big server holds for small-sync (the target is stated for %d)", targetRows))
	fs.IntVar(&cfg.devices, "devices", 1000, "simulated devices of many-devices")
	fs.IntVar(&cfg.conns, "conns", 32, "most connections the load clients of many-devices open to the server (http.Transport.MaxConnsPerHost)")
	fs.IntVar(&cfg.smallSyncs, "small-syncs", 20, "10-row syncs measured against each server of small-sync")
	fs.IntVar(&cfg.pullPage, "pull-page", 0, "changes per pull page of the SDK in first-sync and small-sync (0: the SDK's default)")
	fs.IntVar(&cfg.pushBatch, "push-batch", 0, "mutations per push of the SDK in push-one (0: the SDK's default)")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to `file`")
	fs.StringVar(&cfg.postgres, "postgres", defaultPostgres, "the PostgreSQL server the *-postgres scenarios create their databases on (`URL`)")
	fs.IntVar(&cfg.instances, "instances", 1, "how many servers push-postgres and many-devices-postgres run on one database")
	fs.StringVar(&cfg.syncProfile, "sync-cpuprofile", "", "write a CPU profile of push-one's timed Sync alone (server and device) to `file`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, fmt.Errorf("%w: help requested", errUsage)
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	switch {
	case cfg.runs < 1 || cfg.runs > maxRuns:
		return nil, fmt.Errorf("%w: --runs must be 1 to %d", errUsage, maxRuns)
	case cfg.rows < 0 || cfg.rows > maxRows:
		return nil, fmt.Errorf("%w: --rows must be 0 to %d", errUsage, maxRows)
	case cfg.firstSyncRows < 2 || cfg.firstSyncRows > maxRows:
		return nil, fmt.Errorf("%w: --first-sync-rows must be 2 to %d", errUsage, maxRows)
	case cfg.bigRows < 2 || cfg.bigRows > maxRows:
		return nil, fmt.Errorf("%w: --big-rows must be 2 to %d", errUsage, maxRows)
	case cfg.devices < 1 || cfg.devices > maxDevices:
		return nil, fmt.Errorf("%w: --devices must be 1 to %d", errUsage, maxDevices)
	case cfg.conns < 1 || cfg.conns > 1024:
		return nil, fmt.Errorf("%w: --conns must be 1 to 1024", errUsage)
	case cfg.smallSyncs < 1 || cfg.smallSyncs > 1000:
		return nil, fmt.Errorf("%w: --small-syncs must be 1 to 1000", errUsage)
	case cfg.pullPage < 0 || cfg.pullPage > 2000:
		return nil, fmt.Errorf("%w: --pull-page must be 0 to 2000", errUsage)
	case cfg.pushBatch < 0 || cfg.pushBatch > wire.MaxMutations:
		return nil, fmt.Errorf("%w: --push-batch must be 0 to %d", errUsage, wire.MaxMutations)
	case cfg.instances < 1 || cfg.instances > 16:
		return nil, fmt.Errorf("%w: --instances must be 1 to 16", errUsage)
	case cfg.rows > 0 && cfg.rows < 2:
		return nil, fmt.Errorf("%w: --rows must be at least 2", errUsage)
	}
	for _, name := range strings.Split(*scenarioList, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
		case name == "all":
			cfg.scenarios = append(cfg.scenarios, names...)
		case scenarioNamed(name) != nil:
			cfg.scenarios = append(cfg.scenarios, name)
		default:
			return nil, fmt.Errorf("%w: no scenario %q: choose all or any of %s", errUsage, name, strings.Join(names, ", "))
		}
	}
	if len(cfg.scenarios) == 0 {
		return nil, fmt.Errorf("%w: no scenario chosen", errUsage)
	}
	// Run them in the declared order, each once: baselines come before the
	// figures that are compared to them.
	cfg.scenarios = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !slices.Contains(cfg.scenarios, n) })
	return cfg, nil
}

// scenario is one measurement.
type scenario struct {
	name string
	run  func(ctx context.Context, cfg *config, rec *recorder) error
}

// scenarios are every scenario, baselines first.
var scenarios = []scenario{
	{"baseline-sqlite", runBaselineSQLite},
	{"baseline-device", runBaselineDevice},
	{"baseline-fiber", runBaselineFiber},
	{"push", runPush},
	{"push-one", runPushOne},
	{"first-sync", runFirstSync},
	{"small-sync", runSmallSync},
	{"many-devices", runManyDevices},
	{"wire-size", runWireSize},
	onPostgres("baseline-postgres", runBaselinePostgres),
	onPostgres("push-postgres", pushOn),
	onPostgres("first-sync-postgres", firstSyncOn),
	onPostgres("many-devices-postgres", runManyDevicesPostgres),
}

// scenarioNamed returns the scenario called name, or nil.
func scenarioNamed(name string) *scenario {
	for i := range scenarios {
		if scenarios[i].name == name {
			return &scenarios[i]
		}
	}
	return nil
}

// printHeader prints the machine and the sizes.
func printHeader(w io.Writer, cfg *config) {
	fmt.Fprintf(w, "bryggaload  %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "machine     %d CPUs, %s/%s, %s, %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, cpuModel(), runtime.Version())
	fmt.Fprintf(w, "runs        %d (each figure is the median of the runs; each ratio is taken within one run, then the median)\n", cfg.runs)
	fmt.Fprintf(w, "sizes       baseline-sqlite %d rows; baseline-fiber and push %d rows in 1000-mutation gzip batches from 4 clients;\n", cfg.sqliteRows(), cfg.pushRows())
	fmt.Fprintf(w, "            push-one %d rows, one SDK device's Sync; baseline-device and first-sync %d records;\n", cfg.pushOneRows(), cfg.firstSyncRows)
	fmt.Fprintf(w, "            small-sync %d vs %d records, %d syncs each; many-devices %d devices, MaxConnsPerHost %d\n",
		smallServerRows, cfg.bigRows, cfg.smallSyncs, cfg.devices, cfg.conns)
	fmt.Fprintf(w, "            *-postgres: as the SQLite scenarios, on a database of their own, push and many devices with %d server instances;\n", cfg.instances)
	fmt.Fprintf(w, "            baseline-postgres copies push's rows from as many clients\n")
	fmt.Fprintln(w)
}

// printNotes says how the figures whose targets are stated for other sizes
// were judged.
func printNotes(w io.Writer, cfg *config) {
	fmt.Fprintln(w)
	has := func(name string) bool { return slices.Contains(cfg.scenarios, name) }
	if has("first-sync") {
		if cfg.firstSyncRows == targetRows {
			fmt.Fprintf(w, "first-sync: the target (1M records in <= 10 s) is judged on the time measured for %d records.\n", targetRows)
		} else {
			fmt.Fprintf(w, "first-sync: the target (1M records in <= 10 s) is judged on the time measured for %d records, extrapolated linearly to %d.\n", cfg.firstSyncRows, targetRows)
		}
	}
	if has("small-sync") {
		fmt.Fprintf(w, "small-sync: the target is stated for a server holding %d records; measured with %d. Each sync is the SDK's Sync of 10 new records (push and pull);\n", targetRows, cfg.bigRows)
		fmt.Fprintln(w, "  its server round trips are the time from sending each request to the end of its answer, the rest is the device's own work.")
	}
	if has("many-devices") {
		fmt.Fprintf(w, "many-devices: all %d devices start at once; the load clients share one http.Transport with MaxConnsPerHost %d, so the rest wait for a connection.\n", cfg.devices, cfg.conns)
		fmt.Fprintln(w, "  \"connected\" latency runs from getting a connection to the end of the answer; \"issued\" latency includes the wait for a connection.")
		fmt.Fprintln(w, "  The server runs in a process of its own on the same database for this scenario; its peak RSS is that process's VmHWM.")
	}
}

// cpuModel returns the CPU's model name from /proc/cpuinfo.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
