package brygga_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
)

// fate is what the fault proxy does to one request.
type fate int

const (
	pass          fate = iota
	cutBefore          // the connection is cut before the server hears the request
	loseAnswer         // the server answers; the answer never reaches the device
	delayed            // held before and after the server, so that later requests overtake it
	duplicated         // sent twice at once; the device gets either answer
	replayedLater      // answered, and sent again later, after requests that came after it
	fates
)

var fateNames = [fates]string{"pass", "cut", "lost answer", "delayed", "duplicated", "replayed later"}

// faultProxy stands between devices and the server on loopback. While on,
// it does to each request what its seeded random source draws: passes it,
// cuts the connection before the server hears it, loses the server's
// answer, delays it (so that later requests overtake it), sends it twice
// at once, or sends it again later. The server always finishes what it
// was sent, whatever the device does meanwhile.
type faultProxy struct {
	target    string
	transport *http.Transport

	mu     sync.Mutex
	rng    *rand.Rand
	on     bool
	counts [fates]int

	late sync.WaitGroup // replays still on their way
}

// startFaultProxy starts a fault proxy in front of target, with its
// faults off, until the test ends or stop is called.
func startFaultProxy(t *testing.T, target string, seed uint64) (f *faultProxy, url string, stop func()) {
	f = &faultProxy{target: target, transport: &http.Transport{DisableCompression: true}, rng: rand.New(rand.NewPCG(seed, 0xfa17))}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f}
	go srv.Serve(ln)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Close()
			f.late.Wait()
			f.transport.CloseIdleConnections()
		})
	}
	t.Cleanup(stop)
	return f, "http://" + ln.Addr().String(), stop
}

func (f *faultProxy) set(on bool) {
	f.mu.Lock()
	f.on = on
	f.mu.Unlock()
}

func (f *faultProxy) draw() (fate, time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.on {
		f.counts[pass]++
		return pass, 0, false
	}
	var fa fate
	switch n := f.rng.IntN(100); {
	case n < 10:
		fa = cutBefore
	case n < 25:
		fa = loseAnswer
	case n < 40:
		fa = delayed
	case n < 50:
		fa = duplicated
	case n < 58:
		fa = replayedLater
	default:
		fa = pass
	}
	f.counts[fa]++
	return fa, time.Duration(f.rng.IntN(30)) * time.Millisecond, f.rng.IntN(2) == 0
}

// forwarded is an answer of the server, read whole.
type forwarded struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (f *faultProxy) forward(req *http.Request, body []byte) forwarded {
	out, err := http.NewRequestWithContext(context.Background(), req.Method, f.target+req.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return forwarded{err: err}
	}
	for k, vs := range req.Header {
		if k != "Connection" {
			out.Header[k] = vs
		}
	}
	resp, err := f.transport.RoundTrip(out)
	if err != nil {
		return forwarded{err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return forwarded{status: resp.StatusCode, header: resp.Header, body: data, err: err}
}

func hangUp(w http.ResponseWriter) {
	if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
		conn.Close()
	}
}

func (f *faultProxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		hangUp(w)
		return
	}
	fa, wait, other := f.draw()
	if fa == cutBefore {
		hangUp(w)
		return
	}
	if fa == delayed {
		time.Sleep(wait)
	}
	ans := f.forward(req, body)
	switch fa {
	case loseAnswer:
		hangUp(w)
		return
	case delayed:
		time.Sleep(wait)
	case duplicated:
		if again := f.forward(req, body); other {
			ans = again
		}
	case replayedLater:
		f.late.Add(1)
		go func() {
			defer f.late.Done()
			time.Sleep(wait + 20*time.Millisecond)
			f.forward(req, body)
		}()
	}
	if ans.err != nil {
		hangUp(w)
		return
	}
	for k, vs := range ans.header {
		if k != "Content-Length" && k != "Connection" && k != "Transfer-Encoding" {
			w.Header()[k] = vs
		}
	}
	w.WriteHeader(ans.status)
	w.Write(ans.body)
}

// scheduleCounts is what every kind of schedule counts: tablets, records
// made, syncs under faults and how many of them failed, and the requests
// that met each fate.
type scheduleCounts struct {
	devices, records, syncs, failed int
	counts                          [fates]int
}

// add adds o to c.
func (c *scheduleCounts) add(o scheduleCounts) {
	c.devices += o.devices
	c.records += o.records
	c.syncs += o.syncs
	c.failed += o.failed
	for i := range o.counts {
		c.counts[i] += o.counts[i]
	}
}

// scheduleResult is what one schedule did.
type scheduleResult struct {
	scheduleCounts
	enrolTries, stranded int
}

// runSchedule runs one seeded schedule: devices enrol through the fault
// proxy (retrying with the same code until they are enrolled), record
// contacts offline and sync through the faults, with contexts cancelled
// at random mid-request and, for some devices, clocks days off; then the
// faults stop and every device must sync at once. It checks that no device
// is stranded, and that every record is on the server and on every device
// of its unit exactly once.
func runSchedule(t *testing.T, seed uint64, devices, rounds int) scheduleResult {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 7))
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg := server.Config{DBPath: filepath.Join(dir, "server.db"), PublicURL: base}
	if rng.IntN(2) == 0 {
		cfg.AccessTTL = 2 * time.Second // nearly every request needs a new token
	}
	srv, err := server.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	org, _ := srv.AddOrganisation(ctx, schema.OrgMunicipality, "Östersunds kommun", "23")
	unit, _ := srv.AddUnit(ctx, org.ID, "Fältgruppen", "2380")
	staff, _ := srv.AddStaff(ctx, unit.ID, schema.RoleOutreachWorker)
	proxy, via, stopProxy := startFaultProxy(t, base, seed)
	defer func() {
		stopProxy()
		srv.Shutdown(ctx)
		<-done
		srv.Close()
	}()
	proxy.set(true)

	res := scheduleResult{scheduleCounts: scheduleCounts{devices: devices}}
	var mu sync.Mutex // guards res and made
	made := map[uuid.UUID]int{}
	clients := make([]*brygga.Client, devices)

	var wg sync.WaitGroup
	for i := range devices {
		code, err := srv.NewEnrolCode(ctx, unit.ID, "test")
		if err != nil {
			t.Fatal(err)
		}
		c, err := brygga.Open(ctx, filepath.Join(dir, fmt.Sprintf("tablet%d.db", i)), scheduleOptions(rng))
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
		defer c.Close()
		drng := rand.New(rand.NewPCG(seed, uint64(i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			tries := 0
			for ; !c.Enrolled() && tries < 200; tries++ {
				cctx, cancel := maybeCancelled(ctx, drng, 3)
				c.Enroll(cctx, via, code.Code)
				cancel()
			}
			synced := false
			for try := 0; c.Enrolled() && !synced && try < 200; try++ {
				synced = c.Sync(ctx) == nil
			}
			mu.Lock()
			res.enrolTries += tries
			mu.Unlock()
			if !synced {
				t.Errorf("seed %d: device %d stranded at its first sync (enrolled %v after %d tries)", seed, i, c.Enrolled(), tries)
				return
			}
			if err := c.SetStaff(ctx, staff.ID); err != nil {
				t.Error(err)
				return
			}
			for range rounds {
				for range drng.IntN(4) {
					rec := contact(schema.SettingStreet)
					if err := c.Add(ctx, rec); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					made[rec.ID] = i
					res.records++
					mu.Unlock()
				}
				// Sometimes two syncs of the device at once.
				n := 1 + drng.IntN(2)
				errs := make(chan error, n)
				for range n {
					cctx, cancel := maybeCancelled(ctx, drng, 3)
					go func() {
						defer cancel()
						errs <- c.Sync(cctx)
					}()
				}
				for range n {
					err := <-errs
					mu.Lock()
					res.syncs++
					if err != nil {
						res.failed++
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	proxy.set(false)
	proxy.late.Wait()
	if t.Failed() {
		return res
	}

	// The faults have stopped: every device syncs at once, twice round so
	// that each has the others' records.
	for round := range 2 {
		for i, c := range clients {
			if err := c.Sync(ctx); err != nil {
				res.stranded++
				t.Errorf("seed %d: device %d cannot sync once the faults stopped (round %d): %v", seed, i, round, err)
			}
		}
	}
	proxy.mu.Lock()
	res.counts = proxy.counts
	proxy.mu.Unlock()

	// No orphan devices: one enrolment per device, whatever was lost.
	if devs, _ := srv.DevicesOf(ctx, uuid.Nil); len(devs) != devices {
		t.Errorf("seed %d: %d devices enrolled on the server, %d tablets", seed, len(devs), devices)
	}
	h, err := sql.Open("sqlite3", "file:"+cfg.DBPath+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var rows int
	h.QueryRow(`SELECT count(*) FROM contacts`).Scan(&rows)
	if rows != len(made) {
		t.Errorf("seed %d: server holds %d contacts, %d were made", seed, rows, len(made))
	}
	for id := range made {
		var n int
		h.QueryRow(`SELECT count(*) FROM contacts WHERE id = ?`, id.String()).Scan(&n)
		if n != 1 {
			t.Errorf("seed %d: contact %s on the server %d times", seed, id, n)
		}
	}
	for i, c := range clients {
		checkHolds(t, seed, i, c, made)
	}
	return res
}

// scheduleOptions returns the options of a schedule's tablet, drawn from
// rng: push batches and pull pages of a few, and for a third of the
// tablets a clock up to three days off.
func scheduleOptions(rng *rand.Rand) *brygga.Options {
	skew := time.Duration(0)
	if rng.IntN(3) == 0 {
		skew = time.Duration(rng.IntN(7)-3) * 24 * time.Hour
	}
	return &brygga.Options{PushBatch: 2 + rng.IntN(4), PullPage: 3 + rng.IntN(8),
		HTTPClient: &http.Client{Timeout: 10 * time.Second}, Now: func() time.Time { return time.Now().Add(skew) }}
}

// maybeCancelled returns a context of ctx that, one time in oneIn as rng
// draws, is cancelled after up to 60 ms, sometimes mid-request.
func maybeCancelled(ctx context.Context, rng *rand.Rand, oneIn int) (context.Context, context.CancelFunc) {
	if rng.IntN(oneIn) == 0 {
		return context.WithTimeout(ctx, time.Duration(1+rng.IntN(60))*time.Millisecond)
	}
	return context.WithCancel(ctx)
}

// checkHolds checks that tablet i of a schedule holds each contact of want
// once and nothing else, and has nothing queued or rejected.
func checkHolds[V any](t *testing.T, seed uint64, i int, c *brygga.Client, want map[uuid.UUID]V) {
	t.Helper()
	got, err := c.Contacts(context.Background(), 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uuid.UUID]int{}
	for _, x := range got {
		seen[x.ID]++
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("seed %d: contact %s on tablet %d %d times, want once", seed, id, i, seen[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("seed %d: tablet %d holds %d contacts, want %d", seed, i, len(got), len(want))
	}
	if st, _ := c.Status(context.Background()); st.Pending != 0 || len(st.Rejected) != 0 {
		t.Errorf("seed %d: tablet %d: pending %d, rejected %+v", seed, i, st.Pending, st.Rejected)
	}
}

// runSeeds runs one schedule for each of n seeds, from the first, where
// the environment variables countVar and seedVar set how many (n if unset)
// and the first (1 if unset). It stops at the first seed that fails,
// saying how to run it alone, and returns how many it ran.
func runSeeds(t *testing.T, n int, countVar, seedVar string, run func(seed uint64)) int {
	t.Helper()
	if v, err := strconv.Atoi(os.Getenv(countVar)); err == nil && v > 0 {
		n = v
	}
	first := uint64(1)
	if v, err := strconv.ParseUint(os.Getenv(seedVar), 10, 64); err == nil {
		first = v
	}
	for seed := first; seed < first+uint64(n); seed++ {
		run(seed)
		if t.Failed() {
			t.Fatalf("seed %d failed: rerun with %s=%d %s=1", seed, seedVar, seed, countVar)
		}
	}
	return n
}

// faultSummary says how many requests met each fate.
func faultSummary(counts [fates]int) string {
	var faults []string
	for i, n := range counts {
		faults = append(faults, fmt.Sprintf("%s %d", fateNames[i], n))
	}
	return strings.Join(faults, ", ")
}

// TestFaultSchedules syncs devices through lost answers, cut connections,
// delays, duplicated, replayed and reordered requests and cancelled
// contexts, over many seeded random schedules: no device is ever stranded
// (each enrols once and syncs as soon as the faults stop), and no record
// is lost or duplicated. BRYGGA_FAULT_SCHEDULES sets how many schedules
// run (3 with -short, 12 without); BRYGGA_FAULT_SEED the first seed.
func TestFaultSchedules(t *testing.T) {
	schedules, devices, rounds := 12, 4, 12
	if testing.Short() {
		schedules, devices, rounds = 3, 3, 8
	}
	var total scheduleResult
	runs := runSeeds(t, schedules, "BRYGGA_FAULT_SCHEDULES", "BRYGGA_FAULT_SEED", func(seed uint64) {
		r := runSchedule(t, seed, devices, rounds)
		total.add(r.scheduleCounts)
		total.enrolTries += r.enrolTries
		total.stranded += r.stranded
	})
	t.Logf("%d schedules, %d devices (%d enrolment tries), %d records, %d syncs under faults (%d failed); requests: %s; stranded devices 0, records lost 0, duplicated 0",
		runs, total.devices, total.enrolTries, total.records, total.syncs, total.failed, faultSummary(total.counts))
}
